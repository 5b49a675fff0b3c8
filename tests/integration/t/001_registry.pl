# The registry across sessions and dumps: a registration made in one session is seen by another
# on its next command, and pg_dump / pg_restore keeps every registration and its dependency.
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
