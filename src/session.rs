//! Login and logout: when they fire, in which transaction, under which time limit, and what a
//! failure means. The hooks in `hooks::session` decide *that* a session starts or ends and call
//! [`login`] and [`logout`]; everything about *what happens then* is here.
//!
//! Login runs in its own transaction right after `InitPostgres`, before the client can send its
//! first query (the same point as PostgreSQL 17's native login event). Any error refuses the
//! connection: the session is still starting, so PostgreSQL turns the ERROR into FATAL and the
//! client gets the function's message and SQLSTATE. On a hot standby, an error that only says the
//! transaction is read-only (a login function that writes) is reported as a WARNING and the login
//! proceeds, so an audit insert cannot lock everyone out of a standby.
//!
//! Logout runs from a `before_shmem_exit` callback: any open transaction of the session is rolled
//! back, then the logout triggers run in a transaction of their own, which commits.

use crate::context::{self, Detail, LogoutReason};
use crate::event::Event;
use crate::fire;
use crate::gucs;
use crate::pg_ext::{self, Errors};
use crate::registry::cache::{self, Registration};
use crate::registry::shared::{self, SessionTriggers};
use crate::registry::validate;
use pgrx::PgSqlErrorCode;
use pgrx::prelude::*;
use std::cell::Cell;
use std::panic::AssertUnwindSafe;

thread_local! {
    /// Set once the session has logged in through login_trigger, so logout fires only for
    /// sessions that really started (a refused login has no logout).
    static LOGGED_IN: Cell<bool> = const { Cell::new(false) };
    /// Which session event's triggers are running, and their time limit.
    static PHASE: Cell<Option<(Event, i32)>> = const { Cell::new(None) };
    /// The SQLSTATE of the last FATAL this backend reported: the only trace that a session ended
    /// by `pg_terminate_backend`, shutdown or a timeout (recorded by the emit_log hook).
    static LAST_FATAL: Cell<Option<i32>> = const { Cell::new(None) };
}

/// `TG_TAG` for session events: `LOGIN` where the server has that tag (17+), else `???`.
fn session_tag(event: Event) -> pg_sys::CommandTag::Type {
    #[cfg(any(feature = "pg17", feature = "pg18"))]
    if event == Event::Login {
        return pg_sys::CommandTag::CMDTAG_LOGIN;
    }
    let _ = event;
    pg_sys::CommandTag::CMDTAG_UNKNOWN
}

/// Those of `triggers` that fire under the session's `session_replication_role`.
fn firing_now(triggers: &[Registration]) -> Vec<&Registration> {
    let replica = fire::replica_role();
    triggers.iter().filter(|trigger| trigger.fires_for(None, replica)).collect()
}

/// Reads the login and logout triggers of the session's database from the registry (inside a
/// transaction) and, when the summary was at `generation` before the read, remembers them there
/// so that later connections need no catalog access.
fn read_session_triggers(database: pg_sys::Oid, generation: Option<u64>) -> SessionTriggers {
    let read = |event| {
        if cache::may_have_triggers(event) { cache::snapshot().triggers(event).to_vec() } else { Vec::new() }
    };
    let triggers = SessionTriggers { login: read(Event::Login), logout: read(Event::Logout) };
    if let Some(generation) = generation {
        shared::remember(database, generation, &triggers);
    }
    triggers
}

/// Resolves a session_exec-style function name: `schema.function` or `schema.function()`,
/// schema-qualified, never through the client's `search_path`, held to the same contract as a
/// registered trigger function (no arguments, returns `event_trigger` or `void`, owned by a
/// superuser). Anything else is a warning and the setting is ignored: a typo in
/// postgresql.conf must not lock every user out, nor crash a backend calling a function with
/// arguments it does not pass.
fn resolve_setting_function(setting: &str, name: &str) -> Option<pg_sys::Oid> {
    let Some(signature) = setting_function_signature(name) else {
        warning!("{setting} \"{name}\" is not a schema-qualified function name; it is ignored");
        return None;
    };
    // The name is well-formed, so to_regprocedure returns NULL rather than raising for it.
    let function = Spi::get_one_with_args::<pg_sys::Oid>(
        "SELECT pg_catalog.to_regprocedure($1)::pg_catalog.oid",
        &[signature.as_str().into()],
    )
    .ok()
    .flatten();
    let Some(function) = function else {
        warning!("{setting} function \"{name}\" does not exist; it is ignored");
        return None;
    };
    if let Err(refusal) = validate::trigger_function(function) {
        warning!("{setting} function \"{name}\" is ignored: {}", refusal.message);
        return None;
    }
    Some(function)
}

/// `schema.function()` for a well-formed `schema.function[()]` (each part an identifier, plain or
/// double-quoted), else None.
fn setting_function_signature(name: &str) -> Option<String> {
    let name = name.trim();
    let name = name.strip_suffix("()").unwrap_or(name).trim_end();
    let mut parts = Vec::new();
    let mut rest = name;
    loop {
        let (part, after) = if let Some(quoted) = rest.strip_prefix('"') {
            // A quoted identifier: "" stands for one quote; it ends at a lone quote.
            let mut end = None;
            let bytes = quoted.as_bytes();
            let mut index = 0;
            while index < bytes.len() {
                if bytes[index] == b'"' {
                    if bytes.get(index + 1) == Some(&b'"') {
                        index += 2;
                        continue;
                    }
                    end = Some(index);
                    break;
                }
                index += 1;
            }
            let end = end?;
            (&rest[..end + 2], &quoted[end + 1..])
        } else {
            let end = rest.find('.').unwrap_or(rest.len());
            let part = &rest[..end];
            let mut chars = part.chars();
            let first_ok = chars.next().is_some_and(|c| c.is_alphabetic() || c == '_');
            if !first_ok || !chars.all(|c| c.is_alphanumeric() || c == '_' || c == '$') {
                return None;
            }
            (part, &rest[end..])
        };
        if part.len() <= 2 && part.starts_with('"') {
            return None;
        }
        parts.push(part);
        match after.strip_prefix('.') {
            Some(next) => rest = next,
            None if after.is_empty() => break,
            None => return None,
        }
    }
    (parts.len() == 2).then(|| format!("{}.{}()", parts[0], parts[1]))
}

/// Starts a transaction for session-event work, as postgres.c does for a statement.
fn begin_transaction() {
    // SAFETY: called outside any transaction (checked by the callers' conditions); the snapshot
    // is popped again by commit_transaction.
    unsafe {
        pg_sys::SetCurrentStatementStartTimestamp();
        pg_sys::StartTransactionCommand();
        pg_sys::PushActiveSnapshot(pg_sys::GetTransactionSnapshot());
    }
}

fn commit_transaction() {
    // SAFETY: pairs with begin_transaction.
    unsafe {
        pg_sys::PopActiveSnapshot();
        pg_sys::CommitTransactionCommand();
    }
}

/// Runs `work` with the cancel timer armed for `timeout_ms` (0: no limit) and `event` marked
/// as in progress, so that the timer's cancellation is reported as this phase timing out (see
/// [`reword_timeout`]); the error itself is FATAL at this point, so it cannot be caught.
fn with_timeout(event: Event, timeout_ms: i32, work: impl FnOnce()) {
    if timeout_ms > 0 {
        pg_ext::arm_cancel_timer(timeout_ms, event == Event::Logout);
    }
    PHASE.set(Some((event, timeout_ms)));
    PgTryBuilder::new(AssertUnwindSafe(work))
        .finally(move || {
            PHASE.set(None);
            if timeout_ms > 0 {
                pg_ext::disarm_cancel_timer();
            }
        })
        .execute();
}

/// Called by the emit_log hook for every FATAL: while login or logout triggers run, nothing but
/// their timer cancels, so a cancellation is reworded to say which limit was hit.
pub fn reword_timeout(error: &mut pg_sys::ErrorData) {
    let Some((event, timeout_ms)) = PHASE.get() else {
        return;
    };
    if !pg_ext::cancel_timer_fired() || (error.sqlerrcode != QUERY_CANCELED && error.sqlerrcode != ADMIN_SHUTDOWN) {
        return;
    }
    // The logout timer ends the exiting process (57P01); report it as the time limit it is.
    error.sqlerrcode = QUERY_CANCELED;
    let what = event.name();
    let message = format!("{what} triggers did not finish in time");
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
        error.message = copy(&message);
        error.detail = copy(&detail);
        error.hint = copy(hint);
    }
}

/// Fires the login function setting and the login triggers of the session's database. Called
/// once per client session, outside any transaction, before the first query.
pub fn login() {
    LOGGED_IN.set(true);
    if !gucs::enabled() {
        return;
    }
    // SAFETY: reads a backend-local variable.
    let database = unsafe { pg_sys::MyDatabaseId };
    let known = shared::session_triggers(database);
    if gucs::login_function().is_none() && known.as_ref().is_some_and(|triggers| triggers.login.is_empty()) {
        return;
    }
    let generation = shared::generation();
    // SAFETY: reads the current memory context, restored after the login transaction (the main
    // loop may already have switched to MessageContext and allocated the query buffer in it).
    let memory = unsafe { pg_sys::CurrentMemoryContext };
    begin_transaction();
    report_activity(c"login_trigger: login");
    with_timeout(Event::Login, gucs::login_timeout_ms(), || {
        context::with_event(Event::Login, Detail::Login, || {
            if let Some(name) = gucs::login_function()
                && let Some(function) = resolve_setting_function("login_trigger.login_function", &name)
            {
                fire_tolerating_standby(&name, function);
            }
            let triggers = known.unwrap_or_else(|| read_session_triggers(database, generation));
            for trigger in firing_now(&triggers.login) {
                fire_tolerating_standby(&trigger.name, trigger.function);
                // SAFETY: inside the login transaction; each trigger sees the previous one's work.
                unsafe { pg_sys::CommandCounterIncrement() };
            }
        });
    });
    commit_transaction();
    // SAFETY: switches back to the context saved above, which outlives the transaction.
    unsafe { pg_sys::MemoryContextSwitchTo(memory) };
    report_activity(c"");
}

/// Fires one login trigger. On a hot standby it runs in a subtransaction, and an error that only
/// says the transaction is read-only becomes a WARNING, so that a login function that writes
/// does not lock everyone out of the standby; policy errors still refuse the connection.
fn fire_tolerating_standby(name: &str, function: pg_sys::Oid) {
    // SAFETY: reads shared recovery state.
    if !unsafe { pg_sys::RecoveryInProgress() } {
        fire::fire_one(Event::Login, session_tag(Event::Login), name, function, Errors::AsRaised);
        return;
    }
    // SAFETY: subtransaction calls pair up on both paths (released on success, rolled back on error).
    let (memory, owner) = unsafe {
        let saved = (pg_sys::CurrentMemoryContext, pg_sys::CurrentResourceOwner);
        pg_sys::BeginInternalSubTransaction(std::ptr::null());
        saved
    };
    PgTryBuilder::new(|| {
        fire::fire_one(Event::Login, session_tag(Event::Login), name, function, Errors::Caught);
        // SAFETY: see above.
        unsafe {
            pg_sys::ReleaseCurrentSubTransaction();
            pg_sys::MemoryContextSwitchTo(memory);
            pg_sys::CurrentResourceOwner = owner;
        }
    })
    .catch_when(PgSqlErrorCode::ERRCODE_READ_ONLY_SQL_TRANSACTION, |error| {
        // SAFETY: see above.
        unsafe {
            pg_sys::RollbackAndReleaseCurrentSubTransaction();
            pg_sys::MemoryContextSwitchTo(memory);
            pg_sys::CurrentResourceOwner = owner;
        }
        let message = match &error {
            pg_sys::panic::CaughtError::PostgresError(report) | pg_sys::panic::CaughtError::ErrorReport(report) => {
                report.message().to_owned()
            }
            pg_sys::panic::CaughtError::RustPanic { ereport, .. } => ereport.message().to_owned(),
        };
        warning!("login_trigger trigger \"{name}\" could not write on a standby: {message}");
    })
    .execute();
}

fn report_activity(text: &std::ffi::CStr) {
    // SAFETY: pgstat_report_activity copies the string into this backend's status entry.
    unsafe {
        let state =
            if text.is_empty() { pg_sys::BackendState::STATE_IDLE } else { pg_sys::BackendState::STATE_RUNNING };
        pg_sys::pgstat_report_activity(state, text.as_ptr());
    }
}

/// Records the SQLSTATE of a FATAL the backend is reporting (called by the emit_log hook).
pub fn note_fatal(sqlstate: i32) {
    LAST_FATAL.set(Some(sqlstate));
}

fn postmaster_is_stopping() -> bool {
    // SAFETY: DataDir is the backend's data directory, set before any backend runs.
    let Some(data_dir) = (unsafe { !pg_sys::DataDir.is_null() })
        .then(|| unsafe { std::ffi::CStr::from_ptr(pg_sys::DataDir) }.to_string_lossy().into_owned())
    else {
        return false;
    };
    // Line 8 of postmaster.pid is the postmaster's status, "stopping" once shutdown has begun.
    std::fs::read_to_string(format!("{data_dir}/postmaster.pid"))
        .ok()
        .and_then(|text| text.lines().nth(7).map(|status| status.trim() == "stopping"))
        .unwrap_or(false)
}

const QUERY_CANCELED: i32 = pg_ext::sqlstate(b"57014");
const ADMIN_SHUTDOWN: i32 = pg_ext::sqlstate(b"57P01");
const IDLE_SESSION_TIMEOUT: i32 = pg_ext::sqlstate(b"57P05");
const IDLE_IN_TRANSACTION_TIMEOUT: i32 = pg_ext::sqlstate(b"25P03");
const CONNECTION_FAILURE: i32 = pg_ext::sqlstate(b"08006");
const PROTOCOL_VIOLATION: i32 = pg_ext::sqlstate(b"08P01");

/// Why the session is ending, from the exit code, the last FATAL and PostgreSQL's own record.
fn logout_reason(exit_code: i32) -> LogoutReason {
    match LAST_FATAL.get() {
        Some(ADMIN_SHUTDOWN) if postmaster_is_stopping() => LogoutReason::Shutdown,
        Some(ADMIN_SHUTDOWN) => LogoutReason::Terminated,
        Some(IDLE_SESSION_TIMEOUT) => LogoutReason::IdleSessionTimeout,
        Some(IDLE_IN_TRANSACTION_TIMEOUT) => LogoutReason::IdleInTransactionTimeout,
        Some(CONNECTION_FAILURE | PROTOCOL_VIOLATION) => LogoutReason::ClientLost,
        Some(_) => LogoutReason::Fatal,
        None if exit_code != 0 => LogoutReason::Fatal,
        None => client_exit_kind(),
    }
}

/// A clean exit: the client said goodbye (Terminate) or just closed the connection (EOF).
/// PostgreSQL 13 does not record the difference.
fn client_exit_kind() -> LogoutReason {
    #[cfg(not(feature = "pg13"))]
    // SAFETY: reads a backend-local variable set by the main loop.
    if unsafe { pg_sys::pgStatSessionEndCause } == pg_sys::SessionEndType::DISCONNECT_CLIENT_EOF {
        return LogoutReason::ClientEof;
    }
    LogoutReason::ClientExit
}

/// Fires the logout triggers of a session that logged in. Runs inside `proc_exit`: output goes
/// to the server log only, errors are FATAL (the backend is exiting anyway) and are logged with
/// the trigger's name, and the logout timeout cuts off a slow trigger.
pub fn logout(exit_code: i32) {
    if !LOGGED_IN.get() || !gucs::enabled() {
        return;
    }
    // SAFETY: reads a backend-local variable.
    let database = unsafe { pg_sys::MyDatabaseId };
    let known = shared::session_triggers(database);
    if gucs::logout_function().is_none() && known.as_ref().is_some_and(|triggers| triggers.logout.is_empty()) {
        return;
    }
    let reason = logout_reason(exit_code);
    // SAFETY: the backend is exiting: roll back whatever the session left open, stop writing to
    // a client that may be gone, and let the logout timer interrupt us (proc_exit holds
    // interrupts, which would make a slow trigger unstoppable).
    let held_interrupts = unsafe {
        pg_sys::AbortOutOfAnyTransaction();
        pg_sys::whereToSendOutput = pg_sys::CommandDest::DestNone;
        pg_sys::QueryCancelPending = 0;
        let held = pg_sys::InterruptHoldoffCount;
        pg_sys::InterruptHoldoffCount = 0;
        held
    };
    let generation = shared::generation();
    begin_transaction();
    let registered = known.unwrap_or_else(|| read_session_triggers(database, generation)).logout;
    let triggers = firing_now(&registered);
    let setting_function = gucs::logout_function()
        .and_then(|name| resolve_setting_function("login_trigger.logout_function", &name).map(|oid| (name, oid)));
    if !triggers.is_empty() || setting_function.is_some() {
        // SAFETY: GetCurrentTimestamp reads the clock; MyStartTimestamp is the backend start.
        let session_seconds = unsafe { (pg_sys::GetCurrentTimestamp() - pg_sys::MyStartTimestamp) as f64 / 1e6 };
        with_timeout(Event::Logout, gucs::logout_timeout_ms(), || {
            context::with_event(Event::Logout, Detail::Logout { reason, session_seconds }, || {
                fire::fire_all(Event::Logout, session_tag(Event::Logout), &triggers);
                if let Some((name, function)) = &setting_function {
                    fire::fire_one(Event::Logout, session_tag(Event::Logout), name, *function, Errors::AsRaised);
                }
            });
        });
    }
    commit_transaction();
    // SAFETY: restores the interrupt holdoff proc_exit set.
    unsafe { pg_sys::InterruptHoldoffCount = held_interrupts };
}

#[cfg(test)]
mod unit {
    use super::setting_function_signature;

    #[test]
    fn setting_function_names_must_be_schema_qualified_identifiers() {
        assert_eq!(setting_function_signature("public.gate").as_deref(), Some("public.gate()"));
        assert_eq!(setting_function_signature("public.gate()").as_deref(), Some("public.gate()"));
        assert_eq!(
            setting_function_signature("\"My Schema\".\"a\"\"b\"").as_deref(),
            Some("\"My Schema\".\"a\"\"b\"()")
        );
        for bad in
            ["gate", "public.f(", "public.f(text)", "public.", ".f", "a.b.c", "\"\".f", "public.f g", "\"open.f", ""]
        {
            assert_eq!(setting_function_signature(bad), None, "{bad}");
        }
    }
}
