# PostgreSQL 17+: login_trigger's login triggers and native login event triggers coexist, and
# each escape hatch switches off only what it names: event_triggers = off the native ones,
# login_trigger.enabled = off ours.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin . '/..';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use LoginTriggerTest;

my $node = LoginTriggerTest::node('coexistence');
my $major = int($node->safe_psql('postgres', 'SHOW server_version_num') / 10000);
if ($major < 17)
{
	$node->stop;
	plan skip_all => 'native login event triggers exist from PostgreSQL 17 on';
}
$node->safe_psql('postgres', q{
	CREATE FUNCTION public.native_login() RETURNS event_trigger LANGUAGE plpgsql AS $$
	BEGIN INSERT INTO public.audit (event, trigger_name, app) VALUES ('native ' || TG_TAG, 'native', current_setting('application_name')); END $$;
	CREATE EVENT TRIGGER native_login ON login EXECUTE FUNCTION public.native_login();
	SELECT login_trigger.create_trigger('ours', 'login', 'public.audit_event()');
});
sub fired
{
	my ($app, $options) = @_;
	LoginTriggerTest::safe_psql_at($node, $node->connstr('postgres') . " application_name=$app options='$options'", 'SELECT 1');
	return $node->safe_psql('postgres', "SELECT string_agg(trigger_name, ',' ORDER BY id) FROM public.audit WHERE app = '$app'");
}
is(fired('both', ''), 'native,ours', 'native and login_trigger login triggers both fire, native first');
is(fired('no_native', '-c event_triggers=off'), 'ours', 'event_triggers = off switches off only native ones');
is(fired('no_ours', '-c login_trigger.enabled=off'), 'native', 'login_trigger.enabled = off switches off only ours');
is($node->safe_psql('postgres', "SELECT event FROM public.audit WHERE trigger_name = 'native' LIMIT 1"), 'native LOGIN',
	'the native trigger sees TG_TAG LOGIN');

$node->stop;
done_testing();
