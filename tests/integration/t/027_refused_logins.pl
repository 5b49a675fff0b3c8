# Refused logins on record (login_trigger.refused_logins): a login refused by a trigger rolls
# back the trigger's own audit row, and the record says who was refused, from where, by which
# trigger, with the SQLSTATE and message the client got (the reference: the FATAL PostgreSQL
# reported, as the client and the server log show it). Also login_function and the login time
# limit as refusers, the bounded ring (newest first), the LOG line, reset, privileges, and the
# clear error without shared_preload_libraries.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin . '/..';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use LoginTriggerTest;

my $node = LoginTriggerTest::node('refused_logins', conf => [ 'login_trigger.max_refused_logins = 10', "listen_addresses = '127.0.0.1'" ]);
$node->safe_psql('postgres', q{
	CREATE FUNCTION public.gatekeeper() RETURNS event_trigger LANGUAGE plpgsql AS $$
	BEGIN
	  INSERT INTO public.audit (event, app) VALUES ('gatekeeper', current_setting('application_name'));
	  IF current_setting('application_name') LIKE 'refuse%' THEN
	    RAISE EXCEPTION USING ERRCODE = 'LT002', MESSAGE = 'not you, ' || session_user,
	      DETAIL = 'the gate is closed';
	  ELSIF current_setting('application_name') = 'slow' THEN
	    PERFORM pg_sleep(30);
	  ELSIF current_setting('application_name') = 'terminate_me' THEN
	    PERFORM pg_terminate_backend(pg_backend_pid());
	    PERFORM pg_sleep(30);
	  END IF;
	END $$;
	SELECT login_trigger.create_trigger('gatekeeper', 'login', 'public.gatekeeper()');
	CREATE FUNCTION public.setting_gate() RETURNS void LANGUAGE plpgsql AS $$
	BEGIN
	  IF current_setting('application_name') = 'setting_refuses' THEN
	    RAISE EXCEPTION USING ERRCODE = 'LT003', MESSAGE = 'refused by the setting';
	  END IF;
	END $$;
	ALTER SYSTEM SET login_trigger.login_function = 'public.setting_gate';
	SELECT pg_reload_conf();
});

my $rows = q{SELECT concat_ws('|', user_name, database_name, application_name, coalesce(client_addr, 'local'),
	coalesce(trigger_name, '-'), sqlstate, message) FROM login_trigger.refused_logins};

# Refused over TCP as alice: the row against what the client and the server log got.
my $tcp = 'host=127.0.0.1 port=' . $node->port . ' dbname=postgres user=alice password=alice-secret';
LoginTriggerTest::prepend_hba($node, 'host all alice 127.0.0.1/32 scram-sha-256');
my $offset = -s $node->logfile;
my ($ret, $stdout, $stderr) = LoginTriggerTest::psql_at($node, "$tcp application_name=refuse_tcp", 'SELECT 1');
isnt($ret, 0, 'the trigger refuses the connection');
my ($client_message) = $stderr =~ /FATAL:  (.*)/;
is($client_message, 'not you, alice', 'the client got the FATAL with the trigger\'s message');
like(slurp_file($node->logfile, $offset), qr/\] LT002 .*FATAL:  not you, alice/, 'the server log has the FATAL with SQLSTATE LT002');
like(slurp_file($node->logfile, $offset),
	qr/LOG:  login_trigger: login refused for user "alice" to database "postgres" from 127\.0\.0\.1 \(application "refuse_tcp"\) by trigger "gatekeeper": not you, alice/,
	'and a LOG line that says who was refused by which trigger');
is($node->safe_psql('postgres', $rows), "alice|postgres|refuse_tcp|127.0.0.1|gatekeeper|LT002|$client_message",
	'the record: user, database, application, address, trigger, SQLSTATE and message as the client got them');
is($node->safe_psql('postgres', q{SELECT count(*) FROM public.audit WHERE app = 'refuse_tcp'}), '0',
	"the trigger's own audit row was rolled back (only the record keeps the refusal)");
is($node->safe_psql('postgres', q{SELECT count(*) > 0 FROM public.audit WHERE event = 'gatekeeper' AND app NOT LIKE 'refuse%'}), 't',
	'while an accepted login keeps its row');

# Over the Unix socket, by login_function, and by the time limit.
my $connstr = $node->connstr('postgres');
LoginTriggerTest::psql_at($node, "$connstr application_name=setting_refuses", 'SELECT 1');
$node->safe_psql('postgres', q{ALTER SYSTEM SET login_trigger.login_timeout = '1s'; SELECT pg_reload_conf()});
LoginTriggerTest::psql_at($node, "$connstr application_name=slow", 'SELECT 1');
$node->safe_psql('postgres', q{ALTER SYSTEM RESET login_trigger.login_timeout; SELECT pg_reload_conf()});
my $user = $node->safe_psql('postgres', 'SELECT session_user');
is($node->safe_psql('postgres', "$rows LIMIT 2"),
	"$user|postgres|slow|local|gatekeeper|57014|login triggers did not finish in time\n"
	  . "$user|postgres|setting_refuses|local|login_function|LT003|refused by the setting",
	'newest first: the time limit (in the trigger that ran) and login_function, from the socket');

# A FATAL inside the trigger (the backend terminated) names the trigger it ended.
LoginTriggerTest::psql_at($node, "$connstr application_name=terminate_me", 'SELECT 1');
is($node->safe_psql('postgres', "$rows LIMIT 1"),
	"$user|postgres|terminate_me|local|gatekeeper|57P01|terminating connection due to administrator command",
	'a FATAL inside the trigger: the record names the trigger');

# The ring keeps the last 10 (max_refused_logins).
LoginTriggerTest::psql_at($node, "$connstr application_name=refuse_$_", 'SELECT 1') for 1 .. 12;
is($node->safe_psql('postgres', 'SELECT count(*) FROM login_trigger.refused_logins'), '10', 'the ring holds 10');
is($node->safe_psql('postgres', q{SELECT string_agg(application_name, ',') FROM login_trigger.refused_logins}),
	join(',', map { "refuse_$_" } reverse 3 .. 12), 'the newest 10, newest first');

# Privileges and reset.
$node->safe_psql('postgres', 'CREATE ROLE reader LOGIN IN ROLE pg_read_all_stats; CREATE ROLE nobody LOGIN');
($ret, $stdout, $stderr) = $node->psql('postgres', 'SELECT count(*) FROM login_trigger.refused_logins', extra_params => [ '-U', 'nobody' ]);
like($stderr, qr/permission denied/, 'an ordinary role cannot read the record');
is($node->safe_psql('postgres', 'SELECT count(*) FROM login_trigger.refused_logins', extra_params => [ '-U', 'reader' ]),
	'10', 'pg_read_all_stats can');
($ret, $stdout, $stderr) = $node->psql('postgres', 'SELECT login_trigger.reset_refused_logins()', extra_params => [ '-U', 'reader' ]);
like($stderr, qr/permission denied for function reset_refused_logins/, 'pg_read_all_stats cannot reset it');
$node->safe_psql('postgres', 'SELECT login_trigger.reset_refused_logins()');
is($node->safe_psql('postgres', 'SELECT count(*) FROM login_trigger.refused_logins'), '0', 'a superuser can');
is($node->safe_psql('postgres', 'SELECT count(*) FROM login_trigger.refused_logins'), '0', 'accepted logins (the last two) leave no record');

# Without shared_preload_libraries: a clear error, and the LOG line still.
my $session = LoginTriggerTest::node('refused_logins_session', mode => 'session');
($ret, $stdout, $stderr) = $session->psql('postgres', "\\set VERBOSITY verbose\nSELECT * FROM login_trigger.refused_logins");
like($stderr, qr/ERROR:  55000: login_trigger statistics need shared_preload_libraries/, 'session_preload_libraries: reading says why it cannot');
$session->safe_psql('postgres', q{
	CREATE FUNCTION public.refuse() RETURNS event_trigger LANGUAGE plpgsql AS $$
	BEGIN IF current_setting('application_name') = 'refuse_me' THEN RAISE EXCEPTION 'no'; END IF; END $$;
	SELECT login_trigger.create_trigger('refuse', 'login', 'public.refuse()');
});
$offset = -s $session->logfile;
LoginTriggerTest::psql_at($session, $session->connstr('postgres') . ' application_name=refuse_me', 'SELECT 1');
like(slurp_file($session->logfile, $offset), qr/LOG:  login_trigger: login refused for user .* by trigger "refuse": no/,
	'session_preload_libraries: the refusal is in the server log');

$node->stop;
$session->stop;
done_testing();
