//! PostgreSQL symbols pgrx 0.18.1 does not bind, declared once here with the headers they come
//! from. Nothing else in the crate declares foreign items.

use pgrx::pg_sys;
use pgrx::pg_sys::submodules::ffi::pg_guard_ffi_boundary;
use std::cell::Cell;
use std::ffi::{c_char, c_int};
use std::sync::atomic::{AtomicBool, Ordering};

/// Any `TimeoutId` at or above `USER_TIMEOUT` asks `RegisterTimeout` for a free user slot;
/// `USER_TIMEOUT` is 8 to 13 on versions 13–18, so 30 is above it everywhere.
const ANY_USER_TIMEOUT: c_int = 30;

unsafe extern "C-unwind" {
    /// utils/timeout.h
    fn RegisterTimeout(id: c_int, handler: unsafe extern "C" fn()) -> c_int;
    /// utils/timeout.h
    fn enable_timeout_after(id: c_int, delay_ms: c_int);
    /// utils/timeout.h
    fn disable_timeout(id: c_int, keep_indicator: bool);
}

unsafe extern "C" {
    /// storage/latch.h; async-signal-safe, never raises.
    fn SetLatch(latch: *mut pg_sys::Latch);
}

thread_local! {
    static CANCEL_TIMER: Cell<Option<c_int>> = const { Cell::new(None) };
}

/// What the armed timer does when it fires (read in the signal handler, hence atomics).
static TIMER_ENDS_PROCESS: AtomicBool = AtomicBool::new(false);
static TIMER_FIRED: AtomicBool = AtomicBool::new(false);

/// Runs in the SIGALRM handler: asks the backend to stop what it is doing at its next interrupt
/// check. Unlike `statement_timeout`, which sends SIGINT, this also works while the backend exits
/// (PostgreSQL ignores SIGINT and SIGTERM during `proc_exit`), which is when logout runs. There a
/// cancel request is not enough: PostgreSQL ignores it while it believes it is reading the
/// client's next command, which it still does when an idle session was terminated, so the timer
/// asks the exiting process to die instead, which PostgreSQL always honours.
unsafe extern "C" fn on_cancel_timer() {
    // SAFETY: only sig_atomic_t flags, atomics and SetLatch, as PostgreSQL's own signal handlers.
    unsafe {
        if TIMER_ENDS_PROCESS.load(Ordering::Relaxed) {
            pg_sys::ProcDiePending = 1;
        } else {
            pg_sys::QueryCancelPending = 1;
        }
        TIMER_FIRED.store(true, Ordering::Relaxed);
        pg_sys::InterruptPending = 1;
        SetLatch(pg_sys::MyLatch);
    }
}

/// Whether the timer armed last has fired.
pub fn cancel_timer_fired() -> bool {
    TIMER_FIRED.load(Ordering::Relaxed)
}

/// Arms this backend's cancel timer for `delay_ms` milliseconds; when it fires, the current
/// query is cancelled, or, with `ends_process` (the backend is already exiting), the process
/// is made to die.
pub fn arm_cancel_timer(delay_ms: c_int, ends_process: bool) {
    TIMER_FIRED.store(false, Ordering::Relaxed);
    TIMER_ENDS_PROCESS.store(ends_process, Ordering::Relaxed);
    let id = CANCEL_TIMER.get().unwrap_or_else(|| {
        // SAFETY: registers a handler for a free user timeout slot of this backend (once); a
        // FATAL for no free slot leaves through the boundary.
        let id = unsafe { pg_guard_ffi_boundary(|| RegisterTimeout(ANY_USER_TIMEOUT, on_cancel_timer)) };
        CANCEL_TIMER.set(Some(id));
        id
    });
    // SAFETY: schedules the timer registered above.
    unsafe { pg_guard_ffi_boundary(|| enable_timeout_after(id, delay_ms)) }
}

/// Disarms the cancel timer armed by [`arm_cancel_timer`].
pub fn disarm_cancel_timer() {
    if let Some(id) = CANCEL_TIMER.get() {
        // SAFETY: cancels the timer registered above, if pending.
        unsafe { pg_guard_ffi_boundary(|| disable_timeout(id, false)) }
    }
}

/// An SQLSTATE as PostgreSQL encodes it (`MAKE_SQLSTATE`), for codes pgrx's enum lacks.
pub const fn sqlstate(code: &[u8; 5]) -> i32 {
    let mut value = 0;
    let mut position = 0;
    while position < 5 {
        value += ((code[position] as i32 - b'0' as i32) & 0x3F) << (6 * position);
        position += 1;
    }
    value
}

/// The five characters of an SQLSTATE PostgreSQL encoded (`unpack_sql_state`).
pub fn sqlstate_text(code: i32) -> String {
    // SAFETY: unpack_sql_state formats into a static buffer (it never raises), copied at once.
    crate::context::cstr(unsafe { pg_sys::unpack_sql_state(code) }).unwrap_or_default()
}

unsafe extern "C" {
    /// utils/elog.h: appends a CONTEXT line from inside an error context callback.
    pub fn errcontext_msg(fmt: *const c_char, ...) -> c_int;
}

#[cfg(feature = "pg13")]
unsafe extern "C" {
    /// replication/walsender.h; pgrx binds it from PostgreSQL 14 on.
    pub static mut am_walsender: bool;
}

/// `pg_db_role_setting` (OID 2964 on every version; pgrx does not bind `DbRoleSettingRelationId`).
pub const DB_ROLE_SETTING_RELATION: pg_sys::Oid = pg_sys::Oid::from_u32(2964);

/// `pg_depend` (catalog/pg_depend.h, which pgrx does not bind): the table, its
/// `(classid, objid, objsubid)` index, and the fixed-size row, the same on versions 13–18.
pub const DEPEND_RELATION: pg_sys::Oid = pg_sys::Oid::from_u32(2608);
pub const DEPEND_DEPENDER_INDEX: pg_sys::Oid = pg_sys::Oid::from_u32(2673);
pub const ANUM_PG_DEPEND_CLASSID: pg_sys::AttrNumber = 1;
pub const ANUM_PG_DEPEND_OBJID: pg_sys::AttrNumber = 2;
#[repr(C)]
pub struct FormDataPgDepend {
    pub classid: pg_sys::Oid,
    pub objid: pg_sys::Oid,
    pub objsubid: i32,
    pub refclassid: pg_sys::Oid,
    pub refobjid: pg_sys::Oid,
    pub refobjsubid: i32,
    pub deptype: std::ffi::c_char,
}

/// The `event_trigger` pseudo-type (OID 3838 on every version; pgrx names the constant
/// `EVTTRIGGEROID` on 13 and `EVENT_TRIGGEROID` from 14).
pub const EVENT_TRIGGER_TYPE: pg_sys::Oid = pg_sys::Oid::from_u32(3838);
#[cfg(not(feature = "pg13"))]
pub use pgrx::pg_sys::am_walsender;

// access/xact.h. pgrx binds it behind its error guard; session-event commits need the bare symbol
// so that deferred constraints' errors leave as raised (see session::commit_transaction).
unsafe extern "C-unwind" {
    pub fn CommitTransactionCommand();
}

// Functions every DDL statement's planning calls, which never raise (they read static tables or
// backend state; CreateCommandTag at most warns of an unknown node). pgrx binds them behind its
// error guard, a `sigsetjmp` per call; these bare symbols skip it.
unsafe extern "C-unwind" {
    /// tcop/utility.h
    pub fn CreateCommandTag(parsetree: *mut pg_sys::Node) -> pg_sys::CommandTag::Type;
    /// tcop/cmdtag.h
    pub fn GetCommandTagName(tag: pg_sys::CommandTag::Type) -> *const c_char;
    /// tcop/cmdtag.h
    pub fn command_tag_event_trigger_ok(tag: pg_sys::CommandTag::Type) -> bool;
    /// commands/event_trigger.h
    pub fn EventTriggerSupportsObjectType(obtype: pg_sys::ObjectType::Type) -> bool;
    /// access/xact.h
    pub fn IsTransactionState() -> bool;
}

// tcop/utility.h. pgrx binds it behind its error guard; the ProcessUtility hook needs the bare
// symbol to chain to PostgreSQL with errors left as raised (see hooks::process_utility).
#[cfg(feature = "pg13")]
unsafe extern "C-unwind" {
    pub fn standard_ProcessUtility(
        pstmt: *mut pg_sys::PlannedStmt,
        query_string: *const c_char,
        context: pg_sys::ProcessUtilityContext::Type,
        params: pg_sys::ParamListInfo,
        query_env: *mut pg_sys::QueryEnvironment,
        dest: *mut pg_sys::DestReceiver,
        qc: *mut pg_sys::QueryCompletion,
    );
}
#[cfg(not(feature = "pg13"))]
unsafe extern "C-unwind" {
    #[allow(clippy::too_many_arguments)]
    pub fn standard_ProcessUtility(
        pstmt: *mut pg_sys::PlannedStmt,
        query_string: *const c_char,
        read_only_tree: bool,
        context: pg_sys::ProcessUtilityContext::Type,
        params: pg_sys::ParamListInfo,
        query_env: *mut pg_sys::QueryEnvironment,
        dest: *mut pg_sys::DestReceiver,
        qc: *mut pg_sys::QueryCompletion,
    );
}

/// `PG_FUNCTION_INFO_V1(name)` for a C-language function written by hand in Rust (one that
/// handles its `fcinfo` itself rather than through `#[pg_extern]`).
macro_rules! function_info_v1 {
    ($finfo:ident) => {
        #[unsafe(no_mangle)]
        pub extern "C" fn $finfo() -> &'static pgrx::pg_sys::Pg_finfo_record {
            const V1: pgrx::pg_sys::Pg_finfo_record = pgrx::pg_sys::Pg_finfo_record { api_version: 1 };
            &V1
        }
    };
}
pub(crate) use function_info_v1;
