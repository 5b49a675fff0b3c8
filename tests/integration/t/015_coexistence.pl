# Coexistence with other hook users: pg_stat_statements (ProcessUtility, executor and planner
# hooks) and auto_explain (executor hooks) in shared_preload_libraries beside login_trigger, loaded
# before it and after it. The hooks chain: pg_stat_statements counts each utility statement
# exactly once (DDL, BEGIN, COMMIT), auto_explain logs plans (also of the statements our trigger
# functions run), and our login and DDL triggers fire exactly once per event.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin . '/..';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use LoginTriggerTest;

for my $order ('pg_stat_statements,auto_explain,login_trigger', 'login_trigger,pg_stat_statements,auto_explain')
{
	my $name = $order =~ /^login_trigger/ ? 'first' : 'last';
	my $node = LoginTriggerTest::node("coexist_$name", mode => 'listed', conf => [
		"shared_preload_libraries = '$order'",
		'pg_stat_statements.track_utility = on',
		'auto_explain.log_min_duration = 0',
		'auto_explain.log_nested_statements = on' ]);
	$node->safe_psql('postgres', q{
		CREATE EXTENSION pg_stat_statements;
		SELECT login_trigger.create_trigger('in', 'login', 'public.audit_event()');
		SELECT login_trigger.create_trigger('start', 'ddl_command_start', 'public.audit_event()');
		SELECT login_trigger.create_trigger('end', 'ddl_command_end', 'public.audit_event()');
		SELECT login_trigger.create_trigger('drop', 'sql_drop', 'public.audit_event()');
	});
	is($node->safe_psql('postgres', 'SHOW shared_preload_libraries'), $order, "login_trigger $name: $order");
	my $mark = $node->safe_psql('postgres', 'SELECT pg_stat_statements_reset(); SELECT max(id) FROM public.audit');
	$mark =~ s/.*\n//;
	my $offset = -s $node->logfile;

	LoginTriggerTest::safe_psql_at($node, $node->connstr('postgres') . ' application_name=coexist', q{
		BEGIN;
		CREATE TABLE public.c1 (a int);
		ALTER TABLE public.c1 ADD COLUMN b int;
		COMMIT;
		DROP TABLE public.c1;
		SELECT count(*) FROM pg_class WHERE relname = 'coexist_marker';
	});

	# Our triggers: once per event.
	is($node->safe_psql('postgres', q{
			SELECT string_agg(event || ':' || n, ' ' ORDER BY event)
			  FROM (SELECT event, count(*) AS n FROM public.audit WHERE app = 'coexist' GROUP BY event) e}),
		'ddl_command_end:3 ddl_command_start:3 login:1 sql_drop:1',
		"login_trigger $name: login once, each DDL trigger once per command");

	# pg_stat_statements: each top-level statement counted once, utility statements included.
	my %calls = map { split /\|/ } split /\n/, $node->safe_psql('postgres', q{
		SELECT regexp_replace(query, '\s+', ' ', 'g') || '|' || calls FROM pg_stat_statements
		 WHERE query ~* '^(BEGIN|COMMIT|CREATE TABLE public\.c1|ALTER TABLE public\.c1|DROP TABLE public\.c1|SELECT count\(\*\) FROM pg_class)'});
	is($calls{BEGIN}, 1, "login_trigger $name: pg_stat_statements counted BEGIN once");
	is($calls{COMMIT}, 1, "login_trigger $name: pg_stat_statements counted COMMIT once");
	is($calls{'CREATE TABLE public.c1 (a int)'}, 1, "login_trigger $name: pg_stat_statements counted CREATE TABLE once");
	is($calls{'ALTER TABLE public.c1 ADD COLUMN b int'}, 1, "login_trigger $name: pg_stat_statements counted ALTER TABLE once");
	is($calls{'DROP TABLE public.c1'}, 1, "login_trigger $name: pg_stat_statements counted DROP TABLE once");
	my ($select) = grep { /^SELECT count\(\*\) FROM pg_class/ } keys %calls;
	ok(defined $select && $calls{$select} == 1, "login_trigger $name: pg_stat_statements counted the SELECT once")
	  or diag(explain \%calls);
	# The statements our DDL triggers run are nested inside the DDL command for
	# pg_stat_statements only when its ProcessUtility hook is outside ours (login_trigger loaded
	# first). Login triggers run outside any client statement, so their statements are top-level
	# (as with PostgreSQL 17's native login event triggers). Not on 13 (no toplevel column).
	if ($node->safe_psql('postgres', 'SHOW server_version_num') >= 140000)
	{
		my $ddl_toplevel = $node->safe_psql('postgres', qq{
			SELECT coalesce(sum(calls), 0)
			       - (SELECT count(*) FROM public.audit WHERE event = 'login' AND id > $mark)
			  FROM pg_stat_statements WHERE toplevel AND query ~* 'INSERT INTO public\\.audit'});
		if ($name eq 'first')
		{
			is($ddl_toplevel, '0', "login_trigger $name: the DDL triggers' statements count as nested");
		}
		else
		{
			note("login_trigger $name: $ddl_toplevel statements run by DDL triggers count as top-level in pg_stat_statements");
			LoginTriggerTest::figure('coexistence', 'DDL trigger statements counted as top-level by pg_stat_statements when login_trigger is loaded after it', $ddl_toplevel);
		}
	}

	# auto_explain: plans logged, for the client's query and inside our trigger functions.
	ok($node->wait_for_log(
			qr/coexist LOG:  duration: [\d.]+ ms  plan:\n\s*Query Text: \s*SELECT count\(\*\) FROM pg_class WHERE relname = 'coexist_marker'/,
			$offset),
		"login_trigger $name: auto_explain logged the client's plan");
	my $log = slurp_file($node->logfile, $offset);
	like($log, qr/coexist LOG:  duration: [\d.]+ ms  plan:\n\s*Query Text: INSERT INTO public\.audit/,
		"login_trigger $name: auto_explain logged the plans of statements run by our triggers");
	my $login_plans = () = $log =~ /coexist LOG:  duration: [\d.]+ ms  plan:\n\s*Query Text: INSERT INTO public\.audit/g;
	is($login_plans, 8, "login_trigger $name: one plan per trigger invocation (1 login + 3 + 3 + 1 DDL)");
	unlike($log, qr/terminated by signal|PANIC/, "login_trigger $name: nothing crashed");
	$node->stop;
}
done_testing();
