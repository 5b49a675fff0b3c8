# With shared_preload_libraries, the library loads PL/pgSQL into the postmaster (so that backends
# inherit it initialised). Its reference is a server that lists plpgsql in
# shared_preload_libraries itself: side by side, on the same input, PL/pgSQL's settings, their
# sources, a misspelled setting of its prefix, and its behaviour under settings from
# postgresql.conf, from SET and from a function's SET clause must be the same.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin . '/..';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use LoginTriggerTest;

my @conf = ("plpgsql.extra_warnings = 'shadowed_variables'", "plpgsql.variable_conflict = 'use_variable'");
my $ours = LoginTriggerTest::node('plpgsql_ours', bare => 1, conf => \@conf);
my $reference = LoginTriggerTest::node('plpgsql_reference', bare => 1, mode => 'none',
	conf => [ @conf, "shared_preload_libraries = 'plpgsql'" ]);
$ours->safe_psql('postgres', 'CREATE EXTENSION login_trigger');

# Each input runs in a new session that has called no PL/pgSQL function yet; the answer, with
# errors and warnings, is compared between the two servers.
sub answer
{
	my ($node, $sql) = @_;
	my ($ret, $stdout, $stderr) = $node->psql('postgres', $sql);
	return "exit $ret\n$stdout\n$stderr";
}

my $functions = q{
	CREATE TABLE IF NOT EXISTS public.conflict (x int); TRUNCATE public.conflict; INSERT INTO public.conflict VALUES (1);
	CREATE OR REPLACE FUNCTION public.pick(x int) RETURNS int LANGUAGE plpgsql AS $$
	BEGIN RETURN (SELECT x FROM public.conflict); END $$;
	CREATE OR REPLACE FUNCTION public.pick_column(x int) RETURNS int LANGUAGE plpgsql
	  SET plpgsql.variable_conflict = 'use_column' AS $$
	BEGIN RETURN (SELECT x FROM public.conflict); END $$;
};
$_->safe_psql('postgres', $functions) for $ours, $reference;

my @inputs = (
	[ 'settings, values and sources before any PL/pgSQL call',
		q{SELECT name, setting, source, context, vartype, boot_val, reset_val FROM pg_settings
		  WHERE name LIKE 'plpgsql.%' ORDER BY name} ],
	[ 'SHOW of a setting before any PL/pgSQL call', 'SHOW plpgsql.variable_conflict' ],
	[ 'a misspelled setting of the prefix', 'SET plpgsql.variable_conflit = error' ],
	[ 'an invalid value', "SET plpgsql.variable_conflict = 'sometimes'" ],
	[ 'a warning the configuration file switched on',
		q{CREATE FUNCTION pg_temp.shadow(a int) RETURNS int LANGUAGE plpgsql AS $$
		  DECLARE a int := 2; BEGIN RETURN a; END $$} ],
	[ 'variable_conflict from the configuration file', 'SELECT public.pick(7)' ],
	[ 'variable_conflict from SET', "SET plpgsql.variable_conflict = error; SELECT public.pick(7)" ],
	[ "variable_conflict from the function's SET clause", 'SELECT public.pick_column(7)' ],
	[ 'RESET after SET', "SET plpgsql.variable_conflict = error; RESET plpgsql.variable_conflict; SHOW plpgsql.variable_conflict" ],
);
for my $input (@inputs)
{
	my ($what, $sql) = @$input;
	my $expected = answer($reference, $sql);
	is(answer($ours, $sql), $expected, "$what: as with plpgsql in shared_preload_libraries");
	note("$what:\n$expected");
}

# The first input differs on a server without any preload (its settings are placeholders until
# the first PL/pgSQL call), so the comparison can tell a missing preload.
my $plain = LoginTriggerTest::node('plpgsql_plain', bare => 1, mode => 'none', conf => \@conf);
isnt(answer($plain, $inputs[0][1]), answer($reference, $inputs[0][1]),
	'without any preload the settings differ before the first PL/pgSQL call (the comparison can fail)');

$_->stop for $ours, $reference, $plain;
done_testing();
