//! The extension's settings. Each is a private static with the reason it exists, registered once
//! by [`init`] and read through a typed getter, so no other module touches `GucSetting` directly.
//!
//! Every setting is `PGC_SUSET` or stricter: a session that is being policed must not be able to
//! switch the policing off. Boot defaults are the safe values, because a non-superuser who puts a
//! `PGC_SUSET` setting into the startup packet of a connection to a server that loads the library
//! from `session_preload_libraries` is refused the setting but leaves the variable at its boot
//! default, losing the postgresql.conf value (see docs/design.md, "the placeholder gotcha").

use pgrx::{GucContext, GucFlags, GucRegistry, GucSetting};

/// The escape hatch. Off, no registered trigger of any event fires in the sessions that see it
/// off; a superuser can connect with `options='-c login_trigger.enabled=off'` when a broken login
/// trigger refuses every connection. On by default: the safe value when a non-superuser's attempt
/// to set it is discarded.
static ENABLED: GucSetting<bool> = GucSetting::<bool>::new(true);

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
    reserve_prefix();
}

/// Whether registered triggers fire at all in this session.
pub fn enabled() -> bool {
    ENABLED.get()
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
