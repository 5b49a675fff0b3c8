# Reliability under concurrent DDL: pgbench clients run a DDL script over and over, each on objects
# of its own, with audit triggers on every DDL event. Every command fires start and end exactly
# once, every rewriting ALTER fires table_rewrite, every dropped object reaches sql_drop, each
# session's audit trail is exactly that of the script run alone, repeated; no client sees an
# error, nothing deadlocks or crashes, and a session's memory does not grow with the commands it
# runs.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin . '/..';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use LoginTriggerTest;

my $test = 'DDL storm';
my $clients = 6;
my $iterations = LoginTriggerTest::scaled(100, 1000);

# The script, one iteration of it per pgbench transaction. :client_id (0 .. clients - 1) names each
# client's objects, so no two clients' commands conflict except on the catalogs themselves. With
# each command: how many table_rewrite firings it causes (and their reason: 1 persistence,
# 2 default value, 4 column type) and how many objects it names for dropping (each DROP fires
# sql_drop once, with exactly one object marked original, plus what depends on it).
my @script = (
	# [ command, rewrite reason or 0, objects named for dropping ]
	[ 'CREATE TABLE public.t_:client_id (id int PRIMARY KEY, v text)', 0, 0 ],
	[ 'CREATE INDEX i_:client_id ON public.t_:client_id (v)', 0, 0 ],
	# No default: a catalog change only.
	[ 'ALTER TABLE public.t_:client_id ADD COLUMN w int', 0, 0 ],
	[ 'ALTER TABLE public.t_:client_id ALTER COLUMN id TYPE bigint', 4, 0 ],
	# A volatile default has to be written into every row.
	[ 'ALTER TABLE public.t_:client_id ADD COLUMN at timestamptz DEFAULT clock_timestamp()', 2, 0 ],
	[ 'ALTER TABLE public.t_:client_id SET UNLOGGED', 1, 0 ],
	[ 'ALTER TABLE public.t_:client_id DROP COLUMN w', 0, 1 ],
	[ 'CREATE VIEW public.v_:client_id AS SELECT id, v FROM public.t_:client_id', 0, 0 ],
	[ 'CREATE SEQUENCE public.s_:client_id', 0, 0 ],
	[ q{CREATE FUNCTION public.f_:client_id() RETURNS int LANGUAGE sql AS 'SELECT 1'}, 0, 0 ],
	[ q{COMMENT ON TABLE public.t_:client_id IS 'storm'}, 0, 0 ],
	[ 'CREATE SCHEMA sc_:client_id', 0, 0 ],
	[ 'CREATE TABLE sc_:client_id.inner_table (a int)', 0, 0 ],
	[ 'DROP VIEW public.v_:client_id', 0, 1 ],
	[ 'DROP INDEX public.i_:client_id', 0, 1 ],
	[ 'DROP SEQUENCE public.s_:client_id', 0, 1 ],
	[ 'DROP FUNCTION public.f_:client_id()', 0, 1 ],
	[ 'DROP TABLE public.t_:client_id', 0, 1 ],
	# Cascades to the table in it.
	[ 'DROP SCHEMA sc_:client_id CASCADE', 0, 1 ],
);
my $commands = scalar @script;
my @rewrites = map { $_->[1] } grep { $_->[1] } @script;
my $drops = grep { $_->[2] } @script;
my $named = 0;
$named += $_->[2] for @script;

# A short deadlock_timeout, so that a deadlock, if the triggers ever caused one, is detected (and
# logged) within the run rather than blocking it.
my $node = LoginTriggerTest::node('ddl_storm', conf => [ "deadlock_timeout = '100ms'" ]);

# One "fire" row per trigger firing, and one "object" row per row of ddl_commands() (end) or
# dropped_objects() (sql_drop), keyed by the session (backend pid and start time).
$node->safe_psql('postgres', q{
	CREATE TABLE public.ddl_storm (
		id bigserial PRIMARY KEY, kind text NOT NULL, event text NOT NULL, tag text, app text,
		pid int NOT NULL, backend_start timestamptz NOT NULL, object_type text, identity text,
		original bool, reason int);
	CREATE TABLE public.ddl_storm_memory (id bigserial PRIMARY KEY, app text, pid int, rss_anon_kb bigint);
	CREATE FUNCTION public.ddl_storm_audit() RETURNS event_trigger LANGUAGE plpgsql AS $$
	DECLARE
	  c jsonb := login_trigger.context();
	  app text := c->>'application_name';
	  pid int := (c->>'backend_pid')::int;
	  started timestamptz := (c->>'backend_start')::timestamptz;
	BEGIN
	  INSERT INTO public.ddl_storm (kind, event, tag, app, pid, backend_start, reason)
	  VALUES ('fire', TG_EVENT, TG_TAG, app, pid, started,
	          CASE WHEN TG_EVENT = 'table_rewrite' THEN login_trigger.table_rewrite_reason() END);
	  IF TG_EVENT = 'ddl_command_end' THEN
	    INSERT INTO public.ddl_storm (kind, event, tag, app, pid, backend_start, object_type, identity)
	    SELECT 'object', TG_EVENT, TG_TAG, app, pid, started, d.object_type, d.object_identity
	      FROM login_trigger.ddl_commands() AS d;
	  ELSIF TG_EVENT = 'sql_drop' THEN
	    INSERT INTO public.ddl_storm (kind, event, tag, app, pid, backend_start, object_type, identity, original)
	    SELECT 'object', TG_EVENT, TG_TAG, app, pid, started, d.object_type, d.object_identity, d.original
	      FROM login_trigger.dropped_objects() AS d;
	  END IF;
	END $$;
	SELECT login_trigger.create_trigger('storm_' || e, e, 'public.ddl_storm_audit()')
	  FROM unnest(ARRAY['ddl_command_start', 'ddl_command_end', 'sql_drop', 'table_rewrite']) AS e;
});

# After each iteration the session records its anonymous resident memory, read from
# /proc/self/status in the backend (as superuser; the same on every version 13-18). That is DML,
# which fires nothing.
my $script_file = $node->basedir . '/ddl_storm.sql';
append_to_file($script_file, join('', map { "$_->[0];\n" } @script) . q{
INSERT INTO public.ddl_storm_memory (app, pid, rss_anon_kb)
SELECT current_setting('application_name'), pg_backend_pid(),
       substring(pg_read_file('/proc/self/status') FROM 'RssAnon:\s+(\d+) kB')::bigint;
});

# pgbench with the script: $clients clients, $transactions iterations each, application_name $app,
# extra server options $options. Returns the iterations run and the number of errors seen. Notices
# (DROP ... CASCADE) are kept off stderr, where only errors should be.
sub pgbench
{
	my ($app, $clients, $transactions, $options) = @_;
	my ($stdout, $stderr) = ('', '');
	my $finished;
	{
		local $ENV{PGAPPNAME} = $app;
		local $ENV{PGOPTIONS} = '-c client_min_messages=warning ' . ($options // '');
		$finished = eval {
			IPC::Run::run([ 'pgbench', '-n', '-c', $clients, '-j', 2, '-t', $transactions,
					'-f', $script_file, '-h', $node->host, '-p', $node->port, 'postgres' ],
				'>', \$stdout, '2>', \$stderr, IPC::Run::timeout(LoginTriggerTest::scaled(600, 3600)));
		};
	}
	note("pgbench stdout:\n$stdout\npgbench stderr:\n$stderr");
	is($finished ? $? >> 8 : -1, 0, "pgbench ($app) finished and succeeded") or diag($@);
	my ($processed) = $stdout =~ m{number of transactions actually processed: (\d+)/\d+};
	# Failed transactions are reported from 15 on; an aborted client says so on stderr.
	my ($failed) = $stdout =~ /number of failed transactions: (\d+)/;
	my $errors = ($failed // 0) + grep { /error|abort|FATAL/i } split /\n/, $stderr;
	return ($processed // 0, $errors);
}

# Each session's audit trail, one entry per row in the order written, with numbers (the client's
# number, toast tables' OIDs) replaced so that every client's trail reads the same.
my $trail = q{
	string_agg(concat_ws(':', kind, event, tag, object_type,
		regexp_replace(identity, '[0-9]+', 'N', 'g'), original, reason) || ';', '' ORDER BY id)};

# The script once, alone: the trail every iteration of the storm must repeat.
my $log_offset = -s $node->logfile;
my ($calibrated) = pgbench('ddl_calibration', 1, 1);
is($calibrated, 1, 'the script runs once alone');
sub fired
{
	my ($where) = @_;
	return $node->safe_psql('postgres', qq{
		SELECT count(*) FILTER (WHERE kind = 'fire' AND event = 'ddl_command_start'),
			count(*) FILTER (WHERE kind = 'fire' AND event = 'ddl_command_end'),
			count(*) FILTER (WHERE kind = 'fire' AND event = 'sql_drop'),
			count(*) FILTER (WHERE kind = 'object' AND event = 'sql_drop' AND original),
			count(*) FILTER (WHERE kind = 'object' AND event = 'sql_drop'),
			count(*) FILTER (WHERE kind = 'object' AND event = 'ddl_command_end'),
			coalesce(string_agg(reason::text, ',' ORDER BY id) FILTER (WHERE kind = 'fire' AND event = 'table_rewrite'), '')
		FROM public.ddl_storm WHERE $where});
}
my ($start1, $end1, $drop1, $original1, $dropped1, $objects1, $rewrites1) = split /\|/,
  fired("app = 'ddl_calibration'");
is($start1, $commands, "alone: one ddl_command_start per command ($commands)");
is($end1, $commands, 'alone: one ddl_command_end per command');
is($drop1, $drops, "alone: one sql_drop per dropping command ($drops)");
is($original1, $named, 'alone: each dropping command reports the object it named as original');
cmp_ok($dropped1, '>', $named, 'alone: and what depended on them');
cmp_ok($objects1, '>=', 8, 'alone: ddl_commands() reports the created and altered objects');
is($rewrites1, join(',', @rewrites), 'alone: table_rewrite fires for each rewriting ALTER, with its reason');

# The storm.
my $started = time;
my ($processed, $client_errors) = pgbench('ddl_storm', $clients, $iterations);
my $elapsed = time - $started;
is($processed, $clients * $iterations, "pgbench ran the script $iterations times in each of $clients clients");
is($client_errors, 0, 'no client saw an error');
my $executed = $processed * $commands;

my ($start, $end, $drop, $original, $dropped, $objects, $rewrite_reasons) = split /\|/,
  fired("app = 'ddl_storm'");
my $rewrite_rows = $rewrite_reasons eq '' ? 0 : scalar(split /,/, $rewrite_reasons);
is($start, $executed, "one ddl_command_start row per command executed ($executed)");
is($end, $executed, 'one ddl_command_end row per command executed');
is($drop, $processed * $drops, 'one sql_drop firing per dropping command');
is($original, $processed * $named, 'one original dropped object per object the script named');
is($dropped, $processed * $dropped1, 'one sql_drop row per dropped object');
is($objects, $processed * $objects1, 'one ddl_command_end row per ddl_commands() row');
is($rewrite_rows, $processed * @rewrites, 'one table_rewrite row per rewriting ALTER');

# Exactly, per session: its trail is the script's, repeated, and names that client's objects only.
my ($sessions, $exact, $own) = split /\|/, $node->safe_psql('postgres', qq{
	WITH s AS (
		SELECT pid, backend_start, $trail AS trail,
			count(DISTINCT substring(identity FROM '(?:public\\.[a-z]|sc)_([0-9]+)')) AS clients
		FROM public.ddl_storm WHERE app = 'ddl_storm' GROUP BY pid, backend_start)
	SELECT count(*), count(*) FILTER (WHERE trail = repeat(
			(SELECT $trail FROM public.ddl_storm WHERE app = 'ddl_calibration'), $iterations)),
		count(*) FILTER (WHERE clients = 1)
	FROM s});
is($sessions, $clients, 'one audited session per client');
is($exact, $clients, "each session's trail is the script's, $iterations times over, in order");
is($own, $clients, 'each session names the objects of one client only');

# Memory. PostgreSQL's own caches grow with DDL on ever new OIDs (CacheMemoryContext, by about
# 4 kB per iteration of this script, with or without any trigger), so the measure is a
# comparison: the same storm once more with the triggers switched off (login_trigger.enabled),
# and the growth of a session's memory over the run, with triggers, against that without. The
# growth is the median of the last tenth of iterations minus the median of the first tenth
# (from the second iteration on: the first one warms the caches), over all sessions.
my ($control) = pgbench('ddl_control', $clients, $iterations, '-c login_trigger.enabled=off');
is($control, $clients * $iterations, 'the same storm ran with the triggers switched off');
is($node->safe_psql('postgres', "SELECT count(*) FROM public.ddl_storm WHERE app = 'ddl_control'"), '0',
	'and fired nothing');
sub growth
{
	my ($app) = @_;
	return split /\|/, $node->safe_psql('postgres', qq{
		WITH m AS (
			SELECT rss_anon_kb, row_number() OVER w AS n, count(*) OVER (PARTITION BY pid) AS iterations
			FROM public.ddl_storm_memory WHERE app = '$app'
			WINDOW w AS (PARTITION BY pid ORDER BY id))
		SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY rss_anon_kb) FILTER (WHERE n > 1 AND n <= 1 + ceil(iterations / 10.0)),
			percentile_disc(0.5) WITHIN GROUP (ORDER BY rss_anon_kb) FILTER (WHERE n > iterations - ceil(iterations / 10.0))
		FROM m});
}
my ($memory_first, $memory_last) = growth('ddl_storm');
my ($control_first, $control_last) = growth('ddl_control');
my $extra = ($memory_last - $memory_first) - ($control_last - $control_first);
# A leak of 100 bytes per command would be 200 kB per session in the reduced run, 2 MB in the
# full one; allow 256 kB, or a quarter of PostgreSQL's own growth, for allocator noise.
my $control_growth = $control_last - $control_first;
my $allowed = $control_growth / 4 > 256 ? $control_growth / 4 : 256;
cmp_ok($extra, '<=', $allowed, "a session's memory grows no more with the triggers than without "
	  . "($memory_first -> $memory_last kB with, $control_first -> $control_last kB without)");

# The server, over all the runs: no deadlock, no crash.
my $log = slurp_file($node->logfile, $log_offset);
my $deadlocks = () = $log =~ /deadlock detected/g;
is($deadlocks, 0, 'no deadlock in the server log');
my $crashes = () = $log =~ /terminated by signal|server process .* was terminated|all server processes terminated|PANIC:/g;
is($crashes, 0, 'no backend crashed');
is($node->safe_psql('postgres', 'SELECT 1'), '1', 'the server accepts connections after the storms');

LoginTriggerTest::figure($test, 'clients', $clients);
LoginTriggerTest::figure($test, 'commands executed', $executed);
LoginTriggerTest::figure($test, 'ddl_command_start rows expected', $executed);
LoginTriggerTest::figure($test, 'ddl_command_start rows found', $start);
LoginTriggerTest::figure($test, 'ddl_command_end firings expected', $executed);
LoginTriggerTest::figure($test, 'ddl_command_end firings found', $end);
LoginTriggerTest::figure($test, 'ddl_commands() rows expected', $processed * $objects1);
LoginTriggerTest::figure($test, 'ddl_commands() rows found', $objects);
LoginTriggerTest::figure($test, 'sql_drop rows expected', $processed * $dropped1);
LoginTriggerTest::figure($test, 'sql_drop rows found', $dropped);
LoginTriggerTest::figure($test, 'table_rewrite rows expected', $processed * @rewrites);
LoginTriggerTest::figure($test, 'table_rewrite rows found', $rewrite_rows);
LoginTriggerTest::figure($test, 'client errors', $client_errors);
LoginTriggerTest::figure($test, 'deadlocks', $deadlocks);
LoginTriggerTest::figure($test, 'crashes', $crashes);
LoginTriggerTest::figure($test, 'backend RssAnon with triggers, first 10% of iterations (median, kB)', $memory_first);
LoginTriggerTest::figure($test, 'backend RssAnon with triggers, last 10% of iterations (median, kB)', $memory_last);
LoginTriggerTest::figure($test, 'backend RssAnon without triggers, first 10% of iterations (median, kB)', $control_first);
LoginTriggerTest::figure($test, 'backend RssAnon without triggers, last 10% of iterations (median, kB)', $control_last);
LoginTriggerTest::figure($test, 'backend memory growth attributable to the triggers (kB)', $extra);
LoginTriggerTest::figure($test, 'elapsed seconds', sprintf('%.1f', $elapsed));
LoginTriggerTest::figure($test, 'commands per second', sprintf('%.0f', $executed / $elapsed));

$node->stop;
done_testing();
