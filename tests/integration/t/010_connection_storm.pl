# Reliability under a connection storm: pgbench -C opens and closes a connection per
# transaction from 32 concurrent clients, with a login and a logout trigger writing a row each.
# Every connection pgbench made has exactly one login and one logout row, no client sees an
# error, the postmaster never restarts, and neither the backends nor the postmaster grow in
# memory over the run.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin . '/..';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use POSIX qw(ceil);
use LoginTriggerTest;

my $test = 'connection storm';
my $clients = 32;
my $wanted = LoginTriggerTest::scaled(2000, 20000);
# With -C each client makes one connection per transaction; round up so that at least $wanted
# connections are made.
my $per_client = ceil($wanted / $clients);

# A backend that has sent its last reply still runs its logout triggers before it gives up its
# slot, while its client is already connecting again: more than $clients backends exist at
# times, so leave plenty of room (an exhausted max_connections would show up as client errors).
my $node = LoginTriggerTest::node('connection_storm', conf => [ 'max_connections = 150' ]);

# One row per firing, keyed by the backend's pid and start time (a pid alone is reused over
# 20,000 connections). Each row carries the backend's anonymous resident memory, read from
# /proc/self/status inside the backend itself (as superuser): on every version 13-18 and without
# depending on memory-context accounting, it shows what a session costs, and it would grow
# across the run if something the backends inherit (the postmaster's memory) or share kept
# growing. A plain SQL function keeps the triggers cheap.
$node->safe_psql('postgres', q{
	CREATE TABLE public.storm (
		id bigserial PRIMARY KEY, event text NOT NULL, pid int NOT NULL, backend_start timestamptz NOT NULL,
		app text, reason text, rss_anon_kb bigint);
	CREATE FUNCTION public.storm_audit() RETURNS void LANGUAGE sql AS $$
	  INSERT INTO public.storm (event, pid, backend_start, app, reason, rss_anon_kb)
	  SELECT c->>'event', (c->>'backend_pid')::int, (c->>'backend_start')::timestamptz,
	         c->>'application_name', c->>'reason',
	         substring(pg_read_file('/proc/self/status') FROM 'RssAnon:\s+(\d+) kB')::bigint
	    FROM login_trigger.context() AS c
	$$;
	SELECT login_trigger.create_trigger('storm_login', 'login', 'public.storm_audit()');
	SELECT login_trigger.create_trigger('storm_logout', 'logout', 'public.storm_audit()');
});
is($node->safe_psql('postgres', "SELECT count(*) FROM public.storm WHERE event = 'login' AND pid = pg_backend_pid() AND rss_anon_kb > 0"),
	'1', 'the login trigger records the backend memory of the session');

sub postmaster_pid
{
	my ($line) = split /\n/, slurp_file($node->data_dir . '/postmaster.pid');
	return $line;
}

sub rss_anon_kb
{
	my ($pid) = @_;
	my ($kb) = slurp_file("/proc/$pid/status") =~ /^RssAnon:\s+(\d+) kB/m;
	return $kb;
}

my $postmaster = postmaster_pid();
my $postmaster_rss_start = rss_anon_kb($postmaster);
my $log_offset = -s $node->logfile;

# The script marks the session (application_name becomes storm-done) so that its logout row tells
# the connections that ran a transaction from pgbench's own set-up connection, which runs none.
my $script = $node->basedir . '/storm.sql';
append_to_file($script, "SELECT set_config('application_name', 'storm-done', false);\n");
my @pgbench = ('pgbench', '-n', '-C', '-c', $clients, '-j', 2, '-t', $per_client, '-f', $script,
	'-h', $node->host, '-p', $node->port, 'postgres');
my ($stdout, $stderr) = ('', '');
my $started = time;
my $finished;
{
	local $ENV{PGAPPNAME} = 'storm';
	$finished = eval {
		IPC::Run::run(\@pgbench, '>', \$stdout, '2>', \$stderr,
			IPC::Run::timeout(LoginTriggerTest::scaled(600, 3600)));
	};
}
my $status = $finished ? $? >> 8 : -1;
note("pgbench stdout:\n$stdout\npgbench stderr:\n$stderr");
is($status, 0, 'pgbench finished and succeeded') or diag($@);

# What pgbench reports: connections made (one per transaction with -C), failed transactions
# (reported from 15 on) and clients that aborted (an error line each on stderr).
my ($processed) = $stdout =~ m{number of transactions actually processed: (\d+)/\d+};
$processed //= 0;
my ($failed) = $stdout =~ /number of failed transactions: (\d+)/;
my @client_errors = grep { /error|abort|FATAL/i } split /\n/, $stderr;
my $client_errors = scalar(@client_errors) + ($failed // 0);
is($processed, $clients * $per_client, "pgbench made $clients x $per_client connections, one per transaction");
is($client_errors, 0, 'no client saw an error or aborted');

# Logout rows commit after the client has gone. A backend stays in pg_stat_activity until its
# logout triggers are done (their callback runs before the backend's status entry is cleared), so
# once none of pgbench's backends is left every row is in.
ok($node->poll_query_until('postgres',
		"SELECT count(*) = 0 FROM pg_stat_activity WHERE application_name IN ('storm', 'storm-done')"),
	"all of pgbench's backends have ended");
my $elapsed = time - $started;

# Per session (pid and start time): its login rows, its logout rows, and whether it ran the
# script. pgbench's sessions are those whose login saw application_name storm.
my $sessions = q{
	WITH s AS (
		SELECT pid, backend_start,
			count(*) FILTER (WHERE event = 'login') AS logins,
			count(*) FILTER (WHERE event = 'logout') AS logouts,
			bool_or(event = 'login' AND app = 'storm') AS pgbench,
			bool_or(event = 'logout' AND app = 'storm-done') AS ran
		FROM public.storm GROUP BY pid, backend_start)
};
my ($pgbench_sessions, $ran, $setup, $login_rows, $logout_rows, $not_once) = split /\|/,
  $node->safe_psql('postgres', $sessions . q{
	SELECT count(*), count(*) FILTER (WHERE ran), count(*) FILTER (WHERE NOT ran),
		sum(logins), sum(logouts), count(*) FILTER (WHERE logins <> 1 OR logouts <> 1)
	FROM s WHERE pgbench});
is($ran, $processed, 'every connection that ran a transaction is one session with audit rows');
is($setup, 1, "plus pgbench's set-up connection, which ran none");
is($not_once, 0, 'every session has exactly one login row and exactly one logout row');
is($login_rows, $processed + 1, 'login rows: one per connection');
is($logout_rows, $processed + 1, 'logout rows: one per connection');
is($node->safe_psql('postgres', $sessions . 'SELECT count(*) FROM s WHERE NOT pgbench AND ran'), '0',
	'no logout row without the login row of its session');
# The shared per-trigger statistics count what the committed rows record, one call per firing,
# from every backend (a session's call is counted just before its row commits, so poll).
ok($node->poll_query_until('postgres', q{
	SELECT (SELECT calls FROM login_trigger.trigger_stats WHERE trigger_name = 'storm_login')
	         = (SELECT count(*) FROM public.storm WHERE event = 'login')
	   AND (SELECT calls FROM login_trigger.trigger_stats WHERE trigger_name = 'storm_logout')
	         = (SELECT count(*) FROM public.storm WHERE event = 'logout')
	   AND (SELECT sum(errors) FROM login_trigger.trigger_stats) = 0}),
	'trigger_stats: login and logout calls equal the rows their firings wrote, no errors');

is($node->safe_psql('postgres', "SELECT count(*) FROM public.storm WHERE app = 'storm-done' AND reason <> 'client_exit'"),
	'0', 'every pgbench connection ended with the client saying goodbye');

# The server: no backend crashed and the postmaster is the same process. (The test framework sets
# restart_after_crash = off, so a crash would also have stopped the server.)
my $log = slurp_file($node->logfile, $log_offset);
my $crashes = () = $log =~ /terminated by signal|server process .* was terminated|all server processes terminated|PANIC:/g;
is($crashes, 0, 'no backend crashed and the postmaster never reinitialized');
my $postmaster_end = postmaster_pid();
is($postmaster_end, $postmaster, 'the postmaster is the same process');
my $restarts = ($postmaster_end eq $postmaster ? 0 : 1) + ($crashes ? 1 : 0);
my $postmaster_rss_end = rss_anon_kb($postmaster_end);

# Backend memory: the median of the first tenth of pgbench's sessions against the median of the
# last tenth (medians, so a few sessions that ran while the machine was busy do not matter), at
# login and at logout. A fresh backend's memory is the same every time unless something it
# inherits or shares grows, so allow 10% (at least 256 kB) for allocator noise.
my ($login_first, $login_last, $logout_first, $logout_last) = split /\|/, $node->safe_psql('postgres', q{
	WITH t AS (
		SELECT l.rss_anon_kb AS at_login, o.rss_anon_kb AS at_logout, ntile(10) OVER (ORDER BY l.id) AS tenth
		FROM public.storm l JOIN public.storm o USING (pid, backend_start)
		WHERE l.event = 'login' AND l.app = 'storm' AND o.event = 'logout' AND o.app = 'storm-done')
	SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY at_login) FILTER (WHERE tenth = 1),
		percentile_disc(0.5) WITHIN GROUP (ORDER BY at_login) FILTER (WHERE tenth = 10),
		percentile_disc(0.5) WITHIN GROUP (ORDER BY at_logout) FILTER (WHERE tenth = 1),
		percentile_disc(0.5) WITHIN GROUP (ORDER BY at_logout) FILTER (WHERE tenth = 10)
	FROM t});
sub allowed { my ($kb) = @_; return $kb + ($kb / 10 > 256 ? $kb / 10 : 256); }
cmp_ok($login_last, '<=', allowed($login_first),
	"backend memory at login does not grow over the run ($login_first kB -> $login_last kB)");
cmp_ok($logout_last, '<=', allowed($logout_first),
	"backend memory at logout does not grow over the run ($logout_first kB -> $logout_last kB)");
cmp_ok($postmaster_rss_end, '<=', allowed($postmaster_rss_start),
	"postmaster memory does not grow over the run ($postmaster_rss_start kB -> $postmaster_rss_end kB)");
is($node->safe_psql('postgres', 'SELECT 1'), '1', 'the server accepts connections after the storm');

LoginTriggerTest::figure($test, 'connections made', $processed);
LoginTriggerTest::figure($test, 'login rows expected', $processed + 1);
LoginTriggerTest::figure($test, 'login rows found', $login_rows);
LoginTriggerTest::figure($test, 'logout rows expected', $processed + 1);
LoginTriggerTest::figure($test, 'logout rows found', $logout_rows);
LoginTriggerTest::figure($test, 'client errors', $client_errors);
LoginTriggerTest::figure($test, 'postmaster restarts', $restarts);
LoginTriggerTest::figure($test, 'backend RssAnon at login, first 10% (median, kB)', $login_first);
LoginTriggerTest::figure($test, 'backend RssAnon at login, last 10% (median, kB)', $login_last);
LoginTriggerTest::figure($test, 'backend RssAnon at logout, first 10% (median, kB)', $logout_first);
LoginTriggerTest::figure($test, 'backend RssAnon at logout, last 10% (median, kB)', $logout_last);
LoginTriggerTest::figure($test, 'postmaster RssAnon at start (kB)', $postmaster_rss_start);
LoginTriggerTest::figure($test, 'postmaster RssAnon at end (kB)', $postmaster_rss_end);
LoginTriggerTest::figure($test, 'elapsed seconds', sprintf('%.1f', $elapsed));
LoginTriggerTest::figure($test, 'connections per second', sprintf('%.0f', ($processed + 1) / $elapsed));

$node->stop;
done_testing();
