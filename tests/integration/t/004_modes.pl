# Loading modes: session_preload_libraries alone, and the library in both lists; the
# placeholder gotcha of session_preload (a non-superuser's attempt to switch triggers off is
# discarded, triggers still fire); single-user mode fires nothing.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin . '/..';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use LoginTriggerTest;

for my $mode ('session', 'both')
{
	my $node = LoginTriggerTest::node("mode_$mode", mode => $mode);
	$node->safe_psql('postgres', q{
		SELECT login_trigger.create_trigger('in', 'login', 'public.audit_event()');
		SELECT login_trigger.create_trigger('out', 'logout', 'public.audit_event()');
	});
	$node->safe_psql('postgres', 'TRUNCATE public.audit');
	LoginTriggerTest::safe_psql_at($node, $node->connstr('postgres') . " application_name=m$_", 'SELECT 1')
	  for 1 .. 3;
	is($node->safe_psql('postgres', "SELECT count(*) FROM public.audit WHERE event = 'login' AND app LIKE 'm_'"),
		'3', "$mode: one login per session");
	ok($node->poll_query_until('postgres',
			"SELECT count(*) = 3 FROM public.audit WHERE event = 'logout' AND app LIKE 'm_' AND reason = 'client_exit'"),
		"$mode: one logout per session");

	if ($mode eq 'session')
	{
		my ($ret, $out, $err) = LoginTriggerTest::psql_at($node,
			$node->connstr('postgres') . " user=alice options='-c login_trigger.enabled=off' application_name=sneaky",
			'SHOW login_trigger.enabled');
		isnt($ret, 0, 'session mode: a non-superuser cannot switch triggers off at connection time');
		like($err, qr/FATAL:  permission denied to set login_trigger parameters in the connection options/,
			'and is told so');
		is($node->safe_psql('postgres', "SELECT count(*) FROM public.audit WHERE app = 'sneaky'"),
			'0', 'session mode: the refused connection ran nothing');
		my $superuser = LoginTriggerTest::safe_psql_at($node,
			$node->connstr('postgres') . " options='-c login_trigger.enabled=off' application_name=hatch",
			'SHOW login_trigger.enabled');
		is($superuser, 'off', 'session mode: a superuser can switch them off');
		is($node->safe_psql('postgres', "SELECT count(*) FROM public.audit WHERE app = 'hatch'"), '0',
			'and nothing fires for that session');
		($ret, $out, $err) = $node->psql('postgres', 'SELECT * FROM login_trigger.auth_failures');
		like($err, qr/recorded only when login_trigger is in shared_preload_libraries/,
			'session mode: the authentication views say what they need');

		# The README's advice for session_preload_libraries on 15 and older: every setting listed in
		# postgresql.conf (so the postmaster creates it once). Triggers still fire once per session.
		$node->append_conf('postgresql.conf', join("\n",
			"login_trigger.enabled = on", "login_trigger.login_timeout = '10s'",
			"login_trigger.logout_timeout = '5s'", "login_trigger.login_function = ''",
			"login_trigger.logout_function = ''"));
		$node->reload;
		is(LoginTriggerTest::safe_psql_at($node, $node->connstr('postgres') . ' application_name=listed',
				"SELECT current_setting('login_trigger.login_timeout') || ' ' || current_setting('login_trigger.enabled')"),
			'10s on', 'session mode, settings listed in postgresql.conf: their values');
		is($node->safe_psql('postgres', "SELECT count(*) FROM public.audit WHERE event = 'login' AND app = 'listed'"),
			'1', 'and login triggers fire once');
	}
	# With shared_preload_libraries the postmaster has loaded PL/pgSQL (src/loading.rs): a session
	# that has run no PL/pgSQL (nothing fires with login_trigger.enabled off) already has its
	# settings; with session_preload_libraries alone PL/pgSQL is loaded on first use as usual.
	my ($plpgsql_ret, $plpgsql_out, $plpgsql_err) = LoginTriggerTest::psql_at($node,
		$node->connstr('postgres') . " options='-c login_trigger.enabled=off'", 'SHOW plpgsql.variable_conflict');
	if ($mode eq 'both')
	{
		is($plpgsql_out, 'error', 'shared_preload: PL/pgSQL comes initialised from the postmaster');
	}
	else
	{
		like($plpgsql_err, qr/unrecognized configuration parameter "plpgsql.variable_conflict"/,
			'session_preload: PL/pgSQL is loaded on first use');
	}
	if ($mode eq 'both')
	{
		# Single-user mode fires nothing, even a trigger that refuses every login.
		$node->safe_psql('postgres', q{
			CREATE FUNCTION public.deny_all() RETURNS void LANGUAGE plpgsql AS $$
			BEGIN RAISE EXCEPTION 'logins are closed'; END $$;
			SELECT login_trigger.create_trigger('closed', 'login', 'public.deny_all()');
		});
		$node->stop;
		my ($stdout, $stderr) = ('', '');
		IPC::Run::run([ 'postgres', '--single', '-D', $node->data_dir, 'postgres' ],
			'<', \"SELECT 'single-user works';\n", '>', \$stdout, '2>', \$stderr);
		like($stdout, qr/single-user works/, 'single-user mode fires no login trigger');
		unlike($stdout . $stderr, qr/logins are closed/, 'not even a refusing one');
		$node->start;
	}
	$node->stop;
}
done_testing();
