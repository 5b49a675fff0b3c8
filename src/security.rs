//! Running the extension's own catalog work with a fixed identity, whoever the session user is.

use pgrx::pg_sys;
use pgrx::prelude::PgTryBuilder;
use std::panic::AssertUnwindSafe;

/// Runs `work` as the bootstrap superuser, restoring the caller's identity even when `work`
/// raises. Used only for the extension's own fully qualified queries on its own catalog, so that a
/// `REVOKE` on the registry cannot lock logins out and a client's privileges cannot change what
/// the registry says.
pub fn as_bootstrap_superuser<R>(work: impl FnOnce() -> R) -> R {
    let mut saved_user = pg_sys::Oid::INVALID;
    let mut saved_context = 0;
    // SAFETY: reads two backend-local variables into valid out-pointers.
    unsafe { pg_sys::GetUserIdAndSecContext(&mut saved_user, &mut saved_context) };
    // SAFETY: switching the current user id is what SECURITY DEFINER functions do; the flag tells
    // PostgreSQL this is a local change so SET ROLE checks behave, and `finally` restores it.
    unsafe {
        pg_sys::SetUserIdAndSecContext(
            pg_sys::Oid::from(pg_sys::BOOTSTRAP_SUPERUSERID),
            saved_context | pg_sys::SECURITY_LOCAL_USERID_CHANGE as i32,
        )
    };
    PgTryBuilder::new(AssertUnwindSafe(work))
        // SAFETY: restores exactly the values read above.
        .finally(|| unsafe { pg_sys::SetUserIdAndSecContext(saved_user, saved_context) })
        .execute()
}
