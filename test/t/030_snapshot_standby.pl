
# es_aggregate on a hot standby: it folds like on the primary and does not
# fail when a snapshot policy asks for a snapshot it cannot write; snapshots
# stored on the primary reach the standby and are used there.

use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $primary = PostgreSQL::Test::Cluster->new('snap_primary');
$primary->init(allows_streaming => 1);
$primary->start;
$primary->safe_psql('postgres', q{
CREATE EXTENSION es_pg;
CREATE FUNCTION standby_sum(state jsonb, event es_events) RETURNS jsonb
	LANGUAGE sql IMMUTABLE
	AS $$ SELECT jsonb_build_object('sum',
		coalesce((state->>'sum')::bigint, 0) + (event.data->>'x')::bigint) $$;
SELECT es_append_batch('standby-1',
	(SELECT jsonb_agg(jsonb_build_object('type', 'Added',
			'data', jsonb_build_object('x', i)) ORDER BY i)
	   FROM generate_series(1, 50) i));
SELECT es_set_snapshot_policy('standby_sum'::regproc, 10);
});

$primary->backup('base');
my $standby = PostgreSQL::Test::Cluster->new('snap_standby');
$standby->init_from_backup($primary, 'base', has_streaming => 1);
$standby->start;
$primary->wait_for_catchup($standby);

my $aggregate = q{SET es_pg.log_replay = on;
SELECT es_aggregate('standby-1', 'standby_sum'::regproc);};

# on the standby: the state, a notice, no error, no snapshot
my ($rc, $out, $err) = $standby->psql('postgres', $aggregate);
is($rc, 0, 'es_aggregate succeeds on a standby when the policy wants a snapshot');
is($out, '{"sum": 1275}', 'the standby folds the whole stream');
like($err, qr/replayed 50 events, state at version 50, snapshot not stored: the server is a standby/,
	'the report says the snapshot was not stored');
unlike($err, qr/ERROR|WARNING/, 'no error or warning');

# the primary stores the snapshot; the standby then starts from it
($rc, $out, $err) = $primary->psql('postgres', $aggregate);
like($err, qr/stored a snapshot at version 50/, 'the primary stores the snapshot');
$primary->wait_for_catchup($standby);
($rc, $out, $err) = $standby->psql('postgres', $aggregate);
is($out, '{"sum": 1275}', 'same state from the snapshot');
like($err, qr/snapshot at version 50, replayed 0 events/,
	'the standby uses the snapshot made on the primary');

# reads of snapshots work on the standby
is($standby->safe_psql('postgres',
		q{SELECT version FROM es_load_snapshot('standby-1')}),
	'50', 'es_load_snapshot on the standby');

# explicit writes fail there as any write does
($rc, $out, $err) = $standby->psql('postgres',
	q{SELECT es_save_snapshot('standby-1', 10, '{}')});
like($err, qr/read-only transaction/, 'es_save_snapshot is a write');

$standby->stop;
$primary->stop;
done_testing();
