# The registry names functions as schema.function and follows renames. A rename that runs while
# another transaction is registering the function must not leave the registry naming a function
# that no longer exists (the registration would silently stop firing, and pg_dump would dump a
# name that resolves to nothing): ALTER FUNCTION … RENAME waits for the registering transaction
# (create_trigger() locks the function), ALTER SCHEMA … RENAME renames the registration once the
# registering transaction has committed, and a registration whose stored name resolves to
# nothing fires the function its guard depends on.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin . '/..';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use LoginTriggerTest;

my $node = LoginTriggerTest::node('renames', bare => 1);
$node->safe_psql('postgres', q{
	CREATE EXTENSION login_trigger;
	CREATE TABLE public.trail (tag text);
	CREATE SCHEMA racing;
	CREATE FUNCTION racing.f() RETURNS event_trigger LANGUAGE plpgsql AS $$
	BEGIN INSERT INTO public.trail VALUES (TG_TAG); END $$;
	CREATE FUNCTION racing.g() RETURNS event_trigger LANGUAGE plpgsql AS $$
	BEGIN INSERT INTO public.trail VALUES ('g ' || TG_TAG); END $$;
});
my $stored = "SELECT string_agg(name || '=' || function, ',' ORDER BY name) FROM login_trigger.event_trigger";

# race RENAME-SQL REGISTRATION FUNCTION: registers FUNCTION in an open transaction, starts the
# rename in another session, waits until that session waits for a lock, then commits.
sub race
{
	my ($rename, $registration, $function) = @_;
	my $registering = $node->background_psql('postgres');
	$registering->query_safe('BEGIN');
	$registering->query_safe("SELECT login_trigger.create_trigger('$registration', 'ddl_command_end', '$function', ARRAY['create view'])");
	my $renaming = $node->background_psql('postgres');
	$renaming->query_until(qr/renaming/, "\\echo renaming\n$rename;\n");
	ok($node->poll_query_until('postgres',
			"SELECT count(*) > 0 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE 'ALTER %'"),
		"$registration: the rename waits for the registering transaction");
	$registering->query_safe('COMMIT');
	$registering->quit;
	$renaming->quit;
}

race('ALTER FUNCTION racing.g() RENAME TO h', 'by_function', 'racing.g()');
is($node->safe_psql('postgres', $stored), 'by_function=racing.h',
	'a function renamed while it was being registered is renamed in the registry');

race('ALTER SCHEMA racing RENAME TO raced', 'by_schema', 'racing.f()');
is($node->safe_psql('postgres', $stored), 'by_function=raced.h,by_schema=raced.f',
	"a schema renamed while one of its functions was being registered: the registry follows");

$node->safe_psql('postgres', 'CREATE VIEW public.v AS SELECT 1 AS one');
is($node->safe_psql('postgres', 'SELECT string_agg(tag, \',\' ORDER BY tag) FROM public.trail'), 'CREATE VIEW,g CREATE VIEW',
	'both registrations fire their function');
my ($ret, $out, $err) = $node->psql('postgres', 'DROP FUNCTION raced.f()');
like($err, qr/cannot drop function raced\.f\(\) because other objects depend on it/, 'and both stay guarded');

# A stored name that resolves to nothing (written while the library was not loaded, say): the
# guard's function fires. The registry's check refuses such a name, so it is made here with the
# check trigger off, as only a superuser repairing the catalog could.
$node->safe_psql('postgres', q{
	ALTER TABLE login_trigger.event_trigger DISABLE TRIGGER event_trigger_check;
	UPDATE login_trigger.event_trigger SET function = 'gone.f' WHERE name = 'by_schema';
	ALTER TABLE login_trigger.event_trigger ENABLE ALWAYS TRIGGER event_trigger_check;
	TRUNCATE public.trail;
	CREATE VIEW public.w AS SELECT 1 AS one;
});
is($node->safe_psql('postgres', 'SELECT string_agg(tag, \',\' ORDER BY tag) FROM public.trail'), 'CREATE VIEW,g CREATE VIEW',
	'a registration whose stored name resolves to nothing fires the function its guard depends on');

done_testing();
