# Shared set-up for the integration tests: throwaway clusters (PostgreSQL's own TAP framework)
# with login_trigger loaded one way or another, and an audit table that login and logout
# triggers write to.
package LoginTriggerTest;

use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IO::Select;
use IO::Socket::UNIX;
use Socket qw(SOCK_STREAM);

our $AUDIT_SQL = <<'SQL';
CREATE EXTENSION IF NOT EXISTS login_trigger;
CREATE TABLE public.audit (
    id bigserial PRIMARY KEY, event text, trigger_name text, role text, app text, reason text,
    pid int, duration float8, recovery bool, at timestamptz DEFAULT clock_timestamp());
GRANT INSERT, SELECT ON public.audit TO PUBLIC;
GRANT USAGE ON SEQUENCE public.audit_id_seq TO PUBLIC;
CREATE FUNCTION public.audit_event() RETURNS event_trigger LANGUAGE plpgsql AS $$
DECLARE c jsonb := login_trigger.context();
BEGIN
  INSERT INTO public.audit (event, trigger_name, role, app, reason, pid, duration, recovery)
  VALUES (TG_EVENT, c->>'trigger_name', c->>'session_user_name', c->>'application_name',
          c->>'reason', (c->>'backend_pid')::int, (c->>'session_duration')::float8,
          (c->>'in_recovery')::bool);
END $$;
CREATE ROLE alice LOGIN PASSWORD 'alice-secret';
CREATE FUNCTION public.mark() RETURNS void LANGUAGE sql AS $$SELECT set_config('app.marked', 'yes', false)$$;
SQL

# Whether this is the full reliability run (`scripts/test --stress`) rather than the reduced one
# every `scripts/test` (and CI) runs.
sub stress
{
	return ($ENV{LOGIN_TRIGGER_STRESS} // '') eq '1';
}

# The size of a load or fault test: $reduced in the ordinary run, $full under --stress.
sub scaled
{
	my ($reduced, $full) = @_;
	return stress() ? $full : $reduced;
}

# Records a measured figure (connections made, rows expected and found, errors, restarts, memory)
# for docs/reliability.md: `scripts/test --stress` collects the lines every test wrote.
sub figure
{
	my ($test, $name, $value) = @_;
	note("figure: $test: $name = $value");
	my $file = $ENV{LOGIN_TRIGGER_FIGURES} or return;
	open(my $fh, '>>', $file) or die "cannot append to $file: $!";
	print $fh "$test|$name|$value\n";
	close($fh);
}

# A value of the pg_config of the version under test (first in PATH; PostgreSQL 13's test
# framework has no config_data).
sub pg_config
{
	my ($flag) = @_;
	my $value = `pg_config $flag`;
	chomp $value;
	return $value;
}

# A started node. mode: shared (default), session, both, or session_library (the session library,
# login_trigger_session, in session_preload_libraries); conf: extra postgresql.conf lines.
sub node
{
	my ($name, %opts) = @_;
	my $mode = $opts{mode} // 'shared';
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init(allows_streaming => $opts{streaming} ? 1 : 0);
	my @conf = (
		"log_line_prefix = '%m [%p] %e %a '",
		"log_min_messages = info",
		"password_encryption = 'scram-sha-256'",
		"login_trigger.login_timeout = '30s'");
	push @conf, "shared_preload_libraries = 'login_trigger'"
	  if $mode eq 'shared' || $mode eq 'both';
	push @conf, "session_preload_libraries = 'login_trigger'"
	  if $mode eq 'session' || $mode eq 'both';
	push @conf, "session_preload_libraries = 'login_trigger_session'" if $mode eq 'session_library';
	push @conf, @{ $opts{conf} // [] };
	$node->append_conf('postgresql.conf', join("\n", @conf) . "\n");
	$node->start;
	$node->safe_psql('postgres', $AUDIT_SQL) unless $opts{bare};
	return $node;
}

# Puts a pg_hba.conf line before the framework's trust lines (first match wins) and reloads.
sub prepend_hba
{
	my ($node, $line) = @_;
	my $hba = $node->data_dir . '/pg_hba.conf';
	my $rules = slurp_file($hba);
	open(my $hba_file, '>', $hba) or die "cannot write $hba: $!";
	print $hba_file "$line\n$rules";
	close($hba_file);
	$node->reload;
}

# Rows of the audit table as "event|trigger|role|app|reason" lines, optionally filtered.
sub audit
{
	my ($node, $where) = @_;
	$where //= 'true';
	return $node->safe_psql('postgres',
		"SELECT concat_ws('|', event, trigger_name, role, app, reason) FROM public.audit WHERE $where ORDER BY id");
}

# Waits until the audit table has a row matching $where (logout rows commit after the client left).
sub wait_for_audit
{
	my ($node, $where, $what) = @_;
	ok($node->poll_query_until('postgres', "SELECT count(*) > 0 FROM public.audit WHERE $where"),
		$what);
}

# psql with a whole connection string, the same on every version's test framework (13's
# psql() has no connstr option). Returns (exit code, stdout, stderr), trimmed.
sub psql_at
{
	my ($node, $connstr, $sql, @options) = @_;
	my ($stdout, $stderr) = ('', '');
	IPC::Run::run([ 'psql', '-XAtq', @options, '-d', $connstr, '-f', '-' ],
		'<', \$sql, '>', \$stdout, '2>', \$stderr);
	my $ret = $? >> 8;
	s/\s+$// for $stdout, $stderr;
	return ($ret, $stdout, $stderr);
}

sub safe_psql_at
{
	my ($node, $connstr, $sql) = @_;
	my ($ret, $stdout, $stderr) = psql_at($node, $connstr, $sql, '-v', 'ON_ERROR_STOP=1');
	die "psql failed ($connstr): $stderr" if $ret != 0;
	return $stdout;
}

# connect_ok / connect_fails for every version (13's framework has neither).
sub connect_ok
{
	my ($node, $connstr, $name, %params) = @_;
	my ($ret, $stdout, $stderr) = psql_at($node, $connstr, 'SELECT 1');
	is($ret, 0, $name);
	like($stderr, $params{expected_stderr}, "$name: stderr") if $params{expected_stderr};
}

# A refused connection: psql fails with FATAL, and the server log has the FATAL with the SQLSTATE
# (the log_line_prefix of node() puts %e before the level; libpq shows no SQLSTATE at connection).
sub connect_fails
{
	my ($node, $connstr, $name, %params) = @_;
	my $sqlstate = $params{sqlstate} or die "connect_fails($name): say which SQLSTATE refuses it";
	my $offset = -s $node->logfile;
	my ($ret, $stdout, $stderr) = psql_at($node, $connstr, 'SELECT 1');
	isnt($ret, 0, $name);
	like($stderr, qr/FATAL:  /, "$name: FATAL");
	like($stderr, $params{expected_stderr}, "$name: matches") if $params{expected_stderr};
	like(slurp_file($node->logfile, $offset), qr/\] \Q$sqlstate\E .*FATAL:  /, "$name: logged as FATAL $sqlstate");
}

# An attacker's client: speaks the v3 protocol over the node's Unix socket and ignores errors.
# Sends the startup packet (user, database and any other parameters given), reads what the
# server sends until ReadyForQuery or the end of the stream, then, whatever came back, sends
# "SELECT current_user" and reads again. Needs trust authentication. Returns a hash:
#   error    => the first ErrorResponse's fields by their protocol letter (S severity, C SQLSTATE,
#               M message, D detail, H hint, W context), or undef
#   ready    => whether ReadyForQuery arrived during startup
#   answered => the types of the messages that came back after the query ('' if none)
sub raw_session
{
	my ($node, %params) = @_;
	local $SIG{PIPE} = 'IGNORE';
	my $socket = raw_connect($node, %params);
	my %result = (error => undef, ready => 0, answered => '');
	while (my ($type, $payload) = raw_message($socket))
	{
		if ($type eq 'R')
		{
			my $request = unpack('N', $payload);
			die "raw_session needs trust authentication (server asked for method $request)" if $request != 0;
		}
		elsif ($type eq 'E')
		{
			$result{error} //= { map { substr($_, 0, 1) => substr($_, 1) } grep { length } split(/\0/, $payload) };
		}
		elsif ($type eq 'Z')
		{
			$result{ready} = 1;
			last;
		}
	}
	my $query = "SELECT current_user\0";
	syswrite($socket, 'Q' . pack('N', length($query) + 4) . $query);
	while (my ($type) = raw_message($socket))
	{
		$result{answered} .= $type;
		last if $type eq 'Z';
	}
	close($socket);
	return %result;
}

# Opens the node's Unix socket and sends a startup packet (user postgres, database postgres and
# any other parameters given).
sub raw_connect
{
	my ($node, %params) = @_;
	my %startup = (user => 'postgres', database => 'postgres', %params);
	my $path = $node->host . '/.s.PGSQL.' . $node->port;
	my $socket = IO::Socket::UNIX->new(Type => SOCK_STREAM, Peer => $path)
	  or die "cannot connect to $path: $!";
	my $body = pack('N', 196608) . join('', map { "$_\0$startup{$_}\0" } sort keys %startup) . "\0";
	syswrite($socket, pack('N', length($body) + 4) . $body);
	return $socket;
}

# A client that authenticates with scram-sha-256 itself (RFC 5802 and 7677, without channel
# binding) over the node's Unix socket, to see every message the server sends, which libpq
# hides. Returns a hash:
#   after_proof => what the server sent after the client's proof, one entry per message, an
#                  authentication request with its code ("R12" is AuthenticationSASLFinal, the
#                  server's proof that the password was right; "R0" AuthenticationOk), comma-
#                  separated, up to ReadyForQuery or the end of the stream
#   error       => the ErrorResponse's fields by their protocol letter, or undef
sub raw_scram
{
	my ($node, $user, $password) = @_;
	require Digest::SHA;
	require MIME::Base64;
	local $SIG{PIPE} = 'IGNORE';
	my $socket = raw_connect($node, user => $user);
	my $message = sub {
		my ($type, $payload) = raw_message($socket);
		die 'the server closed the connection during SCRAM' if !defined $type;
		return ($type, $payload);
	};
	my $send = sub { my ($type, $payload) = @_; syswrite($socket, $type . pack('N', length($payload) + 4) . $payload); };
	my ($type, $payload) = $message->();
	die "expected AuthenticationSASL, got $type" unless $type eq 'R' && unpack('N', $payload) == 10;
	my $client_nonce = MIME::Base64::encode_base64(join('', map { chr(int(rand(256))) } 1 .. 18), '');
	my $client_first_bare = "n=,r=$client_nonce";
	my $client_first = "n,,$client_first_bare";
	$send->('p', "SCRAM-SHA-256\0" . pack('N', length($client_first)) . $client_first);
	($type, $payload) = $message->();
	die "expected AuthenticationSASLContinue, got $type" unless $type eq 'R' && unpack('N', $payload) == 11;
	my $server_first = substr($payload, 4);
	my %server = map { split(/=/, $_, 2) } split(/,/, $server_first);
	my $salt = MIME::Base64::decode_base64($server{s});
	# PBKDF2-HMAC-SHA-256, one block.
	my $u = Digest::SHA::hmac_sha256($salt . pack('N', 1), $password);
	my $salted = $u;
	for (2 .. $server{i})
	{
		$u = Digest::SHA::hmac_sha256($u, $password);
		$salted ^= $u;
	}
	my $client_key = Digest::SHA::hmac_sha256('Client Key', $salted);
	my $without_proof = 'c=' . MIME::Base64::encode_base64('n,,', '') . ",r=$server{r}";
	my $auth_message = "$client_first_bare,$server_first,$without_proof";
	my $proof = $client_key ^ Digest::SHA::hmac_sha256($auth_message, Digest::SHA::sha256($client_key));
	$send->('p', "$without_proof,p=" . MIME::Base64::encode_base64($proof, ''));
	my %result = (after_proof => [], error => undef);
	while (my ($type, $payload) = raw_message($socket))
	{
		push @{ $result{after_proof} }, $type eq 'R' ? 'R' . unpack('N', $payload) : $type;
		$result{error} //= { map { substr($_, 0, 1) => substr($_, 1) } grep { length } split(/\0/, $payload) }
		  if $type eq 'E';
		last if $type eq 'Z';
	}
	close($socket);
	$result{after_proof} = join(',', @{ $result{after_proof} });
	return \%result;
}

# One protocol message (type, payload) from the socket; empty at the end of the stream. Gives up
# after the framework's timeout rather than hang a test on a server that neither answers nor
# closes.
sub raw_message
{
	my ($socket) = @_;
	my $header = raw_read($socket, 5);
	return () if length($header) < 5;
	my ($type, $length) = unpack('a1 N', $header);
	my $payload = raw_read($socket, $length - 4);
	return () if length($payload) < $length - 4;
	return ($type, $payload);
}

sub raw_read
{
	my ($socket, $wanted) = @_;
	my $select = IO::Select->new($socket);
	my $data = '';
	while (length($data) < $wanted)
	{
		$select->can_read($PostgreSQL::Test::Utils::timeout_default // 180) or die "no answer from the server";
		my $read = sysread($socket, $data, $wanted - length($data), length($data));
		last if !$read;
	}
	return $data;
}

1;
