# The Debian package (scripts/package) as a DBA installs it: scripts/test removes what cargo pgrx
# installed, installs the package with dpkg -i, runs this test with LOGIN_TRIGGER_PACKAGE naming
# it, then removes the package and checks that nothing is left. Here: the server loads exactly
# the package's files, and a login and a DDL trigger registered through it fire.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin . '/..';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use LoginTriggerTest;

my $package = $ENV{LOGIN_TRIGGER_PACKAGE};
plan skip_all => 'LOGIN_TRIGGER_PACKAGE names no installed package (scripts/test sets it)' unless $package;

my $node = LoginTriggerTest::node('package', bare => 1);
my @files = grep { -f $_ } split /\n/, `dpkg-query -L $package`;
my $pkglibdir = LoginTriggerTest::pg_config('--pkglibdir');
my $extension_dir = LoginTriggerTest::pg_config('--sharedir') . '/extension';
ok((grep { $_ eq "$pkglibdir/login_trigger.so" } @files), "$package installs the library the server loads");
ok((grep { $_ eq "$pkglibdir/login_trigger_session.so" } @files), "$package installs the session library");
ok((grep { $_ eq "$extension_dir/login_trigger.control" } @files), "$package installs the control file");
my $version = $node->safe_psql('postgres', q{SELECT default_version FROM pg_available_extensions WHERE name = 'login_trigger'});
ok((grep { $_ eq "$extension_dir/login_trigger--$version.sql" } @files), "$package installs the script of $version");

$node->safe_psql('postgres', q{
	CREATE EXTENSION login_trigger;
	CREATE TABLE public.trail (event text, tag text);
	GRANT INSERT ON public.trail TO PUBLIC;
	CREATE FUNCTION public.audit() RETURNS event_trigger LANGUAGE plpgsql AS $$
	BEGIN INSERT INTO public.trail VALUES (TG_EVENT, TG_TAG); END $$;
	SELECT login_trigger.create_trigger('hello', 'login', 'public.audit()');
	SELECT login_trigger.create_trigger('audit', 'ddl_command_end', 'public.audit()');
});
$node->safe_psql('postgres', 'CREATE TABLE public.t (a int)');
is($node->safe_psql('postgres', q{SELECT string_agg(DISTINCT event || CASE WHEN event = 'login' THEN '' ELSE ':' || tag END, ',')
	FROM public.trail}), 'ddl_command_end:CREATE TABLE,login', 'the login trigger fired for the connections and the DDL trigger for CREATE TABLE');
done_testing();
