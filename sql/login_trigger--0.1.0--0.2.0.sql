-- login_trigger 0.1.0 -> 0.2.0: per-trigger statistics (login_trigger.trigger_stats,
-- login_trigger.stats_info, login_trigger.reset_trigger_stats) and refused logins
-- (login_trigger.refused_logins, login_trigger.reset_refused_logins) and account lockout
-- (login_trigger.locked_accounts, login_trigger.unlock_account). t/021_releases.pl checks that an
-- updated 0.1.0 has exactly the objects and definitions of a fresh 0.2.0.
\echo Use "ALTER EXTENSION login_trigger UPDATE TO '0.2.0'" to load this file. \quit

CREATE FUNCTION login_trigger.trigger_stats() RETURNS TABLE (
	dbid oid,
	trigger_name text,
	event text,
	calls bigint,
	total_time double precision,
	min_time double precision,
	max_time double precision,
	mean_time double precision,
	errors bigint,
	refusals bigint,
	timeouts bigint,
	last_error_at timestamp with time zone,
	last_error text,
	stats_since timestamp with time zone
)
STRICT VOLATILE PARALLEL RESTRICTED
LANGUAGE c
AS 'MODULE_PATHNAME', 'trigger_stats_wrapper';

CREATE FUNCTION login_trigger.stats_info() RETURNS TABLE (
	evictions bigint,
	stats_reset timestamp with time zone
)
STRICT VOLATILE PARALLEL RESTRICTED
LANGUAGE c
AS 'MODULE_PATHNAME', 'stats_info_wrapper';

CREATE FUNCTION login_trigger.reset_trigger_stats(name text DEFAULT NULL) RETURNS timestamp with time zone
VOLATILE PARALLEL RESTRICTED
LANGUAGE c
AS 'MODULE_PATHNAME', 'reset_trigger_stats_wrapper';

CREATE VIEW login_trigger.trigger_stats AS
SELECT d.datname AS dbname, s.trigger_name, s.event, s.calls, s.total_time, s.min_time, s.max_time,
       s.mean_time, s.errors, s.refusals, s.timeouts, s.last_error_at, s.last_error, s.stats_since
  FROM login_trigger.trigger_stats() s
  LEFT JOIN pg_catalog.pg_database d ON d.oid = s.dbid;
CREATE VIEW login_trigger.stats_info AS SELECT * FROM login_trigger.stats_info();
REVOKE ALL ON FUNCTION login_trigger.trigger_stats(), login_trigger.stats_info(),
    login_trigger.reset_trigger_stats(text) FROM PUBLIC;
REVOKE ALL ON login_trigger.trigger_stats, login_trigger.stats_info FROM PUBLIC;
GRANT SELECT ON login_trigger.trigger_stats, login_trigger.stats_info TO pg_read_all_stats;
GRANT EXECUTE ON FUNCTION login_trigger.trigger_stats(), login_trigger.stats_info() TO pg_read_all_stats;

CREATE FUNCTION login_trigger.refused_logins() RETURNS TABLE (
	at timestamp with time zone,
	user_name text,
	database_name text,
	application_name text,
	client_addr text,
	trigger_name text,
	sqlstate text,
	message text
)
STRICT VOLATILE PARALLEL RESTRICTED
LANGUAGE c
AS 'MODULE_PATHNAME', 'refused_logins_wrapper';

CREATE FUNCTION login_trigger.reset_refused_logins() RETURNS void
STRICT VOLATILE PARALLEL RESTRICTED
LANGUAGE c
AS 'MODULE_PATHNAME', 'reset_refused_logins_wrapper';

-- Refused logins (kept with shared_preload_libraries): who was refused is not for everyone, so
-- only superusers and pg_read_all_stats read them; reset by superusers and the roles a superuser
-- grants EXECUTE on reset_refused_logins to.
CREATE VIEW login_trigger.refused_logins AS SELECT * FROM login_trigger.refused_logins();
REVOKE ALL ON FUNCTION login_trigger.refused_logins(), login_trigger.reset_refused_logins() FROM PUBLIC;
REVOKE ALL ON login_trigger.refused_logins FROM PUBLIC;
GRANT SELECT ON login_trigger.refused_logins TO pg_read_all_stats;
GRANT EXECUTE ON FUNCTION login_trigger.refused_logins() TO pg_read_all_stats;

CREATE FUNCTION login_trigger.locked_accounts() RETURNS TABLE (
	user_name text,
	client_addr text,
	failures bigint,
	locked_at timestamp with time zone,
	unlocks_at timestamp with time zone
)
STRICT VOLATILE PARALLEL RESTRICTED
LANGUAGE c
AS 'MODULE_PATHNAME', 'locked_accounts_wrapper';

CREATE FUNCTION login_trigger.unlock_account(user_name text, client_addr inet DEFAULT NULL) RETURNS boolean
VOLATILE PARALLEL RESTRICTED
LANGUAGE c
AS 'MODULE_PATHNAME', 'unlock_account_wrapper';

-- Account lockout (with shared_preload_libraries): superusers only.
CREATE VIEW login_trigger.locked_accounts AS SELECT * FROM login_trigger.locked_accounts();
REVOKE ALL ON FUNCTION login_trigger.locked_accounts(), login_trigger.unlock_account(text, inet) FROM PUBLIC;
REVOKE ALL ON login_trigger.locked_accounts FROM PUBLIC;
