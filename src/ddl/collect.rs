//! Objects of the commands the hook path fires for, collected through the object-access hook
//! while such a command runs and resolved to names once at its end; dropped objects are described
//! while they still exist. Only commands with a matching `ddl_command_end` or `sql_drop`
//! trigger collect. (Commands native event triggers cover never get here: PostgreSQL collects
//! theirs.)

use crate::context::{CommandObject, DroppedObject, cstr};
use crate::pg_ext;
use pgrx::prelude::*;
use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};

type Address = (pg_sys::Oid, pg_sys::Oid, i32);

/// Objects seen by the object-access hook while one command runs.
#[derive(Default)]
struct Collection {
    touched: Vec<(Address, bool)>,
    dropped: Vec<DroppedObject>,
    describe_drops: bool,
}

thread_local! {
    static COLLECTIONS: RefCell<Vec<Collection>> = const { RefCell::new(Vec::new()) };
}

/// Whether `COLLECTIONS` is not empty, kept beside it as a plain static (backends are
/// single-threaded) for the object-access hook, which PostgreSQL calls many times per statement
/// and which asks this outside pgrx's guard: no TLS lookup, nothing that could panic.
static COLLECTING: AtomicBool = AtomicBool::new(false);

/// Changes the stack of collections, keeping `COLLECTING` in step.
fn with_collections<R>(change: impl FnOnce(&mut Vec<Collection>) -> R) -> R {
    COLLECTIONS.with_borrow_mut(|stack| {
        let result = change(stack);
        COLLECTING.store(!stack.is_empty(), Ordering::Relaxed);
        result
    })
}

/// A command collecting its objects; the collection is popped when this is dropped, also when the
/// command fails (its error comes back as a value, so this is always dropped).
pub struct Collecting(bool);

impl Collecting {
    pub fn begin(collecting: bool, describe_drops: bool) -> Collecting {
        if collecting {
            with_collections(|stack| stack.push(Collection { describe_drops, ..Collection::default() }));
        }
        Collecting(collecting)
    }

    /// The objects touched (with whether an extension script touched them) and those dropped.
    pub fn finish(mut self) -> (Vec<(Address, bool)>, Vec<DroppedObject>) {
        if !std::mem::replace(&mut self.0, false) {
            return (Vec::new(), Vec::new());
        }
        let collection = with_collections(Vec::pop).unwrap_or_default();
        (collection.touched, collection.dropped)
    }
}

impl Drop for Collecting {
    fn drop(&mut self) {
        if self.0 {
            with_collections(Vec::pop);
        }
    }
}

/// Whether a command is collecting its objects: the object-access hook's first question.
pub fn is_collecting() -> bool {
    COLLECTING.load(Ordering::Relaxed)
}

/// Called by the object-access hook while a command is collecting.
pub fn on_object_access(
    access: pg_sys::ObjectAccessType::Type,
    class_id: pg_sys::Oid,
    object_id: pg_sys::Oid,
    sub_id: i32,
    arg: *mut std::ffi::c_void,
) {
    if !is_collecting() || arg.is_null() {
        return;
    }
    // SAFETY: PostgreSQL passes the argument struct matching the access type.
    unsafe {
        match access {
            pg_sys::ObjectAccessType::OAT_POST_CREATE => {
                if (*arg.cast::<pg_sys::ObjectAccessPostCreate>()).is_internal || sub_id != 0 {
                    return;
                }
                touch((class_id, object_id, 0));
            }
            pg_sys::ObjectAccessType::OAT_POST_ALTER => {
                let alter = &*arg.cast::<pg_sys::ObjectAccessPostAlter>();
                if alter.is_internal {
                    return;
                }
                if class_id == pg_ext::DB_ROLE_SETTING_RELATION {
                    // ALTER ROLE/DATABASE … SET reports (pg_db_role_setting, database, role), an
                    // address PostgreSQL cannot describe: report the role, or the database.
                    if alter.auxiliary_id != pg_sys::Oid::INVALID {
                        touch((pg_sys::AuthIdRelationId, alter.auxiliary_id, 0));
                    } else if object_id != pg_sys::Oid::INVALID {
                        touch((pg_sys::DatabaseRelationId, object_id, 0));
                    }
                    return;
                }
                touch((class_id, object_id, 0));
            }
            pg_sys::ObjectAccessType::OAT_DROP => {
                let flags = (*arg.cast::<pg_sys::ObjectAccessDrop>()).dropflags;
                if flags & pg_sys::PERFORM_DELETION_INTERNAL as i32 != 0 {
                    return;
                }
                let wanted = COLLECTIONS.with_borrow(|stack| stack.last().is_some_and(|c| c.describe_drops));
                if wanted {
                    let dropped = describe_dropped((class_id, object_id, sub_id));
                    COLLECTIONS.with_borrow_mut(|stack| {
                        if let Some(top) = stack.last_mut() {
                            top.dropped.push(dropped);
                        }
                    });
                }
            }
            _ => {}
        }
    }
}

/// The touched objects that still exist, as `pg_event_trigger_ddl_commands()` rows of `tag`.
pub fn resolve(touched: &[(Address, bool)], tag: &str) -> Vec<CommandObject> {
    touched
        .iter()
        .filter_map(|&(address, in_extension)| {
            let address = object_address(address);
            let (object_type, schema_name, identity) = describe(&address)?;
            Some(CommandObject {
                classid: Some(address.classId),
                objid: Some(address.objectId),
                objsubid: Some(address.objectSubId),
                command_tag: tag.to_owned(),
                object_type,
                schema_name,
                object_identity: Some(identity),
                in_extension,
            })
        })
        .collect()
}

fn touch(address: Address) {
    // SAFETY: reads a backend-local flag set while an extension script runs.
    let in_extension = unsafe { pg_sys::creating_extension };
    COLLECTIONS.with_borrow_mut(|stack| {
        if let Some(top) = stack.last_mut()
            && !top.touched.iter().any(|(seen, _)| *seen == address)
        {
            top.touched.push((address, in_extension));
        }
    });
}

fn object_address((class_id, object_id, sub_id): Address) -> pg_sys::ObjectAddress {
    pg_sys::ObjectAddress { classId: class_id, objectId: object_id, objectSubId: sub_id }
}

/// Type, schema and identity of an object, or None when it no longer exists.
fn describe(address: &pg_sys::ObjectAddress) -> Option<(Option<String>, Option<String>, String)> {
    // SAFETY: catalog lookups with missing_ok, inside the command's transaction.
    unsafe {
        let identity = cstr(object_identity(address))?;
        let object_type = cstr(object_type(address));
        let namespace = object_namespace(address);
        let schema = if namespace == pg_sys::Oid::INVALID { None } else { cstr(pg_sys::get_namespace_name(namespace)) };
        Some((object_type, schema, identity))
    }
}

/// The schema of an object, for the classes PostgreSQL's object-address table knows
/// (`get_object_namespace` raises for the others, such as column defaults).
fn object_namespace(address: &pg_sys::ObjectAddress) -> pg_sys::Oid {
    // SAFETY: catalog lookups guarded by is_objectclass_supported.
    unsafe {
        if pg_sys::is_objectclass_supported(address.classId) {
            pg_sys::get_object_namespace(address)
        } else {
            pg_sys::Oid::INVALID
        }
    }
}

fn text_list(list: *mut pg_sys::List) -> Vec<String> {
    if list.is_null() {
        return Vec::new();
    }
    // SAFETY: strlist_to_textarray turns a list of String nodes into a text[] in the current
    // memory context, which FromDatum copies out.
    unsafe {
        let array = pg_sys::strlist_to_textarray(list);
        Vec::<Option<String>>::from_polymorphic_datum(pg_sys::Datum::from(array), false, pg_sys::TEXTARRAYOID)
            .unwrap_or_default()
            .into_iter()
            .flatten()
            .collect()
    }
}

/// A dropped object as `pg_event_trigger_dropped_objects()` would show it. Every object the
/// commands of this path drop is one they named (a role, database, tablespace, event trigger).
fn describe_dropped(address: Address) -> DroppedObject {
    let original = true;
    let object = object_address(address);
    // SAFETY: the object still exists at OAT_DROP; lookups use missing_ok.
    let (identity, names, args, object_type, namespace) = unsafe {
        let mut names: *mut pg_sys::List = std::ptr::null_mut();
        let mut args: *mut pg_sys::List = std::ptr::null_mut();
        let identity = cstr(object_identity_parts(&object, &mut names, &mut args));
        (identity, text_list(names), text_list(args), cstr(object_type(&object)), object_namespace(&object))
    };
    let (schema_name, is_temporary) = if namespace == pg_sys::Oid::INVALID {
        (None, false)
    } else {
        // SAFETY: syscache lookups of an existing namespace.
        unsafe { (cstr(pg_sys::get_namespace_name(namespace)), pg_sys::isAnyTempNamespace(namespace)) }
    };
    // Native reports a name only where schema and name identify the object.
    let object_name = schema_name.as_ref().and_then(|_| names.last().cloned()).filter(|_| address.2 == 0);
    DroppedObject {
        classid: address.0,
        objid: address.1,
        objsubid: address.2,
        original,
        normal: !original,
        is_temporary,
        object_type,
        schema_name,
        object_name,
        object_identity: identity,
        address_names: names,
        address_args: args,
    }
}

/// PostgreSQL 13's object-description functions have no `missing_ok` and raise for an object
/// dropped later in the same command (a rewrite's transient heap type, say), so existence is
/// checked first where the catalog can say (classes without an object-address entry are tried).
#[cfg(feature = "pg13")]
unsafe fn object_exists(address: &pg_sys::ObjectAddress) -> bool {
    // SAFETY: opens the object's catalog, looks the OID up and closes it again.
    unsafe {
        if !pg_sys::is_objectclass_supported(address.classId) {
            return true;
        }
        let catalog = pg_sys::table_open(address.classId, pg_sys::AccessShareLock as i32);
        let tuple = pg_sys::get_catalog_object_by_oid(
            catalog,
            pg_sys::get_object_attnum_oid(address.classId),
            address.objectId,
        );
        pg_sys::table_close(catalog, pg_sys::AccessShareLock as i32);
        !tuple.is_null()
    }
}

#[cfg(feature = "pg13")]
unsafe fn object_identity(address: &pg_sys::ObjectAddress) -> *mut std::ffi::c_char {
    // SAFETY: described only when it exists (see object_exists).
    unsafe { if object_exists(address) { pg_sys::getObjectIdentity(address) } else { std::ptr::null_mut() } }
}
#[cfg(not(feature = "pg13"))]
unsafe fn object_identity(address: &pg_sys::ObjectAddress) -> *mut std::ffi::c_char {
    // SAFETY: missing_ok returns NULL for an object that is gone.
    unsafe { pg_sys::getObjectIdentity(address, true) }
}

#[cfg(feature = "pg13")]
unsafe fn object_type(address: &pg_sys::ObjectAddress) -> *mut std::ffi::c_char {
    // SAFETY: as object_identity.
    unsafe { if object_exists(address) { pg_sys::getObjectTypeDescription(address) } else { std::ptr::null_mut() } }
}
#[cfg(not(feature = "pg13"))]
unsafe fn object_type(address: &pg_sys::ObjectAddress) -> *mut std::ffi::c_char {
    // SAFETY: as object_identity.
    unsafe { pg_sys::getObjectTypeDescription(address, true) }
}

#[cfg(feature = "pg13")]
unsafe fn object_identity_parts(
    address: &pg_sys::ObjectAddress,
    names: &mut *mut pg_sys::List,
    args: &mut *mut pg_sys::List,
) -> *mut std::ffi::c_char {
    // SAFETY: as object_identity.
    unsafe {
        if object_exists(address) { pg_sys::getObjectIdentityParts(address, names, args) } else { std::ptr::null_mut() }
    }
}
#[cfg(not(feature = "pg13"))]
unsafe fn object_identity_parts(
    address: &pg_sys::ObjectAddress,
    names: &mut *mut pg_sys::List,
    args: &mut *mut pg_sys::List,
) -> *mut std::ffi::c_char {
    // SAFETY: as object_identity.
    unsafe { pg_sys::getObjectIdentityParts(address, names, args, true) }
}
