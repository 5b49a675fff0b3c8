//! `ProcessUtility_hook`: one thin wrapper per PostgreSQL signature (13 has no `readOnlyTree`),
//! each packing its arguments into [`Utility`] for the version-independent [`process_utility`],
//! which hands `ddl` a plain description of the statement and a callback that runs it, and
//! chains to the previous hook.
//!
//! The wrappers are not `#[pg_guard]`ed: [`process_utility`] guards the Rust work itself, so that
//! the command's own errors (and its triggers') reach the client exactly as raised (see
//! `boundary`).

use crate::pg_ext;
use crate::{boundary, ddl, registry};
use pgrx::prelude::*;

static mut PREVIOUS: pg_sys::ProcessUtility_hook_type = None;

pub fn init() {
    // SAFETY: _PG_init, single-threaded; the previous hook is saved before ours replaces it.
    unsafe {
        PREVIOUS = pg_sys::ProcessUtility_hook;
        pg_sys::ProcessUtility_hook = Some(process_utility_hook);
    }
}

/// The arguments of one `ProcessUtility` call, whatever the server version, and the hook that
/// runs the command after ours.
pub struct Utility {
    pub next: pg_sys::ProcessUtility_hook_type,
    pub pstmt: *mut pg_sys::PlannedStmt,
    pub query_string: *const std::ffi::c_char,
    #[cfg(not(feature = "pg13"))]
    pub read_only_tree: bool,
    pub context: pg_sys::ProcessUtilityContext::Type,
    pub params: pg_sys::ParamListInfo,
    pub query_env: *mut pg_sys::QueryEnvironment,
    pub dest: *mut pg_sys::DestReceiver,
    pub qc: *mut pg_sys::QueryCompletion,
}

impl Utility {
    /// Runs the command: the previous hook if there is one, else standard_ProcessUtility. Called
    /// bare, not through pgrx's guard, so its error leaves exactly as PostgreSQL raised it.
    ///
    /// # Safety
    /// No value with a destructor may be live in any Rust frame between the caller and
    /// PostgreSQL's nearest error handler (a C boundary of `boundary`, or the caller of the hook).
    pub unsafe fn run(&self) {
        let next = self.next.unwrap_or(pg_ext::standard_ProcessUtility);
        // SAFETY: passes PostgreSQL's own arguments on unchanged to a function with this exact
        // signature (another library's hook or PostgreSQL's).
        unsafe {
            next(
                self.pstmt,
                self.query_string,
                #[cfg(not(feature = "pg13"))]
                self.read_only_tree,
                self.context,
                self.params,
                self.query_env,
                self.dest,
                self.qc,
            )
        }
    }
}

/// The hook's one version-independent body. Commands that fire no trigger (the vast majority:
/// every `BEGIN`, `SET`, `CALL`, `DO`, and DDL nobody watches) go straight to the next hook from
/// this frame, which owns nothing then. The others run under pgrx's guard for the Rust work, with
/// the command itself called through `boundary::catching`: its error (or a trigger's) comes back
/// as a value, the Rust frames unwind, and it is raised again here, untouched.
fn process_utility(utility: Utility) {
    // SAFETY: reads the planned statement PostgreSQL passed, valid for the call.
    let statement = unsafe {
        ddl::Statement {
            node: (*utility.pstmt).utilityStmt,
            query_string: utility.query_string,
            location: (*utility.pstmt).stmt_location,
            length: (*utility.pstmt).stmt_len,
            subcommand: utility.context == pg_sys::ProcessUtilityContext::PROCESS_UTILITY_SUBCOMMAND,
        }
    };
    // SAFETY: the guard turns an error or panic of the Rust work into a PostgreSQL ERROR. The
    // command is called as raised inside a C boundary that catches its error with every field.
    // One guarded call plans and, if something fires, runs: `None` means nothing fires.
    let outcome = unsafe {
        pgrx::pg_sys::submodules::panic::pgrx_extern_c_guard(|| {
            let plan = ddl::plan(&statement)?;
            Some(ddl::run(plan, &statement, || boundary::catching(pg_sys::CurrentMemoryContext, || utility.run())))
        })
    };
    match outcome {
        // SAFETY: nothing with a destructor is live in this frame or its callers' Rust frames
        // (the wrappers below hold only raw pointers).
        None => unsafe { utility.run() },
        // Nothing with a destructor is live here: the error leaves as it was raised.
        Some(Err(error)) => error.rethrow(),
        Some(Ok(())) => {}
    }
    after_command();
}

/// Reconciles the registrations' guards if the command changed event triggers; for every other
/// command (nearly all: `BEGIN`, `SET`, …) a thread-local read and nothing more.
fn after_command() {
    if registry::maintain::event_triggers_changed_since_reconciled() {
        // SAFETY: the guard turns an error or panic of the reconciliation into a PostgreSQL ERROR.
        unsafe { pgrx::pg_sys::submodules::panic::pgrx_extern_c_guard(registry::maintain::after_command) };
    }
}

#[cfg(feature = "pg13")]
unsafe extern "C-unwind" fn process_utility_hook(
    pstmt: *mut pg_sys::PlannedStmt,
    query_string: *const std::ffi::c_char,
    context: pg_sys::ProcessUtilityContext::Type,
    params: pg_sys::ParamListInfo,
    query_env: *mut pg_sys::QueryEnvironment,
    dest: *mut pg_sys::DestReceiver,
    qc: *mut pg_sys::QueryCompletion,
) {
    // SAFETY: reads the hook saved once in init.
    let next = unsafe { PREVIOUS };
    process_utility(Utility { next, pstmt, query_string, context, params, query_env, dest, qc });
}

#[cfg(not(feature = "pg13"))]
#[allow(clippy::too_many_arguments)]
unsafe extern "C-unwind" fn process_utility_hook(
    pstmt: *mut pg_sys::PlannedStmt,
    query_string: *const std::ffi::c_char,
    read_only_tree: bool,
    context: pg_sys::ProcessUtilityContext::Type,
    params: pg_sys::ParamListInfo,
    query_env: *mut pg_sys::QueryEnvironment,
    dest: *mut pg_sys::DestReceiver,
    qc: *mut pg_sys::QueryCompletion,
) {
    // SAFETY: reads the hook saved once in init.
    let next = unsafe { PREVIOUS };
    process_utility(Utility { next, pstmt, query_string, read_only_tree, context, params, query_env, dest, qc });
}

/// The session library's hand-over (src/session_library, rule 5a): a dormant session's library
/// loaded this one from inside its own ProcessUtility hook, because DDL registrations appeared.
/// The command has passed the hooks before that one already; it runs through ours with the
/// session library's next hook after it. Later commands reach our hook the ordinary way.
///
/// # Safety
/// Called by the session library with the arguments of its own ProcessUtility hook.
#[cfg(not(any(feature = "pg13", feature = "pg14")))]
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C-unwind" fn login_trigger_process_utility_handover(
    next: pg_sys::ProcessUtility_hook_type,
    pstmt: *mut pg_sys::PlannedStmt,
    query_string: *const std::ffi::c_char,
    read_only_tree: bool,
    context: pg_sys::ProcessUtilityContext::Type,
    params: pg_sys::ParamListInfo,
    query_env: *mut pg_sys::QueryEnvironment,
    dest: *mut pg_sys::DestReceiver,
    qc: *mut pg_sys::QueryCompletion,
) {
    process_utility(Utility { next, pstmt, query_string, read_only_tree, context, params, query_env, dest, qc });
}
