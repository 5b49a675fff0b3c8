//! Account lockout: after `login_trigger.lockout_threshold` consecutive failed authentications a
//! user (or, with `lockout_scope = user_address`, a user from one client address) is locked, in
//! shared memory, until `lockout_duration` has passed or a superuser unlocks it. Decided in the
//! ClientAuthentication hook (`hooks::client_auth`), with `shared_preload_libraries` only. The
//! rules, in the order they are applied to each authentication the hook sees:
//!
//! 1. Off (`lockout_threshold = 0`): nothing is counted and nobody is refused.
//! 2. A client that hung up before answering the password request (`STATUS_EOF`: psql's first,
//!    password-less try) is not an attempt.
//! 3. A role in `lockout_exempt_roles`, and a superuser connecting over a Unix-domain socket, is
//!    never counted nor refused, so that the cluster cannot be locked out.
//! 4. A lock older than `lockout_duration` (when it is not 0) is lifted first, with a LOG line.
//! 5. Success: a locked account is refused exactly as a wrong password is (`auth_failed`'s
//!    severity, SQLSTATE, message and source location; `src/shim/lockout.c`), the server log's
//!    DETAIL saying it is locked; the hooks installed before ours (auth_delay) see it as a
//!    failure. Otherwise the count starts again from zero.
//! 6. Failure, for a role that exists (a name that is not a role is never counted: locking it
//!    would guard nothing and fill the table): one more failure, unless it is the client's
//!    automatic retry of the same attempt: from the same address, over the other transport
//!    (libpq's `sslmode=prefer` retries without TLS, `allow` with it), within a second of a
//!    failure over the first. At the
//!    threshold the account is locked, with a LOG line. PostgreSQL refuses the failure itself.
//! 7. The table holds 1,024 accounts; a new one takes a free slot or the unlocked one whose last
//!    failure is oldest; when every slot is locked, the failure is not counted (LOG line).
//!
//! Nothing is written to a table, so it works on a hot standby, each server counting its own.
//! The state is kept across a clean restart like `trigger_stats` (`shared_memory::SavedFile`).
//! 8. With `scram-sha-256`, PostgreSQL queues its final SASL message (the server's signature,
//!    proof that the password was right) before the hook runs. While lockout is on it is held
//!    back until the hook has decided (`src/shim/lockout.c` wraps the protocol output, from the
//!    postmaster on), then passed on if authentication succeeded, and dropped if it failed (a
//!    locked account, a client certificate refused after the password): a client reading the
//!    protocol itself gets, message for message, what a wrong password gets.

use crate::fixed_text::FixedText;
use crate::gucs::{self, LockoutScope};
use crate::port::{Connection, STATUS_ERROR, STATUS_OK};
use crate::shared_memory::{self, SavedFile};
use pgrx::datum::TimestampWithTimeZone;
use pgrx::prelude::*;
use std::ffi::{CStr, CString, c_char};

unsafe extern "C-unwind" {
    fn login_trigger_hold_sasl_final();
    fn login_trigger_settle_sasl_final(send: bool);
}

/// Wraps the protocol output so that the final SCRAM message waits for the verdict (rule 8).
/// Called where `shared_preload_libraries` are loaded: in the postmaster, whose backends inherit
/// the wrapper from their first message on (and, with `EXEC_BACKEND`, in each backend, before it
/// authenticates).
pub fn hold_sasl_final() {
    // SAFETY: _PG_init, single-threaded, before this process or its children authenticate a
    // client; the wrapper keeps the methods it replaces and passes everything else on to them.
    unsafe { login_trigger_hold_sasl_final() }
}

/// For the protocol wrapper: whether lockout is on (a final SCRAM message is held only then).
/// Reads a setting's variable; never raises.
#[unsafe(no_mangle)]
pub extern "C-unwind" fn login_trigger_lockout_on() -> bool {
    gucs::lockout_threshold() > 0
}

const ACCOUNTS: usize = 1024;
const TRANCHE: &CStr = c"login_trigger_lockout";
const NAME: &CStr = c"login_trigger lockout";
/// The magic is "LTL" and the layout version.
const FILE: SavedFile = SavedFile {
    path: c"pg_stat/login_trigger_lockout.stat",
    temporary: c"pg_stat/login_trigger_lockout.stat.tmp",
    magic: 0x4c54_4c01,
};
/// How soon after a failure the same client's attempt over the other transport is its automatic
/// retry (libpq retries at once).
const RETRY_WINDOW_US: i64 = 1_000_000;

/// One counted user, or user and client address. Plain data without implicit padding.
#[derive(Clone, Copy)]
#[repr(C)]
struct Account {
    user: FixedText<64>,
    /// Empty with `lockout_scope = user`, and for Unix-socket clients.
    client: FixedText<64>,
    failures: i64,
    last_failure_at: pg_sys::TimestampTz,
    /// 0: not locked.
    locked_at: pg_sys::TimestampTz,
    /// The address of the last counted failure, its transport (1: TLS), and whether a failure
    /// from the same address over the other transport may still be its retry.
    last_failure_client: FixedText<64>,
    in_use: u8,
    last_failure_tls: u8,
    retry_pending: u8,
    padding: [u8; 5],
}

/// Where PostgreSQL's `auth_failed` reports from (the ErrorResponse's F, L and R fields), as
/// this server last reported it; a locked account's refusal reports the same.
#[derive(Clone, Copy)]
#[repr(C)]
struct Location {
    known: u32,
    lineno: i32,
    filename: FixedText<64>,
    funcname: FixedText<64>,
}

#[repr(C)]
struct Table {
    lock: *mut pg_sys::LWLock,
    location: Location,
    accounts: [Account; ACCOUNTS],
}

/// What the file of a clean shutdown keeps beside the accounts: the location, valid for the
/// same server version only.
#[derive(Clone, Copy)]
#[repr(C)]
struct SavedLocation {
    server_version: i32,
    padding: i32,
    location: Location,
}

static mut TABLE: *mut Table = std::ptr::null_mut();

fn table() -> Option<&'static mut Table> {
    // SAFETY: set once by the startup hook; lives as long as shared memory. Callers hold its
    // lock while they touch the accounts.
    unsafe { TABLE.as_mut() }
}

pub fn request_shared_memory() {
    shared_memory::request(std::mem::size_of::<Table>(), TRANCHE);
}

pub fn attach_shared_memory() {
    let create = |table: *mut Table, lock| {
        // SAFETY: the new structure: zero is a valid empty table (integers and texts).
        unsafe {
            table.write_bytes(0, 1);
            (*table).lock = lock;
        }
    };
    // SAFETY: the pointer into shared memory is the same in every backend (fork).
    let attach = |table: *mut Table| unsafe { TABLE = table };
    let found = shared_memory::attach(NAME, std::mem::size_of::<Table>(), TRANCHE, create, attach);
    FILE.keep_across_clean_restart(found, save_at_shutdown, restore);
}

#[pg_guard]
unsafe extern "C-unwind" fn save_at_shutdown(code: i32, _arg: pg_sys::Datum) {
    let Some(table) = table() else {
        return;
    };
    FILE.save(code, || {
        let accounts = table.accounts.iter().filter(|account| account.in_use != 0).copied().collect();
        (
            SavedLocation { server_version: pg_sys::PG_VERSION_NUM as i32, padding: 0, location: table.location },
            accounts,
        )
    });
}

/// Loads the accounts the last clean shutdown saved (the postmaster alone runs: no lock).
fn restore() {
    let Some((saved, accounts)) = FILE.take::<SavedLocation, Account>() else {
        return;
    };
    let Some(table) = table() else {
        return;
    };
    if saved.server_version == pg_sys::PG_VERSION_NUM as i32 {
        table.location = saved.location;
    }
    for (slot, account) in table.accounts.iter_mut().zip(accounts) {
        *slot = account;
    }
}

/// Called by the emit_log hook for every FATAL: remembers where PostgreSQL's own `auth_failed`
/// reports from.
pub fn note_reporting_location(error: &pg_sys::ErrorData) {
    let Some(table) = table() else {
        return;
    };
    let funcname = crate::context::cstr(error.funcname).unwrap_or_default();
    // Line 0 is our own refusal before PostgreSQL's location was known.
    if funcname != "auth_failed" || error.lineno == 0 {
        return;
    }
    let filename = crate::context::cstr(error.filename).unwrap_or_default();
    let location = Location {
        known: 1,
        lineno: error.lineno,
        filename: FixedText::new(&filename),
        funcname: FixedText::new(&funcname),
    };
    let lock = table.lock;
    shared_memory::locked(lock, pg_sys::LWLockMode::LW_EXCLUSIVE, || table.location = location);
}

/// What the ClientAuthentication hook is to do with a connection, decided before the hooks
/// installed before ours run, so that they see a locked account's authentication as the failure
/// it is reported as (auth_delay delays it like any wrong password).
pub enum Verdict {
    Accept,
    Refuse(Box<Refusal>),
}

pub struct Refusal {
    user: String,
    client: String,
    failures: i64,
    locked_at: pg_sys::TimestampTz,
    location: Location,
}

impl Verdict {
    /// The status the other hooks are to see.
    pub fn status(&self, status: i32) -> i32 {
        match self {
            Verdict::Accept => status,
            Verdict::Refuse(_) => STATUS_ERROR,
        }
    }

    /// Passes PostgreSQL's held final SCRAM message on when authentication succeeded (`status`,
    /// PostgreSQL's) and this verdict accepts it; drops it otherwise, for a locked account as for
    /// any other failure after the password (rule 8). Call it before any other hook can send a
    /// message.
    pub fn settle_sasl_final(&self, status: i32) {
        // SAFETY: backend-local state of the protocol wrapper; a message passed on goes through
        // PostgreSQL's own methods, which report a broken connection as COMMERROR and return.
        unsafe { login_trigger_settle_sasl_final(self.status(status) == STATUS_OK) }
    }

    /// Refuses a locked account (raises FATAL); does nothing otherwise.
    pub fn enforce(self, port: *mut pg_sys::libpq::be::Port) {
        if let Verdict::Refuse(refusal) = self {
            refuse(port, &refusal);
        }
    }
}

/// What happened to an account under the lock, logged once it is released (nothing allocates
/// while the lock is held).
#[derive(Clone, Copy)]
enum Change {
    Unlocked,
    Locked(i64),
    TableFull,
}

/// Rule 3: whether this connection's user is never counted nor locked.
fn exempt(user: &str, role: pg_sys::Oid, over_socket: bool) -> bool {
    let listed = gucs::lockout_exempt_roles()
        .and_then(|list| crate::function_name::identifiers(&list, b','))
        .is_some_and(|names| names.iter().any(|name| name.as_bytes() == user.as_bytes()));
    // SAFETY: superuser_arg reads the role's pg_authid row through the syscache, which
    // authentication has just used to read its password.
    listed || (over_socket && role != pg_sys::Oid::INVALID && unsafe { pg_sys::superuser_arg(role) })
}

fn duration_us() -> i64 {
    i64::from(gucs::lockout_duration_s()) * 1_000_000
}

fn who(user: &str, client: &str) -> String {
    if client.is_empty() { format!("user \"{user}\"") } else { format!("user \"{user}\" from {client}") }
}

/// Called by the ClientAuthentication hook with every outcome, before the earlier hooks; see the
/// module header.
pub fn on_authentication(port: *mut pg_sys::libpq::be::Port, status: i32) -> Verdict {
    let threshold = i64::from(gucs::lockout_threshold());
    if threshold == 0 || (status != STATUS_OK && status != STATUS_ERROR) {
        return Verdict::Accept;
    }
    let (Some(table), Some(connection)) = (table(), Connection::from_port(port)) else {
        return Verdict::Accept;
    };
    let Some(user) = connection.user_name() else {
        return Verdict::Accept;
    };
    let host = connection.remote_host().unwrap_or_default();
    let over_socket = host == "[local]";
    let user_c = CString::new(user.as_str()).unwrap_or_default();
    // SAFETY: a syscache lookup by name, as authentication itself makes; missing_ok.
    let role = unsafe { pg_sys::get_role_oid(user_c.as_ptr(), true) };
    if exempt(&user, role, over_socket) {
        return Verdict::Accept;
    }
    let address = if over_socket { "" } else { host.as_str() };
    let client = if gucs::lockout_scope() == LockoutScope::UserAddress { address } else { "" };
    let key = (FixedText::<64>::new(&user), FixedText::<64>::new(client));
    let from = FixedText::<64>::new(address);
    let tls = u8::from(connection.ssl());
    let duration_us = duration_us();
    // SAFETY: reads the clock.
    let now = unsafe { pg_sys::GetCurrentTimestamp() };
    let mut changes: [Option<Change>; 2] = [None, None];
    let lock = table.lock;
    let locked_account = shared_memory::locked(lock, pg_sys::LWLockMode::LW_EXCLUSIVE, || {
        let mut index =
            table.accounts.iter().position(|account| account.in_use != 0 && (account.user, account.client) == key);
        // Rule 4.
        if let Some(i) = index {
            let account = &mut table.accounts[i];
            if account.locked_at != 0 && duration_us > 0 && now >= account.locked_at + duration_us {
                changes[0] = Some(Change::Unlocked);
                account.in_use = 0;
                index = None;
            }
        }
        if status == STATUS_OK {
            // Rule 5.
            let i = index?;
            let account = table.accounts[i];
            if account.locked_at != 0 {
                return Some((account, table.location));
            }
            table.accounts[i].in_use = 0;
            return None;
        }
        // Rule 6.
        if role == pg_sys::Oid::INVALID {
            return None;
        }
        let Some(i) = index.or_else(|| take_slot(&mut table.accounts)) else {
            changes[1] = Some(Change::TableFull);
            return None;
        };
        let account = &mut table.accounts[i];
        if account.in_use == 0 {
            *account = Account {
                user: key.0,
                client: key.1,
                failures: 0,
                last_failure_at: 0,
                locked_at: 0,
                last_failure_client: from,
                in_use: 1,
                last_failure_tls: tls,
                retry_pending: 0,
                padding: [0; 5],
            };
        }
        let retry = account.retry_pending != 0
            && account.last_failure_client == from
            && account.last_failure_tls != tls
            && now - account.last_failure_at < RETRY_WINDOW_US;
        if retry {
            account.retry_pending = 0;
        } else {
            account.failures += 1;
            account.retry_pending = 1;
            account.last_failure_tls = tls;
            account.last_failure_client = from;
        }
        account.last_failure_at = now;
        if account.locked_at == 0 && account.failures >= threshold {
            account.locked_at = now;
            changes[1] = Some(Change::Locked(account.failures));
        }
        None
    });
    let whom = who(&user, client);
    for change in changes.into_iter().flatten() {
        crate::error::log_line(match change {
            Change::Unlocked => format!("login_trigger: {whom} unlocked: login_trigger.lockout_duration has passed"),
            Change::Locked(failures) => {
                format!("login_trigger: {whom} locked after {failures} consecutive failed authentications")
            }
            Change::TableFull => format!(
                "login_trigger: failed authentication of {whom} not counted: all {ACCOUNTS} lockout slots hold locked accounts"
            ),
        });
    }
    match locked_account {
        Some((account, location)) => Verdict::Refuse(Box::new(Refusal {
            user,
            client: client.to_owned(),
            failures: account.failures,
            locked_at: account.locked_at,
            location,
        })),
        None => Verdict::Accept,
    }
}

/// Rule 7: a free slot, else the unlocked account whose last failure is oldest.
fn take_slot(accounts: &mut [Account]) -> Option<usize> {
    if let Some(free) = accounts.iter().position(|account| account.in_use == 0) {
        return Some(free);
    }
    let oldest = accounts
        .iter()
        .enumerate()
        .filter(|(_, account)| account.locked_at == 0)
        .min_by_key(|(_, account)| account.last_failure_at)
        .map(|(index, _)| index)?;
    accounts[oldest].in_use = 0;
    Some(oldest)
}

unsafe extern "C-unwind" {
    /// src/shim/lockout.c: raises FATAL as auth.c's auth_failed does.
    fn login_trigger_refuse_as_failed_authentication(
        port: *const pg_sys::libpq::be::Port,
        filename: *const c_char,
        lineno: i32,
        funcname: *const c_char,
        log_detail: *const c_char,
    );
}

fn refuse(port: *mut pg_sys::libpq::be::Port, refusal: &Refusal) -> ! {
    let since = crate::context::cstr(
        // SAFETY: timestamptz_to_str formats into a static buffer, copied at once.
        unsafe { pg_sys::timestamptz_to_str(refusal.locked_at) },
    )
    .unwrap_or_default();
    let detail = format!(
        "The account of {} is locked by login_trigger since {since}, after {} failed authentications; \
         the password was not the reason. Unlock it with login_trigger.unlock_account().",
        who(&refusal.user, &refusal.client),
        refusal.failures
    );
    // Until PostgreSQL has reported a failed authentication itself, its location is the one
    // auth.c has in every supported version's function name, without a line.
    let location = &refusal.location;
    let (filename, lineno, funcname) = if location.known != 0 {
        (location.filename.as_str().to_owned(), location.lineno, location.funcname.as_str().to_owned())
    } else {
        ("auth.c".to_owned(), 0, "auth_failed".to_owned())
    };
    let [filename, funcname, detail] = [filename, funcname, detail].map(|text| CString::new(text).unwrap_or_default());
    // SAFETY: the Port is the hook's live one, with its pg_hba.conf line; the strings are
    // NUL-terminated and outlive the call, which raises FATAL and does not return.
    unsafe {
        pg_sys::submodules::ffi::pg_guard_ffi_boundary(|| {
            login_trigger_refuse_as_failed_authentication(
                port,
                filename.as_ptr(),
                lineno,
                funcname.as_ptr(),
                detail.as_ptr(),
            )
        });
    }
    unreachable!("login_trigger_refuse_as_failed_authentication returned")
}

/// The locked accounts (superusers only).
#[pg_extern(volatile, parallel_restricted)]
fn locked_accounts() -> TableIterator<
    'static,
    (
        name!(user_name, String),
        name!(client_addr, Option<String>),
        name!(failures, i64),
        name!(locked_at, Option<TimestampWithTimeZone>),
        name!(unlocks_at, Option<TimestampWithTimeZone>),
    ),
> {
    crate::registry::validate::require_superuser("read locked accounts").unwrap_or_else(|refusal| refusal.raise());
    shared_memory::require();
    let Some(table) = table() else {
        return TableIterator::new(Vec::new());
    };
    let duration_us = duration_us();
    // SAFETY: reads the clock.
    let now = unsafe { pg_sys::GetCurrentTimestamp() };
    let lock = table.lock;
    // Allocated before the lock is taken: nothing allocates while it is held.
    let mut locked = Vec::with_capacity(ACCOUNTS);
    shared_memory::locked(lock, pg_sys::LWLockMode::LW_SHARED, || {
        locked.extend(table.accounts.iter().filter(|account| account.in_use != 0 && account.locked_at != 0).copied())
    });
    let rows =
        locked.into_iter().filter(|account| duration_us == 0 || now < account.locked_at + duration_us).map(|account| {
            let client = account.client.as_str();
            (
                account.user.as_str().to_owned(),
                (!client.is_empty()).then(|| client.to_owned()),
                account.failures,
                TimestampWithTimeZone::try_from(account.locked_at).ok(),
                (duration_us > 0)
                    .then(|| TimestampWithTimeZone::try_from(account.locked_at + duration_us).ok())
                    .flatten(),
            )
        });
    TableIterator::new(rows.collect::<Vec<_>>())
}

/// Unlocks `user_name` (from `client_addr`, or from everywhere), forgetting its failures;
/// returns whether it was locked (superusers only).
#[pg_extern(volatile, parallel_restricted)]
fn unlock_account(user_name: &str, client_addr: default!(Option<pgrx::Inet>, "NULL")) -> bool {
    crate::registry::validate::require_superuser("unlock accounts").unwrap_or_else(|refusal| refusal.raise());
    shared_memory::require();
    let Some(table) = table() else {
        return false;
    };
    let client = client_addr.map(|inet| inet.0);
    let lock = table.lock;
    let unlocked = shared_memory::locked(lock, pg_sys::LWLockMode::LW_EXCLUSIVE, || {
        let mut unlocked = false;
        for account in table.accounts.iter_mut().filter(|account| account.in_use != 0) {
            let matches = account.user.as_str() == user_name
                && client.as_deref().is_none_or(|client| account.client.as_str() == client);
            if matches {
                unlocked |= account.locked_at != 0;
                account.in_use = 0;
            }
        }
        unlocked
    });
    if unlocked {
        crate::error::log_line(format!("login_trigger: user \"{user_name}\" unlocked by hand"));
    }
    unlocked
}

// The account's fields add up to its size: no implicit padding (the file writes every byte).
const _: () = assert!(std::mem::size_of::<Account>() == 64 + 64 + 3 * 8 + 64 + 3 + 5);
const _: () = assert!(std::mem::size_of::<Location>() == 4 + 4 + 64 + 64);
