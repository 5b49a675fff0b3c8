/* See session_state.h. */
#include "postgres.h"

#include "fmgr.h"
#include "utils/memutils.h"

#include "session_state.h"

LoginTriggerSessionState *
login_trigger_session_state(void)
{
	LoginTriggerSessionState **slot;

	slot = (LoginTriggerSessionState **) find_rendezvous_variable("login_trigger_session");
	if (*slot == NULL)
		*slot = MemoryContextAllocZero(TopMemoryContext, sizeof(LoginTriggerSessionState));
	return *slot;
}

void
login_trigger_note_library_loaded(void)
{
	login_trigger_session_state()->library_loaded = true;
}

bool
login_trigger_session_dormant(void)
{
	return login_trigger_session_state()->dormant;
}

int
login_trigger_dormant_last_fatal(void)
{
	return login_trigger_session_state()->last_fatal_sqlstate;
}
