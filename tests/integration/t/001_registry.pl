# The registry across sessions and dumps: a registration made in one session is seen by another
# on its next command; the shared-memory summary of each database's login and logout triggers
# (shared_preload_libraries) follows every change, the registry's own drop included; and
# pg_dump / pg_restore keeps every registration and its dependency.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin . '/..';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use LoginTriggerTest;

my $node = LoginTriggerTest::node('registry');

# Session B starts (and builds its cache) before any logout trigger exists.
my $b = $node->background_psql('postgres');
$b->query_safe("SET application_name = 'session_b'");
$node->safe_psql('postgres',
	"SELECT login_trigger.create_trigger('out', 'logout', 'public.audit_event()')");
$b->query_safe('SELECT 1');
$b->quit;
LoginTriggerTest::wait_for_audit($node, "event = 'logout' AND app = 'session_b'",
	'a logout trigger registered in another session fires for a session started before it');

# Disabling in one session takes effect in another on its next command.
my $c = $node->background_psql('postgres');
$c->query_safe("SET application_name = 'session_c'");
$node->safe_psql('postgres', "SELECT login_trigger.disable_trigger('out')");
$c->query_safe('SELECT 1');
$c->quit;
$node->safe_psql('postgres', "SELECT login_trigger.enable_trigger('out')");
ok($node->poll_query_until('postgres',
		"SELECT count(*) = 0 FROM pg_stat_activity WHERE application_name = 'session_c'"),
	'session_c has ended (its logout callback ran before it left pg_stat_activity)');
is($node->safe_psql('postgres', "SELECT count(*) FROM public.audit WHERE app = 'session_c'"),
	'0', 'a trigger disabled in another session no longer fires');

# The shared summary: connections after the first take the login triggers from shared memory,
# so every change must reach it. Each probe connection is named, and its login row counted.
my $probe = 0;
sub logins_fired
{
	my $app = 'probe_' . ++$probe;
	LoginTriggerTest::safe_psql_at($node, $node->connstr('postgres') . " application_name=$app", 'SELECT 1');
	return $node->safe_psql('postgres', "SELECT count(*) FROM public.audit WHERE event = 'login' AND app = '$app'");
}
$node->safe_psql('postgres', "SELECT login_trigger.create_trigger('in', 'login', 'public.audit_event()')");
is(logins_fired(), '1', 'summary: a new login trigger fires');
is(logins_fired(), '1', 'summary: and fires again from the summary');
$node->safe_psql('postgres', "SELECT login_trigger.disable_trigger('in')");
is(logins_fired(), '0', 'summary: a disabled login trigger does not fire');
$node->safe_psql('postgres', "SELECT login_trigger.enable_trigger('in', 'replica')");
is(logins_fired(), '0', 'summary: a replica-only login trigger does not fire in an origin session');
$node->safe_psql('postgres', "SELECT login_trigger.enable_trigger('in')");
is(logins_fired(), '1', 'summary: re-enabled, it fires');
$node->safe_psql('postgres', q{
	CREATE ROLE not_super;
	ALTER FUNCTION public.audit_event() OWNER TO not_super;
});
is(logins_fired(), '0', 'summary: a function no longer owned by a superuser is skipped');
$node->safe_psql('postgres', 'ALTER FUNCTION public.audit_event() OWNER TO postgres');
is(logins_fired(), '1', 'summary: owned by a superuser again, it fires');
$node->safe_psql('postgres', 'DROP EXTENSION login_trigger CASCADE');
is(logins_fired(), '0', 'summary: after DROP EXTENSION the dropped registry fires nothing');
$node->safe_psql('postgres', 'CREATE EXTENSION login_trigger');
is(logins_fired(), '0', 'summary: a new, empty registry fires nothing');
$node->safe_psql('postgres', q{
	SELECT login_trigger.create_trigger('in', 'login', 'public.audit_event()');
	SELECT login_trigger.create_trigger('out', 'logout', 'public.audit_event()');
});
is(logins_fired(), '1', 'summary: registered in the new registry, it fires');
$node->safe_psql('postgres', "SELECT login_trigger.drop_trigger('in')");
is(logins_fired(), '0', 'summary: a dropped login trigger does not fire');

# pg_dump / pg_restore round trip.
$node->safe_psql('postgres', 'CREATE DATABASE src');
$node->safe_psql('src', $LoginTriggerTest::AUDIT_SQL =~ s/CREATE ROLE alice[^;]*;//r);
$node->safe_psql('src', q{
	CREATE SCHEMA hooks;
	CREATE FUNCTION hooks.on_ddl() RETURNS void LANGUAGE sql AS $$SELECT$$;
	SELECT login_trigger.create_trigger('a_login', 'login', 'public.audit_event()');
	SELECT login_trigger.create_trigger('b_ddl', 'ddl_command_end', 'hooks.on_ddl()', ARRAY['create table', 'drop role']);
	SELECT login_trigger.create_trigger('c_out', 'logout', 'public.audit_event()', enabled => 'always');
	SELECT login_trigger.create_trigger('d_rewrite', 'table_rewrite', 'hooks.on_ddl()', enabled => 'disabled');
});
my $registry = q{SELECT string_agg(concat_ws('|', name, event, function, enabled, tags, owner), E'\n' ORDER BY name)
                 FROM login_trigger.event_trigger};
my $before = $node->safe_psql('src', $registry);
my $dump = $node->basedir . '/src.dump';
$node->command_ok([ 'pg_dump', '-Fc', '-f', $dump, '-d', $node->connstr('src') ], 'pg_dump');
$node->safe_psql('postgres', 'CREATE DATABASE dst');
$node->command_ok([ 'pg_restore', '-d', $node->connstr('dst'), $dump ], 'pg_restore');
is($node->safe_psql('dst', $registry), $before, 'every registration survives pg_dump / pg_restore');
is($node->safe_psql('dst',
		"SELECT count(*) FROM pg_trigger WHERE tgrelid::regclass::text LIKE 'login_trigger.registered%function'"),
	'4', 'restored registrations get their dependency carriers');
my ($ret, $out, $err) = $node->psql('dst', 'DROP FUNCTION hooks.on_ddl()');
like($err, qr/trigger b_ddl on table login_trigger.registered_function depends on function/,
	'restored registrations still depend on their functions');

$node->stop;
done_testing();
