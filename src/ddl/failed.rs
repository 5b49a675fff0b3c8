//! Failed DDL: commands of this session that failed or that a trigger refused. Kept in backend
//! memory, outside any transaction, because the failure rolls back whatever a trigger wrote about
//! them; `login_trigger.failed_ddl()` hands them to a later trigger (the next DDL's, or logout) to
//! record.

use crate::boundary::PgError;
use pgrx::prelude::*;
use std::cell::RefCell;

/// How many failed commands a session keeps before the oldest are dropped.
const MAX_FAILED: usize = 100;

#[derive(Debug, Clone)]
struct FailedCommand {
    at: pg_sys::TimestampTz,
    tag: String,
    text: String,
    sqlstate: String,
    message: String,
}

thread_local! {
    static FAILED: RefCell<Vec<FailedCommand>> = const { RefCell::new(Vec::new()) };
}

/// Remembers a failed command. Runs between an error's catch and its rethrow: no database access.
pub fn remember(tag: &str, text: &str, error: PgError) {
    // SAFETY: reads the clock.
    let at = unsafe { pg_sys::GetCurrentTimestamp() };
    let failure = FailedCommand {
        at,
        tag: tag.to_owned(),
        text: text.to_owned(),
        sqlstate: crate::pg_ext::sqlstate_text(error.sqlerrcode()),
        message: error.message(),
    };
    FAILED.with_borrow_mut(|failed| {
        if failed.len() == MAX_FAILED {
            failed.remove(0);
        }
        failed.push(failure);
    });
}

/// The DDL commands of this session that failed or were refused by a trigger since the last call,
/// oldest first; taking them empties the list. Failed commands roll back whatever a trigger wrote
/// about them, so a later trigger (the next DDL's, or a logout trigger) records them.
#[pg_extern(volatile, parallel_unsafe)]
fn failed_ddl() -> TableIterator<
    'static,
    (
        name!(at, Option<pgrx::datum::TimestampWithTimeZone>),
        name!(command_tag, String),
        name!(command_text, String),
        name!(sqlstate, String),
        name!(message, String),
    ),
> {
    let rows: Vec<_> = FAILED
        .take()
        .into_iter()
        .map(|f| (pgrx::datum::TimestampWithTimeZone::try_from(f.at).ok(), f.tag, f.text, f.sqlstate, f.message))
        .collect();
    TableIterator::new(rows)
}
