//! The native event triggers that stand for each event's registrations, named
//! `login_trigger_<event>`, one per event in a database while it has registrations of that event:
//!
//! * for a DDL event, the *dispatcher*, through which the registrations fire (the function,
//!   `login_trigger.dispatch_ddl()`, is in `ddl::native`), enabled `ALWAYS` (each registration's
//!   own state decides under `session_replication_role`). Only while one exists: an enabled native
//!   event trigger makes PostgreSQL collect every DDL command's objects, so a database without DDL
//!   registrations pays nothing;
//! * for login and logout, which fire from our own hooks, a disabled event trigger on
//!   `ddl_command_start` whose function, `login_trigger.session_dispatcher()`, does nothing: it
//!   never fires and costs nothing.
//!
//! Either way it is what makes the event's registrations *active*: they fire, and their guards
//! (the carriers of `maintain`) keep their functions from being dropped, only while it exists.
//! They are not members of the extension, so pg_dump dumps them as what they are, event
//! triggers, which pg_restore creates last, `pg_restore --clean` drops first, and pg_upgrade
//! carries by name: restored registrations become active once the whole restore is done, as native
//! event triggers do, the restore's own commands fire nothing of ours, and `--clean` can drop the
//! registered functions before the extension. Rows restored or inserted by hand do not create one
//! (that would fire in the middle of a restore); `create_trigger()` and `enable_trigger()` do,
//! and the registry's row trigger removes it when the event's last registration goes.

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
        enabled: c_char,
    ) -> pg_sys::Oid;
}

crate::pg_ext::function_info_v1!(pg_finfo_login_trigger_session_dispatcher);

/// `login_trigger.session_dispatcher()`: does nothing (its event triggers are disabled; were a DBA
/// to enable one, it would still fire nothing).
#[unsafe(no_mangle)]
pub extern "C" fn login_trigger_session_dispatcher(_fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    pg_sys::Datum::from(0)
}

/// The event trigger's name for an event.
pub fn name(event: Event) -> &'static CStr {
    match event {
        Event::Login => c"login_trigger_login",
        Event::Logout => c"login_trigger_logout",
        Event::DdlCommandStart => c"login_trigger_ddl_command_start",
        Event::DdlCommandEnd => c"login_trigger_ddl_command_end",
        Event::SqlDrop => c"login_trigger_sql_drop",
        Event::TableRewrite => c"login_trigger_table_rewrite",
    }
}

/// What the event trigger of an event is: its native event, its function in the schema
/// login_trigger, and its state.
fn shape(event: Event) -> (&'static str, &'static CStr, TriggerState) {
    if event.is_session_event() {
        ("ddl_command_start", c"session_dispatcher", TriggerState::Disabled)
    } else {
        (event.name(), c"dispatch_ddl", TriggerState::Always)
    }
}

fn oid(event: Event) -> Option<pg_sys::Oid> {
    // SAFETY: a catalog lookup by name with missing_ok.
    let oid = unsafe { pg_sys::get_event_trigger_oid(name(event).as_ptr(), true) };
    (oid != pg_sys::Oid::INVALID).then_some(oid)
}

/// The state and native event of an event trigger, and the function it calls if that is one of
/// ours (`dispatch_ddl` or `session_dispatcher` in the schema login_trigger).
struct Found {
    state: Option<TriggerState>,
    event: String,
    function: Option<String>,
}

impl Found {
    fn ours(&self) -> bool {
        self.function.is_some()
    }
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
        let ours = schema.as_deref() == Some("login_trigger")
            && matches!(name.as_deref(), Some("dispatch_ddl" | "session_dispatcher"));
        Some(Found { state: TriggerState::from_letter(enabled), event, function: name.filter(|_| ours) })
    }
}

/// Whether the event's registrations are active: its event trigger exists and is ours (in any
/// state: a DBA who disables a dispatcher pauses its registrations, which stay guarded).
pub fn exists(event: Event) -> bool {
    ours(event).is_some()
}

/// Whether the event's registrations are active under the session's `session_replication_role`:
/// its dispatcher exists and would fire now, as PostgreSQL decides for native firing (the hook
/// path asks; the native path fires only through the dispatcher anyway).
pub fn active(event: Event, replica_role: bool) -> bool {
    oid(event)
        .and_then(found)
        .is_some_and(|found| found.ours() && found.state.is_some_and(|state| state.fires(replica_role)))
}

/// Makes the event's event trigger exist as it should: ours, on its native event, calling its
/// function, in its state (re-created if a DBA disabled or altered it). Returns whether it had to
/// be created. Superusers only (CreateEventTrigger checks). An event trigger of that name that is
/// not ours is an error rather than taken for one.
pub fn ensure(event: Event) -> bool {
    let (native_event, function, state) = shape(event);
    if let Some(existing) = oid(event) {
        let found = found(existing);
        if !found.as_ref().is_some_and(Found::ours) {
            Refusal::new(
                PgSqlErrorCode::ERRCODE_DUPLICATE_OBJECT,
                format!("event trigger \"{}\" is not login_trigger's", name(event).to_string_lossy()),
            )
            .detail("login_trigger keeps an event trigger of that name for the event's registrations.")
            .hint("Rename or drop that event trigger.")
            .raise();
        }
        if found.is_some_and(|found| {
            found.event == native_event
                && found.state == Some(state)
                && found.function.as_deref() == function.to_str().ok()
        }) {
            return false;
        }
        super::drop_bookkeeping(pg_sys::EventTriggerRelationId, existing);
    }
    let native_event = std::ffi::CString::new(native_event).unwrap_or_default();
    // SAFETY: NUL-terminated strings; the C function builds the statement in the current memory
    // context and raises as CREATE EVENT TRIGGER would, caught by pgrx's guard (we own nothing
    // that needs it otherwise).
    unsafe {
        pg_sys::submodules::ffi::pg_guard_ffi_boundary(|| {
            login_trigger_create_dispatcher(
                name(event).as_ptr(),
                native_event.as_ptr(),
                c"login_trigger".as_ptr(),
                function.as_ptr(),
                state.letter() as c_char,
            )
        });
    }
    true
}

/// The event's dispatcher, if it exists and is ours.
fn ours(event: Event) -> Option<pg_sys::Oid> {
    oid(event).filter(|oid| found(*oid).is_some_and(|found| found.ours()))
}

/// Removes the event's dispatcher, if it exists and is ours (an event trigger of the same name
/// that is not ours is left alone).
pub fn remove(event: Event) {
    if let Some(oid) = ours(event) {
        super::drop_bookkeeping(pg_sys::EventTriggerRelationId, oid);
    }
}

/// Removes every event trigger of ours (`TRUNCATE` of the registry).
pub fn remove_all() {
    for event in Event::ALL {
        remove(event);
    }
}

/// Just before `DROP EXTENSION login_trigger`: gives each dispatcher of ours its automatic
/// dependency on the extension again (pg_dump does not carry it), so that the command drops them
/// along without CASCADE, after its own `ddl_command_start` has fired, as native would.
pub fn attach_all() {
    for event in Event::ALL {
        if let Some(oid) = ours(event) {
            // SAFETY: records a dependency of an existing event trigger on the existing extension.
            unsafe { pg_sys::submodules::ffi::pg_guard_ffi_boundary(|| login_trigger_attach_dispatcher(oid)) };
        }
    }
}
