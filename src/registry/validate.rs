//! Checks of registration fields. Each check returns a [`Refusal`] with the SQLSTATE PostgreSQL
//! itself would use for the same mistake, so callers decide when to raise.

use crate::command_tag;
use crate::error::{Checked, Refusal};
use crate::event::{Event, TriggerState};
use pgrx::PgSqlErrorCode;
use pgrx::pg_catalog::pg_proc::{PgProc, ProKind};
use pgrx::pg_sys;

/// A registration whose fields passed every check, tags normalised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    pub name: String,
    pub event: Event,
    pub function: pg_sys::Oid,
    pub state: TriggerState,
    pub tags: Option<Vec<String>>,
}

/// Refuses NULL for an argument that must not be NULL.
pub fn required<T>(argument: &str, value: Option<T>) -> Checked<T> {
    value.ok_or_else(|| {
        Refusal::new(PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED, format!("{argument} must not be null"))
    })
}

/// A trigger name: 1 to `NAMEDATALEN - 1` bytes, like every PostgreSQL identifier.
pub fn trigger_name(name: &str) -> Checked<()> {
    let max = pg_sys::NAMEDATALEN as usize - 1;
    if name.is_empty() {
        return Err(Refusal::new(PgSqlErrorCode::ERRCODE_INVALID_NAME, "trigger name must not be empty"));
    }
    if name.len() > max {
        return Err(Refusal::new(
            PgSqlErrorCode::ERRCODE_NAME_TOO_LONG,
            format!("trigger name \"{name}\" is too long"),
        )
        .detail(format!(
            "Trigger names are limited to {max} bytes, as identifiers are; this one has {}.",
            name.len()
        )));
    }
    Ok(())
}

/// `schema.name(args)` of a function, for messages.
pub fn describe_function(function: pg_sys::Oid) -> String {
    // SAFETY: format_procedure accepts any OID (it prints the number for a missing function)
    // and returns a palloc'd NUL-terminated string in the current memory context.
    unsafe {
        let text = pg_sys::format_procedure(function);
        std::ffi::CStr::from_ptr(text).to_string_lossy().into_owned()
    }
}

/// Whether a role is a superuser.
pub fn is_superuser(role: pg_sys::Oid) -> bool {
    // SAFETY: superuser_arg looks the role up in the syscache; it needs a transaction, which every
    // caller (SQL functions, triggers, hooks inside commands) has.
    unsafe { pg_sys::superuser_arg(role) }
}

/// A trigger function: an existing plain function of no arguments returning `event_trigger` or
/// `void`, owned by a superuser (its owner could otherwise change what every trigger run does).
pub fn trigger_function(function: pg_sys::Oid) -> Checked<()> {
    let Some(proc) = PgProc::new(function) else {
        return Err(Refusal::new(
            PgSqlErrorCode::ERRCODE_UNDEFINED_FUNCTION,
            format!("function with OID {} does not exist", function.to_u32()),
        ));
    };
    let described = describe_function(function);
    if proc.prokind() != ProKind::Function {
        return Err(Refusal::new(PgSqlErrorCode::ERRCODE_WRONG_OBJECT_TYPE, format!("{described} is not a function"))
            .detail("Procedures, aggregates and window functions cannot be triggers."));
    }
    if proc.pronargs() != 0 {
        return Err(Refusal::new(
            PgSqlErrorCode::ERRCODE_INVALID_FUNCTION_DEFINITION,
            format!("function {described} must take no arguments"),
        )
        .hint("Trigger functions get their context from TG_EVENT, TG_TAG and login_trigger.context()."));
    }
    let returns = proc.prorettype();
    if proc.proretset() || (returns != crate::pg_ext::EVENT_TRIGGER_TYPE && returns != pg_sys::VOIDOID) {
        return Err(Refusal::new(
            PgSqlErrorCode::ERRCODE_INVALID_OBJECT_DEFINITION,
            format!("function {described} must return type event_trigger or void"),
        ));
    }
    if !is_superuser(proc.proowner()) {
        return Err(Refusal::new(
            PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
            format!("function {described} is not owned by a superuser"),
        )
        .detail("The owner of a trigger function can change what it does, and triggers run as the connecting or DDL-running user.")
        .hint(format!("ALTER FUNCTION {described} OWNER TO a superuser, then register it.")));
    }
    Ok(())
}

/// The function a registry row names (`schema.function`), which must exist and take no arguments.
pub fn function_by_name(name: &str) -> Checked<pg_sys::Oid> {
    crate::function_name::resolve(name).ok_or_else(|| {
        Refusal::new(PgSqlErrorCode::ERRCODE_UNDEFINED_FUNCTION, format!("function {name} does not exist"))
            .detail("The registry names a function as schema.function; it must take no arguments.")
    })
}

/// Checks every field of a registration.
pub fn registration(
    name: &str,
    event: &str,
    function: pg_sys::Oid,
    state: &str,
    tags: Option<Vec<Option<String>>>,
) -> Checked<Accepted> {
    trigger_name(name)?;
    let event = Event::parse(event)?;
    trigger_function(function)?;
    let state = TriggerState::parse(state)?;
    let tags = command_tag::normalize_filter(event, tags)?;
    Ok(Accepted { name: name.to_owned(), event, function, state, tags })
}

/// Refuses a change to the registry by anyone but a superuser.
pub fn require_superuser(action: &str) -> Checked<()> {
    // SAFETY: superuser() reads the current user id and the syscache; callers are in a transaction.
    if unsafe { pg_sys::superuser() } {
        return Ok(());
    }
    Err(Refusal::new(PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE, format!("permission denied to {action}"))
        .hint("Only superusers can register, change or drop login_trigger triggers."))
}
