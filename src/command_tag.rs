//! Command tags: which ones a DDL trigger may filter on, checked with PostgreSQL's own tag table
//! the way native `CREATE EVENT TRIGGER … WHEN TAG IN (…)` checks them, plus the shared and
//! cluster-level commands that native event triggers skip and login_trigger covers.

use crate::error::{Checked, Refusal};
use crate::event::Event;
use crate::pg_ext;
use pgrx::PgSqlErrorCode;
use pgrx::pg_sys;
use std::ffi::CString;

/// Commands login_trigger fires DDL triggers for although native event triggers do not: shared
/// objects, role membership, `ALTER SYSTEM`, event triggers themselves, and `REINDEX` before 17.
pub const BEYOND_NATIVE: &[&str] = &[
    "ALTER DATABASE",
    "ALTER EVENT TRIGGER",
    "ALTER ROLE",
    "ALTER SYSTEM",
    "ALTER TABLESPACE",
    "CREATE DATABASE",
    "CREATE EVENT TRIGGER",
    "CREATE ROLE",
    "CREATE TABLESPACE",
    "DROP DATABASE",
    "DROP EVENT TRIGGER",
    "DROP ROLE",
    "DROP TABLESPACE",
    "GRANT ROLE",
    "REINDEX",
    "REVOKE ROLE",
];

/// The commands `table_rewrite` can fire for (PostgreSQL's `command_tag_table_rewrite_ok`).
const REWRITING: &[&str] = &["ALTER MATERIALIZED VIEW", "ALTER TABLE", "ALTER TYPE"];

/// Looks a tag up in the server's tag table; `None` when the server does not know it.
fn server_tag(name: &str) -> Option<pg_sys::CommandTag::Type> {
    let cname = CString::new(name).ok()?;
    // SAFETY: GetCommandTagEnum only reads the NUL-terminated string and a static table.
    let tag = unsafe { pg_sys::GetCommandTagEnum(cname.as_ptr()) };
    (tag != pg_sys::CommandTag::CMDTAG_UNKNOWN).then_some(tag)
}

/// Whether DDL triggers fire for a tag the server knows: native event-trigger commands (but not
/// `LOGIN`, which is a session event on 17+) and the commands in [`BEYOND_NATIVE`].
pub fn is_ddl(name: &str, tag: pg_sys::CommandTag::Type) -> bool {
    if name == "LOGIN" {
        return false;
    }
    // SAFETY: command_tag_event_trigger_ok indexes a static table with a tag the server returned.
    let native = unsafe { pg_ext::command_tag_event_trigger_ok(tag) };
    native || BEYOND_NATIVE.contains(&name)
}

/// Checks a tag filter for an event and returns it normalised: upper case, without duplicates,
/// in byte order. `None` (no filter) stays `None`.
pub fn normalize_filter(event: Event, tags: Option<Vec<Option<String>>>) -> Checked<Option<Vec<String>>> {
    let Some(tags) = tags else { return Ok(None) };
    if event.is_session_event() {
        return Err(Refusal::new(
            PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED,
            format!("tag filtering is not supported for {} triggers", event.name()),
        )
        .hint("Pass NULL as the tag list."));
    }
    if tags.is_empty() {
        return Err(Refusal::new(PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE, "tag list must not be empty")
            .hint("Pass NULL to fire for every command."));
    }
    let mut normalized = Vec::with_capacity(tags.len());
    for tag in tags {
        let Some(tag) = tag else {
            return Err(Refusal::new(PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED, "tag list must not contain NULL"));
        };
        let upper = tag.to_ascii_uppercase();
        let Some(server) = server_tag(&upper) else {
            return Err(Refusal::new(
                PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
                format!("filter value \"{upper}\" not recognized for filter variable \"tag\""),
            ));
        };
        let supported = match event {
            Event::TableRewrite => REWRITING.contains(&upper.as_str()),
            _ => is_ddl(&upper, server),
        };
        if !supported {
            return Err(Refusal::new(
                PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED,
                format!("{} triggers are not supported for {upper}", event.name()),
            ));
        }
        normalized.push(upper);
    }
    normalized.sort();
    normalized.dedup();
    Ok(Some(normalized))
}
