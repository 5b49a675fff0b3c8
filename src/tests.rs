//! Tests run inside PostgreSQL by `cargo pgrx test`.

#[cfg(any(test, feature = "pg_test"))]
#[pgrx::pg_schema]
mod tests {}

#[cfg(test)]
pub mod pg_test {
    pub fn setup(_options: Vec<&str>) {}

    #[must_use]
    pub fn postgresql_conf_options() -> Vec<&'static str> {
        vec!["shared_preload_libraries = 'login_trigger'"]
    }
}
