-- Runs after the Rust functions exist: the registry's own triggers, its listing view, privileges,
-- and pg_dump support.
CREATE TRIGGER event_trigger_check
    BEFORE INSERT OR UPDATE OR DELETE ON login_trigger.event_trigger
    FOR EACH ROW EXECUTE FUNCTION login_trigger.event_trigger_check();
CREATE TRIGGER event_trigger_check_truncate
    BEFORE TRUNCATE ON login_trigger.event_trigger
    FOR EACH STATEMENT EXECUTE FUNCTION login_trigger.event_trigger_check();
CREATE TRIGGER event_trigger_sync
    AFTER INSERT OR UPDATE OR DELETE ON login_trigger.event_trigger
    FOR EACH ROW EXECUTE FUNCTION login_trigger.event_trigger_sync();
CREATE TRIGGER event_trigger_sync_truncate
    AFTER TRUNCATE ON login_trigger.event_trigger
    FOR EACH STATEMENT EXECUTE FUNCTION login_trigger.event_trigger_sync();
-- The registry's own triggers fire whatever session_replication_role is: a session in replica
-- mode must neither skip the checks nor leave dependencies and caches stale.
ALTER TABLE login_trigger.event_trigger ENABLE ALWAYS TRIGGER event_trigger_check;
ALTER TABLE login_trigger.event_trigger ENABLE ALWAYS TRIGGER event_trigger_check_truncate;
ALTER TABLE login_trigger.event_trigger ENABLE ALWAYS TRIGGER event_trigger_sync;
ALTER TABLE login_trigger.event_trigger ENABLE ALWAYS TRIGGER event_trigger_sync_truncate;

-- The function of the native event triggers through which DDL registrations fire, one per DDL
-- event while it has registrations (src/registry/dispatchers.rs, src/ddl/native.rs).
CREATE FUNCTION login_trigger.dispatch_ddl() RETURNS event_trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'login_trigger_dispatch_ddl';
REVOKE EXECUTE ON FUNCTION login_trigger.dispatch_ddl() FROM PUBLIC;
-- The function of the disabled event triggers that stand for login and logout registrations
-- (login_trigger_login, login_trigger_logout): those fire from the library's own hooks, and this
-- does nothing.
CREATE FUNCTION login_trigger.session_dispatcher() RETURNS event_trigger
    LANGUAGE c AS 'MODULE_PATHNAME', 'login_trigger_session_dispatcher';
REVOKE EXECUTE ON FUNCTION login_trigger.session_dispatcher() FROM PUBLIC;

-- A DDL trigger's objects, with exactly the columns of pg_event_trigger_ddl_commands() and
-- pg_event_trigger_dropped_objects(): PostgreSQL's own functions answer while a registration
-- fires from inside PostgreSQL's firing (called with this call's arguments, so at their cost),
-- the hook path's collection for the commands native never fires for.
CREATE FUNCTION login_trigger.ddl_commands(
    OUT classid oid, OUT objid oid, OUT objsubid integer, OUT command_tag text, OUT object_type text,
    OUT schema_name text, OUT object_identity text, OUT in_extension boolean, OUT command pg_ddl_command)
RETURNS SETOF record LANGUAGE c STABLE PARALLEL RESTRICTED
    AS 'MODULE_PATHNAME', 'login_trigger_ddl_commands';
CREATE FUNCTION login_trigger.dropped_objects(
    OUT classid oid, OUT objid oid, OUT objsubid integer, OUT original boolean, OUT normal boolean,
    OUT is_temporary boolean, OUT object_type text, OUT schema_name text, OUT object_name text,
    OUT object_identity text, OUT address_names text[], OUT address_args text[])
RETURNS SETOF record LANGUAGE c STABLE PARALLEL RESTRICTED
    AS 'MODULE_PATHNAME', 'login_trigger_dropped_objects';

-- The registered triggers the way psql's \dy lists native event triggers, in firing order.
CREATE VIEW login_trigger.triggers AS
SELECT t.name,
       t.event,
       t.owner,
       CASE t.enabled WHEN 'O' THEN 'enabled' WHEN 'D' THEN 'disabled'
                      WHEN 'R' THEN 'replica' WHEN 'A' THEN 'always' END AS enabled,
       t.function,
       pg_catalog.array_to_string(t.tags, ', ') AS tags,
       t.created_at
  FROM login_trigger.event_trigger t
 ORDER BY t.name COLLATE "C";

-- Registrations survive pg_dump / pg_restore; restored rows pass through event_trigger_check and
-- get their dependency carriers from event_trigger_sync.
SELECT pg_catalog.pg_extension_config_dump('login_trigger.event_trigger', '');

-- Everyone may read the registry and call the context functions; only superusers write.
REVOKE ALL ON login_trigger.event_trigger, login_trigger.registered_function,
    login_trigger.registered_login_function, login_trigger.registered_logout_function FROM PUBLIC;
GRANT SELECT ON login_trigger.event_trigger, login_trigger.triggers TO PUBLIC;
GRANT USAGE ON SCHEMA login_trigger TO PUBLIC;
-- The registry's trigger functions act as the bootstrap superuser on its dependencies: nobody
-- may attach them to another table (CREATE TRIGGER checks EXECUTE; they refuse other tables too).
REVOKE EXECUTE ON FUNCTION login_trigger.event_trigger_check(), login_trigger.event_trigger_sync(),
    login_trigger.registered_function_carrier() FROM PUBLIC;

-- Failed authentications (recorded with shared_preload_libraries): user names and client
-- addresses are not for everyone, so only superusers and pg_read_all_stats read them.
CREATE VIEW login_trigger.auth_failures AS SELECT * FROM login_trigger.auth_failures();
CREATE VIEW login_trigger.auth_failure_counts AS SELECT * FROM login_trigger.auth_failure_counts();
REVOKE ALL ON FUNCTION login_trigger.auth_failures(), login_trigger.auth_failure_counts(),
    login_trigger.reset_auth_failures() FROM PUBLIC;
REVOKE ALL ON login_trigger.auth_failures, login_trigger.auth_failure_counts FROM PUBLIC;
GRANT SELECT ON login_trigger.auth_failures, login_trigger.auth_failure_counts TO pg_read_all_stats;
-- Functions in a view are checked against the caller, so the readers need EXECUTE too.
GRANT EXECUTE ON FUNCTION login_trigger.auth_failures(), login_trigger.auth_failure_counts() TO pg_read_all_stats;

-- Per-trigger statistics (kept with shared_preload_libraries): like pg_stat_statements' figures,
-- readable by superusers and pg_read_all_stats; reset by superusers and the roles a superuser
-- grants EXECUTE on reset_trigger_stats to.
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

-- Refused logins (kept with shared_preload_libraries): who was refused is not for everyone, so
-- only superusers and pg_read_all_stats read them; reset by superusers and the roles a superuser
-- grants EXECUTE on reset_refused_logins to.
CREATE VIEW login_trigger.refused_logins AS SELECT * FROM login_trigger.refused_logins();
REVOKE ALL ON FUNCTION login_trigger.refused_logins(), login_trigger.reset_refused_logins() FROM PUBLIC;
REVOKE ALL ON login_trigger.refused_logins FROM PUBLIC;
GRANT SELECT ON login_trigger.refused_logins TO pg_read_all_stats;
GRANT EXECUTE ON FUNCTION login_trigger.refused_logins() TO pg_read_all_stats;

-- Account lockout (with shared_preload_libraries): superusers only.
CREATE VIEW login_trigger.locked_accounts AS SELECT * FROM login_trigger.locked_accounts();
REVOKE ALL ON FUNCTION login_trigger.locked_accounts(), login_trigger.unlock_account(text, inet) FROM PUBLIC;
REVOKE ALL ON login_trigger.locked_accounts FROM PUBLIC;
