//! Everything that keeps derived state in step with `login_trigger.event_trigger`, whoever writes
//! it (the SQL API, a superuser's direct DML, or pg_restore loading the dumped rows):
//!
//! * `event_trigger_check`, a BEFORE row trigger, applies the accept/reject contract and
//!   normalises the tag filter;
//! * `event_trigger_sync`, an AFTER row and TRUNCATE trigger, keeps each registration's
//!   dependency carrier and invalidates every backend's cache;
//! * [`forget_function`] removes the registrations of a function dropped with `CASCADE`.
//!
//! The dependency carrier: `pg_depend` can only record dependencies between catalog objects, so
//! each registration owns a trigger of the same name on the always-empty table
//! `login_trigger.registered_function`, and that trigger depends on the registered function. Plain
//! `DROP FUNCTION` is therefore refused by PostgreSQL itself ("trigger … on table
//! login_trigger.registered_function depends on function …"), and `DROP FUNCTION … CASCADE` drops
//! the carrier, after which the object-access hook removes the registration.

use super::dispatchers;
use super::validate::{self, Accepted};
use super::{CARRIER_TABLES, SCHEMA, TABLE, cache, carrier_table_name};
use crate::error::{OrRaise, Refusal};
use crate::event::Event;
use crate::function_name;
use crate::security::as_bootstrap_superuser;
use pgrx::prelude::*;
use std::ffi::CString;

/// Refuses to run as a trigger of any table but the registry: the trigger functions act as the
/// bootstrap superuser on the registry's dependencies, so nobody may attach them elsewhere
/// (EXECUTE is revoked from PUBLIC too, which CREATE TRIGGER checks).
fn require_registry(trigger: &PgTrigger<'_>) {
    let relid = trigger.relid().unwrap_or_else(|error| error!("{error}"));
    if cache::relation(TABLE) != Some(relid) {
        Refusal::new(
            PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
            format!("{} may only run as a trigger of login_trigger.event_trigger", trigger.name().unwrap_or_default()),
        )
        .raise();
    }
}

/// BEFORE INSERT, UPDATE and DELETE of each row and BEFORE TRUNCATE: only superusers write the
/// registry (also when a table privilege was granted by mistake), and every row written passes
/// the accept/reject contract.
#[pg_trigger]
fn event_trigger_check<'a>(
    trigger: &'a PgTrigger<'a>,
) -> Result<Option<PgHeapTuple<'a, AllocatedByRust>>, PgHeapTupleError> {
    require_registry(trigger);
    validate::require_superuser("change the login_trigger registry").or_raise();
    let Some(row) = trigger.new() else {
        // DELETE keeps its row; TRUNCATE, a statement trigger, returns nothing.
        return Ok(trigger.old().map(PgHeapTuple::into_owned));
    };
    let accepted = accept_row(&row);
    let function = function_name::qualified(accepted.function).unwrap_or_default();
    let mut row = row.into_owned();
    row.set_by_name("tags", accepted.tags)
        .and_then(|()| row.set_by_name("function", function))
        .unwrap_or_else(|error| error!("could not store the normalised row: {error}"));
    Ok(Some(row))
}

/// Applies the accept/reject contract to a row as stored.
fn accept_row(row: &PgHeapTuple<'_, AllocatedByPostgres>) -> Accepted {
    let field = |name: &str| -> Option<String> { row.get_by_name::<String>(name).ok().flatten() };
    let name = validate::required("name", field("name")).or_raise();
    let event = validate::required("event", field("event")).or_raise();
    Event::parse(&event).or_raise();
    let function = validate::function_by_name(&validate::required("function", field("function")).or_raise()).or_raise();
    let enabled = validate::required("enabled", row.get_by_name::<i8>("enabled").ok().flatten()).or_raise();
    let tags = row
        .get_by_name::<pgrx::Array<&str>>("tags")
        .ok()
        .flatten()
        .map(|tags| tags.iter().map(|tag| tag.map(str::to_owned)).collect());
    let state = (enabled as u8 as char).to_string();
    validate::registration(&name, &event, function, &state, tags).or_raise()
}

#[pg_trigger]
fn event_trigger_sync<'a>(
    trigger: &'a PgTrigger<'a>,
) -> Result<Option<PgHeapTuple<'a, AllocatedByRust>>, PgHeapTupleError> {
    require_registry(trigger);
    let carrier_of = |row: Option<PgHeapTuple<'a, AllocatedByPostgres>>| {
        row.map(|row| {
            let name = row.get_by_name::<String>("name").ok().flatten().unwrap_or_default();
            let event = row.get_by_name::<String>("event").ok().flatten().unwrap_or_default();
            let event = Event::parse(&event).unwrap_or(Event::DdlCommandStart);
            let function = row
                .get_by_name::<String>("function")
                .ok()
                .flatten()
                .and_then(|function| cache::registered_function(event, &name, &function))
                .unwrap_or(pg_sys::Oid::INVALID);
            (name, function, event)
        })
    };
    let old = carrier_of(trigger.old());
    let new = carrier_of(trigger.new());
    let operation = trigger.op().unwrap_or_else(|error| error!("{error}"));
    if matches!(operation, PgTriggerOperation::Truncate) {
        drop_all_carriers();
        dispatchers::remove_all();
    } else if old != new {
        if let Some((name, _, event)) = &old {
            drop_carrier(carrier_table_name(*event), name);
            // Under REPEATABLE READ or SERIALIZABLE the transaction's snapshot may predate a
            // registration committed since: the dispatcher is then kept (it costs native
            // collection, but a registration never goes silently inactive).
            // SAFETY: reads the transaction's isolation level.
            let fresh_snapshot = !unsafe { pg_sys::XactIsoLevel >= pg_sys::XACT_REPEATABLE_READ as i32 };
            if fresh_snapshot && !has_registrations(*event) {
                dispatchers::remove(*event);
            }
        }
        // Only an active registration is guarded (see `dispatchers`): a row restored before its
        // event trigger gets its carrier when pg_restore creates that, last.
        if let Some((name, function, event)) =
            new.as_ref().filter(|(_, function, event)| *function != pg_sys::Oid::INVALID && dispatchers::exists(*event))
        {
            create_carrier(carrier_table_name(*event), name, *function);
        }
    }
    // SAFETY: queues a relcache invalidation of the registry table; it is delivered to this
    // backend at the next command-counter increment and to every other backend at commit.
    super::shared::reset_at_commit();
    let registry = trigger.relid().unwrap_or_else(|error| error!("{error}"));
    // SAFETY: see above.
    unsafe { pg_sys::CacheInvalidateRelcacheByRelid(registry) };
    Ok(None)
}

/// Whether the registry still has a registration of `event` (after this row's change).
fn has_registrations(event: Event) -> bool {
    Spi::get_one_with_args::<bool>(
        "SELECT EXISTS (SELECT FROM login_trigger.event_trigger WHERE event OPERATOR(pg_catalog.=) $1)",
        &[event.name().into()],
    )
    .ok()
    .flatten()
    .unwrap_or(true)
}

/// The function carrier triggers execute. They are AFTER TRUNCATE triggers on a table nobody
/// truncates, so it never runs; if it does, it does nothing.
#[pg_trigger]
fn registered_function_carrier<'a>(
    _trigger: &'a PgTrigger<'a>,
) -> Result<Option<PgHeapTuple<'a, AllocatedByRust>>, PgHeapTupleError> {
    Ok(None)
}

fn carrier_table(name: &std::ffi::CStr) -> pg_sys::Oid {
    cache::relation(name).unwrap_or_else(|| error!("login_trigger.{} is missing", name.to_string_lossy()))
}

fn carrier_oid(table: pg_sys::Oid, name: &str) -> Option<pg_sys::Oid> {
    let cname = CString::new(name).ok()?;
    // SAFETY: get_trigger_oid scans pg_trigger for (table, name) and returns InvalidOid when
    // missing_ok is set and there is none.
    let oid = unsafe { pg_sys::get_trigger_oid(table, cname.as_ptr(), true) };
    (oid != pg_sys::Oid::INVALID).then_some(oid)
}

/// Creates the carrier of one registration: a trigger of the same name whose `WHEN` condition
/// names the registered function, `WHEN (false AND schema.function() IS NULL)`. PostgreSQL records
/// the dependency of a trigger on the functions of its condition itself, and pg_dump and
/// pg_upgrade reproduce the condition by name, so the dependency survives them (one recorded by
/// hand would not); `false AND` keeps the function from ever being called. Created through
/// `CreateTrigger` rather than SQL, so that no event trigger, native or ours, fires for the
/// extension's bookkeeping.
fn create_carrier(carrier: &'static std::ffi::CStr, name: &str, function: pg_sys::Oid) {
    let table = carrier_table(carrier);
    let carrier_function =
        super::carrier_function().unwrap_or_else(|| error!("login_trigger.registered_function_carrier() is missing"));
    let cname = CString::new(name).unwrap_or_else(|_| error!("trigger name contains a NUL byte"));
    // SAFETY: alloc_node returns a zeroed, palloc'd node with its tag set; the strings are copied
    // into the current memory context with pstrdup before they are stored in it; the condition is
    // built as the parser would transform it (a FuncExpr of a function taking no arguments, a
    // NullTest, a BoolExpr), which CreateTrigger accepts already transformed.
    unsafe {
        let mut statement = PgBox::<pg_sys::CreateTrigStmt>::alloc_node(pg_sys::NodeTag::T_CreateTrigStmt);
        statement.trigname = pg_sys::pstrdup(cname.as_ptr());
        statement.relation =
            pg_sys::makeRangeVar(pg_sys::pstrdup(SCHEMA.as_ptr()), pg_sys::pstrdup(carrier.as_ptr()), -1);
        statement.row = false;
        statement.timing = pg_sys::TRIGGER_TYPE_AFTER as i16;
        statement.events = pg_sys::TRIGGER_TYPE_TRUNCATE as i16;
        let call = pg_sys::makeFuncExpr(
            function,
            pg_sys::get_func_rettype(function),
            std::ptr::null_mut(),
            pg_sys::Oid::INVALID,
            pg_sys::Oid::INVALID,
            pg_sys::CoercionForm::COERCE_EXPLICIT_CALL,
        );
        let mut is_null = PgBox::<pg_sys::NullTest>::alloc_node(pg_sys::NodeTag::T_NullTest);
        is_null.arg = call.cast();
        is_null.nulltesttype = pg_sys::NullTestType::IS_NULL;
        is_null.location = -1;
        let never = pg_sys::makeBoolConst(false, false);
        let operands = pg_sys::lappend(pg_sys::lappend(std::ptr::null_mut(), never.cast()), is_null.as_ptr().cast());
        let condition = pg_sys::makeBoolExpr(pg_sys::BoolExprType::AND_EXPR, operands, -1);
        let carrier = pg_sys::CreateTrigger(
            statement.as_ptr(),
            c"".as_ptr(),
            table,
            pg_sys::Oid::INVALID,
            pg_sys::Oid::INVALID,
            pg_sys::Oid::INVALID,
            carrier_function,
            pg_sys::Oid::INVALID,
            condition.cast(),
            false,
            false,
        );
        // CreateTrigger records the dependencies of a condition it transformed itself; for one
        // passed transformed (as partitions' clones are) the caller records them.
        pg_sys::recordDependencyOnExpr(
            &carrier,
            condition.cast(),
            std::ptr::null_mut(),
            pg_sys::DependencyType::DEPENDENCY_NORMAL,
        );
        pg_sys::CommandCounterIncrement();
    }
}

/// Drops one registration's carrier, if it still exists (`DROP FUNCTION … CASCADE` drops it first).
fn drop_carrier(carrier_table_name: &std::ffi::CStr, name: &str) {
    let table = carrier_table(carrier_table_name);
    if let Some(carrier) = carrier_oid(table, name) {
        super::drop_bookkeeping(pg_sys::TriggerRelationId, carrier);
    }
    clear_has_triggers_when_empty(table);
}

/// PostgreSQL clears `pg_class.relhastriggers` only when it vacuums the table, and a carrier
/// table is never vacuumed: so when its last trigger goes, the flag is cleared here, and starting
/// sessions stop reading the registry for an event that has no triggers left.
fn clear_has_triggers_when_empty(table: pg_sys::Oid) {
    as_bootstrap_superuser(|| {
        Spi::run_with_args(
            "UPDATE pg_catalog.pg_class SET relhastriggers = false \
             WHERE oid OPERATOR(pg_catalog.=) $1 AND relhastriggers \
               AND NOT EXISTS (SELECT FROM pg_catalog.pg_trigger WHERE tgrelid OPERATOR(pg_catalog.=) $1)",
            &[table.into()],
        )
    })
    .unwrap_or_else(|error| error!("could not update a carrier table's trigger flag: {error}"));
}

fn drop_all_carriers() {
    for carrier_table_name in CARRIER_TABLES {
        let table = carrier_table(carrier_table_name);
        let names: Vec<String> = Spi::connect(|client| {
            client
                .select(
                    "SELECT tgname::pg_catalog.text FROM pg_catalog.pg_trigger WHERE tgrelid OPERATOR(pg_catalog.=) $1",
                    None,
                    &[table.into()],
                )?
                .map(|row| row.get::<String>(1).map(Option::unwrap_or_default))
                .collect::<Result<Vec<_>, _>>()
        })
        .unwrap_or_else(|error| error!("could not list dependency carriers: {error}"));
        for name in names {
            drop_carrier(carrier_table_name, &name);
        }
    }
}

/// Activates an event's registrations (`create_trigger()`, `enable_trigger()`): its event
/// trigger exists, and so does every registration's carrier.
pub fn activate(event: Event) {
    if dispatchers::ensure(event) {
        reconcile_all();
    }
}

thread_local! {
    /// Set when a command creates, alters or drops an event trigger; taken when it ends.
    static EVENT_TRIGGERS_CHANGED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Called by the object-access hook for every change to an event trigger.
pub fn event_triggers_changed() {
    EVENT_TRIGGERS_CHANGED.set(true);
}

/// Whether a command changed event triggers since the guards were last reconciled: a
/// thread-local read, so the ProcessUtility hook asks before doing anything else.
pub fn event_triggers_changed_since_reconciled() -> bool {
    EVENT_TRIGGERS_CHANGED.get()
}

/// Called by the ProcessUtility hook when a command has run: reconciles the guards if the
/// command changed event triggers (pg_restore creating ours last, `--clean` dropping them first,
/// a DBA's `DROP EVENT TRIGGER`, `DROP OWNED`, a rename).
pub fn after_command() {
    // SAFETY: reads backend-local transaction state.
    let usable = unsafe { pg_sys::IsTransactionState() && !pg_sys::IsAbortedTransactionBlockState() };
    if usable && EVENT_TRIGGERS_CHANGED.replace(false) {
        reconcile_all();
    }
}

/// After a command created, altered or dropped event triggers of ours (pg_restore creating them
/// last, `pg_restore --clean` dropping them first, a DBA): each registration has a carrier if and
/// only if its event's event trigger exists, and every backend re-reads the registry.
pub fn reconcile_all() {
    let Some(registry) = cache::relation(TABLE) else { return };
    // SAFETY: makes the command's own catalog changes visible to the lookups below, whatever the
    // command did itself (the SPI read this replaced incremented the counter as a side effect),
    // as PostgreSQL does between the steps of a command.
    unsafe { pg_sys::CommandCounterIncrement() };
    // One reconciliation at a time, and none while a registration is being written: pg_restore
    // -j creates the event triggers from several sessions at once, and two of them must not
    // both create a carrier the other has not committed yet. Held to the end of the transaction.
    // SAFETY: locks an existing relation of ours.
    unsafe { pg_sys::LockRelationOid(registry, pg_sys::ShareRowExclusiveLock as pg_sys::LOCKMODE) };
    for cache::RegistryRow { name, event, function, .. } in cache::read_registry() {
        let Ok(event) = Event::parse(&event) else { continue };
        let table = carrier_table(carrier_table_name(event));
        match (dispatchers::exists(event), carrier_oid(table, &name)) {
            (true, None) => {
                if let Some(function) = function_name::resolve(&function) {
                    create_carrier(carrier_table_name(event), &name, function);
                }
            }
            (false, Some(_)) => drop_carrier(carrier_table_name(event), &name),
            _ => {}
        }
    }
    super::shared::reset_at_commit();
    // SAFETY: queues a relcache invalidation of the registry, as the row trigger does.
    unsafe { pg_sys::CacheInvalidateRelcacheByRelid(registry) };
    // What our own bookkeeping created or dropped is reconciled now.
    EVENT_TRIGGERS_CHANGED.set(false);
}

/// Called by the object-access hook just before a function is dropped: removes the
/// registrations of that function, which only happens under `CASCADE` (the carrier makes a plain
/// `DROP FUNCTION` fail first). Costs a cache read for functions that are not registered.
pub fn forget_function(function: pg_sys::Oid) {
    let snapshot = cache::snapshot();
    let names: Vec<String> = snapshot
        .functions()
        .iter()
        .filter(|registered| registered.function == function)
        .map(|registered| registered.registration.clone())
        .collect();
    if names.is_empty() || cache::relation(TABLE).is_none() {
        return;
    }
    // The dropping role may be the function's non-superuser owner, who cannot write the registry.
    as_bootstrap_superuser(|| {
        Spi::run_with_args(
            "DELETE FROM login_trigger.event_trigger WHERE name OPERATOR(pg_catalog.=) ANY ($1)",
            &[names.into()],
        )
    })
    .unwrap_or_else(|error| error!("could not remove the registrations of a dropped function: {error}"));
}

/// Called by the object-access hook after a function or a schema was altered: a registered
/// function renamed, moved to another schema, or in a schema renamed is renamed in the registry
/// too, so that the registry keeps naming it (and pg_dump dumps the name that resolves). The
/// registry is read afresh under a lock that waits for any transaction registering a trigger, so
/// a registration that commits meanwhile is renamed too.
pub fn follow_renames() {
    let Some(registry) = cache::relation(TABLE) else { return };
    // SAFETY: makes the command's own catalog change (the new name) visible to the lookups below,
    // as PostgreSQL does between the steps of a command; then waits for the API's writers (they
    // hold SHARE ROW EXCLUSIVE), taking in their committed changes.
    unsafe {
        pg_sys::CommandCounterIncrement();
        pg_sys::LockRelationOid(registry, pg_sys::RowExclusiveLock as pg_sys::LOCKMODE);
    }
    for cache::RegistryRow { name, event, function: stored_name, .. } in cache::read_registry() {
        let Ok(event) = Event::parse(&event) else { continue };
        let Some(current) = cache::registered_function(event, &name, &stored_name).and_then(function_name::qualified)
        else {
            continue;
        };
        if current == stored_name {
            continue;
        }
        // The renaming role may own the schema without being a superuser.
        as_bootstrap_superuser(|| {
            Spi::run_with_args(
                "UPDATE login_trigger.event_trigger SET function = $2 WHERE name OPERATOR(pg_catalog.=) $1",
                &[name.as_str().into(), current.as_str().into()],
            )
        })
        .unwrap_or_else(|error| error!("could not follow the rename of a registered function: {error}"));
    }
}

/// Called by the object-access hook just before a schema or a relation is dropped. Dropping the
/// registry itself (`DROP EXTENSION`, `DROP SCHEMA login_trigger CASCADE`, a superuser's `DROP
/// TABLE`) deletes no row, so no catalog trigger tells the shared summary of session triggers,
/// which would go on firing what the dropped registry named: this does.
pub fn notice_drop(class_id: pg_sys::Oid, object_id: pg_sys::Oid) {
    if !crate::loading::shared_preload() {
        return;
    }
    // Cheap: this runs for every relation a DROP … CASCADE removes (and for the old heap of every
    // rewrite), so the schema's OID is the cached one. A relation is compared with the registry
    // this backend read, renamed or not, where it has read it since the last invalidation;
    // otherwise any relation of the schema counts (a look-alike schema of the same name only
    // costs a needless reset) and costs a syscache lookup, which usually misses: the command
    // dropping it has just changed its pg_class row.
    // SAFETY: catalog lookups inside the dropping transaction with a NUL-terminated name;
    // missing_ok makes get_extension_oid return InvalidOid, as get_rel_namespace does for a
    // missing relation.
    let ours = unsafe {
        match class_id {
            pg_sys::ExtensionRelationId => object_id == pg_sys::get_extension_oid(super::EXTENSION.as_ptr(), true),
            pg_sys::NamespaceRelationId => object_id == cache::schema_oid(),
            pg_sys::RelationRelationId => match cache::known_registry() {
                Some(registry) => object_id == registry,
                None => {
                    let schema = cache::schema_oid();
                    schema != pg_sys::Oid::INVALID && pg_sys::get_rel_namespace(object_id) == schema
                }
            },
            _ => false,
        }
    };
    if ours {
        super::shared::reset_at_commit();
    }
}
