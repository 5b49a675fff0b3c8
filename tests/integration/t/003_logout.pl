# Logout triggers: every documented reason with its committed row, the session's open
# transaction rolled back first, an error logged with the trigger's name without crashing, and
# the logout timeout bounding a slow trigger.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin . '/..';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use LoginTriggerTest;

my $node = LoginTriggerTest::node('logout');
my $major = int($node->safe_psql('postgres', 'SHOW server_version_num') / 10000);
$node->safe_psql('postgres', q{
	SELECT login_trigger.create_trigger('out', 'logout', 'public.audit_event()');
	CREATE TABLE public.scratch (note text);
	GRANT ALL ON public.scratch TO PUBLIC;
});

sub session
{
	my ($app, @setup) = @_;
	my $session = $node->background_psql('postgres', on_error_stop => 0);
	$session->query_safe("SET application_name = '$app'");
	$session->query_safe($_) for @setup;
	return $session;
}

sub expect_reason
{
	my ($app, $reason) = @_;
	LoginTriggerTest::wait_for_audit($node, "event = 'logout' AND app = '$app' AND reason = '$reason'",
		"logout reason $reason is recorded and committed");
}

# The client says goodbye (Terminate).
session('quits')->quit;
expect_reason('quits', 'client_exit');

# The client vanishes without Terminate.
my $gone = session('vanishes');
$gone->{run}->kill_kill;
# PostgreSQL 13 does not record whether the client said goodbye.
expect_reason('vanishes', $major >= 14 ? 'client_eof' : 'client_exit');

# pg_terminate_backend, with a transaction left open: it is rolled back, the logout row commits.
my $victim = session('terminated', 'BEGIN', "INSERT INTO public.scratch VALUES ('uncommitted')");
$node->safe_psql('postgres', "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'terminated'");
expect_reason('terminated', 'terminated');
is($node->safe_psql('postgres', 'SELECT count(*) FROM public.scratch'), '0',
	'the open transaction of the session was rolled back');
is($node->safe_psql('postgres', "SELECT duration > 0 FROM public.audit WHERE app = 'terminated'"), 't',
	'the context has the session duration');

# Idle timeouts (idle_session_timeout exists from 14 on).
if ($major >= 14)
{
	session('idle', "SET idle_session_timeout = '300ms'");
	expect_reason('idle', 'idle_session_timeout');
}
session('idle_in_xact', "SET idle_in_transaction_session_timeout = '300ms'", 'BEGIN', 'SELECT 1');
expect_reason('idle_in_xact', 'idle_in_transaction_timeout');

# An error in a logout trigger is logged with the trigger's name; the server stays up.
$node->safe_psql('postgres', q{
	CREATE FUNCTION public.broken() RETURNS void LANGUAGE plpgsql AS $$
	BEGIN RAISE EXCEPTION 'logout audit is broken'; END $$;
	SELECT login_trigger.create_trigger('p_broken', 'logout', 'public.broken()');
});
my $offset = -s $node->logfile;
session('breaks')->quit;
ok($node->wait_for_log(qr/logout audit is broken/, $offset), 'the logout error is logged');
my $log = slurp_file($node->logfile, $offset);
like($log, qr/\] P0001 .*FATAL:  logout audit is broken/, 'as FATAL with its SQLSTATE: the backend ends there');
unlike($log, qr/ERROR:  logout audit is broken/, 'never as an ERROR handed back to the main loop');
like($log, qr/login_trigger trigger "p_broken" \(logout\)/, 'the log names the failing trigger');
unlike($log, qr/terminated by signal|server process .* was terminated/, 'no backend crashed');
is($node->safe_psql('postgres', 'SELECT 1'), '1', 'the server accepts connections');
$node->safe_psql('postgres', "SELECT login_trigger.drop_trigger('p_broken')");

# The logout timeout cuts off a slow trigger.
$node->safe_psql('postgres', q{
	CREATE FUNCTION public.slow_out() RETURNS void LANGUAGE sql AS $$SELECT pg_sleep(30)$$;
	SELECT login_trigger.create_trigger('q_slow', 'logout', 'public.slow_out()');
	ALTER SYSTEM SET login_trigger.logout_timeout = '500ms';
	SELECT pg_reload_conf();
});
$offset = -s $node->logfile;
my $started = time;
session('slow')->quit;
ok($node->wait_for_log(qr/logout triggers did not finish in time/, $offset), 'the logout timeout is logged');
ok($node->poll_query_until('postgres', "SELECT count(*) = 0 FROM pg_stat_activity WHERE application_name = 'slow'"),
	'the slow session is gone');
cmp_ok(time - $started, '<', 15, 'the session ended long before the slow trigger would have');
$node->safe_psql('postgres', "SELECT login_trigger.drop_trigger('q_slow')");

# Fast shutdown fires logout with reason shutdown.
my $last = session('at_shutdown');
$node->stop('fast');
$node->start;
expect_reason('at_shutdown', 'shutdown');

$node->stop;
done_testing();
