/*
 * login_trigger_session: the library for session_preload_libraries. It costs a connection what a
 * bare C library costs, and loads the extension's library (login_trigger, 2 MB of Rust that
 * defines six settings, for each of which PostgreSQL 15 re-sorts all its settings) only in the
 * sessions that have something to fire.
 *
 * A session, on PostgreSQL 15 and later (where session libraries load inside InitPostgres's
 * transaction, after authentication, in the session's database):
 *
 * 1. Not a client backend of a database (a parallel or background worker, single-user mode,
 *    binary upgrade), or loaded by LOAD mid-session: nothing.
 * 2. The extension's library already loaded (shared_preload_libraries): nothing; it does it all.
 * 3. A non-superuser's startup options set login_trigger.*: the connection is refused, as the
 *    extension's library refuses it (src/shim/client_options.c, shared by both).
 * 4. Something to fire: an event trigger standing for registrations of any event exists in this
 *    database (login_trigger_<event>, src/registry/dispatchers.rs: one exists exactly while the
 *    event has active registrations), or login_trigger.login_function or logout_function is set.
 *    The extension's library is loaded now, and the session goes on exactly as with
 *    session_preload_libraries = 'login_trigger'.
 * 5. Nothing to fire: the session logs in with nothing to fire and stays *dormant*, watching
 *    for registrations made while it runs:
 *    a. pg_event_trigger changes (a syscache callback) mark the registrations as possibly
 *       changed; the next utility command looks again, and if registrations now exist loads the
 *       extension's library and hands the command to its ProcessUtility hook, so that this
 *       command and every later one fire as in a session that had them from the start. A
 *       command on event triggers or DROP EXTENSION is handed over always: the extension's
 *       library keeps its bookkeeping in step with them;
 *    b. the extension's library loaded for any other reason (a login_trigger function called,
 *       a DDL dispatcher fired) takes the session over from then on, its logout included;
 *    c. at exit, if the extension's library was never loaded, a transaction looks whether logout
 *       registrations exist now (or login_trigger.logout_function is set), and if so loads the
 *       library to fire them; the SQLSTATE of the FATAL that ended the session (kept by an
 *       emit_log_hook in the shared state) gives the logout reason.
 *
 * On 13 and 14 session libraries load outside any transaction, so nothing can be looked up
 * cheaply: the extension's library is always loaded, and the session is as with
 * session_preload_libraries = 'login_trigger'.
 *
 * Every hook chains to the previous one and stays installed; once the extension's library is
 * loaded they only pass through.
 */
#include "postgres.h"

#include "access/xact.h"
#include "commands/event_trigger.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "parser/scansup.h"
#include "storage/ipc.h"
#include "tcop/dest.h"
#include "tcop/tcopprot.h"
#include "tcop/utility.h"
#include "utils/elog.h"
#include "utils/guc.h"
#include "utils/inval.h"
#include "utils/syscache.h"

#include "session_state.h"
#include "shim.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

/* The extension's library, named as pg_proc.probin names it. */
#define EXTENSION_LIBRARY "$libdir/login_trigger"

static void
load_extension_library(void)
{
	load_file(EXTENSION_LIBRARY, false);
}

#if PG_VERSION_NUM >= 150000

/* The event triggers that stand for registrations (src/registry/dispatchers.rs). */
static const char *const session_dispatchers[] = {"login_trigger_login", "login_trigger_logout"};
static const char *const ddl_dispatchers[] = {
	"login_trigger_ddl_command_start", "login_trigger_ddl_command_end",
	"login_trigger_sql_drop", "login_trigger_table_rewrite",
};

static ProcessUtility_hook_type previous_process_utility = NULL;
static emit_log_hook_type previous_emit_log = NULL;

/* Set by the pg_event_trigger syscache callback; cleared when a utility command looks. */
static bool registrations_may_have_changed = false;

typedef void (*handover_function) (ProcessUtility_hook_type next, PlannedStmt *pstmt,
								   const char *queryString, bool readOnlyTree,
								   ProcessUtilityContext context, ParamListInfo params,
								   QueryEnvironment *queryEnv, DestReceiver *dest,
								   QueryCompletion *qc);
typedef void (*logout_function) (int code);

static bool
any_exists(const char *const *names, int count)
{
	for (int i = 0; i < count; i++)
		if (OidIsValid(get_event_trigger_oid(names[i], true)))
			return true;
	return false;
}

/* Whether a session_exec-style function setting names something (placeholders included). */
static bool
names_function(const char *setting)
{
	const char *value = GetConfigOption(setting, true, false);

	if (value == NULL)
		return false;
	for (; *value != '\0'; value++)
		if (!scanner_isspace(*value))
			return true;
	return false;
}

/* Whether an event has active registrations in this database (a dispatcher exists for it). */
static bool
any_registrations(void)
{
	return any_exists(session_dispatchers, lengthof(session_dispatchers)) ||
		any_exists(ddl_dispatchers, lengthof(ddl_dispatchers));
}

/*
 * Commands that create, alter or drop event triggers, or drop an extension: the extension's
 * library keeps its bookkeeping in step with them (guards of the registrations, the dispatchers'
 * tie to the extension), so it must be loaded before they run.
 */
static bool
is_bookkeeping_command(Node *node)
{
	switch (nodeTag(node))
	{
		case T_CreateEventTrigStmt:
		case T_AlterEventTrigStmt:
			return true;
		case T_DropStmt:
			return ((DropStmt *) node)->removeType == OBJECT_EVENT_TRIGGER ||
				((DropStmt *) node)->removeType == OBJECT_EXTENSION;
		case T_RenameStmt:
			return ((RenameStmt *) node)->renameType == OBJECT_EVENT_TRIGGER;
		case T_AlterOwnerStmt:
			return ((AlterOwnerStmt *) node)->objectType == OBJECT_EVENT_TRIGGER;
		case T_CommentStmt:
			return ((CommentStmt *) node)->objtype == OBJECT_EVENT_TRIGGER;
		default:
			return false;
	}
}

static void
on_event_trigger_change(Datum arg, int cacheid, uint32 hashvalue)
{
	registrations_may_have_changed = true;
}

static void
dormant_process_utility(PlannedStmt *pstmt, const char *queryString, bool readOnlyTree,
						ProcessUtilityContext context, ParamListInfo params,
						QueryEnvironment *queryEnv, DestReceiver *dest, QueryCompletion *qc)
{
	ProcessUtility_hook_type next = previous_process_utility ? previous_process_utility : standard_ProcessUtility;

	/* Catalogs can be read only in a live transaction (not in an aborted block). */
	if (!login_trigger_session_state()->library_loaded && IsTransactionState())
	{
		bool		wake = is_bookkeeping_command(pstmt->utilityStmt);

		if (!wake && registrations_may_have_changed)
		{
			registrations_may_have_changed = false;
			wake = any_registrations();
		}
		if (wake)
		{
			handover_function handover;

			load_extension_library();
			handover = (handover_function)
				load_external_function(EXTENSION_LIBRARY, "login_trigger_process_utility_handover", true, NULL);
			handover(next, pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
			return;
		}
	}
	next(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
}

static void
dormant_emit_log(ErrorData *edata)
{
	if (edata->elevel == FATAL)
		login_trigger_session_state()->last_fatal_sqlstate = edata->sqlerrcode;
	if (previous_emit_log)
		previous_emit_log(edata);
}

static void
dormant_logout(int code, Datum arg)
{
	bool		registered;
	logout_function logout = NULL;

	if (login_trigger_session_state()->library_loaded)
		return;
	/*
	 * As the extension's logout does: roll back whatever the session left open and write nothing
	 * to a client that may be gone. The library is loaded inside the transaction that looks, since
	 * its _PG_init defines settings, whose placeholders (a SET while dormant) are checked against
	 * the catalogs.
	 */
	AbortOutOfAnyTransaction();
	whereToSendOutput = DestNone;
	StartTransactionCommand();
	registered = any_exists(&session_dispatchers[1], 1) || names_function("login_trigger.logout_function");
	if (registered)
		logout = (logout_function)
			load_external_function(EXTENSION_LIBRARY, "login_trigger_dormant_logout", true, NULL);
	CommitTransactionCommand();
	if (registered)
		logout(code);
}

static void
start_dormant(LoginTriggerSessionState *state)
{
	state->dormant = true;
	previous_process_utility = ProcessUtility_hook;
	ProcessUtility_hook = dormant_process_utility;
	previous_emit_log = emit_log_hook;
	emit_log_hook = dormant_emit_log;
	CacheRegisterSyscacheCallback(EVENTTRIGGEROID, on_event_trigger_change, (Datum) 0);
	before_shmem_exit(dormant_logout, (Datum) 0);
}

#endif

void
_PG_init(void)
{
	LoginTriggerSessionState *state;

	if (!IsUnderPostmaster || MyBackendType != B_BACKEND || IsBinaryUpgrade || !OidIsValid(MyDatabaseId))
		return;
	state = login_trigger_session_state();
	if (state->library_loaded)
		return;
#if PG_VERSION_NUM >= 150000
	if (!(Mode == InitProcessing && IsTransactionState()))
		return;
	login_trigger_refuse_client_settings();
	if (any_registrations() ||
		names_function("login_trigger.login_function") || names_function("login_trigger.logout_function"))
		load_extension_library();
	else
		start_dormant(state);
#else
	if (IsTransactionState())
		return;
	load_extension_library();
#endif
}
