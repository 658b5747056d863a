-- Attack: write events past es_append with INSERT or COPY, as the owner or
-- a restore does, and break the invariants es_append keeps.
-- Promise: a direct insert continues each stream's versions without gaps
-- and takes positions above every position in use, or is refused (23514)
-- with nothing written; a restore into an empty store works (TAP
-- 022_dump_restore); rows that bypass the statement triggers (logical
-- replication's apply worker, TAP 061) are refused (0A000).
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS es_pg;
RESET client_min_messages;

SELECT es_append_batch('direct-1', '[{"type": "A", "data": {}}, {"type": "B", "data": {}}]', 0) AS v;
SELECT count(*) AS events_before FROM es_events \gset

-- a row that continues the stream, and one that starts a new one
INSERT INTO es_events (stream_id, version, event_type, data)
	VALUES ('direct-1', 3, 'C', '{}'), ('direct-2', 1, 'A', '{}');
SELECT stream_id, version, event_type FROM es_events
 WHERE stream_id LIKE 'direct-%' ORDER BY global_position;
SELECT es_stream_version('direct-1') AS v1, es_stream_version('direct-2') AS v2;

-- gaps and overlaps are refused, at commit, with nothing written
\set VERBOSITY sqlstate
INSERT INTO es_events (stream_id, version, event_type, data) VALUES ('direct-1', 5, 'Gap', '{}');
INSERT INTO es_events (stream_id, version, event_type, data) VALUES ('direct-3', 2, 'NoFirst', '{}');
INSERT INTO es_events (stream_id, version, event_type, data) VALUES ('direct-1', 3, 'Again', '{}');
INSERT INTO es_events (stream_id, version, event_type, data)
	VALUES ('direct-4', 1, 'A', '{}'), ('direct-4', 1, 'B', '{}');
\set VERBOSITY default
INSERT INTO es_events (stream_id, version, event_type, data) VALUES ('direct-1', 5, 'Gap', '{}');
SELECT count(*) - :events_before AS written FROM es_events;

-- positions: above every position in use, or refused; an explicit one moves
-- the sequence past it, so that appends go on above it
SELECT es_head_position() AS head \gset
\set VERBOSITY sqlstate
INSERT INTO es_events (global_position, stream_id, version, event_type, data)
	VALUES (:head - 1, 'direct-5', 1, 'Low', '{}');
INSERT INTO es_events (global_position, stream_id, version, event_type, data)
	VALUES (1, 'direct-5', 1, 'Low', '{}');
\set VERBOSITY default
INSERT INTO es_events (global_position, stream_id, version, event_type, data)
	VALUES (:head + 1000, 'direct-5', 1, 'High', '{}');
SELECT es_append('direct-5', 'After', '{}') AS v;
SELECT global_position - :head AS above_head, version, event_type FROM es_events
 WHERE stream_id = 'direct-5' ORDER BY version;

-- COPY, rows in any order, several statements in one transaction, a
-- rolled-back savepoint in between
BEGIN;
COPY es_events (stream_id, version, event_type, data) FROM STDIN;
direct-6	3	C	{}
direct-6	1	A	{}
direct-6	2	B	{}
\.
SAVEPOINT s;
INSERT INTO es_events (stream_id, version, event_type, data) VALUES ('direct-6', 9, 'Lost', '{}');
ROLLBACK TO s;
INSERT INTO es_events (stream_id, version, event_type, data) VALUES ('direct-6', 4, 'D', '{}');
COMMIT;
SELECT version, event_type FROM es_read_stream('direct-6');

-- the direct insert holds the feed until it commits: appends wait
BEGIN;
INSERT INTO es_events (stream_id, version, event_type, data) VALUES ('direct-7', 1, 'A', '{}');
SELECT mode, granted FROM pg_locks
 WHERE locktype = 'advisory' AND objsubid = 17734 AND pid = pg_backend_pid();
COMMIT;

-- inside an append, a trigger may not insert into es_events itself, nor
-- change the columns es_pg assigns
CREATE FUNCTION direct_nested() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF NEW.event_type = 'Nested' THEN
		INSERT INTO es_events (stream_id, version, event_type, data)
			VALUES ('direct-nested', 1, 'Inner', '{}');
	ELSIF NEW.event_type = 'Move' THEN
		NEW.global_position := NEW.global_position + 1000;
	ELSIF NEW.event_type = 'Renumber' THEN
		NEW.version := NEW.version + 1;
	ELSIF NEW.event_type = 'Enrich' THEN
		NEW.data := NEW.data || '{"enriched": true}';
	END IF;
	RETURN NEW;
END $$;
CREATE TRIGGER direct_nested BEFORE INSERT ON es_events
	FOR EACH ROW EXECUTE FUNCTION direct_nested();
\set VERBOSITY sqlstate
SELECT es_append('direct-8', 'Nested', '{}');
SELECT es_append('direct-8', 'Move', '{}');
SELECT es_append('direct-8', 'Renumber', '{}');
\set VERBOSITY default
SELECT es_append('direct-8', 'Nested', '{}');
SELECT es_append('direct-8', 'Move', '{}');
SELECT es_append('direct-8', 'Enrich', '{}') AS v;
SELECT version, event_type, data FROM es_read_stream('direct-8');
DROP TRIGGER direct_nested ON es_events;
DROP FUNCTION direct_nested();

-- the check function refuses rows outside a window, however it is reached
\set VERBOSITY sqlstate
SELECT es_events_insert_check(1);
\set VERBOSITY default
SELECT es_events_insert_check(1);
