
# pg_dump -Fc and pg_restore of an event store into a fresh cluster:
#   - events, versions, positions, the position sequence, snapshots,
#     snapshot policies, projections, their checkpoints and read models, and
#     the grants of the privilege model come back identical (full ordered
#     dumps compared),
#     with a plain restore, a parallel one (-j 2), a single-transaction one,
#     and one whose data section runs while a follower pages the feed;
#   - a dump taken while clients append is consistent: whole streams,
#     versions 1..N, every event identical to the source's;
#   - appends continue after the restore with the next version and a
#     position above every restored one; es_aggregate starts from the
#     restored snapshots and gives the source's states; the inline
#     projection handles new appends, the async one resumes from its
#     restored checkpoint without applying an event twice, and a rebuild
#     gives the same read model;
#   - a follower that paged the source's feed carries on in the restored
#     database across the boundary, through new appends that commit out of
#     order, without skipping or repeating an event;
#   - the event type registry and the upcasters come back, and events read
#     through them as in the source;
#   - pg_restore --clean over a store that holds events is refused.
# The extension lives in its own schema ("store") to exercise that too.

use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use IPC::Run;
use Test::More;
use Time::HiRes qw(usleep);

# the projection workers are off so that the async projection stays where
# the test leaves it; es_apply_projections moves it
my $conf = qq{
shared_preload_libraries = 'es_pg'
max_connections = 30
es_pg.projection_workers = off
};
my $src = PostgreSQL::Test::Cluster->new('source');
$src->init;
$src->append_conf('postgresql.conf', $conf);
$src->start;

my $roles = q{
CREATE ROLE app_reader;
CREATE ROLE app_appender;
CREATE ROLE app_admin;
};
$src->safe_psql('postgres', $roles);
$src->safe_psql('postgres', 'CREATE DATABASE shop');
$src->safe_psql('shop', q{
CREATE SCHEMA store;
CREATE EXTENSION es_pg SCHEMA store;
SELECT store.es_grant_reader('app_reader');
SELECT store.es_grant_appender('app_appender');
SELECT store.es_grant_admin('app_admin');
});

# history: single events, batches with metadata and ids, unicode, a TOASTed
# payload, an aborted append (a gap in positions), 200 small streams
$src->safe_psql('shop', q{
SELECT store.es_append('order-1', 'Created', '{"total": 10}', 0);
SELECT store.es_append_batch('order-1', '[
	{"type": "ItemAdded", "data": {"sku": "a"}, "metadata": {"user": "u1"},
	 "id": "0b8e3f4e-61a1-4b1f-8a53-000000000001"},
	{"type": "ItemAdded", "data": {"sku": "b"}, "id": "0b8e3f4e-61a1-4b1f-8a53-000000000002"}]', 1);
SELECT store.es_append(U&'commande-\00E9\+01F680', U&'Cr\00E9\00E9e', '{"note": "caf\u00e9"}');
SELECT store.es_append('big-1', 'Blob',
	jsonb_build_object('blob', (SELECT string_agg(md5(g::text), '') FROM generate_series(1, 2000) g)));
});
$src->safe_psql('shop', q{
SELECT store.es_append('stream-' || (g % 200), 'Tick', jsonb_build_object('g', g))
  FROM generate_series(1, 2000) g;
SELECT store.es_append('order-1', 'Paid', '{}', 3, '{"by": "card"}');
});
$src->psql('shop', q{
BEGIN;
SELECT store.es_append('order-aborted', 'Created', '{}');
ROLLBACK;
});

# schema evolution: ItemAdded gets a version 2 with a quantity, read
# through an upcaster, and a validator; registered before the snapshots
# below, whose digests then cover the upcaster and must survive the restore
$src->safe_psql('shop', q{
CREATE FUNCTION public.item_added_v2(e store.es_events) RETURNS store.es_events
	LANGUAGE plpgsql AS $$BEGIN e.data := e.data || '{"qty": 1}'; RETURN e; END$$;
SELECT store.es_register_event_type('ItemAdded', 2, validator => 'exists($.sku)');
SELECT store.es_create_upcaster('ItemAdded', 1, 'public.item_added_v2(store.es_events)');
SELECT store.es_register_event_type('Blob', 1);
});

# snapshots: a reducer with a policy (es_aggregate stores them), and
# snapshots the application saved itself
$src->safe_psql('shop', q{
CREATE FUNCTION public.tick_sum(state jsonb, event store.es_events) RETURNS jsonb
	LANGUAGE sql IMMUTABLE
	AS $$SELECT jsonb_build_object(
		'n', coalesce((state->>'n')::int, 0) + 1,
		'sum', coalesce((state->>'sum')::bigint, 0) + coalesce((event.data->>'g')::bigint, 0))$$;
SELECT store.es_set_snapshot_policy('public.tick_sum(jsonb, store.es_events)', 3);
SELECT store.es_aggregate('stream-' || g, 'public.tick_sum(jsonb, store.es_events)')
  FROM generate_series(0, 199) g;
SELECT store.es_save_snapshot('order-1', 3, '{"items": ["a", "b"]}');
SELECT store.es_save_snapshot('big-1', 1, '{"blob": "app state"}');
});

# projections: an inline one built from history, an async one that is
# behind when the dump is taken
$src->safe_psql('shop', q{
CREATE TABLE public.stream_counts (stream_id text PRIMARY KEY, events bigint, last_type text);
CREATE FUNCTION public.count_event(e store.es_events) RETURNS void LANGUAGE sql AS $$
	INSERT INTO public.stream_counts VALUES (e.stream_id, 1, e.event_type)
	ON CONFLICT (stream_id) DO UPDATE
	   SET events = stream_counts.events + 1, last_type = excluded.last_type$$;
CREATE FUNCTION public.count_reset() RETURNS void LANGUAGE sql AS $$DELETE FROM public.stream_counts$$;
CREATE TABLE public.tick_totals (stream_id text PRIMARY KEY, ticks bigint, total bigint);
CREATE FUNCTION public.add_tick(e store.es_events) RETURNS void LANGUAGE sql AS $$
	INSERT INTO public.tick_totals VALUES (e.stream_id, 1, (e.data->>'g')::bigint)
	ON CONFLICT (stream_id) DO UPDATE
	   SET ticks = tick_totals.ticks + 1, total = tick_totals.total + excluded.total$$;
CREATE FUNCTION public.tick_reset() RETURNS void LANGUAGE sql AS $$DELETE FROM public.tick_totals$$;
SELECT store.es_create_projection('stream_counts', 'public.count_event(store.es_events)',
	NULL, 'inline', 'public.count_reset()');
SELECT store.es_create_projection('tick_totals', 'public.add_tick(store.es_events)',
	ARRAY['Tick'], 'async', 'public.tick_reset()');
SELECT store.es_apply_projections('tick_totals', 1200);
});

# a follower pages the source's feed, 7 events at a time, half way
sub read_page
{
	my ($node, $db, $from, $count) = @_;
	my $out = $node->safe_psql($db, qq{
		SELECT global_position, stream_id, version, event_id
		  FROM store.es_read_all($from, $count)});
	return map { [ split /\|/ ] } grep { length } split /\n/, $out;
}
my @seen;
my $last = 0;
my $half = int($src->safe_psql('shop', 'SELECT count(*) FROM store.es_events') / 2);
while (@seen < $half)
{
	my @page = read_page($src, 'shop', $last, 7);
	last unless @page;
	push @seen, @page;
	$last = $page[-1][0];
}
note "the follower stopped at position $last in the source";

my $dump_all = q{COPY (SELECT * FROM store.es_events ORDER BY global_position) TO STDOUT};
my $dump_seq = q{SELECT last_value, is_called FROM store.es_events_position_seq};
my $dump_snapshots = q{COPY (SELECT * FROM store.es_snapshots ORDER BY stream_id, reducer, version) TO STDOUT};
my $dump_policies = q{COPY (SELECT * FROM store.es_snapshot_policies ORDER BY reducer) TO STDOUT};
my $dump_models = q{
	COPY (SELECT 'counts', stream_id, events, last_type, NULL FROM public.stream_counts
		  UNION ALL
		  SELECT 'ticks', stream_id, ticks, NULL, total FROM public.tick_totals
		  ORDER BY 1, 2) TO STDOUT};
my $dump_projections = q{
	COPY (SELECT p.name, p.mode, p.handler::text, p.reset::text, p.event_types,
				 p.owner::text, p.search_path, p.created_at, m.checkpoint,
				 m.delivered_to, m.attempts, m.error_position, m.last_error,
				 s.max_attempts, s.event_types,
				 (SELECT count(*) FROM store.es_subscription_parked k
				   WHERE k.subscription = p.name)
			FROM store.es_projections p
			LEFT JOIN store.es_subscriptions s ON s.projection = p.name
			LEFT JOIN store.es_subscription_members m ON m.subscription = s.name
		   ORDER BY 1) TO STDOUT};
my $states = q{SELECT string_agg(g || '=' || store.es_aggregate('stream-' || g, 'public.tick_sum(jsonb, store.es_events)')::text, ',' ORDER BY g) FROM generate_series(0, 199) g};
my $dump_acl = q{
	SELECT x.object, r.rolname, x.privilege_type, x.is_grantable
	  FROM (SELECT c.oid::regclass::text AS object, a.*
			  FROM pg_class c, aclexplode(c.relacl) a
			 WHERE c.relnamespace = 'store'::regnamespace
			UNION ALL
			SELECT p.oid::regprocedure::text, a.*
			  FROM pg_proc p, aclexplode(p.proacl) a
			 WHERE p.pronamespace = 'store'::regnamespace
			UNION ALL
			SELECT 'schema store', a.*
			  FROM pg_namespace n, aclexplode(n.nspacl) a
			 WHERE n.nspname = 'store') x
	  JOIN pg_roles r ON r.oid = x.grantee
	 ORDER BY 1, 2, 3};
my $dump_registry = q{
	COPY (SELECT 'type', event_type, schema_version::text, validator::text,
				 validator_function, owner::text, search_path, registered_at::text
			FROM store.es_event_types
		  UNION ALL
		  SELECT 'upcaster', event_type, from_version::text, upcaster, NULL,
				 owner::text, search_path, created_at::text
			FROM store.es_upcasters
		  ORDER BY 1, 2, 3) TO STDOUT};
my $read_upcast = q{SELECT string_agg(version || ' ' || event_type || ' ' || data::text, ',' ORDER BY version)
	FROM store.es_read_stream('order-1')};
my $src_registry = $src->safe_psql('shop', $dump_registry);
my $src_upcast = $src->safe_psql('shop', $read_upcast);
like($src_upcast, qr/2 ItemAdded \{"qty": 1, "sku": "a"\}/, 'the source reads ItemAdded upcast');
my $src_events = $src->safe_psql('shop', $dump_all);
my $src_seq = $src->safe_psql('shop', $dump_seq);
my $src_acl = $src->safe_psql('shop', $dump_acl);
my $src_snapshots = $src->safe_psql('shop', $dump_snapshots);
my $src_policies = $src->safe_psql('shop', $dump_policies);
my $src_models = $src->safe_psql('shop', $dump_models);
my $dump_triggers = q{
	SELECT string_agg(tgname || ':' || tgenabled::text, ',' ORDER BY tgname) FROM pg_trigger
	 WHERE tgrelid = 'store.es_events'::regclass};
my $src_triggers = $src->safe_psql('shop', $dump_triggers);
like($src_triggers, qr/es_events_append_only:A.*es_events_insert_guard:A/,
	'the source has its guards, enabled ALWAYS');
my $src_projections = $src->safe_psql('shop', $dump_projections);
my $src_nsnap = $src->safe_psql('shop', 'SELECT count(*) FROM store.es_snapshots');
cmp_ok($src_nsnap, '>', 200, "the source holds $src_nsnap snapshots");
my $src_count = $src->safe_psql('shop', 'SELECT count(*) FROM store.es_events');
my $src_max = $src->safe_psql('shop', 'SELECT max(global_position) FROM store.es_events');
my ($src_tick_cp) = $src->safe_psql('shop',
	q{SELECT checkpoint FROM store.es_subscription_members WHERE subscription = 'tick_totals'});
cmp_ok($src_tick_cp, '<', $src_max, "the async projection is behind when the dump is taken ($src_tick_cp of $src_max)");
cmp_ok($src_seq, 'ne', "$src_max|t", 'the source has a gap after its last event (an aborted append)');

my $dir = PostgreSQL::Test::Utils::tempdir;
my $dumpfile = "$dir/shop.dump";
command_ok(
	[ 'pg_dump', '-Fc', '-h', $src->host, '-p', $src->port, '-d', 'shop', '-f', $dumpfile ],
	'pg_dump -Fc');

my $dst = PostgreSQL::Test::Cluster->new('restored');
$dst->init;
$dst->append_conf('postgresql.conf', $conf);
$dst->start;
$dst->safe_psql('postgres', $roles);

# the follower's procedure, in a database of its own on the restored side
# cannot see the restored one, so it is created in the target before the
# data section (in a schema the dump does not use)
my $follow_proc = q{
CREATE SCHEMA watcher;
CREATE TABLE watcher.seen (seq bigserial, global_position bigint, stream_id text,
	version bigint, event_id uuid);
CREATE TABLE watcher.stop (x int);
CREATE PROCEDURE watcher.follow()
LANGUAGE plpgsql AS $$
DECLARE
	last bigint := 0;
	got bigint;
	page_last bigint;
	stopping boolean := false;
BEGIN
	LOOP
		WITH ins AS (
			INSERT INTO watcher.seen (global_position, stream_id, version, event_id)
			SELECT r.global_position, r.stream_id, r.version, r.event_id
			  FROM store.es_read_all(last, 50) WITH ORDINALITY r ORDER BY r.ordinality
			RETURNING global_position)
		SELECT count(*), max(global_position) INTO got, page_last FROM ins;
		COMMIT;
		IF got > 0 THEN
			last := page_last;
		ELSIF stopping THEN
			EXIT;
		ELSE
			stopping := EXISTS (SELECT FROM watcher.stop);
			PERFORM pg_sleep(0.01);
		END IF;
	END LOOP;
END $$;
};

my @restores = (
	[ 'shop', [] ],
	[ 'shop_parallel', [ '-j', '2' ] ],
	[ 'shop_single', [ '--single-transaction' ] ],
	[ 'shop_followed', 'followed' ]);
for my $r (@restores)
{
	my ($db, $how) = @$r;
	$dst->safe_psql('postgres', "CREATE DATABASE $db");
	my @conn = ('-h', $dst->host, '-p', $dst->port, '-d', $db);
	if (ref $how)
	{
		command_ok([ 'pg_restore', '--exit-on-error', @$how, @conn, $dumpfile ],
			"pg_restore @$how into $db");
	}
	else
	{
		# schema first, then the data while a follower pages the feed: the
		# restore's COPY holds the feed lock until it commits, so the
		# follower waits and then sees every restored event once
		command_ok([ 'pg_restore', '--exit-on-error', '--section=pre-data', @conn, $dumpfile ],
			"pg_restore --section=pre-data into $db");
		$dst->safe_psql($db, $follow_proc);
		my ($fout, $ferr) = ('', '');
		my $follower = IPC::Run::start(
			[ 'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', @conn, '-c', 'CALL watcher.follow()' ],
			'>', \$fout, '2>', \$ferr);
		usleep(200_000);
		command_ok([ 'pg_restore', '--exit-on-error', '--section=data', @conn, $dumpfile ],
			"pg_restore --section=data into $db, with a follower running");
		command_ok([ 'pg_restore', '--exit-on-error', '--section=post-data', @conn, $dumpfile ],
			"pg_restore --section=post-data into $db");
		$dst->safe_psql($db, 'INSERT INTO watcher.stop VALUES (1)');
		$follower->finish or diag("follower: $ferr");
		is( $dst->safe_psql($db, q{
				SELECT count(*) = (SELECT count(*) FROM store.es_events)
					   AND count(DISTINCT global_position) = count(*)
					   AND bool_and(prev IS NULL OR global_position > prev)
				  FROM (SELECT *, lag(global_position) OVER (ORDER BY seq) AS prev
						  FROM watcher.seen) s}),
			't', "$db: the follower that ran during the restore saw every event once, in order");
		is( $dst->safe_psql($db, q{
				SELECT count(*) FROM store.es_events e
				  FULL JOIN watcher.seen s USING (global_position, stream_id, version, event_id)
				 WHERE e.event_id IS NULL OR s.seq IS NULL}),
			'0', "$db: and exactly the restored events");
	}
	is($dst->safe_psql($db, $dump_all), $src_events,
		"$db: every event identical (position, stream, version, id, type, data, metadata, time)");
	is($dst->safe_psql($db, $dump_seq), $src_seq, "$db: the position sequence is where it was");
	is($dst->safe_psql($db, $dump_acl), $src_acl, "$db: the grants are the same");
	is($dst->safe_psql($db, $dump_snapshots), $src_snapshots,
		"$db: every snapshot identical (stream, reducer, version, state, time, digest)");
	is($dst->safe_psql($db, $dump_policies), $src_policies, "$db: the snapshot policies are the same");
	is($dst->safe_psql($db, $dump_projections), $src_projections,
		"$db: the projections and their checkpoints are the same");
	is($dst->safe_psql($db, $dump_models), $src_models, "$db: the read models are the same");
	is( $dst->safe_psql($db, q{
			SELECT count(*) FROM (
				SELECT stream_id FROM store.es_events GROUP BY stream_id
				HAVING min(version) <> 1 OR max(version) <> count(*)) s}),
		'0', "$db: versions are 1..N");
	is($dst->safe_psql($db, $dump_triggers), $src_triggers,
		"$db: the triggers on es_events are the source's, enabled ALWAYS");
	is($dst->safe_psql($db, $dump_registry), $src_registry,
		"$db: the event type registry and the upcasters are the same");
	is($dst->safe_psql($db, $read_upcast), $src_upcast,
		"$db: events read through the restored upcasters as in the source");
}

# es_aggregate in the restored database starts from the restored snapshots
# (their digests still match the reducer) and gives the source's states
my $db = 'shop';
is($dst->safe_psql($db, $states), $src->safe_psql('shop', $states),
	'es_aggregate gives the same 200 states as in the source');
my ($arc, $aout, $aerr) = $dst->psql($db, q{
	SELECT store.es_append('stream-7', 'Tick', '{"g": 1}', 10);
	SET es_pg.log_replay = on;
	SELECT store.es_aggregate('stream-7', 'public.tick_sum(jsonb, store.es_events)')});
like($aerr, qr/snapshot at version 10, replayed 1 event,/,
	'and replays only the events after the restored snapshot');
is( $dst->safe_psql($db, q{
		SET ROLE app_reader;
		SELECT state FROM store.es_load_snapshot('order-1', NULL)}),
	'{"items": ["a", "b"]}', 'the application\'s snapshots load as before');

# projections after the restore: the async one resumes from its restored
# checkpoint and, caught up, holds every Tick exactly once; the inline one
# handles new appends; rebuilding either gives the same read model
my $tick_model = q{
	SELECT count(*) FROM public.tick_totals t
	  FULL JOIN (SELECT stream_id, count(*) AS ticks, sum((data->>'g')::bigint) AS total
				   FROM store.es_events WHERE event_type = 'Tick' GROUP BY stream_id) x
		ON x.stream_id = t.stream_id COLLATE "C"
	 WHERE (t.stream_id, t.ticks, t.total) IS DISTINCT FROM (x.stream_id, x.ticks, x.total)};
my $count_model = q{
	SELECT count(*) FROM public.stream_counts c
	  FULL JOIN (SELECT DISTINCT ON (stream_id) stream_id,
					count(*) OVER (PARTITION BY stream_id) AS events, event_type AS last_type
				   FROM store.es_events ORDER BY stream_id, global_position DESC) x
		ON x.stream_id = c.stream_id COLLATE "C"
	 WHERE (c.stream_id, c.events, c.last_type) IS DISTINCT FROM (x.stream_id, x.events, x.last_type)};
cmp_ok($dst->safe_psql($db, $tick_model), '>', 0,
	'the restored async read model is behind, like the source\'s');
cmp_ok($dst->safe_psql($db, q{SELECT store.es_apply_projections('tick_totals')}), '>', 0,
	'es_apply_projections resumes it from the restored checkpoint');
is($dst->safe_psql($db, $tick_model), '0',
	'and then it holds every Tick exactly once');
is($dst->safe_psql($db, $count_model), '0', 'the inline read model matches the events');
my $models_before = $dst->safe_psql($db, $dump_models);
$dst->safe_psql($db, q{
	SELECT store.es_rebuild_projection('stream_counts');
	SELECT store.es_rebuild_projection('tick_totals');
	SELECT store.es_apply_projections('tick_totals')});
is($dst->safe_psql($db, $dump_models), $models_before, 'rebuilding both gives the same read models');

# appends continue in the restored database, as the appender role
is( $dst->safe_psql($db, q{
		SET ROLE app_appender;
		SELECT store.es_append('order-1', 'Shipped', '{}', 4)}),
	'5', 'an append after the restore continues the stream at version 5');
my $pos = $dst->safe_psql($db,
	q{SELECT global_position FROM store.es_read_stream('order-1', 4)});
cmp_ok($pos, '>', $src_max, "its position ($pos) is above every restored one ($src_max)");
my ($last_value) = split /\|/, $src_seq;
cmp_ok($pos, '>', $last_value, 'and above the sequence value the source had reached');
my ($rc, $stdout, $stderr) = $dst->psql($db,
	q{SELECT store.es_append('order-1', 'Shipped', '{}', 4)});
like($stderr, qr/wrong expected version/, 'a stale expected version is still refused');
($rc, $stdout, $stderr) = $dst->psql($db,
	q{SELECT store.es_append_batch('order-1', '[{"type": "ItemAdded", "data": {"sku": "a"}, "metadata": {"user": "u1"}, "id": "0b8e3f4e-61a1-4b1f-8a53-000000000001"}, {"type": "ItemAdded", "data": {"sku": "b"}, "id": "0b8e3f4e-61a1-4b1f-8a53-000000000002"}]', 1)});
is($stdout, '3', 'a retry of a restored append is recognized by its event ids');
($rc, $stdout, $stderr) = $dst->psql($db,
	q{SET ROLE app_reader; SELECT store.es_append('order-1', 'X', '{}')});
like($stderr, qr/permission denied/, 'the reader still cannot append');
($rc, $stdout, $stderr) = $dst->psql($db, q{DELETE FROM store.es_events});
like($stderr, qr/never changed or removed/, 'history is still append-only');
is($dst->safe_psql($db, $count_model), '0', 'the inline projection handled the new appends');
is( $dst->safe_psql($db, q{SELECT events || ' ' || last_type FROM public.stream_counts WHERE stream_id = 'order-1'}),
	'5 Shipped', 'order-1 is counted with its new event');

# the follower carries on in the restored database, from where it stopped
# in the source, across the boundary and through appends that commit out of
# order: the first appender takes a position and commits last
my ($in, $out, $err) = ('', '', '');
my $timer = IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default);
my $slow = IPC::Run::start(
	[ 'psql', '-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1',
	  '-h', $dst->host, '-p', $dst->port, '-d', $db ],
	'<', \$in, '>', \$out, '2>', \$err, $timer);
$in .= "BEGIN;\nSELECT 'pos=' || store.es_append('late-1', 'Late', '{}');\n";
$slow->pump until $out =~ /pos=/ || $err;
$dst->safe_psql($db, q{SELECT store.es_append('early-1', 'Early', '{}')});

my $boundary = $src_max;
my $crossed = 0;
my @tail;
for (my $i = 0; $i < 10_000; $i++)
{
	my @page = read_page($dst, $db, $last, 7);
	last unless @page;
	$crossed = 1 if $page[-1][0] > $boundary;
	push @seen, @page;
	$last = $page[-1][0];
}
my $before_commit = scalar(@seen);
ok(!grep({ $_->[1] eq 'early-1' } @seen),
	'the follower stops before the open append instead of skipping to the committed one after it');
$in .= "COMMIT;\n";
$slow->finish;
for (my $i = 0; $i < 10_000; $i++)
{
	my @page = read_page($dst, $db, $last, 7);
	last unless @page;
	$crossed = 1 if $page[-1][0] > $boundary;
	push @seen, @page;
	$last = $page[-1][0];
}
ok($crossed, 'the follower crossed from restored events to new ones');
is_deeply(
	[ map { "$_->[0]|$_->[1]|$_->[2]|$_->[3]" } @seen ],
	[ split /\n/, $dst->safe_psql($db, q{
		SELECT global_position || '|' || stream_id || '|' || version || '|' || event_id
		  FROM store.es_events ORDER BY global_position}) ],
	'what the follower saw, in the source and then in the restored database, is every event once, in order');

# a dump taken while clients append is consistent
my $pgb = "$dir/append.sql";
open(my $fh, '>', $pgb) or die;
print $fh q{\set s random(1, 20)
SELECT store.es_append_batch('live-' || :s, '[{"type": "A", "data": {}}, {"type": "B", "data": {}}]');
};
close $fh;
my ($bout, $berr) = ('', '');
my $load = IPC::Run::start(
	[ 'pgbench', '-n', '-c', '4', '-T', '3', '-f', $pgb,
	  '-h', $src->host, '-p', $src->port, 'shop' ],
	'>', \$bout, '2>', \$berr);
usleep(1_000_000);
command_ok(
	[ 'pg_dump', '-Fc', '-h', $src->host, '-p', $src->port, '-d', 'shop',
	  '-f', "$dir/live.dump" ],
	'pg_dump while clients append');
$load->finish;
$dst->safe_psql('postgres', 'CREATE DATABASE shop_live');
command_ok(
	[ 'pg_restore', '--exit-on-error', '-h', $dst->host, '-p', $dst->port,
	  '-d', 'shop_live', "$dir/live.dump" ],
	'pg_restore of that dump');
my $live = $dst->safe_psql('shop_live', q{
	SELECT count(*), count(*) FILTER (WHERE stream_id LIKE 'live-%')
	  FROM store.es_events});
my ($live_all, $live_new) = split /\|/, $live;
cmp_ok($live_new, '>', 0, "the dump holds $live_new events of the clients that were appending");
is( $dst->safe_psql('shop_live', q{
		SELECT count(*) FROM (
			SELECT stream_id FROM store.es_events GROUP BY stream_id
			HAVING min(version) <> 1 OR max(version) <> count(*) OR count(*) % 2 = 1
			   AND stream_id LIKE 'live-%') s}),
	'0', 'its streams are whole: versions 1..N, no half batch');
my $restored_rows = $dst->safe_psql('shop_live',
	q{COPY (SELECT * FROM store.es_events ORDER BY global_position) TO STDOUT});
my %src_rows = map { $_ => 1 } split /\n/, $src->safe_psql('shop',
	q{COPY (SELECT * FROM store.es_events ORDER BY global_position) TO STDOUT});
is(scalar(grep { !$src_rows{$_} } split /\n/, $restored_rows), 0,
	'every restored event is identical to the source\'s');

# pg_restore --clean over a store that holds events is refused (by the
# DROP EXTENSION guard, or before it by the projection guard when a
# projection's functions come first).  In one transaction nothing changes;
# without --single-transaction the DROPs before the refused one stay done,
# but the events are never touched.
my $before = $dst->safe_psql('shop', $dump_all);
my $before_models = $dst->safe_psql('shop', $dump_models);
my $before_projections = $dst->safe_psql('shop', $dump_projections);
for my $single (1, 0)
{
	my $how = $single ? 'in one transaction' : 'statement by statement';
	($rc, $stdout, $stderr) = ('', '', '');
	IPC::Run::run(
		[ 'pg_restore', '--clean', '--if-exists', '--exit-on-error',
		  ($single ? ('--single-transaction') : ()),
		  '-h', $dst->host, '-p', $dst->port, '-d', 'shop', $dumpfile ],
		'>', \$stdout, '2>', \$stderr);
	like($stderr,
		qr/dropping es_pg would delete the event history|because projection "\w+" uses it/,
		"pg_restore --clean over a store with events is refused, $how");
	is($dst->safe_psql('shop', $dump_all), $before, "and the events are untouched ($how)");
	if ($single)
	{
		is($dst->safe_psql('shop', $dump_models), $before_models, 'so are the read models');
		is($dst->safe_psql('shop', $dump_projections), $before_projections, 'and the projections');
	}
	else
	{
		note 'after the refused --clean, statement by statement, the read-model tables that remain: '
		  . $dst->safe_psql('shop', q{
				SELECT coalesce(string_agg(relname, ', ' ORDER BY relname), 'none')
				  FROM pg_class WHERE relname IN ('stream_counts', 'tick_totals')});
	}
}

note "events: $src_count in the source, restored four ways";
$src->stop;
$dst->stop;
done_testing();
