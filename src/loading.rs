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

/// Records how the library was loaded. Called first thing in `_PG_init`.
pub fn init() {
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
