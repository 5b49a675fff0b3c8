//! The SQL API for registering triggers. Every function is callable by anyone and refuses
//! non-superusers itself, with a message that says why. Each takes `SHARE ROW EXCLUSIVE` on the
//! registry first, so concurrent registrations serialise and the existence checks cannot race.
//! The rows they write are checked again by the catalog's own trigger (see `registry::maintain`).

use crate::error::{OrRaise, Refusal};
use crate::event::{Event, TriggerState};
use crate::function_name;
use crate::registry::{maintain, validate};
use pgrx::PgSqlErrorCode;
use pgrx::prelude::*;

fn lock_registry() {
    Spi::run("LOCK TABLE login_trigger.event_trigger IN SHARE ROW EXCLUSIVE MODE")
        .unwrap_or_else(|error| error!("could not lock the login_trigger registry: {error}"));
}

fn exists(name: &str) -> bool {
    Spi::get_one_with_args::<bool>(
        "SELECT EXISTS (SELECT FROM login_trigger.event_trigger WHERE name OPERATOR(pg_catalog.=) $1)",
        &[name.into()],
    )
    .ok()
    .flatten()
    .unwrap_or(false)
}

fn not_found(name: &str) -> Refusal {
    Refusal::new(PgSqlErrorCode::ERRCODE_UNDEFINED_OBJECT, format!("trigger \"{name}\" does not exist"))
        .hint("login_trigger.triggers lists the registered triggers.")
}

fn already_exists(name: &str) -> Refusal {
    Refusal::new(PgSqlErrorCode::ERRCODE_DUPLICATE_OBJECT, format!("trigger \"{name}\" already exists"))
}

/// Checks the caller and the name shared by every function that changes one registration, and
/// locks the registry; returns the name.
fn prepare<'a>(action: &str, name: Option<&'a str>) -> &'a str {
    validate::require_superuser(action).or_raise();
    let name = validate::required("name", name).or_raise();
    lock_registry();
    name
}

/// Sets the state of an existing registration.
fn set_state(name: &str, state: TriggerState) {
    let updated = Spi::get_one_with_args::<bool>(
        "UPDATE login_trigger.event_trigger SET enabled = $2::pg_catalog.\"char\" \
         WHERE name OPERATOR(pg_catalog.=) $1 RETURNING true",
        &[name.into(), state.letter().to_string().into()],
    )
    .ok()
    .flatten()
    .is_some();
    if !updated {
        not_found(name).raise();
    }
}

/// Registers a trigger. `tags` (DDL events only) is a list of command tags as in native
/// `WHEN TAG IN (…)`; `enabled` is origin (the default), replica, always or disabled.
#[pg_extern(sql = r#"
CREATE FUNCTION login_trigger.create_trigger(
    name text, event text, function regprocedure, tags text[] DEFAULT NULL, enabled text DEFAULT 'origin'
) RETURNS void VOLATILE LANGUAGE c AS 'MODULE_PATHNAME', '@FUNCTION_NAME@';
"#)]
fn create_trigger(
    name: Option<&str>,
    event: Option<&str>,
    function: Option<pg_sys::Oid>,
    tags: Option<Vec<Option<String>>>,
    enabled: Option<&str>,
) {
    let name = prepare("create login_trigger triggers", name);
    let event = validate::required("event", event).or_raise();
    let function = validate::required("function", function).or_raise();
    let enabled = validate::required("enabled", enabled).or_raise();
    let accepted = validate::registration(name, event, function, enabled, tags).or_raise();
    if exists(name) {
        already_exists(name).raise();
    }
    // The registry keeps the function by name, as pg_dump and pg_upgrade carry it; the lock
    // makes a concurrent ALTER FUNCTION … RENAME / SET SCHEMA wait for this transaction (and
    // then rename the registration too), or this one take the name it gave.
    // SAFETY: locks an existing function; processes invalidations once the lock is granted.
    unsafe {
        pg_sys::LockDatabaseObject(
            pg_sys::ProcedureRelationId,
            accepted.function,
            0,
            pg_sys::AccessShareLock as pg_sys::LOCKMODE,
        )
    };
    let function_name = function_name::qualified(accepted.function)
        .unwrap_or_else(|| error!("function with OID {} does not exist", accepted.function.to_u32()));
    Spi::run_with_args(
        "INSERT INTO login_trigger.event_trigger (name, event, function, enabled, tags, owner) \
         VALUES ($1, $2, $3, $4::pg_catalog.\"char\", $5, $6::pg_catalog.regrole)",
        &[
            accepted.name.as_str().into(),
            accepted.event.name().into(),
            function_name.as_str().into(),
            accepted.state.letter().to_string().into(),
            accepted.tags.into(),
            // SAFETY: GetUserId reads a backend-local variable.
            unsafe { pg_sys::GetUserId() }.into(),
        ],
    )
    .unwrap_or_else(|error| error!("could not register trigger \"{name}\": {error}"));
    maintain::activate(accepted.event);
}

/// Removes a registration; with `if_exists`, a missing one is a notice instead of an error.
#[pg_extern(sql = r#"
CREATE FUNCTION login_trigger.drop_trigger(name text, if_exists boolean DEFAULT false)
RETURNS void VOLATILE LANGUAGE c AS 'MODULE_PATHNAME', '@FUNCTION_NAME@';
"#)]
fn drop_trigger(name: Option<&str>, if_exists: Option<bool>) {
    let name = prepare("drop login_trigger triggers", name);
    let if_exists = validate::required("if_exists", if_exists).or_raise();
    let deleted = Spi::get_one_with_args::<bool>(
        "DELETE FROM login_trigger.event_trigger WHERE name OPERATOR(pg_catalog.=) $1 RETURNING true",
        &[name.into()],
    )
    .ok()
    .flatten()
    .is_some();
    if !deleted {
        if if_exists {
            notice!("trigger \"{name}\" does not exist, skipping");
        } else {
            not_found(name).raise();
        }
    }
}

/// Enables a registration: `origin` (fires unless session_replication_role is replica),
/// `replica` (fires only then) or `always`.
#[pg_extern(sql = r#"
CREATE FUNCTION login_trigger.enable_trigger(name text, mode text DEFAULT 'origin')
RETURNS void VOLATILE LANGUAGE c AS 'MODULE_PATHNAME', '@FUNCTION_NAME@';
"#)]
fn enable_trigger(name: Option<&str>, mode: Option<&str>) {
    let name = prepare("enable login_trigger triggers", name);
    let mode = validate::required("mode", mode).or_raise();
    let state = TriggerState::parse(mode).or_raise();
    if state == TriggerState::Disabled {
        Refusal::new(PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE, format!("\"{mode}\" is not an enabled mode"))
            .hint("Use login_trigger.disable_trigger() to disable a trigger.")
            .raise();
    }
    set_state(name, state);
    // Also activates registrations written by hand (or whose event trigger a DBA dropped).
    let event = Spi::get_one_with_args::<String>(
        "SELECT event FROM login_trigger.event_trigger WHERE name OPERATOR(pg_catalog.=) $1",
        &[name.into()],
    )
    .ok()
    .flatten()
    .and_then(|event| Event::parse(&event).ok());
    if let Some(event) = event {
        maintain::activate(event);
    }
}

/// Disables a registration; it stays registered and fires again once enabled.
#[pg_extern(sql = r#"
CREATE FUNCTION login_trigger.disable_trigger(name text)
RETURNS void VOLATILE LANGUAGE c AS 'MODULE_PATHNAME', '@FUNCTION_NAME@';
"#)]
fn disable_trigger(name: Option<&str>) {
    let name = prepare("disable login_trigger triggers", name);
    set_state(name, TriggerState::Disabled);
}

/// Renames a registration (its place in the firing order follows the new name).
#[pg_extern(sql = r#"
CREATE FUNCTION login_trigger.rename_trigger(name text, new_name text)
RETURNS void VOLATILE LANGUAGE c AS 'MODULE_PATHNAME', '@FUNCTION_NAME@';
"#)]
fn rename_trigger(name: Option<&str>, new_name: Option<&str>) {
    let name = prepare("rename login_trigger triggers", name);
    let new_name = validate::required("new_name", new_name).or_raise();
    validate::trigger_name(new_name).or_raise();
    if !exists(name) {
        not_found(name).raise();
    }
    if exists(new_name) {
        already_exists(new_name).raise();
    }
    Spi::run_with_args(
        "UPDATE login_trigger.event_trigger SET name = $2 WHERE name OPERATOR(pg_catalog.=) $1",
        &[name.into(), new_name.into()],
    )
    .unwrap_or_else(|error| error!("could not rename trigger \"{name}\": {error}"));
}
