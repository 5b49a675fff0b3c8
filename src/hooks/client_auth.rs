//! `ClientAuthentication_hook`: lets `lockout` count every authentication and decide whether the
//! account is locked, then runs the previous hook and reports to `auth` with the status a locked
//! account's authentication is refused with (a failure), then enforces the lock. Effective only
//! with `shared_preload_libraries` (it must be installed before the backend authenticates). The
//! previous hook runs before the refusal, as contrib's auth_delay expects, so that a hook which
//! delays failures delays a locked account's refusal as it delays a wrong password. PostgreSQL's
//! final SCRAM message, held back until now, is passed on or dropped with the verdict, before any
//! earlier hook could send a message of its own.

use crate::{auth, lockout};
use pgrx::pg_sys::libpq::{ClientAuthentication_hook, ClientAuthentication_hook_type, be::Port};
use pgrx::prelude::*;

static mut PREVIOUS: ClientAuthentication_hook_type = None;

pub fn init() {
    // SAFETY: _PG_init, single-threaded; the previous hook is saved before ours replaces it.
    unsafe {
        PREVIOUS = ClientAuthentication_hook;
        ClientAuthentication_hook = Some(client_authentication);
    }
    if crate::loading::shared_preload() {
        lockout::hold_sasl_final();
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn client_authentication(port: *mut Port, status: i32) {
    let verdict = lockout::on_authentication(port, status);
    verdict.settle_sasl_final(status);
    let status = verdict.status(status);
    // SAFETY: the previous hook has this exact signature and gets the port unchanged.
    unsafe {
        if let Some(previous) = PREVIOUS {
            pg_sys::submodules::ffi::pg_guard_ffi_boundary(|| previous(port, status));
        }
    }
    auth::on_authentication(port, status);
    verdict.enforce(port);
}
