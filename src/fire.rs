//! Invoking trigger functions, the way PostgreSQL's `EventTriggerInvoke` does: in name order, a
//! command-counter increment between triggers so each sees the previous one's effects, a memory
//! context per call, and `EventTriggerData` passed to functions declared `RETURNS event_trigger`
//! so PL/pgSQL sets `TG_EVENT` and `TG_TAG`. Functions returning `void` are called plainly and
//! read their context from `login_trigger.context()`.

use crate::boundary::PgError;
use crate::event::Event;
use crate::pg_ext;
use crate::registry::cache::Registration;
use crate::registry::validate::{describe_function, is_superuser};
use crate::trigger_stats::{self, Outcome};
use crate::{boundary, context, function_cache, refused_logins, time_limit};
use pgrx::prelude::*;
use std::ffi::{CStr, CString};
use std::marker::PhantomData;
use std::ptr::NonNull;

/// The event name as PL/pgSQL's `TG_EVENT` shows it.
fn event_cstr(event: Event) -> &'static CStr {
    match event {
        Event::Login => c"login",
        Event::Logout => c"logout",
        Event::DdlCommandStart => c"ddl_command_start",
        Event::DdlCommandEnd => c"ddl_command_end",
        Event::SqlDrop => c"sql_drop",
        Event::TableRewrite => c"table_rewrite",
    }
}

/// Whether `session_replication_role` is `replica`, which decides which states fire.
pub fn replica_role() -> bool {
    // SAFETY: reads a backend-local GUC variable.
    unsafe { pg_sys::SessionReplicationRole == pg_sys::SESSION_REPLICATION_ROLE_REPLICA as i32 }
}

/// One function to fire under a trigger's name: a registration, or the function named by
/// `login_trigger.login_function` / `logout_function`.
#[derive(Debug, Clone, Copy)]
pub struct Firing<'a> {
    pub name: &'a str,
    pub function: pg_sys::Oid,
    /// The function of `login_function` / `logout_function` rather than a registration.
    pub from_setting: bool,
}

impl<'a> From<&'a Registration> for Firing<'a> {
    fn from(registration: &'a Registration) -> Self {
        Firing { name: &registration.name, function: registration.function, from_setting: false }
    }
}

/// Fires `firings` (already filtered) in order, the one firing path of every event. As
/// PostgreSQL's `EventTriggerInvoke` does, each sees the previous one's effects (a command-counter
/// increment in between), and an error in one propagates at once, so later ones do not run.
/// With `tolerate_read_only` (login on a hot standby) each runs in a subtransaction, and an error
/// that only says the transaction is read-only becomes a WARNING; any other error propagates as
/// raised.
///
/// A function's error comes back as a value, every field kept, for the caller's outermost frame
/// to raise again (`PgError::rethrow`) once the Rust frames in between have unwound.
pub fn fire_all(
    event: Event,
    tag: pg_sys::CommandTag::Type,
    parsetree: *mut pg_sys::Node,
    firings: &[Firing],
    tolerate_read_only: bool,
) -> Result<(), PgError> {
    // SAFETY: check_stack_depth raises an ordinary error when the stack is too deep.
    unsafe { pg_sys::check_stack_depth() };
    let occasion = Occasion { event, tag, parsetree, tolerate_read_only };
    for (position, firing) in firings.iter().enumerate() {
        if position > 0 {
            // SAFETY: we are inside a transaction; makes the previous trigger's effects visible.
            unsafe { pg_sys::CommandCounterIncrement() };
        }
        if !tolerate_read_only {
            fire_one(&occasion, firing)?;
            continue;
        }
        // The function's error is raised inside the subtransaction so that it is rolled back, then
        // handed back out of it as a value.
        let outcome = boundary::in_subtransaction(TOLERATED_ON_STANDBY, || {
            if let Err(error) = fire_one(&occasion, firing) {
                error.rethrow();
            }
        })?;
        if let boundary::Subtransaction::Tolerated(message) = outcome {
            warning!("login_trigger trigger \"{}\" could not write on a standby: {message}", firing.name);
        }
    }
    Ok(())
}

/// What a trigger function is told in its `EventTriggerData`: the event, the command's tag, and
/// (DDL) the command's parse tree, as native firing passes them; and whether a read-only error is
/// tolerated (then it does not refuse a login).
struct Occasion {
    event: Event,
    tag: pg_sys::CommandTag::Type,
    parsetree: *mut pg_sys::Node,
    tolerate_read_only: bool,
}

/// The one error a login function may raise on a hot standby without refusing the login.
const TOLERATED_ON_STANDBY: PgSqlErrorCode = PgSqlErrorCode::ERRCODE_READ_ONLY_SQL_TRANSACTION;

/// Fires one function as the trigger `name`, unless its owner is no longer a superuser, in which
/// case it is skipped with a warning (registration refuses such functions; a later `ALTER FUNCTION
/// … OWNER TO` must not let a non-superuser decide what runs as every connecting user).
fn fire_one(occasion: &Occasion, firing: &Firing) -> Result<(), PgError> {
    let Firing { name, function, from_setting } = *firing;
    let Some(function) = function_cache::lookup(function) else {
        return Ok(());
    };
    if !is_superuser(function.owner()) {
        warning!(
            "login_trigger trigger \"{name}\" skipped: function {} is not owned by a superuser",
            describe_function(function.function())
        );
        return Ok(());
    }
    let call = trigger_stats::Call::start(occasion.event, name, from_setting);
    let outcome = context::with_trigger(name, || {
        let mut context_line = ContextFrame::new(name, occasion.event);
        let _pushed = context_line.push();
        invoke(&function, occasion)
    });
    match outcome {
        Ok(()) => call.finish(Outcome::Success),
        Err(error) => {
            function_cache::forget(&function);
            let expired = time_limit::expired(error.sqlerrcode());
            let refused = occasion.event == Event::Login
                && !(occasion.tolerate_read_only && error.sqlerrcode() == TOLERATED_ON_STANDBY as i32);
            if refused {
                refused_logins::note_refusing_function((!from_setting).then_some(name));
            }
            call.finish(Outcome::Error {
                sqlstate: error.sqlerrcode(),
                timed_out: expired.is_some(),
                message: &expired.unwrap_or_else(|| error.message()),
                refused,
            })
        }
    }
    outcome
}

/// Calls the function once, as PostgreSQL's `EventTriggerInvoke` does, with the event's
/// `EventTriggerData` for a function declared `RETURNS event_trigger` (so PL/pgSQL sets
/// `TG_EVENT` and `TG_TAG`). The call is made inside a C boundary that catches its error with
/// every field (custom SQLSTATE, CONTEXT) and hands it back, so that the Rust frames above unwind
/// normally before the error is raised again.
fn invoke(function: &function_cache::CachedFunction, occasion: &Occasion) -> Result<(), PgError> {
    let mut trigger_data = pg_sys::EventTriggerData {
        type_: pg_sys::NodeTag::T_EventTriggerData,
        event: event_cstr(occasion.event).as_ptr(),
        parsetree: occasion.parsetree,
        tag: occasion.tag,
    };
    let call_context =
        if function.returns_event_trigger() { (&raw mut trigger_data).cast() } else { std::ptr::null_mut() };
    // SAFETY: the FmgrInfo belongs to the cached function, which the caller holds for the call;
    // the trigger data lives on this frame until the call returns.
    unsafe { boundary::call_function(function.function(), function.flinfo(), function.context(), call_context) }
}

/// A `CONTEXT:` line naming the trigger on every message raised while it runs, so the server
/// log (and a refused client) can tell which trigger failed: the callback PostgreSQL walks and
/// what it formats. The line is only formatted when a message is raised.
struct ContextFrame<'a> {
    callback: pg_sys::ErrorContextCallback,
    name: &'a str,
    event: Event,
}

/// A [`ContextFrame`] on PostgreSQL's error-context stack, popped on drop (also when an error
/// unwinds through the invocation). It holds the frame's address, as PostgreSQL does, and the
/// exclusive borrow that keeps the frame in place and untouched by Rust meanwhile.
struct PushedContext<'f, 'a> {
    frame: NonNull<ContextFrame<'a>>,
    _borrow: PhantomData<&'f mut ContextFrame<'a>>,
}

impl<'a> ContextFrame<'a> {
    fn new(name: &'a str, event: Event) -> Self {
        let callback = pg_sys::ErrorContextCallback {
            previous: std::ptr::null_mut(),
            callback: Some(error_context),
            arg: std::ptr::null_mut(),
        };
        ContextFrame { callback, name, event }
    }

    fn push(&mut self) -> PushedContext<'_, 'a> {
        let frame = NonNull::from(&mut *self);
        // SAFETY: the frame cannot move or be used by Rust while it is borrowed by the returned
        // value, which removes it from the stack when dropped; from here on it is only reached
        // through this pointer, by us and by PostgreSQL. Its name borrows from the caller, who
        // outlives it.
        unsafe {
            let raw = frame.as_ptr();
            (*raw).callback.previous = pg_sys::error_context_stack;
            (*raw).callback.arg = raw.cast();
            pg_sys::error_context_stack = &raw mut (*raw).callback;
        }
        PushedContext { frame, _borrow: PhantomData }
    }
}

impl Drop for PushedContext<'_, '_> {
    fn drop(&mut self) {
        // SAFETY: restores the stack to what it was before push; error handling may already have
        // reset it to an outer entry, which `previous` also is or precedes. The frame is alive
        // (borrowed for this value's life).
        unsafe { pg_sys::error_context_stack = (*self.frame.as_ptr()).callback.previous };
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn error_context(arg: *mut std::ffi::c_void) {
    // SAFETY: arg is the frame pushed by ContextFrame::push, alive while it is on the stack.
    let frame = unsafe { &*arg.cast::<ContextFrame>() };
    let text = CString::new(format!("login_trigger trigger \"{}\" ({})", frame.name, frame.event.name()))
        .unwrap_or_else(|_| c"login_trigger trigger".to_owned());
    // SAFETY: a NUL-terminated text for a %s format; errcontext_msg copies it.
    unsafe { pg_ext::errcontext_msg(c"%s".as_ptr(), text.as_ptr()) };
}
