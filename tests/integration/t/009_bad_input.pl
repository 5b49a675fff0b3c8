# Bad input: hundreds of generated calls to the SQL API (odd names, unknown events, tags valid for
# another event, wrong function signatures, NULL everywhere, unknown trigger names) each either
# succeed or fail with a documented SQLSTATE; afterwards the registry is consistent (every row
# passes the checks again, one dependency carrier per row) and no backend crashed.
use strict;
use warnings;
use utf8;
use Encode qw(encode_utf8);
use FindBin;
use lib $FindBin::RealBin . '/..';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use LoginTriggerTest;

my $node = LoginTriggerTest::node('bad_input');
$node->safe_psql('postgres', q{
	CREATE FUNCTION public.ok_event() RETURNS event_trigger LANGUAGE plpgsql AS $$BEGIN END$$;
	CREATE FUNCTION public.ok_void() RETURNS void LANGUAGE sql AS $$SELECT$$;
	CREATE FUNCTION public.takes_arg(int) RETURNS void LANGUAGE sql AS $$SELECT$$;
	CREATE FUNCTION public.returns_int() RETURNS int LANGUAGE sql AS $$SELECT 1$$;
	CREATE PROCEDURE public.a_procedure() LANGUAGE sql AS $$SELECT$$;
	CREATE FUNCTION public.alices() RETURNS void LANGUAGE sql AS $$SELECT$$;
	ALTER FUNCTION public.alices() OWNER TO alice;
	CREATE FUNCTION public.outcome(statement text) RETURNS text LANGUAGE plpgsql AS $$
	BEGIN EXECUTE statement; RETURN 'ok';
	EXCEPTION WHEN OTHERS THEN RETURN SQLSTATE; END $$;
});

# The SQLSTATEs the API documents (docs/registry.md), plus those of regprocedure/text[] input.
my %documented = map { $_ => 1 } qw(ok 22004 22023 42602 42622 42710 42704 42883 42809 42P13 42P17
  0A000 42501 42601 22P02 3F000);

srand(20261122);
my @names = ('', 'x' x 63, 'x' x 64, "\x{e9}" x 32, "\x{e9}" x 31, "it's", '"quoted"', 'ünïcode ✓',
	'normal', 'Normal', 'a b', 'NULL', ';drop', '1num', undef);
my @events = ('login', 'logout', 'ddl_command_start', 'ddl_command_end', 'sql_drop', 'table_rewrite',
	'LOGIN', 'logon', '', ' login', undef);
my @functions = ('public.ok_event()', 'public.ok_void()', 'public.takes_arg(int)', 'public.returns_int()',
	'public.a_procedure()', 'public.alices()', 'public.nope()', 'nope.ok_event()', 'public.ok_event(',
	'pg_catalog.now()', '4242424242', undef);
my @tags = (undef, '{}', '{"CREATE TABLE"}', '{"create table","drop table"}', '{LOGIN}', '{"ALTER TABLE"}',
	'{nope}', '{NULL}', '{"CREATE ROLE"}', '{"ALTER SYSTEM"}', '{SELECT}', '{"CREATE TABLE"');
my @states = ('origin', 'ALWAYS', 'replica', 'disabled', 'D', 'sometimes', '', undef);

sub lit
{
	my ($value, $type) = @_;
	return "NULL::$type" unless defined $value;
	$value =~ s/'/''/g;
	return "'$value'::$type";
}
sub pick { return $_[ int(rand(@_)) ]; }

my @calls;
for (1 .. 400)
{
	push @calls, sprintf('SELECT login_trigger.create_trigger(%s, %s, %s, %s, %s)',
		lit(pick(@names), 'text'), lit(pick(@events), 'text'), lit(pick(@functions), 'regprocedure'),
		lit(pick(@tags), 'text[]'), lit(pick(@states), 'text'));
}
for (1 .. 200)
{
	my $name = lit(pick(@names), 'text');
	push @calls, pick(
		"SELECT login_trigger.drop_trigger($name)",
		sprintf('SELECT login_trigger.drop_trigger(%s, %s)', $name, pick('true', 'false', 'NULL')),
		"SELECT login_trigger.disable_trigger($name)",
		sprintf('SELECT login_trigger.enable_trigger(%s, %s)', $name, lit(pick(@states), 'text')),
		sprintf('SELECT login_trigger.rename_trigger(%s, %s)', $name, lit(pick(@names), 'text')));
}

# One session runs every call through outcome() and reports one SQLSTATE per line.
my $script = join('', map {
	"SELECT public.outcome(\$call\$$_\$call\$);\n"
} @calls);
my $out = $node->safe_psql('postgres', encode_utf8($script));
my @outcomes = split /\n/, $out;
is(scalar(@outcomes), scalar(@calls), scalar(@calls) . ' calls made');
my %seen;
$seen{$_}++ for @outcomes;
my @undocumented = grep { !$documented{$_} } sort keys %seen;
is_deeply(\@undocumented, [], 'every call succeeded or failed with a documented SQLSTATE');
note(join(', ', map { "$_: $seen{$_}" } sort keys %seen));
cmp_ok($seen{ok} // 0, '>', 10, 'some calls succeeded');

# The registry is consistent: each row passes the checks again and has exactly one carrier.
is($node->safe_psql('postgres', 'SELECT public.outcome($$UPDATE login_trigger.event_trigger SET name = name$$)'),
	'ok', 'every registered row still passes the accept/reject contract');
is($node->safe_psql('postgres', q{
	SELECT (SELECT count(*) FROM login_trigger.event_trigger)
	     = (SELECT count(*) FROM pg_trigger WHERE tgrelid::regclass::text LIKE 'login_trigger.registered%function')}),
	't', 'one dependency carrier per registration');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM login_trigger.event_trigger t
	 WHERE NOT EXISTS (SELECT FROM pg_trigger g WHERE g.tgname = t.name
	                     AND g.tgrelid::regclass::text LIKE 'login_trigger.registered%function')}),
	'0', 'every carrier has the name of its registration');

# A registry whose column a superuser renamed is refused with a clear error (the cache reads the
# table directly, each column by name and type; a column of another type is refused the same way).
my ($retyped_ret, $retyped_out, $retyped_err) = $node->psql('postgres', q{
	BEGIN;
	ALTER TABLE login_trigger.event_trigger RENAME COLUMN tags TO tag_list;
	CREATE TABLE public.after_retype (a int);
	ROLLBACK;});
like($retyped_err, qr/ERROR:  the login_trigger registry has no column "tags" of type text\[\]/,
	'a registry without a column it reads is refused with a clear error');

# Nobody crashed: the server answers and never restarted a backend.
$node->safe_psql('postgres', q{SELECT login_trigger.drop_trigger(name) FROM login_trigger.event_trigger});
is($node->safe_psql('postgres', 'SELECT 1'), '1', 'the server answers');
unlike(slurp_file($node->logfile), qr/terminated by signal|server process .* was terminated/,
	'no backend crashed');

$node->stop;
done_testing();
