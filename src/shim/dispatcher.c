/*
 * Creates the native event trigger through which an event's DDL registrations fire
 * (src/ddl/native.rs): CreateEventTrigger with the statement built as the grammar would, then
 * ENABLE ALWAYS, since which registration fires under session_replication_role is the
 * dispatcher's decision. Called directly, not through ProcessUtility, so that no event trigger
 * (ours or a user's) fires for the bookkeeping. Building parse nodes is C's business; the
 * function raises as CreateEventTrigger does (superuser, name taken, function missing).
 */
#include "postgres.h"

#include "access/xact.h"
#include "commands/event_trigger.h"
#include "commands/trigger.h"
#include "nodes/makefuncs.h"
#include "nodes/parsenodes.h"
#include "nodes/value.h"

Oid
login_trigger_create_dispatcher(const char *name, const char *event, const char *schema, const char *function)
{
	CreateEventTrigStmt *create = makeNode(CreateEventTrigStmt);
	AlterEventTrigStmt *alter = makeNode(AlterEventTrigStmt);
	Oid			oid;

	create->trigname = pstrdup(name);
	create->eventname = pstrdup(event);
	create->whenclause = NIL;
	create->funcname = list_make2(makeString(pstrdup(schema)), makeString(pstrdup(function)));
	oid = CreateEventTrigger(create);
	CommandCounterIncrement();

	alter->trigname = pstrdup(name);
	alter->tgenabled = TRIGGER_FIRES_ALWAYS;
	AlterEventTrigger(alter);
	return oid;
}
