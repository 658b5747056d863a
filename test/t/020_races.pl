
# Races: 8, 16 and 32 pgbench clients append with expected versions to 1
# and to 4 hot streams, retrying on 40001 (pgbench --max-tries), while a
# follower pages through the global feed.  After each run:
#   - every stream's versions are 1..N, without gap or duplicate;
#   - every acknowledged append is stored exactly once, and nothing else:
#     each event carries its client and that client's count of committed
#     transactions, so the pgbench log names every event that must exist;
#   - a batch's two events are adjacent in their stream;
#   - the follower saw every event exactly once, in increasing position
#     order, and what it saw matches the table.
# The figures go to tmp_check/figures/races.txt (or $ES_FIGURES_DIR).
# ES_SOAK=1 runs each configuration for 30 s instead of 3 s.

use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use IPC::Run;
use Test::More;
use Time::HiRes qw(time usleep);

my $seconds = $ENV{ES_RACE_SECONDS} || ($ENV{ES_SOAK} ? 30 : 3);
my @runs = (
	[ 8, 1, 'read committed' ],
	[ 16, 1, 'read committed' ],
	[ 32, 1, 'read committed' ],
	[ 8, 4, 'repeatable read' ],
	[ 16, 4, 'repeatable read' ],
	[ 32, 4, 'repeatable read' ]);

my $node = PostgreSQL::Test::Cluster->new('races');
$node->init;
$node->append_conf('postgresql.conf', qq{
max_connections = 50
shared_preload_libraries = 'es_pg'
});
$node->start;
$node->safe_psql('postgres', q{
CREATE EXTENSION es_pg;

-- what the follower saw, in the order it saw it
CREATE TABLE follower_log (seq bigserial PRIMARY KEY, run int,
	global_position bigint, stream_id text, version bigint, event_id uuid);
CREATE TABLE follower_stop (run int);

-- the follower: page the feed from the last position seen, 100 at a time,
-- committing each page; once told to stop, drain the feed and return
CREATE PROCEDURE follow(run int, start_position bigint)
LANGUAGE plpgsql AS $$
DECLARE
	last bigint := start_position;
	got bigint;
	page_last bigint;
	stopping boolean := false;
BEGIN
	LOOP
		WITH page AS (
			SELECT * FROM es_read_all(last, 100) WITH ORDINALITY AS r),
		ins AS (
			INSERT INTO follower_log (run, global_position, stream_id, version, event_id)
			SELECT follow.run, p.global_position, p.stream_id, p.version, p.event_id
			  FROM page p ORDER BY p.ordinality
			RETURNING global_position)
		SELECT count(*), max(global_position) INTO got, page_last FROM ins;
		COMMIT;
		IF got > 0 THEN
			last := page_last;
		ELSIF stopping THEN
			EXIT;
		ELSE
			stopping := EXISTS (SELECT FROM follower_stop s WHERE s.run = follow.run);
			PERFORM pg_sleep(0.005);
		END IF;
	END LOOP;
END $$;
});

my $dir = PostgreSQL::Test::Utils::tempdir;
my $figdir = $ENV{ES_FIGURES_DIR}
  || "$PostgreSQL::Test::Utils::tmp_check/figures";
mkdir $figdir unless -d $figdir;

# Script 0 appends one event, script 1 a batch of two.  :n counts the
# client's committed transactions: it moves on only after COMMIT, so a retry
# (pgbench starts the script again) reuses the number, and so does the next
# transaction after one that failed for good.  Every event also carries an
# id made from (run, client, n, i), so a duplicate could not hide.
for my $level ('read committed', 'repeatable read')
{
	(my $tag = $level) =~ s/ /_/;
	my $begin = "BEGIN ISOLATION LEVEL " . uc($level) . ";\n";
	my $stream = q{'race-' || :run || '-' || :s};
	my $id = q{md5(:run || '/' || :client_id || '/' || :next || '/' || %d)::uuid};
	open(my $fh, '>', "$dir/single_$tag.sql") or die;
	print $fh "\\set s random(1, :nstreams)\n\\set next :n + 1\n" . $begin
	  . "SELECT es_stream_version($stream) AS v \\gset\n"
	  . "SELECT es_append($stream, 'Single', jsonb_build_object('c', :client_id, 'n', :next, 'i', 1), :v, NULL, "
	  . sprintf($id, 1) . ");\n"
	  . "COMMIT;\n\\set n :next\n";
	close $fh;
	open($fh, '>', "$dir/batch_$tag.sql") or die;
	print $fh "\\set s random(1, :nstreams)\n\\set next :n + 1\n" . $begin
	  . "SELECT es_stream_version($stream) AS v \\gset\n"
	  . "SELECT es_append_batch($stream, jsonb_build_array("
	  . "jsonb_build_object('type', 'Batch', 'data', jsonb_build_object('c', :client_id, 'n', :next, 'i', 1), 'id', "
	  . sprintf($id, 1) . "), "
	  . "jsonb_build_object('type', 'Batch', 'data', jsonb_build_object('c', :client_id, 'n', :next, 'i', 2), 'id', "
	  . sprintf($id, 2) . ")), :v);\n"
	  . "COMMIT;\n\\set n :next\n";
	close $fh;
}

my @figures;
my $run = 0;
for my $r (@runs)
{
	my ($clients, $nstreams, $level) = @$r;
	(my $tag = $level) =~ s/ /_/;
	$run++;
	my $name = "run $run: $clients clients, $nstreams stream(s), $level";

	my $start = $node->safe_psql('postgres', 'SELECT es_head_position()');
	my ($fout, $ferr) = ('', '');
	my $follower = IPC::Run::start(
		[
			'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-h', $node->host,
			'-p', $node->port, '-d', 'postgres', '-c',
			"CALL follow($run, $start)"
		],
		'>', \$fout, '2>', \$ferr);

	my $logdir = "$dir/log$run";
	mkdir $logdir or die;
	my ($out, $err) = ('', '');
	my $t0 = time;
	IPC::Run::run(
		[
			'pgbench', '-n', '-c', $clients, '-j', 2, '-T', $seconds,
			'--max-tries=0', '-l', "--log-prefix=$logdir/pgbench",
			'-D', "run=$run", '-D', "nstreams=$nstreams", '-D', 'n=0',
			'-f', "$dir/single_$tag.sql\@3", '-f', "$dir/batch_$tag.sql\@1",
			'-h', $node->host, '-p', $node->port, 'postgres'
		],
		'>', \$out, '2>', \$err)
	  or die "pgbench failed: $err";
	my $elapsed = time - $t0;

	$node->safe_psql('postgres', "INSERT INTO follower_stop VALUES ($run)");
	$follower->finish or die "follower failed: $ferr";

	# what pgbench acknowledged: per client, the script of its k-th
	# committed transaction
	my %acked;
	my ($log_ok, $log_failed, $log_retries) = (0, 0, 0);
	for my $log (sort glob("$logdir/pgbench*"))
	{
		open(my $lf, '<', $log) or die;
		while (<$lf>)
		{
			my @f = split;
			my ($client, $time, $script) = @f[ 0, 2, 3 ];
			$log_retries += $f[-1] if @f >= 7;
			if ($time !~ /^\d+$/)
			{
				$log_failed++;
				next;
			}
			$log_ok++;
			push @{ $acked{$client} }, $script;
		}
		close $lf;
	}
	my ($retried) = $out =~ /number of transactions retried: (\d+)/;
	my ($retries) = $out =~ /total number of retries: (\d+)/;
	my ($failed) = $out =~ /number of failed transactions: (\d+)/;
	my ($processed) = $out =~ /number of transactions actually processed: (\d+)/;
	$retried //= 0;
	$retries //= 0;
	$failed //= 0;
	is($log_ok, $processed, "$name: the log holds every processed transaction");
	is($log_retries, $retries, "$name: the log and the summary agree on retries");

	my %want;
	my $want_events = 0;
	for my $client (keys %acked)
	{
		my $k = 0;
		for my $script (@{ $acked{$client} })
		{
			$k++;
			$want{"$client/$k"} = $script == 0 ? 1 : 2;
			$want_events += $want{"$client/$k"};
		}
	}
	cmp_ok($log_ok, '>', 0, "$name: clients committed appends");

	my $like = "race-$run-%";
	is( $node->safe_psql('postgres', qq{
			SELECT count(*) FROM (
				SELECT stream_id FROM es_events WHERE stream_id LIKE '$like'
				 GROUP BY stream_id
				HAVING min(version) <> 1 OR max(version) <> count(*)
					OR count(DISTINCT version) <> count(*)) s}),
		'0', "$name: versions are 1..N in every stream");

	# the events, per (client, n): how many, and for batches whether the
	# two are adjacent and in order
	my $rows = $node->safe_psql('postgres', qq{
		SELECT (data->>'c') || '/' || (data->>'n'), count(*),
			   bool_and(event_id = md5($run || '/' || (data->>'c') || '/' || (data->>'n') || '/' || (data->>'i'))::uuid),
			   count(DISTINCT stream_id) = 1
				 AND max(version) - min(version) = count(*) - 1
				 AND (array_agg(data->>'i' ORDER BY version))::text IN ('{1}', '{1,2}')
		  FROM es_events WHERE stream_id LIKE '$like'
		 GROUP BY 1});
	my %have;
	my ($bad_ids, $bad_batches, $stored_events) = (0, 0, 0);
	for my $line (split /\n/, $rows)
	{
		my ($key, $count, $ids_ok, $shape_ok) = split /\|/, $line;
		$have{$key} = $count;
		$stored_events += $count;
		$bad_ids++ unless $ids_ok eq 't';
		$bad_batches++ unless $shape_ok eq 't';
	}
	my @missing = grep { !exists $have{$_} || $have{$_} != $want{$_} } sort keys %want;
	my @extra = grep { !exists $want{$_} } sort keys %have;
	is(scalar(@missing), 0,
		"$name: every acknowledged append is stored exactly once")
	  or diag("missing or wrong: @missing[0 .. ($#missing < 9 ? $#missing : 9)]");
	is(scalar(@extra), 0, "$name: nothing was stored that was not acknowledged")
	  or diag("extra: @extra[0 .. ($#extra < 9 ? $#extra : 9)]");
	is($stored_events, $want_events, "$name: $want_events events stored");
	is($bad_ids, 0, "$name: every event has the id its client gave it");
	is($bad_batches, 0, "$name: batches are whole, adjacent and in order");

	# the follower
	my $follower_check = $node->safe_psql('postgres', qq{
		SELECT count(*),
			   count(*) FILTER (WHERE prev IS NOT NULL AND global_position <= prev),
			   count(DISTINCT global_position),
			   (SELECT count(*) FROM es_events e WHERE e.global_position > $start),
			   (SELECT count(*) FROM es_events e
				  FULL JOIN (SELECT * FROM follower_log WHERE run = $run) f
					USING (global_position, stream_id, version, event_id)
				 WHERE (e.global_position > $start OR e.global_position IS NULL)
				   AND (e.event_id IS NULL OR f.seq IS NULL))
		  FROM (SELECT global_position, lag(global_position) OVER (ORDER BY seq) AS prev
				  FROM follower_log WHERE run = $run) s});
	my ($seen, $backwards, $distinct, $in_table, $mismatch) = split /\|/, $follower_check;
	is($backwards, 0, "$name: the follower saw positions in increasing order");
	is($distinct, $seen, "$name: the follower saw no event twice");
	is($seen, $in_table, "$name: the follower saw as many events as the table holds");
	is($mismatch, 0, "$name: the follower saw exactly the events of the table");
	is($in_table, $stored_events, "$name: no other events were written");

	my $tx = $log_ok + $log_failed;
	push @figures, sprintf(
		"%-8d %-8d %-16s %6.1f %9d %9d %9d %9d %9d %8d %7.0f",
		$clients, $nstreams, $level, $elapsed, $log_ok, $stored_events,
		$retried, $retries, $failed, $seen, $log_ok / $elapsed);
	note "$name: $log_ok appends ($stored_events events) acknowledged, "
	  . "$retried transactions retried ($retries retries), $failed failed, "
	  . "follower saw $seen";
}

my $header = sprintf(
	"%-8s %-8s %-16s %6s %9s %9s %9s %9s %9s %8s %7s",
	'clients', 'streams', 'isolation', 'secs', 'appends', 'events',
	'retried', 'retries', 'failed', 'followed', 'tx/s');
open(my $fig, '>', "$figdir/races.txt") or die;
print $fig "# 020_races.pl: $seconds s per run; appends = committed transactions "
  . "(3 single events : 1 batch of 2), retried = transactions that hit 40001 "
  . "at least once, retries = 40001s retried, failed = gave up at the end "
  . "of the run, followed = events the concurrent follower saw\n";
print $fig "$header\n";
print $fig "$_\n" for @figures;
close $fig;
diag("races, $seconds s per run:\n$header\n" . join("\n", @figures));

$node->stop;
done_testing();
