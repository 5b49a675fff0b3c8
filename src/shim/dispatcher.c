/*
 * Creates the native event trigger that stands for an event's registrations
 * (src/registry/dispatchers.rs): CreateEventTrigger with the statement built as the grammar
 * would, then the given state: ENABLE ALWAYS for a DDL event's dispatcher, since which
 * registration fires under session_replication_role is the dispatcher's decision; DISABLE for
 * login and logout, which fire from our own hooks. Called directly, not through ProcessUtility,
 * so that no event trigger (ours or a user's) fires for the bookkeeping. Building parse nodes is
 * C's business; the function raises as CreateEventTrigger does (superuser, name taken, function
 * missing).
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/dependency.h"
#include "catalog/pg_event_trigger.h"
#include "catalog/pg_extension.h"
#include "commands/event_trigger.h"
#include "commands/extension.h"
#include "commands/trigger.h"
#include "nodes/makefuncs.h"
#include "nodes/parsenodes.h"
#include "nodes/value.h"

/*
 * Gives a dispatcher an automatic dependency on login_trigger, so that DROP EXTENSION drops it
 * along (after the command's own ddl_command_start has fired, as native would) without CASCADE.
 * Done at creation and again just before DROP EXTENSION, since pg_dump does not carry it.
 * Idempotent.
 */
void
login_trigger_attach_dispatcher(Oid dispatcher)
{
	ObjectAddress myself;
	ObjectAddress extension;

	ObjectAddressSet(extension, ExtensionRelationId, get_extension_oid("login_trigger", false));
	ObjectAddressSet(myself, EventTriggerRelationId, dispatcher);
	deleteDependencyRecordsForClass(EventTriggerRelationId, dispatcher, ExtensionRelationId, DEPENDENCY_AUTO);
	recordDependencyOn(&myself, &extension, DEPENDENCY_AUTO);
	CommandCounterIncrement();
}

Oid
login_trigger_create_dispatcher(const char *name, const char *event, const char *schema, const char *function,
								char enabled)
{
	CreateEventTrigStmt *create = makeNode(CreateEventTrigStmt);
	AlterEventTrigStmt *alter = makeNode(AlterEventTrigStmt);
	bool		was_creating_extension = creating_extension;
	Oid			oid;

	create->trigname = pstrdup(name);
	create->eventname = pstrdup(event);
	create->whenclause = NIL;
	create->funcname = list_make2(makeString(pstrdup(schema)), makeString(pstrdup(function)));
	/*
	 * Inside another extension's script (which may register triggers) PostgreSQL would make the
	 * dispatcher a member of that extension: it is nobody's member.
	 */
	creating_extension = false;
	PG_TRY();
	{
		oid = CreateEventTrigger(create);
	}
	PG_FINALLY();
	{
		creating_extension = was_creating_extension;
	}
	PG_END_TRY();
	CommandCounterIncrement();

	alter->trigname = pstrdup(name);
	alter->tgenabled = enabled;
	AlterEventTrigger(alter);
	login_trigger_attach_dispatcher(oid);
	return oid;
}
