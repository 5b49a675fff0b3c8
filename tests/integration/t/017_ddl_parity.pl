# DDL parity with native event triggers, differentially: the corpus in corpus/ddl.sql (every
# command tag native event triggers support, ALTER TABLE subcommands, inheritance and partitions,
# temporary objects, GRANT/REVOKE, DROP … CASCADE, DROP OWNED, rewrites, failures) runs in a
# database where a native logger and a login_trigger logger are registered side by side for all
# four events. Each logger writes one row per firing (event, TG_TAG) and one per object its
# functions report — native's from pg_event_trigger_*(), ours from login_trigger.ddl_commands(),
# dropped_objects(), table_rewrite_oid()/reason() — and the test fails on any difference in any
# statement's rows. The corpus also runs in a database with the native logger alone: every
# statement must succeed or fail exactly as there (a registered trigger must never make valid DDL
# fail).
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin . '/..';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use LoginTriggerTest;

my $node = LoginTriggerTest::node('parity', bare => 1);
$node->safe_psql('postgres', 'CREATE ROLE corp_owner; CREATE ROLE corp_reader;');

# One logger per source, written once: what differs is where the rows come from.
my %source = (
	native => {
		commands => 'pg_catalog.pg_event_trigger_ddl_commands()',
		dropped => 'pg_catalog.pg_event_trigger_dropped_objects()',
		rewrite => 'pg_catalog.pg_event_trigger_table_rewrite_oid() || \'|\' || pg_catalog.pg_event_trigger_table_rewrite_reason()',
	},
	ours => {
		commands => 'login_trigger.ddl_commands()',
		dropped => 'login_trigger.dropped_objects()',
		rewrite => 'login_trigger.table_rewrite_oid() || \'|\' || login_trigger.table_rewrite_reason()',
	});

sub logger
{
	my ($name) = @_;
	my $s = $source{$name};
	return qq{
	CREATE FUNCTION public.log_$name() RETURNS event_trigger LANGUAGE plpgsql SET search_path = pg_catalog AS \$fn\$
	BEGIN
	  INSERT INTO public.ddl_rows VALUES ('$name', statement_timestamp(), TG_EVENT, TG_TAG, 0, '');
	  IF TG_EVENT = 'ddl_command_end' THEN
	    INSERT INTO public.ddl_rows
	    SELECT '$name', statement_timestamp(), TG_EVENT, TG_TAG, n,
	           concat_ws('|', classid, objid, objsubid, command_tag, object_type, schema_name, object_identity, in_extension)
	      FROM $s->{commands} WITH ORDINALITY AS c(classid, objid, objsubid, command_tag, object_type, schema_name,
	           object_identity, in_extension, command, n);
	  ELSIF TG_EVENT = 'sql_drop' THEN
	    INSERT INTO public.ddl_rows
	    SELECT '$name', statement_timestamp(), TG_EVENT, TG_TAG, n,
	           concat_ws('|', classid, objid, objsubid, original, normal, is_temporary, object_type, schema_name,
	                     object_name, object_identity, address_names::text, address_args::text)
	      FROM $s->{dropped} WITH ORDINALITY AS d(classid, objid, objsubid, original, normal, is_temporary,
	           object_type, schema_name, object_name, object_identity, address_names, address_args, n);
	  ELSIF TG_EVENT = 'table_rewrite' THEN
	    INSERT INTO public.ddl_rows VALUES ('$name', statement_timestamp(), TG_EVENT, TG_TAG, 1, $s->{rewrite});
	  END IF;
	END \$fn\$;};
}

my @events = qw(ddl_command_start ddl_command_end sql_drop table_rewrite);
my $native_setup = "CREATE TABLE public.ddl_rows (source text, stmt_at timestamptz, event text, tg_tag text, n bigint, row_text text);\n"
  . logger('native')
  . join('', map { "CREATE EVENT TRIGGER native_$_ ON $_ EXECUTE FUNCTION public.log_native();\n" } @events);
my $ours_setup = "CREATE EXTENSION login_trigger;\n" . logger('ours')
  . join('', map { "SELECT login_trigger.create_trigger('ours_$_', '$_', 'public.log_ours()');\n" } @events);

$node->safe_psql('postgres', 'CREATE DATABASE side_by_side; CREATE DATABASE native_only;');
$node->safe_psql('side_by_side', $native_setup . $ours_setup . 'TRUNCATE public.ddl_rows;');
$node->safe_psql('native_only', $native_setup);

# Runs the corpus statement by statement (psql sends each on its own); returns the errors.
my $corpus = "$FindBin::RealBin/../corpus/ddl.sql";
sub run_corpus
{
	my ($db) = @_;
	my ($stdout, $stderr) = ('', '');
	IPC::Run::run([ 'psql', '-X', '-q', '-d', $node->connstr($db), '-f', $corpus ], '>', \$stdout, '2>', \$stderr);
	return join("\n", grep { /ERROR/ } split(/\n/, $stderr));
}
my $errors_both = run_corpus('side_by_side');
my $errors_native = run_corpus('native_only');
is($errors_both, $errors_native, 'with login_trigger registered, every statement succeeds or fails as with native alone');
note("corpus errors (the same in both databases):\n$errors_native");

# Statements native fires nothing for (REINDEX before 17) fire ours from the hook path, with no
# reference to compare with: they are compared separately below.
my $diff_sql = q{
	WITH native AS (SELECT stmt_at, event, tg_tag, n, row_text FROM public.ddl_rows WHERE source = 'native'),
	     ours AS (SELECT stmt_at, event, tg_tag, n, row_text FROM public.ddl_rows o WHERE source = 'ours'
	                AND EXISTS (SELECT FROM public.ddl_rows r WHERE r.source = 'native' AND r.stmt_at = o.stmt_at)),
	     differences AS ((SELECT 'native only' AS side, * FROM native EXCEPT ALL SELECT 'native only', * FROM ours)
	                     UNION ALL
	                     (SELECT 'ours only', * FROM ours EXCEPT ALL SELECT 'ours only', * FROM native))
};
my $statements = $node->safe_psql('side_by_side', "SELECT count(DISTINCT stmt_at) FROM public.ddl_rows WHERE source = 'native'");
my $differing = $node->safe_psql('side_by_side', "$diff_sql SELECT count(DISTINCT stmt_at) FROM differences");
cmp_ok($statements, '>=', 150, "the native logger saw $statements statements of the corpus");
is($differing, '0', "login_trigger's rows equal native's for every statement ($statements statements)");
diag($node->safe_psql('side_by_side', "$diff_sql SELECT concat_ws(' | ', side, event, tg_tag, n, row_text) FROM differences ORDER BY stmt_at, event, n LIMIT 40"))
  if $differing ne '0';
my $tags = $node->safe_psql('side_by_side', "SELECT count(DISTINCT tg_tag) FROM public.ddl_rows WHERE source = 'native'");
note("command tags covered: $tags");
LoginTriggerTest::figure('ddl_parity', 'command tags covered', $tags);
LoginTriggerTest::figure('ddl_parity', 'statements compared', $statements);
LoginTriggerTest::figure('ddl_parity', 'statements with equal rows', $statements - $differing);
is($node->safe_psql('side_by_side', q{
	SELECT string_agg(DISTINCT tg_tag, ', ') FROM public.ddl_rows o WHERE source = 'ours'
	   AND NOT EXISTS (SELECT FROM public.ddl_rows r WHERE r.source = 'native' AND r.stmt_at = o.stmt_at)}),
	$node->safe_psql('side_by_side', "SELECT CASE WHEN current_setting('server_version_num')::int < 170000 THEN 'REINDEX' ELSE '' END"),
	'only the commands native never fires for (REINDEX before 17) fire ours without native');
for my $event (@events)
{
	cmp_ok($node->safe_psql('side_by_side', "SELECT count(*) FROM public.ddl_rows WHERE source = 'ours' AND event = '$event'"),
		'>', 0, "login_trigger fired $event in the corpus");
}

$node->stop;
done_testing();
