# Account lockout (login_trigger.lockout_*). The reference for "refused exactly as a wrong
# password is" is PostgreSQL's own refusal of a wrong password: the client's error text, and the
# server log's SQLSTATE and source location (log_error_verbosity = verbose), side by side. Also:
# scram-sha-256 and md5, TCP and the socket, threshold and reset on success, a client that hangs
# up at the password request and libpq's sslmode retry counted once, automatic and manual unlock,
# exemptions, the superuser-over-socket rule, per-address scope, bad settings, privileges, a
# restart, a standby, and a storm of wrong passwords that locks after exactly the threshold.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin . '/..';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use LoginTriggerTest;

my $node = LoginTriggerTest::node('lockout', streaming => 1,
	conf => [ "listen_addresses = '127.0.0.1,::1'", 'login_trigger.lockout_threshold = 3',
		'log_error_verbosity = verbose', 'max_connections = 60' ]);
$node->safe_psql('postgres', q{
	CREATE ROLE bob LOGIN PASSWORD 'bob-secret';
	CREATE ROLE boss SUPERUSER LOGIN PASSWORD 'boss-secret';
	CREATE ROLE svc LOGIN PASSWORD 'svc-secret';
	CREATE ROLE storm LOGIN PASSWORD 'storm-secret';
	CREATE ROLE nobody LOGIN;
	SET password_encryption = 'md5';
	CREATE ROLE carol LOGIN PASSWORD 'carol-secret';
});
LoginTriggerTest::prepend_hba($node, join("\n",
	'host all carol 127.0.0.1/32 md5', 'host all carol ::1/128 md5',
	'host all all 127.0.0.1/32 scram-sha-256', 'host all all ::1/128 scram-sha-256',
	'local all alice,bob,boss,svc scram-sha-256'));

# One connection attempt; returns (exit code, stderr).
sub attempt
{
	my ($user, $password, %opts) = @_;
	my $on = $opts{node} // $node;
	my $host = $opts{host} // '127.0.0.1';
	$host = $on->host if $host eq 'socket';
	my $connstr = "host=$host port=" . $on->port . " dbname=postgres user=$user sslmode=" . ($opts{sslmode} // 'disable');
	$connstr .= " password=$password" if defined $password;
	my ($ret, $stdout, $stderr) = LoginTriggerTest::psql_at($on, $connstr, 'SELECT 1', '-w');
	return ($ret, $stderr);
}
sub accepted { my ($ret) = attempt(@_); return $ret == 0; }
sub locked
{
	my ($on) = @_;
	return ($on // $node)->safe_psql('postgres', q{
		SELECT string_agg(concat_ws('|', user_name, coalesce(client_addr, '-'), failures, unlocks_at IS NULL), ',' ORDER BY user_name, client_addr)
		  FROM login_trigger.locked_accounts});
}
# The LOCATION line the server logged for the last refusal of $user.
sub last_location
{
	my ($offset) = @_;
	my @locations = slurp_file($node->logfile, $offset) =~ /FATAL:  28P01: password authentication failed.*\n(?:.*DETAIL.*\n)?.*LOCATION:  (\S+, \S+)/g;
	return $locations[-1];
}

# Threshold and reset on success (scram-sha-256 over TCP).
attempt('alice', 'wrong') for 1 .. 2;
ok(accepted('alice', 'alice-secret'), 'two failures: the right password still gets in');
attempt('alice', 'wrong') for 1 .. 2;
ok(accepted('alice', 'alice-secret'), 'a success reset the count: two more failures do not lock');
my $offset = -s $node->logfile;
attempt('alice', 'wrong') for 1 .. 2;
my (undef, $wrong_error) = attempt('alice', 'wrong');
my $wrong_location = last_location($offset);
ok($wrong_location =~ /^auth_failed, auth\.c:\d+$/, "PostgreSQL's own refusal is logged from $wrong_location");
like(slurp_file($node->logfile, $offset), qr/LOG:  .*login_trigger: user "alice" locked after 3 consecutive failed authentications/,
	'the third consecutive failure locks, with a LOG line');
is(locked(), 'alice|-|3|t', 'locked_accounts: alice, no address (scope user), 3 failures, no automatic unlock');
$offset = -s $node->logfile;
my ($ret, $locked_error) = attempt('alice', 'alice-secret');
isnt($ret, 0, 'locked: the right password is refused');
is($locked_error, $wrong_error, 'with exactly the error a wrong password gets');
is(last_location($offset), $wrong_location, 'logged with the same SQLSTATE and source location as PostgreSQL\'s own refusal');
like(slurp_file($node->logfile, $offset), qr/DETAIL:  The account of user "alice" is locked by login_trigger since/, 'the log says it is locked');
# A client that speaks the protocol itself: with scram-sha-256, the server's final SASL message
# would prove the password right; a locked account gets, message for message, what a wrong
# password gets.
my $raw_wrong = LoginTriggerTest::raw_scram($node, 'alice', 'wrong');
my $raw_locked = LoginTriggerTest::raw_scram($node, 'alice', 'alice-secret');
is($raw_wrong->{after_proof}, 'E', 'raw SCRAM client, wrong password: an ErrorResponse and nothing else');
is($raw_locked->{after_proof}, $raw_wrong->{after_proof}, 'raw SCRAM client, locked, right password: the same messages (no AuthenticationSASLFinal)');
is_deeply($raw_locked->{error}, $raw_wrong->{error}, '... and the same ErrorResponse, field for field');
ok(!accepted('alice', 'alice-secret', host => '::1'), 'scope user: locked from every address');
ok(!accepted('alice', 'alice-secret', host => 'socket'), '... and over the socket');

# Manual unlock.
is($node->safe_psql('postgres', q{SELECT login_trigger.unlock_account('alice')}), 't', 'unlock_account returns true');
is($node->safe_psql('postgres', q{SELECT login_trigger.unlock_account('alice')}), 'f', '... and false when there is nothing to unlock');
is($node->safe_psql('postgres', q{SELECT login_trigger.unlock_account('no such user')}), 'f', '... or for an unknown name');
ok(accepted('alice', 'alice-secret'), 'unlocked: the right password gets in');
like(LoginTriggerTest::raw_scram($node, 'alice', 'alice-secret')->{after_proof}, qr/^R12,R0,.*Z$/,
	'raw SCRAM client, unlocked: AuthenticationSASLFinal, AuthenticationOk, up to ReadyForQuery');

# md5, and the socket counting with TCP.
attempt('carol', 'wrong') for 1 .. 3;
my (undef, $carol_wrong) = attempt('carol', 'wrong');
my (undef, $carol_locked) = attempt('carol', 'carol-secret');
is($carol_locked, $carol_wrong, 'md5: locked after 3, refused with exactly the wrong-password error');
attempt('bob', 'wrong', host => 'socket') for 1 .. 2;
attempt('bob', 'wrong');
ok(!accepted('bob', 'bob-secret'), 'failures over the socket and TCP add up');
$node->safe_psql('postgres', q{SELECT login_trigger.unlock_account('bob'), login_trigger.unlock_account('carol')});

# A client that hangs up at the password request is not an attempt (psql's first try).
attempt('bob', 'wrong') for 1 .. 2;
attempt('bob', undef) for 1 .. 5;
is(locked(), '', 'two failures and five hang-ups at the password request: not locked');
attempt('bob', 'wrong');
is(locked(), 'bob|-|3|t', 'the third real failure locks');
$node->safe_psql('postgres', q{SELECT login_trigger.unlock_account('bob')});

# sslmode=prefer: libpq retries a failed TLS attempt without TLS; that is one attempt.
my $data = $node->data_dir;
system("openssl req -new -x509 -days 2 -nodes -subj /CN=localhost -keyout $data/server.key -out $data/server.crt >/dev/null 2>&1") == 0
  or die 'openssl failed';
chmod 0600, "$data/server.key";
$node->append_conf('postgresql.conf', "ssl = on\n");
$node->restart;
$offset = -s $node->logfile;
attempt('bob', 'wrong', sslmode => 'prefer') for 1 .. 2;
my $tries = () = slurp_file($node->logfile, $offset) =~ /password authentication failed for user "bob"/g;
is($tries, 4, 'two sslmode=prefer attempts are four authentications (TLS, then the retry without)');
is(locked(), '', '... counted as two failures: not locked');
attempt('bob', 'wrong', sslmode => 'require');
is(locked(), 'bob|-|3|t', 'the third attempt locks');
$node->safe_psql('postgres', q{SELECT login_trigger.unlock_account('bob')});
# Only the same client's retry: the other transport from another address is another attempt.
attempt('bob', 'wrong', sslmode => 'require', host => '127.0.0.1');
attempt('bob', 'wrong', sslmode => 'disable', host => '::1');
attempt('bob', 'wrong', sslmode => 'disable', host => '::1');
is(locked(), 'bob|-|3|t', 'TLS from 127.0.0.1, then without TLS from ::1: each counts');
$node->safe_psql('postgres', q{SELECT login_trigger.unlock_account('bob')});

# Exemptions: a listed role, and a superuser over the socket.
$node->safe_psql('postgres', q{ALTER SYSTEM SET login_trigger.lockout_exempt_roles = 'svc, "Other"'; SELECT pg_reload_conf()});
$node->poll_query_until('postgres', q{SELECT current_setting('login_trigger.lockout_exempt_roles') <> ''});
attempt('svc', 'wrong') for 1 .. 5;
ok(accepted('svc', 'svc-secret'), 'an exempt role is never locked');
attempt('boss', 'wrong') for 1 .. 3;
ok(!accepted('boss', 'boss-secret'), 'a superuser is locked over TCP');
attempt('boss', 'wrong', host => 'socket') for 1 .. 3;
ok(accepted('boss', 'boss-secret', host => 'socket'), '... but never over the Unix socket');
$node->safe_psql('postgres', q{SELECT login_trigger.unlock_account('boss')});

# Automatic unlock after lockout_duration.
$node->safe_psql('postgres', q{ALTER SYSTEM SET login_trigger.lockout_duration = '5s'; SELECT pg_reload_conf()});
$node->poll_query_until('postgres', q{SELECT current_setting('login_trigger.lockout_duration') = '5s'});
attempt('bob', 'wrong') for 1 .. 3;
is($node->safe_psql('postgres', q{SELECT unlocks_at - locked_at FROM login_trigger.locked_accounts WHERE user_name = 'bob'}),
	'00:00:05', 'locked_accounts shows when the lock lifts');
ok(!accepted('bob', 'bob-secret'), 'locked for now');
sleep(6);
$offset = -s $node->logfile;
ok(accepted('bob', 'bob-secret'), 'after lockout_duration the right password gets in');
like(slurp_file($node->logfile, $offset), qr/login_trigger: user "bob" unlocked: login_trigger.lockout_duration has passed/,
	'with a LOG line');
$node->safe_psql('postgres', q{ALTER SYSTEM RESET login_trigger.lockout_duration; SELECT pg_reload_conf()});
$node->poll_query_until('postgres', q{SELECT current_setting('login_trigger.lockout_duration') = '0'});

# Scope user_address: a lock from one address does not lock the user out of another.
$node->safe_psql('postgres', q{ALTER SYSTEM SET login_trigger.lockout_scope = 'user_address'; SELECT pg_reload_conf()});
$node->poll_query_until('postgres', q{SELECT current_setting('login_trigger.lockout_scope') = 'user_address'});
attempt('alice', 'wrong', host => '::1') for 1 .. 3;
ok(!accepted('alice', 'alice-secret', host => '::1'), 'user_address: locked from ::1');
ok(accepted('alice', 'alice-secret', host => '127.0.0.1'), '... but not from 127.0.0.1');
is(locked(), 'alice|::1|3|t', 'locked_accounts names the address');
is($node->safe_psql('postgres', q{SELECT login_trigger.unlock_account('alice', '127.0.0.1')}), 'f', 'unlock of another address: nothing');
is($node->safe_psql('postgres', q{SELECT login_trigger.unlock_account('alice', '::1')}), 't', 'unlock of that address');
$node->safe_psql('postgres', q{ALTER SYSTEM RESET login_trigger.lockout_scope; SELECT pg_reload_conf()});
$node->poll_query_until('postgres', q{SELECT current_setting('login_trigger.lockout_scope') = 'user'});

# Bad settings: refused, the previous value stays.
for my $case ([ 'lockout_threshold', '-1' ], [ 'lockout_threshold', 'many' ], [ 'lockout_scope', 'planet' ],
	[ 'lockout_duration', '-5s' ], [ 'lockout_exempt_roles', '"unclosed' ])
{
	my ($name, $value) = @$case;
	my ($r, $o, $e) = $node->psql('postgres', "ALTER SYSTEM SET login_trigger.$name = '$value'");
	like($e, qr/ERROR:  .*(invalid value|outside the valid range)/, "ALTER SYSTEM SET $name = '$value' is refused");
}
($ret, undef, my $set_error) = $node->psql('postgres', 'SET login_trigger.lockout_threshold = 0');
like($set_error, qr/cannot be changed now/, 'a session cannot SET the threshold');
$node->append_conf('postgresql.conf', "login_trigger.lockout_threshold = -1\n");
$offset = -s $node->logfile;
$node->reload;
ok(wait_for_log($offset), 'a bad value in postgresql.conf is reported at reload');
is($node->safe_psql('postgres', 'SHOW login_trigger.lockout_threshold'), '3', '... and the previous value stays');
sub wait_for_log
{
	my ($from) = @_;
	for (1 .. 50)
	{
		return 1 if slurp_file($node->logfile, $from) =~ /-1 is outside the valid range for parameter "login_trigger.lockout_threshold"/;
		select(undef, undef, undef, 0.1);
	}
	return 0;
}
$node->append_conf('postgresql.conf', "login_trigger.lockout_threshold = 3\n");
$node->reload;

# Privileges.
($ret, undef, my $denied) = $node->psql('postgres', 'SELECT * FROM login_trigger.locked_accounts', extra_params => [ '-U', 'nobody' ]);
like($denied, qr/permission denied/, 'an ordinary role cannot read locked_accounts');
($ret, undef, $denied) = $node->psql('postgres', q{SELECT login_trigger.unlock_account('bob')}, extra_params => [ '-U', 'nobody' ]);
like($denied, qr/permission denied/, '... nor unlock');

# A clean restart keeps the locks.
attempt('carol', 'wrong') for 1 .. 3;
my $before = locked();
$node->restart;
is(locked(), $before, 'a clean restart keeps the locks');
ok(!accepted('carol', 'carol-secret'), '... and enforces them');
$offset = -s $node->logfile;
attempt('carol', 'carol-secret');
like(slurp_file($node->logfile, $offset), qr/LOCATION:  \Q$wrong_location\E/,
	'after a restart the refusal reports PostgreSQL\'s own location, kept in the file');
$node->safe_psql('postgres', q{SELECT login_trigger.unlock_account('carol')});

# A standby counts its own (nothing is written to a table).
$node->backup('lockout_backup');
my $standby = PostgreSQL::Test::Cluster->new('lockout_standby');
$standby->init_from_backup($node, 'lockout_backup', has_streaming => 1);
chmod 0600, $standby->data_dir . '/server.key';
$standby->start;
attempt('bob', 'wrong', node => $standby) for 1 .. 3;
ok(!accepted('bob', 'bob-secret', node => $standby), 'standby: locked after 3 failures there');
ok(accepted('bob', 'bob-secret'), 'the primary did not count them');
is(locked($standby), 'bob|-|3|t', 'standby: locked_accounts');
$standby->safe_psql('postgres', q{SELECT login_trigger.unlock_account('bob')});

# A storm of wrong passwords, 20 clients at once: with threshold 20, exactly 20 lock; 19 do not.
sub storm
{
	my ($clients) = @_;
	my @runs;
	for (1 .. $clients)
	{
		my ($out, $err) = ('', '');
		my $connstr = 'host=127.0.0.1 port=' . $node->port . ' dbname=postgres user=storm password=wrong sslmode=disable';
		push @runs, IPC::Run::start([ 'psql', '-XAtqw', '-d', $connstr, '-c', 'SELECT 1' ], '>', \$out, '2>', \$err);
	}
	$_->finish for @runs;
}
$node->safe_psql('postgres', q{ALTER SYSTEM SET login_trigger.lockout_threshold = 20; SELECT pg_reload_conf()});
$node->poll_query_until('postgres', q{SELECT current_setting('login_trigger.lockout_threshold') = '20'});
storm(19);
ok(accepted('storm', 'storm-secret'), 'storm of 19 wrong passwords with threshold 20: not locked');
storm(20);
ok(!accepted('storm', 'storm-secret'), 'storm of 20: locked');
is(locked(), 'storm|-|20|t', '... after exactly 20 failures, none lost');

# auth_delay, loaded before us, delays a locked account's refusal as it delays a wrong password
# (it sees the failure our hook reports): nothing in the timing tells a lock apart.
my $delayed = LoginTriggerTest::node('lockout_delay', bare => 1,
	conf => [ "shared_preload_libraries = 'auth_delay,login_trigger'", 'auth_delay.milliseconds = 1000',
		'login_trigger.lockout_threshold = 1' ]);
$delayed->safe_psql('postgres', q{CREATE EXTENSION login_trigger; CREATE ROLE dave LOGIN PASSWORD 'dave-secret'});
LoginTriggerTest::prepend_hba($delayed, 'local all dave scram-sha-256');
use Time::HiRes qw(time);
attempt('dave', 'wrong', node => $delayed, host => 'socket');
my $started = time;
my ($r, $delayed_error) = attempt('dave', 'dave-secret', node => $delayed, host => 'socket');
my $elapsed = time - $started;
like($delayed_error, qr/password authentication failed for user "dave"/, 'auth_delay: the locked account is refused');
cmp_ok($elapsed, '>=', 0.9, "auth_delay: after its delay, as a wrong password is ($elapsed s)");
$delayed->stop;

$standby->stop;
$node->stop;
done_testing();
