-- DDL triggers: the firing matrix (native commands and the shared and cluster-level ones native
-- event triggers skip), the context, tag filters, states, error and rollback semantics,
-- recursion, and coexistence with native event triggers.
\set VERBOSITY terse
CREATE TABLE public.ddl_log (id serial, event text, tg_tag text, trigger_name text, command_text text,
                             objects text, dropped text, who text);
CREATE FUNCTION public.log_ddl() RETURNS event_trigger LANGUAGE plpgsql AS $$
DECLARE c jsonb := login_trigger.context();
BEGIN
  INSERT INTO public.ddl_log (event, tg_tag, trigger_name, command_text, objects, dropped, who)
  VALUES (TG_EVENT, TG_TAG, c->>'trigger_name', c->>'command_text',
          -- (PostgreSQL 18 also lists NOT NULL constraints; left out to keep one expected output.)
          (SELECT string_agg(o->>'object_type' || ' ' || (o->>'object_identity'), ', '
                             ORDER BY o->>'object_identity', o->>'object_type')
             FROM jsonb_array_elements(c->'objects') o WHERE o->>'object_identity' NOT LIKE '%\_not\_null on %'),
          (SELECT string_agg(d->>'object_type' || ' '
                             || regexp_replace(d->>'object_identity', 'pg_toast_[0-9]+', 'pg_toast_N', 'g')
                             || CASE WHEN (d->>'original')::bool THEN ' (original)' ELSE '' END, ', '
                             ORDER BY d->>'object_identity', d->>'object_type')
             FROM jsonb_array_elements(c->'dropped') d WHERE d->>'object_identity' NOT LIKE '%\_not\_null on %'
              -- (PostgreSQL 13 also drops row types of TOAST tables and sequences.)
              AND NOT (d->>'object_type' = 'type' AND d->>'object_identity' ~ '^pg_toast\.|_seq$')),
          c->>'current_user_name');
END $$;
SELECT login_trigger.create_trigger('log_start', 'ddl_command_start', 'public.log_ddl()');
SELECT login_trigger.create_trigger('log_end', 'ddl_command_end', 'public.log_ddl()');
SELECT login_trigger.create_trigger('log_drop', 'sql_drop', 'public.log_ddl()');

-- The firing matrix.
CREATE TABLE public.t1 (id serial PRIMARY KEY, note text);
ALTER TABLE public.t1 ADD COLUMN extra int;
CREATE VIEW public.v1 AS SELECT id FROM public.t1;
COMMENT ON TABLE public.t1 IS 'audited';
CREATE INDEX t1_note ON public.t1 (note);
REINDEX INDEX public.t1_note;
ALTER TABLE public.t1 DROP COLUMN extra;
DROP TABLE public.t1 CASCADE;
CREATE ROLE regress_ddl_role;
ALTER ROLE regress_ddl_role CONNECTION LIMIT 5;
GRANT regress_ddl_role TO regress_alice;
REVOKE regress_ddl_role FROM regress_alice;
DROP ROLE regress_ddl_role;
SET allow_in_place_tablespaces = on;
CREATE TABLESPACE regress_ddl_space LOCATION '';
DROP TABLESPACE regress_ddl_space;
CREATE DATABASE regress_ddl_db;
ALTER DATABASE regress_ddl_db CONNECTION LIMIT 3;
DROP DATABASE regress_ddl_db;
ALTER SYSTEM SET login_trigger.login_timeout = '7s';
ALTER SYSTEM RESET login_trigger.login_timeout;
CREATE FUNCTION public.native_evt() RETURNS event_trigger LANGUAGE plpgsql AS $$BEGIN RAISE NOTICE 'native % %', TG_EVENT, TG_TAG; END$$;
CREATE EVENT TRIGGER native_end ON ddl_command_end EXECUTE FUNCTION public.native_evt();
-- Not DDL: nothing fires.
VACUUM public.ddl_log;
SET work_mem = '8MB';
SELECT event, tg_tag, trigger_name, command_text, objects, dropped FROM public.ddl_log ORDER BY id;
TRUNCATE public.ddl_log;

-- Native and login_trigger event triggers fire side by side; ours start first and end last.
CREATE FUNCTION public.say_ddl() RETURNS event_trigger LANGUAGE plpgsql AS $$
BEGIN RAISE NOTICE '% % %', login_trigger.context()->>'trigger_name', TG_EVENT, TG_TAG; END $$;
SELECT login_trigger.create_trigger('say_start', 'ddl_command_start', 'public.say_ddl()');
SELECT login_trigger.create_trigger('say_end', 'ddl_command_end', 'public.say_ddl()');
CREATE TABLE public.t2 ();
DROP EVENT TRIGGER native_end;

-- Multi-statement strings: each command sees only its own text; DDL inside DO fires too.
CREATE TABLE public.t3 ()\; CREATE TABLE public.t4 ();
DO $$BEGIN EXECUTE 'CREATE TABLE public.t5 ()'; END$$;
SELECT event, command_text FROM public.ddl_log WHERE event = 'ddl_command_end' ORDER BY id;
TRUNCATE public.ddl_log;
SELECT login_trigger.drop_trigger(name) FROM unnest(ARRAY['log_start', 'log_end', 'log_drop']) AS name;

-- Semantics: an error at start prevents the command and later triggers; an error at end rolls
-- the command back; end does not fire for a failed command.
CREATE FUNCTION public.deny_ddl() RETURNS event_trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'no DDL: %', TG_TAG USING ERRCODE = 'insufficient_privilege'; END $$;
SELECT login_trigger.create_trigger('say_start2', 'ddl_command_start', 'public.say_ddl()');
SELECT login_trigger.create_trigger('say_start1_deny', 'ddl_command_start', 'public.deny_ddl()', ARRAY['CREATE VIEW']);
CREATE VIEW public.denied AS SELECT 1;
SELECT to_regclass('public.denied') IS NULL AS not_created;
SELECT login_trigger.drop_trigger('say_start1_deny');
SELECT login_trigger.create_trigger('say_end_deny', 'ddl_command_end', 'public.deny_ddl()', ARRAY['CREATE VIEW']);
CREATE VIEW public.rolled_back AS SELECT 1;
SELECT to_regclass('public.rolled_back') IS NULL AS rolled_back;
CREATE TABLE public.t2 ();
SELECT login_trigger.drop_trigger(name) FROM unnest(ARRAY['say_end_deny', 'say_start2']) AS name;

-- Tag filters and states.
SELECT login_trigger.create_trigger('only_views', 'ddl_command_end', 'public.say_ddl()', ARRAY['create view']);
CREATE TABLE public.t6 ();
CREATE VIEW public.v6 AS SELECT 1;
SELECT login_trigger.disable_trigger('only_views');
CREATE VIEW public.v7 AS SELECT 1;
SELECT login_trigger.enable_trigger('only_views', 'replica');
CREATE VIEW public.v8 AS SELECT 1;
SET session_replication_role = replica;
CREATE VIEW public.v9 AS SELECT 1;
RESET session_replication_role;
SELECT login_trigger.drop_trigger('only_views');

-- A non-superuser's DDL runs the (superuser-owned) trigger functions as that user.
GRANT CREATE ON SCHEMA public TO regress_alice;
SET ROLE regress_alice;
CREATE TABLE public.alices ();
RESET ROLE;
DROP TABLE public.alices;

-- DDL run by a trigger function fires triggers again; runaway recursion is stopped.
CREATE FUNCTION public.recurse() RETURNS event_trigger LANGUAGE plpgsql AS $$
BEGIN EXECUTE 'CREATE TABLE IF NOT EXISTS public.loop ()'; END $$;
SELECT login_trigger.create_trigger('recurse', 'ddl_command_start', 'public.recurse()');
CREATE TABLE public.t7 ();
SELECT login_trigger.drop_trigger('recurse');
DROP TABLE public.t2, public.t3, public.t4, public.t5, public.t6;
DROP VIEW public.v6, public.v7, public.v8, public.v9;

-- table_rewrite: fires before the rewrite with the table and the reason; raising prevents it.
CREATE FUNCTION public.say_rewrite() RETURNS event_trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE NOTICE '% % table=% reason=%', TG_EVENT, TG_TAG, login_trigger.table_rewrite_oid()::regclass,
    login_trigger.table_rewrite_reason();
  IF login_trigger.table_rewrite_oid() = to_regclass('public.precious') THEN
    RAISE EXCEPTION 'no rewrites of %', login_trigger.table_rewrite_oid()::regclass;
  END IF;
END $$;
SELECT login_trigger.create_trigger('rewrites', 'table_rewrite', 'public.say_rewrite()');
CREATE TABLE public.rw (a int);
INSERT INTO public.rw VALUES (1);
ALTER TABLE public.rw ALTER COLUMN a TYPE bigint;
ALTER TABLE public.rw SET UNLOGGED;
ALTER TABLE public.rw ADD COLUMN b int;
ALTER TABLE public.rw ADD COLUMN c float8 DEFAULT random();
CREATE TABLE public.precious (a int);
ALTER TABLE public.precious ALTER COLUMN a TYPE text;
SELECT atttypid::regtype FROM pg_attribute WHERE attrelid = 'public.precious'::regclass AND attname = 'a';
VACUUM FULL public.rw;
SELECT try($$SELECT login_trigger.table_rewrite_oid()$$);
SELECT login_trigger.drop_trigger('rewrites');
DROP TABLE public.rw, public.precious;

-- sql_drop through the set-returning function, for multi-object drops and DROP OWNED.
CREATE FUNCTION public.list_dropped() RETURNS event_trigger LANGUAGE plpgsql AS $$
DECLARE d record;
BEGIN
  FOR d IN SELECT * FROM login_trigger.dropped_objects()
           WHERE object_type IN ('table', 'view', 'sequence', 'function') ORDER BY object_identity
  LOOP
    RAISE NOTICE '% %: % % original=% temporary=% names=% args=%', TG_EVENT, TG_TAG, d.object_type,
      d.object_identity, d.original, d.is_temporary, d.address_names, d.address_args;
  END LOOP;
END $$;
SELECT login_trigger.create_trigger('list_dropped', 'sql_drop', 'public.list_dropped()');
CREATE TABLE public.d1 (); CREATE TABLE public.d2 (); CREATE VIEW public.d2v AS SELECT FROM public.d2;
DROP TABLE public.d1, public.d2 CASCADE;
CREATE ROLE regress_owner;
CREATE TABLE public.owned_t (); ALTER TABLE public.owned_t OWNER TO regress_owner;
CREATE FUNCTION public.owned_f(int) RETURNS int LANGUAGE sql AS 'SELECT 1'; ALTER FUNCTION public.owned_f(int) OWNER TO regress_owner;
DROP OWNED BY regress_owner;
DROP ROLE regress_owner;
SELECT try($$SELECT * FROM login_trigger.dropped_objects()$$);
SELECT login_trigger.drop_trigger('list_dropped');

-- A trigger function whose owner is later made a non-superuser is skipped, with a warning, so
-- that a superuser's DDL never runs code a non-superuser could change.
CREATE FUNCTION public.later_alices() RETURNS event_trigger LANGUAGE plpgsql AS $$BEGIN RAISE NOTICE 'ran'; END$$;
SELECT login_trigger.create_trigger('later_alices', 'ddl_command_start', 'public.later_alices()');
CREATE TABLE public.o1 ();
ALTER FUNCTION public.later_alices() OWNER TO regress_alice;
CREATE TABLE public.o2 ();
SELECT login_trigger.drop_trigger('later_alices');
DROP TABLE public.o1, public.o2;

-- The noddl policy from PostgreSQL's documentation, and a superuser's migration around it.
CREATE FUNCTION public.abort_any_command() RETURNS event_trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'command % is disabled', tg_tag; END $$;
SELECT login_trigger.create_trigger('noddl', 'ddl_command_start', 'public.abort_any_command()');
CREATE TABLE public.blocked ();
BEGIN;
SELECT login_trigger.disable_trigger('noddl');
CREATE TABLE public.migrated ();
SELECT login_trigger.enable_trigger('noddl');
COMMIT;
CREATE TABLE public.blocked_again ();
BEGIN;
SET LOCAL login_trigger.enabled = off;
DROP TABLE public.migrated;
COMMIT;
SELECT login_trigger.drop_trigger('noddl');
SELECT login_trigger.drop_trigger(name) FROM unnest(ARRAY['say_start', 'say_end']) AS name;
DROP TABLE public.ddl_log;
DROP FUNCTION public.log_ddl(), public.say_ddl(), public.say_rewrite(), public.list_dropped(), public.later_alices(), public.deny_ddl(), public.recurse(), public.native_evt(),
              public.abort_any_command();
