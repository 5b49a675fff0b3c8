//! Authentication events. The ClientAuthentication hook (`hooks::client_auth`, active when the
//! library is in `shared_preload_libraries`) reports every outcome here:
//!
//! * a success leaves the method and identity for the session's login context;
//! * a failure (not the client hanging up mid-handshake) is written to the server log and kept in
//!   bounded shared memory: a ring of the most recent failures and a table of counters per
//!   user name and client address, shown by `login_trigger.auth_failures` and
//!   `login_trigger.auth_failure_counts`.
//!
//! Everything on the hook's path is infallible and allocation-light: it runs before the client is
//! told the result, and an error there would refuse the login.

use crate::error::Refusal;
use crate::fixed_text::FixedText as Text;
use crate::port::{Connection, STATUS_ERROR, STATUS_OK};
use pgrx::PgSqlErrorCode;
use pgrx::datum::TimestampWithTimeZone;
use pgrx::lwlock::PgLwLock;
use pgrx::prelude::*;
use pgrx::shmem::PGRXSharedMemory;
use std::cell::RefCell;

/// How many recent failures are kept, and how many (user, address) pairs are counted.
const RECENT_FAILURES: usize = 512;
const COUNTED_PAIRS: usize = 512;

#[derive(Clone, Copy)]
#[repr(C)]
struct Failure {
    at: pg_sys::TimestampTz,
    user: Text<64>,
    database: Text<64>,
    client: Text<64>,
    method: Text<32>,
}

#[derive(Clone, Copy)]
#[repr(C)]
struct Counter {
    user: Text<64>,
    client: Text<64>,
    failures: i64,
    first: pg_sys::TimestampTz,
    last: pg_sys::TimestampTz,
}

#[derive(Clone, Copy)]
#[repr(C)]
struct FailureLog {
    /// Failures recorded since the server started; the ring holds the last RECENT_FAILURES.
    recorded: u64,
    recent: [Failure; RECENT_FAILURES],
    counters: [Counter; COUNTED_PAIRS],
    counted: usize,
}

// SAFETY: plain-old-data (integers and byte arrays), no pointers, valid when zeroed.
unsafe impl PGRXSharedMemory for FailureLog {}

impl Default for FailureLog {
    fn default() -> Self {
        // SAFETY: every field is an integer or a byte array, for which all-zero is valid.
        unsafe { std::mem::zeroed() }
    }
}

// SAFETY: the name is unique to this extension.
static FAILURE_LOG: PgLwLock<FailureLog> = unsafe { PgLwLock::new(c"login_trigger_auth_failures") };

/// Requests the shared memory; only possible while shared_preload_libraries load.
pub fn init() {
    if shared_memory() {
        pgrx::pg_shmem_init!(FAILURE_LOG = FailureLog::default());
    }
}

fn shared_memory() -> bool {
    crate::loading::shared_preload()
}

/// What authentication established for this session.
#[derive(Debug, Clone, Default)]
struct SessionAuth {
    method: Option<String>,
    identity: Option<String>,
}

thread_local! {
    static SESSION: RefCell<SessionAuth> = RefCell::new(SessionAuth::default());
}

/// Called by the ClientAuthentication hook with the outcome of one authentication.
pub fn on_authentication(port: *mut pg_sys::libpq::be::Port, status: i32) {
    let Some(connection) = Connection::from_port(port) else { return };
    match status {
        STATUS_OK => {
            SESSION.set(SessionAuth { method: connection.auth_method(), identity: connection.auth_identity() });
        }
        STATUS_ERROR => record_failure(
            connection.user_name().as_deref(),
            connection.database_name().as_deref(),
            connection.remote_host().as_deref(),
            connection.auth_method().as_deref(),
        ),
        // STATUS_EOF: the client hung up mid-handshake (psql does so before asking for a password).
        _ => {}
    }
}

fn record_failure(user: Option<&str>, database: Option<&str>, client: Option<&str>, method: Option<&str>) {
    let (user, database, client, method) =
        (user.unwrap_or(""), database.unwrap_or(""), client.unwrap_or(""), method.unwrap_or(""));
    crate::error::log_line(format!(
        "login_trigger: authentication failed for user \"{user}\" to database \"{database}\" from {client} (method {method})"
    ));
    if !shared_memory() {
        return;
    }
    // SAFETY: reads the clock.
    let now = unsafe { pg_sys::GetCurrentTimestamp() };
    let mut log = FAILURE_LOG.exclusive();
    let slot = (log.recorded % RECENT_FAILURES as u64) as usize;
    log.recent[slot] = Failure {
        at: now,
        user: Text::new(user),
        database: Text::new(database),
        client: Text::new(client),
        method: Text::new(method),
    };
    log.recorded += 1;
    let counted = log.counted;
    let known = log.counters[..counted].iter().position(|c| c.user.as_str() == user && c.client.as_str() == client);
    match known {
        Some(index) => {
            log.counters[index].failures += 1;
            log.counters[index].last = now;
        }
        None => {
            // A new pair takes a free slot, or the one whose last failure is oldest.
            let index = if counted < COUNTED_PAIRS {
                log.counted += 1;
                counted
            } else {
                (0..COUNTED_PAIRS).min_by_key(|&index| log.counters[index].last).unwrap_or(0)
            };
            log.counters[index] =
                Counter { user: Text::new(user), client: Text::new(client), failures: 1, first: now, last: now };
        }
    }
}

/// The authentication facts of this session for the login context: method and identity
/// (method only when the ClientAuthentication hook saw the login, i.e. with
/// shared_preload_libraries; identity from PostgreSQL itself on 14+), and TLS.
pub fn session_facts() -> (Option<String>, Option<String>, bool) {
    let session = SESSION.with_borrow(Clone::clone);
    let connection = Connection::current();
    let identity = connection.and_then(|c| c.auth_identity());
    (session.method, session.identity.or(identity), connection.is_some_and(|c| c.ssl()))
}

fn require_shared_memory() {
    if !shared_memory() {
        Refusal::new(
            PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            "authentication failures are recorded only when login_trigger is in shared_preload_libraries",
        )
        .hint("Add login_trigger to shared_preload_libraries and restart the server.")
        .raise();
    }
}

fn timestamp(value: pg_sys::TimestampTz) -> Option<TimestampWithTimeZone> {
    TimestampWithTimeZone::try_from(value).ok()
}

/// The most recent failed authentications, newest first.
#[pg_extern(volatile, parallel_restricted)]
fn auth_failures() -> TableIterator<
    'static,
    (
        name!(at, Option<TimestampWithTimeZone>),
        name!(user_name, String),
        name!(database_name, String),
        name!(client_addr, String),
        name!(method, String),
    ),
> {
    require_shared_memory();
    let log = FAILURE_LOG.share();
    let kept = log.recorded.min(RECENT_FAILURES as u64);
    let rows: Vec<_> = (0..kept)
        .map(|back| {
            let failure = &log.recent[((log.recorded - 1 - back) % RECENT_FAILURES as u64) as usize];
            (
                timestamp(failure.at),
                failure.user.as_str().to_owned(),
                failure.database.as_str().to_owned(),
                failure.client.as_str().to_owned(),
                failure.method.as_str().to_owned(),
            )
        })
        .collect();
    TableIterator::new(rows)
}

/// Failed authentications counted per user name and client address since the server started
/// (or the last reset), most failures first.
#[pg_extern(volatile, parallel_restricted)]
fn auth_failure_counts() -> TableIterator<
    'static,
    (
        name!(user_name, String),
        name!(client_addr, String),
        name!(failures, i64),
        name!(first_failure, Option<TimestampWithTimeZone>),
        name!(last_failure, Option<TimestampWithTimeZone>),
    ),
> {
    require_shared_memory();
    let log = FAILURE_LOG.share();
    let mut rows: Vec<_> = log.counters[..log.counted]
        .iter()
        .map(|c| {
            (
                c.user.as_str().to_owned(),
                c.client.as_str().to_owned(),
                c.failures,
                timestamp(c.first),
                timestamp(c.last),
            )
        })
        .collect();
    rows.sort_by(|a, b| b.2.cmp(&a.2).then_with(|| a.0.cmp(&b.0)).then_with(|| a.1.cmp(&b.1)));
    TableIterator::new(rows)
}

/// Forgets every recorded failure (superusers only).
#[pg_extern(volatile, parallel_restricted)]
fn reset_auth_failures() {
    crate::registry::validate::require_superuser("reset authentication failures")
        .unwrap_or_else(|refusal| refusal.raise());
    require_shared_memory();
    *FAILURE_LOG.exclusive() = FailureLog::default();
}
