//! login_trigger: login, logout, authentication and DDL event triggers for PostgreSQL.
//!
//! This file only wires the modules together; docs/design.md explains the architecture.

mod api;
mod auth;
mod command_tag;
mod context;
mod ddl;
mod error;
mod event;
mod fire;
mod gucs;
mod hooks;
mod pg_ext;
mod port;
mod registry;
mod security;
mod session;
mod tests;

pgrx::pg_module_magic!(name, version);

pgrx::extension_sql_file!("../sql/catalog.sql", name = "catalog", bootstrap);
pgrx::extension_sql_file!("../sql/api.sql", name = "api", finalize);

#[pgrx::pg_guard]
pub extern "C-unwind" fn _PG_init() {
    gucs::init();
    auth::init();
    hooks::init();
}

#[cfg(test)]
pub use tests::pg_test;
