# pg_upgrade of a cluster whose database has registrations of every kind — a login trigger that
# refuses every application but `app`, a logout trigger, an audit and a tag-filtered DDL trigger,
# sql_drop, table_rewrite, a disabled and a replica one, and a `noddl` start trigger — from the
# version in LOGIN_TRIGGER_UPGRADE_FROM (the install prefix of an older PostgreSQL with
# login_trigger installed) to this one, in each loading mode. The reference is PostgreSQL's own
# promise: `pg_upgrade --check` and the upgrade succeed with nothing disabled, and the upgraded
# cluster behaves as the old one did. Nothing of ours fires in binary-upgrade mode, so the login
# trigger never refuses pg_upgrade's own connections (native login event triggers do).
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin . '/..';
use Cwd;
use File::Temp qw(tempdir);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use LoginTriggerTest;

my $old_install = $ENV{LOGIN_TRIGGER_UPGRADE_FROM};
plan skip_all => 'LOGIN_TRIGGER_UPGRADE_FROM names no older PostgreSQL (scripts/test sets it)'
  unless $old_install;

# Every connection of the test says application_name=app; pg_upgrade's own do not.
$ENV{PGAPPNAME} = 'app';

my $setup = q{
	CREATE EXTENSION login_trigger;
	CREATE TABLE public.trail (id bigserial PRIMARY KEY, event text, tag text, who text);
	GRANT INSERT ON public.trail TO PUBLIC;
	GRANT USAGE ON SEQUENCE public.trail_id_seq TO PUBLIC;
	CREATE SCHEMA gate;
	CREATE FUNCTION gate.only_app() RETURNS event_trigger LANGUAGE plpgsql AS $$
	BEGIN
	  IF current_setting('application_name') <> 'app' THEN
	    RAISE EXCEPTION 'application % is not allowed', current_setting('application_name')
	      USING ERRCODE = 'LT001';
	  END IF;
	END $$;
	CREATE FUNCTION public.audit_any() RETURNS event_trigger LANGUAGE plpgsql AS $$
	BEGIN INSERT INTO public.trail (event, tag, who) VALUES (TG_EVENT, TG_TAG, session_user); END $$;
	CREATE FUNCTION public.abort_any_command() RETURNS event_trigger LANGUAGE plpgsql AS $$
	BEGIN
	  IF TG_TAG <> 'CREATE SCHEMA' THEN RAISE EXCEPTION 'command % is disabled', TG_TAG; END IF;
	END $$;
	SELECT login_trigger.create_trigger('gate', 'login', 'gate.only_app()');
	SELECT login_trigger.create_trigger('goodbye', 'logout', 'public.audit_any()');
	SELECT login_trigger.create_trigger('audit', 'ddl_command_end', 'public.audit_any()');
	SELECT login_trigger.create_trigger('audit_schemas', 'ddl_command_end', 'public.audit_any()', ARRAY['create schema']);
	SELECT login_trigger.create_trigger('drops', 'sql_drop', 'public.audit_any()');
	SELECT login_trigger.create_trigger('rewrites', 'table_rewrite', 'public.audit_any()');
	SELECT login_trigger.create_trigger('paused', 'ddl_command_end', 'public.audit_any()');
	SELECT login_trigger.disable_trigger('paused');
	SELECT login_trigger.create_trigger('on_replica', 'ddl_command_end', 'public.audit_any()', NULL, 'replica');
	SELECT login_trigger.create_trigger('noddl', 'ddl_command_start', 'public.abort_any_command()');
};
my $registry = "SELECT string_agg(concat_ws('|', name, event, function, enabled, tags::text, owner), E'\\n' ORDER BY name) FROM login_trigger.event_trigger";
# Each carrier (the trigger that keeps DROP FUNCTION from dropping a registered function) and the
# function it depends on.
my $carriers = q{SELECT string_agg(t.tgname || '->' || d.refobjid::regprocedure::text, ',' ORDER BY t.tgname)
	FROM pg_trigger t JOIN pg_depend d ON d.classid = 'pg_trigger'::regclass AND d.objid = t.oid
	 AND d.refclassid = 'pg_proc'::regclass AND d.refobjid <> t.tgfoid
	WHERE t.tgrelid::regclass::text LIKE 'login_trigger.registered_%'};

for my $mode ('shared', 'session')
{
	my $preload = $mode eq 'shared' ? 'shared_preload_libraries' : 'session_preload_libraries';
	my $conf = "$preload = 'login_trigger'\nlog_line_prefix = '%m [%p] %e %a '\n";

	my $old = PostgreSQL::Test::Cluster->new("old_$mode", install_path => $old_install);
	$old->init;
	$old->append_conf('postgresql.conf', $conf);
	$old->start;
	$old->safe_psql('postgres', $setup);
	my %before = (registry => $old->safe_psql('postgres', $registry), carriers => $old->safe_psql('postgres', $carriers));
	my ($ret, $out, $err) = $old->psql('postgres', 'SELECT 1', connstr => $old->connstr('postgres') . ' application_name=intruder');
	like($err, qr/application intruder is not allowed/, "$mode: before the upgrade the login trigger refuses other applications");
	$old->stop;

	my $new = PostgreSQL::Test::Cluster->new("new_$mode");
	# 18 turns data checksums on by default; the old cluster has none.
	$new->init(extra => [ $new->pg_version >= 18 ? ('--no-data-checksums') : () ]);
	$new->append_conf('postgresql.conf', $conf);
	my $work = tempdir(CLEANUP => 1);
	my @upgrade = ('pg_upgrade', '--no-sync', '-d', $old->data_dir, '-D', $new->data_dir,
		'-b', $old->config_data('--bindir'), '-B', $new->config_data('--bindir'),
		'-s', $new->host, '-p', $old->port, '-P', $new->port);
	{
		# pg_upgrade's connections carry no application name of ours.
		local $ENV{PGAPPNAME};
		delete $ENV{PGAPPNAME};
		my $cwd = Cwd::getcwd();
		chdir $work;
		command_ok([ @upgrade, '--check' ], "$mode: pg_upgrade --check passes with every kind of registration");
		command_ok(\@upgrade, "$mode: pg_upgrade succeeds, the login trigger does not refuse its connections");
		chdir $cwd;
	}

	$new->start;
	is($new->safe_psql('postgres', $registry), $before{registry}, "$mode: every registration is carried over unchanged");
	is($new->safe_psql('postgres', $carriers), $before{carriers},
		"$mode: every registration's guard depends on its function again");
	($ret, $out, $err) = $new->psql('postgres', 'SELECT 1', connstr => $new->connstr('postgres') . ' application_name=intruder');
	like($err, qr/application intruder is not allowed/, "$mode: the login trigger refuses other applications after the upgrade");
	($ret, $out, $err) = $new->psql('postgres', 'CREATE TABLE public.refused (a int)');
	like($err, qr/command CREATE TABLE is disabled/, "$mode: noddl refuses DDL after the upgrade");
	$new->safe_psql('postgres', 'TRUNCATE public.trail; CREATE SCHEMA allowed;');
	is($new->safe_psql('postgres', q{SELECT string_agg(event || ':' || tag, ',' ORDER BY id) FROM public.trail WHERE event <> 'logout'}),
		'ddl_command_end:CREATE SCHEMA,ddl_command_end:CREATE SCHEMA',
		"$mode: the audit and the tag-filtered end triggers fire, the disabled and the replica one do not");
	ok($new->poll_query_until('postgres', q{SELECT count(*) > 0 FROM public.trail WHERE event = 'logout'}),
		"$mode: the logout trigger fires");
	($ret, $out, $err) = $new->psql('postgres', q{SELECT login_trigger.drop_trigger('noddl'); DROP FUNCTION public.audit_any()});
	like($err, qr/cannot drop function audit_any\(\) because other objects depend on it/,
		"$mode: DROP FUNCTION of a registered function is still refused");
	$new->stop;
}

done_testing();
