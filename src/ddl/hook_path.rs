//! The commands native event triggers never fire for — roles and role membership, databases,
//! tablespaces, `ALTER SYSTEM`, event triggers, `REINDEX` before 17, GRANT/COMMENT/SECURITY LABEL
//! on shared objects — fire from the ProcessUtility hook: `ddl_command_start` before the command,
//! `sql_drop` and then `ddl_command_end` after it succeeds, with the objects [`super::collect`]
//! saw. None of them rewrites a table, so `table_rewrite` never fires here. docs/ddl.md lists the
//! rows each gets.

use super::{StatementText, collect};
use crate::boundary::PgError;
use crate::context::{Command, Objects};
use crate::event::Event;
use crate::fire::Firing;
use crate::registry::cache::{self, Registration};
use pgrx::prelude::*;
use std::time::Instant;

/// The triggers one such command fires.
pub struct HookPlan {
    tag: pg_sys::CommandTag::Type,
    tag_name: &'static str,
    start: Vec<Registration>,
    end: Vec<Registration>,
    drop: Vec<Registration>,
}

impl HookPlan {
    pub fn new(
        tag: pg_sys::CommandTag::Type,
        tag_name: &'static str,
        start: Vec<Registration>,
        end: Vec<Registration>,
        drop: Vec<Registration>,
    ) -> Option<HookPlan> {
        let fires = !start.is_empty() || !end.is_empty() || !drop.is_empty();
        fires.then_some(HookPlan { tag, tag_name, start, end, drop })
    }

    pub fn tag_name(&self) -> &'static str {
        self.tag_name
    }

    /// Fires start, runs the command, and fires sql_drop and end after it.
    pub fn run(
        self,
        parsetree: *mut pg_sys::Node,
        text: &StatementText,
        run_command: impl FnOnce() -> Result<(), PgError>,
    ) -> Result<(), PgError> {
        let command = |elapsed_ms, objects| Command { tag: self.tag_name, text: text.clone(), elapsed_ms, objects };
        let nothing = || Objects::Collected { objects: Vec::new(), dropped: Vec::new() };
        let start = firings(&self.start);
        super::fire_event(Event::DdlCommandStart, self.tag, parsetree, &start, command(None, nothing()))?;

        let collecting =
            collect::Collecting::begin(!self.end.is_empty() || !self.drop.is_empty(), !self.drop.is_empty());
        let started = Instant::now();
        run_command()?;
        let elapsed_ms = Some(started.elapsed().as_secs_f64() * 1000.0);
        let (touched, dropped) = collecting.finish();
        if !dropped.is_empty() {
            let objects = Objects::Collected { objects: Vec::new(), dropped };
            let triggers = still_registered(Event::SqlDrop, &self.drop);
            super::fire_event(Event::SqlDrop, self.tag, parsetree, &firings(&triggers), command(elapsed_ms, objects))?;
        }
        if !self.end.is_empty() {
            let objects =
                Objects::Collected { objects: collect::resolve(&touched, self.tag_name), dropped: Vec::new() };
            let triggers = still_registered(Event::DdlCommandEnd, &self.end);
            super::fire_event(
                Event::DdlCommandEnd,
                self.tag,
                parsetree,
                &firings(&triggers),
                command(elapsed_ms, objects),
            )?;
        }
        Ok(())
    }
}

fn firings(triggers: &[Registration]) -> Vec<Firing<'_>> {
    triggers.iter().map(Firing::from).collect()
}

/// As native event triggers do after the command: make its work visible, then look the
/// triggers up again, since the command may have dropped registrations and their functions.
fn still_registered(event: Event, planned: &[Registration]) -> Vec<Registration> {
    // SAFETY: inside the command's transaction, after the command itself.
    unsafe { pg_sys::CommandCounterIncrement() };
    let current = cache::snapshot();
    planned
        .iter()
        .filter(|planned| {
            current.triggers(event).iter().any(|t| t.name == planned.name && t.function == planned.function)
        })
        .cloned()
        .collect()
}
