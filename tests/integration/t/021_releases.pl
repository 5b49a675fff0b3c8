# Releases and extension updates. The SQL of every release is frozen in sql/releases: the
# current version's script, as cargo pgrx generates it, must define exactly the frozen statements
# (pgrx orders them by a dependency graph, so they are compared as a set, comments aside), and
# every earlier release must update to the current version (`ALTER EXTENSION login_trigger
# UPDATE`, through the update scripts sql/login_trigger--A--B.sql) into exactly what a fresh
# install creates — every member object and its definition — with its registrations intact and
# firing. The reference for "exactly" is PostgreSQL's own description of each object.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin . '/..';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use LoginTriggerTest;

my $releases = $ENV{LOGIN_TRIGGER_RELEASES} or die 'LOGIN_TRIGGER_RELEASES is not set (scripts/integration sets it)';
my $node = LoginTriggerTest::node('releases', bare => 1);
my $extension_dir = LoginTriggerTest::pg_config('--sharedir') . '/extension';
my $current = $node->safe_psql('postgres', q{SELECT default_version FROM pg_available_extensions WHERE name = 'login_trigger'});

# version_cmp: orders "0.2.10" after "0.2.9".
sub version_cmp
{
	my @a = split /\./, $_[0];
	my @b = split /\./, $_[1];
	while (@a || @b)
	{
		my $c = (shift(@a) // 0) <=> (shift(@b) // 0);
		return $c if $c;
	}
	return 0;
}
my @frozen = sort { version_cmp($a, $b) } map { /login_trigger--([0-9.]+)\.sql$/ ? $1 : () } glob("$releases/login_trigger--*.sql");
ok(@frozen, 'at least one release is frozen in sql/releases');

# The statements of a script, comments and layout aside, sorted.
sub statements
{
	my ($file) = @_;
	my $text = slurp_file($file);
	$text =~ s{/\*.*?\*/}{}gs;
	my (@statements, $current_statement, $in_dollar);
	$current_statement = '';
	for my $line (split /\n/, $text)
	{
		next if !$in_dollar && $line =~ /^\s*--/;
		$current_statement .= "$line\n";
		my $dollars = () = $line =~ /\$[A-Za-z_]*\$/g;
		$in_dollar = !$in_dollar if $dollars % 2;
		if (!$in_dollar && $line =~ /;\s*$/)
		{
			(my $normalised = $current_statement) =~ s/\s+/ /g;
			$normalised =~ s/^ | $//g;
			push @statements, $normalised;
			$current_statement = '';
		}
	}
	return join("\n", sort @statements);
}

if (grep { $_ eq $current } @frozen)
{
	is(statements("$extension_dir/login_trigger--$current.sql"), statements("$releases/login_trigger--$current.sql"),
		"the installed script of $current defines exactly the frozen statements (a schema change needs a new version and an update script)");
}
else
{
	ok(version_cmp($current, $frozen[-1]) > 0, "the current version $current is later than the last release $frozen[-1]");
	ok(-f "$extension_dir/login_trigger--$frozen[-1]--$current.sql",
		"an update script leads from the last release $frozen[-1] to $current");
}

# Every member object of the extension in a database, with PostgreSQL's description of it.
my $members = q{
	WITH ext AS (SELECT oid FROM pg_extension WHERE extname = 'login_trigger'),
	m AS (SELECT classid, objid FROM pg_depend, ext
	       WHERE refclassid = 'pg_extension'::regclass AND refobjid = ext.oid AND deptype = 'e')
	SELECT string_agg(d, E'\n' ORDER BY d) FROM (
	  SELECT pg_describe_object(classid, objid, 0) || ' | ' || coalesce(CASE
	    WHEN classid = 'pg_proc'::regclass THEN
	      (SELECT CASE WHEN prokind IN ('f', 'p') THEN pg_get_functiondef(objid) ELSE prokind::text END
	              || ' | acl ' || coalesce(proacl::text, '-') FROM pg_proc WHERE oid = objid)
	    WHEN classid = 'pg_class'::regclass THEN
	      (SELECT relkind::text || ' | acl ' || coalesce(relacl::text, '-') || ' | ' || coalesce(pg_get_viewdef(objid), '') || ' | ' ||
	              coalesce((SELECT string_agg(attname || ' ' || format_type(atttypid, atttypmod) || CASE WHEN attnotnull THEN ' not null' ELSE '' END
	                                          || coalesce(' default ' || pg_get_expr(adbin, adrelid), ''), ', ' ORDER BY attnum)
	                          FROM pg_attribute LEFT JOIN pg_attrdef ON adrelid = attrelid AND adnum = attnum
	                         WHERE attrelid = objid AND attnum > 0 AND NOT attisdropped), '') || ' | ' ||
	              coalesce((SELECT string_agg(pg_get_constraintdef(oid), ', ' ORDER BY conname) FROM pg_constraint WHERE conrelid = objid), '') || ' | ' ||
	              coalesce((SELECT string_agg(pg_get_triggerdef(oid) || ' ' || tgenabled::text, ', ' ORDER BY tgname) FROM pg_trigger
	                         WHERE tgrelid = objid AND NOT tgisinternal AND tgfoid <> 'login_trigger.registered_function_carrier()'::regprocedure), '') || ' | ' ||
	              coalesce((SELECT string_agg(pg_get_indexdef(indexrelid), ', ' ORDER BY indexrelid::regclass::text) FROM pg_index WHERE indrelid = objid), '') || ' | ' ||
	              coalesce(obj_description(objid, 'pg_class'), '')
	         FROM pg_class WHERE oid = objid)
	    WHEN classid = 'pg_type'::regclass THEN (SELECT format_type(objid, NULL))
	    ELSE '' END, '') AS d
	  FROM m) described};
my $registrations = "SELECT string_agg(concat_ws('|', name, event, function, enabled, tags::text), E'\\n' ORDER BY name) FROM login_trigger.event_trigger";

$node->safe_psql('postgres', 'CREATE DATABASE fresh');
$node->safe_psql('fresh', 'CREATE EXTENSION login_trigger');
my $fresh = $node->safe_psql('fresh', $members);
like($fresh, qr/function login_trigger\.create_trigger/, 'the member listing describes the fresh install');

for my $release (grep { version_cmp($_, $current) < 0 } @frozen)
{
	my $db = "from_$release" =~ s/\./_/gr;
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	$node->safe_psql($db, qq{
		CREATE EXTENSION login_trigger VERSION '$release';
		CREATE TABLE public.trail (event text, tag text);
		CREATE FUNCTION public.audit() RETURNS event_trigger LANGUAGE plpgsql AS \$\$
		BEGIN INSERT INTO public.trail VALUES (TG_EVENT, TG_TAG); END \$\$;
		SELECT login_trigger.create_trigger('audit', 'ddl_command_end', 'public.audit()');
		SELECT login_trigger.create_trigger('filtered', 'ddl_command_end', 'public.audit()', ARRAY['create view']);
		SELECT login_trigger.create_trigger('paused', 'sql_drop', 'public.audit()');
		SELECT login_trigger.disable_trigger('paused');
		SELECT login_trigger.create_trigger('hello', 'login', 'public.audit()');
	});
	my $before = $node->safe_psql($db, $registrations);
	$node->safe_psql($db, 'ALTER EXTENSION login_trigger UPDATE');
	is($node->safe_psql($db, q{SELECT extversion FROM pg_extension WHERE extname = 'login_trigger'}), $current,
		"$release: ALTER EXTENSION UPDATE reaches $current");
	is($node->safe_psql($db, $members), $fresh, "$release: updated, every member object is defined as in a fresh install of $current");
	is($node->safe_psql($db, $registrations), $before, "$release: the registrations are kept");
	$node->safe_psql($db, 'TRUNCATE public.trail; CREATE VIEW public.v AS SELECT 1 AS one;');
	is($node->safe_psql($db, q{SELECT string_agg(event || ':' || tag, ',' ORDER BY event) FROM public.trail WHERE event <> 'login'}),
		'ddl_command_end:CREATE VIEW,ddl_command_end:CREATE VIEW', "$release: updated, the registrations fire");
	my ($ret, $out, $err) = $node->psql($db, 'DROP FUNCTION public.audit()');
	like($err, qr/cannot drop function audit\(\) because other objects depend on it/, "$release: updated, DROP FUNCTION is still refused");
}

done_testing();
