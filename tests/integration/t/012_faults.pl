# Faults, each survived and checked (shared_preload_libraries):
# - pg_terminate_backend while a login function runs: the connection fails cleanly, there is no
#   logout (the session never logged in), the server stays up;
# - pg_terminate_backend while a logout function runs: PostgreSQL ignores the request once the
#   backend is exiting, so the logout finishes (and commits) or login_trigger.logout_timeout cuts
#   it off, whichever comes first; no crash either way; and pg_terminate_backend of an idle
#   session whose logout function is slow: logout_timeout cuts it off too;
# - a login function waiting for a lock another session holds: it waits and proceeds when the
#   lock is released; held past login_trigger.login_timeout, the connection is refused with the
#   timeout error and no lock is left behind (the plain sleeping variant is in 002_login.pl);
# - DROP FUNCTION … CASCADE of login, logout and DDL trigger functions while sessions that fired
#   them are connected: they stay connected, their logout neither fires the function nor errors;
# - ALTER EXTENSION login_trigger UPDATE (a no-op: it is at the default version) and DROP EXTENSION
#   login_trigger CASCADE while sessions are connected, then CREATE EXTENSION again;
# - DDL run by a ddl_command_end trigger: stopped eight levels deep with 54001;
# - a huge context: CREATE SCHEMA and DROP SCHEMA … CASCADE with thousands of objects, counted by
#   ddl_commands() and dropped_objects() exactly as PostgreSQL's native event triggers count them;
# - a fast shutdown with 50 sessions connected, each logout writing a row: a row per session,
#   within the logout timeout; then one with a few logout functions slower than the timeout:
#   each is logged as cut off and the shutdown still takes no longer than the timeout (plus slack).
# A login trigger on a hot standby is covered by 005_standby.pl.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin . '/..';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use POSIX qw(ceil);
use LoginTriggerTest;

my $shutdown_sessions = LoginTriggerTest::scaled(50, 100);
my $huge_objects = LoginTriggerTest::scaled(2000, 10000);

my $node = LoginTriggerTest::node('faults', conf => [
	'max_connections = ' . ($shutdown_sessions + 30),
	'max_locks_per_transaction = 256',    # DROP SCHEMA … CASCADE locks every object it drops
]);

# Login: b_fault sleeps or reads a table another session may lock, depending on application_name
# (set in the connection string, so login sees it). Logout: z_sleep sleeps for as many seconds as
# the application name says, after the audit row of "out" (one transaction: a timeout rolls both back).
$node->safe_psql('postgres', q{
	CREATE TABLE public.gate (id int);
	GRANT SELECT ON public.gate TO PUBLIC;
	CREATE FUNCTION public.login_fault() RETURNS void LANGUAGE plpgsql AS $$
	BEGIN
	  IF current_setting('application_name') = 'sleep_login' THEN
	    PERFORM pg_sleep(60);
	  ELSIF current_setting('application_name') LIKE 'lock_login%' THEN
	    PERFORM count(*) FROM public.gate;
	  END IF;
	END $$;
	CREATE FUNCTION public.logout_sleep() RETURNS void LANGUAGE plpgsql AS $$
	BEGIN
	  IF current_setting('application_name') LIKE 'sleep_logout_%' THEN
	    PERFORM pg_sleep(split_part(current_setting('application_name'), '_', 3)::float8);
	  END IF;
	END $$;
	SELECT login_trigger.create_trigger('a_audit', 'login', 'public.audit_event()');
	SELECT login_trigger.create_trigger('b_fault', 'login', 'public.login_fault()');
	SELECT login_trigger.create_trigger('out', 'logout', 'public.audit_event()');
	SELECT login_trigger.create_trigger('z_sleep', 'logout', 'public.logout_sleep()');
});

# A psql session kept open, with the given application_name at login.
sub session
{
	my ($app) = @_;
	local $ENV{PGAPPNAME} = $app;
	my $session = $node->background_psql('postgres', on_error_stop => 0);
	$session->set_query_timer_restart;
	$session->query_safe('SET client_min_messages = warning');
	return $session;
}

# The monitor polls without opening a connection (and firing login) per attempt.
my $monitor = session('monitor');

sub wait_until
{
	my ($sql, $what, $seconds) = @_;
	my $deadline = time + ($seconds // 30);
	while (time < $deadline)
	{
		return pass($what) if $monitor->query_safe("SELECT ($sql)::int") eq '1';
		usleep(50_000);
	}
	return fail("$what (not within " . ($seconds // 30) . ' s)');
}

sub gone
{
	my ($pid, $what, $seconds) = @_;
	return wait_until("NOT EXISTS (SELECT FROM pg_stat_activity WHERE pid = $pid)", $what, $seconds);
}

# A connection made in the background: its login can be watched, and made to wait or fail.
sub connect_async
{
	my ($connstr, $sql) = @_;
	my %conn = (out => '', err => '');
	$conn{h} = IPC::Run::start([ 'psql', '-XAtq', '-d', $connstr, '-c', $sql ],
		'>', \$conn{out}, '2>', \$conn{err}, IPC::Run::timeout(90));
	return \%conn;
}

sub finish_async
{
	my ($conn) = @_;
	eval { $conn->{h}->finish; 1 } or do { $conn->{h}->kill_kill; return (-1, '', "psql did not finish: $@") };
	my $ret = ($conn->{h}->results)[0];
	s/\s+$// for $conn->{out}, $conn->{err};
	return ($ret, $conn->{out}, $conn->{err});
}

sub postmaster_pid
{
	return (split /\n/, slurp_file($node->data_dir . '/postmaster.pid'))[0];
}
my $postmaster = postmaster_pid();

# The server survived a fault: no backend crashed (a crash makes the postmaster log the signal or
# exit code and reinitialize), the postmaster is the same process, new connections work.
sub survived
{
	my ($offset, $what) = @_;
	my $log = slurp_file($node->logfile, $offset);
	unlike($log,
		qr/terminated by signal|exited with exit code [2-9]|terminating any other active server processes|reinitializing|PANIC:|TRAP:/,
		"$what: no backend crashed, no restart");
	is(postmaster_pid(), $postmaster, "$what: the postmaster is the same process");
	is($node->safe_psql('postgres', 'SELECT 1'), '1', "$what: new connections work");
}

# Server log lines of one backend since $offset (log_line_prefix has [%p]), with their
# continuation lines (a multi-line CONTEXT).
sub log_of
{
	my ($offset, $pid) = @_;
	my ($mine, @lines) = (0);
	for (split /\n/, slurp_file($node->logfile, $offset))
	{
		$mine = /\[$pid\]/ if !/^\s/;
		push @lines, $_ if $mine;
	}
	return join("\n", @lines);
}

# A message of a severity that means something went wrong.
my $trouble = qr/\b(?:WARNING|ERROR|FATAL|PANIC):  /;

sub audit_count
{
	my ($where) = @_;
	return $monitor->query_safe("SELECT count(*) FROM public.audit WHERE $where");
}

my $connstr = $node->connstr('postgres');

###########################################################################################
# pg_terminate_backend while a login function runs.
{
	my $offset = -s $node->logfile;
	my $conn = connect_async("$connstr application_name=sleep_login", 'SELECT 1');
	wait_until("EXISTS (SELECT FROM pg_stat_activity WHERE application_name = 'sleep_login' AND wait_event = 'PgSleep')",
		'terminate in login: the login function is running');
	my $pid = $monitor->query_safe("SELECT pid FROM pg_stat_activity WHERE application_name = 'sleep_login'");
	my $started = time;
	is($monitor->query_safe("SELECT pg_terminate_backend($pid)"), 't', 'terminate in login: pg_terminate_backend');
	my ($ret, $out, $err) = finish_async($conn);
	my $seconds = time - $started;
	isnt($ret, 0, 'terminate in login: the connection fails');
	like($err, qr/FATAL:  terminating connection due to administrator command/,
		'terminate in login: the client is told why');
	cmp_ok($seconds, '<', 15, 'terminate in login: at once, not when the function would have finished');
	LoginTriggerTest::figure('faults', 'terminate_in_login_seconds', sprintf('%.2f', $seconds));
	gone($pid, 'terminate in login: the backend is gone');
	my $log = log_of($offset, $pid);
	like($log, qr/57P01 .*FATAL:  terminating connection due to administrator command/,
		'terminate in login: logged with its SQLSTATE');
	like($log, qr/login_trigger trigger "b_fault" \(login\)/, 'terminate in login: the log names the running trigger');
	# a_audit inserted its row before b_fault slept: the login transaction is rolled back, and a
	# session that never finished logging in has no logout (docs/events.md, docs/design.md).
	is(audit_count("pid = $pid"), '0', 'terminate in login: no login row committed and no logout fired');
	survived($offset, 'terminate in login');
}

###########################################################################################
# pg_terminate_backend while a logout function runs. PostgreSQL's SIGTERM handler leaves an
# exiting backend alone ("don't joggle the elbow of proc_exit"), so only logout_timeout bounds it.
{
	my $offset = -s $node->logfile;
	# The logout function (3 s) finishes within logout_timeout (5 s): the termination changes nothing.
	my $s = session('sleep_logout_3');
	my $pid = $s->query_safe('SELECT pg_backend_pid()');
	$s->quit;
	wait_until("EXISTS (SELECT FROM pg_stat_activity WHERE pid = $pid AND wait_event = 'PgSleep')",
		'terminate in logout: the logout function is running');
	my $started = time;
	is($monitor->query_safe("SELECT pg_terminate_backend($pid)"), 't', 'terminate in logout: pg_terminate_backend');
	gone($pid, 'terminate in logout: the backend exits');
	my $seconds = time - $started;
	cmp_ok($seconds, '<', 5 + 10, 'terminate in logout: within logout_timeout');
	LoginTriggerTest::figure('faults', 'terminate_in_logout_exit_seconds', sprintf('%.2f', $seconds));
	is(audit_count("event = 'logout' AND pid = $pid AND reason = 'client_exit'"), '1',
		'terminate in logout: the logout triggers finished and committed (reason client_exit)');
	unlike(log_of($offset, $pid), $trouble, 'terminate in logout: nothing went wrong in that backend');

	# The logout function (60 s) outlives logout_timeout (2 s, set by the session): cut off there.
	$s = session('sleep_logout_60');
	$pid = $s->query_safe("SET login_trigger.logout_timeout = '2s'; SELECT pg_backend_pid()");
	$s->quit;
	wait_until("EXISTS (SELECT FROM pg_stat_activity WHERE pid = $pid AND wait_event = 'PgSleep')",
		'terminate in slow logout: the logout function is running');
	$started = time;
	$monitor->query_safe("SELECT pg_terminate_backend($pid)");
	gone($pid, 'terminate in slow logout: the backend exits');
	$seconds = time - $started;
	cmp_ok($seconds, '<', 2 + 10, 'terminate in slow logout: within logout_timeout (2 s) and slack');
	LoginTriggerTest::figure('faults', 'terminate_in_slow_logout_exit_seconds', sprintf('%.2f', $seconds));
	my $log = log_of($offset, $pid);
	like($log, qr/57014 .*FATAL:  logout triggers did not finish in time/,
		'terminate in slow logout: the log says the logout timeout cut it off');
	like($log, qr/login_trigger.logout_timeout is 2000 ms/, 'terminate in slow logout: with the limit');
	is(audit_count("event = 'logout' AND pid = $pid"), '0', 'terminate in slow logout: its work is rolled back');

	# pg_terminate_backend of an idle session whose logout function (20 s) outlives logout_timeout
	# (2 s): the termination starts the logout, the timeout must cut it off as above.
	$s = session('sleep_logout_20');
	$pid = $s->query_safe("SET login_trigger.logout_timeout = '2s'; SELECT pg_backend_pid()");
	$started = time;
	$monitor->query_safe("SELECT pg_terminate_backend($pid)");
	wait_until("EXISTS (SELECT FROM pg_stat_activity WHERE pid = $pid AND wait_event = 'PgSleep')
			OR NOT EXISTS (SELECT FROM pg_stat_activity WHERE pid = $pid)",
		'terminate idle, slow logout: the logout function is running');
	gone($pid, 'terminate idle, slow logout: the backend exits within logout_timeout (2 s) and slack', 2 + 10);
	$seconds = time - $started;
	LoginTriggerTest::figure('faults', 'terminate_idle_slow_logout_exit_seconds', sprintf('%.2f', $seconds));
	like(log_of($offset, $pid), qr/FATAL:  logout triggers did not finish in time/,
		'terminate idle, slow logout: the log says the logout timeout cut it off');
	eval { $s->quit };
	survived($offset, 'terminate in logout');
}

###########################################################################################
# A login function waiting for a lock.
{
	my $offset = -s $node->logfile;
	my $holder = session('lock_holder');
	my $holder_pid = $holder->query_safe('SELECT pg_backend_pid()');
	$holder->query_safe('BEGIN; LOCK TABLE public.gate IN ACCESS EXCLUSIVE MODE');
	my $waiting_for_gate = "EXISTS (SELECT FROM pg_locks l JOIN pg_stat_activity a USING (pid)
		WHERE a.application_name = 'lock_login' AND l.relation = 'public.gate'::regclass AND NOT l.granted)";

	# Released in time: the login waits, then proceeds.
	my $started = time;
	my $conn = connect_async("$connstr application_name=lock_login", "SELECT 'logged in'");
	wait_until($waiting_for_gate, 'lock in login: the login waits for the lock');
	usleep(500_000);
	is($monitor->query_safe("SELECT $waiting_for_gate"), 't', 'lock in login: still waiting half a second later');
	$holder->query_safe('COMMIT');
	my ($ret, $out, $err) = finish_async($conn);
	is("$ret|$out", "0|logged in", 'lock in login: the login proceeds once the lock is released');
	LoginTriggerTest::figure('faults', 'lock_wait_login_seconds', sprintf('%.2f', time - $started));
	is(audit_count("event = 'login' AND app = 'lock_login'"), '1', 'lock in login: the login committed');

	# Held past login_timeout: refused with the timeout error.
	$holder->query_safe('BEGIN; LOCK TABLE public.gate IN ACCESS EXCLUSIVE MODE');
	$started = time;
	($ret, $out, $err) = LoginTriggerTest::psql_at($node,
		"$connstr application_name=lock_login_timeout options='-c login_trigger.login_timeout=2s'", 'SELECT 1');
	my $seconds = time - $started;
	isnt($ret, 0, 'lock past login_timeout: the connection is refused');
	like($err, qr/FATAL:  login triggers did not finish in time/, 'lock past login_timeout: with the timeout error');
	cmp_ok($seconds, '>=', 1.5, 'lock past login_timeout: after waiting');
	cmp_ok($seconds, '<', 2 + 10, 'lock past login_timeout: refused at the limit');
	LoginTriggerTest::figure('faults', 'lock_timeout_refusal_seconds', sprintf('%.2f', $seconds));
	ok($node->wait_for_log(qr/57014 lock_login_timeout FATAL:  login triggers did not finish in time/, $offset),
		'lock past login_timeout: logged with SQLSTATE 57014');
	like(slurp_file($node->logfile, $offset), qr/DETAIL:  login_trigger.login_timeout is 2000 ms/,
		'lock past login_timeout: the log has the limit');
	wait_until("NOT EXISTS (SELECT FROM pg_stat_activity WHERE application_name = 'lock_login_timeout')",
		'lock past login_timeout: the refused backend is gone');
	is($monitor->query_safe("SELECT string_agg(pid::text || ':' || mode || ':' || granted, ',') FROM pg_locks
			WHERE relation = 'public.gate'::regclass"),
		"$holder_pid:AccessExclusiveLock:true", 'lock past login_timeout: only the holder has a lock on the table');
	$holder->query_safe('COMMIT');
	is($monitor->query_safe("SELECT count(*) FROM pg_locks WHERE relation = 'public.gate'::regclass"), '0',
		'lock past login_timeout: no lock left behind');
	is(audit_count("app = 'lock_login_timeout'"), '0', 'lock past login_timeout: nothing the login wrote is committed');
	LoginTriggerTest::connect_ok($node, "$connstr application_name=lock_login_after",
		'lock past login_timeout: the next login reads the table at once');
	$holder->quit;
	survived($offset, 'lock in login');
}

###########################################################################################
# DROP FUNCTION … CASCADE of registered functions while sessions that fired them are connected.
{
	my $offset = -s $node->logfile;
	$node->safe_psql('postgres', q{
		CREATE TABLE public.doomed_log (event text, pid int);
		GRANT INSERT ON public.doomed_log TO PUBLIC;
		CREATE FUNCTION public.doomed() RETURNS void LANGUAGE sql AS $$
		  INSERT INTO public.doomed_log SELECT c->>'event', (c->>'backend_pid')::int FROM login_trigger.context() c
		$$;
		SELECT login_trigger.create_trigger('doomed_in', 'login', 'public.doomed()');
		SELECT login_trigger.create_trigger('doomed_out', 'logout', 'public.doomed()');
		SELECT login_trigger.create_trigger('doomed_ddl', 'ddl_command_end', 'public.doomed()');
	});
	my $s1 = session('cascade_idle');
	my $s2 = session('cascade_in_xact');
	my $pid1 = $s1->query_safe('SELECT pg_backend_pid()');
	my $pid2 = $s2->query_safe('SELECT pg_backend_pid()');
	$s2->query_safe('BEGIN; SELECT count(*) FROM public.gate');
	is($monitor->query_safe("SELECT count(*) FROM public.doomed_log WHERE event = 'login' AND pid IN ($pid1, $pid2)"),
		'2', 'drop function: the connected sessions fired it at login');
	my ($ret, $out, $err) = $node->psql('postgres', 'DROP FUNCTION public.doomed() CASCADE');
	is($ret, 0, 'drop function: DROP FUNCTION … CASCADE succeeds although it is a ddl_command_end trigger of itself');
	my $fired_before = $monitor->query_safe('SELECT count(*) FROM public.doomed_log');
	is($monitor->query_safe("SELECT count(*) FROM login_trigger.triggers WHERE name LIKE 'doomed%'"), '0',
		'drop function: the registrations are gone');
	is($monitor->query_safe("SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'doomed%'"), '0',
		'drop function: their dependency carriers are gone');
	is($s1->query_safe("SELECT 'still here'"), 'still here', 'drop function: an idle session stays connected');
	$s2->query_safe('COMMIT');
	is($s2->query_safe("SELECT 'still here'"), 'still here', 'drop function: a session in a transaction stays connected');
	$s1->query_safe('CREATE TABLE public.after_cascade ()');
	pass('drop function: DDL in a session that had the DDL trigger cached works');
	$s1->quit;
	$s2->quit;
	for my $pid ($pid1, $pid2)
	{
		wait_until("EXISTS (SELECT FROM public.audit WHERE event = 'logout' AND pid = $pid)",
			"drop function: the logout of session $pid ran (its other trigger wrote)");
		unlike(log_of($offset, $pid), $trouble, "drop function: no error in session $pid");
	}
	LoginTriggerTest::connect_ok($node, "$connstr application_name=cascade_new", 'drop function: a new login works');
	is($monitor->query_safe('SELECT count(*) FROM public.doomed_log'), $fired_before,
		'drop function: neither the logouts nor the new login fired the dropped function');
	survived($offset, 'drop function');
}

###########################################################################################
# DDL in a ddl_command_end trigger: recursion stops eight levels deep with 54001 (docs/ddl.md).
{
	my $offset = -s $node->logfile;
	$node->safe_psql('postgres', q{
		CREATE FUNCTION public.ddl_again() RETURNS event_trigger LANGUAGE plpgsql AS $$
		BEGIN
		  RAISE NOTICE 'ddl_again at %', TG_EVENT;
		  EXECUTE format('CREATE TABLE public.%I ()', 'loop_' || md5(clock_timestamp()::text || random()::text));
		END $$;
		SELECT login_trigger.create_trigger('again', 'ddl_command_end', 'public.ddl_again()', ARRAY['CREATE TABLE']);
	});
	my ($ret, $out, $err) = $node->psql('postgres', "CREATE TABLE public.recursion_start (); SELECT 'alive'",
		on_error_stop => 0, extra_params => [ '-v', 'VERBOSITY=verbose' ]);
	like($err, qr/ERROR:  54001: DDL triggers nested too deeply/, 'recursion: refused with 54001');
	like($err, qr/CREATE TABLE ddl_command_end fired DDL triggers 8 levels deep/, 'recursion: the detail says how deep');
	my $levels = () = $err =~ /NOTICE:  (?:00000: )?ddl_again at ddl_command_end/g;
	is($levels, 8, 'recursion: the trigger ran eight levels deep before the ninth was refused');
	LoginTriggerTest::figure('faults', 'recursion_levels', $levels);
	is($out, 'alive', 'recursion: the session goes on');
	is($monitor->query_safe("SELECT count(*) FROM pg_class WHERE relname = 'recursion_start' OR relname LIKE 'loop\\_%'"),
		'0', 'recursion: every level was rolled back');
	ok($node->wait_for_log(qr/54001 .*ERROR:  DDL triggers nested too deeply/, $offset), 'recursion: logged with 54001');
	$node->safe_psql('postgres', "SELECT login_trigger.drop_trigger('again')");
	$node->safe_psql('postgres', 'CREATE TABLE public.recursion_start (); DROP TABLE public.recursion_start');
	pass('recursion: DDL works again once the trigger is gone');
	survived($offset, 'recursion');
}

###########################################################################################
# A huge context: one CREATE SCHEMA with thousands of elements and its DROP SCHEMA … CASCADE,
# counted by our triggers and by native event triggers (the reference) into tables.
{
	my $offset = -s $node->logfile;
	# Each group makes a table (table, row type, array type), a view (view, row type, array type,
	# rule) and a sequence: 8 dropped objects (before 14 sequences have a row type too).
	my $groups = ceil(($huge_objects - 1) / 8);
	$node->safe_psql('postgres', q{
		CREATE TABLE public.ddl_counts (source text, event text, tag text, n int, originals int);
		CREATE FUNCTION public.count_ddl() RETURNS event_trigger LANGUAGE plpgsql AS $$
		BEGIN
		  IF TG_EVENT = 'sql_drop' THEN
		    INSERT INTO public.ddl_counts SELECT 'ours', TG_EVENT, TG_TAG, count(*), count(*) FILTER (WHERE original)
		      FROM login_trigger.dropped_objects();
		  ELSE
		    INSERT INTO public.ddl_counts SELECT 'ours', TG_EVENT, TG_TAG, count(*), NULL FROM login_trigger.ddl_commands();
		  END IF;
		END $$;
		CREATE FUNCTION public.native_count_end() RETURNS event_trigger LANGUAGE plpgsql AS $$
		BEGIN
		  INSERT INTO public.ddl_counts SELECT 'native', TG_EVENT, TG_TAG, count(*), NULL FROM pg_event_trigger_ddl_commands();
		END $$;
		CREATE FUNCTION public.native_count_drop() RETURNS event_trigger LANGUAGE plpgsql AS $$
		BEGIN
		  INSERT INTO public.ddl_counts SELECT 'native', TG_EVENT, TG_TAG, count(*), count(*) FILTER (WHERE original)
		    FROM pg_event_trigger_dropped_objects();
		END $$;
	});
	$monitor->query_safe("SELECT 'CREATE SCHEMA huge ' || string_agg(format(
			'CREATE TABLE t%1\$s (a int) CREATE VIEW v%1\$s AS SELECT 1 AS x CREATE SEQUENCE s%1\$s', g), ' ') AS huge_create
		FROM generate_series(1, $groups) g \\gset");

	# Without any trigger first, for comparison.
	my $started = time;
	$monitor->query_safe(':huge_create');
	my $create_plain = time - $started;
	$started = time;
	$monitor->query_safe('DROP SCHEMA huge CASCADE');
	my $drop_plain = time - $started;

	$node->safe_psql('postgres', q{
		SELECT login_trigger.create_trigger('count_end', 'ddl_command_end', 'public.count_ddl()', ARRAY['CREATE SCHEMA', 'DROP SCHEMA']);
		SELECT login_trigger.create_trigger('count_drop', 'sql_drop', 'public.count_ddl()', ARRAY['DROP SCHEMA']);
		CREATE EVENT TRIGGER native_count_end ON ddl_command_end WHEN TAG IN ('CREATE SCHEMA', 'DROP SCHEMA')
		  EXECUTE PROCEDURE public.native_count_end();
		CREATE EVENT TRIGGER native_count_drop ON sql_drop WHEN TAG IN ('DROP SCHEMA')
		  EXECUTE PROCEDURE public.native_count_drop();
	});
	$started = time;
	$monitor->query_safe(':huge_create');
	my $create_seconds = time - $started;
	my $relations = $monitor->query_safe("SELECT count(*) FROM pg_class WHERE relnamespace = 'huge'::regnamespace");
	$started = time;
	my (undef, $failed) = $monitor->query('DROP SCHEMA huge CASCADE');
	my $drop_seconds = time - $started;
	is($failed, 0, 'huge drop: DROP SCHEMA … CASCADE succeeds');
	my $counts = sub {
		my ($source, $event, $tag) = @_;
		return $monitor->query_safe("SELECT coalesce(string_agg(n || '/' || coalesce(originals::text, '-'), ','), 'none')
			FROM public.ddl_counts WHERE source = '$source' AND event = '$event' AND tag = '$tag'");
	};
	my $native_created = $counts->('native', 'ddl_command_end', 'CREATE SCHEMA');
	is($native_created, (1 + 3 * $groups) . '/-', 'huge create: native counts the schema and every element');
	is($counts->('ours', 'ddl_command_end', 'CREATE SCHEMA'), $native_created,
		'huge create: ddl_commands() has exactly as many rows as native');
	my $native_dropped = $counts->('native', 'sql_drop', 'DROP SCHEMA');
	my ($dropped) = $native_dropped =~ /^(\d+)\//;
	$dropped //= 0;
	cmp_ok($dropped, '>=', $huge_objects, "huge drop: native sees at least $huge_objects dropped objects");
	is($counts->('ours', 'sql_drop', 'DROP SCHEMA'), $native_dropped,
		'huge drop: dropped_objects() has exactly as many rows as native, one of them original');
	is($counts->('ours', 'ddl_command_end', 'DROP SCHEMA'), '0/-', 'huge drop: ddl_commands() at its end is empty');
	is($counts->('native', 'ddl_command_end', 'DROP SCHEMA'), '0/-', 'huge drop: as native');
	cmp_ok($drop_seconds, '<', LoginTriggerTest::scaled(30, 120), 'huge drop: within a bounded time');
	cmp_ok($create_seconds, '<', LoginTriggerTest::scaled(30, 120), 'huge create: within a bounded time');
	LoginTriggerTest::figure('faults', 'huge_relations', $relations);
	LoginTriggerTest::figure('faults', 'huge_created_objects', (split m{/}, $native_created)[0]);
	LoginTriggerTest::figure('faults', 'huge_dropped_objects', $dropped);
	LoginTriggerTest::figure('faults', 'huge_create_seconds', sprintf('%.2f', $create_seconds));
	LoginTriggerTest::figure('faults', 'huge_create_seconds_without_triggers', sprintf('%.2f', $create_plain));
	LoginTriggerTest::figure('faults', 'huge_drop_seconds', sprintf('%.2f', $drop_seconds));
	LoginTriggerTest::figure('faults', 'huge_drop_seconds_without_triggers', sprintf('%.2f', $drop_plain));
	$node->safe_psql('postgres', q{
		DROP EVENT TRIGGER native_count_end; DROP EVENT TRIGGER native_count_drop;
		SELECT login_trigger.drop_trigger('count_end'); SELECT login_trigger.drop_trigger('count_drop');
	});
	$monitor->query_safe('\unset huge_create');
	survived($offset, 'huge context');
}

###########################################################################################
# ALTER EXTENSION … UPDATE and DROP EXTENSION … CASCADE while sessions are connected, then
# CREATE EXTENSION again.
{
	my $offset = -s $node->logfile;
	$node->safe_psql('postgres', q{
		TRUNCATE public.ddl_counts;
		SELECT login_trigger.create_trigger('ext_end', 'ddl_command_end', 'public.count_ddl()',
		  ARRAY['ALTER EXTENSION', 'DROP EXTENSION', 'CREATE TABLE']);
		SELECT login_trigger.create_trigger('ext_drop', 'sql_drop', 'public.count_ddl()', ARRAY['DROP EXTENSION']);
	});
	my $e1 = session('ext_dropped_under');
	my $e2 = session('ext_recreated_under');
	my $pid1 = $e1->query_safe('SELECT pg_backend_pid()');
	my $pid2 = $e2->query_safe('SELECT pg_backend_pid()');
	my $registered = $monitor->query_safe('SELECT count(*) FROM login_trigger.triggers');

	# The extension is at the default version, so UPDATE has no path to follow: it says so and
	# changes nothing (t/021_releases.pl updates from each earlier release).
	my $version = $monitor->query_safe("SELECT extversion FROM pg_extension WHERE extname = 'login_trigger'");
	is($version, $monitor->query_safe("SELECT default_version FROM pg_available_extensions WHERE name = 'login_trigger'"),
		'alter extension: the extension is at the default version');
	my ($ret, $out, $err) = $node->psql('postgres', 'ALTER EXTENSION login_trigger UPDATE');
	is($ret, 0, 'alter extension: ALTER EXTENSION login_trigger UPDATE succeeds');
	like($err, qr/NOTICE:  version "\Q$version\E" of extension "login_trigger" is already installed/,
		'alter extension: a notice that it is already at that version');
	is($monitor->query_safe('SELECT count(*) FROM login_trigger.triggers'), $registered, 'alter extension: the registry is intact');
	is($monitor->query_safe("SELECT string_agg(source || ' ' || event || ' ' || n, ',') FROM public.ddl_counts WHERE tag = 'ALTER EXTENSION'"),
		'ours ddl_command_end 0', 'alter extension: DDL triggers fired for it');
	is($e1->query_safe("SELECT 'still here'"), 'still here', 'alter extension: a connected session works');

	# DDL triggers that use the extension's own functions are registered while it is dropped.
	($ret, $out, $err) = $node->psql('postgres', 'DROP EXTENSION login_trigger CASCADE');
	is($ret, 0, 'drop extension: DROP EXTENSION login_trigger CASCADE succeeds with DDL triggers registered')
	  or diag("DROP EXTENSION failed: $err");
	if ($ret != 0)
	{
		# Go on with the rest: without DDL triggers the drop must work.
		$node->safe_psql('postgres', "SELECT login_trigger.drop_trigger('ext_end'); SELECT login_trigger.drop_trigger('ext_drop')");
		($ret, $out, $err) = $node->psql('postgres', 'DROP EXTENSION login_trigger CASCADE');
		is($ret, 0, 'drop extension: DROP EXTENSION login_trigger CASCADE succeeds without DDL triggers') or diag($err);
	}
	# The schema stays: CREATE EXTENSION created it for the control file's schema, it is no member.
	is($monitor->query_safe("SELECT count(*) FROM pg_extension WHERE extname = 'login_trigger'")
		  . $monitor->query_safe("SELECT to_regclass('login_trigger.event_trigger') IS NULL"), '0t',
		'drop extension: the extension and its registry are gone');
	is($e1->query_safe("SELECT 'still here'"), 'still here', 'drop extension: a connected session works');
	$e1->query_safe('CREATE TABLE public.after_drop_extension (); DROP TABLE public.after_drop_extension');
	pass('drop extension: DDL in a session that had the registry cached works');
	$e1->quit;
	gone($pid1, 'drop extension: the session ends');
	unlike(log_of($offset, $pid1), $trouble, 'drop extension: its logout did not error');
	($ret, $out, $err) = LoginTriggerTest::psql_at($node, "$connstr application_name=ext_none", 'SELECT 1');
	is("$ret|$out|$err", '0|1|', 'drop extension: a new connection works, without any warning');

	$node->safe_psql('postgres', q{
		CREATE EXTENSION login_trigger;
		SELECT login_trigger.create_trigger('a_audit', 'login', 'public.audit_event()');
		SELECT login_trigger.create_trigger('out', 'logout', 'public.audit_event()');
		SELECT login_trigger.create_trigger('z_sleep', 'logout', 'public.logout_sleep()');
		SELECT login_trigger.create_trigger('ext_end', 'ddl_command_end', 'public.count_ddl()', ARRAY['CREATE TABLE']);
	});
	pass('drop extension: CREATE EXTENSION login_trigger again');
	LoginTriggerTest::connect_ok($node, "$connstr application_name=ext_again", 'recreated: a new connection works');
	is(audit_count("event = 'login' AND app = 'ext_again'"), '1', 'recreated: login triggers fire again');
	$monitor->query_safe('TRUNCATE public.ddl_counts');
	$e2->query_safe('CREATE TABLE public.after_recreate ()');
	is($monitor->query_safe("SELECT count(*) FROM public.ddl_counts WHERE tag = 'CREATE TABLE'"), '1',
		'recreated: DDL triggers fire again, also in a session connected all along');
	$e2->quit;
	wait_until("EXISTS (SELECT FROM public.audit WHERE event = 'logout' AND pid = $pid2)",
		'recreated: the logout of a session connected all along fires the new logout trigger');
	unlike(log_of($offset, $pid2), $trouble, 'recreated: no error in that session');
	survived($offset, 'extension');
}

###########################################################################################
# Fast shutdown with sessions connected, every logout writing an audit row: first many sessions
# with a quick logout, then a few whose logout function is slower than logout_timeout among
# quick ones. Every logout either commits its row (reason shutdown) or is logged as cut off by
# the timeout, and the shutdown takes at most the logout timeout (plus slack), never the slow
# function's time.
my $logout_timeout = 3;
$node->safe_psql('postgres',
	"ALTER SYSTEM SET login_trigger.logout_timeout = '${logout_timeout}s'; SELECT pg_reload_conf()");
ok($node->poll_query_until('postgres', "SELECT current_setting('login_trigger.logout_timeout') = '${logout_timeout}s'"),
	'shutdown: new sessions have the logout timeout');

sub fast_shutdown
{
	my ($label, $quick, $slow) = @_;
	my $total = $quick + $slow;
	my @sessions;
	push @sessions, session("sleep_logout_60_${label}_$_") for 1 .. $slow;
	push @sessions, session(sprintf('%s_%03d', $label, $_)) for 1 .. $quick;
	is($monitor->query_safe("SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE '${label}\\_%'
			OR application_name LIKE 'sleep\\_logout\\_60\\_${label}\\_%'"), $total,
		"$label: $total sessions connected");
	my $offset = -s $node->logfile;
	my $started = time;
	my $stopped;
	{
		# pg_ctl gives up (and the stop is forced) well before a slow function would end.
		local $ENV{PGCTLTIMEOUT} = $logout_timeout + 20;
		$stopped = $node->stop('fast', fail_ok => 1);
	}
	my $seconds = time - $started;
	ok($stopped, "$label: pg_ctl stop -m fast succeeds");
	$node->stop('immediate') unless $stopped;
	$node->start;
	$postmaster = postmaster_pid();
	$monitor = session("monitor_after_$label");

	my $log = slurp_file($node->logfile, $offset);
	my $cut_off = () = $log =~ /FATAL:  logout triggers did not finish in time/g;
	my $found = audit_count("event = 'logout' AND reason = 'shutdown' AND app LIKE '${label}\\_%'");
	is($found, $quick, "$label: every quick logout wrote its row, with reason shutdown");
	is($cut_off, $slow, "$label: each slow logout is logged as cut off by the logout timeout");
	is($found + $cut_off, $total, "$label: every logout fired or is logged");
	if ($slow)
	{
		is(audit_count("event = 'logout' AND app LIKE 'sleep\\_logout\\_60\\_${label}\\_%'"), '0',
			"$label: the slow logouts were rolled back");
		cmp_ok($seconds, '>=', $logout_timeout - 0.5, "$label: waited for the slow logouts up to the timeout");
	}
	cmp_ok($seconds, '<', $logout_timeout + 12, "$label: the shutdown took at most logout_timeout and slack");
	like($log, qr/database system is shut down/, "$label: completed");
	unlike($log, qr/terminated by signal|exited with exit code [2-9]|PANIC:|TRAP:/, "$label: no backend crashed");
	LoginTriggerTest::figure('faults', "${label}_sessions", $total);
	LoginTriggerTest::figure('faults', "${label}_slow_sessions", $slow);
	LoginTriggerTest::figure('faults', "${label}_logout_timeout_seconds", $logout_timeout);
	LoginTriggerTest::figure('faults', "${label}_rows_expected", $quick);
	LoginTriggerTest::figure('faults', "${label}_rows_found", $found);
	LoginTriggerTest::figure('faults', "${label}_logouts_cut_off", $cut_off);
	LoginTriggerTest::figure('faults', "${label}_seconds", sprintf('%.2f', $seconds));
	eval { $_->quit } for @sessions;
}

fast_shutdown('shutdown', $shutdown_sessions, 0);
fast_shutdown('slow_shutdown', 5, 5);

$monitor->quit;
$node->stop;
done_testing();
