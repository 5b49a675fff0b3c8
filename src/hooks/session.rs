//! Session start and end.
//!
//! Start: the GUC `login_trigger.login_status` is marked `GUC_REPORT`, so PostgreSQL asks for its
//! value (through its show hook) in `BeginReportingGUCOptions`, once, right after `InitPostgres`
//! and before the client can send a query, in every client backend that has the library loaded
//! by then: from `shared_preload_libraries` and, on PostgreSQL 15+, from
//! `session_preload_libraries`. On 16+ that call comes from inside a scan of the GUC hash table,
//! so login is deferred to the report made just before the first `ReadyForQuery`. On 13 and 14 session libraries load after that point, so
//! `_PG_init` fires login itself, outside any transaction. docs/design.md has the alternatives
//! and why they were rejected.
//!
//! End: a `before_shmem_exit` callback, registered once login has fired.

use crate::loading::{self, Loaded};
use crate::{boundary, pg_ext, session};
use pgrx::prelude::*;
use pgrx::{GucContext, GucFlags, GucRegistry, GucSetting};
use std::cell::Cell;
use std::ffi::{CString, c_char};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Pending,
    /// PostgreSQL 16+: asked for from inside a scan of the GUC hash table, where a transaction
    /// must not end; login fires at the next report, just before the first ReadyForQuery.
    Deferred,
    Firing,
    Fired,
    Skipped,
}

thread_local! {
    static STATUS: Cell<Status> = const { Cell::new(Status::Pending) };
}

/// The reported setting whose show hook is the session-start hook. Its value tells clients
/// whether login triggers ran for their session.
static LOGIN_STATUS: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);

pub fn init() {
    // SAFETY: the show hook is a pg_guard'ed extern "C-unwind" fn returning a static string.
    unsafe {
        GucRegistry::define_string_guc_with_hooks(
            c"login_trigger.login_status",
            c"Whether login triggers ran for this session (reported to the client).",
            c"pending before login, fired once login triggers have run, skipped when they did not \
              apply (walsenders, login_trigger.enabled = off, the library loaded mid-session).",
            &LOGIN_STATUS,
            GucContext::Internal,
            GucFlags::REPORT | GucFlags::NOT_WHILE_SEC_REST | GucFlags::DISALLOW_IN_FILE,
            None,
            None,
            Some(show_login_status),
        );
    }
    #[cfg(any(feature = "pg13", feature = "pg14"))]
    if loading::loaded() == Loaded::SessionPreload {
        on_session_start();
    }
    // SAFETY: reads a backend-local flag.
    if loading::joins_dormant_session() && !unsafe { pg_sys::proc_exit_inprogress } {
        // The session logged in with nothing to fire; from now on its logout is ours (the
        // session library's rule 5b). Loaded while the backend exits, the session library fires
        // logout itself, through login_trigger_dormant_logout.
        adopt_dormant_fatal();
        STATUS.set(Status::Fired);
        // SAFETY: registers a callback run once while this backend exits.
        unsafe { pg_sys::before_shmem_exit(Some(on_backend_exit), pg_sys::Datum::from(0)) };
    }
}

/// The SQLSTATE of a FATAL the session library saw while the session was dormant, for the
/// logout reason.
fn adopt_dormant_fatal() {
    if let Some(sqlstate) = loading::dormant_last_fatal() {
        session::note_fatal(sqlstate);
    }
}

/// The logout of a session the session library kept dormant to its end (its rule 5c).
#[unsafe(no_mangle)]
#[pg_guard]
pub unsafe extern "C-unwind" fn login_trigger_dormant_logout(code: i32) {
    adopt_dormant_fatal();
    session::logout(code);
}

/// Whether this process is a client backend at the start of its session.
fn is_client_session_start() -> bool {
    // SAFETY: reads backend-local globals.
    unsafe {
        loading::loaded() != Loaded::OnDemand
            && pg_sys::IsUnderPostmaster
            && !pg_ext::am_walsender
            && !pg_sys::IsBinaryUpgrade
            && pg_sys::MyBackendType == pg_sys::BackendType::B_BACKEND
            && pg_sys::MyDatabaseId != pg_sys::Oid::INVALID
            && !pg_sys::IsTransactionOrTransactionBlock()
            && pg_sys::whereToSendOutput == pg_sys::CommandDest::DestRemote
    }
}

/// PostgreSQL 16 keeps settings in a hash table and reports them from inside a scan of it
/// (`BeginReportingGUCOptions`); committing a transaction there ends the scan under its feet.
const REPORTED_FROM_HASH_SCAN: bool = cfg!(any(feature = "pg16", feature = "pg17", feature = "pg18"));

fn on_session_start() {
    match STATUS.get() {
        Status::Pending if !is_client_session_start() => STATUS.set(Status::Skipped),
        Status::Pending if REPORTED_FROM_HASH_SCAN => {
            STATUS.set(Status::Deferred);
            // Changing the setting puts it on the list ReportChangedGUCOptions reports (and so
            // asks us again) right before the first ReadyForQuery, outside any scan.
            // SAFETY: sets an internal string setting without hooks; no hash entry is added.
            unsafe {
                pg_sys::SetConfigOption(
                    c"login_trigger.login_status".as_ptr(),
                    c"pending".as_ptr(),
                    pg_sys::GucContext::PGC_INTERNAL,
                    pg_sys::GucSource::PGC_S_OVERRIDE,
                )
            };
        }
        Status::Pending | Status::Deferred => fire_login(),
        Status::Firing | Status::Fired | Status::Skipped => {}
    }
}

/// Fires login, refusing the connection on any failure (session.rs states the contract). The
/// logout callback is registered only once login has succeeded: "this session logged in" is
/// that registration and the `Fired` status, nothing else.
fn fire_login() {
    STATUS.set(Status::Firing);
    boundary::fatal_on_error(|| {
        if let Err(error) = session::login() {
            error.rethrow();
        }
    });
    // SAFETY: registers a callback run once while this backend exits.
    unsafe { pg_sys::before_shmem_exit(Some(on_backend_exit), pg_sys::Datum::from(0)) };
    STATUS.set(Status::Fired);
}

/// Whether this backend's login triggers are firing now: a FATAL now refuses the connection.
pub fn login_firing() -> bool {
    STATUS.get() == Status::Firing
}

#[pg_guard]
unsafe extern "C-unwind" fn show_login_status() -> *const c_char {
    on_session_start();
    match STATUS.get() {
        Status::Pending | Status::Deferred => c"pending".as_ptr(),
        Status::Firing | Status::Fired => c"fired".as_ptr(),
        Status::Skipped => c"skipped".as_ptr(),
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn on_backend_exit(code: i32, _arg: pg_sys::Datum) {
    session::logout(code);
}
