//! DDL events. For each utility command the ProcessUtility hook passes on, this decides which
//! registered triggers it fires (by tag, state and `session_replication_role`), fires
//! `ddl_command_start` before the command, and `sql_drop` then `ddl_command_end` after it succeeds.
//!
//! Cost: a command that is not DDL, or for which no trigger matches, costs a tag lookup and a
//! read of the cached registry. Objects are collected (through the object-access hook) only when
//! a matching `ddl_command_end` or `sql_drop` trigger will see them, and resolved to names once
//! at the end of the command; dropped objects are described while they still exist.

use crate::command_tag;
use crate::context::{self, Detail, cstr};
use crate::error::Refusal;
use crate::event::Event;
use crate::fire;
use crate::gucs;
use crate::hooks::process_utility::Utility;
use crate::pg_ext::{self, Errors};
use crate::registry::cache::{self, Registration};
use pgrx::PgSqlErrorCode;
use pgrx::prelude::*;
use std::cell::{Cell, RefCell};
use std::ffi::CStr;
use std::rc::Rc;
use std::time::Instant;

/// DDL run by a trigger function fires triggers again (as with native event triggers), up to
/// this many levels; deeper is taken as runaway recursion and refused.
const MAX_DEPTH: usize = 8;

/// An object a command created or altered, as `pg_event_trigger_ddl_commands()` shows it.
#[derive(Debug, Clone)]
pub struct CommandObject {
    pub classid: pg_sys::Oid,
    pub objid: pg_sys::Oid,
    pub objsubid: i32,
    pub object_type: Option<String>,
    pub schema_name: Option<String>,
    pub object_identity: Option<String>,
    pub in_extension: bool,
}

/// A dropped object, as `pg_event_trigger_dropped_objects()` shows it.
#[derive(Debug, Clone)]
pub struct DroppedObject {
    pub classid: pg_sys::Oid,
    pub objid: pg_sys::Oid,
    pub objsubid: i32,
    pub original: bool,
    pub normal: bool,
    pub is_temporary: bool,
    pub object_type: Option<String>,
    pub schema_name: Option<String>,
    pub object_name: Option<String>,
    pub object_identity: Option<String>,
    pub address_names: Vec<String>,
    pub address_args: Vec<String>,
}

/// What trigger functions see of the command.
#[derive(Debug, Clone, Default)]
pub struct Command {
    pub tag: String,
    /// This statement's text only, even in a multi-statement query string.
    pub text: String,
    /// At ddl_command_end and sql_drop: how long the command itself took.
    pub elapsed_ms: Option<f64>,
    pub objects: Vec<CommandObject>,
    pub dropped: Vec<DroppedObject>,
    /// At table_rewrite: the table about to be rewritten and why (the bits of
    /// `pg_event_trigger_table_rewrite_reason()`).
    pub rewrite: Option<(pg_sys::Oid, i32)>,
}

type Address = (pg_sys::Oid, pg_sys::Oid, i32);

/// pg_constraint's OID (catalog/pg_constraint.h; pgrx does not export the constant).
const CONSTRAINT_RELATION_ID: pg_sys::Oid = pg_sys::Oid::from_u32(2606);

/// Objects seen by the object-access hook while one command runs.
#[derive(Default)]
struct Collection {
    touched: Vec<(Address, bool)>,
    dropped: Vec<DroppedObject>,
    describe_drops: bool,
    originals: Originals,
    /// table_rewrite triggers to fire when the command starts rewriting a table.
    rewrite: Option<Rc<Rewrite>>,
    /// Rewrites seen, when they fire after the command (see `REWRITE_FIRES_IN_PLACE`).
    rewritten: Vec<pg_sys::Oid>,
}

/// On PostgreSQL 13 the new heap is not yet in a state where user code may run when its
/// post-create hook is called (a trigger's command-counter increments make relcache rebuild it
/// half-made), so table_rewrite fires right after the command's own work instead: raising still
/// rolls the rewrite back, but the copy has been made.
const REWRITE_FIRES_IN_PLACE: bool = !cfg!(feature = "pg13");

/// What a table_rewrite firing needs, prepared before the command runs.
struct Rewrite {
    tag: pg_sys::CommandTag::Type,
    tag_name: String,
    triggers: Vec<Registration>,
    command: Command,
    reason: i32,
}

/// How to tell the objects a command named (`original`) from those dropped along with them.
#[derive(Default)]
struct Originals {
    /// The DROP statement whose objects are resolved at the first drop, once the command holds
    /// its locks on them (resolving earlier would lock objects before PostgreSQL checks
    /// permissions). Valid while the command runs.
    statement: Option<*mut pg_sys::DropStmt>,
    named: Option<Vec<Address>>,
    /// DROP OWNED, DROP ROLE/DATABASE/TABLESPACE/EVENT TRIGGER: everything dropped was named.
    all: bool,
    /// ALTER TABLE: the columns and constraints it drops are what it named.
    parts_of_tables: bool,
}

/// A DDL command of this session that failed or that a trigger refused. Kept in backend memory,
/// outside any transaction, because the failure rolls back whatever a trigger wrote about it;
/// `login_trigger.failed_ddl()` hands them to a later trigger (the next DDL or logout) to record.
#[derive(Debug, Clone)]
pub struct FailedCommand {
    pub at: pg_sys::TimestampTz,
    pub tag: String,
    pub text: String,
    pub sqlstate: String,
    pub message: String,
}

/// How many failed commands a session keeps before the oldest are dropped.
const MAX_FAILED: usize = 100;

thread_local! {
    static COLLECTIONS: RefCell<Vec<Collection>> = const { RefCell::new(Vec::new()) };
    static DEPTH: Cell<usize> = const { Cell::new(0) };
    static FAILED: RefCell<Vec<FailedCommand>> = const { RefCell::new(Vec::new()) };
}

/// Takes the failed commands kept so far, oldest first.
pub fn take_failed() -> Vec<FailedCommand> {
    FAILED.take()
}

fn remember_failure(tag: &str, text: &str, error: &pg_sys::panic::CaughtError) {
    let (code, message) = match error {
        pg_sys::panic::CaughtError::PostgresError(report) | pg_sys::panic::CaughtError::ErrorReport(report) => {
            (report.sql_error_code(), report.message().to_owned())
        }
        pg_sys::panic::CaughtError::RustPanic { ereport, .. } => {
            (ereport.sql_error_code(), ereport.message().to_owned())
        }
    };
    // SAFETY: reads the clock.
    let at = unsafe { pg_sys::GetCurrentTimestamp() };
    FAILED.with_borrow_mut(|failed| {
        if failed.len() == MAX_FAILED {
            failed.remove(0);
        }
        failed.push(FailedCommand {
            at,
            tag: tag.to_owned(),
            text: text.to_owned(),
            sqlstate: sqlstate_text(code as i32),
            message,
        })
    });
}

/// A SQLSTATE's five characters (PostgreSQL's `unpack_sql_state`).
fn sqlstate_text(mut code: i32) -> String {
    (0..5)
        .map(|_| {
            let character = char::from(b'0' + (code & 0x3F) as u8);
            code >>= 6;
            character
        })
        .collect()
}

/// The triggers one command fires.
pub struct Plan {
    tag: pg_sys::CommandTag::Type,
    tag_name: String,
    start: Vec<Registration>,
    end: Vec<Registration>,
    drop: Vec<Registration>,
    rewrite: Vec<Registration>,
}

impl Plan {
    fn for_command(utility: &Utility) -> Option<Plan> {
        // SAFETY: reads transaction state.
        if !gucs::enabled()
            || utility.context == pg_sys::ProcessUtilityContext::PROCESS_UTILITY_SUBCOMMAND
            || !unsafe { pg_sys::IsTransactionState() }
        {
            return None;
        }
        // SAFETY: the planned utility statement is valid for the duration of the call;
        // CreateCommandTag only inspects it, GetCommandTagName returns a static string.
        let (tag, tag_name) = unsafe {
            let tag = pg_sys::CreateCommandTag((*utility.pstmt).utilityStmt);
            (tag, CStr::from_ptr(pg_sys::GetCommandTagName(tag)).to_string_lossy().into_owned())
        };
        if tag_name == "CREATE DATABASE" {
            // A copy of a template copies its registrations without running any trigger.
            crate::registry::shared::reset_at_commit();
        }
        if !command_tag::is_ddl(&tag_name, tag) {
            return None;
        }
        let snapshot = cache::snapshot();
        let replica = fire::replica_role();
        let select = |event| -> Vec<Registration> {
            snapshot.triggers(event).iter().filter(|t| t.fires_for(Some(&tag_name), replica)).cloned().collect()
        };
        let plan = Plan {
            start: select(Event::DdlCommandStart),
            end: select(Event::DdlCommandEnd),
            drop: select(Event::SqlDrop),
            rewrite: select(Event::TableRewrite),
            tag,
            tag_name: tag_name.clone(),
        };
        let fires = [&plan.start, &plan.end, &plan.drop, &plan.rewrite].iter().any(|triggers| !triggers.is_empty());
        fires.then_some(plan)
    }

    fn fire(&self, event: Event, triggers: &[Registration], command: &Command) {
        if triggers.is_empty() {
            return;
        }
        if matches!(event, Event::SqlDrop | Event::DdlCommandEnd) {
            // As native event triggers do after the command: make its work visible, then look the
            // triggers up again, since the command may have dropped registrations (DROP EXTENSION,
            // DROP FUNCTION … CASCADE) and the functions they named.
            // SAFETY: inside the command's transaction, after the command itself.
            unsafe { pg_sys::CommandCounterIncrement() };
            let current = cache::snapshot();
            let still_registered: Vec<Registration> = triggers
                .iter()
                .filter(|planned| {
                    current.triggers(event).iter().any(|t| t.name == planned.name && t.function == planned.function)
                })
                .cloned()
                .collect();
            fire_event(self.tag, &self.tag_name, event, &still_registered, command);
        } else {
            fire_event(self.tag, &self.tag_name, event, triggers, command);
        }
    }
}

/// Fires one event's triggers for a command, guarding against runaway recursion.
fn fire_event(
    tag: pg_sys::CommandTag::Type,
    tag_name: &str,
    event: Event,
    triggers: &[Registration],
    command: &Command,
) {
    if triggers.is_empty() {
        return;
    }
    let depth = DEPTH.get();
    if depth >= MAX_DEPTH {
        Refusal::new(PgSqlErrorCode::ERRCODE_STATEMENT_TOO_COMPLEX, "DDL triggers nested too deeply")
            .detail(format!(
                "{tag_name} {} fired DDL triggers {MAX_DEPTH} levels deep; a trigger's DDL fires triggers again.",
                event.name()
            ))
            .hint("Make the trigger skip the DDL its own functions run, for example with a tag filter.")
            .raise();
    }
    DEPTH.set(depth + 1);
    let _restore = RestoreDepth(depth);
    let firings: Vec<fire::Firing> = triggers.iter().map(fire::Firing::from).collect();
    context::with_event(event, Detail::Ddl(Rc::new(command.clone())), || {
        fire::fire_all(event, tag, &firings, false);
    });
}

struct RestoreDepth(usize);
impl Drop for RestoreDepth {
    fn drop(&mut self) {
        DEPTH.set(self.0);
    }
}

/// Pops the command's collection, also when the command fails and unwinds.
struct CollectionGuard(bool);
impl CollectionGuard {
    fn take(mut self) -> Collection {
        self.0 = false;
        COLLECTIONS.with_borrow_mut(Vec::pop).unwrap_or_default()
    }
}
impl Drop for CollectionGuard {
    fn drop(&mut self) {
        if self.0 {
            COLLECTIONS.with_borrow_mut(Vec::pop);
        }
    }
}

/// The triggers a utility command fires, if any (`None` for nearly every command).
pub fn plan(utility: &Utility) -> Option<Plan> {
    Plan::for_command(utility)
}

/// Runs a command that fires triggers, recording it in `failed_ddl()` if it fails.
pub fn run_planned(utility: &Utility, plan: Plan) {
    let command = Command { tag: plan.tag_name.clone(), text: statement_text(utility), ..Command::default() };
    let (tag, text) = (command.tag.clone(), command.text.clone());
    PgTryBuilder::new(std::panic::AssertUnwindSafe(|| run_with_triggers(utility, &plan, command)))
        .catch_others(|error| {
            remember_failure(&tag, &text, &error);
            error.rethrow()
        })
        .execute();
}

/// Fires start, runs the command, and fires rewrite, drop and end around it.
fn run_with_triggers(utility: &Utility, plan: &Plan, mut command: Command) {
    plan.fire(Event::DdlCommandStart, &plan.start, &command);

    let collecting = !plan.end.is_empty() || !plan.drop.is_empty() || !plan.rewrite.is_empty();
    let guard = CollectionGuard(collecting);
    if collecting {
        let originals = originals(utility, &plan.tag_name);
        let rewrite = (!plan.rewrite.is_empty()).then(|| {
            Rc::new(Rewrite {
                tag: plan.tag,
                tag_name: plan.tag_name.clone(),
                triggers: plan.rewrite.clone(),
                command: command.clone(),
                reason: rewrite_reason(utility),
            })
        });
        COLLECTIONS.with_borrow_mut(|stack| {
            stack.push(Collection {
                describe_drops: !plan.drop.is_empty(),
                originals,
                rewrite,
                ..Collection::default()
            })
        });
    }
    let started = Instant::now();
    // SAFETY: Caught: this frame and its callers own Rust values that must be dropped on error.
    unsafe { utility.run(Errors::Caught) };
    command.elapsed_ms = Some(started.elapsed().as_secs_f64() * 1000.0);
    if !collecting {
        return;
    }
    let collection = guard.take();
    if let Some(rewrite) = &collection.rewrite {
        for table in &collection.rewritten {
            fire_rewrite(rewrite, *table);
        }
    }
    if !collection.dropped.is_empty() {
        command.dropped = collection.dropped;
        plan.fire(Event::SqlDrop, &plan.drop, &command);
    }
    if !plan.end.is_empty() {
        command.objects = resolve(&collection.touched);
        plan.fire(Event::DdlCommandEnd, &plan.end, &command);
    }
}

/// This statement's own text: `stmt_location`/`stmt_len` cut it out of a multi-statement string.
fn statement_text(utility: &Utility) -> String {
    // SAFETY: the query string is NUL-terminated and outlives the call; the offsets come from the
    // parser and are byte offsets into it.
    let (full, location, length) = unsafe {
        let full = CStr::from_ptr(utility.query_string).to_string_lossy().into_owned();
        (full, (*utility.pstmt).stmt_location, (*utility.pstmt).stmt_len)
    };
    let start = usize::try_from(location).unwrap_or(0).min(full.len());
    let end = if length > 0 { (start + length as usize).min(full.len()) } else { full.len() };
    full.get(start..end).unwrap_or(&full).trim().trim_end_matches(';').trim_end().to_owned()
}

/// How the command's originals are recognised; see [`Originals`].
fn originals(utility: &Utility, tag: &str) -> Originals {
    let all = matches!(tag, "DROP OWNED" | "DROP ROLE" | "DROP DATABASE" | "DROP TABLESPACE" | "DROP EVENT TRIGGER");
    // SAFETY: reads the node tag of the statement being run.
    let statement = unsafe {
        let statement = (*utility.pstmt).utilityStmt;
        (!statement.is_null() && (*statement).type_ == pg_sys::NodeTag::T_DropStmt).then(|| statement.cast())
    };
    Originals { statement, named: None, all, parts_of_tables: tag == "ALTER TABLE" }
}

/// The addresses a DROP statement names. Called at its first OAT_DROP, when the command already
/// holds its locks on them, so the AccessShareLock taken here waits for nobody.
fn named_objects(drop: *mut pg_sys::DropStmt) -> Vec<Address> {
    let mut named = Vec::new();
    // SAFETY: the statement is the one being run; get_object_address with missing_ok only looks
    // names up, and any relation it opens is closed again (keeping the lock to end of xact).
    unsafe {
        let objects = (*drop).objects;
        let count = if objects.is_null() { 0 } else { (*objects).length as usize };
        for position in 0..count {
            let object = (*(*objects).elements.add(position)).ptr_value;
            let mut relation: pg_sys::Relation = std::ptr::null_mut();
            let address = pg_sys::get_object_address(
                (*drop).removeType,
                object.cast(),
                &mut relation,
                pg_sys::AccessShareLock as i32,
                true,
            );
            if !relation.is_null() {
                pg_sys::relation_close(relation, pg_sys::NoLock as i32);
            }
            if address.objectId != pg_sys::Oid::INVALID {
                named.push((address.classId, address.objectId, address.objectSubId));
            }
        }
    }
    named
}

/// Whether a dropped object is one the command named.
fn is_original(address: Address) -> bool {
    let pending = COLLECTIONS.with_borrow(|stack| {
        stack.last().and_then(|c| if c.originals.named.is_none() { c.originals.statement } else { None })
    });
    let resolved = pending.map(named_objects);
    COLLECTIONS.with_borrow_mut(|stack| {
        let Some(top) = stack.last_mut() else { return false };
        let originals = &mut top.originals;
        if let Some(named) = resolved {
            originals.named = Some(named);
        }
        originals.all
            || originals.named.as_ref().is_some_and(|named| named.contains(&address))
            || (originals.parts_of_tables && (address.2 != 0 || address.0 == CONSTRAINT_RELATION_ID))
    })
}

/// Called by the object-access hook; cheap unless a command is collecting.
pub fn on_object_access(
    access: pg_sys::ObjectAccessType::Type,
    class_id: pg_sys::Oid,
    object_id: pg_sys::Oid,
    sub_id: i32,
    arg: *mut std::ffi::c_void,
) {
    if COLLECTIONS.with_borrow(Vec::is_empty) || arg.is_null() {
        return;
    }
    // SAFETY: PostgreSQL passes the argument struct matching the access type.
    unsafe {
        match access {
            pg_sys::ObjectAccessType::OAT_POST_CREATE
                if REWRITE_FIRES_IN_PLACE
                    && class_id == pg_sys::RelationRelationId
                    && sub_id == 0
                    && (*arg.cast::<pg_sys::ObjectAccessPostCreate>()).is_internal =>
            {
                fire_rewrite_if_transient(object_id);
            }
            pg_sys::ObjectAccessType::OAT_POST_CREATE => {
                // A new column is a change of its table; a column default arrives as
                // (pg_attrdef, table OID, column number), a quirk that names no attrdef, and is
                // skipped. Internal objects (TOAST tables, implicit types) are not reported.
                if (*arg.cast::<pg_sys::ObjectAccessPostCreate>()).is_internal
                    || (sub_id != 0 && class_id != pg_sys::RelationRelationId)
                {
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
                    // On 13 a rewrite is recognised when the swapped-out heap is dropped.
                    if !REWRITE_FIRES_IN_PLACE && class_id == pg_sys::RelationRelationId && sub_id == 0 {
                        note_rewritten(object_id);
                    }
                    return;
                }
                // Dropping a column alters its table, which native reports as a command's object.
                if class_id == pg_sys::RelationRelationId && sub_id != 0 {
                    touch((class_id, object_id, 0));
                }
                let wanted = COLLECTIONS.with_borrow(|stack| stack.last().is_some_and(|c| c.describe_drops));
                if wanted {
                    let address = (class_id, object_id, sub_id);
                    let dropped = describe_dropped(address, is_original(address));
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

/// ALTER TABLE rewrites a table into a new, internal heap named `pg_temp_<table OID>`, created
/// before any row is copied: that is when table_rewrite fires (raising there prevents the
/// rewrite), as native event triggers fire just before `make_new_heap`.
fn fire_rewrite_if_transient(heap: pg_sys::Oid) {
    let Some(rewrite) = COLLECTIONS.with_borrow(|stack| stack.last().and_then(|c| c.rewrite.clone())) else {
        return;
    };
    // SAFETY: the new heap is in the relcache from the moment it is created (its catalog rows
    // may not be visible yet); the reference is released at once.
    let name = unsafe {
        let relation = pg_sys::RelationIdGetRelation(heap);
        if relation.is_null() {
            return;
        }
        let name = CStr::from_ptr((*(*relation).rd_rel).relname.data.as_ptr()).to_string_lossy().into_owned();
        pg_sys::RelationClose(relation);
        name
    };
    if let Some(table) = transient_heap_table(&name) {
        fire_rewrite(&rewrite, table);
    }
}

/// The table a transient heap `pg_temp_<table OID>` is rewriting.
fn transient_heap_table(name: &str) -> Option<pg_sys::Oid> {
    name.strip_prefix("pg_temp_").and_then(|oid| oid.parse::<u32>().ok()).map(pg_sys::Oid::from)
}

/// PostgreSQL 13: remembers a rewritten table when its transient heap (complete by then) is
/// dropped after the swap; its triggers fire once the command's own work is done.
fn note_rewritten(heap: pg_sys::Oid) {
    if !COLLECTIONS.with_borrow(|stack| stack.last().is_some_and(|c| c.rewrite.is_some())) {
        return;
    }
    // SAFETY: a syscache lookup of a relation that still exists (OAT_DROP precedes deletion).
    let name = unsafe {
        let name = pg_sys::get_rel_name(heap);
        if name.is_null() {
            return;
        }
        CStr::from_ptr(name).to_string_lossy().into_owned()
    };
    if let Some(table) = transient_heap_table(&name) {
        COLLECTIONS.with_borrow_mut(|stack| {
            if let Some(top) = stack.last_mut() {
                top.rewritten.push(table);
            }
        });
    }
}

fn fire_rewrite(rewrite: &Rewrite, table: pg_sys::Oid) {
    let mut command = rewrite.command.clone();
    command.rewrite = Some((table, rewrite.reason));
    fire_event(rewrite.tag, &rewrite.tag_name, Event::TableRewrite, &rewrite.triggers, &command);
}

/// The reason bits of a rewrite, from the ALTER subcommands that cause one (PostgreSQL's
/// `AT_REWRITE_*`: 1 persistence, 2 default value, 4 column type, 8 access method).
fn rewrite_reason(utility: &Utility) -> i32 {
    let mut reason = 0;
    // SAFETY: reads the parse tree of the statement being run.
    unsafe {
        let statement = (*utility.pstmt).utilityStmt;
        if statement.is_null() || (*statement).type_ != pg_sys::NodeTag::T_AlterTableStmt {
            return reason;
        }
        let commands = (*statement.cast::<pg_sys::AlterTableStmt>()).cmds;
        let count = if commands.is_null() { 0 } else { (*commands).length as usize };
        for position in 0..count {
            let command = (*(*commands).elements.add(position)).ptr_value.cast::<pg_sys::AlterTableCmd>();
            reason |= match (*command).subtype {
                pg_sys::AlterTableType::AT_SetLogged | pg_sys::AlterTableType::AT_SetUnLogged => 1,
                pg_sys::AlterTableType::AT_AddColumn => 2,
                pg_sys::AlterTableType::AT_AlterColumnType => 4,
                subtype if is_set_access_method(subtype) => 8,
                _ => 0,
            };
        }
    }
    reason
}

#[cfg(any(feature = "pg13", feature = "pg14"))]
fn is_set_access_method(_: pg_sys::AlterTableType::Type) -> bool {
    false
}
#[cfg(not(any(feature = "pg13", feature = "pg14")))]
fn is_set_access_method(subtype: pg_sys::AlterTableType::Type) -> bool {
    subtype == pg_sys::AlterTableType::AT_SetAccessMethod
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

/// Objects created as parts of another, which native event triggers do not list separately:
/// a relation's row type and array type, and a view's `_RETURN` rule.
fn is_implied(address: &pg_sys::ObjectAddress, object_type: Option<&str>, identity: &str) -> bool {
    // SAFETY: syscache lookups.
    let implied_type = address.classId == pg_sys::TypeRelationId
        && unsafe {
            pg_sys::get_typ_typrelid(address.objectId) != pg_sys::Oid::INVALID
                || pg_sys::get_element_type(address.objectId) != pg_sys::Oid::INVALID
        };
    implied_type || (object_type == Some("rule") && identity.starts_with("\"_RETURN\" on "))
}

fn resolve(touched: &[(Address, bool)]) -> Vec<CommandObject> {
    touched
        .iter()
        .filter_map(|&(address, in_extension)| {
            let address = object_address(address);
            let (object_type, schema_name, identity) = describe(&address)?;
            if is_implied(&address, object_type.as_deref(), &identity) {
                return None;
            }
            Some(CommandObject {
                classid: address.classId,
                objid: address.objectId,
                objsubid: address.objectSubId,
                object_type,
                schema_name,
                object_identity: Some(identity),
                in_extension,
            })
        })
        .collect()
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

fn describe_dropped(address: Address, original: bool) -> DroppedObject {
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
