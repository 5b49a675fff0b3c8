//! `emit_log_hook`: remembers the SQLSTATE of a FATAL this backend reports, because by the time
//! logout triggers run PostgreSQL has freed the error that ended the session, and the SQLSTATE is
//! what tells `pg_terminate_backend`, shutdown and the idle timeouts apart. It also rewords the
//! cancellation of a login or logout trigger by its time limit, which is FATAL and cannot be
//! caught where it is raised, counts a trigger call that such a FATAL ends (`trigger_stats`), and records a FATAL that
//! refuses a login (`refused_logins`).

use crate::{lockout, refused_logins, session, time_limit, trigger_stats};
use pgrx::prelude::*;

static mut PREVIOUS: pg_sys::emit_log_hook_type = None;

pub fn init() {
    // SAFETY: _PG_init, single-threaded; the previous hook is saved before ours replaces it.
    unsafe {
        PREVIOUS = pg_sys::emit_log_hook;
        pg_sys::emit_log_hook = Some(emit_log);
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn emit_log(error: *mut pg_sys::ErrorData) {
    // SAFETY: PostgreSQL passes the error being reported; the previous hook gets it unchanged.
    unsafe {
        if !error.is_null() && (*error).elevel == pg_sys::FATAL as i32 {
            session::note_fatal((*error).sqlerrcode);
            let timed_out = time_limit::reword(&mut *error);
            if super::session::login_firing() {
                refused_logins::record(&*error);
            }
            trigger_stats::fatal_during_call(&*error, timed_out);
            lockout::note_reporting_location(&*error);
        }
        if let Some(previous) = PREVIOUS {
            pg_sys::submodules::ffi::pg_guard_ffi_boundary(|| previous(error));
        }
    }
}
