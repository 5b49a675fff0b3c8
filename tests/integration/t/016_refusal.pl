# The refusal contract (src/session.rs, docs/design.md): whatever fails while a session logs in
# ends the backend with FATAL carrying the error's own SQLSTATE, message, detail, hint and
# CONTEXT. The reference is PostgreSQL's own refusal during InitPostgres: the client never gets
# ReadyForQuery, even one that ignores the error and sends a query anyway (a raw-protocol client;
# libpq gives up on any error and would hide an ERROR followed by ReadyForQuery), no logout
# trigger fires and nothing the login wrote is kept. Every failure kind, in both loading modes,
# on a primary and on a hot standby.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin . '/..';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use LoginTriggerTest;

# The servers inherit RUST_BACKTRACE: no field a refused client gets may carry a Rust backtrace.
$ENV{RUST_BACKTRACE} = '1';

my $setup = q{
	CREATE TABLE public.parent (id int PRIMARY KEY);
	CREATE TABLE public.child (parent int REFERENCES public.parent DEFERRABLE INITIALLY DEFERRED);
	CREATE TABLE public.late (x int);
	CREATE FUNCTION public.late_check() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN
	  RAISE EXCEPTION 'could not serialize the login' USING ERRCODE = '40001', DETAIL = 'late detail';
	END $$;
	CREATE CONSTRAINT TRIGGER late_check AFTER INSERT ON public.late DEFERRABLE INITIALLY DEFERRED
	  FOR EACH ROW EXECUTE FUNCTION public.late_check();
	CREATE FUNCTION public.gate() RETURNS event_trigger LANGUAGE plpgsql AS $$
	DECLARE app text := current_setting('application_name');
	BEGIN
	  IF NOT pg_is_in_recovery() OR app = 'write' THEN
	    INSERT INTO public.audit (event, app) VALUES ('gate', app);
	  END IF;
	  CASE app
	    WHEN 'raise' THEN
	      RAISE EXCEPTION 'refused by the gate' USING ERRCODE = 'LT001', DETAIL = 'gate detail', HINT = 'gate hint';
	    WHEN 'deferred_fk' THEN INSERT INTO public.child VALUES (42);
	    WHEN 'at_commit' THEN INSERT INTO public.late VALUES (1);
	    WHEN 'slow' THEN PERFORM pg_sleep(30);
	    ELSE NULL;
	  END CASE;
	END $$;
	CREATE FUNCTION public.fail_function() RETURNS void LANGUAGE plpgsql AS $$
	BEGIN
	  RAISE EXCEPTION 'refused by login_function' USING ERRCODE = 'LT002', HINT = 'function hint';
	END $$;
	SELECT login_trigger.create_trigger('gate', 'login', 'public.gate()');
	SELECT login_trigger.create_trigger('goodbye', 'logout', 'public.audit_event()');
	CREATE ROLE impatient LOGIN SUPERUSER;
	ALTER ROLE impatient SET lock_timeout = '300ms';
};

# Each failure kind: the application_name (which the gate reads) and connection options that
# provoke it, and the error the client must get. Not every kind applies everywhere: on a standby
# the commit-time kinds cannot write (their read-only error is tolerated, by design), and the
# registry is only read at every login without the shared summary (session mode) or on a standby.
my @kinds = (
	{ kind => 'trigger error', app => 'raise', sqlstate => 'LT001', message => qr/^refused by the gate$/,
	  detail => qr/^gate detail$/, hint => qr/^gate hint$/,
	  context => qr/PL\/pgSQL function gate\(\) line \d+ at RAISE\nlogin_trigger trigger "gate" \(login\)/ },
	{ kind => 'login_function error', app => 'function', options => '-c login_trigger.login_function=public.fail_function',
	  sqlstate => 'LT002', message => qr/^refused by login_function$/, hint => qr/^function hint$/,
	  context => qr/login_trigger trigger "public.fail_function" \(login\)/ },
	{ kind => 'deferred foreign key at commit', app => 'deferred_fk', sqlstate => '23503', primary_only => 1,
	  message => qr/violates foreign key constraint/, detail => qr/Key \(parent\)=\(42\) is not present/ },
	{ kind => 'constraint trigger (serialization) at commit', app => 'at_commit', sqlstate => '40001', primary_only => 1,
	  message => qr/^could not serialize the login$/, detail => qr/^late detail$/,
	  context => qr/PL\/pgSQL function late_check\(\) line \d+ at RAISE/ },
	{ kind => 'login timeout', app => 'slow', options => '-c login_trigger.login_timeout=300', sqlstate => '57014',
	  message => qr/^login triggers did not finish in time$/ },
	{ kind => 'Rust panic at the start', app => 'panic_start', options => '-c login_trigger.fault_point=login.start',
	  sqlstate => 'XX000', message => qr/fault injected at login\.start/ },
	{ kind => 'Rust panic reading the shared summary', app => 'panic_summary', options => '-c login_trigger.fault_point=login.summary',
	  sqlstate => 'XX000', message => qr/fault injected at login\.summary/ },
	{ kind => 'Rust panic before commit', app => 'panic_commit', options => '-c login_trigger.fault_point=login.commit',
	  sqlstate => 'XX000', message => qr/fault injected at login\.commit/ },
	{ kind => 'Rust panic reading the registry', app => 'panic_registry', registry_read => 1,
	  options => '-c login_trigger.fault_point=login.registry', sqlstate => 'XX000',
	  message => qr/fault injected at login\.registry/ },
);

# One refused raw session per kind: FATAL with every field, no ReadyForQuery, no answer.
sub check_refusals
{
	my ($node, $where, %facts) = @_;
	for my $case (@kinds)
	{
		next if $case->{primary_only} && $facts{standby};
		next if $case->{registry_read} && !$facts{reads_registry};
		my $name = "$where: $case->{kind}";
		my %session = LoginTriggerTest::raw_session($node, application_name => $case->{app},
			($case->{options} ? (options => $case->{options}) : ()));
		my $error = $session{error} // {};
		is($error->{S} // '', 'FATAL', "$name: FATAL");
		is($error->{C} // '', $case->{sqlstate}, "$name: SQLSTATE $case->{sqlstate}");
		like($error->{M} // '', $case->{message}, "$name: message");
		for my $field ([ detail => 'D' ], [ hint => 'H' ], [ context => 'W' ])
		{
			my ($key, $letter) = @$field;
			like($error->{$letter} // '', $case->{$key}, "$name: $key") if $case->{$key};
		}
		unlike($error->{D} // '', qr/stack backtrace|rust_begin_unwind|panicking/, "$name: no Rust backtrace");
		ok(!$session{ready}, "$name: no ReadyForQuery");
		is($session{answered}, '', "$name: the query sent after the error gets no answer");
	}
}

# What is left of the refused sessions once their backends are gone: no login row kept, no
# logout row written.
sub check_nothing_kept
{
	my ($primary, $standby, $where) = @_;
	my $apps = join(', ', map { "'$_->{app}'" } @kinds);
	for my $node (grep { defined } $primary, $standby)
	{
		ok($node->poll_query_until('postgres',
				"SELECT count(*) = 0 FROM pg_stat_activity WHERE application_name IN ($apps)"),
			"$where: the refused backends have exited");
	}
	is($primary->safe_psql('postgres', "SELECT count(*) FROM public.audit WHERE app IN ($apps)"), '0',
		"$where: no login write of a refused session was kept and no logout fired for one");
}

# A session that is accepted, on the same server: the control that shows the raw client sees
# answers when there are any.
sub check_accepted
{
	my ($node, $where, $app) = @_;
	my %session = LoginTriggerTest::raw_session($node, application_name => $app);
	is($session{error}, undef, "$where: an accepted session gets no error");
	ok($session{ready}, "$where: an accepted session gets ReadyForQuery");
	like($session{answered}, qr/^T.*D.*C.*Z$/, "$where: and its query is answered");
}

for my $mode ('shared', 'session')
{
	my $primary = LoginTriggerTest::node("primary_$mode", mode => $mode, streaming => 1);
	$primary->safe_psql('postgres', $setup);
	$primary->backup('base');
	my $standby = PostgreSQL::Test::Cluster->new("standby_$mode");
	$standby->init_from_backup($primary, 'base', has_streaming => 1);
	$standby->start;
	$primary->wait_for_catchup($standby, 'replay', $primary->lsn('insert'));

	check_accepted($primary, "$mode primary", 'ok');
	check_refusals($primary, "$mode primary", reads_registry => $mode eq 'session');

	# An error while reading the registry: it is locked, and the connecting role gives up waiting.
	# With the shared summary the registry is read only when the summary does not know the
	# database, so the summary is emptied by a registry change first.
	my $locker = $primary->background_psql('postgres', on_error_stop => 1);
	$locker->query_safe("SET login_trigger.enabled = off");
	$locker->query_safe("BEGIN");
	$locker->query_safe("SELECT login_trigger.disable_trigger('goodbye')");
	$locker->query_safe("SELECT login_trigger.enable_trigger('goodbye')");
	$locker->query_safe("COMMIT");
	$locker->query_safe("BEGIN");
	$locker->query_safe("LOCK TABLE login_trigger.event_trigger IN ACCESS EXCLUSIVE MODE");
	my %locked = LoginTriggerTest::raw_session($primary, user => 'impatient', application_name => 'locked');
	is($locked{error}{S} // '', 'FATAL', "$mode primary: registry read failing: FATAL");
	is($locked{error}{C} // '', '55P03', "$mode primary: registry read failing: SQLSTATE 55P03");
	ok(!$locked{ready} && $locked{answered} eq '', "$mode primary: registry read failing: no ReadyForQuery, no answer");
	$locker->query_safe("ROLLBACK");
	$locker->quit;

	check_accepted($standby, "$mode standby", 'ok');
	check_accepted($standby, "$mode standby (a login write is tolerated)", 'write');
	check_refusals($standby, "$mode standby", standby => 1, reads_registry => 1);
	check_nothing_kept($primary, $standby, $mode);

	$standby->stop;
	$primary->stop;
}

done_testing();
