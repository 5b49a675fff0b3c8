/*
 * Refusing a locked account the way PostgreSQL refuses a failed authentication (auth.c's
 * auth_failed): the same severity, SQLSTATE and message for the matched pg_hba.conf method, in
 * PostgreSQL's own message domain (so a translated server says it in the same words), and the
 * same source location in the ErrorResponse's F, L and R fields, which the caller passes as
 * PostgreSQL's own auth_failed last reported them. Only the server log's DETAIL says that the
 * account is locked.
 *
 * And holding back what would tell otherwise. With scram-sha-256, PostgreSQL queues its final
 * SASL message (AuthenticationSASLFinal: the server's signature, proof that the client's
 * password was right) before ClientAuthentication_hook runs, and sends it with whatever comes
 * next: a locked account's refusal would follow it, so a client reading the protocol itself could
 * tell "right password, locked" from "wrong password", which never gets that message. So the
 * protocol output is wrapped (PqCommMethods, set where shared_preload_libraries are loaded: in
 * the postmaster, inherited by every backend it forks): while lockout is on, that one message is
 * held until the hook has decided, then passed on (authentication succeeded) or dropped (it
 * failed, a locked account's refusal included: a client that is refused must not learn that its
 * password was right). An ErrorResponse arriving while it is held (a FATAL before the verdict)
 * drops it too; any other message passes it on first, so the order of what is sent stays
 * PostgreSQL's. With lockout off nothing is held.
 */
#include "postgres.h"

#include "libpq/hba.h"
#include "libpq/libpq.h"
#include "libpq/libpq-be.h"
#include "libpq/pqcomm.h"
#include "port/pg_bswap.h"
#include "utils/memutils.h"

#include "shim.h"

/* The methods the wrapper passes everything to: PostgreSQL's own, or another library's. */
static const PQcommMethods *next_methods = NULL;
static PQcommMethods holding_methods;

/* The held AuthenticationSASLFinal message's body, if any (in TopMemoryContext). */
static char *held_body = NULL;
static size_t held_length = 0;

static bool
is_sasl_final(char msgtype, const char *s, size_t len)
{
	uint32		request;

	if (msgtype != 'R' || len < sizeof(request))
		return false;
	memcpy(&request, s, sizeof(request));
	return pg_ntoh32(request) == AUTH_REQ_SASL_FIN;
}

/* Passes a held message on, if there is one; `send` false drops it. */
void
login_trigger_settle_sasl_final(bool send)
{
	char	   *body = held_body;

	if (body == NULL)
		return;
	held_body = NULL;
	if (send)
		(void) next_methods->putmessage('R', body, held_length);
	pfree(body);
}

static int
holding_putmessage(char msgtype, const char *s, size_t len)
{
	if (held_body == NULL && is_sasl_final(msgtype, s, len) && login_trigger_lockout_on())
	{
		held_body = MemoryContextAlloc(TopMemoryContext, len);
		memcpy(held_body, s, len);
		held_length = len;
		return 0;
	}
	login_trigger_settle_sasl_final(msgtype != 'E');
	return next_methods->putmessage(msgtype, s, len);
}

static void
holding_putmessage_noblock(char msgtype, const char *s, size_t len)
{
	login_trigger_settle_sasl_final(true);
	next_methods->putmessage_noblock(msgtype, s, len);
}

/* Installs the wrapper, once per process, where shared_preload_libraries are loaded. */
void
login_trigger_hold_sasl_final(void)
{
	if (next_methods != NULL)
		return;
	next_methods = PqCommMethods;
	holding_methods = *PqCommMethods;
	holding_methods.putmessage = holding_putmessage;
	holding_methods.putmessage_noblock = holding_putmessage_noblock;
	PqCommMethods = &holding_methods;
}

void
login_trigger_refuse_as_failed_authentication(const Port *port, const char *filename, int lineno,
											  const char *funcname, const char *log_detail)
{
	const char *errstr;
	int			errcode_return = ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION;

	switch (port->hba->auth_method)
	{
		case uaReject:
		case uaImplicitReject:
			errstr = gettext_noop("authentication failed for user \"%s\": host rejected");
			break;
		case uaTrust:
			errstr = gettext_noop("\"trust\" authentication failed for user \"%s\"");
			break;
		case uaIdent:
			errstr = gettext_noop("Ident authentication failed for user \"%s\"");
			break;
		case uaPeer:
			errstr = gettext_noop("Peer authentication failed for user \"%s\"");
			break;
		case uaPassword:
		case uaMD5:
		case uaSCRAM:
			errstr = gettext_noop("password authentication failed for user \"%s\"");
			errcode_return = ERRCODE_INVALID_PASSWORD;
			break;
		case uaGSS:
			errstr = gettext_noop("GSSAPI authentication failed for user \"%s\"");
			break;
		case uaSSPI:
			errstr = gettext_noop("SSPI authentication failed for user \"%s\"");
			break;
		case uaPAM:
			errstr = gettext_noop("PAM authentication failed for user \"%s\"");
			break;
		case uaBSD:
			errstr = gettext_noop("BSD authentication failed for user \"%s\"");
			break;
		case uaLDAP:
			errstr = gettext_noop("LDAP authentication failed for user \"%s\"");
			break;
		case uaCert:
			errstr = gettext_noop("certificate authentication failed for user \"%s\"");
			break;
		case uaRADIUS:
			errstr = gettext_noop("RADIUS authentication failed for user \"%s\"");
			break;
#if PG_VERSION_NUM >= 180000
		case uaOAuth:
			errstr = gettext_noop("OAuth bearer authentication failed for user \"%s\"");
			break;
#endif
		default:
			errstr = gettext_noop("authentication failed for user \"%s\": invalid authentication method");
			break;
	}

	/* NULL domain: PostgreSQL's own, as for auth.c. */
	if (errstart(FATAL, NULL))
	{
		errcode(errcode_return);
		errmsg(errstr, port->user_name);
		errdetail_log("%s", log_detail);
		errfinish(filename, lineno, funcname);
	}
	pg_unreachable();
}
