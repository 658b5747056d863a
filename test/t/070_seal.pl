
# The seal chain (docs/audit.md):
#   - es_verify and audit/verify_export.py (an export checked with Python's
#     standard library only) agree that a sealed store is intact, and
#     es_verify reports its progress on a long run;
#   - a superuser who disables the event triggers and the table's triggers,
#     drops the check constraint, updates one event and deletes another is
#     caught by both, at those two positions; a wrong head hash is caught
#     by the script;
#   - a dump made before the edit restores into a database that verifies
#     clean, with the same seals, and a stream deleted before the dump is
#     still deleted;
#   - es_archive of the sealed events of deleted streams: the space comes
#     back (VACUUM FULL), es_verify and the script still verify, and so does
#     a restore of a dump of it;
#   - kill -9 of the postmaster (fsync on) while clients append and seal
#     at once: after each restart the chain has no gap and no double, every
#     event up to the last seal is in exactly one seal, es_verify passes,
#     and es_seal carries on from the last committed seal.

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
ok(-f $script && -f $export_sql, 'the audit script and export query are in the repository');

my $node = PostgreSQL::Test::Cluster->new('seal');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'es_pg'
fsync = on
synchronous_commit = on
max_connections = 20
es_pg.projection_workers = off
});
$node->start;
$node->safe_psql('postgres', 'CREATE DATABASE shop');
$node->safe_psql('shop', q{
CREATE EXTENSION es_pg;
SELECT es_append('order-' || (g % 50), 'Tick',
		jsonb_build_object('g', g, 'note', 'caf' || chr(233)),
		NULL, CASE WHEN g % 7 = 0 THEN jsonb_build_object('by', 'u' || g) END)
  FROM generate_series(1, 3000) g;
SELECT es_append('big-1', 'Blob',
	jsonb_build_object('blob', (SELECT string_agg(md5(g::text), '') FROM generate_series(1, 2000) g)));
});
$node->psql('shop', q{BEGIN; SELECT es_append('aborted', 'T', '{}'); ROLLBACK;});
$node->safe_psql('shop', q{SELECT es_append('after-gap', 'T', '{}')});
is($node->safe_psql('shop', q{SELECT es_delete_stream('order-3')}), '61', 'a deleted stream: its tombstone is event 61');
is($node->safe_psql('shop', 'SELECT es_seal()'), '3003', 'es_seal seals every committed event, the tombstone too');

# export (psql, the documented query) and run the script; returns (exit, output)
sub export_and_check
{
	my ($db, @args) = @_;
	my $file = $node->basedir . "/export-$db.jsonl";
	$node->command_ok(
		[
			'psql', '-X', '-At', '-h', $node->host, '-p', $node->port,
			'-d', $db, '-f', $export_sql, '-o', $file
		],
		"export of $db");
	my ($out, $err) = ('', '');
	IPC::Run::run([ 'python3', $script, $file, @args ], '>', \$out, '2>', \$err);
	return ($? >> 8, $out . $err);
}

my ($rc, $out) = export_and_check('shop');
is($rc, 0, 'the script finds the sealed export intact');
like($out, qr/1 seals, 3003 events checked, 0 mismatches: intact/, 'and says what it checked');
is($node->safe_psql('shop', 'SELECT intact, seals, events FROM es_verify()'),
	't|1|3003', 'es_verify agrees');

my $head = $node->safe_psql('shop',
	q{SELECT encode(hash, 'hex') FROM es_seals ORDER BY seal_id DESC LIMIT 1});
($rc, $out) = export_and_check('shop', '--head', $head);
is($rc, 0, 'the head hash recorded outside matches');
($rc, $out) = export_and_check('shop', '--head', '00' x 32);
is($rc, 1, 'a different head hash is a mismatch');
like($out, qr/MISMATCH head differs/, 'named as such');

# progress on a long run
my ($stdout, $stderr);
$node->psql('shop',
	'SET es_pg.verify_progress_events = 1000; SELECT intact FROM es_verify()',
	stdout => \$stdout, stderr => \$stderr);
is($stdout, 't', 'es_verify with progress');
my @notices = ($stderr =~ /NOTICE:  es_verify: (\d+) events verified, up to position (\d+)/g);
is_deeply(\@notices, [ 1000, 1000, 2000, 2000, 3000, 3000 ], 'a NOTICE every 1000 events, with the position reached');

# a dump before the edit
my $dump = $node->basedir . '/shop.dump';
$node->command_ok([ 'pg_dump', '-Fc', '-h', $node->host, '-p', $node->port, '-f', $dump, 'shop' ],
	'pg_dump of the sealed store');

# the superuser edit: one event changed, another removed
my $changed = 1234;
my $removed = 2345;
$node->safe_psql('shop', qq{
ALTER EVENT TRIGGER es_guard_ddl_start DISABLE;
ALTER EVENT TRIGGER es_guard_ddl_end DISABLE;
ALTER TABLE es_events DISABLE TRIGGER ALL;
ALTER TABLE es_events DROP CONSTRAINT es_events_insert_check;
UPDATE es_events SET data = data || '{"g": 0}' WHERE global_position = $changed;
DELETE FROM es_events WHERE global_position = $removed;
ALTER TABLE es_events ADD CONSTRAINT es_events_insert_check
	CHECK (es_events_insert_check(global_position)) NOT VALID;
ALTER TABLE es_events ENABLE ALWAYS TRIGGER es_events_append_only;
ALTER TABLE es_events ENABLE ALWAYS TRIGGER es_events_append_only_row;
ALTER TABLE es_events ENABLE ALWAYS TRIGGER es_events_insert_guard;
ALTER TABLE es_events ENABLE TRIGGER es_events_dispatch_inline;
ALTER EVENT TRIGGER es_guard_ddl_start ENABLE ALWAYS;
ALTER EVENT TRIGGER es_guard_ddl_end ENABLE ALWAYS;
});
is($node->safe_psql('shop', 'SELECT intact, problem, position FROM es_verify()'),
	"f|event changed|$changed", 'es_verify: the changed event, at its position');
is($node->safe_psql('shop', "SELECT intact, problem, position, found FROM es_verify($changed + 1)"),
	"f|event missing|$removed|(none)", 'es_verify after it: the removed event, at its position');
is($node->safe_psql('shop', "SELECT intact FROM es_verify($removed + 1)"),
	't', 'and the rest is intact');
($rc, $out) = export_and_check('shop');
is($rc, 1, 'the script finds mismatches');
my @at = ($out =~ /^MISMATCH (event \w+) at position (\d+)/mg);
is_deeply(\@at, [ 'event changed', $changed, 'event missing', $removed ],
	'the script: the changed event and the removed one, at their positions, nothing else');

# the dump made before the edit restores clean
$node->safe_psql('postgres', 'CREATE DATABASE restored');
$node->command_ok(
	[ 'pg_restore', '-h', $node->host, '-p', $node->port, '-d', 'restored', $dump ],
	'pg_restore of the dump made before the edit');
is($node->safe_psql('restored', 'SELECT intact, seals, events FROM es_verify()'),
	't|1|3003', 'the restored store verifies clean');
my ($drc, $dout, $derr) = $node->psql('restored', q{SELECT es_append('order-3', 'Tick', '{}')});
like($derr, qr/stream "order-3" is deleted/, 'the deleted stream is still deleted after the restore');
is($node->safe_psql('restored', q{SELECT count(*) FROM es_tombstones}), '1', 'with its tombstone');
is($node->safe_psql('restored', q{SELECT string_agg(encode(hash, 'hex'), ',' ORDER BY seal_id) FROM es_seals}),
	$node->safe_psql('shop', q{SELECT string_agg(encode(hash, 'hex'), ',' ORDER BY seal_id) FROM es_seals}),
	'with the same seals');
($rc, $out) = export_and_check('restored');
is($rc, 0, 'the script finds the restored export intact');
$node->safe_psql('restored', q{SELECT es_append('order-1', 'Tick', '{}')});
is($node->safe_psql('restored', 'SELECT es_seal()'), '1', 'sealing carries on in the restored store');
is($node->safe_psql('restored', 'SELECT intact, seals FROM es_verify()'), 't|2', 'and verifies');

# archiving: the sealed events of deleted streams leave es_events, the
# space comes back with VACUUM FULL, the chain and the script still verify,
# and a dump restores the archive with the rest
$node->safe_psql('postgres', 'CREATE DATABASE cold');
$node->safe_psql('cold', q{
CREATE EXTENSION es_pg;
SELECT es_append_batch('cold-' || s.s, (SELECT jsonb_agg(jsonb_build_object('type', 'T',
		'data', jsonb_build_object('s', s.s, 'g', g, 'pad', repeat('x', 200)))) FROM generate_series(1, 100) g))
  FROM generate_series(1, 100) s(s);
SELECT es_delete_stream('cold-' || s) FROM generate_series(1, 60) s;
SELECT es_seal();
});
my $size_before = $node->safe_psql('cold', q{SELECT pg_total_relation_size('es_events')});
is($node->safe_psql('cold', 'SELECT es_archive()'), '6000', 'es_archive moves the 6000 sealed events of the 60 deleted streams');
$node->safe_psql('cold', 'VACUUM FULL es_events');
my $size_after = $node->safe_psql('cold', q{SELECT pg_total_relation_size('es_events')});
cmp_ok($size_after, '<', $size_before * 0.55, "the space is reclaimed ($size_before bytes before, $size_after after VACUUM FULL)");
is($node->safe_psql('cold', 'SELECT count(*) FROM es_events'), '4060', 'the live streams and the 60 tombstones stay');
is($node->safe_psql('cold', 'SELECT intact, events, archived FROM es_verify()'), 't|10060|6000',
	'es_verify checks the archived events in the archive');
($rc, $out) = export_and_check('cold');
is($rc, 0, 'the script verifies the export with the archived events');
my $cold_dump = $node->basedir . '/cold.dump';
$node->command_ok([ 'pg_dump', '-Fc', '-h', $node->host, '-p', $node->port, '-f', $cold_dump, 'cold' ],
	'pg_dump of the archived store');
$node->safe_psql('postgres', 'CREATE DATABASE cold_restored');
$node->command_ok(
	[ 'pg_restore', '-j', '2', '-h', $node->host, '-p', $node->port, '-d', 'cold_restored', $cold_dump ],
	'pg_restore -j 2 of it');
is($node->safe_psql('cold_restored', 'SELECT intact, events, archived FROM es_verify()'), 't|10060|6000',
	'the restored store verifies, archive included');

# crashes while clients append and seal
$node->safe_psql('postgres', 'CREATE DATABASE crash');
$node->safe_psql('crash', 'CREATE EXTENSION es_pg');
my $dir = PostgreSQL::Test::Utils::tempdir;
open(my $fh, '>', "$dir/append.sql") or die;
print $fh q{SELECT es_append_batch('crash-' || :client_id, jsonb_build_array(jsonb_build_object('type', 'A', 'data', jsonb_build_object('r', random())), jsonb_build_object('type', 'B', 'data', jsonb_build_object())));
};
close $fh;
open($fh, '>', "$dir/seal.sql") or die;
print $fh q{SELECT es_seal(200);
};
close $fh;

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

my $chain_check = q{
SELECT (SELECT count(*) FROM es_seals s LEFT JOIN es_seals p ON p.seal_id = s.seal_id - 1
		 WHERE (s.seal_id = 1 AND (s.after_position <> 0 OR s.prev_hash <> '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea))
			OR (s.seal_id > 1 AND (p.seal_id IS NULL OR s.after_position <> p.to_position OR s.prev_hash <> p.hash))) AS broken_links,
	   (SELECT count(*) FROM es_seals, unnest(positions) x) AS sealed,
	   (SELECT count(DISTINCT x) FROM es_seals, unnest(positions) x) AS distinct_sealed,
	   (SELECT count(*) FROM es_events
		 WHERE global_position <= (SELECT coalesce(max(to_position), 0) FROM es_seals)) AS events_below_head,
	   (SELECT count(*) FROM es_events e WHERE global_position <= (SELECT coalesce(max(to_position), 0) FROM es_seals)
		   AND NOT EXISTS (SELECT 1 FROM es_seals s WHERE e.global_position = ANY (s.positions))) AS unsealed_below_head
};

for my $cycle (1 .. 3)
{
	my ($pout, $perr) = ('', '');
	my $h = IPC::Run::start(
		[
			'pgbench', '-n', '-c', '4', '-j', '2', '-T', '60',
			'-f', "$dir/append.sql\@3", '-f', "$dir/seal.sql\@1",
			'-h', $node->host, '-p', $node->port, 'crash'
		],
		'>', \$pout, '2>', \$perr);
	# wait until es_seal is running, then pull the plug
	my $deadline = time + 30;
	usleep(500_000 + int(rand(1_000_000)));
	while (time < $deadline)
	{
		last if $node->safe_psql('crash',
			q{SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT es_seal(%' AND state = 'active'}) > 0;
		usleep(20_000);
	}
	crash_and_restart();
	$h->finish;

	my $before = $node->safe_psql('crash', 'SELECT count(*) FROM es_seals');
	my ($broken, $sealed, $distinct, $below, $unsealed) =
		split /\|/, $node->safe_psql('crash', $chain_check);
	cmp_ok($before, '>', 0, "cycle $cycle: seals were committed before the crash");
	is($broken, 0, "cycle $cycle: every seal links to the one before it");
	is($sealed, $distinct, "cycle $cycle: no event is in two seals");
	is($sealed, $below, "cycle $cycle: every event up to the last seal is sealed");
	is($unsealed, 0, "cycle $cycle: none left out");
	is($node->safe_psql('crash', 'SELECT intact FROM es_verify()'), 't', "cycle $cycle: es_verify passes after the crash");

	$node->safe_psql('crash', 'SELECT es_seal()');
	($broken, $sealed, $distinct, $below, $unsealed) =
		split /\|/, $node->safe_psql('crash', $chain_check);
	is($broken . '|' . $unsealed, '0|0', "cycle $cycle: es_seal resumes from the last committed seal");
	is($sealed, $node->safe_psql('crash', 'SELECT count(*) FROM es_events'),
		"cycle $cycle: and seals every event, once");
	is($node->safe_psql('crash', 'SELECT intact FROM es_verify()'), 't', "cycle $cycle: the chain verifies");
}
($rc, $out) = export_and_check('crash');
is($rc, 0, 'the script finds the crashed-and-resealed store intact');

$node->stop;
done_testing();
