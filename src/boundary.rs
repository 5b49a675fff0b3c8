//! Error boundaries that pass PostgreSQL's errors on exactly as raised, from src/shim/boundary.c.
//!
//! pgrx catches every error of a `pg_sys` call and hands it on as a Rust panic with some of its
//! fields: a SQLSTATE pgrx does not know becomes XX000 and the CONTEXT lines are lost. Where that
//! matters — a refused login must reach the client as the trigger raised it — the call is made
//! inside a boundary written in C that hands the error back as a value ([`catching`]), the Rust
//! frames unwind, and the outermost raises it again untouched. A Rust panic (or an error pgrx did
//! catch) inside a boundary's body is raised again as a PostgreSQL error at the body's edge, with
//! its fields and never a Rust backtrace.

use pgrx::pg_sys;
use pgrx::pg_sys::panic::CaughtError;
use pgrx::prelude::*;
use std::ffi::{CString, c_char, c_int, c_void};

type Body = unsafe extern "C-unwind" fn(*mut c_void);

unsafe extern "C-unwind" {
    fn login_trigger_fatal_on_error(body: Body, arg: *mut c_void);
    fn login_trigger_in_subtransaction(
        body: Body,
        arg: *mut c_void,
        tolerated_code: c_int,
        tolerated: *mut bool,
    ) -> *mut pg_sys::ErrorData;
    fn login_trigger_call_catching(
        body: Body,
        arg: *mut c_void,
        error_context: pg_sys::MemoryContext,
    ) -> *mut pg_sys::ErrorData;
    fn login_trigger_call_function(
        function: pg_sys::Oid,
        flinfo: *mut pg_sys::FmgrInfo,
        flinfo_context: pg_sys::MemoryContext,
        call_context: *mut pg_sys::Node,
        error_context: pg_sys::MemoryContext,
    ) -> *mut pg_sys::ErrorData;
    fn login_trigger_rethrow(edata: *mut pg_sys::ErrorData) -> !;
    fn login_trigger_raise_fatal(edata: *mut pg_sys::ErrorData) -> !;
    fn login_trigger_raise_error(
        sqlerrcode: c_int,
        message: *const c_char,
        detail: *const c_char,
        hint: *const c_char,
    ) -> !;
}

/// Runs `work`; any error that escapes it, PostgreSQL's or a Rust panic, ends the backend with
/// FATAL carrying the error's SQLSTATE, message, detail, hint and CONTEXT.
pub fn fatal_on_error<F: FnOnce()>(work: F) {
    let mut work = Some(work);
    // SAFETY: the body gets a pointer to `work`, which outlives the call; on an error the
    // process exits inside the C function, so nothing after it runs.
    unsafe { login_trigger_fatal_on_error(body::<F>, (&raw mut work).cast()) };
}

/// What became of work run in a subtransaction that tolerates one SQLSTATE.
pub enum Subtransaction {
    Done,
    /// The tolerated error happened; its message. The subtransaction was rolled back.
    Tolerated(String),
}

/// Runs `work` in an internal subtransaction. An error with SQLSTATE `tolerated` is rolled back
/// and its message returned; any other error is rolled back and handed back, for the caller's
/// outermost frame to raise again as raised.
pub fn in_subtransaction<F: FnOnce()>(tolerated: PgSqlErrorCode, work: F) -> Result<Subtransaction, PgError> {
    let mut work = Some(work);
    let mut was_tolerated = false;
    // SAFETY: as in fatal_on_error; the C function returns normally in every case, with the
    // error copied into the current memory context.
    let error = unsafe {
        login_trigger_in_subtransaction(body::<F>, (&raw mut work).cast(), tolerated as c_int, &mut was_tolerated)
    };
    match (error.is_null(), was_tolerated) {
        (true, _) => Ok(Subtransaction::Done),
        (false, true) => Ok(Subtransaction::Tolerated(PgError(error).message())),
        (false, false) => Err(PgError(error)),
    }
}

/// A PostgreSQL error caught by [`catching`], held (in a memory context that outlives the Rust
/// frames it travels through) until [`PgError::rethrow`] raises it again as it was raised.
#[derive(Debug, Clone, Copy)]
#[must_use = "a caught error must be raised again"]
pub struct PgError(*mut pg_sys::ErrorData);

impl PgError {
    /// The error's SQLSTATE, as PostgreSQL encodes it.
    pub fn sqlerrcode(self) -> i32 {
        // SAFETY: the ErrorData copy lives until the error is raised again.
        unsafe { (*self.0).sqlerrcode }
    }

    /// The error's message.
    pub fn message(self) -> String {
        // SAFETY: as above; the message is NUL-terminated or NULL.
        unsafe { crate::context::cstr((*self.0).message).unwrap_or_default() }
    }

    /// Raises the error again with every field as raised. Call it where no Rust value with a
    /// destructor is live between here and PostgreSQL's next error handler: an outermost frame.
    pub fn rethrow(self) -> ! {
        // SAFETY: the copy is intact; ReThrowError copies it into the error state and longjmps.
        unsafe { login_trigger_rethrow(self.0) }
    }

    /// Raises the error again as FATAL, every other field as raised: while the backend exits,
    /// where an ERROR must not be handed to the main loop's handler.
    pub fn raise_fatal(self) -> ! {
        // SAFETY: the copy is intact; ThrowErrorData copies it into the error state.
        unsafe { login_trigger_raise_fatal(self.0) }
    }
}

/// Makes a call into PostgreSQL and catches the error it raises, every field kept, so that the
/// Rust frames above can unwind normally before the outermost raises it again
/// ([`PgError::rethrow`]). `work` must only make the call (nothing with a destructor of its own).
/// Between the catch and the rethrow nothing may touch the database.
/// The caught error is copied into `error_context`, which must outlive the frames it is handed
/// through.
pub fn catching<F: FnOnce()>(error_context: pg_sys::MemoryContext, work: F) -> Result<(), PgError> {
    let mut work = Some(work);
    // SAFETY: the body gets a pointer to `work`, which outlives the call.
    let error = unsafe { login_trigger_call_catching(body::<F>, (&raw mut work).cast(), error_context) };
    if error.is_null() { Ok(()) } else { Err(PgError(error)) }
}

/// Calls `function` with no arguments and `call_context` as its `fcinfo->context`, as
/// PostgreSQL's `EventTriggerInvoke` does (a memory context of its own for the call, counted in
/// `pg_stat_user_functions`), filling `flinfo` in `flinfo_context` first if it is still zeroed,
/// and catches the error of either as [`catching`] does, copied into the current memory context.
///
/// # Safety
/// `flinfo` is zeroed or filled by an earlier call for `function`, lives in `flinfo_context`, and
/// outlives the call; `call_context` is NULL or an `EventTriggerData` that outlives the call.
pub unsafe fn call_function(
    function: pg_sys::Oid,
    flinfo: *mut pg_sys::FmgrInfo,
    flinfo_context: pg_sys::MemoryContext,
    call_context: *mut pg_sys::Node,
) -> Result<(), PgError> {
    // SAFETY: as the caller promises; the C function catches every error of the call (and of
    // its own allocations) and returns normally, as every boundary here does (only running out of
    // memory while copying the caught error could still escape, as from any PG_CATCH), and the
    // current memory context outlives the frames the caught error is handed through.
    let error = unsafe {
        login_trigger_call_function(function, flinfo, flinfo_context, call_context, pg_sys::CurrentMemoryContext)
    };
    if error.is_null() { Ok(()) } else { Err(PgError(error)) }
}

/// The body the C boundaries call: runs the closure, and raises what it panics with as a
/// PostgreSQL error, which then travels to the boundary like any other. A PostgreSQL error raised
/// as raised inside the closure longjmps to the boundary over this frame and `catch_unwind`'s,
/// which own nothing.
unsafe extern "C-unwind" fn body<F: FnOnce()>(arg: *mut c_void) {
    // SAFETY: `arg` is the `Option<F>` the wrapper above passed, taken once.
    let work = unsafe { (*arg.cast::<Option<F>>()).take() }.expect("boundary body called once");
    if let Err(payload) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work)) {
        raise(caught_error(payload));
    }
}

/// The fields of what a panic carries: a PostgreSQL error pgrx caught, a report raised from
/// Rust, or a plain Rust panic (XX000 with its message).
struct Panicked {
    code: PgSqlErrorCode,
    message: String,
    detail: Option<String>,
    hint: Option<String>,
}

fn caught_error(payload: Box<dyn std::any::Any + Send>) -> Panicked {
    use pgrx::pg_sys::panic::ErrorReportWithLevel;
    let of_report = |report: &ErrorReportWithLevel| Panicked {
        code: report.sql_error_code(),
        message: report.message().to_owned(),
        detail: report.detail().map(str::to_owned),
        hint: report.hint().map(str::to_owned),
    };
    if let Some(caught) = payload.downcast_ref::<CaughtError>() {
        return match caught {
            CaughtError::PostgresError(report) | CaughtError::ErrorReport(report) => of_report(report),
            CaughtError::RustPanic { ereport, .. } => of_report(ereport),
        };
    }
    if let Some(report) = payload.downcast_ref::<ErrorReportWithLevel>() {
        return of_report(report);
    }
    let message = payload
        .downcast_ref::<&str>()
        .map(|text| (*text).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a Rust panic without a message".to_owned());
    Panicked { code: PgSqlErrorCode::ERRCODE_INTERNAL_ERROR, message, detail: None, hint: None }
}

/// Raises a caught panic as a PostgreSQL ERROR with its fields, without Rust values left behind:
/// the strings are copied into the current memory context before the Rust ones are dropped.
fn raise(panicked: Panicked) -> ! {
    let palloc_copy = |text: Option<&str>| -> *const c_char {
        text.map_or(std::ptr::null(), |text| {
            let text = CString::new(text.replace('\0', " ")).unwrap_or_default();
            // SAFETY: pstrdup copies a NUL-terminated string into the current memory context.
            unsafe { pg_sys::pstrdup(text.as_ptr()) }
        })
    };
    let code = panicked.code as c_int;
    let message = palloc_copy(Some(&panicked.message));
    let detail = palloc_copy(panicked.detail.as_deref());
    let hint = palloc_copy(panicked.hint.as_deref());
    drop(panicked);
    // SAFETY: the strings live in a PostgreSQL memory context; no Rust value with a destructor is
    // live in this frame, and the error longjmps to the boundary that called the body.
    unsafe { login_trigger_raise_error(code, message, detail, hint) }
}
