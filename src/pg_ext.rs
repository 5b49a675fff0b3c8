//! PostgreSQL symbols pgrx 0.18.1 does not bind, declared once here with the headers they come
//! from. Nothing else in the crate declares foreign items.

use pgrx::pg_sys::submodules::ffi::pg_guard_ffi_boundary;
use std::ffi::{c_char, c_int};

/// `STATEMENT_TIMEOUT` of `TimeoutId` in utils/timeout.h: the fourth entry on every version 13–18.
/// The login and logout timeouts arm it because its error is the one `ProcessInterrupts` raises
/// for a timed-out statement, which the firing code recognises and rewords.
const STATEMENT_TIMEOUT: c_int = 3;

unsafe extern "C-unwind" {
    /// utils/timeout.h
    fn enable_timeout_after(id: c_int, delay_ms: c_int);
    /// utils/timeout.h
    fn disable_timeout(id: c_int, keep_indicator: bool);
}

/// Arms the statement timer of this backend for `delay_ms` milliseconds.
pub fn arm_statement_timeout(delay_ms: c_int) {
    // SAFETY: enable_timeout_after only schedules a timer; a PostgreSQL error in it is turned
    // into a Rust panic by the boundary.
    unsafe { pg_guard_ffi_boundary(|| enable_timeout_after(STATEMENT_TIMEOUT, delay_ms)) }
}

/// Disarms the statement timer armed by [`arm_statement_timeout`].
pub fn disarm_statement_timeout() {
    // SAFETY: as above.
    unsafe { pg_guard_ffi_boundary(|| disable_timeout(STATEMENT_TIMEOUT, false)) }
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

unsafe extern "C" {
    /// utils/elog.h: appends a CONTEXT line from inside an error context callback.
    pub fn errcontext_msg(fmt: *const c_char, ...) -> c_int;
}

/// replication/walsender.h; pgrx binds it from PostgreSQL 14 on.
#[cfg(feature = "pg13")]
unsafe extern "C" {
    pub static mut am_walsender: bool;
}
#[cfg(not(feature = "pg13"))]
pub use pgrx::pg_sys::am_walsender;
