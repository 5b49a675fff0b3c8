//! A cluster-wide summary, in shared memory, of the databases known to have no login or logout
//! trigger — what `pg_database.dathasloginevt` is to native login triggers — so that a
//! connection to such a database opens no transaction at all, at login or at logout.
//!
//! Only with `shared_preload_libraries`, and never trusted on a hot standby (replayed registry
//! changes run no trigger to keep it current). An entry is written only by a session that read
//! the carrier tables, and only if no registry change committed meanwhile: every change resets the
//! whole summary right after it commits (the generation counter catches a reader that looked
//! before the commit and stores after it).

use pgrx::lwlock::PgLwLock;
use pgrx::prelude::*;
use pgrx::shmem::PGRXSharedMemory;
use std::cell::Cell;

/// How many databases the summary remembers; others are simply checked at every connection.
const DATABASES: usize = 128;

#[derive(Clone, Copy)]
#[repr(C)]
struct Summary {
    generation: u64,
    /// OIDs of databases known to have no login or logout registration (0: free slot).
    without_session_triggers: [u32; DATABASES],
    next_slot: usize,
}

// SAFETY: integers only; all-zero is the valid empty summary.
unsafe impl PGRXSharedMemory for Summary {}

impl Default for Summary {
    fn default() -> Self {
        Summary { generation: 0, without_session_triggers: [0; DATABASES], next_slot: 0 }
    }
}

// SAFETY: the name is unique to this extension.
static SUMMARY: PgLwLock<Summary> = unsafe { PgLwLock::new(c"login_trigger_session_summary") };

thread_local! {
    /// This transaction changed the registry (or created a database): reset at commit.
    static RESET_AT_COMMIT: Cell<bool> = const { Cell::new(false) };
    static CALLBACK_REGISTERED: Cell<bool> = const { Cell::new(false) };
}

/// Requests the shared memory; only possible while shared_preload_libraries load.
pub fn init() {
    if crate::loading::shared_preload() {
        pgrx::pg_shmem_init!(SUMMARY = Summary::default());
    }
}

fn usable() -> bool {
    // SAFETY: RecoveryInProgress reads shared state.
    crate::loading::shared_preload() && !unsafe { pg_sys::RecoveryInProgress() }
}

/// The summary's generation, to pass to [`remember`] after looking at the catalog.
pub fn generation() -> Option<u64> {
    usable().then(|| SUMMARY.share().generation)
}

/// Whether the database is known to have no login or logout trigger.
pub fn known_without_session_triggers(database: pg_sys::Oid) -> bool {
    usable() && SUMMARY.share().without_session_triggers.contains(&database.to_u32())
}

/// Remembers that the database has no login or logout trigger, as seen by a transaction that
/// started at `generation`; ignored if the registry changed since.
pub fn remember_without_session_triggers(database: pg_sys::Oid, generation: u64) {
    if !usable() {
        return;
    }
    let mut summary = SUMMARY.exclusive();
    if summary.generation != generation || summary.without_session_triggers.contains(&database.to_u32()) {
        return;
    }
    let slot = summary.next_slot;
    summary.without_session_triggers[slot] = database.to_u32();
    summary.next_slot = (slot + 1) % DATABASES;
}

/// Makes the summary forget everything once the current transaction commits (a registration
/// changed, or a database was created from a template that may hold registrations).
pub fn reset_at_commit() {
    if !crate::loading::shared_preload() {
        return;
    }
    RESET_AT_COMMIT.set(true);
    if !CALLBACK_REGISTERED.replace(true) {
        // SAFETY: registers a pg_guard'ed callback for the rest of this backend's life.
        unsafe { pg_sys::RegisterXactCallback(Some(on_transaction_end), std::ptr::null_mut()) };
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn on_transaction_end(event: pg_sys::XactEvent::Type, _arg: *mut std::ffi::c_void) {
    match event {
        // After the commit is visible to everyone: later readers see the change.
        pg_sys::XactEvent::XACT_EVENT_COMMIT | pg_sys::XactEvent::XACT_EVENT_PARALLEL_COMMIT
            if RESET_AT_COMMIT.replace(false) =>
        {
            let mut summary = SUMMARY.exclusive();
            summary.generation = summary.generation.wrapping_add(1);
            summary.without_session_triggers = [0; DATABASES];
        }
        pg_sys::XactEvent::XACT_EVENT_ABORT | pg_sys::XactEvent::XACT_EVENT_PARALLEL_ABORT => {
            RESET_AT_COMMIT.set(false);
        }
        _ => {}
    }
}
