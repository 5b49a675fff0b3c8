# Login triggers against real connections (shared_preload_libraries): once per session, in name
# order, refusal with the function's message and SQLSTATE, the login timeout, session-long
# settings (the README's TP/AP example, as written), the session_exec-style settings, the
# superuser escape hatch, and no firing in parallel workers or walsenders.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin . '/..';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use LoginTriggerTest;

my $node = LoginTriggerTest::node('login', streaming => 1);
$node->safe_psql('postgres', q{
	SELECT login_trigger.create_trigger('b_audit', 'login', 'public.audit_event()');
	SELECT login_trigger.create_trigger('a_audit', 'login', 'public.audit_event()');
});

# One login per session, triggers in name order.
$node->safe_psql('postgres', 'TRUNCATE public.audit');
LoginTriggerTest::safe_psql_at($node, $node->connstr('postgres') . " application_name=once$_", 'SELECT 1')
  for 1 .. 3;
is($node->safe_psql('postgres',
		"SELECT string_agg(trigger_name, ',' ORDER BY id) FROM public.audit WHERE app = 'once1'"),
	'a_audit,b_audit', 'triggers fire in byte order of their names');
is($node->safe_psql('postgres',
		"SELECT count(DISTINCT pid) || ' sessions, ' || count(*) || ' rows' FROM public.audit WHERE app LIKE 'once_'"),
	'3 sessions, 6 rows', 'each session fires each login trigger exactly once');

# A parallel query does not fire login again in its workers.
$node->safe_psql('postgres', 'CREATE TABLE big AS SELECT g FROM generate_series(1, 100000) g; ANALYZE big');
$node->safe_psql('postgres', 'TRUNCATE public.audit');
my $workers = $node->safe_psql('postgres', q{
	SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0; SET min_parallel_table_scan_size = 0;
	SET max_parallel_workers_per_gather = 2;
	EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) SELECT count(*) FROM big;
	SELECT count(*) FROM public.audit WHERE event = 'login' AND pid = pg_backend_pid();
});
like($workers, qr/Workers Launched: [12]/, 'the query ran with parallel workers');
like($workers, qr/\n2$/, 'a session running a parallel query fired login once (one row per trigger)');

# A walsender fires nothing.
$node->safe_psql('postgres', 'TRUNCATE public.audit');
$node->command_ok([ 'pg_receivewal', '--dbname', $node->connstr('postgres'), '--slot', 'nope',
		'--create-slot', '--no-loop' ], 'physical replication connection');
$node->psql('postgres', 'IDENTIFY_SYSTEM', replication => 'database');
is($node->safe_psql('postgres', "SELECT count(*) FROM public.audit WHERE app IN ('pg_receivewal', '002_login.pl') AND pid <> pg_backend_pid()"),
	'0', 'replication connections (physical and logical) fire no login trigger');

# Refusal: the client gets the function's message, the log names the trigger and the SQLSTATE.
$node->safe_psql('postgres', q{
	CREATE FUNCTION public.deny_alice() RETURNS event_trigger LANGUAGE plpgsql AS $$
	BEGIN
	  IF session_user = 'alice' THEN
	    RAISE EXCEPTION 'alice may not log in now' USING ERRCODE = 'LT001', HINT = 'Try after 6am.';
	  END IF;
	END $$;
	SELECT login_trigger.create_trigger('deny', 'login', 'public.deny_alice()');
});
my $log_offset = -s $node->logfile;
LoginTriggerTest::connect_fails($node, $node->connstr('postgres') . ' user=alice', 'a failing login trigger refuses the connection', sqlstate => 'LT001',
	expected_stderr => qr/FATAL:  alice may not log in now/);
ok($node->wait_for_log(qr/LT001 .*FATAL:  alice may not log in now/, $log_offset),
	'the server log has the SQLSTATE of the refusal');
like(slurp_file($node->logfile, $log_offset), qr/CONTEXT:  .*\n\s*login_trigger trigger "deny" \(login\)/,
	'the server log names the trigger');
is($node->safe_psql('postgres', "SELECT count(*) FROM public.audit WHERE role = 'alice'"), '0',
	'nothing a refused login wrote is committed');

# The escape hatch: a superuser gets in with login_trigger.enabled=off; alice is refused the setting.
$node->safe_psql('postgres', q{
	CREATE FUNCTION public.deny_all() RETURNS void LANGUAGE plpgsql AS $$
	BEGIN RAISE EXCEPTION 'logins are closed'; END $$;
	SELECT login_trigger.create_trigger('closed', 'login', 'public.deny_all()');
});
LoginTriggerTest::connect_fails($node, $node->connstr('postgres'), 'with a broken login trigger even superusers are refused', sqlstate => 'P0001',
	expected_stderr => qr/logins are closed/);
LoginTriggerTest::connect_ok($node, $node->connstr('postgres') . " options='-c login_trigger.enabled=off'",
	'a superuser connecting with login_trigger.enabled=off gets in');
LoginTriggerTest::connect_fails($node, $node->connstr('postgres') . " user=alice options='-c login_trigger.enabled=off'",
	'a non-superuser cannot switch the triggers off', sqlstate => '42501',
	expected_stderr => qr/permission denied to set parameter "login_trigger.enabled"/);
$ENV{PGOPTIONS} = '-c login_trigger.enabled=off';
$node->safe_psql('postgres', "SELECT login_trigger.drop_trigger('closed'); SELECT login_trigger.drop_trigger('deny')");
delete $ENV{PGOPTIONS};
LoginTriggerTest::connect_ok($node, $node->connstr('postgres') . ' user=alice', 'after the repair alice gets in');

# The login timeout.
$node->safe_psql('postgres', q{
	CREATE FUNCTION public.slow() RETURNS void LANGUAGE sql AS $$SELECT pg_sleep(20)$$;
	SELECT login_trigger.create_trigger('slow', 'login', 'public.slow()');
	ALTER SYSTEM SET login_trigger.login_timeout = '500ms';
	SELECT pg_reload_conf();
});
my $started = time;
LoginTriggerTest::connect_fails($node, $node->connstr('postgres'), 'a login trigger running past login_timeout refuses the connection', sqlstate => '57014',
	expected_stderr => qr/login triggers did not finish in time/);
cmp_ok(time - $started, '<', 10, 'the refusal came well before the function would have finished');
$ENV{PGOPTIONS} = '-c login_trigger.enabled=off';
$node->safe_psql('postgres', "SELECT login_trigger.drop_trigger('slow'); ALTER SYSTEM RESET login_trigger.login_timeout; SELECT pg_reload_conf()");
delete $ENV{PGOPTIONS};

# Session-long settings: the README's TP/AP example, exactly as written there.
my $readme = slurp_file($ENV{LOGIN_TRIGGER_README} // "$FindBin::RealBin/../../../README.md");
my ($example) = $readme =~ /<!-- example: tp-ap -->\s*```sql\n(.*?)```/s;
ok(defined $example, 'the README has the TP/AP example');
$node->safe_psql('postgres', $example);
my $analytics = LoginTriggerTest::safe_psql_at($node, $node->connstr('postgres') . ' application_name=analytics-dashboard',
	'SHOW statement_timeout; SHOW work_mem');
is($analytics, "1h\n256MB", 'analytics sessions get a long statement_timeout and a big work_mem');
my $oltp = LoginTriggerTest::safe_psql_at($node, $node->connstr('postgres') . ' application_name=orders-api',
	'SHOW statement_timeout; SHOW idle_in_transaction_session_timeout');
is($oltp, "2s\n10s", 'transactional sessions get tight limits');

# session_exec compatibility: a missing function warns, a failing one refuses.
$node->safe_psql('postgres', "ALTER SYSTEM SET login_trigger.login_function = 'public.missing'; SELECT pg_reload_conf()");
my ($ret, $out, $err) = $node->psql('postgres', 'SELECT 1');
is($ret, 0, 'a missing login_function lets the login proceed');
like($err, qr/WARNING:  login_trigger.login_function function "public.missing" does not exist/, 'with a warning');
$node->safe_psql('postgres', "ALTER SYSTEM SET login_trigger.login_function = 'missing_unqualified'; SELECT pg_reload_conf()");
($ret, $out, $err) = $node->psql('postgres', 'SELECT 1');
is($ret, 0, 'an unqualified login_function does not block logins');
like($err, qr/"missing_unqualified" is not a schema-qualified function name/, 'it is ignored with a warning');
$node->safe_psql('postgres', q{
	CREATE FUNCTION public.session_gate() RETURNS void LANGUAGE plpgsql AS $$
	BEGIN
	  IF session_user = 'alice' THEN RAISE EXCEPTION 'gate closed for alice'; END IF;
	  PERFORM set_config('app.gate', 'passed', false);
	END $$;
	ALTER SYSTEM SET login_trigger.login_function = 'public.session_gate';
	SELECT pg_reload_conf();
});
is($node->safe_psql('postgres', 'SHOW app.gate'), 'passed', 'login_function runs at login');
LoginTriggerTest::connect_fails($node, $node->connstr('postgres') . ' user=alice', 'a failing login_function refuses the connection', sqlstate => 'P0001',
	expected_stderr => qr/gate closed for alice/);
$node->safe_psql('postgres', "ALTER SYSTEM RESET login_trigger.login_function; SELECT pg_reload_conf()");

$node->stop;
done_testing();
