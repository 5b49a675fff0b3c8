//! What trigger functions can see: the event and trigger being fired, and the session facts that
//! go with it, as `jsonb` (`login_trigger.context()`, in the style of SQL Server's `EVENTDATA()`)
//! and as a typed row (`login_trigger.session()`). The context belongs to the backend that fires:
//! there is no way to read another session's.

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

/// An object a command created or altered, as `pg_event_trigger_ddl_commands()` shows it.
#[derive(Debug, Clone)]
pub struct CommandObject {
    /// NULL (native does so) for GRANT/REVOKE and ALTER DEFAULT PRIVILEGES, which name no object.
    pub classid: Option<pg_sys::Oid>,
    pub objid: Option<pg_sys::Oid>,
    pub objsubid: Option<i32>,
    pub command_tag: String,
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

/// Where a DDL command's objects come from.
#[derive(Debug, Clone)]
pub enum Objects {
    /// Fired from inside PostgreSQL's own event-trigger firing: its functions
    /// (`pg_event_trigger_ddl_commands()` and the others) answer, asked when a trigger asks.
    Native,
    /// Fired from the ProcessUtility hook for a command native event triggers skip: what the
    /// hook collected.
    Collected { objects: Vec<CommandObject>, dropped: Vec<DroppedObject> },
}

/// What trigger functions see of a DDL command.
#[derive(Debug, Clone)]
pub struct Command {
    pub tag: &'static str,
    /// This statement's text only, even in a multi-statement query string.
    pub text: crate::ddl::StatementText,
    /// At ddl_command_end, sql_drop and table_rewrite: how long the command has run.
    pub elapsed_ms: Option<f64>,
    pub objects: Objects,
}

impl Command {
    fn objects(&self) -> Vec<CommandObject> {
        match &self.objects {
            Objects::Native => native_rows(
                "SELECT classid, objid, objsubid, command_tag, object_type, schema_name, object_identity, \
                 in_extension FROM pg_catalog.pg_event_trigger_ddl_commands()",
                |row| {
                    Ok(CommandObject {
                        classid: row.get(1)?,
                        objid: row.get(2)?,
                        objsubid: row.get(3)?,
                        command_tag: row.get(4)?.unwrap_or_default(),
                        object_type: row.get(5)?,
                        schema_name: row.get(6)?,
                        object_identity: row.get(7)?,
                        in_extension: row.get(8)?.unwrap_or(false),
                    })
                },
            ),
            Objects::Collected { objects, .. } => objects.clone(),
        }
    }

    fn dropped(&self) -> Vec<DroppedObject> {
        match &self.objects {
            Objects::Native => native_rows(
                "SELECT classid, objid, objsubid, original, normal, is_temporary, object_type, schema_name, \
                 object_name, object_identity, address_names, address_args \
                 FROM pg_catalog.pg_event_trigger_dropped_objects()",
                |row| {
                    Ok(DroppedObject {
                        classid: row.get(1)?.unwrap_or(pg_sys::Oid::INVALID),
                        objid: row.get(2)?.unwrap_or(pg_sys::Oid::INVALID),
                        objsubid: row.get(3)?.unwrap_or(0),
                        original: row.get(4)?.unwrap_or(false),
                        normal: row.get(5)?.unwrap_or(false),
                        is_temporary: row.get(6)?.unwrap_or(false),
                        object_type: row.get(7)?,
                        schema_name: row.get(8)?,
                        object_name: row.get(9)?,
                        object_identity: row.get(10)?,
                        address_names: row
                            .get::<Vec<Option<String>>>(11)?
                            .unwrap_or_default()
                            .into_iter()
                            .flatten()
                            .collect(),
                        address_args: row
                            .get::<Vec<Option<String>>>(12)?
                            .unwrap_or_default()
                            .into_iter()
                            .flatten()
                            .collect(),
                    })
                },
            ),
            Objects::Collected { dropped, .. } => dropped.clone(),
        }
    }

    /// The table being rewritten and why (native firing only: the commands the hook fires for
    /// never rewrite a table).
    fn rewrite(&self) -> Option<(pg_sys::Oid, i32)> {
        match &self.objects {
            Objects::Native => native_rows(
                "SELECT pg_catalog.pg_event_trigger_table_rewrite_oid(), \
                 pg_catalog.pg_event_trigger_table_rewrite_reason()",
                |row| Ok((row.get(1)?.unwrap_or(pg_sys::Oid::INVALID), row.get(2)?.unwrap_or(0))),
            )
            .into_iter()
            .next(),
            Objects::Collected { .. } => None,
        }
    }
}

/// Rows of one of PostgreSQL's event-trigger functions, asked while it fires. Each query is
/// planned once per backend (a DDL trigger may ask at every command).
fn native_rows<T>(query: &'static str, row: impl Fn(pgrx::spi::SpiHeapTupleData) -> pgrx::spi::Result<T>) -> Vec<T> {
    Spi::connect(|client| {
        let known = NATIVE_PLANS.with_borrow(|plans| plans.iter().any(|(text, _)| *text == query));
        if !known {
            let plan = client.prepare(query, &[])?.keep();
            NATIVE_PLANS.with_borrow_mut(|plans| plans.push((query, plan)));
        }
        NATIVE_PLANS.with_borrow(|plans| {
            let (_, plan) = plans.iter().find(|(text, _)| *text == query).expect("planned above");
            client.select(plan, None, &[])?.map(&row).collect::<pgrx::spi::Result<Vec<T>>>()
        })
    })
    .unwrap_or_else(|error| error!("could not read the event-trigger context: {error}"))
}

thread_local! {
    /// The kept plans of [`native_rows`]' queries, by query text.
    static NATIVE_PLANS: RefCell<Vec<(&'static str, pgrx::spi::OwnedPreparedStatement)>> = const { RefCell::new(Vec::new()) };
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
            object.insert("command_text".into(), json!(command.text.get()));
            if frame.event != Event::DdlCommandStart {
                object.insert("elapsed_ms".into(), json!(command.elapsed_ms));
            }
            match frame.event {
                Event::DdlCommandEnd => {
                    let objects: Vec<Value> = command
                        .objects()
                        .iter()
                        .map(|o| {
                            json!({"classid": o.classid.map(pg_sys::Oid::to_u32), "objid": o.objid.map(pg_sys::Oid::to_u32), "objsubid": o.objsubid,
                                   "command_tag": o.command_tag, "object_type": o.object_type,
                                   "schema_name": o.schema_name, "object_identity": o.object_identity,
                                   "in_extension": o.in_extension})
                        })
                        .collect();
                    object.insert("objects".into(), Value::Array(objects));
                }
                Event::TableRewrite => {
                    if let Some((table, reason)) = command.rewrite() {
                        object.insert("table_oid".into(), json!(table.to_u32()));
                        object.insert("rewrite_reason".into(), json!(reason));
                    }
                }
                Event::SqlDrop => {
                    let dropped: Vec<Value> = command
                        .dropped()
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
                _ => {}
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

/// Whether the trigger being fired is an `event` trigger fired from inside PostgreSQL's own
/// event-trigger firing, where PostgreSQL's functions answer.
fn fired_natively(event: Event) -> bool {
    STACK.with_borrow(|stack| {
        stack.last().is_some_and(|frame| {
            frame.event == event
                && matches!(&frame.detail, Detail::Ddl(command) if matches!(command.objects, Objects::Native))
        })
    })
}

// PostgreSQL's own functions, called without pgrx's guard: an error they raise propagates as
// PostgreSQL raised it, through frames that own nothing.
unsafe extern "C-unwind" {
    fn pg_event_trigger_ddl_commands(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum;
    fn pg_event_trigger_dropped_objects(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum;
}

crate::pg_ext::function_info_v1!(pg_finfo_login_trigger_ddl_commands);

/// `login_trigger.ddl_commands()`, declared with exactly the columns of
/// `pg_event_trigger_ddl_commands()`: see [`native_or_collected`].
///
/// # Safety
/// Called by PostgreSQL's function manager with a valid `fcinfo`.
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn login_trigger_ddl_commands(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    // SAFETY: as the function's contract says.
    unsafe {
        native_or_collected(fcinfo, Event::DdlCommandEnd, pg_event_trigger_ddl_commands, collected_ddl_commands_wrapper)
    }
}

crate::pg_ext::function_info_v1!(pg_finfo_login_trigger_dropped_objects);

/// `login_trigger.dropped_objects()`, declared with exactly the columns of
/// `pg_event_trigger_dropped_objects()`: see [`native_or_collected`].
///
/// # Safety
/// Called by PostgreSQL's function manager with a valid `fcinfo`.
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn login_trigger_dropped_objects(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    // SAFETY: as the function's contract says.
    unsafe {
        native_or_collected(fcinfo, Event::SqlDrop, pg_event_trigger_dropped_objects, collected_dropped_objects_wrapper)
    }
}

type SetReturningFunction = unsafe extern "C-unwind" fn(pg_sys::FunctionCallInfo) -> pg_sys::Datum;

/// Where PostgreSQL fired the trigger, PostgreSQL's own function is called with this call's
/// `fcinfo`, so a registered trigger reads its objects at native cost and gets native's rows by
/// construction; on the hook path, the hook's collection answers.
///
/// # Safety
/// `fcinfo` is the valid call of a function whose result type is `native`'s.
unsafe fn native_or_collected(
    fcinfo: pg_sys::FunctionCallInfo,
    event: Event,
    native: SetReturningFunction,
    collected: SetReturningFunction,
) -> pg_sys::Datum {
    if fired_natively(event) {
        // SAFETY: this function's result type is PostgreSQL's, which the callee reads from
        // fcinfo (InitMaterializedSRF); no Rust value is live across the call.
        unsafe { native(fcinfo) }
    } else {
        // SAFETY: the pgrx wrapper of a set-returning function, called with the same fcinfo.
        unsafe { collected(fcinfo) }
    }
}

/// The objects a command of the hook path created or altered (`ddl_command_end` only), shared
/// objects (roles, databases, tablespaces) included, for `login_trigger.ddl_commands()`. Its
/// last column is `pg_ddl_command`, a pointer to a command PostgreSQL collected: there is none on
/// the hook path, so it is NULL.
#[pg_extern(sql = false)]
fn collected_ddl_commands() -> TableIterator<
    'static,
    (
        name!(classid, Option<pg_sys::Oid>),
        name!(objid, Option<pg_sys::Oid>),
        name!(objsubid, Option<i32>),
        name!(command_tag, String),
        name!(object_type, Option<String>),
        name!(schema_name, Option<String>),
        name!(object_identity, Option<String>),
        name!(in_extension, bool),
        name!(command, Option<pgrx::Internal>),
    ),
> {
    let command = ddl_command(Event::DdlCommandEnd, "login_trigger.ddl_commands()");
    let rows: Vec<_> = command
        .objects()
        .into_iter()
        .map(|o| {
            (
                o.classid,
                o.objid,
                o.objsubid,
                o.command_tag,
                o.object_type,
                o.schema_name,
                o.object_identity,
                o.in_extension,
                None,
            )
        })
        .collect();
    TableIterator::new(rows)
}

/// The objects a command of the hook path dropped (`sql_drop` only), for
/// `login_trigger.dropped_objects()`.
#[pg_extern(sql = false)]
fn collected_dropped_objects() -> TableIterator<
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
        .dropped()
        .into_iter()
        .map(|d| {
            (
                d.classid,
                d.objid,
                d.objsubid,
                d.original,
                d.normal,
                d.is_temporary,
                d.object_type,
                d.schema_name,
                d.object_name,
                d.object_identity,
                d.address_names,
                d.address_args,
            )
        })
        .collect();
    TableIterator::new(rows)
}

/// The table about to be rewritten, like `pg_event_trigger_table_rewrite_oid()`.
#[pg_extern(volatile, parallel_restricted)]
fn table_rewrite_oid() -> pg_sys::Oid {
    let command = ddl_command(Event::TableRewrite, "login_trigger.table_rewrite_oid()");
    command.rewrite().map_or(pg_sys::Oid::INVALID, |(table, _)| table)
}

/// Why it is rewritten, like `pg_event_trigger_table_rewrite_reason()`: 1 persistence, 2 default
/// value, 4 column type, 8 access method.
#[pg_extern(volatile, parallel_restricted)]
fn table_rewrite_reason() -> i32 {
    let command = ddl_command(Event::TableRewrite, "login_trigger.table_rewrite_reason()");
    command.rewrite().map_or(0, |(_, reason)| reason)
}
