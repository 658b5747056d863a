
# Upgrades.  For every released version older than default_version: install
# it, add events, snapshots and a projection, ALTER EXTENSION es_pg UPDATE,
# and check that the objects are exactly those of a fresh install of the
# default version and that nothing was lost.  Every version must have an
# update path to default_version.

use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

my $node = PostgreSQL::Test::Cluster->new('upgrade');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'es_pg'");
$node->start;

my $default = $node->safe_psql('postgres',
	q{SELECT default_version FROM pg_available_extensions WHERE name = 'es_pg'});
my @versions = split /\n/, $node->safe_psql('postgres', q{
	SELECT version FROM pg_available_extension_versions WHERE name = 'es_pg'
	 ORDER BY string_to_array(version, '.')::int[]});
ok((grep { $_ eq $default } @versions), "default version $default is installable");
is( $node->safe_psql('postgres', qq{
		SELECT count(*) FROM pg_available_extension_versions v
		 WHERE name = 'es_pg' AND version <> '$default'
		   AND NOT EXISTS (SELECT 1 FROM pg_extension_update_paths('es_pg') p
						    WHERE p.source = v.version AND p.target = '$default'
						      AND p.path IS NOT NULL)}),
	'0', 'every version has an update path to the default version');

# what an install consists of, object by object, with its definition
my $describe = q{
SELECT string_agg(d, E'\n' ORDER BY d) FROM (
  SELECT pg_describe_object(dep.classid, dep.objid, 0) || ': ' ||
	CASE dep.classid
	  WHEN 'pg_proc'::regclass THEN
		pg_get_functiondef(dep.objid) ||
		coalesce((SELECT array_to_string(proacl, ',') FROM pg_proc WHERE oid = dep.objid), '')
	  WHEN 'pg_class'::regclass THEN
		(SELECT relkind::text || ' ' || coalesce(array_to_string(relacl, ','), '')
		   FROM pg_class WHERE oid = dep.objid) || ' ' ||
		coalesce((SELECT string_agg(attname || ' ' || format_type(atttypid, atttypmod)
						|| CASE WHEN attnotnull THEN ' not null' ELSE '' END
						|| coalesce(' collate ' || (SELECT collname FROM pg_collation c
												  WHERE c.oid = attcollation AND attcollation <> 100), '')
						|| coalesce(' default ' || pg_get_expr(adbin, adrelid), ''),
						', ' ORDER BY attnum)
				   FROM pg_attribute LEFT JOIN pg_attrdef ON adrelid = attrelid AND adnum = attnum
				  WHERE attrelid = dep.objid AND attnum > 0 AND NOT attisdropped), '') || ' ' ||
		coalesce((SELECT string_agg(conname || ' ' || pg_get_constraintdef(oid), '; ' ORDER BY conname)
				   FROM pg_constraint WHERE conrelid = dep.objid), '') || ' ' ||
		coalesce((SELECT string_agg(pg_get_indexdef(indexrelid), '; ' ORDER BY 1)
				   FROM pg_index WHERE indrelid = dep.objid), '') || ' ' ||
		coalesce((SELECT string_agg(pg_get_triggerdef(oid) || ' ' || tgenabled::text, '; ' ORDER BY tgname)
				   FROM pg_trigger WHERE tgrelid = dep.objid AND NOT tgisinternal), '') || ' ' ||
		coalesce((SELECT pg_get_viewdef(dep.objid) FROM pg_class
				   WHERE oid = dep.objid AND relkind = 'v'), '') ||
		coalesce((SELECT string_agg(objsubid || ' ' || description, ', ' ORDER BY objsubid)
				   FROM pg_description WHERE objoid = dep.objid AND classoid = dep.classid), '')
	  WHEN 'pg_event_trigger'::regclass THEN
		(SELECT evtevent || ' ' || evtenabled::text || ' ' || coalesce(array_to_string(evttags, ','), '')
		   FROM pg_event_trigger WHERE oid = dep.objid)
	  ELSE ''
	END AS d
  FROM pg_depend dep
 WHERE dep.refclassid = 'pg_extension'::regclass AND dep.deptype = 'e'
   AND dep.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'es_pg')) s};

$node->safe_psql('postgres', 'CREATE DATABASE fresh');
$node->safe_psql('fresh', 'CREATE EXTENSION es_pg');
my $fresh = $node->safe_psql('fresh', $describe);
like($fresh, qr/function es_append\(text,text,jsonb,bigint,jsonb,uuid\)/,
	'the description lists the objects of an install');

# updating the current version is a no-op
my ($ret, $out, $err) = $node->psql('fresh', 'ALTER EXTENSION es_pg UPDATE');
like($err, qr/version "\Q$default\E" of extension "es_pg" is already installed/,
	'ALTER EXTENSION es_pg UPDATE on the default version changes nothing');
is($node->safe_psql('fresh', $describe), $fresh, 'and the objects are unchanged');

my @older = grep { $_ ne $default } @versions;
note 'no released version older than ' . $default . ' to upgrade from'
  unless @older;
for my $version (@older)
{
	my $db = "from_$version";
	$db =~ s/\./_/g;
	$node->safe_psql('postgres', qq{CREATE DATABASE "$db"});
	$node->safe_psql($db, qq{CREATE EXTENSION es_pg VERSION '$version'});
	# the library of the default version serves the old version's SQL
	# until the update: appends with inline and async projections, a
	# snapshot policy, DDL the guard looks at
	$node->safe_psql($db, q{
		CREATE TABLE upgrade_counts (stream_id text PRIMARY KEY, n int NOT NULL);
		CREATE FUNCTION upgrade_count(e es_events) RETURNS void LANGUAGE sql AS $$
			INSERT INTO upgrade_counts VALUES (e.stream_id, 1)
			ON CONFLICT (stream_id) DO UPDATE SET n = upgrade_counts.n + 1 $$;
		CREATE TABLE upgrade_async (stream_id text PRIMARY KEY, n int NOT NULL);
		CREATE FUNCTION upgrade_async_count(e es_events) RETURNS void LANGUAGE sql AS $$
			INSERT INTO upgrade_async VALUES (e.stream_id, 1)
			ON CONFLICT (stream_id) DO UPDATE SET n = upgrade_async.n + 1 $$;
		CREATE FUNCTION upgrade_sum(state jsonb, e es_events) RETURNS jsonb
			LANGUAGE sql AS $$ SELECT jsonb_build_object('n', coalesce((state->>'n')::int, 0) + 1) $$;
		SELECT es_create_projection('upgrade_counts', 'upgrade_count(es_events)');
		SELECT es_create_projection('upgrade_async', 'upgrade_async_count(es_events)', NULL, 'async');
		SELECT es_set_snapshot_policy('upgrade_sum(jsonb,es_events)', 1);
		CREATE TABLE upgrade_once (position bigint PRIMARY KEY);
		CREATE TABLE upgrade_fail (fail boolean);
		INSERT INTO upgrade_fail VALUES (true);
		CREATE FUNCTION upgrade_fragile(e es_events) RETURNS void LANGUAGE plpgsql AS $$
		BEGIN
			IF e.stream_id = 'upgrade-3' AND e.event_type = 'B'
			   AND (SELECT fail FROM upgrade_fail) THEN
				RAISE EXCEPTION 'upgrade poison';
			END IF;
			INSERT INTO upgrade_once VALUES (e.global_position);
		END $$;
		SELECT es_create_projection('upgrade_fragile', 'upgrade_fragile(es_events)', NULL, 'async');});
	$node->safe_psql($db, q{
		SELECT es_append_batch('upgrade-' || i, '[{"type": "A", "data": {}}, {"type": "B", "data": {}}]', 0)
		  FROM generate_series(1, 10) i});
	$node->safe_psql($db, q{SELECT es_apply_projections('upgrade_async')});
	is($node->safe_psql($db, q{SELECT es_aggregate('upgrade-1', 'upgrade_sum(jsonb,es_events)')}),
		'{"n": 2}', "$version: es_aggregate under a policy before the update");
	# the old mechanism parks the whole projection at the poison (the worker
	# or these calls, es_pg.projection_retries times)
	for my $try (1 .. 100)
	{
		$node->psql($db, q{SET client_min_messages = error; SELECT es_apply_projections('upgrade_fragile')});
		last if $node->safe_psql($db,
			q{SELECT parked FROM es_projection_checkpoints WHERE name = 'upgrade_fragile'}) eq 't';
		usleep(100_000);
	}
	my $old_checkpoints = $node->safe_psql($db, q{
		SELECT string_agg(c.name || ' ' || c.position || ' ' || c.parked || ' ' || coalesce(c.error_message, '-'), ',' ORDER BY c.name)
		  FROM es_projection_checkpoints c JOIN es_projections p USING (name) WHERE p.mode = 'async'});
	like($old_checkpoints, qr/upgrade_fragile \d+ true upgrade poison/,
		"$version: the fragile projection is parked before the update");
	my $old_once = $node->safe_psql($db, q{SELECT count(*) FROM upgrade_once});
	is($node->safe_psql($db, q{SELECT sum(n) FROM upgrade_counts}) . ' ' .
		$node->safe_psql($db, q{SELECT sum(n) FROM upgrade_async}),
		'20 20', "$version: inline and async projections before the update");
	# reads under the old SQL, whose es_events has no schema_version
	is($node->safe_psql($db, q{SELECT string_agg(version || event_type, ',' ORDER BY version)
		  FROM es_read_stream('upgrade-2')}),
		'1A,2B', "$version: es_read_stream before the update");
	is($node->safe_psql($db, q{SELECT count(*) FROM es_read_all(0, 100)}),
		'20', "$version: es_read_all before the update");
	$node->safe_psql($db, q{ALTER TABLE es_events SET (fillfactor = 100)});
	my $before = $node->safe_psql($db,
		q{SELECT count(*) || ' ' || max(global_position) FROM es_events});

	$node->safe_psql($db, 'ALTER EXTENSION es_pg UPDATE');
	is($node->safe_psql($db, q{SELECT extversion FROM pg_extension WHERE extname = 'es_pg'}),
		$default, "$version: updated to $default");
	is($node->safe_psql($db, $describe), $fresh,
		"$version: the objects are those of a fresh install of $default");
	is($node->safe_psql($db,
			q{SELECT count(*) || ' ' || max(global_position) FROM es_events}),
		$before, "$version: the events are intact");
	# async projections are subscriptions now: each continues at the
	# checkpoint it had, a parked one retries the event it stopped at
	(my $new_checkpoints = $old_checkpoints) =~ s/ true / false /;
	$new_checkpoints =~ s/ (?:true|false) / /g;
	is($node->safe_psql($db, q{
		SELECT string_agg(s.name || ' ' || m.checkpoint || ' ' || coalesce(m.last_error, '-'), ',' ORDER BY s.name)
		  FROM es_subscriptions s JOIN es_subscription_members m ON m.subscription = s.name
		 WHERE s.projection IS NOT NULL}),
		$new_checkpoints, "$version: the checkpoints moved to the projections' subscriptions");
	is($node->safe_psql($db, q{SELECT count(*) FROM upgrade_once}), $old_once,
		"$version: nothing applied in the update");
	is($node->safe_psql($db, q{SELECT es_append('upgrade-1', 'C', '{}', 2)}),
		'3', "$version: appends go on with the right version");
	$node->safe_psql($db, q{UPDATE upgrade_fail SET fail = false});
	for my $try (1 .. 100)
	{
		# (had the worker parked it meanwhile, the replay hands it over)
		$node->safe_psql($db, q{SELECT es_replay_parked('upgrade_fragile'), es_apply_projections('upgrade_fragile')});
		last if $node->safe_psql($db, q{SELECT count(*) FROM upgrade_once}) eq '21';
		usleep(100_000);
	}
	is($node->safe_psql($db, q{
		SELECT count(*) || ' ' || count(DISTINCT position) || ' ' ||
			   bool_and(position IN (SELECT global_position FROM es_events))
		  FROM upgrade_once}),
		'21 21 true', "$version: the parked projection went on: every event applied once, none skipped");
	is($node->safe_psql($db, q{
		SELECT state || ' ' || parked || ' ' || coalesce(last_error, '-')
		  FROM es_projection_status WHERE name = 'upgrade_fragile'}),
		'running 0 -', "$version: and its error is history");
	$node->safe_psql($db, q{SELECT es_apply_projections('upgrade_async')});
	is($node->safe_psql($db, q{SELECT sum(n) FROM upgrade_counts}) . ' ' .
		$node->safe_psql($db, q{SELECT sum(n) FROM upgrade_async}),
		'21 21', "$version: the projections go on after the update");
	is($node->safe_psql($db, q{SELECT handler FROM es_projections ORDER BY name}),
		"public.upgrade_async_count(public.es_events)\npublic.upgrade_count(public.es_events)\npublic.upgrade_fragile(public.es_events)",
		"$version: handlers are kept as schema-qualified signatures");
	is($node->safe_psql($db, q{SELECT es_aggregate('upgrade-1', 'upgrade_sum(jsonb,es_events)')}),
		'{"n": 3}', "$version: es_aggregate under the policy after the update");

	# every event is still readable, at version 1 of its type, and an
	# upcaster registered now reaches the events written before the update
	is($node->safe_psql($db, q{SELECT count(*) FILTER (WHERE schema_version IS NULL) || ' ' ||
			count(*) FROM es_events}),
		'21 21', "$version: the events kept have no recorded schema version");
	$node->safe_psql($db, q{
		CREATE FUNCTION upgrade_a_v2(e es_events) RETURNS es_events LANGUAGE plpgsql AS $$
		BEGIN e.data := e.data || '{"v2": true}'; RETURN e; END $$;
		SELECT es_register_event_type('A', 2);
		SELECT es_create_upcaster('A', 1, 'upgrade_a_v2(es_events)');});
	is($node->safe_psql($db, q{SELECT string_agg(version || event_type || data::text
			|| coalesce(schema_version::text, '-'), ',' ORDER BY version)
		  FROM es_read_stream('upgrade-2')}),
		'1A{"v2": true}2,2B{}-', "$version: old events read through a new upcaster");
	is($node->safe_psql($db, q{SELECT count(*) FROM es_read_all(0, 100) WHERE data ? 'v2'}),
		'10', "$version: and through the global feed");
}

$node->stop;
done_testing();
