
# Subscriptions outside one session: a consumer killed in the middle of a
# batch (its events come again to the next consumer, nothing is lost,
# effects stay exactly-once with the ack in the consumer's transaction);
# acks and parked events survive a server crash (fsync on); polls, acks and
# a long poll through pgbouncer in transaction mode, with two consumers
# sharing one server connection.

use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use IPC::Run;
use Test::More;
use Time::HiRes qw(usleep time);

my $node = PostgreSQL::Test::Cluster->new('subscription');
$node->init;
$node->append_conf('postgresql.conf', qq{
fsync = on
synchronous_commit = on
shared_preload_libraries = 'es_pg'
max_connections = 30
});
$node->start;
$node->safe_psql('postgres', q{
	CREATE EXTENSION es_pg;
	SELECT count(es_append('order-' || (i % 10), 'Placed', jsonb_build_object('i', i)))
	  FROM generate_series(1, 200) i;
	CREATE TABLE handled (global_position bigint PRIMARY KEY, attempt int);
	CREATE TABLE effects (global_position bigint, consumer text);
	SELECT es_create_subscription('orders', 'order', group_size => 2, lease => '5 s');
});

# ---- a consumer killed mid-batch, acking in autocommit after each event
# (at-least-once): it handled part of its batch and died without acking.
# The next consumer gets the whole batch again once the lease is over.
my $dir = PostgreSQL::Test::Utils::tempdir;
my ($out, $err) = ('', '');
my $killed = IPC::Run::start(
	[
		'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-h', $node->host,
		'-p', $node->port, '-d', 'postgres', '-c',
		q{CREATE TEMP TABLE batch AS SELECT global_position, attempt
		    FROM es_poll('orders', 0, 50, '0', 'consumer-a')},
		'-c',
		q{INSERT INTO effects SELECT global_position, 'a' FROM batch
		   ORDER BY global_position LIMIT 20},
		'-c', q{SELECT pg_sleep(600)}
	],
	'>', \$out, '2>', \$err);
$node->poll_query_until('postgres',
	q{SELECT count(*) = 20 FROM effects}) or die "the consumer handled nothing";
my $delivered = $node->safe_psql('postgres', q{
	SELECT delivered_to - position FROM es_subscription_status
	 WHERE subscription = 'orders' AND member = 0});
cmp_ok($delivered, '>', 0, 'the killed consumer had a batch delivered and not acked');
# kill -9 the consumer in the middle of its batch, and end its session
$killed->kill_kill;
$node->safe_psql('postgres', q{
	SELECT pg_terminate_backend(pid) FROM pg_stat_activity
	 WHERE query LIKE '%pg_sleep(600)%' AND pid <> pg_backend_pid()});

# a second consumer is refused while the lease runs, then takes over
my ($rc, $stdout, $stderr) = $node->psql('postgres',
	q{SELECT count(*) FROM es_poll('orders', 0, 50, '0', 'consumer-b')});
like($stderr, qr/leased to consumer "consumer-a"/, 'the second consumer waits for the lease (55006)');
sleep 5;
my $again = $node->safe_psql('postgres', q{
	BEGIN;
	INSERT INTO handled SELECT global_position, attempt
	  FROM es_poll('orders', 0, 50, '0', 'consumer-b');
	SELECT es_ack('orders', 0, (SELECT max(global_position) FROM handled), 'consumer-b') > 0;
	COMMIT;
	SELECT count(*), min(attempt), max(attempt) FROM handled;});
like($again, qr/^50\|2\|2$/m, 'after the lease the batch comes again, all 50, attempt 2');
is( $node->safe_psql('postgres', q{
		SELECT count(*) FROM effects e
		 WHERE NOT EXISTS (SELECT 1 FROM handled h WHERE h.global_position = e.global_position)}),
	'0', 'every event the killed consumer handled was delivered again');

# drain both members; exactly-once: every event of the category handled once
for my $member (0, 1)
{
	for my $round (1 .. 20)
	{
		my $n = $node->safe_psql('postgres', qq{
			BEGIN;
			CREATE TEMP TABLE page ON COMMIT DROP AS
			  SELECT global_position, attempt FROM es_poll('orders', $member, 37, '0', 'consumer-b');
			INSERT INTO handled SELECT * FROM page;
			SELECT CASE WHEN count(*) > 0 THEN es_ack('orders', $member, max(global_position), 'consumer-b') END FROM page;
			SELECT 'page', count(*) FROM page;
			COMMIT;});
		last if $n =~ /^page\|0$/m;
	}
}
is( $node->safe_psql('postgres', q{
		SELECT count(*) = 200 AND count(DISTINCT global_position) = 200
		   AND bool_and(global_position IN (SELECT global_position FROM es_events WHERE stream_id LIKE 'order-%'))
		  FROM handled}),
	't', 'both members together handled every event once');

# ---- crash: acked checkpoints, deliveries and parked events are durable
$node->safe_psql('postgres', q{
	SELECT es_append('order-1', 'Placed', '{"poison": true}');
	SELECT es_create_subscription('poison', 'order', max_attempts => 1,
		start_position => es_head_position() - 1);
	SELECT count(*) FROM es_poll('poison');
	SELECT es_nack('poison', 0, es_head_position(), 'bad event');
});
my $before = $node->safe_psql('postgres', q{
	SELECT string_agg(subscription || ':' || member || ':' || position || ':' || delivered_to || ':' || parked, ',' ORDER BY 1)
	  FROM es_subscription_status});
my $pmpid = $node->{_pid};
$node->kill9;
for (1 .. 100)
{
	last unless kill(0, $pmpid);
	usleep(100_000);
}
my $restarted = 0;
for (1 .. 60)
{
	if ($node->start(fail_ok => 1)) { $restarted = 1; last; }
	$node->{_pid} = undef;
	usleep(500_000);
}
BAIL_OUT('server did not restart after kill -9') unless $restarted;
my $after = $node->safe_psql('postgres', q{
	SELECT string_agg(subscription || ':' || member || ':' || position || ':' || delivered_to || ':' || parked, ',' ORDER BY 1)
	  FROM es_subscription_status});
is($after, $before, 'checkpoints and parked events are the same after kill -9 and restart');
is( $node->safe_psql('postgres', q{SELECT last_error FROM es_parked_events WHERE subscription = 'poison'}),
	'bad event', 'the parked event kept its error');
is( $node->safe_psql('postgres', q{SELECT count(*) FROM es_poll('orders', 0, 100, '0', 'consumer-b')}),
	'0', 'nothing acked before the crash comes again');

# ---- pgbouncer in transaction mode
my $pgbouncer = -x '/usr/sbin/pgbouncer' ? '/usr/sbin/pgbouncer' : 'pgbouncer';
my $bport = PostgreSQL::Test::Cluster::get_free_port();
my $user = $node->safe_psql('postgres', 'SELECT current_user');
my $host = $node->host;
my $nport = $node->port;
open(my $fh, '>', "$dir/pgbouncer.ini") or die;
print $fh qq{[databases]
postgres = host=$host port=$nport dbname=postgres user=$user

[pgbouncer]
listen_addr =
listen_port = $bport
unix_socket_dir = $dir
auth_type = any
pool_mode = transaction
default_pool_size = 1
max_client_conn = 20
logfile = $dir/pgbouncer.log
pidfile = $dir/pgbouncer.pid
};
close $fh;
my ($bout, $berr) = ('', '');
my $bouncer = IPC::Run::start([ $pgbouncer, "$dir/pgbouncer.ini" ],
	'>', \$bout, '2>', \$berr);
my $up = 0;
for (1 .. 100)
{
	my $res = `psql -X -At -h $dir -p $bport -d postgres -c 'SELECT 1' 2>/dev/null`;
	if (defined $res && $res =~ /^1$/m) { $up = 1; last; }
	usleep(100_000);
}
ok($up, 'pgbouncer is up') or BAIL_OUT("pgbouncer did not start: $berr");

$node->safe_psql('postgres', q{
	SELECT es_create_subscription('pooled', 'pool', group_size => 2);
	SELECT count(es_append('pool-' || (i % 6), 'E', jsonb_build_object('i', i)))
	  FROM generate_series(1, 60) i;
});

# two consumers, one per member, each one session through the pooler,
# interleaving their calls on its single server connection
my @consumers;
for my $member (0, 1)
{
	my ($in, $o, $e) = ('', '', '');
	my $h = IPC::Run::start(
		[ 'psql', '-X', '-At', '-v', 'ON_ERROR_STOP=1', '-h', $dir, '-p', $bport, '-d', 'postgres' ],
		'<', \$in, '>', \$o, '2>', \$e);
	push @consumers, { member => $member, h => $h, in => \$in, out => \$o, err => \$e };
}
for my $round (1 .. 15)
{
	for my $c (@consumers)
	{
		my $m = $c->{member};
		${ $c->{in} } .= qq{SELECT 'got', global_position FROM es_poll('pooled', $m, 5, '0', 'pooled-$m');
SELECT 'ack', es_ack('pooled', $m, (SELECT delivered_to FROM es_subscription_status WHERE subscription = 'pooled' AND member = $m), 'pooled-$m');
};
		$c->{h}->pump_nb;
	}
}
my %got;
for my $c (@consumers)
{
	${ $c->{in} } .= "\\q\n";
	$c->{h}->finish;
	is(${ $c->{err} }, '', "consumer of member $c->{member} through pgbouncer had no error");
	$got{$1}++ while ${ $c->{out} } =~ /^got\|(\d+)$/mg;
}
is(scalar(keys %got), 60, 'through pgbouncer the two members received all 60 events');
is((grep { $_ != 1 } values %got), 0, 'each event once');

# a long poll through pgbouncer returns when an append commits
my ($lin, $lout, $lerr) = ('', '', '');
my $t0 = time;
my $lp = IPC::Run::start(
	[
		'psql', '-X', '-At', '-h', $dir, '-p', $bport, '-d', 'postgres', '-c',
		q{SELECT stream_id FROM es_poll('pooled', 0, 10, '60 s', 'pooled-0')}
	],
	'>', \$lout, '2>', \$lerr);
usleep(500_000);
# the pool has one server connection, held by the waiting poll: append
# directly
my $stream = $node->safe_psql('postgres', q{
	SELECT s FROM (SELECT 'pool-x' || i AS s FROM generate_series(1, 50) i) x
	 WHERE (hashtextextended(s, 0) & 9223372036854775807) % 2 = 0 LIMIT 1});
$node->safe_psql('postgres', "SELECT es_append('$stream', 'Late', '{}')");
$lp->finish;
my $elapsed = time - $t0;
is($lout, "$stream\n", 'the long poll through pgbouncer delivered the new event');
cmp_ok($elapsed, '<', 30, 'and returned before its wait was over');

$bouncer->kill_kill;
$node->stop;
done_testing();
