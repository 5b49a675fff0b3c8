/*
 * Error boundaries written in C, because only C can install one: PG_TRY needs sigsetjmp, which
 * Rust cannot call. pgrx's own boundary (around every pg_sys call) turns an error into a Rust
 * panic and keeps only some of its fields: a SQLSTATE pgrx does not know becomes XX000 and the
 * CONTEXT lines are lost. Code that must pass PostgreSQL's errors on exactly as raised calls
 * PostgreSQL without pgrx's boundary and lets these catch what escapes.
 *
 * Both take a body (a Rust extern "C-unwind" function that catches its own panics and raises
 * them as PostgreSQL errors, so nothing but a longjmp ever leaves it abnormally).
 */
#include "postgres.h"

#include "access/xact.h"
#include "fmgr.h"
#include "pgstat.h"
#include "utils/elog.h"
#include "utils/memutils.h"
#include "utils/resowner.h"

typedef void (*login_trigger_body) (void *arg);

/*
 * Runs body(arg); an ERROR that escapes it ends the backend with FATAL instead, every field of the
 * error kept (SQLSTATE, message, detail, hint, CONTEXT, position). Used while a session starts:
 * whatever fails there refuses the connection, on every version and whatever error handler the
 * server has installed by then (on 16+ PostgresMain's, which would report a plain ERROR and then
 * send ReadyForQuery).
 */
void
login_trigger_fatal_on_error(login_trigger_body body, void *arg)
{
	MemoryContext caller_context = CurrentMemoryContext;

	PG_TRY();
	{
		body(arg);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(caller_context);
		edata = CopyErrorData();
		FlushErrorState();
		edata->elevel = FATAL;
		ThrowErrorData(edata);
		/* ThrowErrorData at FATAL does not return */
		pg_unreachable();
	}
	PG_END_TRY();
}

/*
 * Runs body(arg) in an internal subtransaction, as a PL/pgSQL block with an EXCEPTION clause
 * does. If body raises an error, the subtransaction is rolled back and a copy of the error is
 * returned (palloc'd in the caller's memory context), with *tolerated set when its SQLSTATE is
 * `tolerated_code`; the caller raises any other error again once its own frames have unwound
 * (login_trigger_rethrow). Returns NULL when body succeeds.
 */
ErrorData *
login_trigger_in_subtransaction(login_trigger_body body, void *arg, int tolerated_code, bool *tolerated)
{
	MemoryContext caller_context = CurrentMemoryContext;
	ResourceOwner caller_owner = CurrentResourceOwner;
	/* volatile: assigned after a longjmp, read after PG_END_TRY (-Wclobbered) */
	ErrorData  *volatile edata = NULL;

	*tolerated = false;
	BeginInternalSubTransaction(NULL);
	/* Run the body in the caller's memory context, as PL/pgSQL does. */
	MemoryContextSwitchTo(caller_context);

	PG_TRY();
	{
		body(arg);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(caller_context);
		CurrentResourceOwner = caller_owner;
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(caller_context);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(caller_context);
		CurrentResourceOwner = caller_owner;
		*tolerated = edata->sqlerrcode == tolerated_code;
	}
	PG_END_TRY();
	return edata;
}

/*
 * Raises an ERROR with exactly these fields (any may be NULL but message) and no others: for
 * reporting a Rust panic caught inside a body without pgrx's reporting, which would append a
 * Rust backtrace to the detail when the server's environment asks for backtraces.
 */
void
login_trigger_raise_error(int sqlerrcode, const char *message, const char *detail, const char *hint)
{
	ereport(ERROR,
			(errcode(sqlerrcode),
			 errmsg_internal("%s", message),
			 detail ? errdetail_internal("%s", detail) : 0,
			 hint ? errhint("%s", hint) : 0));
	pg_unreachable();
}

/*
 * Runs body(arg) and catches the error it raises, if any: the error is copied into
 * `error_context` (a memory context that outlives the call) and PostgreSQL's error state is
 * flushed, so the Rust frames above can unwind normally (dropping what they own) and the
 * outermost one raises the error again, untouched, with login_trigger_rethrow. Returns NULL when
 * body succeeds. Between the catch and the rethrow nothing may run that touches the database.
 */
ErrorData *
login_trigger_call_catching(login_trigger_body body, void *arg, MemoryContext error_context)
{
	/* volatile: assigned after a longjmp, read after PG_END_TRY (-Wclobbered) */
	ErrorData  *volatile edata = NULL;

	PG_TRY();
	{
		body(arg);
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(error_context);
		edata = CopyErrorData();
		FlushErrorState();
	}
	PG_END_TRY();
	return edata;
}

/*
 * Calls a trigger function as EventTriggerInvoke does: no arguments, `call_context` (its
 * EventTriggerData, or NULL) as fcinfo->context, in a memory context of its own that is deleted
 * afterwards, counted for pg_stat_user_functions. `flinfo` is kept by the caller across calls in
 * `flinfo_context`; if it is not filled yet (fn_oid is set last, by a complete fmgr_info) it is
 * filled first. An error of either is caught as login_trigger_call_catching catches it and
 * returned, copied into `error_context`; NULL on success. One C call for what would otherwise be
 * seven calls through pgrx's boundary on every firing.
 */
ErrorData *
login_trigger_call_function(Oid function, FmgrInfo *flinfo, MemoryContext flinfo_context,
							fmNodePtr call_context, MemoryContext error_context)
{
	MemoryContext caller_context = CurrentMemoryContext;
	/* volatile: assigned inside PG_TRY, read after a longjmp (-Wclobbered) */
	volatile MemoryContext invocation = NULL;
	ErrorData  *volatile edata = NULL;

	PG_TRY();
	{
		LOCAL_FCINFO(fcinfo, 0);
		PgStat_FunctionCallUsage usage;

		/* Inside the boundary: even running out of memory here comes back as a value. */
		invocation = AllocSetContextCreate(caller_context, "login_trigger invocation",
										   ALLOCSET_DEFAULT_SIZES);
		MemoryContextSwitchTo(invocation);
		if (!OidIsValid(flinfo->fn_oid))
			fmgr_info_cxt(function, flinfo, flinfo_context);
		InitFunctionCallInfoData(*fcinfo, flinfo, 0, InvalidOid, call_context, NULL);
		pgstat_init_function_usage(fcinfo, &usage);
		FunctionCallInvoke(fcinfo);
		pgstat_end_function_usage(&usage, true);
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(error_context);
		edata = CopyErrorData();
		FlushErrorState();
	}
	PG_END_TRY();
	MemoryContextSwitchTo(caller_context);
	if (invocation != NULL)
		MemoryContextDelete(invocation);
	return edata;
}

/* Raises an error caught by login_trigger_call_catching again, every field as it was raised. */
void
login_trigger_rethrow(ErrorData *edata)
{
	ReThrowError(edata);
}

/*
 * Raises an error caught by login_trigger_call_catching again as FATAL, every field kept: for
 * code running while the backend exits (logout), where a rethrown ERROR would be handed to
 * whatever handler is still installed instead of ending the process.
 */
void
login_trigger_raise_fatal(ErrorData *edata)
{
	edata->elevel = FATAL;
	ThrowErrorData(edata);
	pg_unreachable();
}
