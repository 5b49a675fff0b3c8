-- Shared set-up for the pg_regress suite: the extension, test roles, and try(), which runs a
-- statement and returns 'ok' or its SQLSTATE and message, so expected output pins error codes.
CREATE EXTENSION login_trigger;
DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'regress_alice') THEN
    CREATE ROLE regress_alice LOGIN;
  END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'regress_replica') THEN
    CREATE ROLE regress_replica LOGIN SUPERUSER;
  END IF;
END $$;
CREATE FUNCTION public.try(statement text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE statement;
  RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
  RETURN SQLSTATE || ': ' || SQLERRM;
END $$;
GRANT EXECUTE ON FUNCTION public.try(text) TO PUBLIC;
CREATE FUNCTION public.noop_event() RETURNS event_trigger LANGUAGE plpgsql AS $$BEGIN END$$;
CREATE FUNCTION public.noop_void() RETURNS void LANGUAGE sql AS $$SELECT$$;
