//! login_trigger: login, logout, authentication and DDL event triggers for PostgreSQL.
//!
//! This file only wires the modules together; docs/design.md explains the architecture.

mod api;
mod auth;
mod boundary;
mod command_tag;
mod context;
mod ddl;
mod error;
mod event;
mod fault;
mod fire;
mod fixed_text;
mod function_cache;
mod function_name;
mod gucs;
mod hooks;
mod loading;
mod lockout;
mod pg_ext;
mod port;
mod refused_logins;
mod registry;
mod security;
mod session;
mod shared_memory;
mod tests;
mod time_limit;
mod trigger_stats;

pgrx::pg_module_magic!(name, version);

pgrx::extension_sql_file!("../sql/catalog.sql", name = "catalog", bootstrap);
pgrx::extension_sql_file!("../sql/api.sql", name = "api", finalize);

/// Set once `_PG_init` has run in this process. On 13/14 with `session_preload_libraries`,
/// `_PG_init` fires login itself, and a login function calling one of our SQL functions makes
/// PostgreSQL load the library again before the first load is recorded (dfmgr records it only
/// after `_PG_init` returns): that nested call must find everything already initialised.
static mut INITIALIZED: bool = false;

#[pgrx::pg_guard]
pub extern "C-unwind" fn _PG_init() {
    // SAFETY: backends are single-threaded; the flag is only touched here.
    unsafe {
        if INITIALIZED {
            return;
        }
        INITIALIZED = true;
    }
    loading::init();
    loading::preload_plpgsql();
    gucs::init();
    auth::init();
    registry::shared::init();
    hooks::init();
}

#[cfg(test)]
pub use tests::pg_test;
