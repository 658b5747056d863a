-- archiving: es_archive moves the sealed events of deleted streams (not
-- their tombstones), and with live_streams those of live streams (not
-- their last events), from es_events into es_archived_events through the
-- one removal path the guard lets through; es_verify still passes, reads
-- that would miss archived events refuse (55Z02), es_read_archived reads
-- them back.  In a
-- database of its own: the other tests check that every stream in
-- es_events starts at version 1, which archiving ends for deleted streams.
SELECT current_database() AS regress_db \gset
SET client_min_messages = warning;
DROP DATABASE IF EXISTS regress_es_archive;
DROP TABLESPACE IF EXISTS regress_es_cold;
RESET client_min_messages;
CREATE DATABASE regress_es_archive;
\c regress_es_archive
SET client_min_messages = warning;
CREATE EXTENSION es_pg;
RESET client_min_messages;

SELECT es_seal() >= 0 AS sealed_what_was_there;
SELECT coalesce(max(archive_id), 0) AS archives_before FROM es_archives \gset
SELECT es_append_batch('arch-1', '[{"type": "A", "data": {"n": 1}}, {"type": "B", "data": {}, "metadata": {"m": 1}}, {"type": "C", "data": {}}]') AS v;
SELECT es_append_batch('arch-2', '[{"type": "A", "data": {}}, {"type": "B", "data": {}}]') AS v;
SELECT es_append_batch('arch-live', '[{"type": "A", "data": {}}, {"type": "B", "data": {}}]') AS v;
SELECT global_position AS p1 FROM es_events WHERE stream_id = 'arch-1' AND version = 1 \gset
SELECT global_position AS p3 FROM es_events WHERE stream_id = 'arch-1' AND version = 3 \gset

-- bad input
\set VERBOSITY sqlstate
SELECT es_archive(-1);
SELECT es_archive(NULL, 'no_such_tablespace');
\set VERBOSITY default

-- nothing deleted: nothing to archive; deleted but not sealed: neither
SELECT es_archive() AS archived;
SELECT es_delete_stream('arch-1') AS tombstone, es_delete_stream('arch-2') AS tombstone;
SELECT es_archive() AS archived_unsealed;
SELECT es_seal() > 0 AS sealed;

-- below a position, then the rest into another tablespace; the tombstones
-- stay
SELECT es_archive(:p3) AS archived;
SET allow_in_place_tablespaces = on;
CREATE TABLESPACE regress_es_cold LOCATION '';
RESET allow_in_place_tablespaces;
SELECT es_archive(NULL, 'regress_es_cold') AS archived;
SELECT t.spcname FROM pg_class c JOIN pg_tablespace t ON t.oid = c.reltablespace
 WHERE c.oid = 'es_archived_events'::regclass;
SELECT es_archive(NULL, 'regress_es_cold') AS archived_nothing_left;
SELECT es_archive() AS archived_again;
SELECT archive_id - :archives_before AS archive, up_to_position >= first_position AS covers,
	   events, last_position - first_position AS span, tablespace
  FROM es_archives WHERE archive_id > :archives_before ORDER BY archive_id;
SELECT stream_id, version, event_type FROM es_events
 WHERE stream_id LIKE 'arch-%' ORDER BY stream_id, version;
SELECT stream_id, version, event_type, metadata, archive_id - :archives_before AS archive
  FROM es_archived_events WHERE stream_id LIKE 'arch-%' ORDER BY global_position;

-- the chain still verifies, and says how many events it found archived
SELECT intact, problem, archived FROM es_verify();
SELECT intact, events, archived FROM es_verify(:p1, :p3);

-- reads: the deleted streams are refused as before; the feed keeps the
-- tombstones; the archived events are read back from es_archived_events
\set VERBOSITY sqlstate
SELECT count(*) FROM es_read_stream('arch-1');
\set VERBOSITY default
SELECT stream_id, event_type FROM es_read_all(:p1 - 1, NULL) WHERE stream_id LIKE 'arch-%' ORDER BY global_position;
SELECT version, event_type FROM es_read_stream('arch-live');

-- the removal path opens for es_archive only: a superuser who copies a live
-- event into the archive still cannot delete it, and nothing archived can
-- be changed or removed
\set VERBOSITY sqlstate
BEGIN;
INSERT INTO es_archived_events
	SELECT e.*, 0 FROM es_events e WHERE stream_id = 'arch-live' AND version = 1;
DELETE FROM es_events WHERE stream_id = 'arch-live' AND version = 1;
ROLLBACK;
DELETE FROM es_events WHERE stream_id = 'arch-1';
UPDATE es_archived_events SET data = '{}';
DELETE FROM es_archived_events;
TRUNCATE es_archived_events;
DELETE FROM es_archives;
\set VERBOSITY default

-- a superuser who edits an archived event is caught there (rolled back)
BEGIN;
ALTER TABLE es_archived_events DISABLE TRIGGER ALL;
UPDATE es_archived_events SET data = '{"n": 2}' WHERE global_position = :p1;
SELECT problem, position - :p1 AS at_p1 FROM es_verify(:p1);
DELETE FROM es_archived_events WHERE global_position = :p1;
SELECT problem, position - :p1 AS at_p1 FROM es_verify(:p1);
ROLLBACK;
SELECT intact FROM es_verify();

-- a restore of an archived store: a stream new to es_events may start
-- above version 1 only when its rows end with its tombstone
INSERT INTO es_events (stream_id, version, event_type, data) VALUES
	('arch-restored', 5, 'B', '{}'),
	('arch-restored', 6, '$StreamDeleted', '{"deleted_version": 5}');
SELECT version, event_type FROM es_events WHERE stream_id = 'arch-restored' ORDER BY version;
\set VERBOSITY sqlstate
INSERT INTO es_events (stream_id, version, event_type, data) VALUES ('arch-gap', 5, 'B', '{}');
INSERT INTO es_events (stream_id, version, event_type, data) VALUES
	('arch-gap', 5, 'B', '{}'), ('arch-gap', 7, '$StreamDeleted', '{}');
INSERT INTO es_events (stream_id, version, event_type, data) VALUES
	('arch-live', 5, '$StreamDeleted', '{}');
\set VERBOSITY default

-- live streams (live_streams => true): the sealed events of every stream
-- below the position, but each stream's last event
\set VERBOSITY sqlstate
SELECT es_archive(NULL, NULL, NULL);
\set VERBOSITY default
CREATE FUNCTION arch_count(state jsonb, e es_events) RETURNS jsonb
	LANGUAGE sql IMMUTABLE
	AS $$SELECT jsonb_build_object('n', coalesce((state->>'n')::int, 0) + 1, 'v', e.version)$$;
SELECT es_append_batch('live-1', '[{"type": "A", "data": {"n": 1}}, {"type": "A", "data": {"n": 2}}, {"type": "A", "data": {"n": 3}}]') AS v;
SELECT es_append_batch('live-2', '[{"type": "A", "data": {}}, {"type": "A", "data": {}}]') AS v;
SELECT es_append('live-one', 'A', '{}') AS v;
SELECT es_set_snapshot_policy('arch_count(jsonb,es_events)', 2);
SELECT es_aggregate('live-1', 'arch_count(jsonb,es_events)') AS snapshot_at_3;
SELECT stream_id, version FROM es_snapshots WHERE stream_id = 'live-1';
SELECT es_create_subscription('arch_sub', start_position => 0);
SELECT es_create_subscription('arch_sub_late', start_position => 0);
-- a subscription that parks an event, whose checkpoint passes it
SELECT es_create_subscription('arch_park', 'park', max_attempts => 1, start_position => es_head_position());
SELECT es_append_batch('park-1', '[{"type": "A", "data": {}}, {"type": "A", "data": {}}]') AS v;
SELECT global_position AS park1 FROM es_events WHERE stream_id = 'park-1' AND version = 1 \gset
SELECT count(*) FROM es_poll('arch_park', 0, 1);
SELECT es_nack('arch_park', 0, :park1, 'fails') AS parked;
SELECT version FROM es_poll('arch_park', 0, 10);
SELECT es_ack('arch_park', 0, :park1 + 1) > 0 AS acked;
SELECT es_seal() > 0 AS sealed;
SELECT es_append('live-2', 'A', '{"unsealed": true}') AS v;
SELECT global_position AS l1 FROM es_events WHERE stream_id = 'live-1' AND version = 1 \gset
SELECT global_position AS l3 FROM es_events WHERE stream_id = 'live-1' AND version = 3 \gset
SELECT global_position AS lsealed FROM es_events WHERE stream_id = 'live-2' AND version = 2 \gset
SELECT global_position AS lunsealed FROM es_events WHERE stream_id = 'live-2' AND version = 3 \gset
-- a follower that is past the range before it is archived
SELECT count(*) > 0 AS late_follower_ready FROM es_poll('arch_sub_late', 0, 1000);
SELECT es_ack('arch_sub_late', 0, :lunsealed) = :lunsealed AS acked;

-- below l3: live-1's versions 1 and 2 only, not its head, not the others'
SELECT es_archive(:l3, NULL, true) AS archived;
SELECT archive_id - :archives_before AS archive, events, live_streams,
	   last_position - :l1 AS last_from_l1
  FROM es_archives WHERE archive_id > :archives_before ORDER BY archive_id DESC LIMIT 1;
-- then everything sealed: each stream keeps its last event (live-2's
-- version 2 is unsealed, so its version 2 and 3 stay)
SELECT es_archive(NULL, NULL, true) AS archived;
SELECT stream_id, version FROM es_events WHERE global_position >= :l1 ORDER BY global_position;
SELECT stream_id, version FROM es_archived_events WHERE global_position >= :l1 ORDER BY global_position;
SELECT es_archive(NULL, NULL, true) AS archived_nothing_left;
SELECT intact, problem, archived > 0 AS some_archived FROM es_verify();
-- which ranges are archived: one per es_archive call, within the range asked
SELECT archive_id - :archives_before AS archive, first_position, last_position, live_streams
  FROM es_archives WHERE archive_id > :archives_before ORDER BY archive_id;
SELECT archived_ranges FROM es_verify();
SELECT archived_ranges FROM es_verify(:l1, :l3);
SELECT archived_ranges FROM es_verify(:lunsealed);

-- appends: versions and expected versions as before
SELECT es_stream_version('live-1') AS version;
SELECT es_append('live-1', 'A', '{"n": 4}', 3) AS v;
\set VERBOSITY sqlstate
SELECT es_append('live-1', 'A', '{"n": 4}', 3) AS v;
\set VERBOSITY default
SELECT es_append('live-one', 'A', '{}', 1) AS v;
-- es_streams still counts every event of the stream
SELECT stream_id, version, events FROM es_streams WHERE stream_id LIKE 'live-%' ORDER BY 1;

-- reads that would miss archived events are refused (55Z02), with a hint
SELECT count(*) FROM es_read_all(0, 10);
SELECT count(*) FROM es_read_stream('live-1');
\set VERBOSITY sqlstate
SELECT count(*) FROM es_read_all(:l1, 10);
SELECT count(*) FROM es_read_all(:l3 - 1, 10);
SELECT count(*) FROM es_read_category('live', 0, 10);
SELECT count(*) FROM es_read_stream('live-1', 1);
SELECT count(*) FROM es_read_stream_backward('live-1');
SELECT count(*) FROM es_read_stream_backward('live-1', NULL, 3);
SELECT count(*) FROM es_read_stream_backward('live-1', 3, 1);
SELECT es_aggregate('live-1', 'arch_count(jsonb,es_events)', as_of_version => 2);
SELECT count(*) FROM es_poll('arch_sub', 0, 10);
-- a deleted stream whose first versions are archived says first that it is
-- deleted (55Z01), now that archives of live streams exist too
SELECT count(*) FROM es_read_stream('arch-1');
SELECT count(*) FROM es_read_stream_backward('arch-1', NULL, 5);
\set VERBOSITY default
-- what they can read: from the horizon on, a stream after its archived
-- versions, es_aggregate from a snapshot at or after them
SELECT horizon FROM (SELECT max(last_position) AS horizon FROM es_archives WHERE live_streams) h \gset
SELECT stream_id, version FROM es_read_all(:horizon, NULL) WHERE stream_id LIKE 'live-%' ORDER BY global_position;
SELECT stream_id, version FROM es_read_category('live', :horizon, NULL) ORDER BY global_position;
SELECT version FROM es_read_stream('live-1', 2);
SELECT version FROM es_read_stream_backward('live-1', NULL, 2);
SELECT version FROM es_read_stream('live-one');
SELECT es_aggregate('live-1', 'arch_count(jsonb,es_events)');
SELECT count(*) AS late_follower_reads FROM es_poll('arch_sub_late', 0, 1000);
SELECT es_stream_version('live-2') AS version;

-- es_read_archived: the archived range back, archived or not, in order
SELECT stream_id, version, data FROM es_read_archived(:l1 - 1, NULL) ORDER BY global_position;
SELECT count(*) = count(DISTINCT global_position) AS no_doubles,
	   max(global_position) = :horizon AS up_to_the_horizon
  FROM es_read_archived(0, NULL);
SELECT version FROM es_read_archived(0, NULL, 'live-1');
SELECT version FROM es_read_archived(0, 1, 'live-1');
SELECT count(*) FROM es_read_archived(:horizon, NULL);
SELECT count(*) FROM es_read_archived(0, 0);
\set VERBOSITY sqlstate
SELECT count(*) FROM es_read_archived(-1);
SELECT count(*) FROM es_read_archived(0, -1);
\set VERBOSITY default
-- a follower: es_read_archived up to the horizon, then es_read_all
SELECT (SELECT count(*) FROM es_read_archived(0, NULL)) +
	   (SELECT count(*) FROM es_read_all(:horizon, NULL)) =
	   (SELECT count(*) FROM es_events) + (SELECT count(*) FROM es_archived_events) AS follower_sees_all;
-- a subscription whose checkpoint is inside the range keeps refusing (it
-- cannot acknowledge what it was not delivered): read the range with
-- es_read_archived, then create it again from the horizon
\set VERBOSITY sqlstate
SELECT es_ack('arch_sub', 0, :horizon) AS acked;
SELECT count(*) FROM es_poll('arch_sub', 0, 10);
\set VERBOSITY default
SELECT es_drop_subscription('arch_sub');
SELECT es_create_subscription('arch_sub', start_position => :horizon);
SELECT count(*) AS sub_reads FROM es_poll('arch_sub', 0, 1000);
\set VERBOSITY sqlstate
SELECT es_create_subscription('arch_sub_2', start_position => 0);
SELECT count(*) FROM es_poll('arch_sub_2', 0, 10);
\set VERBOSITY default

-- the parked event was archived: its replay is refused, not skipped
SELECT es_replay_parked('arch_park') AS marked;
SELECT count(*) FROM es_poll('arch_park', 0, 10);
SELECT version FROM es_read_archived(:park1 - 1, 1);

-- a projection rebuild replays the feed from 0: refused, not half done
CREATE TABLE arch_seen (position bigint);
CREATE FUNCTION arch_seen_apply(e es_events) RETURNS void
	LANGUAGE sql AS $$INSERT INTO arch_seen VALUES (e.global_position)$$;
CREATE FUNCTION arch_seen_reset() RETURNS void
	LANGUAGE sql AS $$DELETE FROM arch_seen$$;
SELECT es_create_projection('arch_proj', 'arch_seen_apply(es_events)', mode => 'async',
							reset => 'arch_seen_reset()');
\set VERBOSITY sqlstate
SELECT es_create_projection('arch_proj_inline', 'arch_seen_apply(es_events)');
SELECT es_rebuild_projection('arch_proj');
SELECT es_apply_projections('arch_proj');
\set VERBOSITY default
SELECT count(*) AS rows_projected FROM arch_seen;
SELECT es_drop_projection('arch_proj');

-- the restore rules: a live stream new to es_events may start above 1
-- when the archive holds the version before, never otherwise
BEGIN;
INSERT INTO es_archived_events (global_position, stream_id, version, event_id, event_type, data, recorded_at, archive_id)
	VALUES (1000001, 'live-restored', 1, gen_random_uuid(), 'A', '{}', now(), 0),
		   (1000002, 'live-restored', 2, gen_random_uuid(), 'A', '{}', now(), 0);
INSERT INTO es_events (stream_id, version, event_type, data) VALUES ('live-restored', 3, 'A', '{}');
SELECT version FROM es_events WHERE stream_id = 'live-restored';
ROLLBACK;
\set VERBOSITY sqlstate
INSERT INTO es_events (stream_id, version, event_type, data) VALUES ('live-gap', 3, 'A', '{}');
INSERT INTO es_events (stream_id, version, event_type, data) VALUES ('live-1', 6, 'A', '{}');
\set VERBOSITY default

-- forgetting a subject whose events were archived: its streams are found
-- in the archive too, and their snapshots (which may hold its plain
-- values) removed
SELECT es_protect('ArchPerson', ARRAY['$.email'], '$.person');
SELECT es_append('arch-person-1', 'ArchPerson', '{"person": "p1", "email": "p1@example.com"}') AS v;
SELECT es_append('arch-person-1', 'ArchNote', '{"text": "the head stays"}') AS v;
SELECT es_save_snapshot('arch-person-1', 2, '{"email": "p1@example.com"}');
SELECT es_seal() > 0 AS sealed;
SELECT es_archive(NULL, NULL, true) > 0 AS archived;
SELECT version, event_type FROM es_events WHERE stream_id = 'arch-person-1';
SELECT version, event_type FROM es_archived_events WHERE stream_id = 'arch-person-1';
SELECT * FROM es_forget_subject('p1');
SELECT count(*) AS snapshots_left FROM es_snapshots WHERE stream_id = 'arch-person-1';
SELECT version, data->'email'->>'es_pg' AS email
  FROM es_read_archived(0, NULL, 'arch-person-1');
SELECT intact FROM es_verify();

\c :regress_db
DROP DATABASE regress_es_archive;
DROP TABLESPACE regress_es_cold;
