/*
 * Refusing a locked account the way PostgreSQL refuses a failed authentication (auth.c's
 * auth_failed): the same severity, SQLSTATE and message for the matched pg_hba.conf method, in
 * PostgreSQL's own message domain (so a translated server says it in the same words), and the
 * same source location in the ErrorResponse's F, L and R fields, which the caller passes as
 * PostgreSQL's own auth_failed last reported them. Only the server log's DETAIL says that the
 * account is locked.
 */
#include "postgres.h"

#include "libpq/hba.h"
#include "libpq/libpq-be.h"

#include "shim.h"

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
