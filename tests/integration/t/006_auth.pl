# Authentication events (shared_preload_libraries): a failed scram-sha-256 login over 127.0.0.1
# is recorded in the views and the server log, a client that hangs up mid-handshake is not, and a
# successful login's method and identity reach the login context.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin . '/..';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use LoginTriggerTest;

my $node = LoginTriggerTest::node('auth', conf => [ "listen_addresses = '127.0.0.1'" ]);
my $major = int($node->safe_psql('postgres', 'SHOW server_version_num') / 10000);
# alice must use a password over TCP.
LoginTriggerTest::prepend_hba($node, 'host all alice 127.0.0.1/32 scram-sha-256');
$node->safe_psql('postgres', q{
	CREATE TABLE public.auth_seen AS SELECT * FROM login_trigger.session() WITH NO DATA;
	GRANT INSERT ON public.auth_seen TO PUBLIC;
	CREATE FUNCTION public.keep_auth() RETURNS void LANGUAGE sql AS $$
	  INSERT INTO public.auth_seen SELECT * FROM login_trigger.session() $$;
	SELECT login_trigger.create_trigger('keep_auth', 'login', 'public.keep_auth()');
	CREATE ROLE watcher LOGIN IN ROLE pg_read_all_stats;
});
my $tcp = 'host=127.0.0.1 port=' . $node->port . ' dbname=postgres';

my $offset = -s $node->logfile;
LoginTriggerTest::connect_fails($node, "$tcp user=alice password=wrong", 'a wrong password is refused', sqlstate => '28P01',
	expected_stderr => qr/password authentication failed for user "alice"/);
LoginTriggerTest::connect_fails($node, "$tcp user=alice password=wrong-again", 'twice', sqlstate => '28P01');
is($node->safe_psql('postgres', "SELECT user_name, database_name, client_addr, method FROM login_trigger.auth_failures LIMIT 1"),
	'alice|postgres|127.0.0.1|scram-sha-256', 'the failure is recorded with user, database, address and method');
is($node->safe_psql('postgres', "SELECT failures FROM login_trigger.auth_failure_counts WHERE user_name = 'alice' AND client_addr = '127.0.0.1'"),
	'2', 'failures are counted per user and address');
like(slurp_file($node->logfile, $offset),
	qr/login_trigger: authentication failed for user "alice" to database "postgres" from 127.0.0.1 \(method scram-sha-256\)/,
	'and written to the server log');

# A client that gives up when asked for a password (STATUS_EOF) is not a failure.
my ($ret, $out, $err) = LoginTriggerTest::psql_at($node, "$tcp user=alice", 'SELECT 1', '-w');
isnt($ret, 0, 'a client without a password gives up');
is($node->safe_psql('postgres', "SELECT count(*) FROM login_trigger.auth_failures"), '2',
	'hanging up mid-handshake is not recorded');

# A successful login carries its method and identity into the login context.
LoginTriggerTest::connect_ok($node, "$tcp user=alice password=alice-secret", 'the right password gets in');
is($node->safe_psql('postgres', "SELECT auth_method, auth_identity, ssl FROM public.auth_seen WHERE session_user_name = 'alice'"),
	$major >= 14 ? 'scram-sha-256|alice|f' : 'scram-sha-256||f',
	'the login context has the authentication method, identity (14+) and TLS use');

# Who may read the failures.
($ret, $out, $err) = LoginTriggerTest::psql_at($node, $node->connstr('postgres') . ' user=alice',
	'SELECT count(*) FROM login_trigger.auth_failures');
like($err, qr/permission denied/, 'ordinary roles cannot read the failures');
is(LoginTriggerTest::safe_psql_at($node, $node->connstr('postgres') . ' user=watcher',
		'SELECT count(*) FROM login_trigger.auth_failure_counts'),
	'1', 'members of pg_read_all_stats can');
$node->safe_psql('postgres', 'SELECT login_trigger.reset_auth_failures()');
is($node->safe_psql('postgres', 'SELECT count(*) FROM login_trigger.auth_failures'), '0', 'a superuser can reset them');

$node->stop;
done_testing();
