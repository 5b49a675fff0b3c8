//! PostgreSQL hooks, one file per hook family. Each file saves the previous hook, installs a thin
//! `extern "C-unwind"` wrapper per PostgreSQL signature, and forwards to one version-independent
//! function; the previous hook is always called.

mod client_auth;
mod emit_log;
mod object_access;
pub mod process_utility;
mod session;
mod shmem;

/// Installs every hook. Called once per process from `_PG_init`.
pub fn init() {
    client_auth::init();
    emit_log::init();
    object_access::init();
    process_utility::init();
    session::init();
    shmem::init();
}
