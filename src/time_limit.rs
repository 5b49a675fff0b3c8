//! The login and logout time limits (`login_trigger.login_timeout`, `logout_timeout`): the
//! session events' triggers run with the cancel timer armed, and the cancellation the timer
//! causes is reported as the limit it is: reworded in the FATAL that refuses the connection or
//! ends the exiting backend, and counted as a timeout in `trigger_stats`.

use crate::boundary::PgError;
use crate::event::Event;
use crate::pg_ext;
use pgrx::prelude::*;
use std::cell::Cell;
use std::panic::AssertUnwindSafe;

thread_local! {
    /// Which session event's triggers are running, and their time limit.
    static PHASE: Cell<Option<(Event, i32)>> = const { Cell::new(None) };
}

const QUERY_CANCELED: i32 = pg_ext::sqlstate(b"57014");
const ADMIN_SHUTDOWN: i32 = pg_ext::sqlstate(b"57P01");

/// Runs `work` with the cancel timer armed for `timeout_ms` (0: no limit) and `event` marked
/// as in progress, so that the timer's cancellation is reported as this phase timing out (see
/// [`reword`]). The phase stays marked after a failure, which is raised as FATAL right after:
/// that is when the emit_log hook rewords it.
pub fn with_timeout(event: Event, timeout_ms: i32, work: impl FnOnce() -> Result<(), PgError>) -> Result<(), PgError> {
    if timeout_ms > 0 {
        pg_ext::arm_cancel_timer(timeout_ms, event == Event::Logout);
    }
    PHASE.set(Some((event, timeout_ms)));
    let outcome = PgTryBuilder::new(AssertUnwindSafe(work))
        .finally(move || {
            if timeout_ms > 0 {
                pg_ext::disarm_cancel_timer();
            }
        })
        .execute();
    if outcome.is_ok() {
        PHASE.set(None);
    }
    outcome
}

/// The phase whose time limit an error with this SQLSTATE is, if it is one: while login or
/// logout triggers run, nothing but their timer cancels (the logout timer ends the exiting
/// process, 57P01).
fn expired_phase(sqlerrcode: i32) -> Option<(Event, i32)> {
    let phase = PHASE.get()?;
    (pg_ext::cancel_timer_fired() && (sqlerrcode == QUERY_CANCELED || sqlerrcode == ADMIN_SHUTDOWN)).then_some(phase)
}

/// The message of an expired time limit.
fn message(event: Event) -> String {
    format!("{} triggers did not finish in time", event.name())
}

/// If an error with this SQLSTATE is a time limit expiring, the message it is reported with.
pub fn expired(sqlerrcode: i32) -> Option<String> {
    expired_phase(sqlerrcode).map(|(event, _)| message(event))
}

/// Called by the emit_log hook for every FATAL: a cancellation by a time limit is reworded to say
/// which limit was hit. Returns whether it was one.
pub fn reword(error: &mut pg_sys::ErrorData) -> bool {
    let Some((event, timeout_ms)) = expired_phase(error.sqlerrcode) else {
        return false;
    };
    error.sqlerrcode = QUERY_CANCELED;
    let what = event.name();
    let detail =
        format!("login_trigger.{what}_timeout is {timeout_ms} ms; the work of the {what} triggers is rolled back.");
    let hint = "A superuser can connect with options='-c login_trigger.enabled=off' to repair a login trigger.";
    // SAFETY: the strings are copied into the current memory context (ErrorContext while an
    // error is emitted), where PostgreSQL frees the error's other fields too.
    unsafe {
        let copy = |text: &str| {
            let text = std::ffi::CString::new(text).unwrap_or_default();
            pg_sys::pstrdup(text.as_ptr())
        };
        error.message = copy(&message(event));
        error.detail = copy(&detail);
        error.hint = copy(hint);
    }
    true
}
