//! `ClientAuthentication_hook`: reports the outcome of every authentication to `auth`, then lets
//! `lockout` count it and refuse a locked account. Effective
//! only with `shared_preload_libraries` (it must be installed before the backend authenticates).
//! The previous hook runs first, as contrib's auth_delay does, so that a hook which delays
//! failures still does so.

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
}

#[pg_guard]
unsafe extern "C-unwind" fn client_authentication(port: *mut Port, status: i32) {
    // SAFETY: the previous hook has this exact signature and gets our arguments unchanged.
    unsafe {
        if let Some(previous) = PREVIOUS {
            pg_sys::submodules::ffi::pg_guard_ffi_boundary(|| previous(port, status));
        }
    }
    auth::on_authentication(port, status);
    lockout::on_authentication(port, status);
}
