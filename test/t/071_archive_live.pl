
# Archiving live streams (es_archive(..., live_streams => true),
# docs/audit.md "Archiving"):
#   - an append that comes while es_archive moves the stream's first
#     versions waits for it and gets the right version, and its expected
#     version check still holds;
#   - a reader that loaded the archive horizon before the archive, and
#     reads the archived range right after it committed, is refused (55Z02),
#     never served the events with holes;
#   - the space comes back (VACUUM FULL), es_verify and
#     audit/verify_export.py still verify;
#   - a dump of the archived store restores with pg_restore -j 2, verifies,
#     refuses the same reads and takes appends at the right versions.

use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use IPC::Run;
use Test::More;
use Time::HiRes qw(usleep);
use File::Basename qw(dirname);
use Cwd qw(abs_path);

my $script = abs_path(dirname(__FILE__) . '/../../audit/verify_export.py');
my $export_sql = abs_path(dirname(__FILE__) . '/../../audit/export.sql');

my $node = PostgreSQL::Test::Cluster->new('archive_live');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'es_pg'
max_connections = 20
es_pg.projection_workers = off
});
$node->start;

# psql in the background, one transaction per -c
sub background
{
	my ($db, @statements) = @_;
	my ($out, $err) = ('', '');
	my @cmd = ('psql', '-X', '-At', '-v', 'VERBOSITY=sqlstate', '-h', $node->host, '-p', $node->port, '-d', $db);
	push @cmd, '-c', $_ for @statements;
	my $h = IPC::Run::start(\@cmd, '>', \$out, '2>', \$err);
	return { h => $h, out => \$out, err => \$err };
}

sub wait_for
{
	my ($db, $query, $what) = @_;
	for my $try (1 .. 300)
	{
		return 1 if $node->safe_psql($db, $query) eq 't';
		usleep(20_000);
	}
	fail("timed out waiting for $what");
	return 0;
}

# --- races: an append and a reader against es_archive
$node->safe_psql('postgres', 'CREATE DATABASE race');
$node->safe_psql('race', q{
CREATE EXTENSION es_pg;
SELECT es_append_batch('race-1', (SELECT jsonb_agg(jsonb_build_object('type', 'T', 'data', jsonb_build_object('g', g)))
	FROM generate_series(1, 10) g));
SELECT es_seal();
});

my $reader = background('race',
	'SELECT count(*) FROM es_read_all(0, 100)',
	'SELECT pg_sleep(1.5)',
	'SELECT count(*) FROM es_read_all(0, 100)');
wait_for('race', q{SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(1.5)')},
	'the reader to load the horizon');
my $archiver = background('race',
	'BEGIN',
	'SELECT es_archive(NULL, NULL, true)',
	'SELECT pg_sleep(3)',
	'COMMIT');
wait_for('race', q{SELECT EXISTS (SELECT 1 FROM pg_locks WHERE relation = 'es_events'::regclass AND mode = 'AccessExclusiveLock' AND granted)},
	'es_archive to lock es_events');
my $appender = background('race', q{SELECT es_append('race-1', 'T', '{"late": true}', 10)});
wait_for('race', q{SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE query LIKE 'SELECT es_append(%' AND wait_event_type = 'Lock')},
	'the append to wait');
$archiver->{h}->finish;
$appender->{h}->finish;
$reader->{h}->finish;
is(join(',', split(/\n+/, ${ $archiver->{out} })), 'BEGIN,9,COMMIT', 'es_archive moved versions 1 to 9 of race-1');
is(join(',', split(/\n+/, ${ $appender->{out} })), '11', 'the append that waited for it got version 11, its expected version 10 held');
is(join(',', split(/\n+/, ${ $reader->{out} })), '10', 'the reader read the stream before the archive');
like(${ $reader->{err} }, qr/55Z02/, 'and is refused after it, although it had loaded the horizon before');
is($node->safe_psql('race', q{SELECT string_agg(version::text, ',' ORDER BY version) FROM es_read_stream('race-1', 9)}),
	'10,11', 'the stream reads on after its archived versions');
is($node->safe_psql('race', q{SELECT intact, archived FROM es_verify()}), 't|9', 'and verifies');

# --- space, verification, dump and restore
$node->safe_psql('postgres', 'CREATE DATABASE cold');
$node->safe_psql('cold', q{
CREATE EXTENSION es_pg;
SELECT es_append_batch('cold-' || s.s, (SELECT jsonb_agg(jsonb_build_object('type', 'T',
		'data', jsonb_build_object('s', s.s, 'g', g, 'pad', repeat('x', 200)))) FROM generate_series(1, 100) g))
  FROM generate_series(1, 100) s(s);
SELECT es_delete_stream('cold-' || s) FROM generate_series(1, 10) s;
SELECT es_seal();
SELECT es_append('cold-' || s, 'T', '{"unsealed": true}') FROM generate_series(11, 20) s;
});
my $size_before = $node->safe_psql('cold', q{SELECT pg_total_relation_size('es_events')});
is($node->safe_psql('cold', 'SELECT es_archive(NULL, NULL, true)'), '9920',
	'es_archive moves every sealed event but the last of each stream (100 of the deleted and of the 10 appended to since, 99 of the others)');
$node->safe_psql('cold', 'VACUUM FULL es_events');
my $size_after = $node->safe_psql('cold', q{SELECT pg_total_relation_size('es_events')});
cmp_ok($size_after, '<', $size_before * 0.25, "the space is reclaimed ($size_before bytes before, $size_after after VACUUM FULL)");
is($node->safe_psql('cold', 'SELECT count(*) FROM es_events'), '100',
	'the last event of each stream stays (a tombstone, a head, unsealed or not)');
is($node->safe_psql('cold', 'SELECT intact, events, archived FROM es_verify()'), 't|10010|9920',
	'es_verify checks the archived events in the archive');

my $file = $node->basedir . '/export-cold.jsonl';
$node->command_ok(
	[ 'psql', '-X', '-At', '-h', $node->host, '-p', $node->port, '-d', 'cold', '-f', $export_sql, '-o', $file ],
	'export of the archived store');
my ($out, $err) = ('', '');
IPC::Run::run([ 'python3', $script, $file ], '>', \$out, '2>', \$err);
is($? >> 8, 0, 'the script verifies the export with the archived events');
like($out, qr/10010 events checked, 0 mismatches/, 'all of them');

my $reads = q{
SELECT (SELECT count(*) FROM es_read_archived(0, NULL)) AS archived_range,
	   (SELECT count(*) FROM es_read_all((SELECT max(last_position) FROM es_archives), NULL)) AS after_it,
	   (SELECT string_agg(version::text, ',') FROM es_read_stream('cold-15', 100)) AS stream_15,
	   (SELECT string_agg(version::text, ',') FROM es_read_stream('cold-50', 99)) AS stream_50,
	   (SELECT es_stream_version('cold-50')) AS version_50
};
my $reads_before = $node->safe_psql('cold', $reads);
is($reads_before, '9999|21|101|100|100', 'what the archived store reads');
my ($rc, $stdout, $stderr) = $node->psql('cold', 'SELECT count(*) FROM es_read_all(0, 10)');
like($stderr, qr/events after position 0 are archived/, 'and what it refuses');

my $dump = $node->basedir . '/cold.dump';
$node->command_ok([ 'pg_dump', '-Fc', '-h', $node->host, '-p', $node->port, '-f', $dump, 'cold' ],
	'pg_dump of the archived store');
for my $run (1 .. 2)
{
	$node->safe_psql('postgres', "CREATE DATABASE cold_restored_$run");
	$node->command_ok(
		[ 'pg_restore', '-j', '2', '-h', $node->host, '-p', $node->port, '-d', "cold_restored_$run", $dump ],
		"pg_restore -j 2 of it (run $run)");
	is($node->safe_psql("cold_restored_$run", 'SELECT intact, events, archived FROM es_verify()'), 't|10010|9920',
		"the restored store verifies, archive included (run $run)");
	is($node->safe_psql("cold_restored_$run", $reads), $reads_before, "it reads the same (run $run)");
	($rc, $stdout, $stderr) = $node->psql("cold_restored_$run", 'SELECT count(*) FROM es_read_stream(\'cold-50\')');
	like($stderr, qr/versions 1 to 99 of stream "cold-50" are archived/, "and refuses the same (run $run)");
	is($node->safe_psql("cold_restored_$run", q{SELECT es_append('cold-50', 'T', '{}', 100)}), '101',
		"appends go on at the right version (run $run)");
}

# a restore still refuses a stream whose first versions are nowhere
$node->safe_psql('postgres', 'CREATE DATABASE gap');
$node->safe_psql('gap', 'CREATE EXTENSION es_pg');
$node->safe_psql('gap', q{INSERT INTO es_archived_events (global_position, stream_id, version, event_id, event_type, data, recorded_at, archive_id)
	VALUES (1, 'other', 1, gen_random_uuid(), 'T', '{}', now(), 1)});
($rc, $stdout, $stderr) = $node->psql('gap',
	q{INSERT INTO es_events (global_position, stream_id, version, event_type, data) VALUES (2, 'gap-1', 5, 'T', '{}')});
like($stderr, qr/leave a gap in its versions/, 'a stream starting at version 5 with no archived version 4 is refused');

$node->stop;
done_testing();
