//! Logins refused by login_trigger, on record. A refused login rolls back whatever its triggers
//! wrote, so the refusal is kept where failed authentications are: a LOG line, and (with
//! `shared_preload_libraries`) a ring of the most recent ones in shared memory, sized by
//! `login_trigger.max_refused_logins`, shown newest first by `login_trigger.refused_logins`.
//!
//! A login is refused by any FATAL while its login triggers fire (`hooks::session` knows when):
//! a trigger's or `login_function`'s error, the login time limit, an error at commit, a bug of
//! ours. The emit_log hook reports it here with the error being raised; which function refused
//! comes from `fire`, which notes it when a login function's error propagates, or, for a FATAL
//! inside a call, from the calls in progress (`trigger_stats`). Everything read
//! here is the connection's own (its `Port`, `application_name`): no catalog access while the
//! backend is failing.

use crate::fixed_text::FixedText;
use crate::port::Connection;
use crate::shared_memory;
use pgrx::datum::TimestampWithTimeZone;
use pgrx::prelude::*;
use std::cell::RefCell;
use std::ffi::CStr;

const TRANCHE: &CStr = c"login_trigger_refused_logins";
const NAME: &CStr = c"login_trigger refused logins";

#[derive(Clone, Copy)]
#[repr(C)]
struct Refused {
    at: pg_sys::TimestampTz,
    sqlstate: i32,
    by_function: bool,
    user: FixedText<64>,
    database: FixedText<64>,
    application: FixedText<64>,
    client: FixedText<64>,
    function: FixedText<128>,
    message: FixedText<256>,
}

/// The ring's header; `capacity` records follow it.
#[repr(C)]
struct Ring {
    lock: *mut pg_sys::LWLock,
    /// Refusals recorded since the server started (or the last reset); the ring holds the last
    /// `capacity`.
    recorded: u64,
    capacity: u64,
}

impl Ring {
    fn records(&mut self) -> &mut [Refused] {
        // SAFETY: `capacity` records follow the header in the structure sized by
        // `request_shared_memory`; the caller holds the lock.
        unsafe {
            let first = (self as *mut Ring).add(1).cast::<Refused>();
            std::slice::from_raw_parts_mut(first, self.capacity as usize)
        }
    }
}

static mut RING: *mut Ring = std::ptr::null_mut();

fn size() -> usize {
    std::mem::size_of::<Ring>() + capacity() as usize * std::mem::size_of::<Refused>()
}

fn capacity() -> u64 {
    crate::gucs::max_refused_logins() as u64
}

pub fn request_shared_memory() {
    shared_memory::request(size(), TRANCHE);
}

pub fn attach_shared_memory() {
    let create = |ring: *mut Ring, lock| {
        // SAFETY: the new structure of `size()` bytes: the header, then zeroed records (all-zero
        // is a valid record of integers and texts).
        unsafe {
            ring.write(Ring { lock, recorded: 0, capacity: capacity() });
            (*ring).records().as_mut_ptr().write_bytes(0, capacity() as usize);
        }
    };
    // SAFETY: the pointer into shared memory is the same in every backend (fork).
    let attach = |ring: *mut Ring| unsafe { RING = ring };
    shared_memory::attach(NAME, size(), TRANCHE, create, attach);
}

fn ring() -> Option<&'static mut Ring> {
    // SAFETY: set once by the startup hook; lives as long as shared memory.
    unsafe { RING.as_mut() }
}

thread_local! {
    /// The function whose error is refusing this login: a trigger's name, or None for
    /// `login_function`.
    static REFUSING: RefCell<Option<Option<String>>> = const { RefCell::new(None) };
}

/// Called by `fire` when a login function's error is about to refuse the connection.
pub fn note_refusing_function(trigger: Option<&str>) {
    REFUSING.set(Some(trigger.map(str::to_owned)));
}

/// Called by the emit_log hook with the FATAL that refuses a login.
pub fn record(error: &pg_sys::ErrorData) {
    let connection = Connection::current();
    let text = |value: Option<String>| value.unwrap_or_default();
    let user = text(connection.and_then(|c| c.user_name()));
    let database = text(connection.and_then(|c| c.database_name()));
    let client = connection.and_then(|c| c.remote_host()).unwrap_or_else(|| "[local]".into());
    // SAFETY: reads a setting of this backend by name; NULL if it does not exist.
    let application =
        text(crate::context::cstr(unsafe { pg_sys::GetConfigOption(c"application_name".as_ptr(), true, false) }));
    let message = text(crate::context::cstr(error.message));
    // The function whose error propagated, else the one a FATAL ended (pg_terminate_backend).
    let refusing = REFUSING.take().or_else(crate::trigger_stats::running_login_function);
    let by = match &refusing {
        Some(Some(trigger)) => format!(" by trigger \"{trigger}\""),
        Some(None) => " by login_trigger.login_function".to_owned(),
        None => String::new(),
    };
    crate::error::log_line(format!(
        "login_trigger: login refused for user \"{user}\" to database \"{database}\" from {client} \
         (application \"{application}\"){by}: {message}"
    ));
    let Some(ring) = ring() else {
        return;
    };
    let record = Refused {
        // SAFETY: reads the clock.
        at: unsafe { pg_sys::GetCurrentTimestamp() },
        sqlstate: error.sqlerrcode,
        by_function: refusing.is_some(),
        user: FixedText::new(&user),
        database: FixedText::new(&database),
        application: FixedText::new(&application),
        client: FixedText::new(if client == "[local]" { "" } else { &client }),
        function: FixedText::new(match &refusing {
            Some(Some(trigger)) => trigger,
            _ => "login_function",
        }),
        message: FixedText::new(&message),
    };
    let lock = ring.lock;
    shared_memory::locked(lock, pg_sys::LWLockMode::LW_EXCLUSIVE, || {
        let slot = (ring.recorded % ring.capacity) as usize;
        ring.records()[slot] = record;
        ring.recorded += 1;
    });
}

/// The most recent refused logins, newest first.
#[pg_extern(volatile, parallel_restricted)]
fn refused_logins() -> TableIterator<
    'static,
    (
        name!(at, Option<TimestampWithTimeZone>),
        name!(user_name, String),
        name!(database_name, String),
        name!(application_name, String),
        name!(client_addr, Option<String>),
        name!(trigger_name, Option<String>),
        name!(sqlstate, String),
        name!(message, String),
    ),
> {
    shared_memory::require();
    let Some(ring) = ring() else {
        return TableIterator::new(Vec::new());
    };
    let lock = ring.lock;
    // Allocated before the lock is taken: nothing allocates while it is held.
    let mut kept = Vec::with_capacity(ring.capacity as usize);
    shared_memory::locked(lock, pg_sys::LWLockMode::LW_SHARED, || {
        let (recorded, capacity) = (ring.recorded, ring.capacity);
        let records = ring.records();
        kept.extend((0..recorded.min(capacity)).map(|back| records[((recorded - 1 - back) % capacity) as usize]));
    });
    let rows = kept.into_iter().map(|refused| {
        let client = refused.client.as_str();
        (
            TimestampWithTimeZone::try_from(refused.at).ok(),
            refused.user.as_str().to_owned(),
            refused.database.as_str().to_owned(),
            refused.application.as_str().to_owned(),
            (!client.is_empty()).then(|| client.to_owned()),
            refused.by_function.then(|| refused.function.as_str().to_owned()),
            crate::pg_ext::sqlstate_text(refused.sqlstate),
            refused.message.as_str().to_owned(),
        )
    });
    TableIterator::new(rows.collect::<Vec<_>>())
}

/// Forgets every recorded refusal. EXECUTE is revoked from PUBLIC: superusers, and roles a
/// superuser grants it to.
#[pg_extern(volatile, parallel_restricted)]
fn reset_refused_logins() {
    shared_memory::require();
    if let Some(ring) = ring() {
        let lock = ring.lock;
        shared_memory::locked(lock, pg_sys::LWLockMode::LW_EXCLUSIVE, || ring.recorded = 0);
    }
}
