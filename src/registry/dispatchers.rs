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
use crate::event::{Event, TriggerState};
use pgrx::PgSqlErrorCode;
use pgrx::prelude::*;
use std::ffi::{CStr, c_char};

unsafe extern "C-unwind" {
    /// src/shim/dispatcher.c
    fn login_trigger_attach_dispatcher(dispatcher: pg_sys::Oid);
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

/// The state and event of an event trigger, and whether it calls `login_trigger.dispatch_ddl()`.
struct Found {
    state: Option<TriggerState>,
    event: String,
    ours: bool,
}

fn found(event_trigger: pg_sys::Oid) -> Option<Found> {
    // SAFETY: syscache lookups of an existing event trigger and its function, released at once;
    // the name lookups return NULL for a missing object.
    unsafe {
        let tuple = pg_sys::SearchSysCache1(pg_sys::SysCacheIdentifier::EVENTTRIGGEROID as i32, event_trigger.into());
        if tuple.is_null() {
            return None;
        }
        let row = &*pg_sys::heap_tuple_get_struct::<pg_sys::FormData_pg_event_trigger>(tuple);
        let (function, enabled) = (row.evtfoid, row.evtenabled as u8 as char);
        let event = std::ffi::CStr::from_ptr(row.evtevent.data.as_ptr()).to_string_lossy().into_owned();
        pg_sys::ReleaseSysCache(tuple);
        let schema = crate::context::cstr(pg_sys::get_namespace_name(pg_sys::get_func_namespace(function)));
        let name = crate::context::cstr(pg_sys::get_func_name(function));
        let ours = schema.as_deref() == Some("login_trigger") && name.as_deref() == Some("dispatch_ddl");
        Some(Found { state: TriggerState::from_letter(enabled), event, ours })
    }
}

/// Whether the event's registrations are active under the session's `session_replication_role`:
/// its dispatcher exists and would fire now, as PostgreSQL decides for native firing (the hook
/// path asks; the native path fires only through the dispatcher anyway).
pub fn active(event: Event, replica_role: bool) -> bool {
    oid(event)
        .and_then(found)
        .is_some_and(|found| found.ours && found.state.is_some_and(|state| state.fires(replica_role)))
}

/// Makes the event's dispatcher exist as it should: ours, for this event, `ENABLE ALWAYS`
/// (re-created if a DBA disabled or altered it). Superusers only (CreateEventTrigger checks). An
/// event trigger of that name that is not ours is an error rather than taken for one.
pub fn ensure(event: Event) {
    if let Some(existing) = oid(event) {
        let found = found(existing);
        if !found.as_ref().is_some_and(|found| found.ours) {
            Refusal::new(
                PgSqlErrorCode::ERRCODE_DUPLICATE_OBJECT,
                format!("event trigger \"{}\" is not login_trigger's", name(event).to_string_lossy()),
            )
            .detail("login_trigger fires DDL registrations through an event trigger of that name.")
            .hint("Rename or drop that event trigger.")
            .raise();
        }
        if found.is_some_and(|found| found.event == event.name() && found.state == Some(TriggerState::Always)) {
            return;
        }
        super::drop_bookkeeping(pg_sys::EventTriggerRelationId, existing);
    }
    let event_name = std::ffi::CString::new(event.name()).unwrap_or_default();
    // SAFETY: NUL-terminated strings; the C function builds the statement in the current memory
    // context and raises as CREATE EVENT TRIGGER would, caught by pgrx's guard (we own nothing
    // that needs it otherwise).
    unsafe {
        pg_sys::submodules::ffi::pg_guard_ffi_boundary(|| {
            login_trigger_create_dispatcher(
                name(event).as_ptr(),
                event_name.as_ptr(),
                c"login_trigger".as_ptr(),
                c"dispatch_ddl".as_ptr(),
            )
        });
    }
}

/// The event's dispatcher, if it exists and is ours.
fn ours(event: Event) -> Option<pg_sys::Oid> {
    oid(event).filter(|oid| found(*oid).is_some_and(|found| found.ours))
}

/// Removes the event's dispatcher, if it exists and is ours (an event trigger of the same name
/// that is not ours is left alone).
pub fn remove(event: Event) {
    if let Some(oid) = ours(event) {
        super::drop_bookkeeping(pg_sys::EventTriggerRelationId, oid);
    }
}

/// Removes every dispatcher of ours (`TRUNCATE` of the registry).
pub fn remove_all() {
    for event in Event::DDL {
        remove(event);
    }
}

/// Just before `DROP EXTENSION login_trigger`: gives each dispatcher of ours its automatic
/// dependency on the extension again (pg_dump does not carry it), so that the command drops them
/// along without CASCADE, after its own `ddl_command_start` has fired, as native would.
pub fn attach_all() {
    for event in Event::DDL {
        if let Some(oid) = ours(event) {
            // SAFETY: records a dependency of an existing event trigger on the existing extension.
            unsafe { pg_sys::submodules::ffi::pg_guard_ffi_boundary(|| login_trigger_attach_dispatcher(oid)) };
        }
    }
}
