//! What trigger functions can see: the event and trigger being fired, and the session facts that
//! go with it, as `jsonb` (`login_trigger.context()`, in the style of SQL Server's `EVENTDATA()`)
//! and as a typed row (`login_trigger.session()`). The context belongs to the backend that fires:
//! there is no way to read another session's.

use crate::ddl::Command;
use crate::error::Refusal;
use crate::event::Event;
use pgrx::PgSqlErrorCode;
use pgrx::prelude::*;
use serde_json::{Map, Value, json};
use std::cell::RefCell;
use std::ffi::CStr;
use std::rc::Rc;

/// Why a session ended, for logout triggers. The set is documented in docs/events.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogoutReason {
    ClientExit,
    /// PostgreSQL 13 does not tell an EOF from a Terminate message.
    #[cfg_attr(feature = "pg13", allow(dead_code))]
    ClientEof,
    ClientLost,
    Terminated,
    Shutdown,
    IdleSessionTimeout,
    IdleInTransactionTimeout,
    Fatal,
}

impl LogoutReason {
    pub fn name(self) -> &'static str {
        match self {
            LogoutReason::ClientExit => "client_exit",
            LogoutReason::ClientEof => "client_eof",
            LogoutReason::ClientLost => "client_lost",
            LogoutReason::Terminated => "terminated",
            LogoutReason::Shutdown => "shutdown",
            LogoutReason::IdleSessionTimeout => "idle_session_timeout",
            LogoutReason::IdleInTransactionTimeout => "idle_in_transaction_timeout",
            LogoutReason::Fatal => "fatal",
        }
    }
}

/// Facts only some events have.
#[derive(Debug, Clone)]
pub enum Detail {
    Login,
    Logout { reason: LogoutReason, session_seconds: f64 },
    Ddl(Rc<Command>),
}

/// One firing in progress; nested firings (a login function that runs DDL) stack.
#[derive(Debug, Clone)]
struct Frame {
    event: Event,
    trigger: String,
    detail: Detail,
}

thread_local! {
    static STACK: RefCell<Vec<Frame>> = const { RefCell::new(Vec::new()) };
}

/// Makes `detail` the context of `event` while `work` fires its triggers.
pub fn with_event<R>(event: Event, detail: Detail, work: impl FnOnce() -> R) -> R {
    STACK.with_borrow_mut(|stack| stack.push(Frame { event, trigger: String::new(), detail }));
    let _pop = PopOnDrop;
    work()
}

/// Names the trigger being invoked in the innermost context while `work` runs.
pub fn with_trigger<R>(name: &str, work: impl FnOnce() -> R) -> R {
    STACK.with_borrow_mut(|stack| {
        if let Some(frame) = stack.last_mut() {
            frame.trigger = name.to_owned();
        }
    });
    work()
}

struct PopOnDrop;
impl Drop for PopOnDrop {
    fn drop(&mut self) {
        STACK.with_borrow_mut(|stack| stack.pop());
    }
}

fn current() -> Frame {
    STACK.with_borrow(|stack| stack.last().cloned()).unwrap_or_else(|| {
        Refusal::new(
            PgSqlErrorCode::ERRCODE_E_R_I_E_EVENT_TRIGGER_PROTOCOL_VIOLATED,
            "login_trigger context is only available in a trigger function",
        )
        .hint("Call it from a function registered with login_trigger.create_trigger().")
        .raise()
    })
}

pub(crate) fn cstr(pointer: *const std::ffi::c_char) -> Option<String> {
    // SAFETY: callers pass NULL or a NUL-terminated string owned by PostgreSQL.
    (!pointer.is_null()).then(|| unsafe { CStr::from_ptr(pointer) }.to_string_lossy().into_owned())
}

fn role_name(role: pg_sys::Oid) -> Option<String> {
    // SAFETY: GetUserNameFromId with noerr=true returns NULL for a missing role.
    cstr(unsafe { pg_sys::GetUserNameFromId(role, true) })
}

fn timestamp_json(value: pg_sys::TimestampTz) -> Value {
    // SAFETY: timestamptz_to_str formats into a static buffer, copied at once.
    cstr(unsafe { pg_sys::timestamptz_to_str(value) }).map_or(Value::Null, Value::String)
}

/// The facts about the session every event shares.
fn session_facts() -> Map<String, Value> {
    let mut facts = Map::new();
    // SAFETY: these read backend-local globals and the syscache inside a transaction.
    unsafe {
        facts.insert("session_user_name".into(), json!(role_name(pg_sys::GetSessionUserId())));
        facts.insert("current_user_name".into(), json!(role_name(pg_sys::GetUserId())));
        facts.insert("database".into(), json!(cstr(pg_sys::get_database_name(pg_sys::MyDatabaseId))));
        facts.insert(
            "application_name".into(),
            json!(cstr(pg_sys::GetConfigOption(c"application_name".as_ptr(), true, false))),
        );
        let connection = crate::port::Connection::current();
        let host = connection.and_then(|c| c.remote_host());
        let port_number = connection.and_then(|c| c.remote_port());
        let hostname = connection.and_then(|c| c.remote_hostname());
        // Unix-socket clients have no address; pg_stat_activity shows NULL for them too.
        let local = host.as_deref() == Some("[local]");
        facts.insert("client_addr".into(), json!(if local { None } else { host }));
        facts.insert("client_port".into(), json!(port_number.and_then(|p| p.parse::<i32>().ok()).filter(|p| *p > 0)));
        facts.insert("client_hostname".into(), json!(hostname));
        let (method, identity, ssl) = crate::auth::session_facts();
        facts.insert("auth_method".into(), json!(method));
        facts.insert("auth_identity".into(), json!(identity));
        facts.insert("ssl".into(), json!(ssl));
        facts.insert("backend_pid".into(), Value::from(pg_sys::MyProcPid as i64));
        facts.insert("backend_start".into(), timestamp_json(pg_sys::MyStartTimestamp));
        facts.insert("in_recovery".into(), json!(pg_sys::RecoveryInProgress()));
    }
    facts
}

/// The whole context of the trigger being fired, as one JSON object.
fn context_json() -> Value {
    let frame = current();
    let mut object = Map::new();
    object.insert("event".into(), json!(frame.event.name()));
    object.insert("trigger_name".into(), json!(frame.trigger));
    object.extend(session_facts());
    match frame.detail {
        Detail::Login => {}
        Detail::Logout { reason, session_seconds } => {
            object.insert("reason".into(), json!(reason.name()));
            object.insert("session_duration".into(), json!(session_seconds));
        }
        Detail::Ddl(command) => {
            object.insert("tag".into(), json!(command.tag));
            object.insert("command_text".into(), json!(command.text));
            if frame.event != Event::DdlCommandStart {
                object.insert("elapsed_ms".into(), json!(command.elapsed_ms));
            }
            if frame.event == Event::DdlCommandEnd {
                let objects: Vec<Value> = command
                    .objects
                    .iter()
                    .map(|o| {
                        json!({"classid": o.classid.to_u32(), "objid": o.objid.to_u32(), "objsubid": o.objsubid,
                               "command_tag": command.tag, "object_type": o.object_type,
                               "schema_name": o.schema_name, "object_identity": o.object_identity,
                               "in_extension": o.in_extension})
                    })
                    .collect();
                object.insert("objects".into(), Value::Array(objects));
            }
            if let Some((table, reason)) = command.rewrite {
                object.insert("table_oid".into(), json!(table.to_u32()));
                object.insert("rewrite_reason".into(), json!(reason));
            }
            if frame.event == Event::SqlDrop {
                let dropped: Vec<Value> = command
                    .dropped
                    .iter()
                    .map(|d| {
                        json!({"classid": d.classid.to_u32(), "objid": d.objid.to_u32(), "objsubid": d.objsubid,
                               "original": d.original, "normal": d.normal, "is_temporary": d.is_temporary,
                               "object_type": d.object_type, "schema_name": d.schema_name,
                               "object_name": d.object_name, "object_identity": d.object_identity,
                               "address_names": d.address_names, "address_args": d.address_args})
                    })
                    .collect();
                object.insert("dropped".into(), Value::Array(dropped));
            }
        }
    }
    Value::Object(object)
}

/// The context of the trigger being fired, as `jsonb`: callable from functions in any language.
#[pg_extern(volatile, parallel_restricted)]
fn context() -> pgrx::JsonB {
    pgrx::JsonB(context_json())
}

/// The context of a login or logout trigger as one typed row.
#[pg_extern(volatile, parallel_restricted)]
fn session() -> TableIterator<
    'static,
    (
        name!(event, String),
        name!(trigger_name, String),
        name!(session_user_name, Option<String>),
        name!(current_user_name, Option<String>),
        name!(database, Option<String>),
        name!(application_name, Option<String>),
        name!(client_addr, Option<String>),
        name!(client_port, Option<i32>),
        name!(auth_method, Option<String>),
        name!(auth_identity, Option<String>),
        name!(ssl, bool),
        name!(backend_pid, i32),
        name!(in_recovery, bool),
        name!(reason, Option<String>),
        name!(session_duration, Option<f64>),
    ),
> {
    let value = context_json();
    let text = |key: &str| value.get(key).and_then(Value::as_str).map(str::to_owned);
    let row = (
        text("event").unwrap_or_default(),
        text("trigger_name").unwrap_or_default(),
        text("session_user_name"),
        text("current_user_name"),
        text("database"),
        text("application_name"),
        text("client_addr"),
        value.get("client_port").and_then(Value::as_i64).map(|p| p as i32),
        text("auth_method"),
        text("auth_identity"),
        value.get("ssl").and_then(Value::as_bool).unwrap_or_default(),
        value.get("backend_pid").and_then(Value::as_i64).unwrap_or_default() as i32,
        value.get("in_recovery").and_then(Value::as_bool).unwrap_or_default(),
        text("reason"),
        value.get("session_duration").and_then(Value::as_f64),
    );
    TableIterator::once(row)
}

/// The command of the DDL trigger being fired, or a 39P03 naming the event where it is available.
fn ddl_command(event: Event, function: &str) -> Rc<Command> {
    let frame = current();
    match frame.detail {
        Detail::Ddl(command) if frame.event == event => command,
        _ => Refusal::new(
            PgSqlErrorCode::ERRCODE_E_R_I_E_EVENT_TRIGGER_PROTOCOL_VIOLATED,
            format!("{function} can only be called in a {} trigger function", event.name()),
        )
        .raise(),
    }
}

/// The objects the command created or altered, like `pg_event_trigger_ddl_commands()`
/// (`ddl_command_end` only), shared objects (roles, databases, tablespaces) included.
#[pg_extern(volatile, parallel_restricted)]
fn ddl_commands() -> TableIterator<
    'static,
    (
        name!(classid, pg_sys::Oid),
        name!(objid, pg_sys::Oid),
        name!(objsubid, i32),
        name!(command_tag, String),
        name!(object_type, Option<String>),
        name!(schema_name, Option<String>),
        name!(object_identity, Option<String>),
        name!(in_extension, bool),
    ),
> {
    let command = ddl_command(Event::DdlCommandEnd, "login_trigger.ddl_commands()");
    let rows: Vec<_> = command
        .objects
        .iter()
        .map(|o| {
            (
                o.classid,
                o.objid,
                o.objsubid,
                command.tag.clone(),
                o.object_type.clone(),
                o.schema_name.clone(),
                o.object_identity.clone(),
                o.in_extension,
            )
        })
        .collect();
    TableIterator::new(rows)
}

/// The objects the command dropped, like `pg_event_trigger_dropped_objects()` (`sql_drop` only).
#[pg_extern(volatile, parallel_restricted)]
fn dropped_objects() -> TableIterator<
    'static,
    (
        name!(classid, pg_sys::Oid),
        name!(objid, pg_sys::Oid),
        name!(objsubid, i32),
        name!(original, bool),
        name!(normal, bool),
        name!(is_temporary, bool),
        name!(object_type, Option<String>),
        name!(schema_name, Option<String>),
        name!(object_name, Option<String>),
        name!(object_identity, Option<String>),
        name!(address_names, Vec<String>),
        name!(address_args, Vec<String>),
    ),
> {
    let command = ddl_command(Event::SqlDrop, "login_trigger.dropped_objects()");
    let rows: Vec<_> = command
        .dropped
        .iter()
        .map(|d| {
            (
                d.classid,
                d.objid,
                d.objsubid,
                d.original,
                d.normal,
                d.is_temporary,
                d.object_type.clone(),
                d.schema_name.clone(),
                d.object_name.clone(),
                d.object_identity.clone(),
                d.address_names.clone(),
                d.address_args.clone(),
            )
        })
        .collect();
    TableIterator::new(rows)
}

/// The table about to be rewritten, like `pg_event_trigger_table_rewrite_oid()`.
#[pg_extern(volatile, parallel_restricted)]
fn table_rewrite_oid() -> pg_sys::Oid {
    let command = ddl_command(Event::TableRewrite, "login_trigger.table_rewrite_oid()");
    command.rewrite.map_or(pg_sys::Oid::INVALID, |(table, _)| table)
}

/// Why it is rewritten, like `pg_event_trigger_table_rewrite_reason()`: 1 persistence, 2 default
/// value, 4 column type, 8 access method.
#[pg_extern(volatile, parallel_restricted)]
fn table_rewrite_reason() -> i32 {
    let command = ddl_command(Event::TableRewrite, "login_trigger.table_rewrite_reason()");
    command.rewrite.map_or(0, |(_, reason)| reason)
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
    let rows: Vec<_> = crate::ddl::take_failed()
        .into_iter()
        .map(|f| (pgrx::datum::TimestampWithTimeZone::try_from(f.at).ok(), f.tag, f.text, f.sqlstate, f.message))
        .collect();
    TableIterator::new(rows)
}
