//! Compiles the C shim (src/shim/*.c; the session library, src/session_library, links some of it too) against the headers of the PostgreSQL version selected by the `pgNN`
//! feature, found the way pgrx finds them (PGRX_PG_CONFIG_PATH, else cargo-pgrx's config.toml).

use pgrx_pg_config::{PgConfig, Pgrx};

fn main() {
    println!("cargo::rerun-if-changed=src/shim");
    println!("cargo::rerun-if-env-changed=PGRX_PG_CONFIG_PATH");
    let major = ["13", "14", "15", "16", "17", "18"]
        .into_iter()
        .find(|major| std::env::var_os(format!("CARGO_FEATURE_PG{major}")).is_some())
        .expect("one of the features pg13 … pg18 must be enabled");
    let pg_config = match std::env::var_os("PGRX_PG_CONFIG_PATH") {
        Some(path) => PgConfig::new_with_defaults(path.into()),
        None => Pgrx::from_config()
            .and_then(|pgrx| pgrx.get(&format!("pg{major}")))
            .unwrap_or_else(|error| panic!("no pg_config for PostgreSQL {major} (run cargo pgrx init): {error}")),
    };
    let include = pg_config.includedir_server().expect("pg_config --includedir-server failed");
    cc::Build::new()
        .file("src/shim/port.c")
        .file("src/shim/boundary.c")
        .file("src/shim/dispatcher.c")
        .file("src/shim/client_options.c")
        .file("src/shim/session_state.c")
        .file("src/shim/lockout.c")
        .include(include)
        .flag_if_supported("-Wno-unused-parameter")
        .flag_if_supported("-Wno-missing-field-initializers")
        .compile("login_trigger_shim");
}
