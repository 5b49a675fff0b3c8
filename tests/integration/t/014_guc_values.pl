# Malformed values of the login_trigger.* settings, in postgresql.conf (at start and at reload),
# in connection options (superuser and not), and in ALTER SYSTEM, with the library in
# shared_preload_libraries and in session_preload_libraries. Whatever PostgreSQL does with them
# (an invalid value of a custom setting is a WARNING when the library defines it, at start as
# well as in a session; a reload keeps the old value), the outcome must be a message naming the
# setting, and never triggers silently off. Then malformed login_function / logout_function
# names: a warning, never a refusal of every connection, a crash, or lost logout triggers.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin . '/..';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use LoginTriggerTest;

my $bool_msg = qr/parameter "login_trigger\.enabled" requires a Boolean value/;
my $abc_msg = qr/invalid value for parameter "login_trigger\.login_timeout": "abc"/;
my $range_msg = qr/-5000 ms is outside the valid range for parameter "login_trigger\.logout_timeout" \(0( ms)? \.\. 2147483647( ms)?\)/;

# Polls (up to $seconds, 30 by default) until a query run in a new session as the superuser, with the triggers
# switched off for that session, returns $value. Warnings are expected, so poll_query_until
# (which wants an empty stderr) cannot be used.
sub wait_for
{
	my ($node, $sql, $value, $seconds) = @_;
	local $ENV{PGOPTIONS} = '-c login_trigger.enabled=off';
	for (1 .. 10 * ($seconds // 30))
	{
		# (psql may exit before reading its input while the server restarts after a crash.)
		my ($ret, $out) = eval { LoginTriggerTest::psql_at($node, $node->connstr('postgres'), $sql) };
		return 1 if defined $ret && $ret == 0 && $out eq $value;
		select(undef, undef, undef, 0.1);
	}
	return 0;
}

# Runs SQL as the superuser with the triggers off (the escape hatch), for repairs.
sub admin
{
	my ($node, $sql) = @_;
	local $ENV{PGOPTIONS} = '-c login_trigger.enabled=off';
	return LoginTriggerTest::safe_psql_at($node, $node->connstr('postgres'), $sql);
}

# Whether the server log has a line matching $re after $offset (waits up to 5 s for it).
sub log_has
{
	my ($node, $re, $offset) = @_;
	for (1 .. 50)
	{
		return 1 if slurp_file($node->logfile, $offset) =~ $re;
		select(undef, undef, undef, 0.1);
	}
	return 0;
}

sub logins
{
	my ($node, $app) = @_;
	return admin($node, "SELECT count(*) FROM public.audit WHERE event = 'login' AND app = '$app'");
}

sub connect_as
{
	my ($node, $app, $extra, $sql) = @_;
	return LoginTriggerTest::psql_at($node, $node->connstr('postgres') . " application_name=$app" . ($extra // ''),
		$sql // 'SELECT 1');
}

my $major;
for my $mode ('shared', 'session')
{
	# 1. At start.
	my $node = LoginTriggerTest::node("guc_$mode", mode => $mode, conf => [
		"login_trigger.enabled = 'maybe'",
		"login_trigger.login_timeout = 'abc'",
		"login_trigger.logout_timeout = '-5s'" ]);
	$major //= int(admin($node, 'SHOW server_version_num') / 10000);
	admin($node, q{
		SELECT login_trigger.create_trigger('in', 'login', 'public.audit_event()');
		SELECT login_trigger.create_trigger('out', 'logout', 'public.audit_event()');
	});
	my ($ret, $out, $err) = connect_as($node, "start_$mode", '',
		'SHOW login_trigger.enabled; SHOW login_trigger.login_timeout; SHOW login_trigger.logout_timeout');
	is($ret, 0, "$mode, bad values at start: the server started and takes connections");
	is($out, "on\n10s\n5s", "$mode, bad values at start: each setting keeps its safe built-in default");
	my $told = $mode eq 'shared' ? slurp_file($node->logfile) : $err;
	my $where = $mode eq 'shared' ? 'the server log' : 'every connecting client';
	like($told, qr/WARNING:  $bool_msg/, "$mode, bad values at start: $where is told enabled = 'maybe' is invalid");
	like($told, qr/WARNING:  $abc_msg/, "$mode, bad values at start: and login_timeout = 'abc'");
	like($told, qr/WARNING:  $range_msg/, "$mode, bad values at start: and logout_timeout = '-5s'");
	is(logins($node, "start_$mode"), '1', "$mode, bad values at start: the login trigger fired");
	ok(wait_for($node, "SELECT count(*) FROM public.audit WHERE event = 'logout' AND app = 'start_$mode'", '1'),
		"$mode, bad values at start: the logout trigger fired");

	# 2. At reload: first good values, then bad ones.
	$node->append_conf('postgresql.conf',
		"login_trigger.enabled = on\nlogin_trigger.login_timeout = '30s'\nlogin_trigger.logout_timeout = '5s'\n");
	$node->restart;
	($ret, $out, $err) = connect_as($node, "good_$mode", '', 'SHOW login_trigger.login_timeout');
	is($out, '30s', "$mode: good values in postgresql.conf apply");
	unlike($err, qr/WARNING/, "$mode: without warnings");
	my $offset = -s $node->logfile;
	$node->append_conf('postgresql.conf',
		"login_trigger.enabled = 'maybe'\nlogin_trigger.login_timeout = 'abc'\nlogin_trigger.logout_timeout = '-5s'\n");
	$node->reload;
	# Sessions started after the reload has been processed.
	if ($mode eq 'shared')
	{
		log_has($node, qr/contains errors/, $offset);
	}
	else
	{
		for (1 .. 300)
		{
			(undef, undef, $err) = connect_as($node, 'wait', '', 'SELECT 1');
			last if $err =~ $bool_msg;
			select(undef, undef, undef, 0.1);
		}
	}
	($ret, $out, $err) = connect_as($node, "reload_$mode", '', 'SHOW login_trigger.enabled; SHOW login_trigger.login_timeout');
	is($ret, 0, "$mode, bad values at reload: connections still work");
	if ($mode eq 'shared')
	{
		is($out, "on\n30s", 'shared, bad values at reload: the previous values stay');
		my $log = slurp_file($node->logfile, $offset);
		like($log, qr/LOG:  $bool_msg/, 'shared, bad values at reload: the server log says enabled = \'maybe\' is invalid');
		like($log, qr/LOG:  $abc_msg/, 'shared, bad values at reload: and login_timeout = \'abc\'');
		like($log, qr/LOG:  configuration file ".*postgresql\.conf" contains errors; unaffected changes were applied/,
			'shared, bad values at reload: and that the file was not applied in full');
	}
	else
	{
		# The postmaster has no definition to check placeholders against: each new session
		# checks them when it loads the library, and falls back to the built-in defaults.
		is($out, "on\n10s", 'session, bad values at reload: new sessions fall back to the safe built-in defaults');
		like($err, qr/WARNING:  $bool_msg/, 'session, bad values at reload: and each connecting client is told why');
	}
	is(logins($node, "reload_$mode"), '1', "$mode, bad values at reload: the login trigger fired");
	ok(wait_for($node, "SELECT count(*) FROM public.audit WHERE event = 'logout' AND app = 'reload_$mode'", '1'),
		"$mode, bad values at reload: the logout trigger fired");
	# Back to good values for the rest.
	$node->append_conf('postgresql.conf',
		"login_trigger.enabled = on\nlogin_trigger.login_timeout = '30s'\nlogin_trigger.logout_timeout = '5s'\n");
	$node->reload;
	ok(wait_for($node, "SELECT current_setting('login_trigger.login_timeout')", '30s'), "$mode: good values again");

	# 3. Connection options.
	my @cases = (
		# [ who, option, what the setting must be or undef when refused, message ]
		[ 'superuser', '-c login_trigger.enabled=maybe', $bool_msg ],
		[ 'superuser', '-c login_trigger.login_timeout=abc', $abc_msg ],
		[ 'superuser', '-c login_trigger.logout_timeout=-5s', $range_msg ],
		[ 'alice', '-c login_trigger.enabled=maybe', qr/permission denied to set parameter "login_trigger\.enabled"/ ],
		[ 'alice', '-c login_trigger.login_timeout=abc', qr/permission denied to set parameter "login_trigger\.login_timeout"/ ]);
	my $n = 0;
	for my $case (@cases)
	{
		my ($who, $option, $message) = @$case;
		my $app = "opt_${mode}_" . ++$n;
		my $user = $who eq 'alice' ? ' user=alice' : '';
		$offset = -s $node->logfile;
		($ret, $out, $err) = connect_as($node, $app, "$user options='$option'",
			'SHOW login_trigger.enabled; SHOW login_trigger.login_timeout; SHOW login_trigger.logout_timeout');
		if ($mode eq 'session' && $who eq 'alice')
		{
			# The setting does not exist yet when PostgreSQL applies the options, so the library
			# refuses a non-superuser's login_trigger.* options itself, as shared mode does.
			my $refusal = qr/permission denied to set login_trigger parameters in the connection options/;
			isnt($ret, 0, "session, $who $option: the connection is refused");
			like($err, qr/FATAL:  $refusal/, "session, $who $option: with a message that says why");
			ok(log_has($node, qr/42501 \S+ FATAL:  $refusal/, $offset), "session, $who $option: SQLSTATE 42501");
		}
		elsif ($mode eq 'shared')
		{
			isnt($ret, 0, "shared, $who $option: the connection is refused");
			like($err, qr/FATAL:  $message/, "shared, $who $option: with a message naming the setting");
			my $state = $who eq 'alice' ? '42501' : '22023';
			ok(log_has($node, qr/$state \S+ FATAL:  $message/, $offset), "shared, $who $option: SQLSTATE $state");
		}
		else
		{
			is($ret, 0, "session, $who $option: the connection proceeds");
			like($out, qr/^on\n/, "session, $who $option: with the triggers on");
			note("session, $who $option: enabled, login_timeout, logout_timeout are " . join(', ', split /\n/, $out)
				  . " (postgresql.conf says on, 30s, 5s)");
			like($err, qr/WARNING:  $message/, "session, $who $option: and a warning naming the setting");
			is(logins($node, $app), '1', "session, $who $option: the login trigger fired");
		}
	}
	# An unknown setting in the reserved prefix.
	($ret, $out, $err) = connect_as($node, "opt_${mode}_unknown", " options='-c login_trigger.enabeld=off'",
		'SHOW login_trigger.enabled');
	if ($ret == 0)
	{
		is($out, 'on', "$mode, misspelt setting: the triggers are on");
		is(logins($node, "opt_${mode}_unknown"), '1', "$mode, misspelt setting: the login trigger fired");
		like($err, qr/login_trigger\.enabeld/, "$mode, misspelt setting: a warning names it")
		  unless $mode eq 'shared' && $major < 15;
	}
	else
	{
		like($err, qr/FATAL:  invalid configuration parameter name "login_trigger\.enabeld"/,
			"$mode, misspelt setting: the connection is refused with a message naming it");
	}

	# 4. ALTER SYSTEM checks the values it writes.
	my $alter = admin($node, q{
		CREATE FUNCTION public.try(statement text) RETURNS text LANGUAGE plpgsql AS $$
		BEGIN EXECUTE statement; RETURN 'ok'; EXCEPTION WHEN OTHERS THEN RETURN SQLSTATE || ': ' || SQLERRM; END $$;
		SELECT public.try($a$ALTER ROLE alice SET login_trigger.enabled = 'maybe'$a$);
		SELECT public.try($a$ALTER DATABASE postgres SET login_trigger.login_timeout = '-5s'$a$);
	});
	like($alter, qr/^22023: $bool_msg\n22023: -5000 ms is outside the valid range for parameter "login_trigger\.login_timeout"/,
		"$mode: ALTER ROLE/DATABASE SET refuse malformed values (22023)");
	($ret, $out, $err) = LoginTriggerTest::psql_at($node, $node->connstr('postgres'),
		"\\set VERBOSITY verbose\nALTER SYSTEM SET login_trigger.enabled = 'maybe';\nALTER SYSTEM SET login_trigger.logout_timeout = '-5s';");
	like($err, qr/ERROR:  22023: $bool_msg(.|\n)*ERROR:  22023: $range_msg/, "$mode: ALTER SYSTEM refuses malformed values (22023)");

	if ($mode eq 'session')
	{
		$node->stop;
		last;
	}

	# 5. Malformed login_function / logout_function names (shared mode; the resolution is the
	#    same in both). A name that cannot be run is ignored with a warning, like a missing one.
	admin($node, q{
		CREATE FUNCTION public.takes_int(i int) RETURNS void LANGUAGE sql AS $$SELECT set_config('app.i', i::text, false)$$;
		CREATE FUNCTION public.takes_text(t text) RETURNS void LANGUAGE plpgsql AS $$BEGIN PERFORM length(t); END $$;
	});
	my @names = (
		[ 'no.such()', 'a function that does not exist' ],
		[ 'public.f(', 'a name with a syntax error' ],
		[ 'public.f(nosuchtype)', 'an argument type that does not exist' ],
		[ 'public.takes_int(int)', 'a function that takes an argument' ],
		[ 'public.takes_text(text)', 'a function that takes a text argument' ]);
	$n = 0;
	for my $case (@names)
	{
		my ($name, $what) = @$case;
		my $app = 'name_' . ++$n;
		admin($node, "ALTER SYSTEM SET login_trigger.login_function = '$name'; SELECT pg_reload_conf()");
		ok(wait_for($node, "SELECT current_setting('login_trigger.login_function')", $name), "login_function = $name: set");
		$offset = -s $node->logfile;
		($ret, $out, $err) = eval { connect_as($node, $app, '', "SELECT 'in'") };
		($ret, $out, $err) = (-1, '', $@) unless defined $ret;
		is($ret, 0, "login_function = $name ($what): the login proceeds") or diag($err);
		like($err, qr/WARNING:  login_trigger\.login_function .*\Q$name\E/,
			"login_function = $name: with a warning naming the setting");
		# A crashed backend makes the postmaster stop every process (and, with the test
		# framework's restart_after_crash = off, stop): give it time to notice.
		sleep(2) if $ret != 0;
		my $log = slurp_file($node->logfile, $offset);
		unlike($log, qr/terminated by signal/, "login_function = $name: no backend crashed");
		if ($log =~ /terminated by signal/ && !-f $node->data_dir . '/postmaster.pid')
		{
			$node->_update_pid(0);
			$node->start;
		}
		ok(wait_for($node, 'SELECT 1', '1'), "login_function = $name: the server is up");
		is(logins($node, $app), $ret == 0 ? '1' : '0', "login_function = $name: the login trigger fired with it");
	}
	admin($node, "ALTER SYSTEM RESET login_trigger.login_function; SELECT pg_reload_conf()");
	ok(wait_for($node, "SELECT current_setting('login_trigger.login_function')", ''), 'login_function reset');

	# A malformed logout_function must not cost the registered logout triggers.
	for my $name ('no.such()', 'public.f(')
	{
		my $app = 'logout_' . ++$n;
		admin($node, "ALTER SYSTEM SET login_trigger.logout_function = '$name'; SELECT pg_reload_conf()");
		ok(wait_for($node, "SELECT current_setting('login_trigger.logout_function')", $name), "logout_function = $name: set");
		$offset = -s $node->logfile;
		connect_as($node, $app);
		ok(wait_for($node, "SELECT count(*) FROM public.audit WHERE event = 'logout' AND app = '$app'", '1', 10),
			"logout_function = $name: the registered logout trigger still fired");
		like(slurp_file($node->logfile, $offset), qr/WARNING:  login_trigger\.logout_function .*\Q$name\E.*; it is ignored/,
			"logout_function = $name: the server log has a warning naming the setting");
	}
	admin($node, "ALTER SYSTEM RESET login_trigger.logout_function; SELECT pg_reload_conf()");
	$node->stop;
}
done_testing();
