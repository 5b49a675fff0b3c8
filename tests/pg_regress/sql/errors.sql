-- Errors pass through the hooks as PostgreSQL raised them: a utility command that fires no
-- trigger (CALL, DO, DDL nobody watches) keeps its SQLSTATE, even one PostgreSQL does not
-- define, and its CONTEXT, so applications can still catch it.
\set SHOW_CONTEXT always
CREATE PROCEDURE public.raise_custom() LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'custom failure' USING ERRCODE = 'LT001'; END $$;
-- Calling one of the extension's functions first changes nothing.
SELECT count(*) >= 0 AS called FROM login_trigger.failed_ddl();
CALL public.raise_custom();
\set VERBOSITY sqlstate
CALL public.raise_custom();
\set VERBOSITY default
DO $$
BEGIN
  CALL public.raise_custom();
EXCEPTION WHEN SQLSTATE 'LT001' THEN
  RAISE NOTICE 'caught % from the procedure', SQLSTATE;
END $$;
-- An error of PostgreSQL's own in DDL without triggers keeps its SQLSTATE.
\set VERBOSITY sqlstate
CREATE TABLE public.errors_dup (id int);
CREATE TABLE public.errors_dup (id int);
\set VERBOSITY default
DROP TABLE public.errors_dup;
DROP PROCEDURE public.raise_custom();
