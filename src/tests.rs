//! Tests run inside PostgreSQL by `cargo pgrx test`: the Rust side of the registry (cache order
//! and invalidation, tag normalisation) that SQL-level suites cannot see directly. Behaviour
//! visible from SQL is tested in tests/pg_regress and tests/integration.

#[cfg(any(test, feature = "pg_test"))]
#[pgrx::pg_schema]
mod tests {
    use crate::command_tag::normalize_filter;
    use crate::event::{Event, TriggerState};
    use crate::pg_ext;
    use crate::registry::cache;
    use pgrx::PgSqlErrorCode;
    use pgrx::prelude::*;

    fn register(name: &str, event: &str) {
        Spi::run_with_args(
            "SELECT login_trigger.create_trigger($1, $2, 'public.lt_test_noop()')",
            &[name.into(), event.into()],
        )
        .unwrap();
    }

    fn setup() {
        Spi::run("CREATE FUNCTION public.lt_test_noop() RETURNS void LANGUAGE sql AS 'SELECT'").unwrap();
    }

    fn names(event: Event) -> Vec<String> {
        cache::snapshot().triggers(event).iter().map(|trigger| trigger.name.clone()).collect()
    }

    #[pg_test]
    fn cache_is_in_byte_order_of_names() {
        setup();
        for name in ["a_lower", "Zed", "_under", "B_upper", "1num"] {
            register(name, "login");
        }
        assert_eq!(names(Event::Login), ["1num", "B_upper", "Zed", "_under", "a_lower"]);
        assert!(names(Event::Logout).is_empty());
    }

    #[pg_test]
    fn cache_follows_changes_in_the_same_transaction() {
        setup();
        register("first", "logout");
        assert_eq!(names(Event::Logout), ["first"]);
        Spi::run("SELECT login_trigger.disable_trigger('first')").unwrap();
        assert!(names(Event::Logout).is_empty(), "disabled triggers are not cached for firing");
        assert!(cache::snapshot().registers_function(
            Spi::get_one::<pg_sys::Oid>("SELECT 'public.lt_test_noop()'::regprocedure::oid").unwrap().unwrap()
        ));
        Spi::run("SELECT login_trigger.enable_trigger('first', 'always')").unwrap();
        let snapshot = cache::snapshot();
        let first = &snapshot.triggers(Event::Logout)[0];
        assert_eq!(first.state, TriggerState::Always);
        Spi::run("SELECT login_trigger.rename_trigger('first', 'second')").unwrap();
        assert_eq!(names(Event::Logout), ["second"]);
        Spi::run("SELECT login_trigger.drop_trigger('second')").unwrap();
        assert!(names(Event::Logout).is_empty());
    }

    #[pg_test]
    fn tag_filters_are_normalised_and_matched() {
        let tags = normalize_filter(
            Event::DdlCommandEnd,
            Some(vec![Some("create table".into()), Some("Drop Table".into()), Some("CREATE TABLE".into())]),
        )
        .unwrap();
        assert_eq!(tags, Some(vec!["CREATE TABLE".to_owned(), "DROP TABLE".to_owned()]));
        assert_eq!(normalize_filter(Event::SqlDrop, None).unwrap(), None);
        for beyond_native in ["create role", "alter system", "create database", "drop tablespace", "reindex"] {
            assert!(normalize_filter(Event::DdlCommandStart, Some(vec![Some(beyond_native.into())])).is_ok());
        }
        let refused = |event, tag: &str| normalize_filter(event, Some(vec![Some(tag.into())])).unwrap_err().code;
        assert_eq!(
            refused(Event::DdlCommandEnd, "login"),
            if cfg!(any(feature = "pg17", feature = "pg18")) {
                PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED
            } else {
                PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE
            }
        );
        assert_eq!(refused(Event::TableRewrite, "drop table"), PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED);
        assert_eq!(refused(Event::Logout, "drop table"), PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED);
        assert_eq!(refused(Event::DdlCommandEnd, "no such tag"), PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE);
    }

    #[pg_test]
    fn sqlstates_are_encoded_as_postgres_does() {
        assert_eq!(pg_ext::sqlstate(b"57014"), PgSqlErrorCode::ERRCODE_QUERY_CANCELED as i32);
        assert_eq!(pg_ext::sqlstate(b"57P01"), PgSqlErrorCode::ERRCODE_ADMIN_SHUTDOWN as i32);
        assert_eq!(pg_ext::sqlstate(b"25P03"), PgSqlErrorCode::ERRCODE_IDLE_IN_TRANSACTION_SESSION_TIMEOUT as i32);
    }

    #[pg_test]
    fn setting_function_names_follow_postgres_identifier_rules() {
        let split = |name: &str| {
            crate::function_name::split(name).map(|(schema, function)| {
                (schema.to_string_lossy().into_owned(), function.to_string_lossy().into_owned())
            })
        };
        let pair = |schema: &str, function: &str| Some((schema.to_owned(), function.to_owned()));
        assert_eq!(split("public.gate"), pair("public", "gate"));
        assert_eq!(split(" public.gate() "), pair("public", "gate"));
        assert_eq!(split("Public.Gate"), pair("public", "gate"), "unquoted names fold to lower case");
        assert_eq!(split("\"My Schema\".\"a\"\"b\""), pair("My Schema", "a\"b"));
        assert_eq!(split("\"a.b\".f"), pair("a.b", "f"), "a quoted dot is part of the name");
        for bad in ["gate", "a.b.c", "public.", ".f", "\"open.f", "", "public.f g", "\"\".f"] {
            assert_eq!(split(bad), None, "{bad}");
        }
    }

    #[pg_test(error = "permission denied to create login_trigger triggers")]
    fn non_superusers_cannot_register() {
        setup();
        Spi::run("CREATE ROLE regress_tests_nobody").unwrap();
        Spi::run("SET ROLE regress_tests_nobody").unwrap();
        register("mine", "login");
    }
}

#[cfg(test)]
pub mod pg_test {
    pub fn setup(_options: Vec<&str>) {}

    #[must_use]
    pub fn postgresql_conf_options() -> Vec<&'static str> {
        vec!["shared_preload_libraries = 'login_trigger'"]
    }
}

/// The release metadata stays in step with Cargo.toml: PGXN's META.json names this version and
/// its script in sql/releases (frozen when the version is released; t/021_releases.pl compares
/// the frozen script with what cargo pgrx generates).
#[cfg(test)]
mod release {
    #[test]
    fn meta_json_describes_this_version() {
        let root = env!("CARGO_MANIFEST_DIR");
        let meta: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(format!("{root}/META.json")).expect("META.json is readable"))
                .expect("META.json is JSON");
        let version = env!("CARGO_PKG_VERSION");
        assert_eq!(meta["version"], version, "META.json's version");
        assert_eq!(meta["name"], env!("CARGO_PKG_NAME"));
        assert_eq!(meta["license"], "PostgreSQL");
        let script = format!("sql/releases/login_trigger--{version}.sql");
        assert_eq!(meta["contents"]["extensions"]["login_trigger"]["sql"], script.as_str());
        let module = &meta["contents"]["modules"]["login_trigger"];
        assert_eq!(module["type"], "hook");
        assert!(["server", "session"].contains(&module["preload"].as_str().unwrap_or_default()));
    }
}
