
# Crash recovery, several kill -9 cycles under append load (fsync on),
# complementing 001_crash_append.pl:
#   - clients append single events, batches of three and TOASTed payloads
#     to a few hot streams, every event with a deterministic id; a follower
#     pages the global feed meanwhile;
#   - after each restart, amcheck finds es_events and its indexes clean
#     (verify_heapam, bt_index_check and bt_index_parent_check with
#     heapallindexed);
#   - every append pgbench acknowledged is there; each client's one append
#     that may have been in flight is resent with the same event ids, which
#     must make it present exactly once, whether or not it had committed;
#   - every event the follower saw before the crash is still there;
#   - versions are 1..N and appends carry on at positions above the old
#     ones;
#   - es_aggregate calls with a snapshot policy run alongside; after each
#     restart every stored snapshot equals a fold of the events up to its
#     version (computed in plain SQL), es_aggregate agrees, and amcheck
#     finds es_snapshots clean too;
#   - an inline and an async projection keep read models per stream (the
#     async one applied by clients calling es_apply_projections under the
#     load, with the worker off, so that it lags when the crash comes): after each restart the inline one equals the
#     events exactly, the async one equals the events up to its checkpoint
#     (read in the same snapshot), and once caught up equals them all;
#     amcheck finds the projection tables and read models clean.
# ES_SOAK=1 runs 12 cycles instead of 3.  Figures: tmp_check/figures/crash.txt
# (or $ES_FIGURES_DIR).

use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use IPC::Run;
use Test::More;
use Time::HiRes qw(usleep);

my $cycles = $ENV{ES_SOAK} ? 12 : 3;
my $clients = 6;
my $nstreams = 3;

my $node = PostgreSQL::Test::Cluster->new('crash_recovery');
$node->init;
$node->append_conf('postgresql.conf', qq{
fsync = on
synchronous_commit = on
full_page_writes = on
max_connections = 30
shared_preload_libraries = 'es_pg'
es_pg.projection_workers = off
});
$node->start;
$node->safe_psql('postgres', q{
CREATE EXTENSION es_pg;
CREATE EXTENSION amcheck;

-- a reducer with a snapshot policy: count the events, sum their n
CREATE FUNCTION crash_sum(state jsonb, event es_events) RETURNS jsonb
	LANGUAGE sql IMMUTABLE
	AS $$SELECT jsonb_build_object(
		'count', coalesce((state->>'count')::bigint, 0) + 1,
		'sum', coalesce((state->>'sum')::bigint, 0) + (event.data->>'n')::bigint)$$;
SELECT es_set_snapshot_policy('crash_sum(jsonb,es_events)', 5);

-- two projections keeping the same read model: per stream, the events, the
-- last version and the sum of n; inline, and async (applied by the worker)
CREATE TABLE crash_inline_model (stream_id text PRIMARY KEY, events bigint NOT NULL,
	last_version bigint NOT NULL, sum_n bigint NOT NULL);
CREATE TABLE crash_async_model (LIKE crash_inline_model INCLUDING ALL);
CREATE FUNCTION crash_inline(e es_events) RETURNS void LANGUAGE sql AS $$
	INSERT INTO crash_inline_model
	VALUES (e.stream_id, 1, e.version, coalesce((e.data->>'n')::bigint, 0))
	ON CONFLICT (stream_id) DO UPDATE
	   SET events = crash_inline_model.events + 1, last_version = excluded.last_version,
		   sum_n = crash_inline_model.sum_n + excluded.sum_n$$;
CREATE FUNCTION crash_async(e es_events) RETURNS void LANGUAGE sql AS $$
	INSERT INTO crash_async_model
	VALUES (e.stream_id, 1, e.version, coalesce((e.data->>'n')::bigint, 0))
	ON CONFLICT (stream_id) DO UPDATE
	   SET events = crash_async_model.events + 1, last_version = excluded.last_version,
		   sum_n = crash_async_model.sum_n + excluded.sum_n$$;
SELECT es_create_projection('crash_inline', 'crash_inline(es_events)', NULL, 'inline');
SELECT es_create_projection('crash_async', 'crash_async(es_events)', NULL, 'async');

-- the read model the events imply, up to a position
CREATE FUNCTION expected_model(upto bigint)
RETURNS TABLE (stream_id text, events bigint, last_version bigint, sum_n bigint)
LANGUAGE sql STABLE AS $$
	SELECT e.stream_id, count(*), max(e.version), sum(coalesce((e.data->>'n')::bigint, 0))
	  FROM es_events e WHERE e.global_position <= upto GROUP BY e.stream_id$$;

CREATE TABLE follower_log (cycle int, global_position bigint, stream_id text,
	version bigint, event_id uuid);
CREATE PROCEDURE follow(cycle int)
LANGUAGE plpgsql AS $$
DECLARE
	last bigint := coalesce((SELECT max(global_position) FROM follower_log), 0);
	got bigint;
	page_last bigint;
BEGIN
	LOOP
		WITH ins AS (
			INSERT INTO follower_log
			SELECT follow.cycle, r.global_position, r.stream_id, r.version, r.event_id
			  FROM es_read_all(last, 50) r
			RETURNING global_position)
		SELECT count(*), max(global_position) INTO got, page_last FROM ins;
		COMMIT;
		IF got > 0 THEN
			last := page_last;
		ELSE
			PERFORM pg_sleep(0.01);
		END IF;
	END LOOP;
END $$;
});

my $dir = PostgreSQL::Test::Utils::tempdir;
my $figdir = $ENV{ES_FIGURES_DIR}
  || "$PostgreSQL::Test::Utils::tmp_check/figures";
mkdir $figdir unless -d $figdir;

# The shape of a client's n-th append follows from n alone, so that the
# test can resend any of them: every 4th a batch of three, every 7th (when
# not a batch) one event of about 10 kB that goes to TOAST, others one
# small event.  :n moves on only once the append is acknowledged.
my $stream = q{'crash-' || :cycle || '-' || :s};
sub event_sql
{
	my ($i, $data) = @_;
	return "jsonb_build_object('type', 'Batch', 'data', jsonb_build_object('c', :client_id, 'n', :next, 'i', $i), "
	  . "'id', md5(:cycle || '/' || :client_id || '/' || :next || '/$i')::uuid)";
}
open(my $fh, '>', "$dir/append.sql") or die;
print $fh "\\set next :n + 1\n"
  . "\\set s (:client_id + :next) % $nstreams + 1\n"
  . "\\if :next % 4 = 0\n"
  . "SELECT es_append_batch($stream, jsonb_build_array("
  . join(', ', map { event_sql($_) } 1 .. 3) . "));\n"
  . "\\elif :next % 7 = 0\n"
  . "SELECT es_append($stream, 'Big', jsonb_build_object('c', :client_id, 'n', :next, 'i', 1, "
  . "'blob', (SELECT string_agg(md5(:client_id || '/' || :next || '/' || g), '') FROM generate_series(1, 300) g)), "
  . "NULL, NULL, md5(:cycle || '/' || :client_id || '/' || :next || '/1')::uuid);\n"
  . "\\else\n"
  . "SELECT es_append($stream, 'Single', jsonb_build_object('c', :client_id, 'n', :next, 'i', 1), "
  . "NULL, NULL, md5(:cycle || '/' || :client_id || '/' || :next || '/1')::uuid);\n"
  . "\\endif\n"
  . "\\set n :next\n";
close $fh;
open($fh, '>', "$dir/apply.sql") or die;
print $fh "SELECT es_apply_projections('crash_async', 20);\n";
close $fh;
open($fh, '>', "$dir/aggregate.sql") or die;
print $fh "\\set s random(1, $nstreams)\n"
  . "SELECT es_aggregate('crash-' || :cycle || '-' || :s, 'crash_sum(jsonb,es_events)');\n";
close $fh;

# the same append, as a psql command, for the resend after the crash
sub resend_sql
{
	my ($cycle, $client, $n) = @_;
	my $s = "'crash-$cycle-" . (($client + $n) % $nstreams + 1) . "'";
	my $id = sub { "md5('$cycle/$client/$n/$_[0]')::uuid" };
	if ($n % 4 == 0)
	{
		return "SELECT es_append_batch($s, jsonb_build_array("
		  . join(', ', map {
				"jsonb_build_object('type', 'Batch', 'data', jsonb_build_object('c', $client, 'n', $n, 'i', $_), 'id', "
				  . $id->($_) . ")"
			} 1 .. 3) . "))";
	}
	elsif ($n % 7 == 0)
	{
		return "SELECT es_append($s, 'Big', jsonb_build_object('c', $client, 'n', $n, 'i', 1, "
		  . "'blob', (SELECT string_agg(md5('$client/$n/' || g), '') FROM generate_series(1, 300) g)), NULL, NULL, "
		  . $id->(1) . ")";
	}
	return "SELECT es_append($s, 'Single', jsonb_build_object('c', $client, 'n', $n, 'i', 1), NULL, NULL, "
	  . $id->(1) . ")";
}

# Crash the server, then restart it.  Three ways, in turn:
#   postmaster  kill -9 the postmaster only; its backends notice and exit
#               (as in 001_crash_append.pl), finishing what they were doing
#   everything  kill -9 the postmaster and every one of its children at once
#   immediate   pg_ctl stop -m immediate: SIGQUIT to every process, which
#               exits at once without a checkpoint
# The last two stop backends between commit and reply, so an append can be
# durable without having been acknowledged.
sub children_of
{
	my ($ppid) = @_;
	my @pids;
	for my $stat (glob('/proc/[0-9]*/stat'))
	{
		open(my $sf, '<', $stat) or next;
		my $line = <$sf>;
		close $sf;
		next unless defined $line && $line =~ /^(\d+) \(.*\) \S (\d+)/;
		push @pids, $1 if $2 == $ppid;
	}
	return @pids;
}

sub crash_and_restart
{
	my ($mode) = @_;
	my $pid = $node->{_pid};
	if ($mode eq 'immediate')
	{
		$node->stop('immediate');
	}
	else
	{
		my @children = $mode eq 'everything' ? children_of($pid) : ();
		kill 'KILL', $pid, @children;
		$node->{_pid} = undef;
		for my $try (1 .. 100)
		{
			last unless grep { kill(0, $_) } $pid, @children;
			usleep(100_000);
		}
	}
	for my $try (1 .. 60)
	{
		return if $node->start(fail_ok => 1);
		$node->{_pid} = undef;
		usleep(500_000);
	}
	BAIL_OUT('server did not restart after the crash');
}

# amcheck on the extension's tables, their TOAST tables and every index
my @checked_tables = ('es_events', 'es_snapshots', 'es_snapshot_policies',
	'es_projections', 'es_subscriptions', 'es_subscription_members',
	'es_subscription_parked', 'crash_inline_model',
	'crash_async_model');
sub amcheck
{
	my ($label) = @_;
	for my $table (@checked_tables)
	{
		is( $node->safe_psql('postgres',
				"SELECT count(*) FROM verify_heapam('$table', check_toast => true)"),
			'0', "$label: verify_heapam finds $table clean");
		my $indexes = $node->safe_psql('postgres', qq{
			SELECT count(*) || ' (' || string_agg(c.relname, ', ' ORDER BY c.relname) || ')'
			  FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
			 WHERE i.indrelid = '$table'::regclass});
		my ($n) = split / /, $indexes;
		is( $node->safe_psql('postgres', qq{
				SELECT count(*) FROM (
					SELECT bt_index_check(i.indexrelid, heapallindexed => true),
						   bt_index_parent_check(i.indexrelid, heapallindexed => true,
												 rootdescend => true)
					  FROM pg_index i WHERE i.indrelid = '$table'::regclass) s}),
			$n, "$label: bt_index_check and bt_index_parent_check pass on $indexes");
	}
}

my ($total_acked, $total_acked_events, $total_resent_new, $total_resent_dup, $total_followed) =
  (0, 0, 0, 0, 0);
my %modes;
my $total_snapshots = 0;
my $async_lag = 0;
for my $cycle (1 .. $cycles)
{
	my $label = "cycle $cycle";
	my ($fout, $ferr) = ('', '');
	my $follower = IPC::Run::start(
		[
			'psql', '-X', '-q', '-h', $node->host, '-p', $node->port,
			'-d', 'postgres', '-c', "CALL follow($cycle)"
		],
		'>', \$fout, '2>', \$ferr);

	my $logdir = "$dir/log$cycle";
	mkdir $logdir or die;
	my ($out, $err) = ('', '');
	my $h = IPC::Run::start(
		[
			'pgbench', '-n', '-c', $clients, '-j', '2',
			'-T', '60', '-D', "cycle=$cycle", '-D', 'n=0', '-l',
			"--log-prefix=$logdir/pgbench", '-f', "$dir/append.sql\@6",
			'-f', "$dir/aggregate.sql\@1", '-f', "$dir/apply.sql\@1",
			'-h', $node->host, '-p', $node->port, 'postgres'
		],
		'>', \$out, '2>', \$err);

	# a checkpoint in the middle of the load every other cycle, so that
	# recovery starts from one taken while appends were running
	usleep(700_000 + int(rand(1_000_000)));
	$node->safe_psql('postgres', 'CHECKPOINT') if $cycle % 2 == 0;
	usleep(300_000 + int(rand(1_000_000)));
	my $mode = (qw(postmaster everything immediate))[ ($cycle - 1) % 3 ];
	note "$label: crash ($mode)";
	crash_and_restart($mode);
	$modes{$mode}++;
	$h->finish;
	$follower->finish;

	amcheck("$label, after recovery");

	# the projections, as recovery left them
	is( $node->safe_psql('postgres', q{
			SELECT count(*) FROM crash_inline_model m
			  FULL JOIN expected_model(9223372036854775807) x
				ON x.stream_id = m.stream_id COLLATE "C"
			 WHERE (m.stream_id, m.events, m.last_version, m.sum_n)
				   IS DISTINCT FROM (x.stream_id, x.events, x.last_version, x.sum_n)}),
		'0', "$label: the inline read model equals the events");
	my $async = $node->safe_psql('postgres', q{
		WITH cp AS (SELECT checkpoint AS position FROM es_subscription_members WHERE subscription = 'crash_async')
		SELECT (SELECT position FROM cp),
			   (SELECT max(global_position) FROM es_events),
			   (SELECT count(*) FROM crash_async_model m
				  FULL JOIN expected_model((SELECT position FROM cp)) x
					ON x.stream_id = m.stream_id COLLATE "C"
				 WHERE (m.stream_id, m.events, m.last_version, m.sum_n)
					   IS DISTINCT FROM (x.stream_id, x.events, x.last_version, x.sum_n))});
	my ($checkpoint, $head, $async_diff) = split /\|/, $async;
	$async_lag += $head - $checkpoint;
	is($async_diff, '0',
		"$label: the async read model equals the events up to its checkpoint ($checkpoint of $head)");

	# acknowledged appends per client: n = 1..K
	my %acked;
	for my $log (glob("$logdir/pgbench*"))
	{
		open(my $lf, '<', $log) or die;
		while (<$lf>)
		{
			my ($client, $tx, $time, $script) = split;
			$acked{$client}++ if $script == 0;
		}
		close $lf;
	}
	my $acked_tx = 0;
	$acked_tx += $_ for values %acked;
	$total_acked += $acked_tx;
	cmp_ok($acked_tx, '>', 0, "$label: clients appended before the crash");

	# what survived: (client, n) -> events
	my %have;
	for my $line (split /\n/, $node->safe_psql('postgres', qq{
			SELECT data->>'c', data->>'n', count(*) FROM es_events
			 WHERE stream_id LIKE 'crash-$cycle-%' GROUP BY 1, 2}))
	{
		my ($c, $n, $count) = split /\|/, $line;
		$have{"$c/$n"} = $count;
	}
	my $size = sub { $_[0] % 4 == 0 ? 3 : 1 };
	my (@lost, @partial, @beyond);
	for my $c (0 .. $clients - 1)
	{
		my $k = $acked{$c} // 0;
		for my $n (1 .. $k)
		{
			$total_acked_events += $size->($n);
			push @lost, "$c/$n" unless ($have{"$c/$n"} // 0) == $size->($n);
		}
		my $in_flight = $have{ "$c/" . ($k + 1) } // 0;
		push @partial, "$c/" . ($k + 1)
		  unless $in_flight == 0 || $in_flight == $size->($k + 1);
		push @beyond, grep { /^$c\/(\d+)$/ && $1 > $k + 1 } keys %have;
	}
	is("@lost", '', "$label: every acknowledged append survived, whole");
	is("@partial", '', "$label: an append in flight at the crash is all or nothing");
	is("@beyond", '', "$label: nothing beyond the append in flight");

	# resend each client's append that may have been in flight: an exact
	# retry returns the version it reached, a lost one is appended now
	for my $c (0 .. $clients - 1)
	{
		my $n = ($acked{$c} // 0) + 1;
		my $was = $have{"$c/$n"} // 0;
		$node->safe_psql('postgres', resend_sql($cycle, $c, $n));
		$was ? $total_resent_dup++ : $total_resent_new++;
	}
	is( $node->safe_psql('postgres', qq{
			SELECT count(*) FROM (
				SELECT data->>'c', data->>'n' FROM es_events
				 WHERE stream_id LIKE 'crash-$cycle-%'
				 GROUP BY 1, 2
				HAVING count(*) <> CASE WHEN (data->>'n')::int % 4 = 0 THEN 3 ELSE 1 END
					OR count(DISTINCT event_id) <> count(*)) s}),
		'0', "$label: after resending, every append is present exactly once");
	my $missing_tx = 0;
	for my $c (0 .. $clients - 1)
	{
		my $n_max = ($acked{$c} // 0) + 1;
		$missing_tx += $node->safe_psql('postgres', qq{
			SELECT $n_max - count(DISTINCT data->>'n') FROM es_events
			 WHERE stream_id LIKE 'crash-$cycle-%' AND data->>'c' = '$c'});
	}
	is($missing_tx, 0, "$label: each client's appends are n = 1 .. K+1");

	# the follower's view was durable: all it saw is still there, the same
	my $followed = $node->safe_psql('postgres',
		"SELECT count(*) FROM follower_log WHERE cycle = $cycle");
	$total_followed += $followed;
	is( $node->safe_psql('postgres', qq{
			SELECT count(*) FROM follower_log f
			 WHERE f.cycle = $cycle AND NOT EXISTS (
				SELECT FROM es_events e
				 WHERE e.global_position = f.global_position
				   AND e.stream_id = f.stream_id AND e.version = f.version
				   AND e.event_id = f.event_id)}),
		'0', "$label: the $followed events the follower saw are all still there");

	# snapshots: each one is the fold of the events up to its version
	my $snaps = $node->safe_psql('postgres',
		"SELECT count(*) FROM es_snapshots WHERE stream_id LIKE 'crash-$cycle-%'");
	$total_snapshots += $snaps;
	cmp_ok($snaps, '>', 0, "$label: es_aggregate stored $snaps snapshots");
	is( $node->safe_psql('postgres', qq{
			SELECT count(*) FROM es_snapshots s
			 WHERE s.stream_id LIKE 'crash-$cycle-%'
			   AND s.state IS DISTINCT FROM (
				SELECT jsonb_build_object('count', count(*), 'sum', sum((e.data->>'n')::bigint))
				  FROM es_events e
				 WHERE e.stream_id = s.stream_id AND e.version <= s.version)}),
		'0', "$label: every snapshot equals the fold of the events up to its version");
	is( $node->safe_psql('postgres', qq{
			SELECT count(*) FROM (SELECT DISTINCT stream_id FROM es_events
								   WHERE stream_id LIKE 'crash-$cycle-%') st
			 WHERE es_aggregate(st.stream_id, 'crash_sum(jsonb,es_events)') IS DISTINCT FROM (
				SELECT jsonb_build_object('count', count(*), 'sum', sum((e.data->>'n')::bigint))
				  FROM es_events e WHERE e.stream_id = st.stream_id)}),
		'0', "$label: es_aggregate, from those snapshots, equals the fold of all events");

	is( $node->safe_psql('postgres', q{
			SELECT count(*) FROM (
				SELECT stream_id FROM es_events GROUP BY stream_id
				HAVING min(version) <> 1 OR max(version) <> count(*)) s}),
		'0', "$label: versions are contiguous in every stream");

	# after the resends: inline still exact, async catches up exactly
	is( $node->safe_psql('postgres', q{
			SELECT count(*) FROM crash_inline_model m
			  FULL JOIN expected_model(9223372036854775807) x
				ON x.stream_id = m.stream_id COLLATE "C"
			 WHERE (m.stream_id, m.events, m.last_version, m.sum_n)
				   IS DISTINCT FROM (x.stream_id, x.events, x.last_version, x.sum_n)}),
		'0', "$label: the inline read model still equals the events after the resends");
	$node->safe_psql('postgres', q{SELECT es_apply_projections('crash_async')});
	is( $node->safe_psql('postgres', q{
			SELECT checkpoint = es_head_position() FROM es_subscription_members
			 WHERE subscription = 'crash_async'}),
		't', "$label: the async projection catches up");
	is( $node->safe_psql('postgres', q{
			SELECT count(*) FROM crash_async_model m
			  FULL JOIN expected_model(9223372036854775807) x
				ON x.stream_id = m.stream_id COLLATE "C"
			 WHERE (m.stream_id, m.events, m.last_version, m.sum_n)
				   IS DISTINCT FROM (x.stream_id, x.events, x.last_version, x.sum_n)}),
		'0', "$label: and then equals the events, each applied exactly once");
	my $max = $node->safe_psql('postgres', 'SELECT max(global_position) FROM es_events');
	$node->safe_psql('postgres', "SELECT es_append('crash-after-$cycle', 'Done', '{}', 0)");
	my $next = $node->safe_psql('postgres',
		"SELECT global_position FROM es_read_stream('crash-after-$cycle')");
	cmp_ok($next, '>', $max, "$label: the next append gets a position above every old one");
}

amcheck('at the end');
is( $node->safe_psql('postgres', q{
		SELECT count(*) FROM (
			SELECT global_position < lag(global_position) OVER w AS backwards
			  FROM es_events WINDOW w AS (PARTITION BY stream_id ORDER BY version)) s
		 WHERE backwards}),
	'0', 'positions increase with versions in every stream');

my $events = $node->safe_psql('postgres', 'SELECT count(*) FROM es_events');
my $line = sprintf(
	"%-7d %-8d %-13d %-13d %-13d %-13d %-9d %-8d %-9d %-9d",
	$cycles, $clients, $total_acked, $total_acked_events, $total_resent_dup,
	$total_resent_new, $total_followed, $events, $total_snapshots, $async_lag);
my $header = sprintf("%-7s %-8s %-13s %-13s %-13s %-13s %-9s %-8s %-9s %-9s",
	'cycles', 'clients', 'acked:appends', 'acked:events', 'resent:there',
	'resent:added', 'followed', 'events', 'snapshots', 'async:lag');
my $how = join(', ', map { "$modes{$_} $_" } sort keys %modes);
open(my $fig, '>', "$figdir/crash.txt") or die;
print $fig "# 021_crash_recovery.pl: kill -9 under load, fsync on; acked = appends "
  . "pgbench acknowledged; resent:there = in-flight appends that had committed "
  . "(the resend was an exact retry), resent:added = in-flight or unstarted "
  . "appends that had not (the resend wrote them); followed = events the "
  . "follower saw before the crashes; events = rows at the end; snapshots = "
  . "stored by es_aggregate's policy under load, each checked against the events; "
  . "async:lag = positions the async projection had still to apply at the restarts "
  . "(its read model matched its checkpoint each time); "
  . "amcheck clean "
  . "after every restart; crashes: $how\n$header\n$line\n";
close $fig;
diag("crash recovery:\n$header\n$line");

$node->stop;
done_testing();
