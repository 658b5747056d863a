
# Crash safety of appends: kill -9 the postmaster while clients append
# (single events and batches of three), restart, and check that every
# acknowledged append is there, that versions are contiguous, that no batch
# is partial, and that the global feed returns every event once, in order.
# fsync is on: the test cluster default turns it off.

use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use IPC::Run;
use Test::More;
use Time::HiRes qw(usleep);

my $cycles = $ENV{ES_SOAK} ? 10 : 3;
my $clients = 4;

my $node = PostgreSQL::Test::Cluster->new('crash');
$node->init;
$node->append_conf('postgresql.conf', qq{
fsync = on
synchronous_commit = on
full_page_writes = on
max_connections = 20
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION es_pg');

my $dir = PostgreSQL::Test::Utils::tempdir;

# script 0: one event; script 1: a batch of three, tagged i = 1, 2, 3
open(my $fh, '>', "$dir/single.sql") or die;
print $fh q{SELECT es_append('crash-' || :cycle || '-' || :client_id, 'Single', jsonb_build_object('i', 0));
};
close $fh;
open($fh, '>', "$dir/batch.sql") or die;
print $fh q{SELECT es_append_batch('crash-' || :cycle || '-' || :client_id, jsonb_build_array(jsonb_build_object('type', 'Batch', 'data', jsonb_build_object('i', 1)), jsonb_build_object('type', 'Batch', 'data', jsonb_build_object('i', 2)), jsonb_build_object('type', 'Batch', 'data', jsonb_build_object('i', 3))));
};
close $fh;

# kill -9 the postmaster, then restart it.  Its backends notice the death
# and exit on their own; until they do, the old shared memory is in use and
# the new postmaster refuses to start, so retry for a while.
sub crash_and_restart
{
	my $pid = $node->{_pid};
	$node->kill9;
	for my $try (1 .. 100)
	{
		last unless kill(0, $pid);
		usleep(100_000);
	}
	for my $try (1 .. 60)
	{
		return if $node->start(fail_ok => 1);
		$node->{_pid} = undef;
		usleep(500_000);
	}
	BAIL_OUT('server did not restart after kill -9');
}

my $total_acked = 0;
for my $cycle (1 .. $cycles)
{
	my $logdir = "$dir/log$cycle";
	mkdir $logdir or die;
	my ($out, $err) = ('', '');
	my $h = IPC::Run::start(
		[
			'pgbench', '-n', '-M', 'prepared', '-c', $clients, '-j', '2',
			'-T', '60', '-D', "cycle=$cycle", '-l',
			"--log-prefix=$logdir/pgbench",
			'-f', "$dir/single.sql\@1", '-f', "$dir/batch.sql\@1",
			'-h', $node->host, '-p', $node->port, 'postgres'
		],
		'>', \$out, '2>', \$err);

	# let the clients append for a while, then pull the plug
	usleep(1_500_000 + int(rand(1_500_000)));
	crash_and_restart();
	$h->finish;

	# acknowledged appends per client, from pgbench's per-transaction log
	my %acked;
	for my $log (glob("$logdir/pgbench*"))
	{
		open(my $lf, '<', $log) or die;
		while (<$lf>)
		{
			my ($client, $txno, $time, $script) = split;
			$acked{$client} += ($script == 0 ? 1 : 3);
		}
		close $lf;
	}
	my $acked_events = 0;
	$acked_events += $_ for values %acked;
	$total_acked += $acked_events;
	cmp_ok($acked_events, '>', 0, "cycle $cycle: clients appended before the crash");

	for my $client (sort keys %acked)
	{
		my $stream = "crash-$cycle-$client";
		my $have = $node->safe_psql('postgres',
			"SELECT es_stream_version('$stream')");
		# the append in flight at the crash may have committed unacknowledged
		ok($have >= $acked{$client} && $have <= $acked{$client} + 3,
			"cycle $cycle client $client: $acked{$client} acknowledged events, $have stored");
	}
}

# versions 1..N in every stream
is( $node->safe_psql('postgres', q{
		SELECT count(*) FROM (
			SELECT stream_id FROM es_events GROUP BY stream_id
			HAVING min(version) <> 1 OR max(version) <> count(*)) s}),
	'0', 'versions are contiguous in every stream');

# no partial batch: every i = 1 is followed by i = 2 and i = 3
is( $node->safe_psql('postgres', q{
		SELECT count(*) FROM es_events e
		 WHERE e.event_type = 'Batch' AND (e.data->>'i')::int = 1
		   AND (SELECT count(*) FROM es_events f
				 WHERE f.stream_id = e.stream_id
				   AND f.version IN (e.version + 1, e.version + 2)
				   AND (f.data->>'i')::int = f.version - e.version + 1) <> 2}),
	'0', 'no batch was partially written');
is( $node->safe_psql('postgres', q{
		SELECT count(*) FROM (
			SELECT stream_id, event_type, count(*) FROM es_events
			 WHERE event_type = 'Batch' GROUP BY 1, 2
			HAVING count(*) % 3 <> 0) s}),
	'0', 'batch events come in threes');

# the global feed, paged 100 at a time, returns every event once, in order
is( $node->safe_psql('postgres', q{
		DO $$
		DECLARE
			last bigint := 0;
			n bigint := 0;
			r record;
			got int;
		BEGIN
			LOOP
				got := 0;
				FOR r IN SELECT global_position FROM es_read_all(last, 100) LOOP
					IF r.global_position <= last THEN
						RAISE EXCEPTION 'feed went backwards at %', r.global_position;
					END IF;
					last := r.global_position;
					got := got + 1;
				END LOOP;
				EXIT WHEN got = 0;
				n := n + got;
			END LOOP;
			IF n <> (SELECT count(*) FROM es_events) THEN
				RAISE EXCEPTION 'feed returned % events, table has %', n,
					(SELECT count(*) FROM es_events);
			END IF;
		END $$;
		SELECT 'feed ok'}),
	'feed ok', 'the global feed returns every event exactly once, in order');

# positions follow versions within each stream
is( $node->safe_psql('postgres', q{
		SELECT count(*) FROM (
			SELECT global_position < lag(global_position) OVER w AS backwards
			  FROM es_events WINDOW w AS (PARTITION BY stream_id ORDER BY version)) s
		 WHERE backwards}),
	'0', 'positions increase with versions');

# and appends carry on after the crashes
is($node->safe_psql('postgres', q{SELECT es_append('crash-after', 'Done', '{}', 0)}),
	'1', 'appends continue after restart');

note "total acknowledged events: $total_acked over $cycles crash cycles";
$node->stop;
done_testing();
