-- Only superusers change the registry; everyone else is refused and told why.
\set VERBOSITY terse
SELECT login_trigger.create_trigger('guarded', 'login', 'public.noop_event()');
SET ROLE regress_alice;
SELECT try($$SELECT login_trigger.create_trigger('mine', 'login', 'public.noop_event()')$$);
SELECT try($$SELECT login_trigger.drop_trigger('guarded')$$);
SELECT try($$SELECT login_trigger.disable_trigger('guarded')$$);
SELECT try($$SELECT login_trigger.enable_trigger('guarded', 'replica')$$);
SELECT try($$SELECT login_trigger.rename_trigger('guarded', 'zzz')$$);
SELECT try($$INSERT INTO login_trigger.event_trigger (name, event, function, owner)
             VALUES ('mine', 'login', 'public.noop_event()', 'regress_alice')$$);
SELECT try($$UPDATE login_trigger.event_trigger SET enabled = 'D'$$);
SELECT try($$DELETE FROM login_trigger.event_trigger$$);
SELECT try($$TRUNCATE login_trigger.event_trigger$$);
SELECT try($$SET login_trigger.enabled = off$$);
SELECT try($$SET login_trigger.login_function = 'public.noop_void'$$);
SELECT try($$DROP TRIGGER guarded ON login_trigger.registered_login_function$$);
-- Reading is allowed.
SELECT name, event, enabled FROM login_trigger.triggers;
RESET ROLE;
-- Even a table privilege granted by mistake does not let a non-superuser write.
GRANT INSERT, UPDATE ON login_trigger.event_trigger TO regress_alice;
SET ROLE regress_alice;
SELECT try($$UPDATE login_trigger.event_trigger SET enabled = 'D'$$);
RESET ROLE;
REVOKE INSERT, UPDATE ON login_trigger.event_trigger FROM regress_alice;
SELECT name, enabled FROM login_trigger.triggers;
SELECT login_trigger.drop_trigger('guarded');
