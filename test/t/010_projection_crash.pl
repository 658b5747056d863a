# Crash safety of async projections: kill -9 the postmaster while the
# projection worker applies events under append load, restart, and check
# that the projection resumes from its checkpoint: every event of es_events
# reaches the read model exactly once (the read model counts per event id),
# none is missed, and the checkpoint ends at the head.  fsync is on.

use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use IPC::Run;
use Test::More;
use Time::HiRes qw(usleep);

my $cycles = $ENV{ES_SOAK} ? 6 : 2;

my $node = PostgreSQL::Test::Cluster->new('projcrash');
$node->init;
$node->append_conf('postgresql.conf', qq{
fsync = on
synchronous_commit = on
full_page_writes = on
shared_preload_libraries = 'es_pg'
es_pg.projection_batch_size = 50
es_pg.projection_naptime = 200
max_connections = 20
});
$node->start;
$node->safe_psql('postgres', q{
	CREATE EXTENSION es_pg;
	CREATE TABLE seen (event_id uuid PRIMARY KEY,
					   global_position bigint NOT NULL,
					   n integer NOT NULL);
	-- a little work per event, so that the worker is caught mid-batch
	CREATE FUNCTION seen_apply(event es_events) RETURNS void
	LANGUAGE sql AS $$
		SELECT pg_sleep(0.0005);
		INSERT INTO seen VALUES (event.event_id, event.global_position, 1)
		ON CONFLICT (event_id) DO UPDATE SET n = seen.n + 1;
	$$;
	SELECT es_create_projection('crash_seen', 'seen_apply(es_events)',
		NULL, 'async');
});

my $dir = PostgreSQL::Test::Utils::tempdir;
open(my $fh, '>', "$dir/append.sql") or die;
print $fh q{\set s random(1, 40)
SELECT es_append_batch('pc-' || :client_id || '-' || :s, '[{"type": "Tick", "data": {"i": 1}}, {"type": "Tick", "data": {"i": 2}}, {"type": "Tick", "data": {"i": 3}}, {"type": "Tock", "data": {"i": 4}}, {"type": "Tock", "data": {"i": 5}}]');
};
close $fh;

# kill -9 the postmaster, then restart it (see 001_crash_append.pl)
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

# appends at a bounded rate (about 750 events a second), which the worker
# follows while spending most of its time inside its batch transactions
for my $cycle (1 .. $cycles)
{
	my ($out, $err) = ('', '');
	my $h = IPC::Run::start(
		[
			'pgbench', '-n', '-c', '3', '-j', '2', '-T', '60', '-R', '150',
			'-f', "$dir/append.sql",
			'-h', $node->host, '-p', $node->port, 'postgres'
		],
		'>', \$out, '2>', \$err);

	usleep(1_500_000 + int(rand(1_000_000)));
	my ($position, $head) = split /\|/, $node->safe_psql('postgres',
		q{SELECT position, head_position FROM es_projection_status
		   WHERE name = 'crash_seen'});
	note "cycle $cycle: checkpoint $position, head $head before the crash";
	cmp_ok($position, '>', 0, "cycle $cycle: the worker was applying");
	crash_and_restart();
	$h->finish;

	my $after = $node->safe_psql('postgres',
		q{SELECT position FROM es_projection_status WHERE name = 'crash_seen'});
	cmp_ok($after, '>=', $position,
		"cycle $cycle: the checkpoint survived the crash ($after >= $position)");
}

# the worker catches up after the last restart, with no call from us
is( $node->safe_psql('postgres',
		q{SELECT es_wait_for_projection('crash_seen', es_head_position(), '60 s')}),
	't', 'the projection catches up after the crashes');

my $events = $node->safe_psql('postgres', 'SELECT count(*) FROM es_events');
cmp_ok($events, '>', 0, "events were appended ($events)");
is($node->safe_psql('postgres', 'SELECT count(*) FROM seen'),
	$events, 'the read model has one row per event');
is($node->safe_psql('postgres', 'SELECT count(*) FROM seen WHERE n <> 1'),
	'0', 'no event was applied twice');
is( $node->safe_psql('postgres', q{
		SELECT count(*) FROM es_events e
		 WHERE NOT EXISTS (SELECT 1 FROM seen s WHERE s.event_id = e.event_id)}),
	'0', 'no event was missed');
is( $node->safe_psql('postgres', q{
		SELECT count(*) FROM seen s
		 WHERE NOT EXISTS (SELECT 1 FROM es_events e
							WHERE e.event_id = s.event_id
							  AND e.global_position = s.global_position)}),
	'0', 'the read model holds only committed events');
is( $node->safe_psql('postgres', q{
		SELECT position = head_position AND lag_events = 0 AND state = 'running'
		  FROM es_projection_status WHERE name = 'crash_seen'}),
	't', 'the checkpoint is at the head');

$node->stop;
done_testing();
