# DDL triggers beside everything else that decides whether and how event triggers fire, each
# compared with native event triggers on the same input where native has the behaviour:
# errors as raised (a server with RUST_BACKTRACE set included), the order between ours and a
# user's native event triggers, login_trigger.enabled, session_replication_role, event_triggers
# (17+), nested DDL, DROP EXTENSION, single-user mode, and "nothing registered costs nothing"
# (no native machinery without registrations).
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin . '/..';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use LoginTriggerTest;

my ($ret, $stdout, $stderr);

# The server inherits RUST_BACKTRACE: no client-visible field may carry a Rust backtrace anyway.
$ENV{RUST_BACKTRACE} = '1';
my $node = LoginTriggerTest::node('interplay', bare => 1);
delete $ENV{RUST_BACKTRACE};
my $major = $node->safe_psql('postgres', "SELECT current_setting('server_version_num')::int / 10000");

my $functions = q{
	CREATE FUNCTION public.refuse() RETURNS event_trigger LANGUAGE plpgsql AS $$
	BEGIN
	  IF TG_TAG IN ('CREATE TABLE', 'CREATE ROLE') AND current_setting('app.refuse', true) = 'on' THEN
	    RAISE EXCEPTION 'no % today', lower(TG_TAG) USING ERRCODE = 'LT001', DETAIL = 'refused detail', HINT = 'refused hint';
	  END IF;
	END $$;
	CREATE TABLE public.fired (seq serial, who text, event text, tag text);
	CREATE FUNCTION public.say() RETURNS event_trigger LANGUAGE plpgsql AS $$
	BEGIN INSERT INTO public.fired (who, event, tag) VALUES (coalesce(current_setting('app.who', true), '?'), TG_EVENT, TG_TAG); END $$;
	CREATE FUNCTION public.say_native() RETURNS event_trigger LANGUAGE plpgsql AS $$
	BEGIN INSERT INTO public.fired (who, event, tag) VALUES ('native', TG_EVENT, TG_TAG); END $$;
	CREATE FUNCTION public.say_ours() RETURNS event_trigger LANGUAGE plpgsql AS $$
	BEGIN INSERT INTO public.fired (who, event, tag) VALUES ('ours', TG_EVENT, TG_TAG); END $$;
};
$node->safe_psql('postgres', 'CREATE DATABASE native_db; CREATE DATABASE ours_db;');
$node->safe_psql('native_db', $functions . q{
	CREATE EVENT TRIGGER refuse ON ddl_command_start EXECUTE FUNCTION public.refuse();});
$node->safe_psql('ours_db', $functions . q{
	CREATE EXTENSION login_trigger;
	SELECT login_trigger.create_trigger('refuse', 'ddl_command_start', 'public.refuse()');});

# The error a statement raises, as a client sees it with every field (VERBOSITY verbose), minus
# the source location, which names the raising C function.
sub error_of
{
	my ($db, $sql, %opts) = @_;
	my ($ret, $stdout, $stderr) = LoginTriggerTest::psql_at($node, $node->connstr($db),
		"\\set VERBOSITY verbose\nSET app.refuse = on;\n$sql");
	$stderr =~ s/^LOCATION:.*\n?//mg;
	return $stderr;
}

# 1. A trigger function's error: as from a native event trigger (ours adds a CONTEXT line that
#    names the registration), never with a Rust backtrace.
my $native = error_of('native_db', 'CREATE TABLE public.t (a int);');
my $ours = error_of('ours_db', 'CREATE TABLE public.t (a int);');
note("native event trigger:\n$native\nlogin_trigger:\n$ours");
like($ours, qr/ERROR:  LT001: no create table today/, 'a DDL trigger error keeps its custom SQLSTATE and message');
like($ours, qr/DETAIL:  refused detail/, 'and its detail');
like($ours, qr/HINT:  refused hint/, 'and its hint');
like($ours, qr/CONTEXT:  PL\/pgSQL function refuse\(\) line \d+ at RAISE\nlogin_trigger trigger "refuse" \(ddl_command_start\)/,
	'and its CONTEXT, with the registration named');
(my $ours_without_name = $ours) =~ s/\nlogin_trigger trigger "refuse" \(ddl_command_start\)//;
is($ours_without_name, $native, 'otherwise exactly the error a native event trigger gives');
unlike($ours, qr/backtrace|rust_begin_unwind|panicking|\.rs:\d+/, 'no Rust backtrace although the server has RUST_BACKTRACE');

# ... also on the hook path (a command native never fires for: no reference to compare with).
my $hook = error_of('ours_db', 'CREATE ROLE refused_role;');
like($hook, qr/ERROR:  LT001: no create role today\nDETAIL:  refused detail\nHINT:  refused hint\nCONTEXT:  PL\/pgSQL function refuse\(\) line \d+ at RAISE\nlogin_trigger trigger "refuse" \(ddl_command_start\)/,
	'a hook-path DDL trigger error keeps SQLSTATE, detail, hint and CONTEXT');
unlike($hook, qr/backtrace|panicking|\.rs:\d+/, 'with no Rust backtrace');

# The command's own error when triggers fire: as without them.
my $own = 'CREATE TABLE public.fired (a int);';
is(error_of('ours_db', "RESET app.refuse; $own"), error_of('native_db', "RESET app.refuse; $own"),
	"a command's own error is the same with our triggers registered");
my $own_role = "CREATE ROLE postgres;";
like(error_of('ours_db', "RESET app.refuse; $own_role"), qr/ERROR:  42710: role "postgres" already exists\n?$/,
	"a hook-path command's own error keeps its SQLSTATE, and nothing is added");

# A function PostgreSQL cannot even look up (a C function whose symbol is gone; CREATE FUNCTION
# checks the symbol, so the catalog row is changed afterwards): fmgr's error as a native event
# trigger gets it, with the CONTEXT line that names the registration.
my $gone = q{CREATE FUNCTION public.gone() RETURNS event_trigger LANGUAGE C AS '$libdir/login_trigger', 'login_trigger_dispatch_ddl';
	UPDATE pg_catalog.pg_proc SET prosrc = 'login_trigger_no_such_symbol' WHERE oid = 'public.gone()'::regprocedure;};
$node->safe_psql('native_db', $gone . 'CREATE EVENT TRIGGER gone ON ddl_command_start EXECUTE FUNCTION public.gone();');
$node->safe_psql('ours_db', $gone . "SELECT login_trigger.create_trigger('gone', 'ddl_command_start', 'public.gone()');");
my $native_gone = error_of('native_db', 'RESET app.refuse; CREATE TABLE public.gone_t (a int);');
my $ours_gone = error_of('ours_db', 'RESET app.refuse; CREATE TABLE public.gone_t (a int);');
note("native event trigger:\n$native_gone\nlogin_trigger:\n$ours_gone");
like($ours_gone, qr/ERROR:  42883: could not find function "login_trigger_no_such_symbol"/, 'a function that cannot be looked up: fmgr\'s error and SQLSTATE');
like($ours_gone, qr/\nCONTEXT:  login_trigger trigger "gone" \(ddl_command_start\)\n?$/, '... with the registration named');
(my $ours_gone_without_name = $ours_gone) =~ s/\nCONTEXT:  login_trigger trigger "gone" \(ddl_command_start\)//;
is($ours_gone_without_name, $native_gone, '... otherwise exactly the error a native event trigger gives');
$node->safe_psql('native_db', 'DROP EVENT TRIGGER gone; DROP FUNCTION public.gone();');
$node->safe_psql('ours_db', "SELECT login_trigger.drop_trigger('gone'); DROP FUNCTION public.gone();");
$node->safe_psql('ours_db', "SELECT login_trigger.drop_trigger('refuse')");

# 2. Order beside a user's native event triggers: all by name, ours at their dispatcher's name
#    (login_trigger_<event>), as native orders event triggers.
$node->safe_psql('ours_db', q{
	CREATE EVENT TRIGGER aaa_native ON ddl_command_end EXECUTE FUNCTION public.say_native();
	CREATE EVENT TRIGGER zzz_native ON ddl_command_end EXECUTE FUNCTION public.say_native();
	SELECT login_trigger.create_trigger('z_ours', 'ddl_command_end', 'public.say_ours()');
	SELECT login_trigger.create_trigger('a_ours', 'ddl_command_end', 'public.say_ours()');
	TRUNCATE public.fired;
	CREATE TABLE public.ordered (a int);
});
is($node->safe_psql('ours_db', "SELECT string_agg(who, ',' ORDER BY seq) FROM public.fired"),
	'native,ours,ours,native', 'aaa_native, then ours in name order (a_ours, z_ours) as login_trigger_ddl_command_end, then zzz_native');
$node->safe_psql('ours_db', 'DROP EVENT TRIGGER aaa_native; DROP EVENT TRIGGER zzz_native;');

# 3. Switches: each compared with what it does to native event triggers.
sub fired_after
{
	my ($settings, $sql) = @_;
	$node->safe_psql('ours_db', 'TRUNCATE public.fired');
	$node->safe_psql('ours_db', "$settings; $sql");
	return $node->safe_psql('ours_db', "SELECT count(*) FROM public.fired WHERE who = 'ours'");
}
is(fired_after('SET login_trigger.enabled = off', 'CREATE TABLE public.off1 (a int)'), '0',
	'login_trigger.enabled = off: ours do not fire');
is(fired_after('SET session_replication_role = replica', 'CREATE TABLE public.replica1 (a int)'), '0',
	'session_replication_role = replica: origin registrations do not fire (as native ENABLE triggers)');
$node->safe_psql('ours_db', "SELECT login_trigger.enable_trigger('a_ours', 'replica')");
is(fired_after('SET session_replication_role = replica', 'CREATE TABLE public.replica2 (a int)'), '1',
	'a replica registration fires in replica mode');
$node->safe_psql('ours_db', "SELECT login_trigger.enable_trigger('a_ours', 'always')");
is(fired_after('SET session_replication_role = replica', 'CREATE TABLE public.replica3 (a int)'), '1',
	'an always registration fires in replica mode');
is(fired_after('', 'CREATE TABLE public.origin1 (a int)'), '2', 'both fire in origin mode');
SKIP:
{
	skip 'event_triggers exists from PostgreSQL 17 on', 2 if $major < 17;
	is(fired_after('SET event_triggers = off', 'CREATE TABLE public.evt_off (a int)'), '0',
		'event_triggers = off: ours do not fire for commands native covers');
	is(fired_after('SET event_triggers = off', 'CREATE ROLE evt_off_role'), '0', 'nor for the others');
	$node->safe_psql('ours_db', 'DROP ROLE evt_off_role');
}

# 4. Nested DDL: DDL run by a function fires ours once per command, as native.
$node->safe_psql('ours_db', q{
	CREATE EVENT TRIGGER nested_native ON ddl_command_end EXECUTE FUNCTION public.say_native();
	TRUNCATE public.fired;
	DO $$BEGIN CREATE TABLE public.nested1 (a int); EXECUTE 'CREATE TABLE public.nested2 (a int)'; END$$;
});
is($node->safe_psql('ours_db', "SELECT count(*) FILTER (WHERE who = 'ours') || '/' || count(*) FILTER (WHERE who = 'native') FROM public.fired"),
	'4/2', 'DDL in a DO block: each of the 2 registrations fires for each command, as the native trigger does');
$node->safe_psql('ours_db', 'DROP EVENT TRIGGER nested_native');

# A native event-trigger function registered unchanged: PostgreSQL's own functions answer in it.
$node->safe_psql('ours_db', q{
	CREATE FUNCTION public.native_style() RETURNS event_trigger LANGUAGE plpgsql AS $$
	BEGIN
	  INSERT INTO public.fired (who, event, tag)
	  SELECT 'native_style', TG_EVENT, command_tag || ' ' || object_identity FROM pg_event_trigger_ddl_commands();
	END $$;
	SELECT login_trigger.create_trigger('native_style', 'ddl_command_end', 'public.native_style()');
	TRUNCATE public.fired;
	CREATE TABLE public.native_style_t (id serial PRIMARY KEY);
	SELECT login_trigger.drop_trigger('native_style');
});
is($node->safe_psql('ours_db', "SELECT string_agg(tag, ', ' ORDER BY seq) FROM public.fired WHERE who = 'native_style'"),
	'CREATE SEQUENCE public.native_style_t_id_seq, CREATE TABLE public.native_style_t, CREATE INDEX public.native_style_t_pkey, ALTER SEQUENCE public.native_style_t_id_seq',
	'pg_event_trigger_ddl_commands() works in a registered function, with native\'s rows');

# 5. Nothing registered costs nothing: no native event trigger of ours without registrations.
my $dispatchers = "SELECT string_agg(evtname, ',' ORDER BY evtname) FROM pg_event_trigger WHERE evtname LIKE 'login_trigger%'";
is($node->safe_psql('ours_db', $dispatchers), 'login_trigger_ddl_command_end', 'one dispatcher while end triggers are registered');
$node->safe_psql('ours_db', "SELECT login_trigger.drop_trigger('a_ours'); SELECT login_trigger.drop_trigger('z_ours')");
is($node->safe_psql('ours_db', $dispatchers), '', 'none once the last registration is gone');
is($node->safe_psql('native_db', $dispatchers), '', 'none in a database without the extension');
$node->safe_psql('ours_db', 'CREATE EVENT TRIGGER login_trigger_sql_drop ON sql_drop EXECUTE FUNCTION public.say_native()');
($ret, $stdout, $stderr) = $node->psql('ours_db', "\\set VERBOSITY verbose\nSELECT login_trigger.create_trigger('taken', 'sql_drop', 'public.say_ours()')");
like($stderr, qr/ERROR:  42710: event trigger "login_trigger_sql_drop" is not login_trigger's/,
	"a user's event trigger with a dispatcher's name is not taken for ours");
is($node->safe_psql('ours_db', "SELECT count(*) FROM login_trigger.event_trigger WHERE name = 'taken'"), '0', 'and nothing is registered');
$node->safe_psql('ours_db', 'DROP EVENT TRIGGER login_trigger_sql_drop');
$node->safe_psql('native_db', q{
	CREATE EVENT TRIGGER login_trigger_ddl_command_end ON ddl_command_end EXECUTE FUNCTION public.say_native();
	DROP EXTENSION IF EXISTS login_trigger;});
is($node->safe_psql('native_db', $dispatchers), 'login_trigger_ddl_command_end',
	'DROP EXTENSION IF EXISTS where the extension is not leaves an event trigger of a dispatcher\'s name alone');
$node->safe_psql('native_db', 'DROP EVENT TRIGGER login_trigger_ddl_command_end');

# A DBA disabling a dispatcher switches its event's registrations off; enable_trigger() of the
# event puts it back.
$node->safe_psql('ours_db', q{
	SELECT login_trigger.create_trigger('toggled', 'ddl_command_end', 'public.say_ours()');
	ALTER EVENT TRIGGER login_trigger_ddl_command_end DISABLE;});
is(fired_after('', 'CREATE TABLE public.toggled_off (a int)'), '0', 'a disabled dispatcher fires nothing');
$node->safe_psql('ours_db', "SELECT login_trigger.enable_trigger('toggled')");
is(fired_after('', 'CREATE TABLE public.toggled_on (a int)'), '1', 'enable_trigger() restores it');
$node->safe_psql('ours_db', "SELECT login_trigger.drop_trigger('toggled')");

# A dispatcher dropped by hand leaves its event's registrations inactive and unguarded; created
# again by hand (a DBA, or a restore of another order), they are guarded again at once: the
# command's own new event trigger is seen by the reconciliation that follows it.
$node->safe_psql('ours_db', q{
	CREATE FUNCTION public.guarded() RETURNS event_trigger LANGUAGE plpgsql AS $$ BEGIN NULL; END $$;
	SELECT login_trigger.create_trigger('rebuilt', 'ddl_command_end', 'public.guarded()');
	DROP EVENT TRIGGER login_trigger_ddl_command_end;});
$node->safe_psql('ours_db',
	'CREATE EVENT TRIGGER login_trigger_ddl_command_end ON ddl_command_end EXECUTE FUNCTION login_trigger.dispatch_ddl()');
($ret, $stdout, $stderr) = $node->psql('ours_db', 'DROP FUNCTION public.guarded()');
like($stderr, qr/cannot drop function guarded\(\) because other objects depend on it/,
	'a dispatcher created again by hand guards its registrations again');
$node->safe_psql('ours_db', "SELECT login_trigger.drop_trigger('rebuilt'); DROP FUNCTION public.guarded()");

# 6. DROP EXTENSION with registrations: no CASCADE needed, no dispatcher left behind.
$node->safe_psql('ours_db', q{
	SELECT login_trigger.create_trigger('gone_end', 'ddl_command_end', 'public.say_ours()');
	SELECT login_trigger.create_trigger('gone_drop', 'sql_drop', 'public.say_ours()');
	DROP EXTENSION login_trigger;
});
is($node->safe_psql('ours_db', $dispatchers), '', 'DROP EXTENSION removes the dispatchers');
is(fired_after('', 'CREATE TABLE public.after_drop (a int)'), '0', 'and nothing of ours fires afterwards');

# 7. A registration committed while another session's REPEATABLE READ transaction runs fires for
#    that session's DDL and later transactions exactly as a native event trigger created beside
#    it. PostgreSQL reads event triggers from the catalog afresh once the invalidation arrives
#    (here, when a query locks a table the transaction had not locked yet), not under the
#    transaction's snapshot; so does the registry cache, which a build under that snapshot would
#    have kept, stale, after the transaction too.
$node->safe_psql('ours_db', 'CREATE EXTENSION login_trigger; CREATE TABLE public.rr_probe (); TRUNCATE public.fired');
my $reader = $node->background_psql('ours_db');
$reader->query_safe('BEGIN ISOLATION LEVEL REPEATABLE READ');
$reader->query_safe('CREATE TABLE public.rr_before (a int)');
$node->safe_psql('ours_db', q{
	CREATE EVENT TRIGGER rr_native ON ddl_command_end EXECUTE FUNCTION public.say_native();
	SELECT login_trigger.create_trigger('rr_ours', 'ddl_command_end', 'public.say_ours()');});
$reader->query_safe('SELECT FROM public.rr_probe');
$reader->query_safe('CREATE TABLE public.rr_during (a int)');
$reader->query_safe('COMMIT');
$reader->query_safe('CREATE TABLE public.rr_after (a int)');
$reader->quit;
my $by_side = "SELECT who, string_agg(tag, ',' ORDER BY seq) FROM public.fired GROUP BY who ORDER BY who";
is($node->safe_psql('ours_db', $by_side), "native|CREATE TABLE,CREATE TABLE\nours|CREATE TABLE,CREATE TABLE",
	'a registration committed during a REPEATABLE READ transaction fires there and afterwards, as native');
$node->safe_psql('ours_db', q{
	DROP EVENT TRIGGER rr_native;
	DROP EXTENSION login_trigger;
	TRUNCATE public.fired;});

# 8. Single-user mode: native event triggers do not fire there; neither do ours.
$node->safe_psql('ours_db', q{
	CREATE EXTENSION login_trigger;
	SELECT login_trigger.create_trigger('single', 'ddl_command_end', 'public.say_ours()');
	CREATE EVENT TRIGGER single_native ON ddl_command_end EXECUTE FUNCTION public.say_native();
	TRUNCATE public.fired;
});
$node->stop;
my ($single_out, $single_err) = ('', '');
IPC::Run::run([ 'postgres', '--single', '-D', $node->data_dir, 'ours_db' ],
	'<', \"CREATE TABLE public.single_user (a int);\n", '>', \$single_out, '2>', \$single_err);
$node->start;
is($node->safe_psql('ours_db', "SELECT count(*) FROM pg_class WHERE relname = 'single_user'"), '1',
	'single-user mode runs DDL with the library loaded');
is($node->safe_psql('ours_db', 'SELECT count(*) FROM public.fired'), '0', 'and, as native, fires no DDL trigger');

$node->stop;
done_testing();
