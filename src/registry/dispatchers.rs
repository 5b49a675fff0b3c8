//! The native event triggers through which DDL registrations fire (the dispatcher is in
//! `ddl::native`): one per DDL event, named `login_trigger_<event>`, calling
//! `login_trigger.dispatch_ddl()`, enabled `ALWAYS` (each registration's own state decides under
//! `session_replication_role`).
//!
//! One exists in a database while it has registrations of that event, and only then: an enabled
//! native event trigger makes PostgreSQL collect every DDL command's objects, so a database
//! without DDL registrations pays nothing. `create_trigger()` and `enable_trigger()` create it;
//! the registry's row trigger removes it when the event's last registration goes.
//!
//! They are not members of the extension, so pg_dump dumps them as what they are, event
//! triggers, which pg_restore creates last and pg_upgrade carries by name: a restored
//! registration becomes active only once the whole restore is done, as native event triggers
//! do, and the restore's own commands fire nothing of ours. Rows restored or inserted by hand do
//! not create one (that would fire in the middle of a restore); the API does.

use crate::error::Refusal;
use crate::event::Event;
use pgrx::PgSqlErrorCode;
use pgrx::prelude::*;
use std::ffi::{CStr, c_char};

unsafe extern "C-unwind" {
    /// src/shim/dispatcher.c
    fn login_trigger_create_dispatcher(
        name: *const c_char,
        event: *const c_char,
        schema: *const c_char,
        function: *const c_char,
    ) -> pg_sys::Oid;
}

/// The dispatcher's name for a DDL event.
pub fn name(event: Event) -> &'static CStr {
    match event {
        Event::DdlCommandStart => c"login_trigger_ddl_command_start",
        Event::DdlCommandEnd => c"login_trigger_ddl_command_end",
        Event::SqlDrop => c"login_trigger_sql_drop",
        Event::TableRewrite => c"login_trigger_table_rewrite",
        Event::Login | Event::Logout => unreachable!("session events have no dispatcher"),
    }
}

fn oid(event: Event) -> Option<pg_sys::Oid> {
    // SAFETY: a catalog lookup by name with missing_ok.
    let oid = unsafe { pg_sys::get_event_trigger_oid(name(event).as_ptr(), true) };
    (oid != pg_sys::Oid::INVALID).then_some(oid)
}

/// Whether the event's dispatcher exists and is not disabled: the registrations of the event are
/// active (the hook path asks; the native path fires only through it anyway).
pub fn active(event: Event) -> bool {
    let Some(oid) = oid(event) else { return false };
    // SAFETY: a syscache lookup of an existing event trigger's row, released at once.
    unsafe {
        let tuple = pg_sys::SearchSysCache1(pg_sys::SysCacheIdentifier::EVENTTRIGGEROID as i32, oid.into());
        if tuple.is_null() {
            return false;
        }
        let enabled = (*pg_sys::heap_tuple_get_struct::<pg_sys::FormData_pg_event_trigger>(tuple)).evtenabled;
        pg_sys::ReleaseSysCache(tuple);
        enabled as u8 != b'D'
    }
}

/// Whether an event trigger calls `login_trigger.dispatch_ddl()`.
fn calls_dispatcher(event_trigger: pg_sys::Oid) -> bool {
    // SAFETY: syscache lookups of an existing event trigger and its function, released at once;
    // the name lookups return NULL for a missing object.
    unsafe {
        let tuple = pg_sys::SearchSysCache1(pg_sys::SysCacheIdentifier::EVENTTRIGGEROID as i32, event_trigger.into());
        if tuple.is_null() {
            return false;
        }
        let function = (*pg_sys::heap_tuple_get_struct::<pg_sys::FormData_pg_event_trigger>(tuple)).evtfoid;
        pg_sys::ReleaseSysCache(tuple);
        let schema = crate::context::cstr(pg_sys::get_namespace_name(pg_sys::get_func_namespace(function)));
        let name = crate::context::cstr(pg_sys::get_func_name(function));
        schema.as_deref() == Some("login_trigger") && name.as_deref() == Some("dispatch_ddl")
    }
}

/// Creates the event's dispatcher unless it exists. Superusers only (CreateEventTrigger checks).
/// An event trigger of that name that is not ours is an error rather than silently taken for one.
pub fn ensure(event: Event) {
    if let Some(existing) = oid(event) {
        if !calls_dispatcher(existing) {
            Refusal::new(
                PgSqlErrorCode::ERRCODE_DUPLICATE_OBJECT,
                format!("event trigger \"{}\" is not login_trigger's", name(event).to_string_lossy()),
            )
            .detail("login_trigger fires DDL registrations through an event trigger of that name.")
            .hint("Rename or drop that event trigger.")
            .raise();
        }
        return;
    }
    let event_name = std::ffi::CString::new(event.name()).unwrap_or_default();
    // SAFETY: NUL-terminated strings; the C function builds the statement in the current memory
    // context and raises as CREATE EVENT TRIGGER would. Raised as-is: we own nothing here.
    unsafe {
        pg_sys::submodules::ffi::pg_guard_ffi_boundary(|| {
            login_trigger_create_dispatcher(
                name(event).as_ptr(),
                event_name.as_ptr(),
                c"login_trigger".as_ptr(),
                c"dispatch_ddl".as_ptr(),
            )
        });
        pg_sys::CommandCounterIncrement();
    }
}

/// Removes the event's dispatcher, if it exists.
pub fn remove(event: Event) {
    if let Some(oid) = oid(event) {
        super::drop_bookkeeping(pg_sys::EventTriggerRelationId, oid);
    }
}

/// Removes every dispatcher (`DROP EXTENSION`, `TRUNCATE` of the registry).
pub fn remove_all() {
    for event in Event::DDL {
        remove(event);
    }
}
