//! How the library got into this process, decided once in `_PG_init` and read by every module
//! that depends on it: only preloaded libraries fire login, and only `shared_preload_libraries`
//! gives shared memory (failed authentications, the summary of databases without session triggers).

use pgrx::pg_sys;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loaded {
    SharedPreload,
    SessionPreload,
    OnDemand,
}

// Set in _PG_init; with shared_preload_libraries, inherited by every backend through fork.
static mut LOADED: Loaded = Loaded::OnDemand;

unsafe extern "C-unwind" {
    /// src/shim/session_state.c: what this library and the session library
    /// (src/session_library) tell each other.
    fn login_trigger_note_library_loaded();
    fn login_trigger_session_dormant() -> bool;
    fn login_trigger_dormant_last_fatal() -> std::ffi::c_int;
}

/// Records how the library was loaded, and tells the session library it is here. Called first
/// thing in `_PG_init`.
pub fn init() {
    // SAFETY: allocates the shared state once (TopMemoryContext) and sets a flag in it.
    unsafe { pg_sys::submodules::ffi::pg_guard_ffi_boundary(|| login_trigger_note_library_loaded()) };
    // SAFETY: _PG_init is single-threaded. process_shared_preload_libraries_in_progress is set
    // while the postmaster loads shared libraries; InitPostgres runs session libraries in
    // InitProcessing mode on 15+; on 13/14 they load outside any transaction, whereas loading on
    // demand (CREATE EXTENSION, LOAD, a function call) happens inside one.
    unsafe {
        LOADED = if pg_sys::process_shared_preload_libraries_in_progress {
            Loaded::SharedPreload
        } else if session_preload_in_progress() {
            Loaded::SessionPreload
        } else {
            Loaded::OnDemand
        };
    }
}

/// Whether this library was loaded mid-session into a session the session library started
/// *dormant* (nothing to fire at login): the session has logged in, and its logout is ours.
pub fn joins_dormant_session() -> bool {
    // SAFETY: reads the shared state allocated by init.
    loaded() == Loaded::OnDemand && unsafe { login_trigger_session_dormant() }
}

/// The SQLSTATE of the last FATAL the session library saw while the session was dormant.
pub fn dormant_last_fatal() -> Option<i32> {
    // SAFETY: reads the shared state allocated by init.
    Some(unsafe { login_trigger_dormant_last_fatal() }).filter(|sqlstate| *sqlstate != 0)
}

pub fn loaded() -> Loaded {
    // SAFETY: written only in _PG_init.
    unsafe { LOADED }
}

/// Whether the library came from `shared_preload_libraries`, so its shared memory exists.
pub fn shared_preload() -> bool {
    loaded() == Loaded::SharedPreload
}

#[cfg(any(feature = "pg13", feature = "pg14"))]
fn session_preload_in_progress() -> bool {
    // SAFETY: reads transaction state.
    unsafe { !pg_sys::IsTransactionState() && pg_sys::IsUnderPostmaster }
}

#[cfg(not(any(feature = "pg13", feature = "pg14")))]
fn session_preload_in_progress() -> bool {
    // SAFETY: reads the backend's processing mode.
    unsafe { pg_sys::Mode == pg_sys::ProcessingMode::InitProcessing && pg_sys::IsUnderPostmaster }
}

/// With `shared_preload_libraries`, loads PL/pgSQL into the postmaster, so that every backend
/// inherits it already initialised. Login triggers are PL/pgSQL functions as a rule, and a
/// backend's first PL/pgSQL call otherwise opens the library and runs its `_PG_init` — on
/// PostgreSQL 15 and older each of its five settings re-sorts every setting of the server — which
/// was about nine tenths of what a trivial login trigger added to a connection (callgrind,
/// PostgreSQL 15: 2.3 of 2.6 million instructions). A native login event trigger pays it in every
/// backend. The same as listing `plpgsql` in `shared_preload_libraries`, which PostgreSQL supports:
/// every session then has the `plpgsql.*` settings and PL/pgSQL's transaction callbacks from the
/// start, as any session that has called a PL/pgSQL function has.
pub fn preload_plpgsql() {
    if !shared_preload() {
        return;
    }
    // SAFETY: called from _PG_init in the postmaster while it loads shared libraries, as
    // process_shared_preload_libraries would load the library itself; the name is NUL-terminated
    // and names the library as pg_proc.probin does, whatever dynamic_library_path says.
    unsafe { pg_sys::load_file(c"$libdir/plpgsql".as_ptr(), false) };
}
