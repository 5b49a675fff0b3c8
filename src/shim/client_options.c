/*
 * The startup-option rule of session_preload_libraries, shared by the extension's library and the
 * session library (src/session_library) so that both refuse exactly the same connections.
 *
 * With session_preload_libraries our settings do not exist yet when PostgreSQL applies a client's
 * startup options, so it cannot refuse a non-superuser's -c login_trigger.… as it does with
 * shared_preload_libraries: the value becomes a placeholder, and once the setting is defined the
 * placeholder is dropped with a mere warning, the postgresql.conf value with it (docs/design.md,
 * "the placeholder gotcha"). That would let anyone switch off a cluster-wide login_function or
 * shorten a timeout, so such a connection is refused as shared_preload_libraries would refuse it.
 */
#include "postgres.h"

#include "libpq/libpq-be.h"
#include "miscadmin.h"
#include "utils/guc.h"

#include "shim.h"

void
login_trigger_refuse_client_settings(void)
{
	/*
	 * is_superuser as reported to the client: no catalog access, since on 13 and 14 no transaction
	 * is open while session libraries load.
	 */
	const char *superuser = GetConfigOption("is_superuser", true, false);

	if (MyProcPort == NULL || (superuser != NULL && strcmp(superuser, "on") == 0))
		return;
	if (login_trigger_port_sets_parameter(MyProcPort, "login_trigger."))
		ereport(FATAL,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to set login_trigger parameters in the connection options"),
				 errdetail("Only superusers can set login_trigger.* settings."),
				 errhint("Connect without -c login_trigger.… in options or PGOPTIONS.")));
}
