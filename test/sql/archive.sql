-- archiving: es_archive moves the sealed events of deleted streams (not
-- their tombstones) from es_events into es_archived_events through the one
-- removal path the guard lets through; es_verify still passes.  In a
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

\c :regress_db
DROP DATABASE regress_es_archive;
DROP TABLESPACE regress_es_cold;
