-- Registrations depend on their functions through pg_depend: DROP FUNCTION needs CASCADE, and
-- CASCADE removes the registration.
\set VERBOSITY terse
CREATE FUNCTION public.audited() RETURNS event_trigger LANGUAGE plpgsql AS $$BEGIN END$$;
SELECT login_trigger.create_trigger('one', 'login', 'public.audited()');
SELECT login_trigger.create_trigger('two', 'logout', 'public.audited()');
SELECT login_trigger.create_trigger('other', 'logout', 'public.noop_event()');
\set VERBOSITY default
DROP FUNCTION public.audited();
\set VERBOSITY terse
SELECT name FROM login_trigger.triggers;
DROP FUNCTION public.audited() CASCADE;
SELECT name FROM login_trigger.triggers;
CREATE VIEW carriers AS
  SELECT tgrelid::regclass AS carrier_table, tgname FROM pg_trigger
   WHERE tgrelid IN ('login_trigger.registered_function'::regclass, 'login_trigger.registered_login_function'::regclass,
                     'login_trigger.registered_logout_function'::regclass);
SELECT * FROM carriers ORDER BY 2;

-- A dropped schema takes its functions' registrations with it.
CREATE SCHEMA doomed;
CREATE FUNCTION doomed.f() RETURNS void LANGUAGE sql AS $$SELECT$$;
SELECT login_trigger.create_trigger('in_doomed', 'login', 'doomed.f()');
DROP SCHEMA doomed;
DROP SCHEMA doomed CASCADE;
SELECT name FROM login_trigger.triggers;

-- Renaming keeps the dependency under the new name.
SELECT login_trigger.rename_trigger('other', 'renamed');
DROP FUNCTION public.noop_event();
SELECT login_trigger.drop_trigger('renamed');
SELECT * FROM carriers;

-- The registry names a function by schema and name, and follows it through RENAME, SET SCHEMA
-- and a renamed schema; the guard follows it too, and the name written by hand is normalised.
CREATE SCHEMA moving;
CREATE FUNCTION moving."Mixed Case"() RETURNS void LANGUAGE sql AS $$SELECT$$;
SELECT login_trigger.create_trigger('follows', 'ddl_command_end', 'moving."Mixed Case"()');
SELECT function FROM login_trigger.event_trigger WHERE name = 'follows';
ALTER FUNCTION moving."Mixed Case"() RENAME TO plain;
SELECT function FROM login_trigger.event_trigger WHERE name = 'follows';
ALTER SCHEMA moving RENAME TO moved;
SELECT function FROM login_trigger.event_trigger WHERE name = 'follows';
ALTER FUNCTION moved.plain() SET SCHEMA public;
SELECT function FROM login_trigger.event_trigger WHERE name = 'follows';
DROP FUNCTION public.plain();
UPDATE login_trigger.event_trigger SET function = ' PUBLIC.Plain() ' WHERE name = 'follows';
SELECT function FROM login_trigger.event_trigger WHERE name = 'follows';
SELECT try($$UPDATE login_trigger.event_trigger SET function = 'plain' WHERE name = 'follows'$$);
SELECT try($$UPDATE login_trigger.event_trigger SET function = 'moved.plain' WHERE name = 'follows'$$);
DROP FUNCTION public.plain() CASCADE;
SELECT count(*) FROM login_trigger.event_trigger WHERE name = 'follows';
DROP SCHEMA moved;

-- A superuser writing the catalog directly goes through the same checks.
SELECT try($$INSERT INTO login_trigger.event_trigger (name, event, function, owner)
             VALUES ('direct', 'logon', 'public.noop_void()', current_user::regrole)$$);
SELECT try($$INSERT INTO login_trigger.event_trigger (name, event, function, tags, owner)
             VALUES ('direct', 'ddl_command_end', 'public.noop_void()', '{vacuum}', current_user::regrole)$$);
INSERT INTO login_trigger.event_trigger (name, event, function, tags, owner)
VALUES ('direct', 'ddl_command_end', 'public.noop_void()', '{create view}', current_user::regrole);
SELECT name, tags FROM login_trigger.event_trigger;
-- A row written by hand (or restored) is active, and guarded, once its event's event trigger
-- exists: enable_trigger() creates it, as pg_restore does at the end of a restore.
SELECT count(*) AS guards FROM carriers;
SELECT login_trigger.enable_trigger('direct');
SELECT count(*) AS guards FROM carriers;
DROP FUNCTION public.noop_void();
UPDATE login_trigger.event_trigger SET name = 'direct2';
SELECT try($$UPDATE login_trigger.event_trigger SET event = 'bogus'$$);
TRUNCATE login_trigger.event_trigger;
-- Replica mode skips ordinary table triggers, but not the registry's.
SET session_replication_role = replica;
SELECT try($$INSERT INTO login_trigger.event_trigger (name, event, function, owner)
             VALUES ('direct', 'logon', 'public.noop_void()', current_user::regrole)$$);
RESET session_replication_role;
SELECT count(*) AS carriers FROM carriers;
-- With no login or logout registration left, their carrier tables say so in one syscache lookup.
SELECT relname, relhastriggers FROM pg_class
 WHERE relname IN ('registered_login_function', 'registered_logout_function') ORDER BY 1;
DROP VIEW carriers;
DROP FUNCTION public.noop_void();
CREATE FUNCTION public.noop_void() RETURNS void LANGUAGE sql AS $$SELECT$$;

-- Dropping the event trigger that stands for an event's registrations deactivates them and
-- releases their functions, however it is dropped (here in a list with a user's event trigger);
-- enable_trigger() activates them again.
SELECT login_trigger.create_trigger('standing', 'login', 'public.noop_void()');
CREATE FUNCTION public.other_noop() RETURNS event_trigger LANGUAGE plpgsql AS $$BEGIN END$$;
CREATE EVENT TRIGGER other_one ON ddl_command_start EXECUTE FUNCTION public.other_noop();
SELECT count(*) AS guards FROM pg_trigger WHERE tgname = 'standing';
DROP EVENT TRIGGER login_trigger_login, other_one;
SELECT count(*) AS guards FROM pg_trigger WHERE tgname = 'standing';
SELECT login_trigger.enable_trigger('standing');
SELECT count(*) AS guards FROM pg_trigger WHERE tgname = 'standing';
SELECT evtname, evtenabled FROM pg_event_trigger WHERE evtname = 'login_trigger_login';
SELECT login_trigger.drop_trigger('standing');
SELECT count(*) AS event_triggers FROM pg_event_trigger WHERE evtname = 'login_trigger_login';
DROP FUNCTION public.other_noop();
