//! The per-backend cache of the registry. It is built on first use from one scan of the catalog
//! table and dropped when the catalog table's relcache entry is invalidated (the catalog triggers send
//! that invalidation on every change) or when a schema is created, dropped or renamed (which is how
//! `CREATE EXTENSION` and `DROP EXTENSION` show up). While it is valid, asking whether an event has
//! triggers costs a thread-local read: no query, no catalog scan.

use super::{EXTENSION, SCHEMA, TABLE};
use crate::event::{Event, TriggerState};
use pgrx::prelude::*;
use std::cell::Cell;
use std::ffi::CStr;
use std::rc::Rc;
use std::sync::atomic::{AtomicU32, Ordering};

/// One registered trigger, as the firing code needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    pub name: String,
    pub function: pg_sys::Oid,
    pub state: TriggerState,
    /// Normalised upper-case command tags; `None` fires for every command.
    pub tags: Option<Vec<String>>,
}

impl Registration {
    /// Whether the trigger fires for a command with this tag (`None` for session events) under the
    /// session's `session_replication_role`.
    pub fn fires_for(&self, tag: Option<&str>, replica_role: bool) -> bool {
        self.state.fires(replica_role)
            && match (&self.tags, tag) {
                (Some(filter), Some(tag)) => filter.iter().any(|wanted| wanted == tag),
                _ => true,
            }
    }
}

/// The registry as of the last build: enabled triggers per event in byte order of their names.
#[derive(Debug, Default)]
pub struct Snapshot {
    by_event: [Vec<Registration>; Event::ALL.len()],
    /// Every registration, disabled and inactive ones included, with its function, for
    /// `DROP FUNCTION … CASCADE` and to know which `ALTER FUNCTION` may rename one.
    functions: Vec<RegisteredFunction>,
}

/// A registration and the function it resolved to.
#[derive(Debug, Clone)]
pub struct RegisteredFunction {
    pub registration: String,
    pub function: pg_sys::Oid,
}

impl Snapshot {
    pub fn triggers(&self, event: Event) -> &[Registration] {
        &self.by_event[event.index()]
    }

    pub fn registers_function(&self, function: pg_sys::Oid) -> bool {
        self.functions.iter().any(|registered| registered.function == function)
    }

    /// Every registration's function.
    pub fn functions(&self) -> &[RegisteredFunction] {
        &self.functions
    }
}

/// The catalog table the cache was built from, to match relcache invalidations against: a plain
/// static (backends are single-threaded), since PostgreSQL asks about every relation a DDL
/// statement invalidates, several times per statement, and a thread-local costs a TLS lookup in
/// a shared library.
static REGISTRY: AtomicU32 = AtomicU32::new(0);

thread_local! {
    /// A `Cell`, not a `RefCell`: the invalidation callbacks empty it outside pgrx's guard, where
    /// nothing may panic.
    static CURRENT: Cell<Option<Rc<Snapshot>>> = const { Cell::new(None) };
    /// Bumped by every invalidation, so that a build overtaken by one is not kept.
    static GENERATION: Cell<u64> = const { Cell::new(0) };
    static CALLBACKS_REGISTERED: Cell<bool> = const { Cell::new(false) };
    /// The OID of the schema named like the extension's, once looked up (`None`: not yet), until
    /// `pg_namespace` changes.
    static SCHEMA_OID: Cell<Option<pg_sys::Oid>> = const { Cell::new(None) };
}

/// The current registry. Must be called inside a transaction (it may have to query the catalog);
/// the returned snapshot stays usable even if the cache is invalidated meanwhile, as native
/// event triggers copy their trigger list before invoking anything.
pub fn snapshot() -> Rc<Snapshot> {
    let current = CURRENT.take();
    CURRENT.set(current.clone());
    if let Some(current) = current {
        return current;
    }
    register_callbacks_once();
    let generation = GENERATION.get();
    let built = Rc::new(build());
    if GENERATION.get() == generation {
        CURRENT.set(Some(Rc::clone(&built)));
    }
    built
}

/// Forgets the cache; the next [`snapshot`] rebuilds it.
pub fn invalidate() {
    GENERATION.set(GENERATION.get().wrapping_add(1));
    CURRENT.set(None);
    // Until the next build, which may find another table (or none).
    REGISTRY.store(pg_sys::Oid::INVALID.to_u32(), Ordering::Relaxed);
}

/// The registry table's OID as the last build found it, while no invalidation has come since
/// (a dropped or re-created registry invalidates): `None` when this backend has not read the
/// registry since, or there was none.
pub fn known_registry() -> Option<pg_sys::Oid> {
    let relid = pg_sys::Oid::from(REGISTRY.load(Ordering::Relaxed));
    (relid != pg_sys::Oid::INVALID).then_some(relid)
}

/// Whether registrations of a session event may exist in this database, answered from the
/// syscache alone: the event's carrier table has triggers. False is certain; true (possibly
/// stale) means the registry must be read. Needs a transaction.
pub fn may_have_triggers(event: Event) -> bool {
    // By name only (syscache lookups; the extension check costs two catalog scans in every new
    // backend): a look-alike table can only make the answer "true", and the registry read that
    // follows checks membership.
    let Some(table) = relation_by_name(super::carrier_table_name(event)) else { return false };
    // SAFETY: a syscache lookup of an existing relation's pg_class row, released at once.
    unsafe {
        let tuple = pg_sys::SearchSysCache1(pg_sys::SysCacheIdentifier::RELOID as i32, table.into());
        if tuple.is_null() {
            return true;
        }
        let has_triggers = (*pg_sys::heap_tuple_get_struct::<pg_sys::FormData_pg_class>(tuple)).relhastriggers;
        pg_sys::ReleaseSysCache(tuple);
        has_triggers
    }
}

/// A relation named `name` in a schema named like the extension's, whoever made it.
fn relation_by_name(name: &CStr) -> Option<pg_sys::Oid> {
    let namespace = schema_oid();
    if namespace == pg_sys::Oid::INVALID {
        return None;
    }
    // SAFETY: a syscache lookup inside the caller's transaction with a NUL-terminated name;
    // get_relname_relid returns InvalidOid for a missing relation.
    let relid = unsafe { pg_sys::get_relname_relid(name.as_ptr(), namespace) };
    (relid != pg_sys::Oid::INVALID).then_some(relid)
}

/// The OID of the schema named like the extension's (InvalidOid if there is none), whoever made
/// it. Looked up once and kept until `pg_namespace` changes: DDL asks it for every relation a
/// command drops, and a login for its database's carrier tables. Needs a transaction.
pub fn schema_oid() -> pg_sys::Oid {
    if let Some(oid) = SCHEMA_OID.get() {
        return oid;
    }
    register_callbacks_once();
    let generation = GENERATION.get();
    // SAFETY: a syscache lookup with a NUL-terminated name; missing_ok makes it return InvalidOid.
    let oid = unsafe { pg_sys::get_namespace_oid(SCHEMA.as_ptr(), true) };
    if GENERATION.get() == generation {
        SCHEMA_OID.set(Some(oid));
    }
    oid
}

/// The OID of one of the extension's own relations, if the extension is installed here. Found
/// by name and then checked to be a member of the extension: whoever may create databases can
/// create a schema `login_trigger` with look-alike tables or views in a database without the
/// extension, and the registry is read as the bootstrap superuser.
pub fn relation(name: &CStr) -> Option<pg_sys::Oid> {
    let relid = relation_by_name(name)?;
    // SAFETY: catalog lookups inside the caller's transaction; missing_ok makes get_extension_oid
    // return InvalidOid, which no object belongs to.
    unsafe {
        let extension = pg_sys::get_extension_oid(EXTENSION.as_ptr(), true);
        (extension != pg_sys::Oid::INVALID
            && pg_sys::getExtensionOfObject(pg_sys::RelationRelationId, relid) == extension)
            .then_some(relid)
    }
}

fn build() -> Snapshot {
    let Some(registry) = relation(TABLE) else {
        REGISTRY.store(pg_sys::Oid::INVALID.to_u32(), Ordering::Relaxed);
        return Snapshot::default();
    };
    REGISTRY.store(registry.to_u32(), Ordering::Relaxed);
    let rows = scan_registry(registry);
    let mut snapshot = Snapshot::default();
    // An event's registrations are active while its event trigger exists (see `dispatchers`).
    let active: Vec<Event> = Event::ALL.into_iter().filter(|event| super::dispatchers::exists(*event)).collect();
    for RegistryRow { name, event, function: stored_name, enabled, tags } in rows {
        let Ok(event) = Event::parse(&event) else {
            continue;
        };
        // A function dropped while the library was not loaded leaves a row that names nothing;
        // such a row cannot fire, and drop_trigger() removes it.
        let Some(function) = registered_function(event, &name, &stored_name) else {
            continue;
        };
        snapshot.functions.push(RegisteredFunction { registration: name.clone(), function });
        let Some(state) = TriggerState::from_letter(enabled) else {
            continue;
        };
        if state == TriggerState::Disabled || !active.contains(&event) {
            continue;
        }
        let tags = tags.map(|tags| tags.into_iter().flatten().collect());
        snapshot.by_event[event.index()].push(Registration { name, function, state, tags });
    }
    // Byte order of names, as native event triggers fire (their names are compared with strcmp).
    for triggers in &mut snapshot.by_event {
        triggers.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
    }
    snapshot
}

/// One row of the registry, as stored.
pub struct RegistryRow {
    pub name: String,
    pub event: String,
    /// The function's `schema.function` name.
    pub function: String,
    /// The state's catalog letter (`O`, `D`, `R`, `A`).
    pub enabled: char,
    pub tags: Option<Vec<Option<String>>>,
}

/// The registry's columns the cache reads, by name, with the type each is read as: their numbers
/// are looked up in the table's descriptor, so a later release's schema (a column added or
/// dropped) is read the same way, and a column of another type is refused, never misread.
const COLUMNS: [(&CStr, pg_sys::Oid); 5] = [
    (c"name", pg_sys::TEXTOID),
    (c"event", pg_sys::TEXTOID),
    (c"function", pg_sys::TEXTOID),
    (c"enabled", pg_sys::CHAROID),
    (c"tags", pg_sys::TEXTARRAYOID),
];

/// Every row of the registry, read afresh (not from the cache): the one reader of the table, for
/// the cache and for the bookkeeping that reconciles guards and follows renames.
///
/// A plain heap scan, as PostgreSQL reads `pg_event_trigger` for its own event-trigger cache
/// (`systable_beginscan` without an index, under a catalog snapshot, which for a table without a
/// syscache is taken afresh at every scan: it sees every committed registration and the
/// transaction's own as of its last command-counter increment). No query is parsed or planned, so nothing resolves through the session's
/// search_path and no privilege or row-level-security policy of the table applies.
pub fn read_registry() -> Vec<RegistryRow> {
    relation(TABLE).map(scan_registry).unwrap_or_default()
}

fn scan_registry(registry: pg_sys::Oid) -> Vec<RegistryRow> {
    // SAFETY: the table is ours (checked by `relation`), opened with AccessShareLock and closed
    // again before returning; every tuple is read while the scan holds its buffer, and its values
    // are copied into Rust strings (detoasted by FromDatum) before the next one is fetched.
    unsafe {
        // Dropped meanwhile (DROP EXTENSION committed by another session): no registrations.
        let table = pg_sys::try_relation_open(registry, pg_sys::AccessShareLock as pg_sys::LOCKMODE);
        if table.is_null() {
            return Vec::new();
        }
        let descriptor = (*table).rd_att;
        let attnums = COLUMNS.map(|(column, _)| pg_sys::attnameAttNum(table, column.as_ptr(), false));
        let is_typed =
            |attnum: i32, type_oid: pg_sys::Oid| attnum > 0 && pg_sys::attnumTypeId(table, attnum) == type_oid;
        if let Some(((column, type_oid), _)) =
            COLUMNS.iter().zip(attnums).find(|((_, type_oid), attnum)| !is_typed(*attnum, *type_oid))
        {
            error!(
                "the login_trigger registry has no column \"{}\" of type {}",
                column.to_string_lossy(),
                crate::context::cstr(pg_sys::format_type_be(*type_oid)).unwrap_or_default()
            );
        }
        let mut rows = Vec::new();
        scan_catalog(table, pg_sys::Oid::INVALID, &mut [], |tuple| {
            let column = |index: usize| {
                let mut is_null = false;
                let datum = pg_sys::heap_getattr(tuple, attnums[index], descriptor, &mut is_null);
                (datum, is_null)
            };
            let text = |index: usize| {
                let (datum, is_null) = column(index);
                String::from_datum(datum, is_null).unwrap_or_default()
            };
            let (enabled, enabled_null) = column(3);
            let (tags, tags_null) = column(4);
            rows.push(RegistryRow {
                name: text(0),
                event: text(1),
                function: text(2),
                enabled: if enabled_null { '\0' } else { char::from(enabled.value() as u8) },
                tags: Vec::<Option<String>>::from_polymorphic_datum(tags, tags_null, pg_sys::TEXTARRAYOID),
            });
            None::<()>
        });
        pg_sys::relation_close(table, pg_sys::AccessShareLock as pg_sys::LOCKMODE);
        rows
    }
}

/// The function of a registration: the one its stored `schema.function` names, or, when that
/// names nothing, the one its guard depends on — the same function by OID, renamed by a command
/// that raced the registration's own transaction and so could not rename it in the registry.
pub fn registered_function(event: Event, registration: &str, stored_name: &str) -> Option<pg_sys::Oid> {
    crate::function_name::resolve(stored_name).or_else(|| guarded_function(event, registration))
}

/// The function the guard (carrier trigger) of a registration depends on, if it has one: the
/// carrier's `pg_depend` rows on functions other than the carrier function itself, read with an
/// index scan under a catalog snapshot (`pg_depend` has no syscache, so it is taken afresh), as
/// the registry is: no query, no transaction ID (a standby's login can ask it too).
fn guarded_function(event: Event, registration: &str) -> Option<pg_sys::Oid> {
    let table = relation(super::carrier_table_name(event))?;
    let name = std::ffi::CString::new(registration).ok()?;
    // SAFETY: a catalog lookup by table and name with missing_ok.
    let carrier = unsafe { pg_sys::get_trigger_oid(table, name.as_ptr(), true) };
    if carrier == pg_sys::Oid::INVALID {
        return None;
    }
    let carrier_function = super::carrier_function();
    // SAFETY: pg_depend is opened with AccessShareLock and closed before returning; the scan keys
    // are initialised by ScanKeyInit for pg_depend's (classid, objid, objsubid) index, and each
    // tuple's fixed-size struct is read while the scan holds its buffer.
    unsafe {
        let depend = pg_sys::table_open(crate::pg_ext::DEPEND_RELATION, pg_sys::AccessShareLock as pg_sys::LOCKMODE);
        let mut keys: [pg_sys::ScanKeyData; 2] = std::mem::zeroed();
        let key = |key: &mut pg_sys::ScanKeyData, attribute: pg_sys::AttrNumber, value: pg_sys::Oid| {
            pg_sys::ScanKeyInit(
                key,
                attribute,
                pg_sys::BTEqualStrategyNumber as pg_sys::StrategyNumber,
                pg_sys::F_OIDEQ.into(),
                value.into(),
            )
        };
        key(&mut keys[0], crate::pg_ext::ANUM_PG_DEPEND_CLASSID, pg_sys::TriggerRelationId);
        key(&mut keys[1], crate::pg_ext::ANUM_PG_DEPEND_OBJID, carrier);
        let function = scan_catalog(depend, crate::pg_ext::DEPEND_DEPENDER_INDEX, &mut keys, |tuple| {
            let row = &*pg_sys::heap_tuple_get_struct::<crate::pg_ext::FormDataPgDepend>(tuple);
            (row.refclassid == pg_sys::ProcedureRelationId && Some(row.refobjid) != carrier_function)
                .then_some(row.refobjid)
        });
        pg_sys::table_close(depend, pg_sys::AccessShareLock as pg_sys::LOCKMODE);
        function
    }
}

/// Visits the rows of an open table under a catalog snapshot, as PostgreSQL's own caches read
/// catalogs (an index scan when `index` and `keys` are given, else a heap scan), until `visit`
/// returns something.
///
/// # Safety
/// `table` is open and stays open during the call; `visit` reads each tuple only while it is
/// called (the scan holds its buffer), copying out what it keeps.
unsafe fn scan_catalog<T>(
    table: pg_sys::Relation,
    index: pg_sys::Oid,
    keys: &mut [pg_sys::ScanKeyData],
    mut visit: impl FnMut(pg_sys::HeapTuple) -> Option<T>,
) -> Option<T> {
    // SAFETY: as the caller guarantees; a NULL snapshot is the catalog snapshot, and the keys
    // (if any) are initialised for the index's leading columns.
    unsafe {
        let scan = pg_sys::systable_beginscan(
            table,
            index,
            index != pg_sys::Oid::INVALID,
            std::ptr::null_mut(),
            keys.len() as i32,
            if keys.is_empty() { std::ptr::null_mut() } else { keys.as_mut_ptr() },
        );
        let mut found = None;
        while found.is_none() {
            let tuple = pg_sys::systable_getnext(scan);
            if tuple.is_null() {
                break;
            }
            found = visit(tuple);
        }
        pg_sys::systable_endscan(scan);
        found
    }
}

fn register_callbacks_once() {
    if CALLBACKS_REGISTERED.replace(true) {
        return;
    }
    // SAFETY: both registrations store a function pointer in a backend-local array; the callbacks
    // only set cells (nothing in them can raise or panic).
    unsafe {
        pg_sys::CacheRegisterRelcacheCallback(Some(on_relcache_invalidation), pg_sys::Datum::from(0));
        pg_sys::CacheRegisterSyscacheCallback(
            pg_sys::SysCacheIdentifier::NAMESPACEOID as i32,
            Some(on_namespace_invalidation),
            pg_sys::Datum::from(0),
        );
    }
}

/// Not `#[pg_guard]`ed, as nothing here can raise or panic: called for every relation whose cache
/// entry is invalidated, several times per DDL statement.
unsafe extern "C-unwind" fn on_relcache_invalidation(_arg: pg_sys::Datum, relid: pg_sys::Oid) {
    if relid == pg_sys::Oid::INVALID || relid.to_u32() == REGISTRY.load(Ordering::Relaxed) {
        invalidate();
    }
}

/// Not `#[pg_guard]`ed, as on_relcache_invalidation.
unsafe extern "C-unwind" fn on_namespace_invalidation(_arg: pg_sys::Datum, _cache_id: i32, _hash: u32) {
    SCHEMA_OID.set(None);
    invalidate();
}
