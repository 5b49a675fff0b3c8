-- Login triggers fire at every connection, in byte order of their names, with TG_EVENT/TG_TAG
-- for event_trigger functions and the context for functions in any language.
\set VERBOSITY terse
CREATE FUNCTION public.say() RETURNS event_trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE NOTICE '% fired: TG_EVENT=% TG_TAG=%', login_trigger.context()->>'trigger_name', TG_EVENT,
    CASE WHEN TG_TAG = CASE WHEN current_setting('server_version_num')::int >= 170000 THEN 'LOGIN' ELSE '???' END
         THEN 'as documented' ELSE TG_TAG END;
END $$;
SELECT login_trigger.create_trigger(name, 'login', 'public.say()')
  FROM unnest(ARRAY['a_lower', 'Zed', '_under', 'B_upper', '1num']) AS name;
\c
-- A plain SQL function reads the whole context as jsonb; settings it makes last the session.
CREATE FUNCTION public.remember() RETURNS void LANGUAGE sql AS $$
  SELECT set_config('app.login', concat_ws(' ', login_trigger.context()->>'event',
                    login_trigger.context()->>'trigger_name', login_trigger.context()->>'current_user_name',
                    login_trigger.context()->>'database'), false)
$$;
SELECT login_trigger.create_trigger('remember', 'login', 'public.remember()');
SELECT login_trigger.disable_trigger(name) FROM unnest(ARRAY['a_lower', 'Zed', '_under', 'B_upper']) AS name;
\c
SHOW app.login;
SHOW login_trigger.login_status;
-- Outside a trigger there is no context.
SELECT try($$SELECT login_trigger.context()$$);
SELECT try($$SELECT * FROM login_trigger.session()$$);

-- session_replication_role decides which states fire, as for native event triggers.
SELECT login_trigger.enable_trigger('a_lower', 'replica');
SELECT login_trigger.enable_trigger('Zed', 'always');
ALTER ROLE regress_replica SET session_replication_role = replica;
\c - regress_replica
\c - postgres
-- The context as a typed row, from a login trigger that writes it down.
CREATE TABLE public.seen AS SELECT * FROM login_trigger.session() WITH NO DATA;
CREATE FUNCTION public.record_session() RETURNS void LANGUAGE sql AS $$
  INSERT INTO public.seen SELECT * FROM login_trigger.session()
$$;
GRANT INSERT ON public.seen TO PUBLIC;
SELECT login_trigger.create_trigger('record', 'login', 'public.record_session()');
\c - regress_alice
\c - regress_replica
SELECT event, trigger_name, session_user_name, current_user_name, database, client_addr IS NULL AS over_socket,
       backend_pid <> pg_backend_pid() AS other_backend, in_recovery, reason, session_duration
  FROM public.seen WHERE session_user_name = 'regress_alice';
SELECT login_trigger.drop_trigger(name)
  FROM unnest(ARRAY['a_lower', 'Zed', '_under', 'B_upper', '1num', 'remember', 'record']) AS name;
ALTER ROLE regress_replica RESET session_replication_role;
DROP TABLE public.seen;
\set VERBOSITY default
DROP FUNCTION public.say(), public.remember(), public.record_session();
