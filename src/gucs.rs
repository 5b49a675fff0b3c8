//! The extension's settings. Each is a private static with the reason it exists, registered once
//! by [`init`] and read through a typed getter, so no other module touches `GucSetting` directly.
//!
//! Every setting is `PGC_SUSET` or stricter: a session that is being policed must not be able to
//! switch the policing off. Boot defaults are the safe values, because a non-superuser who puts a
//! `PGC_SUSET` setting into the startup packet of a connection to a server that loads the library
//! from `session_preload_libraries` is refused the setting but leaves the variable at its boot
//! default, losing the postgresql.conf value (docs/design.md, "the placeholder gotcha"); with
//! that loading mode such a connection is therefore refused ([`init`]).

use pgrx::{GucContext, GucFlags, GucRegistry, GucSetting};
use std::ffi::CString;

/// The escape hatch. Off, no registered trigger of any event fires in the sessions that see it
/// off; a superuser can connect with `options='-c login_trigger.enabled=off'` when a broken login
/// trigger refuses every connection. On by default: the safe value when a non-superuser's attempt
/// to set it is discarded.
static ENABLED: GucSetting<bool> = GucSetting::<bool>::new(true);

/// Login must not hang: `statement_timeout` is not armed while a session starts and the client
/// cannot cancel (it has no cancel key yet). Login triggers that run longer refuse the connection.
static LOGIN_TIMEOUT: GucSetting<i32> = GucSetting::<i32>::new(10_000);

/// Logout runs while the backend exits, with interrupts held; a slow logout trigger would delay
/// fast shutdown without bound. Logout triggers that run longer are cut off and logged.
static LOGOUT_TIMEOUT: GucSetting<i32> = GucSetting::<i32>::new(5_000);

/// session_exec compatibility: a schema-qualified function every client session of the cluster
/// runs at login, before the database's registered login triggers.
static LOGIN_FUNCTION: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);

/// session_exec compatibility: a schema-qualified function every client session runs at logout,
/// after the database's registered logout triggers.
static LOGOUT_FUNCTION: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);

/// Sizes the shared table of per-trigger statistics (`trigger_stats`): one entry per trigger,
/// event and database, about half a kilobyte each; when it is full the least recently used entry
/// makes room. Read once, when the server starts (shared memory cannot grow).
static MAX_TRIGGER_STATS: GucSetting<i32> = GucSetting::<i32>::new(1000);

/// Sizes the ring of refused logins (`refused_logins`), about 700 bytes each; the oldest makes
/// room. Read once, when the server starts.
static MAX_REFUSED_LOGINS: GucSetting<i32> = GucSetting::<i32>::new(512);

/// Account lockout (`lockout`): consecutive failed authentications after which a user is
/// locked; 0 (the default) switches lockout off. Read by every authentication, so a reload
/// applies it to the next connection; a postgresql.conf setting, since it governs who may
/// connect at all.
static LOCKOUT_THRESHOLD: GucSetting<i32> = GucSetting::<i32>::new(0);

/// What a lock applies to: the user everywhere, or the user from one client address, so that an
/// attacker elsewhere cannot lock a user out everywhere.
static LOCKOUT_SCOPE: GucSetting<LockoutScope> = GucSetting::<LockoutScope>::new(LockoutScope::User);

/// How long a lock lasts before it lifts by itself (seconds); 0: until a superuser unlocks it.
static LOCKOUT_DURATION: GucSetting<i32> = GucSetting::<i32>::new(0);

/// Roles never counted nor locked (service accounts whose lockout would be an outage).
static LOCKOUT_EXEMPT_ROLES: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);

#[derive(Debug, Clone, Copy, PartialEq, Eq, pgrx::PostgresGucEnum)]
pub enum LockoutScope {
    #[name = c"user"]
    User,
    #[name = c"user_address"]
    UserAddress,
}

/// Debug builds only (see `fault`): the name of a point on the login path that panics, so the
/// tests can prove that a bug of ours refuses the connection rather than letting it in.
#[cfg(debug_assertions)]
static FAULT_POINT: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);

pub fn init() {
    GucRegistry::define_bool_guc(
        c"login_trigger.enabled",
        c"Fires the triggers registered with login_trigger.",
        c"When off, no login, logout or DDL trigger registered with login_trigger fires. Only \
          superusers can change it, also in connection options, so that a superuser can get in \
          when a login trigger refuses every connection.",
        &ENABLED,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"login_trigger.login_timeout",
        c"Longest time login triggers may run before the connection is refused.",
        c"Covers all login triggers of one connection together. Zero disables the limit.",
        &LOGIN_TIMEOUT,
        0,
        i32::MAX,
        GucContext::Suset,
        GucFlags::UNIT_MS,
    );
    GucRegistry::define_int_guc(
        c"login_trigger.logout_timeout",
        c"Longest time logout triggers may run while a session ends.",
        c"Covers all logout triggers of one session together; when it expires they are cut off, \
          their transaction is rolled back and the server log says so. Zero disables the limit.",
        &LOGOUT_TIMEOUT,
        0,
        i32::MAX,
        GucContext::Suset,
        GucFlags::UNIT_MS,
    );
    GucRegistry::define_string_guc(
        c"login_trigger.login_function",
        c"Schema-qualified function every client session runs at login (session_exec style).",
        c"Runs before the registered login triggers of the session's database. A missing function \
          gives a warning and the login proceeds; a failing one refuses the connection.",
        &LOGIN_FUNCTION,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_string_guc(
        c"login_trigger.logout_function",
        c"Schema-qualified function every client session runs at logout (session_exec style).",
        c"Runs after the registered logout triggers of the session's database.",
        &LOGOUT_FUNCTION,
        GucContext::Suset,
        GucFlags::default(),
    );
    // Only where the table exists: without shared_preload_libraries the setting would mean
    // nothing, and on PostgreSQL 15 every setting a session library defines costs its backend a
    // sort of all settings.
    if crate::loading::shared_preload() {
        GucRegistry::define_int_guc(
            c"login_trigger.max_trigger_stats",
            c"How many triggers login_trigger.trigger_stats keeps figures for.",
            c"One entry per trigger, event and database; when the table is full, the least \
              recently used entry is evicted (counted in login_trigger.stats_info). Needs a \
              restart.",
            &MAX_TRIGGER_STATS,
            10,
            100_000,
            GucContext::Postmaster,
            GucFlags::default(),
        );
        GucRegistry::define_int_guc(
            c"login_trigger.max_refused_logins",
            c"How many refused logins login_trigger.refused_logins keeps.",
            c"The most recent ones; the oldest makes room. Every refusal is also in the server \
              log. Needs a restart.",
            &MAX_REFUSED_LOGINS,
            10,
            100_000,
            GucContext::Postmaster,
            GucFlags::default(),
        );
        define_lockout_settings();
    }
    #[cfg(debug_assertions)]
    GucRegistry::define_string_guc(
        c"login_trigger.fault_point",
        c"Debug builds only: a point on the login path that panics (for tests).",
        c"Empty: no fault. Release builds do not have this setting.",
        &FAULT_POINT,
        GucContext::Suset,
        GucFlags::NO_SHOW_ALL,
    );
    reserve_prefix();
    if crate::loading::loaded() == crate::loading::Loaded::SessionPreload {
        refuse_client_settings_of_non_superusers();
    }
}

fn define_lockout_settings() {
    GucRegistry::define_int_guc(
        c"login_trigger.lockout_threshold",
        c"Consecutive failed authentications after which a user is locked (0: no lockout).",
        c"A locked user is refused exactly as a wrong password is, until lockout_duration passes or \
          login_trigger.unlock_account() is called. A success resets the count.",
        &LOCKOUT_THRESHOLD,
        0,
        i32::MAX,
        GucContext::Sighup,
        GucFlags::default(),
    );
    GucRegistry::define_enum_guc(
        c"login_trigger.lockout_scope",
        c"Whether a lock applies to the user (user) or to the user from one client address (user_address).",
        c"With user_address, failures are counted and locks applied per user name and client address.",
        &LOCKOUT_SCOPE,
        GucContext::Sighup,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"login_trigger.lockout_duration",
        c"How long a lock lasts before it lifts by itself (0: until unlocked by hand).",
        c"",
        &LOCKOUT_DURATION,
        0,
        i32::MAX,
        GucContext::Sighup,
        GucFlags::UNIT_S,
    );
    // SAFETY: the check hook is a pg_guard'ed extern "C-unwind" fn of the signature PostgreSQL
    // calls string check hooks with.
    unsafe {
        GucRegistry::define_string_guc_with_hooks(
            c"login_trigger.lockout_exempt_roles",
            c"Comma-separated role names that are never locked.",
            c"A superuser connecting over a Unix-domain socket is never locked either.",
            &LOCKOUT_EXEMPT_ROLES,
            GucContext::Sighup,
            GucFlags::from_bits_retain(pgrx::pg_sys::GUC_LIST_INPUT as i32),
            Some(check_role_list),
            None,
            None,
        );
    }
}

/// Refuses a malformed role list at SET or reload (the previous value stays), as PostgreSQL's own
/// list settings do.
#[pgrx::pg_guard]
unsafe extern "C-unwind" fn check_role_list(
    value: *mut *mut std::ffi::c_char,
    _extra: *mut *mut std::ffi::c_void,
    _source: pgrx::pg_sys::GucSource::Type,
) -> bool {
    // SAFETY: PostgreSQL passes the proposed value, NULL or NUL-terminated.
    let text = unsafe { crate::context::cstr(*value) }.unwrap_or_default();
    if crate::function_name::identifiers(&text, b',').is_some() {
        return true;
    }
    // SAFETY: GUC_check_errdetail's variable takes a palloc'd message; the code is PostgreSQL's
    // own for a bad value.
    unsafe {
        pgrx::pg_sys::GUC_check_errcode(pgrx::PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE as i32);
        pgrx::pg_sys::GUC_check_errdetail_string = pgrx::pg_sys::pstrdup(c"List syntax is invalid.".as_ptr());
    }
    false
}

unsafe extern "C-unwind" {
    /// src/shim/client_options.c, shared with the session library so that both refuse the same
    /// connections; it says why.
    fn login_trigger_refuse_client_settings();
}

/// With `session_preload_libraries` a non-superuser's `-c login_trigger.…` would silently drop
/// the postgresql.conf value (the placeholder gotcha): such a connection is refused.
fn refuse_client_settings_of_non_superusers() {
    // SAFETY: reads the connection's startup options; a refusal is a FATAL, which ends the
    // process without returning.
    unsafe { pgrx::pg_sys::submodules::ffi::pg_guard_ffi_boundary(|| login_trigger_refuse_client_settings()) }
}

/// Whether registered triggers fire at all in this session.
pub fn enabled() -> bool {
    ENABLED.get()
}

/// How many entries the shared table of per-trigger statistics has.
pub fn max_trigger_stats() -> i32 {
    MAX_TRIGGER_STATS.get()
}

/// How many refused logins the shared ring keeps.
pub fn max_refused_logins() -> i32 {
    MAX_REFUSED_LOGINS.get()
}

pub fn lockout_threshold() -> i32 {
    LOCKOUT_THRESHOLD.get()
}

pub fn lockout_scope() -> LockoutScope {
    LOCKOUT_SCOPE.get()
}

/// In seconds; zero: until unlocked by hand.
pub fn lockout_duration_s() -> i32 {
    LOCKOUT_DURATION.get()
}

pub fn lockout_exempt_roles() -> Option<String> {
    LOCKOUT_EXEMPT_ROLES.get().map(|roles| roles.to_string_lossy().into_owned())
}

/// The login timeout in milliseconds; zero for none.
pub fn login_timeout_ms() -> i32 {
    LOGIN_TIMEOUT.get()
}

/// The logout timeout in milliseconds; zero for none.
pub fn logout_timeout_ms() -> i32 {
    LOGOUT_TIMEOUT.get()
}

fn function_name(setting: &GucSetting<Option<CString>>) -> Option<String> {
    setting.get().map(|name| name.to_string_lossy().trim().to_owned()).filter(|name| !name.is_empty())
}

/// The session_exec-style login function's name, if set.
#[cfg(debug_assertions)]
pub fn fault_point() -> Option<String> {
    function_name(&FAULT_POINT)
}

pub fn login_function() -> Option<String> {
    function_name(&LOGIN_FUNCTION)
}

/// The session_exec-style logout function's name, if set.
pub fn logout_function() -> Option<String> {
    function_name(&LOGOUT_FUNCTION)
}

/// Turns unknown `login_trigger.*` settings into errors (PostgreSQL 15+) or warnings (13, 14),
/// so a misspelt setting in postgresql.conf never silently leaves a trigger misconfigured.
fn reserve_prefix() {
    #[cfg(any(feature = "pg13", feature = "pg14"))]
    // SAFETY: called from _PG_init in the main thread with a static NUL-terminated string.
    unsafe {
        pgrx::pg_sys::EmitWarningsOnPlaceholders(c"login_trigger".as_ptr());
    }
    #[cfg(not(any(feature = "pg13", feature = "pg14")))]
    // SAFETY: called from _PG_init in the main thread with a static NUL-terminated string.
    unsafe {
        pgrx::pg_sys::MarkGUCPrefixReserved(c"login_trigger".as_ptr());
    }
}
