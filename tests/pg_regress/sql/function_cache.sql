-- Trigger functions' call information is kept across firings (src/function_cache.rs). Whatever
-- changes a function must show at its next firing, exactly as with a native event trigger, which
-- looks the function up every time: the same function is registered with login_trigger and with
-- a native event trigger side by side, and every firing must log the same row twice.
\set VERBOSITY terse
CREATE TABLE public.cache_log (version int, who name, work_mem text);
-- replace_probe(v, then_v): (re)defines cache_probe() to log version v and, given then_v, to
-- replace itself next with the version that logs then_v.
CREATE FUNCTION public.replace_probe(version int, then_version int DEFAULT NULL) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE format($replace$
    CREATE OR REPLACE FUNCTION public.cache_probe() RETURNS event_trigger LANGUAGE plpgsql AS $body$
    BEGIN
      INSERT INTO public.cache_log VALUES (%s, current_user, current_setting('work_mem'));
      %s
    END $body$ $replace$, version,
    CASE WHEN then_version IS NOT NULL THEN format('PERFORM public.replace_probe(%s);', then_version) END);
END $$;
SELECT public.replace_probe(1);
CREATE EVENT TRIGGER cache_native ON ddl_command_end WHEN TAG IN ('CREATE TABLE')
  EXECUTE FUNCTION public.cache_probe();
SELECT login_trigger.create_trigger('cache_ours', 'ddl_command_end', 'public.cache_probe()', tags => '{CREATE TABLE}');
-- compare(): what the firings saw, and how many saw it; native and ours fire once each per
-- statement, so a count of 1 is a difference between them.
CREATE FUNCTION public.compare() RETURNS TABLE (version int, who name, work_mem text, firings bigint)
LANGUAGE sql AS $$
  SELECT version, who, work_mem, count(*) FROM public.cache_log
   GROUP BY version, who, work_mem ORDER BY version, who, work_mem $$;

CREATE TABLE public.c1 ();
-- A new body.
SELECT public.replace_probe(2);
CREATE TABLE public.c2 ();
-- A setting of the function's own, then SECURITY DEFINER with another (superuser) owner.
ALTER FUNCTION public.cache_probe() SET work_mem = '77kB';
CREATE TABLE public.c3 ();
CREATE ROLE regress_cache_owner SUPERUSER;
ALTER FUNCTION public.cache_probe() OWNER TO regress_cache_owner;
ALTER FUNCTION public.cache_probe() SECURITY DEFINER;
CREATE TABLE public.c4 ();
ALTER FUNCTION public.cache_probe() RESET work_mem;
ALTER FUNCTION public.cache_probe() SECURITY INVOKER;
-- Within one transaction, after the function has fired in it.
BEGIN;
CREATE TABLE public.c5 ();
SELECT public.replace_probe(3);
CREATE TABLE public.c6 ();
COMMIT;
-- A function that replaces itself while it runs: the running version finishes, the next firing
-- runs the new one. (Ours alone: beside native, the second of the two would already run the new
-- version, as a second native trigger would.)
ALTER EVENT TRIGGER cache_native DISABLE;
SELECT public.replace_probe(4, 5);
CREATE TABLE public.c7 ();
CREATE TABLE public.c8 ();
ALTER EVENT TRIGGER cache_native ENABLE;
-- A rolled-back replacement leaves the old body in force.
BEGIN;
CREATE OR REPLACE FUNCTION public.cache_probe() RETURNS event_trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'never committed'; END $$;
ROLLBACK;
CREATE TABLE public.c9 ();
SELECT * FROM public.compare();

-- A void function registered with login_trigger (native cannot call one): SQL functions keep
-- their own cache in the call information too.
CREATE FUNCTION public.cache_sql() RETURNS void LANGUAGE sql AS $$
  INSERT INTO public.cache_log VALUES (101, current_user, current_setting('work_mem')) $$;
SELECT login_trigger.create_trigger('cache_sql', 'ddl_command_end', 'public.cache_sql()', tags => '{CREATE VIEW}');
BEGIN;
CREATE VIEW public.cv1 AS SELECT 1 AS one;
CREATE OR REPLACE FUNCTION public.cache_sql() RETURNS void LANGUAGE sql AS $$
  INSERT INTO public.cache_log VALUES (102, current_user, current_setting('work_mem')) $$;
CREATE VIEW public.cv2 AS SELECT 1 AS one;
COMMIT;
CREATE VIEW public.cv3 AS SELECT 1 AS one;
SELECT version, count(*) FROM public.cache_log WHERE version > 100 GROUP BY version ORDER BY version;

DROP EVENT TRIGGER cache_native;
SELECT login_trigger.drop_trigger('cache_ours');
SELECT login_trigger.drop_trigger('cache_sql');
DROP VIEW public.cv1, public.cv2, public.cv3;
DROP TABLE public.c1, public.c2, public.c3, public.c4, public.c5, public.c6, public.c7, public.c8, public.c9,
           public.cache_log;
DROP FUNCTION public.cache_probe(), public.replace_probe(int, int), public.cache_sql(), public.compare();
DROP ROLE regress_cache_owner;

-- A firing of a function that is already running (its own DDL fires it again) gets call
-- information of its own, as native gives every firing: an SQL function keeps its running state
-- there, and sharing it would resume the outer call's unfinished query.
CREATE TABLE public.nest_log (depth int, step text);
CREATE FUNCTION public.nest_more(depth int) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  IF depth < 3 THEN EXECUTE format('CREATE TABLE public.nested_%s ()', depth); END IF;
END $$;
CREATE FUNCTION public.nest_sql() RETURNS void LANGUAGE sql AS $$
  INSERT INTO public.nest_log SELECT count(*), 'before' FROM public.nest_log WHERE step = 'before';
  SELECT public.nest_more((SELECT count(*)::int FROM public.nest_log WHERE step = 'before'));
  INSERT INTO public.nest_log SELECT count(*), 'after' FROM public.nest_log WHERE step = 'after';
$$;
SELECT login_trigger.create_trigger('nest', 'ddl_command_end', 'public.nest_sql()', tags => '{CREATE TABLE}');
CREATE TABLE public.nested_0 ();
SELECT login_trigger.drop_trigger('nest');
SELECT step, depth FROM public.nest_log ORDER BY step DESC, depth;

-- After a firing fails, the next one looks the function up afresh, as native does: an SQL
-- function's failed query, whose resources the error released, is not resumed.
CREATE TABLE public.fail_switch (fail bool);
INSERT INTO public.fail_switch VALUES (false);
CREATE FUNCTION public.fail_sql() RETURNS void LANGUAGE sql AS $$
  INSERT INTO public.nest_log VALUES (100, 'fail_sql');
  SELECT 1 / CASE WHEN fail THEN 0 ELSE 1 END FROM public.fail_switch;
  INSERT INTO public.nest_log VALUES (101, 'fail_sql');
$$;
SELECT login_trigger.create_trigger('fail', 'ddl_command_end', 'public.fail_sql()', tags => '{CREATE VIEW}');
BEGIN;
CREATE VIEW public.fv1 AS SELECT 1 AS one;
SAVEPOINT before_failure;
UPDATE public.fail_switch SET fail = true;
CREATE VIEW public.fv2 AS SELECT 1 AS one;
ROLLBACK TO before_failure;
CREATE VIEW public.fv3 AS SELECT 1 AS one;
COMMIT;
SELECT depth, count(*) FROM public.nest_log WHERE step = 'fail_sql' GROUP BY depth ORDER BY depth;
SELECT login_trigger.drop_trigger('fail');
DROP VIEW public.fv1, public.fv3;
DROP TABLE public.nested_0, public.nested_1, public.nested_2, public.nest_log, public.fail_switch;
DROP FUNCTION public.nest_sql(), public.nest_more(int), public.fail_sql();
