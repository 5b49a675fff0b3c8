//! `shmem_request_hook` (PostgreSQL 15+) and `shmem_startup_hook`, for the shared structures whose
//! size comes from a setting (`trigger_stats`, `refused_logins`, `lockout`); the fixed-size ones
//! are pgrx's `pg_shmem_init!`. Installed only with `shared_preload_libraries`, the one way to
//! have shared memory. On 13 and 14 the request is made from `_PG_init`, as PostgreSQL required
//! then. The previous hook runs first.

use crate::{lockout, refused_logins, trigger_stats};
use pgrx::prelude::*;

#[cfg(not(any(feature = "pg13", feature = "pg14")))]
static mut PREVIOUS_REQUEST: pg_sys::shmem_request_hook_type = None;
static mut PREVIOUS_STARTUP: pg_sys::shmem_startup_hook_type = None;

pub fn init() {
    if !crate::shared_memory::available() {
        return;
    }
    // SAFETY: _PG_init, single-threaded; each previous hook is saved before ours replaces it.
    unsafe {
        #[cfg(not(any(feature = "pg13", feature = "pg14")))]
        {
            PREVIOUS_REQUEST = pg_sys::shmem_request_hook;
            pg_sys::shmem_request_hook = Some(shmem_request);
        }
        #[cfg(any(feature = "pg13", feature = "pg14"))]
        request();
        PREVIOUS_STARTUP = pg_sys::shmem_startup_hook;
        pg_sys::shmem_startup_hook = Some(shmem_startup);
    }
}

#[cfg(not(any(feature = "pg13", feature = "pg14")))]
#[pg_guard]
unsafe extern "C-unwind" fn shmem_request() {
    // SAFETY: the previous hook takes no arguments.
    unsafe {
        if let Some(previous) = PREVIOUS_REQUEST {
            pg_sys::submodules::ffi::pg_guard_ffi_boundary(|| previous());
        }
    }
    request();
}

/// Reserves every structure's memory and lock, in the postmaster.
fn request() {
    trigger_stats::request_shared_memory();
    refused_logins::request_shared_memory();
    lockout::request_shared_memory();
}

#[pg_guard]
unsafe extern "C-unwind" fn shmem_startup() {
    // SAFETY: the previous hook takes no arguments.
    unsafe {
        if let Some(previous) = PREVIOUS_STARTUP {
            pg_sys::submodules::ffi::pg_guard_ffi_boundary(|| previous());
        }
    }
    trigger_stats::attach_shared_memory();
    refused_logins::attach_shared_memory();
    lockout::attach_shared_memory();
}
