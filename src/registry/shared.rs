//! A cluster-wide summary, in shared memory, of each database's login and logout triggers — what
//! `pg_database.dathasloginevt` and the event-trigger cache are to native login triggers — so
//! that a connection opens no transaction at login or logout when its database has no such
//! trigger, and reads no catalog (no registry query, no relcache entry for the registry table)
//! when it has some.
//!
//! Only with `shared_preload_libraries`, and never trusted on a hot standby (replayed registry
//! changes run no trigger to keep it current). An entry is written only by a session that read
//! the registry, and only if no registry change committed meanwhile: every change (a row of the
//! registry, a database created from a template, the registry itself dropped) resets the whole
//! summary right after it commits, and the generation counter catches a reader that looked
//! before the commit and stores after it. A database with more triggers per event than an entry
//! holds is simply read from the registry at every connection.

use crate::event::TriggerState;
use crate::registry::cache::Registration;
use pgrx::lwlock::PgLwLock;
use pgrx::prelude::*;
use pgrx::shmem::PGRXSharedMemory;
use std::cell::Cell;

/// How many databases the summary remembers; others are read from their registry at every
/// connection.
const DATABASES: usize = 64;
/// How many login (and logout) triggers an entry holds.
const TRIGGERS_PER_EVENT: usize = 8;
/// A trigger name is at most `NAMEDATALEN - 1` bytes (registration checks it).
const NAME_BYTES: usize = pg_sys::NAMEDATALEN as usize;

#[derive(Clone, Copy)]
#[repr(C)]
struct SharedTrigger {
    function: u32,
    state: u8,
    name_len: u8,
    name: [u8; NAME_BYTES],
}

/// Which database a slot holds and how many login and logout triggers it has: the part every
/// connection reads, kept apart from the trigger lists and small (one page for all slots),
/// because each page of shared memory a backend touches is a page fault in every new backend.
#[derive(Clone, Copy, Default)]
#[repr(C)]
struct DatabaseIndex {
    /// 0: a free slot.
    database: u32,
    /// Per session event (login, logout): how many of the slot's triggers are used.
    counts: [u8; 2],
}

/// The login and logout triggers of the database in the same slot of the index.
#[derive(Clone, Copy)]
#[repr(C)]
struct DatabaseEntry {
    triggers: [[SharedTrigger; TRIGGERS_PER_EVENT]; 2],
}

impl Default for DatabaseEntry {
    fn default() -> Self {
        // SAFETY: integers and arrays of integers only; zero is valid for each.
        unsafe { std::mem::zeroed() }
    }
}

#[derive(Clone, Copy)]
#[repr(C)]
struct Summary {
    generation: u64,
    index: [DatabaseIndex; DATABASES],
    next_slot: usize,
    entries: [DatabaseEntry; DATABASES],
}

// SAFETY: plain integers and byte arrays; all-zero is the valid empty summary.
unsafe impl PGRXSharedMemory for Summary {}

impl Default for Summary {
    fn default() -> Self {
        // SAFETY: every field is an integer or an array of integers, for which zero is valid.
        unsafe { std::mem::zeroed() }
    }
}

// SAFETY: the name is unique to this extension.
static SUMMARY: PgLwLock<Summary> = unsafe { PgLwLock::new(c"login_trigger_session_summary") };

thread_local! {
    /// This transaction changed the registry (or created a database): reset at commit.
    static RESET_AT_COMMIT: Cell<bool> = const { Cell::new(false) };
    static CALLBACK_REGISTERED: Cell<bool> = const { Cell::new(false) };
}

/// The login and logout triggers of one database (enabled ones, in firing order; the session's
/// replication role still decides which of them fire).
#[derive(Debug, Default, Clone)]
pub struct SessionTriggers {
    pub login: Vec<Registration>,
    pub logout: Vec<Registration>,
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

/// The summary's generation, to pass to [`remember`] after reading the registry.
pub fn generation() -> Option<u64> {
    usable().then(|| SUMMARY.share().generation)
}

/// The database's session triggers, if the summary knows them.
pub fn session_triggers(database: pg_sys::Oid) -> Option<SessionTriggers> {
    if !usable() {
        return None;
    }
    let summary = SUMMARY.share();
    let slot = summary.index.iter().position(|known| known.database == database.to_u32())?;
    let counts = summary.index[slot].counts;
    let registrations = |event: usize| -> Vec<Registration> {
        if counts[event] == 0 {
            return Vec::new();
        }
        summary.entries[slot].triggers[event][..usize::from(counts[event])]
            .iter()
            .filter_map(|trigger| {
                Some(Registration {
                    name: String::from_utf8_lossy(&trigger.name[..usize::from(trigger.name_len)]).into_owned(),
                    function: pg_sys::Oid::from(trigger.function),
                    state: TriggerState::from_letter(char::from(trigger.state))?,
                    tags: None,
                })
            })
            .collect()
    };
    Some(SessionTriggers { login: registrations(0), logout: registrations(1) })
}

/// Remembers the database's session triggers, as read by a transaction that started at
/// `generation`; ignored if the registry changed since, or if they do not fit in an entry.
pub fn remember(database: pg_sys::Oid, generation: u64, triggers: &SessionTriggers) {
    if !usable() {
        return;
    }
    let mut known = DatabaseIndex { database: database.to_u32(), counts: [0; 2] };
    let mut entry = DatabaseEntry::default();
    for (event, registrations) in [&triggers.login, &triggers.logout].into_iter().enumerate() {
        if registrations.len() > TRIGGERS_PER_EVENT {
            return;
        }
        for (slot, registration) in entry.triggers[event].iter_mut().zip(registrations) {
            let name = registration.name.as_bytes();
            if name.len() >= NAME_BYTES {
                return;
            }
            slot.function = registration.function.to_u32();
            slot.state = registration.state.letter() as u8;
            slot.name_len = name.len() as u8;
            slot.name[..name.len()].copy_from_slice(name);
        }
        known.counts[event] = registrations.len() as u8;
    }
    let mut summary = SUMMARY.exclusive();
    if summary.generation != generation || summary.index.iter().any(|other| other.database == known.database) {
        return;
    }
    let slot = summary.next_slot;
    summary.index[slot] = known;
    summary.entries[slot] = entry;
    summary.next_slot = (slot + 1) % DATABASES;
}

/// Makes the summary forget everything once the current transaction commits (a registration
/// changed, the registry was dropped, or a database was created from a template that may hold
/// registrations).
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
            summary.index = [DatabaseIndex::default(); DATABASES];
            summary.next_slot = 0;
        }
        pg_sys::XactEvent::XACT_EVENT_ABORT | pg_sys::XactEvent::XACT_EVENT_PARALLEL_ABORT => {
            RESET_AT_COMMIT.set(false);
        }
        _ => {}
    }
}
