-- deleted streams: es_delete_stream writes a tombstone event; appends and
-- stream reads then refuse the stream with 55Z01, and its history stays
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS es_pg;
DROP SCHEMA IF EXISTS tomb_evil CASCADE;
RESET client_min_messages;
CREATE FUNCTION tomb_count(state jsonb, event es_events) RETURNS jsonb
	LANGUAGE sql AS $$SELECT jsonb_build_object('n', coalesce((state->>'n')::int, 0) + 1)$$;

SELECT es_append('tomb-1', 'Created', '{"n": 1}') AS v;
SELECT es_append('tomb-1', 'Changed', '{"n": 2}', 1, NULL, '0c6a3f0e-8d2b-4f7e-9a61-3b5c7d9e1f20') AS v;
SELECT es_append('tomb-2', 'Created', '{}') AS v;
SELECT es_append('tomb-2', 'Changed', '{}') AS v;
SELECT count(*) AS events_before FROM es_events \gset

-- bad input: nothing written
\set VERBOSITY sqlstate
SELECT es_delete_stream(NULL);
SELECT es_delete_stream('');
SELECT es_delete_stream('tomb-never');
-- a stale expected version is a version conflict, as for es_append
SELECT es_delete_stream('tomb-2', 1);
\set VERBOSITY default
SELECT count(*) - :events_before AS written FROM es_events;
SELECT count(*) AS tombstones FROM es_tombstones WHERE stream_id LIKE 'tomb-%';

-- a rolled-back deletion leaves the stream as it was
BEGIN;
SELECT es_delete_stream('tomb-2') AS tombstone_version;
ROLLBACK;
SELECT es_append('tomb-2', 'Changed', '{}', 2) AS v;

-- deletion, with the expected version and metadata
SELECT es_delete_stream('tomb-1', 2, '{"reason": "GDPR request 42"}') AS tombstone_version;
SELECT es_delete_stream('tomb-2') AS tombstone_version;
SELECT stream_id, version, global_position = (SELECT global_position FROM es_events e
		WHERE e.stream_id = t.stream_id AND e.version = t.version) AS position_matches
  FROM es_tombstones t WHERE stream_id LIKE 'tomb-%' ORDER BY 1;

-- appends and stream reads say the stream is deleted
SELECT es_append('tomb-1', 'Changed', '{}');
\set VERBOSITY sqlstate
SELECT es_append('tomb-1', 'Changed', '{}');
SELECT es_append('tomb-1', 'Changed', '{}', 3);
SELECT es_append_batch('tomb-1', '[{"type": "T", "data": {}}]');
SELECT count(*) FROM es_read_stream('tomb-1');
SELECT count(*) FROM es_read_stream_backward('tomb-1');
-- every shape of stream read, whether it sees the stream's head (the
-- tombstone, its last event) or not: a first page, the rest, a range past
-- the head, none at all, backward below a version, backward one event
SELECT count(*) FROM es_read_stream('tomb-1', 0, 1);
SELECT count(*) FROM es_read_stream('tomb-1', 1);
SELECT count(*) FROM es_read_stream('tomb-1', 100);
SELECT count(*) FROM es_read_stream('tomb-1', 0, 0);
SELECT count(*) FROM es_read_stream_backward('tomb-1', 3);
SELECT count(*) FROM es_read_stream_backward('tomb-1', NULL, 1);
SELECT es_stream_version('tomb-1');
SELECT es_aggregate('tomb-1', 'tomb_count(jsonb, es_events)');
SELECT es_aggregate('tomb-1', 'tomb_count(jsonb, es_events)', as_of_version => 1);
SELECT es_delete_stream('tomb-1');
-- tombstones are never changed or removed, not even by a superuser
UPDATE es_tombstones SET version = 1;
DELETE FROM es_tombstones;
TRUNCATE es_tombstones;
\set VERBOSITY default
-- a retry of an append that committed before the deletion is still a retry
SELECT es_append('tomb-1', 'Changed', '{"n": 2}', 1, NULL, '0c6a3f0e-8d2b-4f7e-9a61-3b5c7d9e1f20') AS v;
SELECT count(*) - :events_before AS written FROM es_events;

-- the history stays: in es_events, in the global feed, in the seal chain
SELECT version, event_type, data, metadata FROM es_events WHERE stream_id = 'tomb-1' ORDER BY version;
SELECT count(*) AS in_the_feed FROM es_read_all(0, NULL) WHERE stream_id = 'tomb-1';
SELECT es_seal() > 0 AS sealed;
SELECT intact FROM es_verify();
-- other streams are untouched
SELECT es_append('tomb-3', 'Created', '{}') AS v;
SELECT es_stream_version('tomb-3') AS v;

-- a hostile search_path: an es_append of its own is not the one called
CREATE SCHEMA tomb_evil;
CREATE FUNCTION tomb_evil.es_append(text, text, jsonb, bigint, jsonb)
	RETURNS bigint LANGUAGE sql AS $$SELECT 999::bigint$$;
SET search_path = tomb_evil, public;
SELECT public.es_delete_stream('tomb-3') AS tombstone_version;
RESET search_path;
SELECT version, event_type FROM es_events WHERE stream_id = 'tomb-3' ORDER BY version;
DROP SCHEMA tomb_evil CASCADE;

-- an event of the tombstone's type appended by hand deletes nothing: only
-- es_delete_stream does (appends probe es_tombstones when the stream's head
-- has the tombstone's type)
SELECT es_append('tomb-4', '$StreamDeleted', '{"by": "hand"}') AS v;
SELECT es_append('tomb-4', 'Changed', '{}') AS v;
SELECT es_append('tomb-4', '$StreamDeleted', '{"by": "hand"}') AS v;
SELECT es_stream_version('tomb-4') AS v;
SELECT count(*) FROM es_read_stream('tomb-4');
SELECT es_append('tomb-4', 'Changed', '{}', 3) AS v;
-- and a stream whose deletion is recorded stays deleted: a direct insert
-- (INSERT or COPY) after its tombstone is refused at commit, nothing written
SELECT count(*) AS events_before FROM es_events \gset
\set VERBOSITY sqlstate
INSERT INTO es_events (stream_id, version, event_type, data)
	VALUES ('tomb-1', 4, 'Changed', '{}');
COPY es_events (stream_id, version, event_type, data) FROM STDIN;
tomb-2	5	Changed	{}
\.
-- in one transaction with rows of another stream too
BEGIN;
INSERT INTO es_events (stream_id, version, event_type, data)
	VALUES ('tomb-5', 1, 'Created', '{}'), ('tomb-1', 4, 'Changed', '{}');
COMMIT;
SELECT es_append('tomb-1', 'Changed', '{}');
SELECT es_stream_version('tomb-1');
\set VERBOSITY default
SELECT count(*) - :events_before AS written FROM es_events;
-- a direct insert into a stream that is not deleted still works
INSERT INTO es_events (stream_id, version, event_type, data)
	VALUES ('tomb-4', 5, 'Changed', '{}');
SELECT es_stream_version('tomb-4') AS v;
DROP FUNCTION tomb_count(jsonb, es_events);
