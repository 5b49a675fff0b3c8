# Hot standby (made with pg_basebackup): login triggers still enforce policy there, and a login
# trigger that writes does not lock anyone out: its read-only error becomes a warning. Logout
# triggers that write fail quietly into the log.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin . '/..';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use LoginTriggerTest;

my $primary = LoginTriggerTest::node('primary', streaming => 1);
$primary->safe_psql('postgres', q{
	CREATE FUNCTION public.standby_policy() RETURNS event_trigger LANGUAGE plpgsql AS $$
	BEGIN
	  IF pg_is_in_recovery() AND session_user = 'alice' THEN
	    RAISE EXCEPTION 'alice may not use the standby';
	  END IF;
	END $$;
	SELECT login_trigger.create_trigger('a_audit', 'login', 'public.audit_event()');
	SELECT login_trigger.create_trigger('b_policy', 'login', 'public.standby_policy()');
	SELECT login_trigger.create_trigger('c_set', 'login', 'public.mark()');
});
$primary->backup('base');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'base', has_streaming => 1);
$standby->start;
$primary->wait_for_catchup($standby, 'replay', $primary->lsn('insert'));

my ($ret, $out, $err) = $standby->psql('postgres', 'SELECT pg_is_in_recovery(), current_setting(\'app.marked\')');
is($ret, 0, 'a superuser logs in to the standby although a login trigger writes');
is($out, 't|yes', 'later login triggers still ran and their settings hold');
like($err, qr/WARNING:  login_trigger trigger "a_audit" could not write on a standby/, 'the failed write is a warning');
LoginTriggerTest::connect_fails($standby, $standby->connstr('postgres') . ' user=alice', 'policy is enforced on the standby', sqlstate => 'P0001',
	expected_stderr => qr/alice may not use the standby/);
LoginTriggerTest::connect_ok($primary, $primary->connstr('postgres') . ' user=alice', 'the same policy lets alice into the primary');

$standby->stop;
$primary->stop;
done_testing();
