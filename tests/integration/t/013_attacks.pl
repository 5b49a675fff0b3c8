# Attacks by a non-superuser (mallory: LOGIN, CREATEDB, owner of schema mal and of her own
# databases). Every test here FAILS IF THE ATTACK SUCCEEDS: changing the registry through the API
# or directly, switching the triggers off through any way of setting a parameter, redirecting the
# registered or the login_function/logout_function functions through search_path, getting her own
# code run by someone else's login or a superuser's DDL, and reading another session's context or
# the authentication failures. Each refusal is checked with its SQLSTATE and message, and the
# triggers are checked to still fire (an audit row) for the session that tried.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin . '/..';
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use LoginTriggerTest;

my $node = LoginTriggerTest::node('attacks');
my $major = int($node->safe_psql('postgres', 'SHOW server_version_num') / 10000);

# A wrong password for alice over the Unix socket, so that there is an authentication failure to
# protect.
LoginTriggerTest::prepend_hba($node, 'local all alice scram-sha-256');

$node->safe_psql('postgres', q{
	CREATE ROLE mallory LOGIN CREATEDB;
	CREATE ROLE watcher LOGIN IN ROLE pg_read_all_stats;
	CREATE SCHEMA mal AUTHORIZATION mallory;
	-- Where the attacker's functions leave their mark if they ever run.
	CREATE TABLE public.marks (what text, by_user text, session_user_name text);
	GRANT INSERT, SELECT ON public.marks TO PUBLIC;
	-- The registered functions pin their search_path, as the README advises.
	CREATE FUNCTION public.guard() RETURNS event_trigger LANGUAGE plpgsql SET search_path = pg_catalog AS $$
	BEGIN
	  INSERT INTO public.audit (event, trigger_name, role, app, pid)
	  VALUES (TG_EVENT, login_trigger.context()->>'trigger_name', session_user,
	          current_setting('application_name'), pg_backend_pid());
	END $$;
	SELECT login_trigger.create_trigger('guard_login', 'login', 'public.guard()');
	SELECT login_trigger.create_trigger('guard_ddl', 'ddl_command_end', 'public.guard()');
	-- Runs a statement and says how it failed: SQLSTATE, message and hint.
	CREATE FUNCTION public.try(statement text) RETURNS text LANGUAGE plpgsql AS $$
	DECLARE hint text;
	BEGIN
	  EXECUTE statement;
	  RETURN 'ok';
	EXCEPTION WHEN OTHERS THEN
	  GET STACKED DIAGNOSTICS hint = PG_EXCEPTION_HINT;
	  RETURN SQLSTATE || ': ' || SQLERRM || CASE WHEN hint <> '' THEN ' HINT: ' || hint ELSE '' END;
	END $$;
	-- In template1, so that every database mallory creates has it: an administrator's function
	-- nobody else may execute.
	\c template1
	CREATE TABLE public.admin_log (by_user text);
	CREATE FUNCTION public.admin_only() RETURNS void LANGUAGE sql SECURITY DEFINER
	  AS $$INSERT INTO public.admin_log VALUES (session_user)$$;
	REVOKE ALL ON FUNCTION public.admin_only() FROM PUBLIC;
});

# Waits until a reloaded setting has $value in new sessions (their warnings are expected, so
# poll_query_until, which wants an empty stderr, cannot be used).
sub wait_setting
{
	my ($cluster, $name, $value) = @_;
	for (1 .. 300)
	{
		my ($ret, $out) = LoginTriggerTest::psql_at($cluster, $cluster->connstr('postgres'),
			"SELECT current_setting('$name')");
		return 1 if $ret == 0 && $out eq $value;
		select(undef, undef, undef, 0.1);
	}
	die "$name did not become '$value'";
}

my ($attempted, $refused) = (0, 0);

# Counts one attack as refused when every check made for it passed.
sub attack
{
	my ($name, @checks) = @_;
	$attempted++;
	my $held = !grep { !$_ } @checks;
	$refused++ if $held;
	note(($held ? 'refused' : 'NOT REFUSED') . ": $name");
	return $held;
}

sub connstr
{
	my ($user, $app, $db, $extra) = @_;
	return $node->connstr($db // 'postgres') . " user=$user application_name=$app" . ($extra // '');
}

# Runs each statement through public.try() in one session of $user; one outcome per statement.
sub tries
{
	my ($user, $app, @statements) = @_;
	my $sql = join('', map { "SELECT public.try(\$attack\$$_\$attack\$);\n" } @statements);
	my ($ret, $out, $err) = LoginTriggerTest::psql_at($node, connstr($user, $app), $sql);
	my @outcomes = split /\n/, $out;
	is(scalar(@outcomes), scalar(@statements), "$app: one outcome per statement") or diag($err);
	return @outcomes;
}

# Runs a script as $user with verbose errors ("ERROR:  SQLSTATE: message"); returns stderr.
sub verbose_errors
{
	my ($user, $app, $sql, $db) = @_;
	my ($ret, $out, $err) = LoginTriggerTest::psql_at($node, connstr($user, $app, $db), "\\set VERBOSITY verbose\n$sql");
	return $err;
}

sub logins
{
	my ($app) = @_;
	return $node->safe_psql('postgres', "SELECT count(*) FROM public.audit WHERE event = 'login' AND app = '$app'");
}

sub ddl_rows
{
	my ($app) = @_;
	return $node->safe_psql('postgres', "SELECT count(*) FROM public.audit WHERE event = 'ddl_command_end' AND app = '$app'");
}

sub marks
{
	my ($what) = @_;
	return $node->safe_psql('postgres', "SELECT count(*) FROM public.marks WHERE what LIKE '$what'");
}

sub registry
{
	return $node->safe_psql('postgres', q{
		SELECT string_agg(name || ':' || enabled, ',' ORDER BY name) FROM login_trigger.triggers});
}

sub carriers
{
	return $node->safe_psql('postgres', q{
		SELECT string_agg(tgname, ',' ORDER BY tgname) FROM pg_trigger
		 WHERE tgrelid::regclass::text LIKE 'login_trigger.registered%function'});
}

# Puts the two standard registrations back after an attack that broke them.
sub restore_registry
{
	$node->safe_psql('postgres', q{
		SELECT login_trigger.drop_trigger(name) FROM login_trigger.event_trigger;
		SELECT login_trigger.create_trigger('guard_login', 'login', 'public.guard()');
		SELECT login_trigger.create_trigger('guard_ddl', 'ddl_command_end', 'public.guard()');
	});
}

my $registry = registry();
is($registry, 'guard_ddl:enabled,guard_login:enabled', 'the registry to attack');
my $carriers = carriers();

###########################################################################################
# 1. The API.
my @outcomes = tries('mallory', 'api',
	q{SELECT login_trigger.create_trigger('mine', 'login', 'public.guard()')},
	q{SELECT login_trigger.drop_trigger('guard_login')},
	q{SELECT login_trigger.drop_trigger('guard_login', if_exists => true)},
	q{SELECT login_trigger.disable_trigger('guard_login')},
	q{SELECT login_trigger.enable_trigger('guard_login', 'replica')},
	q{SELECT login_trigger.rename_trigger('guard_login', 'zzz')},
	q{SELECT login_trigger.reset_auth_failures()});
my $hint = qr/ HINT: Only superusers can register, change or drop login_trigger triggers\.$/;
attack('create_trigger', like($outcomes[0], qr/^42501: permission denied to create login_trigger triggers$hint/,
		'API: create_trigger is refused (42501, with the hint)'));
attack('drop_trigger', like($outcomes[1], qr/^42501: permission denied to drop login_trigger triggers$hint/,
		'API: drop_trigger is refused'));
attack('drop_trigger if_exists', like($outcomes[2], qr/^42501: permission denied to drop login_trigger triggers/,
		'API: drop_trigger(if_exists) is refused, not a notice'));
attack('disable_trigger', like($outcomes[3], qr/^42501: permission denied to disable login_trigger triggers$hint/,
		'API: disable_trigger is refused'));
attack('enable_trigger replica', like($outcomes[4], qr/^42501: permission denied to enable login_trigger triggers$hint/,
		'API: enable_trigger is refused'));
attack('rename_trigger', like($outcomes[5], qr/^42501: permission denied to rename login_trigger triggers$hint/,
		'API: rename_trigger is refused'));
attack('reset_auth_failures', like($outcomes[6], qr/^42501: permission denied for function reset_auth_failures$/,
		'API: reset_auth_failures is refused'));
is(logins('api'), '1', 'API: the login trigger fired for the session that tried');

# Registering her own function as mallory, and a superuser registering it by mistake.
$node->safe_psql('postgres', q{
	SET ROLE mallory;
	CREATE FUNCTION mal.evil() RETURNS event_trigger LANGUAGE plpgsql AS $$
	BEGIN INSERT INTO public.marks VALUES ('mal.evil', current_user, session_user); END $$;
	GRANT USAGE ON SCHEMA mal TO PUBLIC;
	RESET ROLE;
});
@outcomes = tries('mallory', 'api_own', q{SELECT login_trigger.create_trigger('mine', 'login', 'mal.evil()')});
attack('register own function', like($outcomes[0], qr/^42501: permission denied to create login_trigger triggers/,
		'API: mallory cannot register her own function'));
is($node->safe_psql('postgres', q{SELECT public.try($$SELECT login_trigger.create_trigger('mine', 'login', 'mal.evil()')$$)}),
	'42501: function mal.evil() is not owned by a superuser HINT: ALTER FUNCTION mal.evil() OWNER TO a superuser, then register it.',
	'API: not even a superuser can register a function a non-superuser owns');
is(registry(), $registry, 'API: the registry is unchanged');

###########################################################################################
# 2. Direct writes to the registry and its bookkeeping.
@outcomes = tries('mallory', 'dml',
	q{INSERT INTO login_trigger.event_trigger (name, event, function, owner) VALUES ('mine', 'login', 'mal.evil()', 'mallory')},
	q{UPDATE login_trigger.event_trigger SET enabled = 'D'},
	q{DELETE FROM login_trigger.event_trigger},
	q{TRUNCATE login_trigger.event_trigger},
	q{ALTER TABLE login_trigger.event_trigger DISABLE TRIGGER event_trigger_check},
	q{DROP TRIGGER guard_login ON login_trigger.registered_login_function},
	q{CREATE TABLE login_trigger.mine ()},
	q{CREATE FUNCTION login_trigger.context() RETURNS jsonb LANGUAGE sql AS 'SELECT NULL::jsonb'},
	q{DROP EXTENSION login_trigger},
	q{ALTER EXTENSION login_trigger UPDATE},
	q{DROP SCHEMA login_trigger CASCADE},
	q{LOAD 'login_trigger'});
my $denied_table = qr/^42501: permission denied for table event_trigger$/;
attack('INSERT', like($outcomes[0], $denied_table, 'DML: INSERT into the registry is refused'));
attack('UPDATE', like($outcomes[1], $denied_table, 'DML: UPDATE of the registry is refused'));
attack('DELETE', like($outcomes[2], $denied_table, 'DML: DELETE from the registry is refused'));
attack('TRUNCATE', like($outcomes[3], $denied_table, 'DML: TRUNCATE of the registry is refused'));
attack('ALTER TABLE DISABLE TRIGGER', like($outcomes[4], qr/^42501: must be owner of (table|relation) event_trigger$/,
		'DDL: disabling the registry\'s check is refused'));
attack('DROP TRIGGER carrier', like($outcomes[5], qr/^42501: must be owner of (table|relation) registered_login_function$/,
		'DDL: dropping a dependency carrier is refused'));
attack('CREATE TABLE in schema', like($outcomes[6], qr/^42501: permission denied for schema login_trigger$/,
		'DDL: creating objects in the extension\'s schema is refused'));
attack('CREATE FUNCTION in schema', like($outcomes[7], qr/^42501: permission denied for schema login_trigger$/,
		'DDL: planting a function in the extension\'s schema is refused'));
attack('DROP EXTENSION', like($outcomes[8], qr/^42501: must be owner of extension login_trigger$/,
		'DDL: DROP EXTENSION is refused'));
attack('ALTER EXTENSION', like($outcomes[9], qr/^42501: must be owner of extension login_trigger$/,
		'DDL: ALTER EXTENSION is refused'));
attack('DROP SCHEMA', like($outcomes[10], qr/^42501: must be owner of schema login_trigger$/,
		'DDL: DROP SCHEMA login_trigger is refused'));
attack('LOAD', like($outcomes[11], qr/^42501: access to library "login_trigger" is not allowed$/,
		'LOAD of the library is refused'));
is(registry(), $registry, 'DML: the registry is unchanged');
is(logins('dml'), '1', 'DML: the login trigger fired for the session that tried');
is(carriers(), $carriers, 'DML: the dependency carriers are unchanged');

# Table privileges granted by mistake must not help either (README: "Direct writes to the
# registry by anyone else are refused, even with a table privilege granted by mistake").
$node->safe_psql('postgres', 'GRANT ALL ON login_trigger.event_trigger TO mallory');
@outcomes = tries('mallory', 'dml_granted',
	q{INSERT INTO login_trigger.event_trigger (name, event, function, owner) VALUES ('mine', 'login', 'public.guard()', 'mallory')},
	q{UPDATE login_trigger.event_trigger SET enabled = 'D'},
	q{DELETE FROM login_trigger.event_trigger WHERE name = 'guard_login'});
my $denied_registry = qr/^42501: permission denied to change the login_trigger registry/;
attack('INSERT with a granted privilege', like($outcomes[0], $denied_registry, 'granted DML: INSERT is refused by the registry\'s check'));
attack('UPDATE with a granted privilege', like($outcomes[1], $denied_registry, 'granted DML: UPDATE is refused by the registry\'s check'));
attack('DELETE with a granted privilege',
	like($outcomes[2], $denied_registry, 'granted DML: DELETE is refused by the registry\'s check'),
	is(registry(), $registry, 'granted DML: guard_login is still registered after the DELETE'));
restore_registry() if registry() ne $registry;
@outcomes = tries('mallory', 'dml_granted_truncate', q{TRUNCATE login_trigger.event_trigger});
attack('TRUNCATE with a granted privilege',
	like($outcomes[0], $denied_registry, 'granted DML: TRUNCATE is refused by the registry\'s check'),
	is(registry(), $registry, 'granted DML: the registry is intact after the TRUNCATE'));
restore_registry() if registry() ne $registry;
$node->safe_psql('postgres', 'REVOKE ALL ON login_trigger.event_trigger FROM mallory');
LoginTriggerTest::safe_psql_at($node, connstr('mallory', 'after_granted'), 'SELECT 1');
is(logins('after_granted'), '1', 'granted DML: login triggers still fire afterwards');

# The registry's own trigger functions, attached by mallory to a table of her own: deleting or
# truncating her rows must not drop the dependency carriers of the real registrations (which
# would make starting sessions believe there are no login triggers).
@outcomes = tries('mallory', 'hijack_sync',
	q{CREATE TABLE mal.fake (name text, function regprocedure, event text)},
	q{INSERT INTO mal.fake VALUES ('guard_login', 'public.guard()', 'login')},
	q{CREATE TRIGGER fake_sync AFTER INSERT OR UPDATE OR DELETE ON mal.fake FOR EACH ROW EXECUTE FUNCTION login_trigger.event_trigger_sync()},
	q{CREATE TRIGGER fake_truncate AFTER TRUNCATE ON mal.fake FOR EACH STATEMENT EXECUTE FUNCTION login_trigger.event_trigger_sync()},
	q{DELETE FROM mal.fake},
	q{TRUNCATE mal.fake});
note("hijacking event_trigger_sync: @outcomes");
LoginTriggerTest::safe_psql_at($node, connstr('mallory', 'after_sync_hijack'), 'SELECT 1');
LoginTriggerTest::safe_psql_at($node, connstr($node->safe_psql('postgres', 'SELECT current_user'), 'su_after_sync_hijack'), 'SELECT 1');
attack('event_trigger_sync on a table of her own',
	is(carriers(), $carriers, 'hijacked sync: the dependency carriers of the registrations are intact'),
	is(logins('after_sync_hijack'), '1', 'hijacked sync: login triggers still fire for mallory'),
	is(logins('su_after_sync_hijack'), '1', 'hijacked sync: and for everyone else'));
restore_registry() if carriers() ne $carriers;

###########################################################################################
# 3. Switching the triggers off (or replica-only triggers on) with a setting.
LoginTriggerTest::safe_psql_at($node, connstr('mallory', 'mkdb'), 'CREATE DATABASE maldb');
my $denied_enabled = qr/^42501: permission denied to set parameter "login_trigger\.enabled"$/;
@outcomes = tries('mallory', 'guc',
	q{SET login_trigger.enabled = off},
	q{SET LOCAL login_trigger.enabled = off},
	q{SELECT set_config('login_trigger.enabled', 'off', false)},
	q{SELECT set_config('login_trigger.enabled', 'off', true)},
	q{ALTER ROLE mallory SET login_trigger.enabled = off},
	q{ALTER ROLE mallory IN DATABASE postgres SET login_trigger.enabled = off},
	q{ALTER DATABASE maldb SET login_trigger.enabled = off},
	q{CREATE FUNCTION mal.switch_off() RETURNS void LANGUAGE sql SET login_trigger.enabled = off AS 'SELECT'},
	q{SET session_replication_role = replica},
	q{SET login_trigger.login_function = ''},
	q{SET login_trigger.logout_function = ''},
	q{SET login_trigger.login_timeout = 1},
	q{SET login_trigger.login_status = 'fired'},
	q{RESET login_trigger.enabled},
	q{CREATE TABLE mal.after_guc_attempts ()});
attack('SET', like($outcomes[0], $denied_enabled, 'GUC: SET login_trigger.enabled is refused'));
attack('SET LOCAL', like($outcomes[1], $denied_enabled, 'GUC: SET LOCAL is refused'));
attack('set_config session', like($outcomes[2], $denied_enabled, 'GUC: set_config(…, false) is refused'));
attack('set_config local', like($outcomes[3], $denied_enabled, 'GUC: set_config(…, true) is refused'));
attack('ALTER ROLE self SET', like($outcomes[4], $denied_enabled, 'GUC: ALTER ROLE mallory SET is refused'));
attack('ALTER ROLE IN DATABASE SET', like($outcomes[5], $denied_enabled, 'GUC: ALTER ROLE … IN DATABASE SET is refused'));
attack('ALTER DATABASE own SET', like($outcomes[6], $denied_enabled, 'GUC: ALTER DATABASE (her own) SET is refused'));
attack('function SET clause', like($outcomes[7], $denied_enabled, 'GUC: a function with SET login_trigger.enabled is refused'));
attack('session_replication_role', like($outcomes[8], qr/^42501: permission denied to set parameter "session_replication_role"$/,
		'GUC: session_replication_role = replica (which would skip origin triggers) is refused'));
attack('SET login_function', like($outcomes[9], qr/^42501: permission denied to set parameter "login_trigger\.login_function"$/,
		'GUC: SET login_trigger.login_function is refused'));
attack('SET logout_function', like($outcomes[10], qr/^42501: permission denied to set parameter "login_trigger\.logout_function"$/,
		'GUC: SET login_trigger.logout_function is refused'));
attack('SET login_timeout', like($outcomes[11], qr/^42501: permission denied to set parameter "login_trigger\.login_timeout"$/,
		'GUC: SET login_trigger.login_timeout is refused'));
attack('SET login_status', like($outcomes[12], qr/^55P02: parameter "login_trigger\.login_status" cannot be changed$/,
		'GUC: the reported login_status cannot be forged'));
like($outcomes[13], qr/^(ok|42501: permission denied to set parameter "login_trigger\.enabled")$/, 'GUC: RESET changes nothing');
is($outcomes[14], 'ok', 'GUC: DDL in the same session works');
is(ddl_rows('guc'), '1', 'GUC: and still fires the DDL trigger after all the attempts');
is($node->safe_psql('postgres', q{SELECT count(*) FROM pg_db_role_setting s JOIN pg_roles r ON r.oid = s.setrole WHERE r.rolname = 'mallory'})
	  . $node->safe_psql('postgres', q{SELECT count(*) FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase WHERE d.datname = 'maldb'}),
	'00', 'GUC: nothing was stored for her role or database');
is(LoginTriggerTest::safe_psql_at($node, connstr('mallory', 'guc_after'), 'SHOW login_trigger.enabled'), 'on',
	'GUC: her next session has the triggers on');
is(logins('guc_after'), '1', 'GUC: and fires the login trigger');

my $err = verbose_errors('mallory', 'alter_system', 'ALTER SYSTEM SET login_trigger.enabled = off;');
attack('ALTER SYSTEM', like($err, $major >= 15
		  ? qr/ERROR:  42501: permission denied to set parameter "login_trigger\.enabled"/
		  : qr/ERROR:  42501: must be superuser to execute ALTER SYSTEM command/,
		'GUC: ALTER SYSTEM is refused (42501)'));

# At connection time: refused outright with shared_preload_libraries.
my $offset = -s $node->logfile;
my ($ret, $out);
for my $way ('options', 'PGOPTIONS')
{
	my $app = "conn_$way";
	local $ENV{PGOPTIONS} = '-c login_trigger.enabled=off' if $way eq 'PGOPTIONS';
	my $extra = $way eq 'options' ? " options='-c login_trigger.enabled=off'" : '';
	($ret, $out, $err) = LoginTriggerTest::psql_at($node, connstr('mallory', $app, undef, $extra), 'SHOW login_trigger.enabled');
	attack("connection $way",
		isnt($ret, 0, "connection $way: the connection is refused"),
		like($err, qr/FATAL:  permission denied to set parameter "login_trigger\.enabled"/, "connection $way: with the reason"),
		is($out, '', "connection $way: no query ran with the triggers off"));
}
ok($node->wait_for_log(qr/42501 \S+ FATAL:  permission denied to set parameter "login_trigger\.enabled"/, $offset),
	'connection: the server log has SQLSTATE 42501');
($ret, $out, $err) = LoginTriggerTest::psql_at($node,
	connstr('mallory', 'conn_srr', undef, " options='-c session_replication_role=replica'"), 'SELECT 1');
attack('connection session_replication_role', isnt($ret, 0, 'connection: session_replication_role=replica is refused'),
	like($err, qr/permission denied to set parameter "session_replication_role"/, 'connection: with the reason'));

###########################################################################################
# 4. search_path: functions named like the registered ones, earlier in the path.
$node->safe_psql('postgres', q{
	SET ROLE mallory;
	CREATE FUNCTION mal.guard() RETURNS event_trigger LANGUAGE plpgsql AS $$
	BEGIN INSERT INTO public.marks VALUES ('mal.guard', current_user, session_user); END $$;
	RESET ROLE;
});
@outcomes = tries('mallory', 'path_set',
	q{SET search_path = mal, public, pg_catalog},
	q{CREATE TABLE mal.path_set_table ()},
	q{CREATE FUNCTION pg_temp.guard() RETURNS event_trigger LANGUAGE plpgsql AS $f$BEGIN INSERT INTO public.marks VALUES ('pg_temp.guard', current_user, session_user); END $f$},
	q{SET search_path = pg_temp, mal, public},
	q{CREATE TABLE mal.path_temp_table ()});
attack('SET search_path (DDL)',
	is(join(',', @outcomes), 'ok,ok,ok,ok,ok', 'search_path: the statements ran'),
	is(ddl_rows('path_set'), '3', 'search_path: the registered DDL trigger fired for the three DDL commands'),
	is(marks('%guard'), '0', 'search_path: no same-named function (mal, pg_temp) ran instead'));

# A superuser's ALTER ROLE … SET, with the DDL trigger registered (not an attack: if it fails,
# the setting is made with the triggers off so that the attack can still be tried).
my ($rc, $stdout, $stderr) = $node->psql('postgres', 'ALTER ROLE mallory SET search_path = mal, public');
is($rc, 0, 'a superuser\'s ALTER ROLE … SET works while a ddl_command_end trigger is registered') or diag($stderr);
sub role_setting
{
	my ($sql) = @_;
	$node->safe_psql('postgres', "SET login_trigger.enabled = off; $sql");
}
role_setting('ALTER ROLE mallory SET search_path = mal, public') if $rc;
LoginTriggerTest::safe_psql_at($node, connstr('mallory', 'path_role'), 'CREATE TABLE mal.path_role_table ()');
attack('ALTER ROLE SET search_path',
	is(logins('path_role') . ddl_rows('path_role'), '11', 'ALTER ROLE SET search_path: the registered login and DDL triggers fired'),
	is(marks('%guard'), '0', 'ALTER ROLE SET search_path: mal.guard() did not run'));
role_setting('ALTER ROLE mallory RESET search_path');
LoginTriggerTest::safe_psql_at($node, connstr('mallory', 'path_options', undef, " options='-c search_path=mal,public'"),
	'CREATE TABLE mal.path_options_table ()');
attack('options -c search_path',
	is(logins('path_options') . ddl_rows('path_options'), '11', 'options search_path: the registered login and DDL triggers fired'),
	is(marks('%guard'), '0', 'options search_path: mal.guard() did not run'));
# A superuser's DDL with mallory's schema first in its search_path.
$node->safe_psql('postgres', q{SET application_name = 'su_path'; SET search_path = mal, public; CREATE TABLE public.su_path_table ()});
attack('superuser DDL with mal first in search_path',
	is(ddl_rows('su_path'), '1', 'superuser DDL: the registered DDL trigger fired'),
	is(marks('%guard'), '0', 'superuser DDL: mal.guard() did not run as the superuser'));

# The session_exec-style settings: schema-qualified names, never resolved through search_path.
$node->safe_psql('postgres', q{
	CREATE FUNCTION public.session_gate() RETURNS void LANGUAGE plpgsql SET search_path = pg_catalog AS $$
	BEGIN PERFORM set_config('app.gate', 'public', false); END $$;
	CREATE FUNCTION public.session_bye() RETURNS void LANGUAGE plpgsql SET search_path = pg_catalog AS $$
	BEGIN
	  INSERT INTO public.audit (event, trigger_name, role, app)
	  VALUES ('logout', 'session_bye', session_user, current_setting('application_name'));
	END $$;
	SET ROLE mallory;
	CREATE FUNCTION mal.session_gate() RETURNS void LANGUAGE plpgsql AS $$
	BEGIN
	  PERFORM set_config('app.gate', 'mal', false);
	  INSERT INTO public.marks VALUES ('mal.session_gate', current_user, session_user);
	END $$;
	CREATE FUNCTION mal.session_bye() RETURNS void LANGUAGE plpgsql AS $$
	BEGIN INSERT INTO public.marks VALUES ('mal.session_bye', current_user, session_user); END $$;
	CREATE FUNCTION mal."public.session_gate"() RETURNS void LANGUAGE plpgsql AS $$
	BEGIN INSERT INTO public.marks VALUES ('mal."public.session_gate"', current_user, session_user); END $$;
	CREATE FUNCTION mal.not_yet() RETURNS void LANGUAGE plpgsql AS $$
	BEGIN INSERT INTO public.marks VALUES ('mal.not_yet', current_user, session_user); END $$;
	RESET ROLE;
	ALTER SYSTEM SET login_trigger.login_function = 'public.session_gate';
	ALTER SYSTEM SET login_trigger.logout_function = 'public.session_bye';
	SELECT pg_reload_conf();
});
wait_setting($node, 'login_trigger.logout_function', 'public.session_bye');
role_setting('ALTER ROLE mallory SET search_path = mal, public');
for my $way ('role', 'options')
{
	my $app = "gate_$way";
	my $extra = $way eq 'options' ? " options='-c search_path=mal,public'" : '';
	role_setting('ALTER ROLE mallory RESET search_path') if $way eq 'options';
	my $gate = LoginTriggerTest::safe_psql_at($node, connstr('mallory', $app, undef, $extra), "SHOW app.gate");
	LoginTriggerTest::wait_for_audit($node, "event = 'logout' AND trigger_name = 'session_bye' AND app = '$app'",
		"settings search_path ($way): the logout_function ran");
	attack("login_function/logout_function with search_path via $way",
		is($gate, 'public', "settings search_path ($way): public.session_gate() ran at login"),
		is(marks('mal.session_%'), '0', "settings search_path ($way): mal's functions of the same names did not run"));
}
# A name that needs search_path (unqualified, or a quoted name with a dot in it), or a schema
# mallory controls: her functions never run.
$offset = -s $node->logfile;
for my $setting ('session_gate', '"public.session_gate"', 'mal.not_yet')
{
	$node->safe_psql('postgres', qq{ALTER SYSTEM SET login_trigger.login_function = '$setting'; SELECT pg_reload_conf()});
	wait_setting($node, 'login_trigger.login_function', $setting);
	my $app = 'gate_name';
	($ret, $out, $err) = LoginTriggerTest::psql_at($node, connstr('mallory', $app, undef, " options='-c search_path=mal,public'"),
		"SELECT current_setting('app.gate', true)");
	attack("login_function = $setting",
		is($ret, 0, "login_function = $setting: the login proceeds"),
		like($err, qr/WARNING:  .*login_trigger\.login_function|WARNING:  login_trigger trigger ".*" skipped: function .* is not owned by a superuser/,
			"login_function = $setting: with a warning saying why the function is not run"),
		is(marks('mal.%gate%') + marks('mal.not_yet'), 0, "login_function = $setting: mallory's function did not run"));
}
$node->safe_psql('postgres', q{
	ALTER SYSTEM RESET login_trigger.login_function;
	ALTER SYSTEM RESET login_trigger.logout_function;
	SELECT pg_reload_conf();
});
wait_setting($node, 'login_trigger.logout_function', '');

###########################################################################################
# 5. A registered function whose ownership a superuser later hands to mallory: skipped with a
#    warning, never run for a superuser's login or DDL.
$node->safe_psql('postgres', q{
	CREATE FUNCTION mal.later() RETURNS event_trigger LANGUAGE plpgsql AS $$BEGIN END $$;
	SELECT login_trigger.create_trigger('later_login', 'login', 'mal.later()');
	SELECT login_trigger.create_trigger('later_ddl', 'ddl_command_end', 'mal.later()');
	ALTER FUNCTION mal.later() OWNER TO mallory;
});
@outcomes = tries('mallory', 'owner_replace', q{CREATE OR REPLACE FUNCTION mal.later() RETURNS event_trigger LANGUAGE plpgsql AS $f$
	BEGIN INSERT INTO public.marks VALUES ('mal.later', current_user, session_user); END $f$});
is($outcomes[0], 'ok', 'owner: mallory, now the owner, replaces the body');
my $superuser = $node->safe_psql('postgres', 'SELECT current_user');
($ret, $out, $err) = LoginTriggerTest::psql_at($node, connstr($superuser, 'su_owner'), 'CREATE TABLE public.su_owner_table ()');
my $skipped = qr/WARNING:  login_trigger trigger "later_(login|ddl)" skipped: function mal\.later\(\) is not owned by a superuser/;
attack('function handed to a non-superuser after registration',
	is($ret, 0, 'owner: the superuser logs in and runs DDL'),
	like($err, qr/$skipped(.|\n)*$skipped/, 'owner: both registrations are skipped with a warning that says why'),
	is(logins('su_owner') . ddl_rows('su_owner'), '11', 'owner: the other triggers still fire'),
	is(marks('mal.later'), '0', 'owner: mallory\'s body never ran'));
$node->safe_psql('postgres', q{
	SELECT login_trigger.drop_trigger('later_login');
	SELECT login_trigger.drop_trigger('later_ddl');
});

###########################################################################################
# 6. Another session's context, and the authentication failures.
LoginTriggerTest::connect_fails($node, connstr('alice', 'wrong_password', undef, ' password=wrong'),
	'a failed authentication to keep', sqlstate => '28P01', expected_stderr => qr/password authentication failed for user "alice"/);
$node->safe_psql('postgres', q{
	CREATE FUNCTION public.hold() RETURNS void LANGUAGE plpgsql AS $$
	BEGIN
	  IF current_setting('application_name') = 'victim' THEN
	    PERFORM pg_advisory_lock(4242);
	    PERFORM pg_advisory_unlock(4242);
	  END IF;
	END $$;
	SELECT login_trigger.create_trigger('hold', 'login', 'public.hold()');
});
my $locker = $node->background_psql('postgres');
$locker->query_safe('SELECT pg_advisory_lock(4242)');
my ($victim_out, $victim_err) = ('', '');
my $victim = IPC::Run::start([ 'psql', '-XAtq', '-d', connstr($superuser, 'victim'), '-c', 'SELECT 1' ],
	'>', \$victim_out, '2>', \$victim_err, IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default));
ok($node->poll_query_until('postgres',
		"SELECT count(*) = 1 FROM pg_stat_activity WHERE application_name = 'victim' AND wait_event_type = 'Lock'"),
	'context: a superuser session is inside its login trigger');
# The superuser's failed DDL is remembered in that superuser's session only.
$node->psql('postgres', 'CREATE TABLE public.audit ()');
@outcomes = tries('mallory', 'context',
	q{SELECT login_trigger.context()},
	q{SELECT * FROM login_trigger.session()},
	q{SELECT * FROM login_trigger.ddl_commands()},
	q{SELECT * FROM login_trigger.dropped_objects()},
	q{SELECT login_trigger.table_rewrite_oid()},
	q{DO $d$BEGIN IF (SELECT count(*) FROM login_trigger.failed_ddl()) > 0 THEN RAISE EXCEPTION 'saw failed DDL of another session'; END IF; END $d$},
	q{SELECT * FROM login_trigger.auth_failures},
	q{SELECT * FROM login_trigger.auth_failures()},
	q{SELECT * FROM login_trigger.auth_failure_counts},
	q{SELECT * FROM login_trigger.auth_failure_counts()});
my $no_context = qr/^39P03: login_trigger context is only available in a trigger function HINT: /;
attack('context() of another session', like($outcomes[0], $no_context, 'context: context() outside a trigger is an error, not another session\'s data'));
attack('session() of another session', like($outcomes[1], $no_context, 'context: session() likewise'));
attack('ddl_commands() of another session', like($outcomes[2], qr/^39P03: /, 'context: ddl_commands() likewise'));
attack('dropped_objects() of another session', like($outcomes[3], qr/^39P03: /, 'context: dropped_objects() likewise'));
attack('table_rewrite_oid() of another session', like($outcomes[4], qr/^39P03: /, 'context: table_rewrite_oid() likewise'));
attack('failed_ddl() of another session', is($outcomes[5], 'ok', 'context: failed_ddl() has none of the superuser\'s failed DDL'));
attack('auth_failures view', like($outcomes[6], qr/^42501: permission denied for (view|relation) auth_failures$/,
		'auth: a plain user cannot read the auth_failures view'));
attack('auth_failures()', like($outcomes[7], qr/^42501: permission denied for function auth_failures$/,
		'auth: nor call auth_failures()'));
attack('auth_failure_counts view', like($outcomes[8], qr/^42501: permission denied for (view|relation) auth_failure_counts$/,
		'auth: nor read auth_failure_counts'));
attack('auth_failure_counts()', like($outcomes[9], qr/^42501: permission denied for function auth_failure_counts$/,
		'auth: nor call auth_failure_counts()'));
$locker->query_safe('SELECT pg_advisory_unlock(4242)');
$locker->quit;
$victim->finish;
$victim_out =~ s/\s+$//;
is($victim_out, '1', 'context: the victim got in once its login trigger finished');
is(LoginTriggerTest::safe_psql_at($node, connstr('watcher', 'watcher'), 'SELECT user_name FROM login_trigger.auth_failures'),
	'alice', 'auth: a member of pg_read_all_stats can read the failures');
$node->safe_psql('postgres', q{SELECT login_trigger.drop_trigger('hold')});

###########################################################################################
# 7. A forged registry in a database mallory owns (the extension is not installed there): the
#    library must not read a look-alike login_trigger.event_trigger, let alone as a superuser.
sub rolsuper
{
	return $node->safe_psql('postgres', q{SELECT rolsuper FROM pg_roles WHERE rolname = 'mallory'});
}
sub forge
{
	my ($with_carrier) = @_;
	my $carrier = $with_carrier ? q{
	-- What tells a starting session that the database has login triggers.
	CREATE TABLE login_trigger.registered_login_function ();
	CREATE TRIGGER carrier AFTER TRUNCATE ON login_trigger.registered_login_function
	  FOR EACH STATEMENT EXECUTE FUNCTION m.noop();} : '';
	return q{
	CREATE SCHEMA m;
	CREATE TABLE m.pwned (by_user text, session_user_name text);
	GRANT ALL ON m.pwned TO PUBLIC;
	CREATE FUNCTION m.pwn() RETURNS text LANGUAGE plpgsql AS $$
	BEGIN
	  IF current_setting('m.done', true) = 'yes' THEN RETURN 'D'; END IF;
	  PERFORM set_config('m.done', 'yes', false);
	  INSERT INTO m.pwned VALUES (current_user, session_user);
	  IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
	    EXECUTE 'ALTER ROLE mallory SUPERUSER';
	  END IF;
	  RETURN 'D';
	END $$;
	CREATE FUNCTION m.noop() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NULL; END $$;
	CREATE SCHEMA login_trigger;} . $carrier . q{
	-- A view: reading it runs m.pwn() as whoever reads it. Created last, so that this session's
	-- registry cache (built before it existed) never reads it.
	CREATE VIEW login_trigger.event_trigger AS
	  SELECT 'forged'::text AS name, 'ddl_command_end'::text AS event, 'm.noop()'::regprocedure AS function,
	         m.pwn()::"char" AS enabled, NULL::text[] AS tags;
	};
}
# Who ran m.pwn() in mallory's sessions, read as mallory (a superuser connecting there would
# run it too, which is the same hole but not this attack).
sub pwned_by
{
	my ($db) = @_;
	return LoginTriggerTest::safe_psql_at($node, connstr('mallory', 'check', $db),
		q{SELECT coalesce(string_agg(DISTINCT by_user, ','), '') FROM m.pwned WHERE session_user_name = 'mallory'});
}
$err = verbose_errors('mallory', 'forge', forge(0), 'maldb');
unlike($err, qr/ERROR/, 'forged registry: set up in maldb');
# The DDL path: any DDL in maldb.
LoginTriggerTest::psql_at($node, connstr('mallory', 'forged_ddl', 'maldb'), 'CREATE TABLE m.t ()');
attack('forged registry view read at DDL',
	is(rolsuper(), 'f', 'forged registry (DDL): mallory did not become a superuser'),
	is(pwned_by('maldb'), '', 'forged registry (DDL): her view was never read (as a superuser: "'
		  . $superuser . '" here means it was)'));
role_setting('ALTER ROLE mallory NOSUPERUSER');
# The login path, with a carrier table that says there are login triggers.
LoginTriggerTest::safe_psql_at($node, connstr('mallory', 'mkdb2'), 'CREATE DATABASE maldb2');
$err = verbose_errors('mallory', 'forge', forge(1), 'maldb2');
unlike($err, qr/ERROR/, 'forged registry: set up in maldb2');
# (Any CREATE DATABASE empties the shared summary of databases known to have no login triggers,
# which the session that set maldb2 up has just recorded.)
LoginTriggerTest::safe_psql_at($node, connstr('mallory', 'mkdb_reset'), 'CREATE DATABASE maldb_reset');
LoginTriggerTest::psql_at($node, connstr('mallory', 'forged_login', 'maldb2'), 'SELECT 1');
attack('forged registry view read at login',
	is(rolsuper(), 'f', 'forged registry (login): mallory did not become a superuser'),
	is(pwned_by('maldb2'), '', 'forged registry (login): her view was never read'));
role_setting('ALTER ROLE mallory NOSUPERUSER');
# A forged table whose row names a superuser's SECURITY DEFINER function she may not execute.
LoginTriggerTest::safe_psql_at($node, connstr('mallory', 'mkdb3'), 'CREATE DATABASE maldb3');
$err = verbose_errors('mallory', 'forge3', q{
	SELECT public.admin_only();
	CREATE SCHEMA login_trigger;
	CREATE TABLE login_trigger.event_trigger (name text, event text, function regprocedure, enabled "char", tags text[]);
	INSERT INTO login_trigger.event_trigger VALUES ('forged', 'ddl_command_end', 'public.admin_only()', 'O', NULL);
}, 'maldb3');
like($err, qr/ERROR:  42501: permission denied for function admin_only/, 'forged registry: mallory may not run admin_only() herself');
LoginTriggerTest::psql_at($node, connstr('mallory', 'forged_rows', 'maldb3'), 'CREATE TABLE public.t ()');
attack('forged registry row naming a function she may not execute',
	is(LoginTriggerTest::safe_psql_at($node, connstr($superuser, 'check', 'maldb3'), 'SELECT count(*) FROM public.admin_log'),
		'0', 'forged registry (rows): the administrator\'s function did not run for her'));
role_setting('ALTER ROLE mallory NOSUPERUSER');

###########################################################################################
# 8. With session_preload_libraries: what is refused at connection time with
#    shared_preload_libraries is discarded instead, and must not weaken anything.
$node->stop;
my $session = LoginTriggerTest::node('attacks_session', mode => 'session');
$session->safe_psql('postgres', q{
	CREATE ROLE mallory LOGIN;
	CREATE FUNCTION public.guard() RETURNS event_trigger LANGUAGE plpgsql SET search_path = pg_catalog AS $$
	BEGIN
	  INSERT INTO public.audit (event, role, app) VALUES (TG_EVENT, session_user, current_setting('application_name'));
	END $$;
	SELECT login_trigger.create_trigger('guard_login', 'login', 'public.guard()');
	CREATE FUNCTION public.try(statement text) RETURNS text LANGUAGE plpgsql AS $$
	BEGIN EXECUTE statement; RETURN 'ok'; EXCEPTION WHEN OTHERS THEN RETURN SQLSTATE || ': ' || SQLERRM; END $$;
	-- A cluster-wide gate: mallory may not log in.
	CREATE FUNCTION public.gate() RETURNS void LANGUAGE plpgsql SET search_path = pg_catalog AS $$
	BEGIN
	  IF session_user = 'mallory' THEN
	    RAISE EXCEPTION 'mallory is locked out' USING ERRCODE = 'insufficient_privilege';
	  END IF;
	END $$;
	ALTER SYSTEM SET login_trigger.login_function = 'public.gate';
	SELECT pg_reload_conf();
});
wait_setting($session, 'login_trigger.login_function', 'public.gate');
my $session_connstr = sub {
	my ($app, $extra) = @_;
	return $session->connstr('postgres') . " user=mallory application_name=$app" . ($extra // '');
};
($ret, $out, $err) = LoginTriggerTest::psql_at($session, $session_connstr->('gated'), 'SELECT 1');
isnt($ret, 0, 'session mode: the gate keeps mallory out');
like($err, qr/mallory is locked out/, 'session mode: with the gate\'s message');
$session->safe_psql('postgres', "ALTER SYSTEM RESET login_trigger.login_function; SELECT pg_reload_conf()");
wait_setting($session, 'login_trigger.login_function', '');
for my $way ('options', 'PGOPTIONS')
{
	my $app = "session_$way";
	local $ENV{PGOPTIONS} = '-c login_trigger.enabled=off' if $way eq 'PGOPTIONS';
	my $extra = $way eq 'options' ? " options='-c login_trigger.enabled=off'" : '';
	($ret, $out, $err) = LoginTriggerTest::psql_at($session, $session_connstr->($app, $extra), 'SHOW login_trigger.enabled');
	# The library refuses the connection, as PostgreSQL does with shared_preload_libraries.
	attack("session mode: connection $way",
		isnt($ret, 0, "session mode ($way): the connection is refused"),
		like($err, qr/FATAL:  permission denied to set login_trigger parameters in the connection options/,
			"session mode ($way): with a message that says why"),
		is($session->safe_psql('postgres', "SELECT count(*) FROM public.audit WHERE app = '$app'"), '0',
			"session mode ($way): nothing ran for the refused connection"));
}
($ret, $out, $err) = LoginTriggerTest::psql_at($session, $session_connstr->('no_preload', " options='-c session_preload_libraries='"), 'SELECT 1');
attack('session mode: not loading the library',
	isnt($ret, 0, 'session mode: a non-superuser cannot keep the library from loading'),
	like($err, qr/FATAL:  permission denied to set parameter "session_preload_libraries"/, 'session mode: with the reason'));
attack('session mode: ALTER ROLE self SET',
	like(LoginTriggerTest::safe_psql_at($session, $session_connstr->('session_alter_role'),
			q{SELECT public.try($a$ALTER ROLE mallory SET login_trigger.enabled = off$a$)}),
		$denied_enabled, 'session mode: ALTER ROLE mallory SET login_trigger.enabled is refused'));
# The cluster-wide gate set by a superuser (ALTER SYSTEM, or postgresql.conf): a connection
# option naming the setting must not leave it at its empty boot default (design.md's
# "placeholder gotcha" is safe for login_trigger.enabled, whose boot value is on, but not for a
# setting whose boot value is "nothing to run").
$session->safe_psql('postgres', "ALTER SYSTEM SET login_trigger.login_function = 'public.gate'; SELECT pg_reload_conf()");
wait_setting($session, 'login_trigger.login_function', 'public.gate');
for my $way ('options', 'PGOPTIONS')
{
	my $app = "session_gate_$way";
	local $ENV{PGOPTIONS} = '-c login_trigger.login_function=' if $way eq 'PGOPTIONS';
	my $extra = $way eq 'options' ? " options='-c login_trigger.login_function=pg_catalog.now'" : '';
	($ret, $out, $err) = LoginTriggerTest::psql_at($session, $session_connstr->($app, $extra), "SELECT 'got in'");
	attack("session mode: bypassing login_function with $way",
		isnt($ret, 0, "session mode ($way): the gate still keeps mallory out"),
		is($out, '', "session mode ($way): no query ran without the gate"));
}
$session->safe_psql('postgres', "ALTER SYSTEM RESET login_trigger.login_function; SELECT pg_reload_conf()");
$session->stop;

LoginTriggerTest::figure('security', 'attacks attempted', $attempted);
LoginTriggerTest::figure('security', 'attacks refused', $refused);
is($refused, $attempted, "all $attempted attacks were refused");
done_testing();
