//! `object_access_hook`: notices functions being dropped, so that `DROP FUNCTION … CASCADE`
//! removes the registrations of the function too; notices the registry being dropped, so that
//! the shared summary of session triggers forgets it; and reports objects created, altered and
//! dropped to `ddl` while a DDL command is collecting them for its triggers.

use crate::ddl;
use crate::registry::{self, maintain};
use pgrx::prelude::*;

static mut PREVIOUS: pg_sys::object_access_hook_type = None;

pub fn init() {
    // SAFETY: _PG_init runs once per process before any query, single-threaded; the previous
    // hook is saved before ours replaces it so the chain stays intact.
    unsafe {
        PREVIOUS = pg_sys::object_access_hook;
        pg_sys::object_access_hook = Some(object_access);
    }
}

/// The hook, not `#[pg_guard]`ed: PostgreSQL calls it several times per DDL statement and on
/// every schema lookup and function execution (`OAT_NAMESPACE_SEARCH`, `OAT_FUNCTION_EXECUTE`),
/// and nearly every call concerns nothing of ours. Those return after the previous hook and a few
/// comparisons; the others enter pgrx's guard for the Rust work.
unsafe extern "C-unwind" fn object_access(
    access: pg_sys::ObjectAccessType::Type,
    class_id: pg_sys::Oid,
    object_id: pg_sys::Oid,
    sub_id: i32,
    arg: *mut std::ffi::c_void,
) {
    // SAFETY: the previous hook was installed by another library with this exact signature and
    // receives our arguments unchanged. It is called bare, as PostgreSQL would call it: no value
    // with a destructor is live in this frame, so an error it raises passes as through C.
    unsafe {
        if let Some(previous) = PREVIOUS {
            previous(access, class_id, object_id, sub_id, arg);
        }
    }
    if !concerns_us(access, class_id) && !ddl::collect::is_collecting() {
        return;
    }
    // SAFETY: the guard turns an error or panic of the Rust work into a PostgreSQL ERROR.
    unsafe {
        pgrx::pg_sys::submodules::panic::pgrx_extern_c_guard(|| {
            on_object_access(access, class_id, object_id, sub_id, arg)
        })
    }
}

/// The accesses that may concern the registry: renames of functions and schemas, any change to
/// an event trigger, drops of functions, extensions, schemas and relations.
fn concerns_us(access: pg_sys::ObjectAccessType::Type, class_id: pg_sys::Oid) -> bool {
    match access {
        pg_sys::ObjectAccessType::OAT_POST_ALTER => matches!(
            class_id,
            pg_sys::NamespaceRelationId | pg_sys::ProcedureRelationId | pg_sys::EventTriggerRelationId
        ),
        pg_sys::ObjectAccessType::OAT_DROP => matches!(
            class_id,
            pg_sys::ProcedureRelationId
                | pg_sys::ExtensionRelationId
                | pg_sys::NamespaceRelationId
                | pg_sys::RelationRelationId
                | pg_sys::EventTriggerRelationId
        ),
        _ => class_id == pg_sys::EventTriggerRelationId,
    }
}

fn on_object_access(
    access: pg_sys::ObjectAccessType::Type,
    class_id: pg_sys::Oid,
    object_id: pg_sys::Oid,
    sub_id: i32,
    arg: *mut std::ffi::c_void,
) {
    // SAFETY: reads backend-local flags. pg_upgrade carries names and guards as they are; an
    // extension script (ours being updated included) is left to finish what it changes.
    let maintaining = unsafe { !pg_sys::IsBinaryUpgrade && !pg_sys::creating_extension };
    if maintaining
        && access == pg_sys::ObjectAccessType::OAT_POST_ALTER
        && (class_id == pg_sys::NamespaceRelationId
            || (class_id == pg_sys::ProcedureRelationId && registry::cache::snapshot().registers_function(object_id)))
    {
        maintain::follow_renames();
    }
    // An event trigger created, altered (renamed, disabled) or dropped, by whatever command: the
    // guards are reconciled with which of ours exist once the command is done.
    if maintaining && class_id == pg_sys::EventTriggerRelationId {
        maintain::event_triggers_changed();
    }
    if access == pg_sys::ObjectAccessType::OAT_DROP {
        match class_id {
            pg_sys::ProcedureRelationId => maintain::forget_function(object_id),
            pg_sys::ExtensionRelationId | pg_sys::NamespaceRelationId | pg_sys::RelationRelationId => {
                maintain::notice_drop(class_id, object_id)
            }
            _ => {}
        }
    }
    ddl::collect::on_object_access(access, class_id, object_id, sub_id, arg);
}
