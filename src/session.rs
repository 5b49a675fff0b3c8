//! Login and logout: when they fire, in which transaction, under which time limit, and what a
//! failure means. The hooks in `hooks::session` decide *that* a session starts or ends and call
//! [`login`] and [`logout`]; everything about *what happens then* is here.
//!
//! Login runs in its own transaction right after `InitPostgres`, before the client can send its
//! first query (the same point as PostgreSQL 17's native login event). The refusal contract, on
//! every version (13–18) and with either preload setting:
//!
//! 1. A session is *accepted* when login ends normally: the login transaction commits, then the
//!    logout callback is registered (so only accepted sessions ever fire logout), and the client
//!    gets its first `ReadyForQuery`.
//! 2. A session is *refused* when anything fails between the start of login and its end: an error
//!    in a login trigger or in `login_trigger.login_function`; an error at commit (deferred
//!    constraints, constraint triggers, serialization); an error while reading the registry or the
//!    shared summary; the login timeout; a Rust panic anywhere on the path. The backend ends with
//!    FATAL carrying the error's own SQLSTATE, message, detail, hint and CONTEXT
//!    (`boundary::fatal_on_error`, a C error boundary: on 16+ PostgresMain's handler is already
//!    installed and would report a plain ERROR, then `ReadyForQuery`).
//! 3. A refused session never receives `ReadyForQuery`, fires no logout trigger, and its login
//!    writes are rolled back (FATAL aborts the open transaction).
//! 4. On a hot standby each login function runs in a subtransaction; an error that only says the
//!    transaction is read-only (a login function that writes) is rolled back and reported as a
//!    WARNING, and login goes on: an audit insert cannot lock everyone out of a standby. Every
//!    other error refuses the session as in 2, as raised.
//! 5. Login does not fire (the session is accepted untouched) for walsenders, background workers,
//!    pg_upgrade's binary-upgrade mode, a library loaded on demand, and with
//!    `login_trigger.enabled = off` (`hooks::session` decides).
//!
//! Logout runs from a `before_shmem_exit` callback: any open transaction of the session is rolled
//! back, then the logout triggers run in a transaction of their own, which commits.

use crate::boundary::{self, PgError};
use crate::context::{self, Detail, LogoutReason};
use crate::event::Event;
use crate::fault;
use crate::fire::{self, Firing};
use crate::function_name;
use crate::gucs;
use crate::pg_ext;
use crate::registry::cache::{self, Registration};
use crate::registry::shared::{self, SessionTriggers};
use crate::registry::validate;
use crate::time_limit;
use pgrx::prelude::*;
use std::cell::Cell;

thread_local! {
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
fn firing_now(triggers: &[Registration]) -> impl Iterator<Item = Firing<'_>> {
    let replica = fire::replica_role();
    triggers.iter().filter(move |trigger| trigger.fires_for(None, replica)).map(Firing::from)
}

/// Reads the login and logout triggers of the session's database from the registry (inside a
/// transaction) and, when the summary was at `generation` before the read, remembers them there
/// so that later connections need no catalog access.
fn read_session_triggers(database: pg_sys::Oid, generation: Option<u64>) -> SessionTriggers {
    let read = |event| {
        if cache::may_have_triggers(event) { cache::snapshot().triggers(event).to_vec() } else { Vec::new() }
    };
    fault::point("login.registry");
    let triggers = SessionTriggers { login: read(Event::Login), logout: read(Event::Logout) };
    if let Some(generation) = generation {
        shared::remember(database, generation, &triggers);
    }
    triggers
}

/// Resolves a session_exec-style function name, `schema.function` or `schema.function()`, with
/// PostgreSQL's identifier rules (`SplitIdentifierString`: unquoted names fold to lower case,
/// double quotes keep them) and in the named schema only, never through the client's
/// `search_path`; the function is held to the same contract as a registered trigger function (no
/// arguments, returns `event_trigger` or `void`, owned by a superuser). Anything else is a warning
/// and the setting is ignored: a typo in postgresql.conf must not lock every user out, nor crash a
/// backend calling a function with arguments it does not pass.
fn resolve_setting_function(setting: &str, name: &str) -> Option<pg_sys::Oid> {
    let Some((schema, function_name)) = function_name::split(name) else {
        warning!("{setting} \"{name}\" is not a schema-qualified function name; it is ignored");
        return None;
    };
    let Some(function) = function_name::without_arguments(&schema, &function_name) else {
        warning!("{setting} function \"{name}\" does not exist; it is ignored");
        return None;
    };
    if let Err(refusal) = validate::trigger_function(function) {
        warning!("{setting} function \"{name}\" is ignored: {}", refusal.message);
        return None;
    }
    Some(function)
}

/// The function a session_exec-style setting names, with the name it fires under, if it is set
/// and resolves.
fn setting_function(setting: &str, name: Option<String>) -> Option<(String, pg_sys::Oid)> {
    let name = name?;
    resolve_setting_function(setting, &name).map(|function| (name, function))
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

/// Commits session-event work. Commit runs deferred constraints and constraint triggers, whose
/// error comes back as a value, every field kept, copied into `error_context` (which must outlive
/// the transaction), for the caller to raise: login refuses the connection with it, logout ends
/// the exiting backend with it.
fn commit_transaction(error_context: pg_sys::MemoryContext) -> Result<(), PgError> {
    // SAFETY: pairs with begin_transaction; the commit is called bare inside a C boundary.
    unsafe {
        pg_sys::PopActiveSnapshot();
        boundary::catching(error_context, || pg_ext::CommitTransactionCommand())
    }
}

/// Fires the login function setting and the login triggers of the session's database. Called
/// once per client session, outside any transaction, before the first query, inside the refusal
/// boundary (see the module header), which gets a trigger function's error back as a value to
/// raise.
pub fn login() -> Result<(), PgError> {
    fault::point("login.start");
    if !gucs::enabled() {
        return Ok(());
    }
    // SAFETY: reads a backend-local variable.
    let database = unsafe { pg_sys::MyDatabaseId };
    let known = shared::session_triggers(database);
    fault::point("login.summary");
    if gucs::login_function().is_none() && known.as_ref().is_some_and(|triggers| triggers.login.is_empty()) {
        return Ok(());
    }
    let generation = shared::generation();
    // SAFETY: reads the current memory context, restored after the login transaction (the main
    // loop may already have switched to MessageContext and allocated the query buffer in it).
    let memory = unsafe { pg_sys::CurrentMemoryContext };
    begin_transaction();
    report_activity(c"login_trigger: login");
    time_limit::with_timeout(Event::Login, gucs::login_timeout_ms(), || {
        context::with_event(Event::Login, Detail::Login, || {
            let setting = setting_function("login_trigger.login_function", gucs::login_function());
            let triggers = known.unwrap_or_else(|| read_session_triggers(database, generation));
            let setting =
                setting.iter().map(|(name, function)| Firing { name, function: *function, from_setting: true });
            let firings: Vec<Firing> = setting.chain(firing_now(&triggers.login)).collect();
            // SAFETY: reads shared recovery state.
            let on_standby = unsafe { pg_sys::RecoveryInProgress() };
            fire::fire_all(Event::Login, session_tag(Event::Login), std::ptr::null_mut(), &firings, on_standby)
        })
    })?;
    fault::point("login.commit");
    commit_transaction(memory)?;
    // SAFETY: switches back to the context saved above, which outlives the transaction.
    unsafe { pg_sys::MemoryContextSwitchTo(memory) };
    report_activity(c"");
    Ok(())
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

/// Fires the logout triggers and the logout function setting, inside the logout transaction.
fn fire_logout(
    known: Option<SessionTriggers>,
    database: pg_sys::Oid,
    generation: Option<u64>,
    reason: LogoutReason,
) -> Result<(), PgError> {
    let registered = known.unwrap_or_else(|| read_session_triggers(database, generation)).logout;
    let setting = setting_function("login_trigger.logout_function", gucs::logout_function());
    let setting = setting.iter().map(|(name, function)| Firing { name, function: *function, from_setting: true });
    let firings: Vec<Firing> = firing_now(&registered).chain(setting).collect();
    if firings.is_empty() {
        return Ok(());
    }
    // SAFETY: GetCurrentTimestamp reads the clock; MyStartTimestamp is the backend start.
    let session_seconds = unsafe { (pg_sys::GetCurrentTimestamp() - pg_sys::MyStartTimestamp) as f64 / 1e6 };
    time_limit::with_timeout(Event::Logout, gucs::logout_timeout_ms(), || {
        context::with_event(Event::Logout, Detail::Logout { reason, session_seconds }, || {
            fire::fire_all(Event::Logout, session_tag(Event::Logout), std::ptr::null_mut(), &firings, false)
        })
    })
}

/// Fires the logout triggers of a session that logged in (the callback that calls this is
/// registered only once login has succeeded). Runs inside `proc_exit`: output goes to the server
/// log only, errors are FATAL (the backend is exiting anyway) and are logged with the trigger's
/// name, and the logout timeout cuts off a slow trigger.
pub fn logout(exit_code: i32) {
    if !gucs::enabled() {
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
    if let Err(error) = fire_logout(known, database, generation, reason) {
        // Raised here, where no Rust value is live, as FATAL: the backend is exiting, and an ERROR
        // rethrown now would go to the main loop's handler, which is still installed.
        error.raise_fatal();
    }
    // SAFETY: TopMemoryContext outlives the transaction.
    if let Err(error) = commit_transaction(unsafe { pg_sys::TopMemoryContext }) {
        error.raise_fatal();
    }
    // SAFETY: restores the interrupt holdoff proc_exit set.
    unsafe { pg_sys::InterruptHoldoffCount = held_interrupts };
}
