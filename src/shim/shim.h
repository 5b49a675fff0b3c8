/*
 * The C functions of src/shim that other C files call: the session library
 * (src/session_library) links port.c, client_options.c and session_state.c too.
 */
#ifndef LOGIN_TRIGGER_SHIM_H
#define LOGIN_TRIGGER_SHIM_H

#include "libpq/libpq-be.h"

/* port.c */
extern const char *login_trigger_port_auth_method(const Port *port);
extern const char *login_trigger_port_authn_id(const Port *port);
extern bool login_trigger_port_ssl_in_use(const Port *port);
extern const char *login_trigger_port_user_name(const Port *port);
extern const char *login_trigger_port_database_name(const Port *port);
extern const char *login_trigger_port_remote_host(const Port *port);
extern const char *login_trigger_port_remote_port(const Port *port);
extern const char *login_trigger_port_remote_hostname(const Port *port);
extern bool login_trigger_port_sets_parameter(const Port *port, const char *prefix);

/* lockout.c */
extern void login_trigger_refuse_as_failed_authentication(const Port *port, const char *filename, int lineno,
														  const char *funcname, const char *log_detail);
extern void login_trigger_hold_sasl_final(void);
extern void login_trigger_settle_sasl_final(bool send);
/* lockout.rs */
extern bool login_trigger_lockout_on(void);

/* client_options.c */
extern void login_trigger_refuse_client_settings(void);

#endif
