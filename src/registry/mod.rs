//! The trigger registry: the catalog table `login_trigger.event_trigger`, the rules a row must
//! satisfy, the bookkeeping that keeps `pg_depend` and every backend's cache in step with it, and
//! the per-backend cache the hooks read.
//!
//! Accept/reject contract: a row is accepted only when its name is 1 to 63 bytes, its event is one
//! of [`Event::ALL`], its function exists, is a plain function owned by a superuser, takes no
//! arguments and returns `event_trigger` or `void`, its state is O/D/R/A, and its tag filter is
//! NULL or a non-empty list of command tags the event supports. The same check runs for the SQL
//! API, for direct writes by a superuser and for rows restored by pg_restore.
//!
//! [`Event::ALL`]: crate::event::Event::ALL

pub mod cache;
pub mod dispatchers;
pub mod maintain;
pub mod shared;
pub mod validate;

/// Extension, schema, table and carrier names, in one place for Rust and for messages. Lookups go
/// through the extension (`cache::relation`); the schema name only labels what we create.
pub const EXTENSION: &std::ffi::CStr = c"login_trigger";
pub const SCHEMA: &std::ffi::CStr = c"login_trigger";
pub const TABLE: &std::ffi::CStr = c"event_trigger";
pub const CARRIER_TABLE: &std::ffi::CStr = c"registered_function";
pub const LOGIN_CARRIER_TABLE: &std::ffi::CStr = c"registered_login_function";
pub const LOGOUT_CARRIER_TABLE: &std::ffi::CStr = c"registered_logout_function";

/// The table whose triggers carry the dependencies of an event's registrations.
pub fn carrier_table_name(event: crate::event::Event) -> &'static std::ffi::CStr {
    match event {
        crate::event::Event::Login => LOGIN_CARRIER_TABLE,
        crate::event::Event::Logout => LOGOUT_CARRIER_TABLE,
        _ => CARRIER_TABLE,
    }
}

/// The function every carrier trigger executes (`maintain::registered_function_carrier`), found in
/// the extension's schema only.
pub fn carrier_function() -> Option<pgrx::pg_sys::Oid> {
    crate::function_name::resolve("login_trigger.registered_function_carrier")
}

/// Every carrier table.
pub const CARRIER_TABLES: [&std::ffi::CStr; 3] = [CARRIER_TABLE, LOGIN_CARRIER_TABLE, LOGOUT_CARRIER_TABLE];

/// Drops one object of the extension's bookkeeping (a carrier trigger, a dispatcher) that nothing
/// depends on, as an internal deletion, which is not reported to event triggers, and makes the
/// drop visible to the rest of the command.
fn drop_bookkeeping(class_id: pgrx::pg_sys::Oid, object_id: pgrx::pg_sys::Oid) {
    use pgrx::pg_sys;
    let address = pg_sys::ObjectAddress { classId: class_id, objectId: object_id, objectSubId: 0 };
    // SAFETY: the caller names an existing object; performDeletion raises for anything else.
    unsafe {
        pg_sys::performDeletion(
            &address,
            pg_sys::DropBehavior::DROP_RESTRICT,
            pg_sys::PERFORM_DELETION_INTERNAL as i32,
        );
        pg_sys::CommandCounterIncrement();
    }
}
