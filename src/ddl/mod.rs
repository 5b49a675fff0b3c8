//! DDL events: `ddl_command_start`, `ddl_command_end`, `sql_drop` and `table_rewrite`. Two paths
//! lead into the one firing function, [`crate::fire::fire_all`]:
//!
//! * [`native`]: every command PostgreSQL's own event triggers cover fires from inside
//!   PostgreSQL's firing. While a database has registrations of an event, a native event trigger
//!   (`login_trigger_<event>`, kept by `registry::dispatchers`) calls the dispatcher, which fires
//!   the registrations with the `EventTriggerData` it received: `TG_EVENT`, `TG_TAG` and
//!   `pg_event_trigger_*()` work in them as in native functions, and the context functions
//!   answer with PostgreSQL's own rows. Parity with native is by construction.
//! * [`hook_path`]: the commands native never fires for (roles, role membership, databases,
//!   tablespaces, `ALTER SYSTEM`, event triggers, `REINDEX` before 17, GRANT/COMMENT/SECURITY
//!   LABEL on shared objects) fire from the ProcessUtility hook, with objects collected by
//!   [`collect`].
//!
//! For both, the hook hands [`plan`] and [`run`] a plain description of the statement
//! ([`Statement`]) and a callback that runs it; [`statement`] keeps each running statement's own
//! text and start for the context, and [`failed`] remembers the commands that failed.
//!
//! Errors travel as raised: every call into PostgreSQL that may fail inside a firing (the command
//! itself, a trigger function) is made through `boundary::catching`, the Rust frames unwind
//! normally with the caught error in hand, and the outermost frame raises it again untouched.

pub mod collect;
pub mod failed;
mod hook_path;
pub mod native;
mod statement;

pub use statement::Text as StatementText;

use crate::boundary::PgError;
use crate::error::Refusal;
use crate::event::Event;
use crate::fire;
use crate::gucs;
use crate::pg_ext;
use crate::registry::cache::{self, Registration};
use crate::registry::dispatchers;
use pgrx::PgSqlErrorCode;
use pgrx::prelude::*;
use std::cell::Cell;
use std::ffi::{CStr, c_char};

/// DDL run by a trigger function fires triggers again (as with native event triggers), up to
/// this many levels; deeper is taken as runaway recursion and refused.
const MAX_DEPTH: usize = 8;

thread_local! {
    static DEPTH: Cell<usize> = const { Cell::new(0) };
}

/// What the ProcessUtility hook knows of a statement, as plain values.
#[derive(Debug, Clone, Copy)]
pub struct Statement {
    pub node: *mut pg_sys::Node,
    pub query_string: *const c_char,
    /// `stmt_location` and `stmt_len` of the planned statement: this statement's place in a
    /// multi-statement query string.
    pub location: i32,
    pub length: i32,
    /// A part of a larger command (`PROCESS_UTILITY_SUBCOMMAND`): native fires nothing for it.
    pub subcommand: bool,
}

/// How a DDL command with matching registrations is run.
pub enum Plan {
    /// Native event triggers cover it: the dispatcher fires its triggers; the hook only keeps
    /// the statement's text and start, and records a failure.
    Native { tag: &'static str },
    /// Native never fires for it: the hook fires these around it.
    Hook(hook_path::HookPlan),
}

/// Which triggers a command fires, if any (`None` for nearly every command).
pub fn plan(statement: &Statement) -> Option<Plan> {
    // SAFETY: reads backend-local state.
    if statement.subcommand || !unsafe { !pg_sys::IsBinaryUpgrade && pg_ext::IsTransactionState() } {
        return None;
    }
    if native::drops_this_extension(statement.node) {
        // The dispatchers depend on the extension's function: tie them to the extension (again,
        // after a restore), so that the command drops them along without CASCADE. Bookkeeping,
        // done whatever login_trigger.enabled says.
        dispatchers::attach_all();
    }
    // SAFETY: reads backend-local state.
    if !gucs::enabled() || !unsafe { pg_sys::IsUnderPostmaster } || !native::event_triggers_enabled() {
        return None;
    }
    // SAFETY: the statement is valid for the duration of the call; CreateCommandTag only
    // inspects it, GetCommandTagName returns a static ASCII string. Nothing is allocated for the
    // commands that fire nothing.
    let (tag, tag_name) = unsafe {
        let tag = pg_ext::CreateCommandTag(statement.node);
        (tag, CStr::from_ptr(pg_ext::GetCommandTagName(tag)).to_str().unwrap_or_default())
    };
    if tag_name == "CREATE DATABASE" {
        // A copy of a template copies its registrations without running any trigger.
        crate::registry::shared::reset_at_commit();
    }
    if !crate::command_tag::is_ddl(tag_name, tag) || native::names_only_dispatchers(statement.node) {
        return None;
    }
    let snapshot = cache::snapshot();
    let replica = fire::replica_role();
    let fires = |trigger: &&Registration| trigger.fires_for(Some(tag_name), replica);
    let matching = |event| -> Vec<Registration> { snapshot.triggers(event).iter().filter(fires).cloned().collect() };
    if native::fires_natively(statement.node, tag) {
        let any = Event::DDL.iter().any(|event| snapshot.triggers(*event).iter().any(|t| fires(&t)));
        return any.then_some(Plan::Native { tag: tag_name });
    }
    // A registration becomes active with its event's dispatcher (created by create_trigger(),
    // restored last by pg_restore), on this path too.
    let active = |event| if dispatchers::active(event, replica) { matching(event) } else { Vec::new() };
    let (start, end, drop) = (active(Event::DdlCommandStart), active(Event::DdlCommandEnd), active(Event::SqlDrop));
    hook_path::HookPlan::new(tag, tag_name, start, end, drop).map(Plan::Hook)
}

/// Runs a command that fires triggers; `run_command` runs the command itself and hands back its
/// error. A failure is remembered for `failed_ddl()` and returned for the caller to raise again.
pub fn run(
    plan: Plan,
    statement: &Statement,
    run_command: impl FnOnce() -> Result<(), PgError>,
) -> Result<(), PgError> {
    let tag = match &plan {
        Plan::Native { tag } => *tag,
        Plan::Hook(hook) => hook.tag_name(),
    };
    let running = statement::Running::start(statement);
    let outcome = match plan {
        Plan::Native { .. } => run_command(),
        Plan::Hook(hook) => hook.run(statement.node, running.text(), run_command),
    };
    if let Err(error) = outcome {
        failed::remember(tag, running.text().get(), error);
    }
    outcome
}

/// Fires one event's triggers for a command (either path), guarding against runaway recursion.
fn fire_event(
    event: Event,
    tag: pg_sys::CommandTag::Type,
    parsetree: *mut pg_sys::Node,
    firings: &[fire::Firing],
    command: crate::context::Command,
) -> Result<(), PgError> {
    if firings.is_empty() {
        return Ok(());
    }
    let depth = DEPTH.get();
    if depth >= MAX_DEPTH {
        Refusal::new(PgSqlErrorCode::ERRCODE_STATEMENT_TOO_COMPLEX, "DDL triggers nested too deeply")
            .detail(format!(
                "{} {} fired DDL triggers {MAX_DEPTH} levels deep; a trigger's DDL fires triggers again.",
                command.tag,
                event.name()
            ))
            .hint("Make the trigger skip the DDL its own functions run, for example with a tag filter.")
            .raise();
    }
    DEPTH.set(depth + 1);
    let _restore = RestoreDepth(depth);
    let detail = crate::context::Detail::Ddl(std::rc::Rc::new(command));
    crate::context::with_event(event, detail, || fire::fire_all(event, tag, parsetree, firings, false))
}

struct RestoreDepth(usize);
impl Drop for RestoreDepth {
    fn drop(&mut self) {
        DEPTH.set(self.0);
    }
}
