//! What the structures in shared memory sized by a setting have in common (`trigger_stats`,
//! `refused_logins`): they exist only with `shared_preload_libraries`, are requested and created
//! in the postmaster the way PostgreSQL wants add-in memory requested and created, and are guarded
//! by one named LWLock each. Reading one without them is a clear error, never an empty answer.

use crate::error::Refusal;
use pgrx::PgSqlErrorCode;
use pgrx::prelude::*;
use std::ffi::CStr;

/// Whether this process has the library's shared memory.
pub fn available() -> bool {
    crate::loading::shared_preload()
}

/// Raises 55000 unless the library's shared memory exists.
pub fn require() {
    if !available() {
        Refusal::new(
            PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            "login_trigger statistics need shared_preload_libraries",
        )
        .detail("They are kept in shared memory, which only a library in shared_preload_libraries has.")
        .hint("Add login_trigger to shared_preload_libraries and restart the server.")
        .raise();
    }
}

/// Reserves `size` bytes and a named lock. Call from the shared-memory request hook (15+) or
/// `_PG_init` (13/14) of the postmaster.
pub fn request(size: usize, tranche: &'static CStr) {
    // SAFETY: called while the postmaster computes the shared memory size, as the API requires.
    unsafe {
        pg_sys::RequestAddinShmemSpace(size);
        pg_sys::RequestNamedLWLockTranche(tranche.as_ptr(), 1);
    }
}

/// Creates (in the postmaster) or finds the structure `name` of `size` bytes and, while
/// PostgreSQL's AddinShmemInitLock is held, runs `create(pointer, lock)` if it is new and
/// `attach(pointer)` in every case. Call from the shared-memory startup hook.
pub fn attach<T>(
    name: &'static CStr,
    size: usize,
    tranche: &'static CStr,
    create: impl FnOnce(*mut T, *mut pg_sys::LWLock),
    attach: impl FnOnce(*mut T),
) -> bool {
    // SAFETY: the startup hook runs with shared memory set up; AddinShmemInitLock (lock 21 of the
    // main array on every supported version) serialises the creation of add-in structures.
    unsafe {
        let init_lock = &raw mut (*pg_sys::MainLWLockArray.add(21)).lock;
        pg_sys::LWLockAcquire(init_lock, pg_sys::LWLockMode::LW_EXCLUSIVE);
        let mut found = false;
        let pointer = pg_sys::ShmemInitStruct(name.as_ptr(), size, &mut found).cast::<T>();
        if !found {
            create(pointer, &raw mut (*pg_sys::GetNamedLWLockTranche(tranche.as_ptr())).lock);
        }
        attach(pointer);
        pg_sys::LWLockRelease(init_lock);
        found
    }
}

/// Runs `work` under `lock`; `work` must not raise (the lock would stay held until the
/// transaction's abort releases it).
pub fn locked<R>(lock: *mut pg_sys::LWLock, mode: pg_sys::LWLockMode::Type, work: impl FnOnce() -> R) -> R {
    // SAFETY: a lock in shared memory, acquired and released around code that cannot raise.
    unsafe { pg_sys::LWLockAcquire(lock, mode) };
    let result = work();
    // SAFETY: as above.
    unsafe { pg_sys::LWLockRelease(lock) };
    result
}
