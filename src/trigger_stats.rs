//! Per-trigger statistics, cluster-wide, in the manner of pg_stat_statements: a shared hash table
//! (PostgreSQL's dynahash, sized by `login_trigger.max_trigger_stats`) keyed by database, event
//! and trigger name, updated by every call on the one firing path (`fire`), read by the view
//! `login_trigger.trigger_stats`.
//!
//! * Every call counts once, when it ends: normally, with an error (the error's SQLSTATE and
//!   message are kept), or by a FATAL that ends the backend inside the call (the login or logout
//!   timeout, `pg_terminate_backend` during logout), which the emit_log hook reports here.
//! * A login trigger whose error refuses the connection also counts a refusal; one cut off by
//!   `login_trigger.login_timeout` counts a timeout and a refusal.
//! * The table is bounded: when it is full, the least recently used entry is evicted, and the
//!   evictions are counted (`login_trigger.stats_info`).
//! * Kept across a clean restart: the postmaster writes the table to
//!   `pg_stat/login_trigger_stats.stat` when it shuts down cleanly (smart or fast) and reads it
//!   back, then removes it, when it starts. After a crash (the postmaster re-creates shared
//!   memory) or an immediate shutdown the figures start afresh, as pg_stat_statements' do.
//! * Only with `shared_preload_libraries` (the table is shared memory); otherwise calls are not
//!   counted, and reading the view says so (SQLSTATE 55000).

use crate::event::Event;
use crate::fixed_text::FixedText;
use crate::shared_memory::{self, SavedFile};
use pgrx::datum::TimestampWithTimeZone;
use pgrx::prelude::*;
use std::cell::RefCell;
use std::ffi::CStr;
use std::time::Instant;

/// Long enough for a registered trigger's name (at most 63 bytes) and for the function name
/// `login_trigger.login_function` / `logout_function` fire under.
const NAME_BYTES: usize = 128;
/// How much of the last error's message is kept.
const MESSAGE_BYTES: usize = 256;

const TRANCHE: &CStr = c"login_trigger_stats";
const HEADER_NAME: &CStr = c"login_trigger trigger statistics";
const TABLE_NAME: &CStr = c"login_trigger trigger statistics table";
/// Relative to the data directory, the postmaster's working directory. The magic is "LTS" and the
/// layout version, which changes with `Entry`'s layout.
const FILE: SavedFile = SavedFile {
    path: c"pg_stat/login_trigger_stats.stat",
    temporary: c"pg_stat/login_trigger_stats.stat.tmp",
    magic: 0x4c54_5301,
};

/// What an entry counts: one trigger of one event in one database. Hashed as bytes, so it has no
/// implicit padding and its unused bytes are zero.
#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(C)]
struct Key {
    database: u32,
    event: u8,
    padding: [u8; 3],
    name: FixedText<NAME_BYTES>,
}

/// An entry of the table: plain data without implicit padding.
#[derive(Clone, Copy)]
#[repr(C)]
struct Entry {
    key: Key,
    calls: i64,
    errors: i64,
    refusals: i64,
    timeouts: i64,
    total_ms: f64,
    min_ms: f64,
    max_ms: f64,
    last_error_at: pg_sys::TimestampTz,
    last_sqlstate: i32,
    /// Explicit, so that the entry has no uninitialised bytes (the file writes them all).
    padding: u32,
    last_message: FixedText<MESSAGE_BYTES>,
    stats_since: pg_sys::TimestampTz,
    /// The table's clock when the entry was last used: the smallest is evicted first.
    last_used: u64,
}

/// The table's shared state beside the hash table, guarded by `lock`.
#[repr(C)]
struct Header {
    lock: *mut pg_sys::LWLock,
    /// Incremented by every use of an entry.
    clock: u64,
    evictions: i64,
    stats_reset: pg_sys::TimestampTz,
}

/// This process's pointers to the shared header and to its handle on the shared hash table (a
/// `HTAB` lives in each process's own memory, pointing into shared memory), set by the
/// shared-memory startup hook; null without `shared_preload_libraries`.
static mut HEADER: *mut Header = std::ptr::null_mut();
static mut TABLE: *mut pg_sys::HTAB = std::ptr::null_mut();

fn table() -> *mut pg_sys::HTAB {
    // SAFETY: set once by the startup hook, before any use of the header.
    unsafe { TABLE }
}

/// The `login_trigger.max_trigger_stats` value the table was sized with.
fn capacity() -> i64 {
    i64::from(crate::gucs::max_trigger_stats())
}

/// Reserves the shared memory and the lock. Called from the shared-memory request hook (15+) or
/// `_PG_init` (13/14) of the postmaster.
pub fn request_shared_memory() {
    // SAFETY: computes the size of the table of `capacity()` entries.
    let table = unsafe { pg_sys::hash_estimate_size(capacity() as _, std::mem::size_of::<Entry>()) };
    shared_memory::request(std::mem::size_of::<Header>() + table, TRANCHE);
}

/// Attaches to (in the postmaster: creates) the table; the postmaster also loads the file of the
/// last clean shutdown and arranges to write it at the next. Called from the shared-memory
/// startup hook.
pub fn attach_shared_memory() {
    let create = |header: *mut Header, lock| {
        // SAFETY: the new, uninitialised header in shared memory; reads the clock.
        unsafe { header.write(Header { lock, clock: 0, evictions: 0, stats_reset: pg_sys::GetCurrentTimestamp() }) };
    };
    let attach = |header: *mut Header| {
        // SAFETY: the HASHCTL describes `Entry`, whose first member is its `Key`, hashed as bytes;
        // ShmemInitHash creates the table in the postmaster and attaches to it elsewhere, giving
        // this process its own handle.
        unsafe {
            let mut info: pg_sys::HASHCTL = std::mem::zeroed();
            info.keysize = std::mem::size_of::<Key>();
            info.entrysize = std::mem::size_of::<Entry>();
            TABLE = pg_sys::ShmemInitHash(
                TABLE_NAME.as_ptr(),
                capacity() as _,
                capacity() as _,
                &mut info,
                (pg_sys::HASH_ELEM | pg_sys::HASH_BLOBS) as i32,
            );
            HEADER = header;
        }
    };
    let found = shared_memory::attach(HEADER_NAME, std::mem::size_of::<Header>(), TRANCHE, create, attach);
    FILE.keep_across_clean_restart(found, write_file_at_shutdown, load_file);
}

/// The shared state, if this process has it.
fn header() -> Option<&'static mut Header> {
    // SAFETY: set once by the startup hook; the header lives as long as shared memory. Callers
    // hold its lock while they touch what it guards.
    unsafe { HEADER.as_mut() }
}

fn key(database: pg_sys::Oid, event: Event, name: &str) -> Key {
    Key { database: database.to_u32(), event: event.index() as u8, padding: [0; 3], name: FixedText::new(name) }
}

/// The entry of `key`, created (evicting the least recently used one if the table is full) if it
/// is new; `None` only if shared memory ran out all the same, when the call goes uncounted rather
/// than failing. The caller holds the lock exclusively.
fn entry_for(header: &mut Header, key: &Key, now: impl FnOnce() -> pg_sys::TimestampTz) -> Option<&'static mut Entry> {
    // SAFETY: the table is the shared dynahash of `Entry`s; the caller holds its lock exclusively.
    unsafe {
        let mut found = false;
        let mut entry =
            pg_sys::hash_search(table(), (key as *const Key).cast(), pg_sys::HASHACTION::HASH_FIND, &mut found)
                .cast::<Entry>();
        if entry.is_null() {
            if pg_sys::hash_get_num_entries(table()) as i64 >= capacity() {
                evict_least_recently_used(header);
            }
            entry = pg_sys::hash_search(
                table(),
                (key as *const Key).cast(),
                pg_sys::HASHACTION::HASH_ENTER_NULL,
                &mut found,
            )
            .cast::<Entry>();
            if entry.is_null() {
                return None;
            }
            entry.write(Entry {
                key: *key,
                calls: 0,
                errors: 0,
                refusals: 0,
                timeouts: 0,
                total_ms: 0.0,
                min_ms: 0.0,
                max_ms: 0.0,
                last_error_at: 0,
                last_sqlstate: 0,
                padding: 0,
                last_message: FixedText::new(""),
                stats_since: now(),
                last_used: 0,
            });
        }
        header.clock += 1;
        (*entry).last_used = header.clock;
        Some(&mut *entry)
    }
}

fn evict_least_recently_used(header: &mut Header) {
    let mut oldest: Option<Key> = None;
    let mut oldest_use = u64::MAX;
    for_each_entry(|entry| {
        if entry.last_used < oldest_use {
            oldest_use = entry.last_used;
            oldest = Some(entry.key);
        }
    });
    if let Some(key) = oldest {
        remove(&key);
        header.evictions += 1;
    }
}

/// Removes the entry of an existing key; the caller holds the lock exclusively.
fn remove(key: &Key) {
    // SAFETY: HASH_REMOVE of a key of the shared table under its exclusive lock.
    unsafe {
        pg_sys::hash_search(table(), (key as *const Key).cast(), pg_sys::HASHACTION::HASH_REMOVE, std::ptr::null_mut());
    }
}

/// Calls `visit` with every entry; the caller holds the lock (in either mode).
fn for_each_entry(mut visit: impl FnMut(&mut Entry)) {
    // SAFETY: a complete sequential scan of the shared table, which nobody changes meanwhile.
    unsafe {
        let mut scan: pg_sys::HASH_SEQ_STATUS = std::mem::zeroed();
        pg_sys::hash_seq_init(&mut scan, table());
        loop {
            let entry = pg_sys::hash_seq_search(&mut scan).cast::<Entry>();
            if entry.is_null() {
                break;
            }
            visit(&mut *entry);
        }
    }
}

/// Runs `work` under the table's lock.
fn locked<R>(header: &mut Header, mode: pg_sys::LWLockMode::Type, work: impl FnOnce(&mut Header) -> R) -> R {
    let lock = header.lock;
    shared_memory::locked(lock, mode, || work(header))
}

/// How a call ended.
pub enum Outcome<'a> {
    Success,
    Error { sqlstate: i32, message: &'a str, refused: bool, timed_out: bool },
}

/// Counts a call of `key` that started at `started` and ends now. Its duration comes from the
/// monotonic clock; the time of day is read only for what shows it (a new entry's `stats_since`,
/// `last_error_at`).
fn record(key: &Key, started: Instant, outcome: Outcome) {
    let Some(header) = header() else {
        return;
    };
    let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    // SAFETY: reads the clock.
    let now = || unsafe { pg_sys::GetCurrentTimestamp() };
    locked(header, pg_sys::LWLockMode::LW_EXCLUSIVE, |header| {
        let Some(entry) = entry_for(header, key, now) else {
            return;
        };
        entry.calls += 1;
        entry.total_ms += elapsed_ms;
        entry.min_ms = if entry.calls == 1 { elapsed_ms } else { entry.min_ms.min(elapsed_ms) };
        entry.max_ms = entry.max_ms.max(elapsed_ms);
        if let Outcome::Error { sqlstate, message, refused, timed_out } = outcome {
            entry.errors += 1;
            entry.refusals += i64::from(refused);
            entry.timeouts += i64::from(timed_out);
            entry.last_error_at = now();
            entry.last_sqlstate = sqlstate;
            entry.last_message = FixedText::new(message);
        }
    });
}

/// A call in progress in this backend, for a FATAL that ends the backend inside it.
#[derive(Clone, Copy)]
struct RunningCall {
    key: Key,
    started: Instant,
    from_setting: bool,
}

thread_local! {
    /// The calls in progress, outermost first: a DDL trigger run by a trigger's own DDL is nested
    /// in that trigger's call.
    static RUNNING: RefCell<Vec<RunningCall>> = const { RefCell::new(Vec::new()) };
}

/// One call of a trigger function, from its start to [`Call::finish`], on the stack of calls in
/// progress until it is dropped.
pub struct Call {
    running: RunningCall,
}

impl Call {
    /// `from_setting`: the function of `login_function` / `logout_function`, fired under `name`.
    pub fn start(event: Event, name: &str, from_setting: bool) -> Call {
        let running = RunningCall {
            // SAFETY: reads a backend-local variable.
            key: key(unsafe { pg_sys::MyDatabaseId }, event, name),
            started: Instant::now(),
            from_setting,
        };
        RUNNING.with_borrow_mut(|stack| stack.push(running));
        Call { running }
    }

    pub fn finish(self, outcome: Outcome) {
        record(&self.running.key, self.running.started, outcome);
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        RUNNING.with_borrow_mut(|stack| stack.pop());
    }
}

/// The outermost login call in progress: the function a FATAL now refuses the login in, as
/// `Some(name)` for a trigger and `None` for `login_function`.
pub fn running_login_function() -> Option<Option<String>> {
    RUNNING.with_borrow(|stack| {
        let call = stack.iter().find(|call| call.key.event == Event::Login.index() as u8)?;
        Some((!call.from_setting).then(|| call.key.name.as_str().to_owned()))
    })
}

/// Called by the emit_log hook for a FATAL: the backend ends inside every call in progress, and
/// each is counted now, with the error (a login call's also as a refusal); `timed_out` when the
/// login or logout time limit ended it, a timeout of the session event's calls.
pub fn fatal_during_call(error: &pg_sys::ErrorData, timed_out: bool) {
    let running = RUNNING.take();
    if running.is_empty() {
        return;
    }
    let message = crate::context::cstr(error.message).unwrap_or_default();
    for call in running {
        let event = Event::ALL[usize::from(call.key.event)];
        let outcome = Outcome::Error {
            sqlstate: error.sqlerrcode,
            message: &message,
            refused: event == Event::Login,
            timed_out: timed_out && event.is_session_event(),
        };
        record(&call.key, call.started, outcome);
    }
}

/// What the file of a clean shutdown keeps beside the entries.
#[derive(Clone, Copy)]
#[repr(C)]
struct SavedTotals {
    evictions: i64,
    stats_reset: pg_sys::TimestampTz,
}

#[pg_guard]
unsafe extern "C-unwind" fn write_file_at_shutdown(code: i32, _arg: pg_sys::Datum) {
    let Some(header) = header() else {
        return;
    };
    FILE.save(code, || {
        let mut entries = Vec::new();
        for_each_entry(|entry| entries.push(*entry));
        (SavedTotals { evictions: header.evictions, stats_reset: header.stats_reset }, entries)
    });
}

/// Reads the entries the last clean shutdown saved into the (new, empty) table.
fn load_file() {
    let Some((totals, entries)) = FILE.take::<SavedTotals, Entry>() else {
        return;
    };
    let Some(header) = header() else {
        return;
    };
    header.evictions = totals.evictions;
    header.stats_reset = totals.stats_reset;
    // No lock: the postmaster runs alone while it creates shared memory.
    // SAFETY: reads the clock.
    let now = unsafe { pg_sys::GetCurrentTimestamp() };
    for saved in entries {
        if let Some(entry) = entry_for(header, &saved.key, || now) {
            *entry = Entry { last_used: entry.last_used, ..saved };
        }
    }
}

fn timestamp(value: pg_sys::TimestampTz) -> Option<TimestampWithTimeZone> {
    (value != 0).then(|| TimestampWithTimeZone::try_from(value).ok()).flatten()
}

/// Every entry of the table (the view `login_trigger.trigger_stats` names the database).
#[pg_extern(volatile, parallel_restricted)]
fn trigger_stats() -> TableIterator<
    'static,
    (
        name!(dbid, pg_sys::Oid),
        name!(trigger_name, String),
        name!(event, String),
        name!(calls, i64),
        name!(total_time, f64),
        name!(min_time, f64),
        name!(max_time, f64),
        name!(mean_time, f64),
        name!(errors, i64),
        name!(refusals, i64),
        name!(timeouts, i64),
        name!(last_error_at, Option<TimestampWithTimeZone>),
        name!(last_error, Option<String>),
        name!(stats_since, Option<TimestampWithTimeZone>),
    ),
> {
    shared_memory::require();
    let Some(header) = header() else {
        return TableIterator::new(Vec::new());
    };
    // Allocated before the lock is taken, for every entry the table can hold.
    let mut entries = Vec::with_capacity(capacity() as usize);
    locked(header, pg_sys::LWLockMode::LW_SHARED, |_| for_each_entry(|entry| entries.push(*entry)));
    let rows = entries.into_iter().map(|entry| {
        (
            pg_sys::Oid::from(entry.key.database),
            entry.key.name.as_str().to_owned(),
            Event::ALL[usize::from(entry.key.event)].name().to_owned(),
            entry.calls,
            entry.total_ms,
            entry.min_ms,
            entry.max_ms,
            if entry.calls > 0 { entry.total_ms / entry.calls as f64 } else { 0.0 },
            entry.errors,
            entry.refusals,
            entry.timeouts,
            timestamp(entry.last_error_at),
            (entry.errors > 0).then(|| {
                format!("{}: {}", crate::pg_ext::sqlstate_text(entry.last_sqlstate), entry.last_message.as_str())
            }),
            timestamp(entry.stats_since),
        )
    });
    TableIterator::new(rows.collect::<Vec<_>>())
}

/// The table itself: how many entries were evicted, and when it was last reset as a whole.
#[pg_extern(volatile, parallel_restricted)]
fn stats_info() -> TableIterator<'static, (name!(evictions, i64), name!(stats_reset, Option<TimestampWithTimeZone>))> {
    shared_memory::require();
    let Some(header) = header() else {
        return TableIterator::new(Vec::new());
    };
    let row = locked(header, pg_sys::LWLockMode::LW_SHARED, |header| (header.evictions, timestamp(header.stats_reset)));
    TableIterator::once(row)
}

/// Forgets the figures of the trigger `name` in the current database (every event it is
/// registered for), or, without a name, of every trigger of the cluster, the evictions too.
/// Returns the time of the reset. EXECUTE is revoked from PUBLIC: superusers, and roles a
/// superuser grants it to.
#[pg_extern(volatile, parallel_restricted)]
fn reset_trigger_stats(name: default!(Option<&str>, "NULL")) -> Option<TimestampWithTimeZone> {
    shared_memory::require();
    let header = header()?;
    // SAFETY: reads the clock and a backend-local variable.
    let (now, database) = unsafe { (pg_sys::GetCurrentTimestamp(), pg_sys::MyDatabaseId) };
    // Allocated before the lock is taken, for every entry the table can hold.
    let mut doomed = Vec::with_capacity(capacity() as usize);
    locked(header, pg_sys::LWLockMode::LW_EXCLUSIVE, |header| {
        for_each_entry(|entry| {
            let matches =
                name.is_none_or(|name| entry.key.database == database.to_u32() && entry.key.name.as_str() == name);
            if matches {
                doomed.push(entry.key);
            }
        });
        for key in doomed.drain(..) {
            remove(&key);
        }
        if name.is_none() {
            header.evictions = 0;
            header.stats_reset = now;
        }
    });
    timestamp(now)
}

// The entry's fields add up to its size: no implicit padding.
const _: () =
    assert!(std::mem::size_of::<Entry>() == std::mem::size_of::<Key>() + 8 * 8 + 4 + 4 + MESSAGE_BYTES + 8 + 8);
