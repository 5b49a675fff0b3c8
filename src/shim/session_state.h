/*
 * What the session library (src/session_library) and the extension's library tell each other in
 * one backend, through PostgreSQL's rendezvous variable "login_trigger_session" (the mechanism
 * PL/pgSQL offers its debugger plugins). Whichever library comes first allocates it in
 * TopMemoryContext; with shared_preload_libraries the postmaster does, and every backend inherits
 * it through fork.
 */
#ifndef LOGIN_TRIGGER_SESSION_STATE_H
#define LOGIN_TRIGGER_SESSION_STATE_H

typedef struct LoginTriggerSessionState
{
	/* The extension's library has run _PG_init in this process. */
	bool		library_loaded;

	/*
	 * The session library started this session without loading the extension's library, because
	 * nothing was registered to fire: the session has logged in (with nothing to fire), and its
	 * logout is the session library's to fire unless the extension's library is loaded later.
	 */
	bool		dormant;

	/* While dormant: the SQLSTATE of the last FATAL this backend reported, 0 for none. */
	int			last_fatal_sqlstate;
} LoginTriggerSessionState;

extern LoginTriggerSessionState *login_trigger_session_state(void);

/* For the extension's library, which does not mirror the struct's layout in Rust. */
extern void login_trigger_note_library_loaded(void);
extern bool login_trigger_session_dormant(void);
extern int	login_trigger_dormant_last_fatal(void);

#endif
