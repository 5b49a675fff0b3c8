# Per-trigger statistics (login_trigger.trigger_stats, stats_info, reset_trigger_stats): errors
# and refusals counted as they happen, a timeout, calls against PostgreSQL's own count of
# function calls (pg_stat_user_functions), kept across a clean restart and lost on a crash as
# documented, reset of one trigger and of all, the bounded table evicting the least recently
# used entry, privileges, and the clear error without shared_preload_libraries. The connection
# storm of t/010 checks calls against committed audit rows under load.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin . '/..';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use LoginTriggerTest;

my $node = LoginTriggerTest::node('trigger_stats',
	conf => [ 'login_trigger.max_trigger_stats = 10', "track_functions = 'all'", 'restart_after_crash = on' ]);

sub stats
{
	my ($where) = @_;
	return $node->safe_psql('postgres', qq{
		SELECT concat_ws('|', dbname, trigger_name, event, calls, errors, refusals, timeouts, last_error)
		  FROM login_trigger.trigger_stats WHERE $where ORDER BY dbname, trigger_name, event});
}

# A DDL trigger that fails every third call (a sequence counts calls whatever rolls back).
$node->safe_psql('postgres', q{
	CREATE SEQUENCE public.third_seq;
	CREATE FUNCTION public.every_third() RETURNS event_trigger LANGUAGE plpgsql AS $$
	BEGIN
	  IF nextval('public.third_seq') % 3 = 0 THEN
	    RAISE EXCEPTION USING ERRCODE = 'LT001', MESSAGE = 'third call';
	  END IF;
	END $$;
	SELECT login_trigger.create_trigger('every_third', 'ddl_command_end', 'public.every_third()');
});
my $ddl = join('', map { "CREATE TABLE public.t$_ ();\n" } 1 .. 30);
my ($ret, $stdout, $stderr) = $node->psql('postgres', $ddl, on_error_stop => 0);
my $failed = () = $stderr =~ /ERROR:  third call/g;
is($failed, 10, 'every third of 30 DDL statements fails in the trigger');
is(stats(q{trigger_name = 'every_third'}), 'postgres|every_third|ddl_command_end|30|10|0|0|LT001: third call',
	'30 calls, 10 errors with the last SQLSTATE and message, no refusal');
my ($total, $min, $max, $mean) = split /\|/, $node->safe_psql('postgres',
	q{SELECT total_time, min_time, max_time, mean_time FROM login_trigger.trigger_stats WHERE trigger_name = 'every_third'});
ok($min > 0 && $min <= $mean && $mean <= $max && abs($mean * 30 - $total) < 1e-6 * $total + 1e-9,
	"times are consistent (min $min <= mean $mean <= max $max, mean x calls = total $total)");

# PostgreSQL counts a function call that returns (not one that raises), as for native event
# triggers: the 20 that succeeded.
ok($node->poll_query_until('postgres',
		q{SELECT calls FROM pg_stat_user_functions WHERE funcname = 'every_third'}, '20'),
	'pg_stat_user_functions counts the 20 calls that returned');
$node->safe_psql('postgres', q{SELECT login_trigger.drop_trigger('every_third')});

# A login trigger that refuses one application, and one that outlasts the login timeout.
$node->safe_psql('postgres', q{
	CREATE FUNCTION public.gatekeeper() RETURNS event_trigger LANGUAGE plpgsql AS $$
	BEGIN
	  IF current_setting('application_name') = 'refuse_me' THEN
	    RAISE EXCEPTION USING ERRCODE = 'LT002', MESSAGE = 'not you';
	  ELSIF current_setting('application_name') = 'slow' THEN
	    PERFORM pg_sleep(30);
	  END IF;
	END $$;
	SELECT login_trigger.create_trigger('gatekeeper', 'login', 'public.gatekeeper()');
	ALTER SYSTEM SET login_trigger.login_timeout = '1s';
	SELECT pg_reload_conf();
});
$node->safe_psql('postgres', q{SELECT login_trigger.reset_trigger_stats('gatekeeper')});
my $connstr = $node->connstr('postgres');
for my $attempt (1 .. 3)
{
	my ($r) = LoginTriggerTest::psql_at($node, "$connstr application_name=refuse_me", 'SELECT 1');
	isnt($r, 0, "refused connection $attempt");
}
my ($r) = LoginTriggerTest::psql_at($node, "$connstr application_name=slow", 'SELECT 1');
isnt($r, 0, 'the slow login is refused by the timeout');
# The calls of this node's other sessions (each psql) count too; errors, refusals and timeouts
# are exactly the failed attempts.
my ($calls, $errors, $refusals, $timeouts, $last_error) = split /\|/, $node->safe_psql('postgres',
	q{SELECT concat_ws('|', calls, errors, refusals, timeouts, last_error) FROM login_trigger.trigger_stats WHERE trigger_name = 'gatekeeper'});
is("$errors|$refusals|$timeouts", '4|4|1', 'three refusals by error and one by the timeout: 4 errors, 4 refusals, 1 timeout');
is($last_error, '57014: login triggers did not finish in time', 'the last error is the timeout');
cmp_ok($calls, '>=', 4, 'every attempt is a call');
$node->safe_psql('postgres', q{ALTER SYSTEM RESET login_trigger.login_timeout; SELECT pg_reload_conf();});

# A FATAL inside nested calls counts each: a logout trigger cut off by logout_timeout while a
# DDL trigger its own DDL fired sleeps. The logout call is a timeout; the DDL call an error.
$node->safe_psql('postgres', q{
	CREATE FUNCTION public.slow_out() RETURNS event_trigger LANGUAGE plpgsql AS $$
	BEGIN IF current_setting('application_name') = 'slow_out' THEN CREATE TEMP TABLE nested_work (); END IF; END $$;
	CREATE FUNCTION public.nested_sleep() RETURNS event_trigger LANGUAGE plpgsql AS $$
	BEGIN IF current_setting('application_name') = 'slow_out' THEN PERFORM pg_sleep(30); END IF; END $$;
	SELECT login_trigger.create_trigger('slow_out', 'logout', 'public.slow_out()');
	SELECT login_trigger.create_trigger('nested_sleep', 'ddl_command_end', 'public.nested_sleep()');
	ALTER SYSTEM SET login_trigger.logout_timeout = '1s';
	SELECT pg_reload_conf();
});
$node->poll_query_until('postgres', q{SELECT current_setting('login_trigger.logout_timeout') = '1s'});
$node->safe_psql('postgres', q{SELECT login_trigger.reset_trigger_stats('slow_out'), login_trigger.reset_trigger_stats('nested_sleep')});
LoginTriggerTest::psql_at($node, "$connstr application_name=slow_out", 'SELECT 1');
ok($node->poll_query_until('postgres', q{SELECT count(*) = 0 FROM pg_stat_activity WHERE application_name = 'slow_out'}),
	'the slow logout has ended');
# (Every session's logout calls slow_out; only the slow one fails.)
is($node->safe_psql('postgres', q{
	SELECT string_agg(concat_ws('|', trigger_name, CASE WHEN trigger_name = 'nested_sleep' THEN calls END, errors, timeouts, last_error), E'\n' ORDER BY trigger_name)
	  FROM login_trigger.trigger_stats WHERE trigger_name IN ('slow_out', 'nested_sleep')}),
	"nested_sleep|1|1|0|57014: logout triggers did not finish in time\n"
	  . "slow_out|1|1|57014: logout triggers did not finish in time",
	'both calls are counted: the logout trigger with the timeout, the nested DDL trigger with the error');
$node->safe_psql('postgres', q{
	SELECT login_trigger.drop_trigger('slow_out'), login_trigger.drop_trigger('nested_sleep');
	ALTER SYSTEM RESET login_trigger.logout_timeout;
	SELECT pg_reload_conf();
});

# A clean restart keeps every figure; the login of the session that looks adds one call.
my $before = stats(q{trigger_name = 'every_third'});
my $before_gate = $node->safe_psql('postgres', q{SELECT errors || '|' || refusals || '|' || timeouts FROM login_trigger.trigger_stats WHERE trigger_name = 'gatekeeper'});
my $before_reset = $node->safe_psql('postgres', 'SELECT stats_reset FROM login_trigger.stats_info');
$node->restart;
is(stats(q{trigger_name = 'every_third'}), $before, 'a clean restart keeps the figures of a DDL trigger');
is($node->safe_psql('postgres', q{SELECT errors || '|' || refusals || '|' || timeouts FROM login_trigger.trigger_stats WHERE trigger_name = 'gatekeeper'}),
	$before_gate, '... and of a login trigger');
is($node->safe_psql('postgres', 'SELECT stats_reset FROM login_trigger.stats_info'), $before_reset, '... and when they were last reset');
ok(!-e $node->data_dir . '/pg_stat/login_trigger_stats.stat', 'the file is removed once read');

# Reset of one trigger, then of all.
my $reset_at = $node->safe_psql('postgres',
	q{SELECT login_trigger.reset_trigger_stats('every_third') BETWEEN now() AND clock_timestamp()});
is($reset_at, 't', 'reset returns the time of the reset');
is(stats(q{trigger_name = 'every_third'}), '', 'reset of one trigger forgets it');
isnt(stats(q{trigger_name = 'gatekeeper'}), '', '... and keeps the others');
is($node->safe_psql('postgres', q{
	SELECT login_trigger.reset_trigger_stats() IS NOT NULL;
	SELECT count(*) FROM login_trigger.trigger_stats WHERE trigger_name <> 'gatekeeper' OR calls > 1;
	SELECT evictions = 0 AND stats_reset > now() - interval '1 minute' FROM login_trigger.stats_info}), "t\n0\nt",
	'reset of all forgets every trigger and the evictions, and records the reset');

# A crash loses the figures, as documented: a backend killed by SIGKILL makes the postmaster
# re-create shared memory (restart_after_crash), and an immediate shutdown writes nothing. A DDL
# trigger's calls are exactly the statements run.
$node->safe_psql('postgres', q{
	CREATE FUNCTION public.noop() RETURNS event_trigger LANGUAGE plpgsql AS $$ BEGIN END $$;
	SELECT login_trigger.drop_trigger('gatekeeper');
	SELECT login_trigger.create_trigger('counter', 'ddl_command_end', 'public.noop()');
});
sub counter_calls
{
	my ($statements) = @_;
	return $node->safe_psql('postgres', join('', map { "CREATE TEMP TABLE c$_ ();\n" } 1 .. $statements)
		. q{SELECT coalesce((SELECT calls FROM login_trigger.trigger_stats WHERE trigger_name = 'counter'), 0)});
}
is(counter_calls(3), '3', 'before the crash: three calls');
my $launcher = $node->safe_psql('postgres', q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'autovacuum launcher'});
kill 'KILL', $launcher;
ok($node->poll_query_until('postgres',
		qq{SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'autovacuum launcher' AND pid <> $launcher}),
	'the server restarted after the crash');
is(counter_calls(2), '2', 'after a crash the figures start afresh');
$node->stop('immediate');
$node->start;
is(counter_calls(1), '1', 'after an immediate shutdown too');
$node->restart;
is(counter_calls(1), '2', 'a clean restart after a crash keeps them again');
$node->safe_psql('postgres', q{SELECT login_trigger.drop_trigger('counter')});

# The table is bounded (max_trigger_stats = 10): 12 DDL triggers make 12 entries after a reset;
# the least recently used ones are evicted and counted.
$node->safe_psql('postgres',
	join('', map { sprintf(q{SELECT login_trigger.create_trigger('t%02d', 'ddl_command_end', 'public.noop()');}, $_) } 1 .. 12));
is($node->safe_psql('postgres', q{
	SELECT login_trigger.reset_trigger_stats() IS NOT NULL;
	CREATE TABLE public.evict_me ();
	SELECT count(*) FROM login_trigger.trigger_stats;
	SELECT evictions FROM login_trigger.stats_info;
	SELECT string_agg(trigger_name, ',' ORDER BY trigger_name) FROM login_trigger.trigger_stats WHERE trigger_name < 't04'}),
	"t\n10\n2\nt03", 'a full table evicts the least recently used entries (t01, t02) and counts them');

# Privileges: the figures are for superusers and pg_read_all_stats; reset is for superusers.
$node->safe_psql('postgres', 'CREATE ROLE reader LOGIN IN ROLE pg_read_all_stats; CREATE ROLE nobody LOGIN');
($ret, $stdout, $stderr) = $node->psql('postgres', 'SELECT count(*) FROM login_trigger.trigger_stats', extra_params => [ '-U', 'nobody' ]);
like($stderr, qr/permission denied/, 'an ordinary role cannot read the figures');
is($node->safe_psql('postgres', 'SELECT count(*) > 0 FROM login_trigger.trigger_stats', extra_params => [ '-U', 'reader' ]),
	't', 'pg_read_all_stats can');
($ret, $stdout, $stderr) = $node->psql('postgres', 'SELECT login_trigger.reset_trigger_stats()', extra_params => [ '-U', 'reader' ]);
like($stderr, qr/permission denied for function reset_trigger_stats/, 'pg_read_all_stats cannot reset them');

# Without shared_preload_libraries there is no table: reading says so, with SQLSTATE 55000.
my $session = LoginTriggerTest::node('trigger_stats_session', mode => 'session');
for my $query ('SELECT * FROM login_trigger.trigger_stats', 'SELECT * FROM login_trigger.stats_info',
	'SELECT login_trigger.reset_trigger_stats()')
{
	($ret, $stdout, $stderr) = $session->psql('postgres', "\\set VERBOSITY verbose\n$query");
	like($stderr, qr/ERROR:  55000: login_trigger statistics need shared_preload_libraries\n.*HINT:  Add login_trigger to shared_preload_libraries/s,
		"$query without shared_preload_libraries: a clear error");
}
is($session->safe_psql('postgres', q{SELECT count(*) FROM pg_settings WHERE name = 'login_trigger.max_trigger_stats'}),
	'0', 'and no max_trigger_stats setting');

$node->stop;
$session->stop;
done_testing();
