-- history is append-only for every role, and the guards stay in place
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS es_pg;
RESET client_min_messages;

SELECT es_append('imm-1', 'Created', '{"v": 1}') AS v;
SELECT count(*) AS events FROM es_events \gset

-- the owner (a superuser here) can neither change nor remove events
\set VERBOSITY sqlstate
UPDATE es_events SET data = '{"v": 2}' WHERE stream_id = 'imm-1';
DELETE FROM es_events WHERE stream_id = 'imm-1';
DELETE FROM es_events WHERE false;
TRUNCATE es_events;
TRUNCATE es_events CASCADE;
INSERT INTO es_events (stream_id, version, event_type, data)
	VALUES ('imm-1', 1, 'X', '{}')
	ON CONFLICT (stream_id, version) DO UPDATE SET data = '{"v": 3}';
MERGE INTO es_events e USING (VALUES ('imm-1')) s(id) ON e.stream_id = s.id
	WHEN MATCHED THEN DELETE;
\set VERBOSITY default
UPDATE es_events SET data = '{}' WHERE false;

-- not even with triggers switched off for replication
SET session_replication_role = replica;
\set VERBOSITY sqlstate
UPDATE es_events SET data = '{"v": 2}';
DELETE FROM es_events;
TRUNCATE es_events;
\set VERBOSITY default
RESET session_replication_role;

-- nor a role that was granted every privilege on the table
CREATE ROLE imm_writer;
GRANT ALL ON es_events TO imm_writer;
SET ROLE imm_writer;
\set VERBOSITY sqlstate
UPDATE es_events SET data = '{}';
DELETE FROM es_events;
TRUNCATE es_events;
\set VERBOSITY default
RESET ROLE;
REVOKE ALL ON es_events FROM imm_writer;
DROP ROLE imm_writer;

SELECT count(*) = :events AS nothing_lost,
	   (SELECT data FROM es_events WHERE stream_id = 'imm-1') AS data
  FROM es_events;

-- the guards cannot be switched off or removed with DDL
\set VERBOSITY sqlstate
ALTER TABLE es_events DISABLE TRIGGER es_events_append_only;
ALTER TABLE es_events DISABLE TRIGGER ALL;
ALTER TABLE es_events DISABLE TRIGGER USER;
ALTER TABLE es_events ENABLE TRIGGER es_events_append_only;
ALTER TABLE es_events ENABLE REPLICA TRIGGER es_events_insert_guard;
DROP TRIGGER es_events_append_only ON es_events;
ALTER TRIGGER es_events_append_only ON es_events RENAME TO something_else;
CREATE RULE no_delete AS ON DELETE TO es_events DO INSTEAD NOTHING;
\set VERBOSITY default
SELECT tgname, tgenabled FROM pg_trigger
 WHERE tgrelid = 'es_events'::regclass ORDER BY tgname;

-- other DDL on es_events is fine
ALTER TABLE es_events SET (autovacuum_vacuum_insert_scale_factor = 0.1);
ALTER TABLE es_events RESET (autovacuum_vacuum_insert_scale_factor);

-- the message a user sees
UPDATE es_events SET data = '{}';
ALTER TABLE es_events DISABLE TRIGGER es_events_append_only;

-- dropping the extension while it holds events is refused...
\set VERBOSITY sqlstate
DROP EXTENSION es_pg;
DROP EXTENSION es_pg CASCADE;
\set VERBOSITY terse
DROP EXTENSION es_pg;
\set VERBOSITY default
-- ...unless a superuser says so (rolled back here)
BEGIN;
SET LOCAL es_pg.allow_drop_history = on;
DROP EXTENSION es_pg;
SELECT count(*) FROM pg_extension WHERE extname = 'es_pg';
ROLLBACK;
SELECT count(*) FROM pg_extension WHERE extname = 'es_pg';
-- ordinary users cannot set it
CREATE ROLE imm_user;
SET ROLE imm_user;
\set VERBOSITY sqlstate
SET es_pg.allow_drop_history = on;
\set VERBOSITY default
RESET ROLE;
DROP ROLE imm_user;

-- the trigger functions refuse to be called any other way
\set VERBOSITY sqlstate
SELECT es_events_append_only();
\set VERBOSITY default

-- a direct INSERT (as pg_restore does) holds the feed lock until it commits
BEGIN;
INSERT INTO es_events (stream_id, version, event_type, data)
	VALUES ('imm-direct', 1, 'Restored', '{}');
SELECT mode, granted FROM pg_locks
 WHERE locktype = 'advisory' AND objsubid = 17734 AND pid = pg_backend_pid();
COMMIT;
SELECT count(*) FROM pg_locks
 WHERE locktype = 'advisory' AND objsubid = 17734 AND pid = pg_backend_pid();
-- while es_append releases it before returning
BEGIN;
SELECT es_append('imm-2', 'A', '{}');
SELECT count(*) FROM pg_locks
 WHERE locktype = 'advisory' AND objsubid = 17734 AND pid = pg_backend_pid();
-- but keeps the stream locked until the end of the transaction
SELECT mode, granted FROM pg_locks
 WHERE locktype = 'advisory' AND objsubid = 17747 AND pid = pg_backend_pid();
COMMIT;

-- the unique constraints that versions and ids rely on stay in place
\set VERBOSITY sqlstate
ALTER TABLE es_events DROP CONSTRAINT es_events_stream_id_version_key;
ALTER TABLE es_events DROP CONSTRAINT es_events_event_id_key;
ALTER TABLE es_events DROP CONSTRAINT es_events_pkey CASCADE;
\set VERBOSITY default
ALTER TABLE es_events DROP CONSTRAINT es_events_stream_id_version_key;
SELECT conname FROM pg_constraint
 WHERE conrelid = 'es_events'::regclass AND contype IN ('p', 'u') ORDER BY conname;
