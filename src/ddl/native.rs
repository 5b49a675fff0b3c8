//! The dispatcher: the function of the native event triggers through which DDL registrations
//! fire (`login_trigger.dispatch_ddl()`, created per database and event by
//! `registry::dispatchers`). PostgreSQL calls it from its own firing with the `EventTriggerData`
//! of the command; it fires the registrations of that event whose tag filter and state match, in
//! byte order of their names, passing the same data on. So `TG_EVENT`, `TG_TAG` and
//! `pg_event_trigger_ddl_commands()`, `…_dropped_objects()`, `…_table_rewrite_oid()/_reason()`
//! work inside registered functions exactly as inside native ones, a native event-trigger
//! function can be registered unchanged, and the context functions return PostgreSQL's own rows.

use super::statement;
use crate::boundary::PgError;
use crate::context::{Command, Objects};
use crate::event::Event;
use crate::fire;
use crate::gucs;
use crate::pg_ext;
use crate::registry::cache;
use pgrx::prelude::*;
use std::ffi::CStr;

crate::pg_ext::function_info_v1!(pg_finfo_login_trigger_dispatch_ddl);

/// `login_trigger.dispatch_ddl()`. Not `#[pg_guard]`ed: the Rust work runs under pgrx's guard
/// and hands back the error of a trigger function, which is raised again here, from a frame that
/// owns nothing, exactly as the function raised it.
///
/// # Safety
/// Called by PostgreSQL's function manager with a valid `fcinfo`.
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn login_trigger_dispatch_ddl(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    // SAFETY: the guard turns an error or panic of the Rust work into a PostgreSQL ERROR.
    let outcome = unsafe { pgrx::pg_sys::submodules::panic::pgrx_extern_c_guard(|| dispatch(fcinfo)) };
    if let Err(error) = outcome {
        error.rethrow();
    }
    pg_sys::Datum::from(0)
}

fn dispatch(fcinfo: pg_sys::FunctionCallInfo) -> Result<(), PgError> {
    // SAFETY: fcinfo is valid; context is NULL or a node, checked by its tag before use (as
    // CALLED_AS_EVENT_TRIGGER does).
    let data = unsafe {
        let context = (*fcinfo).context;
        if context.is_null() || (*context).type_ != pg_sys::NodeTag::T_EventTriggerData {
            error!("login_trigger.dispatch_ddl() can only be called by the event trigger manager");
        }
        &*context.cast::<pg_sys::EventTriggerData>()
    };
    // SAFETY: reads a backend-local flag.
    if !gucs::enabled() || unsafe { pg_sys::IsBinaryUpgrade } {
        return Ok(());
    }
    // SAFETY: the event name is a NUL-terminated static string of PostgreSQL's.
    // Only DDL events: a login event trigger pointed at the dispatcher (17+) fires nothing.
    let Some(event) = unsafe { CStr::from_ptr(data.event) }
        .to_str()
        .ok()
        .and_then(Event::named)
        .filter(|event| !event.is_session_event())
    else {
        return Ok(());
    };
    // SAFETY: GetCommandTagName returns a static ASCII string for any tag.
    let tag_name = unsafe { CStr::from_ptr(pg_ext::GetCommandTagName(data.tag)) }.to_str().unwrap_or_default();
    let replica = fire::replica_role();
    let snapshot = cache::snapshot();
    let firings: Vec<fire::Firing> = snapshot
        .triggers(event)
        .iter()
        .filter(|t| t.fires_for(Some(tag_name), replica))
        .map(fire::Firing::from)
        .collect();
    if firings.is_empty() {
        return Ok(());
    }
    let (text, elapsed_ms) = statement::innermost().unwrap_or_else(|| {
        // SAFETY: debug_query_string is NULL or the query being run, which outlives the firing.
        (statement::Text::whole(unsafe { pg_sys::debug_query_string }), 0.0)
    });
    let elapsed_ms = (event != Event::DdlCommandStart).then_some(elapsed_ms);
    let command = Command { tag: tag_name, text, elapsed_ms, objects: Objects::Native };
    super::fire_event(event, data.tag, data.parsetree, &firings, command)
}

/// Whether PostgreSQL's own event triggers fire for this statement: its tag allows them, and,
/// for the statements that `standard_ProcessUtility` sends to event-trigger processing only for
/// some object types, that type is one `EventTriggerSupportsObjectType` accepts — the same test,
/// so the two paths split the commands exactly where PostgreSQL does.
pub fn fires_natively(node: *mut pg_sys::Node, tag: pg_sys::CommandTag::Type) -> bool {
    // SAFETY: command_tag_event_trigger_ok reads a static table; the node is the statement being
    // run, read according to its tag.
    unsafe {
        if !pg_ext::command_tag_event_trigger_ok(tag) {
            return false;
        }
        let object_type = match (*node).type_ {
            pg_sys::NodeTag::T_GrantStmt => (*node.cast::<pg_sys::GrantStmt>()).objtype,
            pg_sys::NodeTag::T_DropStmt => (*node.cast::<pg_sys::DropStmt>()).removeType,
            pg_sys::NodeTag::T_RenameStmt => (*node.cast::<pg_sys::RenameStmt>()).renameType,
            pg_sys::NodeTag::T_AlterObjectDependsStmt => (*node.cast::<pg_sys::AlterObjectDependsStmt>()).objectType,
            pg_sys::NodeTag::T_AlterObjectSchemaStmt => (*node.cast::<pg_sys::AlterObjectSchemaStmt>()).objectType,
            pg_sys::NodeTag::T_AlterOwnerStmt => (*node.cast::<pg_sys::AlterOwnerStmt>()).objectType,
            pg_sys::NodeTag::T_CommentStmt => (*node.cast::<pg_sys::CommentStmt>()).objtype,
            pg_sys::NodeTag::T_SecLabelStmt => (*node.cast::<pg_sys::SecLabelStmt>()).objtype,
            _ => return true,
        };
        pg_ext::EventTriggerSupportsObjectType(object_type)
    }
}

/// Whether the statement creates, alters or drops our event triggers (`registry::dispatchers`)
/// and nothing else (pg_restore creating them last, `--clean` dropping them first, a DBA
/// disabling one): bookkeeping, which fires nothing of ours, as native event triggers fire
/// nothing for event-trigger commands.
pub fn names_only_dispatchers(node: *mut pg_sys::Node) -> bool {
    let is_dispatcher = |name: *const std::ffi::c_char| {
        crate::context::cstr(name).is_some_and(|name| {
            Event::ALL.iter().any(|event| crate::registry::dispatchers::name(*event).to_bytes() == name.as_bytes())
        })
    };
    // SAFETY: the node is the statement being run, read according to its tag.
    unsafe {
        match (*node).type_ {
            pg_sys::NodeTag::T_CreateEventTrigStmt => {
                is_dispatcher((*node.cast::<pg_sys::CreateEventTrigStmt>()).trigname)
            }
            pg_sys::NodeTag::T_AlterEventTrigStmt => {
                is_dispatcher((*node.cast::<pg_sys::AlterEventTrigStmt>()).trigname)
            }
            pg_sys::NodeTag::T_DropStmt
                if (*node.cast::<pg_sys::DropStmt>()).removeType == pg_sys::ObjectType::OBJECT_EVENT_TRIGGER =>
            {
                names_in(node.cast()).iter().all(|name| is_dispatcher(*name))
            }
            // ALTER EVENT TRIGGER … OWNER TO / RENAME TO, COMMENT ON EVENT TRIGGER: the object is
            // the trigger's name.
            pg_sys::NodeTag::T_AlterOwnerStmt
                if (*node.cast::<pg_sys::AlterOwnerStmt>()).objectType == pg_sys::ObjectType::OBJECT_EVENT_TRIGGER =>
            {
                is_dispatcher(string_value((*node.cast::<pg_sys::AlterOwnerStmt>()).object.cast()))
            }
            pg_sys::NodeTag::T_RenameStmt
                if (*node.cast::<pg_sys::RenameStmt>()).renameType == pg_sys::ObjectType::OBJECT_EVENT_TRIGGER =>
            {
                is_dispatcher(string_value((*node.cast::<pg_sys::RenameStmt>()).object.cast()))
            }
            pg_sys::NodeTag::T_CommentStmt
                if (*node.cast::<pg_sys::CommentStmt>()).objtype == pg_sys::ObjectType::OBJECT_EVENT_TRIGGER =>
            {
                is_dispatcher(string_value((*node.cast::<pg_sys::CommentStmt>()).object.cast()))
            }
            _ => false,
        }
    }
}

/// The names a DROP statement of unqualified objects (extensions, event triggers) lists.
///
/// # Safety
/// `drop` is a valid DropStmt whose objects are String nodes.
unsafe fn names_in(drop: *mut pg_sys::DropStmt) -> Vec<*const std::ffi::c_char> {
    // SAFETY: as the function's contract says.
    unsafe {
        let objects = (*drop).objects;
        let count = if objects.is_null() { 0 } else { (*objects).length as usize };
        (0..count).map(|position| string_value((*(*objects).elements.add(position)).ptr_value)).collect()
    }
}

/// Whether the statement is a `DROP EXTENSION` naming login_trigger, and the extension is here.
pub fn drops_this_extension(node: *mut pg_sys::Node) -> bool {
    // SAFETY: a DropStmt of extensions lists String nodes; the node is read according to its tag.
    unsafe {
        if (*node).type_ != pg_sys::NodeTag::T_DropStmt
            || (*node.cast::<pg_sys::DropStmt>()).removeType != pg_sys::ObjectType::OBJECT_EXTENSION
        {
            return false;
        }
        names_in(node.cast()).into_iter().any(|name| crate::context::cstr(name).as_deref() == Some("login_trigger"))
            && pg_sys::get_extension_oid(c"login_trigger".as_ptr(), true) != pg_sys::Oid::INVALID
            && !pg_sys::RecoveryInProgress()
    }
}

#[cfg(any(feature = "pg13", feature = "pg14"))]
unsafe fn string_value(node: *mut std::ffi::c_void) -> *const std::ffi::c_char {
    // SAFETY: a Value node of type T_String holds its string in val.str_.
    unsafe { (*node.cast::<pg_sys::Value>()).val.str_ }
}
#[cfg(not(any(feature = "pg13", feature = "pg14")))]
unsafe fn string_value(node: *mut std::ffi::c_void) -> *const std::ffi::c_char {
    // SAFETY: a String node holds its string in sval.
    unsafe { (*node.cast::<pg_sys::String>()).sval }
}

/// `event_triggers` (17+): off, PostgreSQL fires no event trigger, and we fire none either,
/// on either path.
#[cfg(any(feature = "pg17", feature = "pg18"))]
pub fn event_triggers_enabled() -> bool {
    // SAFETY: reads a backend-local setting.
    unsafe { pg_sys::event_triggers }
}
#[cfg(not(any(feature = "pg17", feature = "pg18")))]
pub fn event_triggers_enabled() -> bool {
    true
}
