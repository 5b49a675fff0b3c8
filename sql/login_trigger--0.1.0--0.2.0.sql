-- login_trigger 0.1.0 -> 0.2.0: per-trigger statistics (login_trigger.trigger_stats,
-- login_trigger.stats_info, login_trigger.reset_trigger_stats). t/021_releases.pl checks that an
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
