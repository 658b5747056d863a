-- es_save_snapshot and es_load_snapshot: save, load, replace, bad input,
-- privileges
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS es_pg;
RESET client_min_messages;

SELECT es_append_batch('snap-store-1', '[
	{"type": "Counted", "data": {"n": 1}},
	{"type": "Counted", "data": {"n": 2}},
	{"type": "Counted", "data": {"n": 3}}]');
SELECT es_append('snap-store-2', 'Counted', '{"n": 1}');

-- a reducer, to tag snapshots with
CREATE FUNCTION snap_store_count(state jsonb, event es_events) RETURNS jsonb
	LANGUAGE sql IMMUTABLE
	AS $$ SELECT jsonb_build_object('n', coalesce((state->>'n')::int, 0) + 1) $$;

-- no snapshot yet: no row
SELECT count(*) FROM es_load_snapshot('snap-store-1');
SELECT count(*) FROM es_load_snapshot('snap-store-missing');

-- save, then load the latest
SELECT es_save_snapshot('snap-store-1', 2, '{"n": 2}');
SELECT version, state FROM es_load_snapshot('snap-store-1');
SELECT es_save_snapshot('snap-store-1', 3, '{"n": 3}');
SELECT version, state FROM es_load_snapshot('snap-store-1');
-- an older version does not hide the newer one
SELECT es_save_snapshot('snap-store-1', 1, '{"n": 1}');
SELECT version, state FROM es_load_snapshot('snap-store-1');

-- saving again at the same version replaces the snapshot
BEGIN;
SELECT es_save_snapshot('snap-store-1', 3, '{"n": 3, "again": true}');
SELECT version, state, created_at = now() AS created_now
  FROM es_load_snapshot('snap-store-1');
COMMIT;
SELECT stream_id, reducer, version, state, reducer_digest
  FROM es_snapshots WHERE stream_id = 'snap-store-1' ORDER BY version;

-- the snapshots of one stream are not another's
SELECT count(*) FROM es_load_snapshot('snap-store-2');

-- snapshots tagged with the reducer that made them
SELECT es_save_snapshot('snap-store-2', 1, '{"n": 1}',
	'snap_store_count(jsonb, es_events)');
SELECT es_save_snapshot('snap-store-1', 2, '{"n": 2, "by": "reducer"}',
	reducer => 'snap_store_count'::regproc);
SELECT stream_id, reducer, version, state, reducer_digest
  FROM es_snapshots WHERE stream_id LIKE 'snap-store-%'
 ORDER BY stream_id, reducer, version;
-- es_load_snapshot(stream) is the newest whatever the reducer...
SELECT version, state FROM es_load_snapshot('snap-store-2');
-- ...es_load_snapshot(stream, reducer) the newest of one reducer, NULL
-- meaning the application's own
SELECT version, state FROM es_load_snapshot('snap-store-1', 'snap_store_count'::regproc);
SELECT version, state FROM es_load_snapshot('snap-store-1', NULL);
SELECT count(*) FROM es_load_snapshot('snap-store-2', NULL);
-- at the same version, the one saved last wins
SELECT es_save_snapshot('snap-store-1', 3, '{"n": 3, "by": "reducer"}',
	'snap_store_count'::regproc);
SELECT version, state FROM es_load_snapshot('snap-store-1');
SELECT es_save_snapshot('snap-store-1', 3, '{"n": 3, "by": "application"}');
SELECT version, state FROM es_load_snapshot('snap-store-1');

-- invalid versions, NULLs and reducers
SELECT count(*) AS snapshots_before FROM es_snapshots \gset
\set VERBOSITY sqlstate
SELECT es_save_snapshot('snap-store-1', 0, '{}');
SELECT es_save_snapshot('snap-store-1', -1, '{}');
SELECT es_save_snapshot('snap-store-1', 4, '{}');
SELECT es_save_snapshot('snap-store-missing', 1, '{}');
SELECT es_save_snapshot(NULL, 1, '{}');
SELECT es_save_snapshot('snap-store-1', NULL, '{}');
SELECT es_save_snapshot('snap-store-1', 1, NULL);
SELECT * FROM es_load_snapshot(NULL);
SELECT * FROM es_load_snapshot(NULL, NULL);
SELECT es_save_snapshot('snap-store-1', 1, '{}', 'es_append_batch(text, jsonb, bigint)');
SELECT es_save_snapshot('snap-store-1', 1, '{}', 'no_such_reducer(jsonb, es_events)');
SELECT * FROM es_load_snapshot('snap-store-1', 'es_stream_version'::regproc);
\set VERBOSITY default
-- what the user reads
SELECT es_save_snapshot('snap-store-1', 4, '{}');
SELECT es_save_snapshot('snap-store-missing', 1, '{}');
SELECT es_save_snapshot('snap-store-1', 0, '{}');
SELECT es_save_snapshot('snap-store-1', 1, '{}', 'es_stream_version'::regproc);
-- the failed calls wrote nothing
SELECT count(*) = :snapshots_before AS unchanged FROM es_snapshots;

-- es_drop_snapshots: NULL names the application's snapshots; per stream
-- or everywhere; returns the count
SELECT es_drop_snapshots(NULL, 'snap-store-2');
SELECT es_drop_snapshots('snap_store_count'::regproc, 'snap-store-2');
SELECT es_drop_snapshots(NULL, 'snap-store-1');
SELECT reducer, version FROM es_snapshots WHERE stream_id LIKE 'snap-store-%';
SELECT es_drop_snapshots('snap_store_count'::regproc);
SELECT count(*) FROM es_snapshots WHERE stream_id LIKE 'snap-store-%';

-- snapshots and policies are user data: pg_dump includes them
SELECT c.relname AS dumped
  FROM pg_extension e, unnest(e.extconfig) t(oid)
  JOIN pg_class c ON c.oid = t.oid
 WHERE e.extname = 'es_pg' AND c.relname LIKE 'es_snapshot%'
 ORDER BY 1;

-- privileges: reading snapshots needs SELECT on es_events, writing them is
-- for the roles an administrator grants the functions to
SELECT es_save_snapshot('snap-store-1', 3, '{"n": 3}');
CREATE ROLE snap_store_reader;
CREATE ROLE snap_store_nobody;
GRANT SELECT ON es_events TO snap_store_reader;
SET ROLE snap_store_reader;
SELECT version, state FROM es_load_snapshot('snap-store-1');
\set VERBOSITY sqlstate
SELECT es_save_snapshot('snap-store-1', 3, '{}');
SELECT es_drop_snapshots(NULL);
SELECT es_set_snapshot_policy('snap_store_count'::regproc, 10);
SELECT es_drop_snapshot_policy('snap_store_count'::regproc);
SELECT count(*) FROM es_snapshots;
SELECT count(*) FROM es_snapshot_policies;
\set VERBOSITY default
SET ROLE snap_store_nobody;
\set VERBOSITY sqlstate
SELECT * FROM es_load_snapshot('snap-store-1');
SELECT * FROM es_load_snapshot('snap-store-1', NULL);
\set VERBOSITY default
RESET ROLE;
-- a role granted es_save_snapshot needs no privilege on es_snapshots
GRANT EXECUTE ON FUNCTION es_save_snapshot(text, bigint, jsonb, regprocedure)
	TO snap_store_reader;
SET ROLE snap_store_reader;
SELECT es_save_snapshot('snap-store-1', 3, '{"n": 3, "by": "reader"}');
RESET ROLE;
SELECT version, state FROM es_load_snapshot('snap-store-1');
REVOKE ALL ON FUNCTION es_save_snapshot(text, bigint, jsonb, regprocedure)
	FROM snap_store_reader;
REVOKE SELECT ON es_events FROM snap_store_reader;
DROP ROLE snap_store_reader;
DROP ROLE snap_store_nobody;
