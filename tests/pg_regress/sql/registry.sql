-- The SQL API and its accept/reject contract: every refusal has its SQLSTATE and leaves the
-- registry as it was.
\set VERBOSITY terse
SELECT login_trigger.create_trigger('audit_ddl', 'ddl_command_end', 'public.noop_void()',
                                    ARRAY['create table', 'Drop Table', 'CREATE TABLE']);
SELECT login_trigger.create_trigger('on_login', 'login', 'public.noop_event()');
SELECT login_trigger.create_trigger('on_logout', 'logout', 'public.noop_void()', enabled => 'always');
SELECT login_trigger.create_trigger('rewrites', 'table_rewrite', 'public.noop_event()', ARRAY['alter table']);
SELECT login_trigger.create_trigger('drops', 'sql_drop', 'public.noop_event()', ARRAY['drop role', 'DROP TABLE']);
SELECT name, event, owner, enabled, function, tags FROM login_trigger.triggers;

-- Refusals: each leaves the registry unchanged.
CREATE TEMP TABLE before AS SELECT * FROM login_trigger.event_trigger;
SELECT try($$SELECT login_trigger.create_trigger('x', 'logon', 'public.noop_event()')$$);
SELECT try($$SELECT login_trigger.create_trigger('x', 'login', 'public.no_such_function()')$$);
SELECT try($$SELECT login_trigger.create_trigger('x', 'login', 4242424242::oid::regprocedure)$$);
CREATE FUNCTION public.takes_arg(int) RETURNS void LANGUAGE sql AS $$SELECT$$;
SELECT try($$SELECT login_trigger.create_trigger('x', 'login', 'public.takes_arg(int)')$$);
CREATE FUNCTION public.returns_int() RETURNS int LANGUAGE sql AS $$SELECT 1$$;
SELECT try($$SELECT login_trigger.create_trigger('x', 'login', 'public.returns_int()')$$);
CREATE FUNCTION public.returns_set() RETURNS SETOF void LANGUAGE sql AS $$SELECT$$;
SELECT try($$SELECT login_trigger.create_trigger('x', 'login', 'public.returns_set()')$$);
CREATE PROCEDURE public.a_procedure() LANGUAGE sql AS $$SELECT$$;
SELECT try($$SELECT login_trigger.create_trigger('x', 'login', 'public.a_procedure()')$$);
CREATE FUNCTION public.alices() RETURNS void LANGUAGE sql AS $$SELECT$$;
ALTER FUNCTION public.alices() OWNER TO regress_alice;
SELECT try($$SELECT login_trigger.create_trigger('x', 'login', 'public.alices()')$$);
SELECT try($$SELECT login_trigger.create_trigger('on_login', 'login', 'public.noop_event()')$$);
SELECT try($$SELECT login_trigger.create_trigger('x', 'login', 'public.noop_event()', ARRAY['CREATE TABLE'])$$);
SELECT try($$SELECT login_trigger.create_trigger('x', 'logout', 'public.noop_event()', ARRAY[]::text[])$$);
SELECT try($$SELECT login_trigger.create_trigger('x', 'ddl_command_start', 'public.noop_event()', ARRAY[]::text[])$$);
SELECT try($$SELECT login_trigger.create_trigger('x', 'ddl_command_start', 'public.noop_event()', ARRAY['CREATE TABLE', NULL])$$);
SELECT try($$SELECT login_trigger.create_trigger('x', 'ddl_command_start', 'public.noop_event()', ARRAY['foobar'])$$);
SELECT try($$SELECT login_trigger.create_trigger('x', 'ddl_command_start', 'public.noop_event()', ARRAY['select'])$$);
SELECT try($$SELECT login_trigger.create_trigger('x', 'ddl_command_start', 'public.noop_event()', ARRAY['vacuum'])$$);
SELECT try($$SELECT login_trigger.create_trigger('x', 'table_rewrite', 'public.noop_event()', ARRAY['create table'])$$);
SELECT try($$SELECT login_trigger.create_trigger('x', 'login', 'public.noop_event()', enabled => 'sometimes')$$);
SELECT try($$SELECT login_trigger.create_trigger(NULL, 'login', 'public.noop_event()')$$);
SELECT try($$SELECT login_trigger.create_trigger('x', NULL, 'public.noop_event()')$$);
SELECT try($$SELECT login_trigger.create_trigger('x', 'login', NULL)$$);
SELECT try($$SELECT login_trigger.create_trigger('x', 'login', 'public.noop_event()', enabled => NULL)$$);
SELECT try($$SELECT login_trigger.create_trigger('', 'login', 'public.noop_event()')$$);
SELECT try(format($$SELECT login_trigger.create_trigger(%L, 'login', 'public.noop_event()')$$, repeat('x', 64)));
SELECT try(format($$SELECT login_trigger.create_trigger(%L, 'login', 'public.noop_event()')$$, repeat('é', 32)));
SELECT (SELECT count(*) FROM before) = (SELECT count(*) FROM login_trigger.event_trigger)
   AND NOT EXISTS (SELECT * FROM login_trigger.event_trigger EXCEPT SELECT * FROM before) AS registry_unchanged;

-- Names of exactly 63 bytes, quotes and non-ASCII are fine.
SELECT login_trigger.create_trigger(repeat('n', 63), 'login', 'public.noop_event()');
SELECT login_trigger.create_trigger('it''s "quoted" ✓', 'logout', 'public.noop_event()');
SELECT login_trigger.drop_trigger(repeat('n', 63));
SELECT login_trigger.drop_trigger('it''s "quoted" ✓');

-- State changes, rename, drop.
SELECT login_trigger.disable_trigger('on_login');
SELECT login_trigger.enable_trigger('rewrites', 'replica');
SELECT login_trigger.enable_trigger('drops', 'ALWAYS');
SELECT login_trigger.rename_trigger('audit_ddl', 'audit ddl');
SELECT name, enabled FROM login_trigger.triggers;
SELECT login_trigger.enable_trigger('on_login');
SELECT try($$SELECT login_trigger.enable_trigger('on_login', 'disabled')$$);
SELECT try($$SELECT login_trigger.enable_trigger('on_login', 'bogus')$$);
SELECT try($$SELECT login_trigger.enable_trigger('nope')$$);
SELECT try($$SELECT login_trigger.disable_trigger('nope')$$);
SELECT try($$SELECT login_trigger.disable_trigger(NULL)$$);
SELECT try($$SELECT login_trigger.rename_trigger('nope', 'other')$$);
SELECT try($$SELECT login_trigger.rename_trigger('on_login', 'drops')$$);
SELECT try($$SELECT login_trigger.rename_trigger('on_login', '')$$);
SELECT try($$SELECT login_trigger.rename_trigger('on_login', NULL)$$);
SELECT try($$SELECT login_trigger.drop_trigger('nope')$$);
SELECT login_trigger.drop_trigger('nope', if_exists => true);
SELECT try($$SELECT login_trigger.drop_trigger('nope', NULL)$$);
SELECT login_trigger.drop_trigger('audit ddl');
SELECT login_trigger.drop_trigger('on_login');
SELECT login_trigger.drop_trigger('on_logout');
SELECT login_trigger.drop_trigger('rewrites');
SELECT login_trigger.drop_trigger('drops');
SELECT count(*) AS registered FROM login_trigger.event_trigger;
DROP FUNCTION public.takes_arg(int), public.returns_int(), public.returns_set(), public.alices();
DROP PROCEDURE public.a_procedure();
