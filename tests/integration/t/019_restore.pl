# pg_dump / pg_restore of a database with DDL registrations of every kind — an audit trigger, a
# tag-filtered one, sql_drop, table_rewrite, a disabled and a replica one, and a `noddl` start
# trigger that refuses every command — into fresh databases (plain, --single-transaction, -j 2).
# The reference is native event triggers, which pg_restore creates last, so they never fire for
# the restore's own commands: ours fire through native event triggers that pg_dump dumps as such,
# so the restore must succeed without an error, write no audit row, and leave registrations that
# are identical and active.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin . '/..';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use LoginTriggerTest;

my $node = LoginTriggerTest::node('restore', bare => 1);
$node->safe_psql('postgres', 'CREATE DATABASE src; CREATE ROLE restore_reader;');
$node->safe_psql('src', q{
	CREATE EXTENSION login_trigger;
	CREATE TABLE public.ddl_audit (id bigserial PRIMARY KEY, event text, tag text, identity text);
	CREATE FUNCTION public.audit_ddl() RETURNS event_trigger LANGUAGE plpgsql SET search_path = pg_catalog AS $$
	BEGIN
	  INSERT INTO public.ddl_audit (event, tag, identity)
	  SELECT TG_EVENT, TG_TAG, string_agg(object_identity, ', ') FROM login_trigger.ddl_commands();
	END $$;
	CREATE FUNCTION public.audit_any() RETURNS event_trigger LANGUAGE plpgsql SET search_path = pg_catalog AS $$
	BEGIN INSERT INTO public.ddl_audit (event, tag) VALUES (TG_EVENT, TG_TAG); END $$;
	CREATE FUNCTION public.abort_any_command() RETURNS event_trigger LANGUAGE plpgsql AS $$
	BEGIN RAISE EXCEPTION 'command % is disabled', tg_tag; END $$;
	CREATE TABLE public.accounts (id int PRIMARY KEY, owner text NOT NULL, balance numeric DEFAULT 0);
	CREATE TABLE public.entries (id bigserial PRIMARY KEY, account int REFERENCES public.accounts, amount numeric);
	CREATE INDEX entries_account ON public.entries (account);
	CREATE VIEW public.balances AS SELECT owner, balance FROM public.accounts;
	GRANT SELECT ON public.accounts, public.balances TO restore_reader;
	INSERT INTO public.accounts VALUES (1, 'ann', 10), (2, 'bob', 20);
	INSERT INTO public.entries (account, amount) VALUES (1, 5), (2, 7);
	SELECT login_trigger.create_trigger('audit', 'ddl_command_end', 'public.audit_ddl()');
	SELECT login_trigger.create_trigger('audit_tables', 'ddl_command_end', 'public.audit_any()', ARRAY['create table', 'alter table']);
	SELECT login_trigger.create_trigger('drops', 'sql_drop', 'public.audit_any()');
	SELECT login_trigger.create_trigger('rewrites', 'table_rewrite', 'public.audit_any()');
	SELECT login_trigger.create_trigger('paused', 'ddl_command_end', 'public.audit_any()');
	SELECT login_trigger.disable_trigger('paused');
	SELECT login_trigger.create_trigger('on_replica', 'ddl_command_end', 'public.audit_any()', NULL, 'replica');
	CREATE TABLE public.logins (app text);
	GRANT INSERT ON public.logins TO PUBLIC;
	CREATE FUNCTION public.note_login() RETURNS event_trigger LANGUAGE plpgsql AS $$
	BEGIN INSERT INTO public.logins VALUES (current_setting('application_name')); END $$;
	SELECT login_trigger.create_trigger('hello', 'login', 'public.note_login()');
	CREATE TABLE public.logouts (app text);
	GRANT INSERT ON public.logouts TO PUBLIC;
	CREATE FUNCTION public.note_logout() RETURNS event_trigger LANGUAGE plpgsql AS $$
	BEGIN INSERT INTO public.logouts VALUES (current_setting('application_name')); END $$;
	SELECT login_trigger.create_trigger('goodbye', 'logout', 'public.note_logout()');
	CREATE TABLE public.before_noddl (a int);
	SELECT login_trigger.create_trigger('noddl', 'ddl_command_start', 'public.abort_any_command()');
});
my ($ret, $out, $err) = $node->psql('src', 'CREATE TABLE public.refused (a int)');
like($err, qr/command CREATE TABLE is disabled/, 'in the source, noddl refuses DDL');

my $registry = "SELECT string_agg(concat_ws('|', name, event, function::text, enabled, tags::text), E'\\n' ORDER BY name) FROM login_trigger.event_trigger";
my $audit = 'SELECT count(*) || \'/\' || coalesce(max(id), 0) FROM public.ddl_audit';
my $dispatchers = "SELECT string_agg(evtname || ':' || evtenabled::text, ',' ORDER BY evtname) FROM pg_event_trigger";
my $constraints = "SELECT string_agg(conname, ',' ORDER BY conname) FROM pg_constraint WHERE connamespace = 'public'::regnamespace";
# Each guard (carrier trigger) and the function it depends on.
my $guards = q{SELECT string_agg(t.tgname || '->' || d.refobjid::regprocedure::text, ',' ORDER BY t.tgname)
	FROM pg_trigger t JOIN pg_depend d ON d.classid = 'pg_trigger'::regclass AND d.objid = t.oid
	 AND d.refclassid = 'pg_proc'::regclass AND d.refobjid <> t.tgfoid
	WHERE t.tgrelid::regclass::text LIKE 'login_trigger.registered_%'};
my %source = (
	guards => $node->safe_psql('src', $guards),
	registry => $node->safe_psql('src', $registry),
	audit => $node->safe_psql('src', $audit),
	dispatchers => $node->safe_psql('src', $dispatchers),
	constraints => $node->safe_psql('src', $constraints));
is($source{dispatchers}, 'login_trigger_ddl_command_end:A,login_trigger_ddl_command_start:A,login_trigger_login:D,login_trigger_logout:D,login_trigger_sql_drop:A,login_trigger_table_rewrite:A',
	'the source has one event trigger per registered event, disabled for login');

my $dump = $node->basedir . '/src.dump';
$node->command_ok([ 'pg_dump', '-Fc', '-f', $dump, '-d', $node->connstr('src') ], 'pg_dump');

for my $mode ([ plain => () ], [ single => '--single-transaction' ], [ parallel => '-j', '2' ])
{
	my ($name, @options) = @$mode;
	my $db = "dst_$name";
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	my ($stdout, $stderr) = ('', '');
	# pg_restore names its connections "pg_restore" unless PGAPPNAME (set by the framework) says otherwise.
	my $ok = IPC::Run::run([ 'env', '-u', 'PGAPPNAME', 'pg_restore', @options, '-d', $node->connstr($db), $dump ],
		'>', \$stdout, '2>', \$stderr);
	ok($ok, "$name restore succeeds");
	is($stderr, '', "$name restore reports no error");
	is($node->safe_psql($db, $audit), $source{audit}, "$name restore: nothing of ours fired for the restore's own commands");
	$node->safe_psql($db, 'TRUNCATE public.logins');
	is($node->safe_psql($db, q{SELECT count(*) FROM public.logins WHERE app = '019_restore.pl'}), '1',
		"$name restore: afterwards it fires, once for this connection");
	is($node->safe_psql($db, $registry), $source{registry}, "$name restore: the registrations are identical");
	is($node->safe_psql($db, $guards), $source{guards}, "$name restore: so are their guards");
	is($node->safe_psql($db, $dispatchers), $source{dispatchers}, "$name restore: so are the dispatchers");
	is($node->safe_psql($db, $constraints), $source{constraints}, "$name restore: every constraint restored");
	is($node->safe_psql($db, "SELECT has_table_privilege('restore_reader', 'public.balances', 'SELECT')"), 't',
		"$name restore: grants restored");
	($ret, $out, $err) = $node->psql($db, 'CREATE TABLE public.refused (a int)');
	like($err, qr/command CREATE TABLE is disabled/, "$name restore: afterwards noddl refuses DDL again");
	$node->safe_psql($db, "SET login_trigger.enabled = off; CREATE TABLE public.allowed (a int);");
	$node->safe_psql($db, "SELECT login_trigger.drop_trigger('noddl')");
	($ret, $out, $err) = $node->psql($db, 'DROP FUNCTION public.audit_ddl()');
	like($err, qr/cannot drop function audit_ddl\(\) because other objects depend on it/, "$name restore: DROP FUNCTION of a registered function is still refused");
	$node->safe_psql($db, 'CREATE TABLE public.audited (a int)');
	like($node->safe_psql($db, "SELECT string_agg(tag || ':' || coalesce(identity, ''), ',' ORDER BY id) FROM public.ddl_audit WHERE tag = 'CREATE TABLE'"),
		qr/CREATE TABLE:public.audited/, "$name restore: the audit trigger fires for new DDL");
}

# pg_restore --clean --if-exists over an existing copy with every registration in place: the
# event triggers of ours are dropped first (they were created last), which deactivates the
# registrations and releases their guards, so the registered functions can be dropped before the
# extension, as with native event triggers; the restore reports no error and the copy is the
# source again, registrations active.
{
	my $db = 'dst_plain';
	my ($stdout, $stderr) = ('', '');
	$node->safe_psql($db, "SELECT login_trigger.create_trigger('noddl', 'ddl_command_start', 'public.abort_any_command()')");
	my $ok = IPC::Run::run([ 'pg_restore', '--clean', '--if-exists', '-d', $node->connstr($db), $dump ], '>', \$stdout, '2>', \$stderr);
	ok($ok, '--clean --if-exists restore over a copy with every registration succeeds');
	is($stderr, '', '--clean --if-exists restore reports no error');
	is($node->safe_psql($db, $registry), $source{registry}, '--clean restore: the registrations are identical');
	is($node->safe_psql($db, $guards), $source{guards}, '--clean restore: so are their guards');
	is($node->safe_psql($db, $dispatchers), $source{dispatchers}, '--clean restore: so are the event triggers');
	is($node->safe_psql($db, $audit), $source{audit}, "--clean restore: nothing of ours fired for the restore's own commands");
	($ret, $out, $err) = $node->psql($db, 'CREATE TABLE public.refused (a int)');
	like($err, qr/command CREATE TABLE is disabled/, '--clean restore: afterwards noddl refuses DDL again');
	$node->safe_psql($db, "SELECT login_trigger.drop_trigger('noddl')");
	($ret, $out, $err) = $node->psql($db, 'DROP FUNCTION public.audit_ddl()');
	like($err, qr/cannot drop function audit_ddl\(\) because other objects depend on it/, '--clean restore: DROP FUNCTION is refused again');
}

# A database whose login trigger refuses pg_dump (its application name is not allowed) refuses
# pg_dump, as it would with a native login event trigger (17+, compared below); a superuser
# dumps it anyway with login_trigger.enabled off for that connection, as the README says.
my $gate = q{
	CREATE FUNCTION public.only_app() RETURNS event_trigger LANGUAGE plpgsql AS $$
	BEGIN
	  IF current_setting('application_name') <> 'app' THEN
	    RAISE EXCEPTION 'application % is not allowed', current_setting('application_name') USING ERRCODE = 'LT001';
	  END IF;
	END $$;};
$node->safe_psql('postgres', 'CREATE DATABASE gated');
$node->safe_psql('gated', "CREATE EXTENSION login_trigger; $gate SELECT login_trigger.create_trigger('gate', 'login', 'public.only_app()');");
# pg_dump names itself "pg_dump" unless PGAPPNAME says otherwise (the test framework sets it).
delete $ENV{PGAPPNAME};
my ($dump_out, $dump_err) = ('', '');
ok(!IPC::Run::run([ 'pg_dump', '-d', $node->connstr('gated'), '-f', '/dev/null' ], '>', \$dump_out, '2>', \$dump_err),
	'a login trigger that refuses pg_dump refuses it');
like($dump_err, qr/application pg_dump is not allowed/, "pg_dump reports the login trigger's error");
{
	local $ENV{PGOPTIONS} = '-c login_trigger.enabled=off';
	$node->command_ok([ 'pg_dump', '-d', $node->connstr('gated'), '-f', '/dev/null' ],
		'a superuser dumps it with login_trigger.enabled=off for the connection');
}
if ($node->safe_psql('postgres', 'SHOW server_version_num') >= 170000)
{
	$node->safe_psql('postgres', 'CREATE DATABASE native_gated');
	$node->safe_psql('native_gated', "$gate CREATE EVENT TRIGGER gate ON login EXECUTE FUNCTION public.only_app();");
	($dump_out, $dump_err) = ('', '');
	ok(!IPC::Run::run([ 'pg_dump', '-d', $node->connstr('native_gated'), '-f', '/dev/null' ], '>', \$dump_out, '2>', \$dump_err),
		'native: a login event trigger that refuses pg_dump refuses it too');
	like($dump_err, qr/application pg_dump is not allowed/, 'native: with the same error');
}

$node->stop;
done_testing();
