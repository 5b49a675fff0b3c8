/*
 * Reads the few fields of PostgreSQL's Port, HbaLine and ClientConnectionInfo that pgrx 0.18.1
 * does not expose: which pg_hba.conf method authenticated the client, the identity it
 * established, and whether the connection uses TLS. Their layout depends on the server version
 * and on build options (GSSAPI, OpenSSL), so they are read by C compiled against the server's
 * own headers rather than through a Rust copy of the structs. Nothing here raises or keeps
 * pointers; only login_trigger_port_sets_parameter allocates (in the current memory context).
 */
#include "postgres.h"

#include "libpq/hba.h"
#include "libpq/libpq-be.h"
#include "miscadmin.h"

#include "shim.h"

/* The pg_hba.conf method that matched the connection, or NULL before authentication. */
const char *
login_trigger_port_auth_method(const Port *port)
{
	if (port == NULL || port->hba == NULL)
		return NULL;
#if PG_VERSION_NUM >= 140000
	return hba_authname(port->hba->auth_method);
#else
	switch (port->hba->auth_method)
	{
		case uaReject: return "reject";
		case uaImplicitReject: return "implicit reject";
		case uaTrust: return "trust";
		case uaIdent: return "ident";
		case uaPassword: return "password";
		case uaMD5: return "md5";
		case uaSCRAM: return "scram-sha-256";
		case uaGSS: return "gss";
		case uaSSPI: return "sspi";
		case uaPAM: return "pam";
		case uaBSD: return "bsd";
		case uaLDAP: return "ldap";
		case uaCert: return "cert";
		case uaRADIUS: return "radius";
		case uaPeer: return "peer";
	}
	return NULL;
#endif
}

/* The identity the authentication method established (NULL for trust, and on PostgreSQL 13). */
const char *
login_trigger_port_authn_id(const Port *port)
{
#if PG_VERSION_NUM >= 160000
	(void) port;
	return MyClientConnectionInfo.authn_id;
#elif PG_VERSION_NUM >= 140000
	return port == NULL ? NULL : port->authn_id;
#else
	(void) port;
	return NULL;
#endif
}

/* Whether the client connection is encrypted with TLS. */
bool
login_trigger_port_ssl_in_use(const Port *port)
{
	return port != NULL && port->ssl_in_use;
}

/* Connection facts, read here because pgrx's copy of Port is not exact on every version. */
const char *
login_trigger_port_user_name(const Port *port)
{
	return port == NULL ? NULL : port->user_name;
}

const char *
login_trigger_port_database_name(const Port *port)
{
	return port == NULL ? NULL : port->database_name;
}

const char *
login_trigger_port_remote_host(const Port *port)
{
	return port == NULL ? NULL : port->remote_host;
}

const char *
login_trigger_port_remote_port(const Port *port)
{
	return port == NULL ? NULL : port->remote_port;
}

const char *
login_trigger_port_remote_hostname(const Port *port)
{
	return port == NULL ? NULL : port->remote_hostname;
}

/* Whether two setting names are the same: case-insensitive, '-' as '_' (as ParseLongOption). */
static bool
same_setting_prefix(const char *name, const char *prefix)
{
	for (; *prefix; name++, prefix++)
	{
		char		a = (*name == '-') ? '_' : pg_tolower((unsigned char) *name);
		char		b = (*prefix == '-') ? '_' : pg_tolower((unsigned char) *prefix);

		if (a != b)
			return false;
	}
	return true;
}

/*
 * Whether the client's startup packet sets a parameter whose name starts with prefix: as a
 * startup parameter of its own, or in the options parameter (-c name=value, -cname=value,
 * --name=value). PostgreSQL has already applied them; the caller only asks whether any was given.
 * Splitting the options allocates in the current memory context.
 */
bool
login_trigger_port_sets_parameter(const Port *port, const char *prefix)
{
	ListCell   *cell;

	if (port == NULL)
		return false;
	/* guc_options alternates names and values. */
	for (cell = list_head(port->guc_options); cell != NULL; cell = lnext(port->guc_options, cell))
	{
		if (same_setting_prefix((const char *) lfirst(cell), prefix))
			return true;
		cell = lnext(port->guc_options, cell);
		if (cell == NULL)
			break;
	}
	if (port->cmdline_options != NULL)
	{
		int			most = 2 + (strlen(port->cmdline_options) + 1) / 2;
		char	  **argv = palloc(most * sizeof(char *));
		int			argc = 0;

		pg_split_opts(argv, &argc, port->cmdline_options);
		for (int i = 0; i < argc; i++)
		{
			const char *option = argv[i];

			if (strcmp(option, "-c") == 0 && i + 1 < argc)
				option = argv[++i];
			else if (strncmp(option, "-c", 2) == 0 || strncmp(option, "--", 2) == 0)
				option += 2;
			else
				continue;
			if (same_setting_prefix(option, prefix))
				return true;
		}
	}
	return false;
}
