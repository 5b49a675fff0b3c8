# The session library (login_trigger_session in session_preload_libraries) against its reference,
# the extension's own library in session_preload_libraries: two nodes side by side run the same
# sessions, and every trigger's rows must be the same. What differs is only what is loaded: a
# session with nothing to fire does not map the extension's library (on 15+), and one that gets
# something to fire mid-session (a registration made elsewhere, or by itself) fires it from then
# on, its logout included, exactly once.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin . '/..';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use LoginTriggerTest;

my %node = (
	library => LoginTriggerTest::node('session_library', mode => 'session_library'),
	reference => LoginTriggerTest::node('session_reference', mode => 'session'));
my $major = int($node{library}->safe_psql('postgres', 'SHOW server_version_num') / 10000);

for my $node (values %node)
{
	$node->safe_psql('postgres', q{
		CREATE TABLE public.ddl_log (id bigserial PRIMARY KEY, tag text, command_text text, app text);
		CREATE FUNCTION public.log_ddl() RETURNS event_trigger LANGUAGE plpgsql AS $$
		BEGIN
		  INSERT INTO public.ddl_log (tag, command_text, app)
		  VALUES (TG_TAG, login_trigger.context()->>'command_text', current_setting('application_name'));
		END $$;
	});
}

# Which of the two libraries a session's backend has mapped.
sub mapped
{
	my ($session) = @_;
	my $pid = $session->query_safe('SELECT pg_backend_pid()');
	my $maps = slurp_file("/proc/$pid/maps");
	return join(' ', grep { $maps =~ m{/\Q$_\E\.so} } 'login_trigger', 'login_trigger_session');
}

sub session
{
	my ($node, $app) = @_;
	my $session = $node->background_psql('postgres', on_error_stop => 0);
	$session->query_safe("SET application_name = '$app'");
	return $session;
}

# Runs one scenario on both nodes and compares what it returns.
sub same
{
	my ($what, $scenario) = @_;
	my %result = map { $_ => $scenario->($node{$_}, $_) } keys %node;
	is($result{library}, $result{reference}, "$what: the same as with the extension's library");
	return $result{library};
}

my $audit = sub {
	my ($node, $app) = @_;
	return $node->safe_psql('postgres',
		"SELECT string_agg(concat_ws('|', event, trigger_name, reason), ',' ORDER BY id) FROM public.audit WHERE app = '$app'");
};
my $ddl_log = sub {
	my ($node, $app) = @_;
	return $node->safe_psql('postgres',
		"SELECT string_agg(concat_ws('|', tag, command_text), ',' ORDER BY id) FROM public.ddl_log WHERE app = '$app'");
};

# 1. Nothing registered: the session library does not load the extension's library (15+; on 13
#    and 14 it always does).
{
	my %loaded;
	for my $name (keys %node)
	{
		my $session = session($node{$name}, 'idle');
		$loaded{$name} = mapped($session);
		$session->quit;
	}
	is($loaded{library}, $major >= 15 ? 'login_trigger_session' : 'login_trigger login_trigger_session',
		'nothing registered: the session library alone is mapped');
	is($loaded{reference}, 'login_trigger', 'the reference maps the extension\'s library');
}

# 2. A logout trigger registered while a session runs fires at that session's end, once.
is(same('logout registered mid-session', sub {
	my ($node) = @_;
	my $session = session($node, 'late_out');
	$node->safe_psql('postgres', q{SELECT login_trigger.create_trigger('out', 'logout', 'public.audit_event()')});
	$session->quit;
	$node->poll_query_until('postgres', "SELECT count(*) > 0 FROM public.audit WHERE app = 'late_out'");
	return $audit->($node, 'late_out');
}), 'logout|out|client_exit', 'it fired once, with the reason');

# 3. The same for a session ended by pg_terminate_backend: the reason survives dormancy.
is(same('terminated after a mid-session registration', sub {
	my ($node) = @_;
	$node->safe_psql('postgres', q{SELECT login_trigger.drop_trigger('out')});
	my $session = session($node, 'late_kill');
	$node->safe_psql('postgres', q{SELECT login_trigger.create_trigger('out', 'logout', 'public.audit_event()')});
	$node->safe_psql('postgres', "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'late_kill'");
	$node->poll_query_until('postgres', "SELECT count(*) > 0 FROM public.audit WHERE app = 'late_kill'");
	$node->safe_psql('postgres', q{SELECT login_trigger.drop_trigger('out')});
	return $audit->($node, 'late_kill');
}), 'logout|out|terminated', 'it fired once, as terminated');

# 4. DDL triggers registered while a session runs (one the hook fires, CREATE ROLE, and one
#    native firing covers): the session's next commands fire them, each with its own text (the
#    first two sent as one query string, psql's \;).
is(same('DDL registered mid-session', sub {
	my ($node, $name) = @_;
	my $session = session($node, 'late_ddl');
	$node->safe_psql('postgres', q{SELECT login_trigger.create_trigger('ddl', 'ddl_command_end', 'public.log_ddl()')});
	$session->query_safe("CREATE ROLE late_role_$name \\; CREATE TABLE late_a (x int)");
	$session->query_safe('CREATE TABLE late_b (x int)');
	my $loaded = mapped($session);
	$session->quit;
	$node->safe_psql('postgres', q{SELECT login_trigger.drop_trigger('ddl')});
	$node->safe_psql('postgres', "DROP ROLE late_role_$name");
	return $ddl_log->($node, 'late_ddl') =~ s/late_role_$name/late_role/r . "; $loaded" =~ s/ login_trigger_session//r;
}), 'CREATE ROLE|CREATE ROLE late_role,CREATE TABLE|CREATE TABLE late_a (x int),CREATE TABLE|CREATE TABLE late_b (x int); login_trigger',
	'each command fired once with its own text, and the extension\'s library is loaded now');

# 5. A dormant session that registers triggers itself: its DDL fires once, its logout once.
is(same('registered by the session itself', sub {
	my ($node, $name) = @_;
	my $session = session($node, 'own');
	$session->query_safe(q{SELECT login_trigger.create_trigger('own_ddl', 'ddl_command_end', 'public.log_ddl()')});
	$session->query_safe(q{SELECT login_trigger.create_trigger('own_out', 'logout', 'public.audit_event()')});
	$session->query_safe("CREATE TABLE own_a (x int); CREATE ROLE own_role_$name");
	$session->quit;
	$node->poll_query_until('postgres', "SELECT count(*) > 0 FROM public.audit WHERE app = 'own'");
	$node->safe_psql('postgres', q{
		SELECT login_trigger.drop_trigger('own_ddl');
		SELECT login_trigger.drop_trigger('own_out');
	});
	$node->safe_psql('postgres', "DROP ROLE own_role_$name");
	return ($ddl_log->($node, 'own') =~ s/own_role_$name/own_role/r) . '; ' . $audit->($node, 'own');
}), 'CREATE TABLE|CREATE TABLE own_a (x int),CREATE ROLE|CREATE ROLE own_role; logout|own_out|client_exit',
	'each fired once');

# 6. A login trigger registered before the session: it fires at login, the library is loaded.
is(same('registered before the session', sub {
	my ($node) = @_;
	$node->safe_psql('postgres', q{SELECT login_trigger.create_trigger('in', 'login', 'public.audit_event()')});
	my $session = session($node, 'unused');
	my $loaded = mapped($session) =~ s/ login_trigger_session//r;
	$session->quit;
	LoginTriggerTest::safe_psql_at($node, $node->connstr('postgres') . ' application_name=early', 'SELECT 1');
	$node->safe_psql('postgres', q{SELECT login_trigger.drop_trigger('in')});
	return $audit->($node, 'early') . "; $loaded";
}), 'login|in; login_trigger', 'login fired once');

# 7. A login function set for the session (a superuser's connection option) is something to fire.
is(same('login_function in the connection options', sub {
	my ($node) = @_;
	LoginTriggerTest::safe_psql_at($node,
		$node->connstr('postgres') . " application_name=by_setting options='-c login_trigger.login_function=public.audit_event'",
		'SELECT 1');
	return $audit->($node, 'by_setting');
}), 'login|public.audit_event', 'it fired once');

# 8. A non-superuser's login_trigger.* connection option is refused, as by the extension's library.
same('a non-superuser\'s connection option', sub {
	my ($node) = @_;
	my ($ret, $out, $err) = LoginTriggerTest::psql_at($node,
		$node->connstr('postgres') . " user=alice options='-c login_trigger.logout_function=' application_name=sneaky",
		'SELECT 1');
	return "$ret $err" =~ s/^.*?FATAL/FATAL/sr;
});

# 9. Nothing registered any more: a new session is dormant again, and its DDL fires nothing.
is(same('nothing registered again', sub {
	my ($node) = @_;
	my $session = session($node, 'after');
	$session->query_safe('CREATE TABLE after_a (x int)');
	$session->quit;
	return $ddl_log->($node, 'after') . $audit->($node, 'after');
}), '', 'nothing fired');

# 10. A placeholder set while dormant (a non-superuser's SET of a login_trigger setting) when the
#     library is loaded at exit: it is checked inside a transaction, refused, and logout fires.
is(same('a placeholder SET while dormant, library loaded at exit', sub {
	my ($node) = @_;
	my $session = session($node, 'placeholder');
	$session->query("SET ROLE alice");
	$session->query("SET login_trigger.enabled = off");
	$node->safe_psql('postgres', q{SELECT login_trigger.create_trigger('out', 'logout', 'public.audit_event()')});
	$session->quit;
	$node->poll_query_until('postgres', "SELECT count(*) > 0 FROM public.audit WHERE app = 'placeholder'");
	$node->safe_psql('postgres', q{SELECT login_trigger.drop_trigger('out')});
	return $audit->($node, 'placeholder');
}), 'logout|out|client_exit', 'logout fired once, the server still up');

# 11. A dispatcher re-created in a dormant session, as pg_restore creates event triggers last:
#     its registrations become active again (the library keeps the bookkeeping of that command).
is(same('a dispatcher re-created in a dormant session', sub {
	my ($node) = @_;
	$node->safe_psql('postgres', q{
		SELECT login_trigger.create_trigger('back', 'login', 'public.audit_event()');
		DROP EVENT TRIGGER login_trigger_login;
	});
	my $session = session($node, 'recreates');
	$session->query_safe(q{CREATE EVENT TRIGGER login_trigger_login ON ddl_command_start
		EXECUTE FUNCTION login_trigger.session_dispatcher()});
	$session->query_safe('ALTER EVENT TRIGGER login_trigger_login DISABLE');
	$session->quit;
	LoginTriggerTest::safe_psql_at($node, $node->connstr('postgres') . ' application_name=restored', 'SELECT 1');
	$node->safe_psql('postgres', q{SELECT login_trigger.drop_trigger('back')});
	return $audit->($node, 'restored');
}), 'login|back', 'the login trigger fires again');

# 12. logout_function set after a dormant session started (a reload) fires at its end.
is(same('logout_function set while dormant', sub {
	my ($node) = @_;
	my $session = session($node, 'late_setting');
	$node->append_conf('postgresql.conf', "login_trigger.logout_function = 'public.audit_event'");
	$node->reload;
	$session->query_safe('SELECT pg_sleep(0.3)');
	$session->quit;
	$node->poll_query_until('postgres', "SELECT count(*) > 0 FROM public.audit WHERE app = 'late_setting'");
	$node->append_conf('postgresql.conf', "login_trigger.logout_function = ''");
	$node->reload;
	return $audit->($node, 'late_setting');
}), 'logout|public.audit_event|client_exit', 'it fired once');

done_testing();
