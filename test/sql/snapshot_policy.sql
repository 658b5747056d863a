-- snapshot policies: es_aggregate stores snapshots, later loads use them;
-- read-only callers never fail; stale snapshots are skipped or dropped
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS es_pg;
RESET client_min_messages;

-- a counter with a running sum; the initial state carries the start values
CREATE FUNCTION snap_pol_sum(state jsonb, event es_events) RETURNS jsonb
	LANGUAGE sql IMMUTABLE
	AS $$ SELECT jsonb_build_object(
		'n', (state->>'n')::bigint + 1,
		'sum', (state->>'sum')::bigint + (event.data->>'x')::bigint) $$;

CREATE FUNCTION snap_pol_append(stream text, n int) RETURNS bigint
	LANGUAGE sql
	AS $$ SELECT es_append_batch(stream,
		(SELECT jsonb_agg(jsonb_build_object('type', 'Added',
					'data', jsonb_build_object('x', i)) ORDER BY i)
		   FROM generate_series(1, n) i)) $$;

SELECT snap_pol_append('snap-pol-1', 250);

-- set, change and list policies
SELECT es_set_snapshot_policy('snap_pol_sum'::regproc, 50);
SELECT es_set_snapshot_policy('snap_pol_sum'::regproc, 100);
SELECT reducer, every_n_events, updated_at <= now() AS updated
  FROM es_snapshot_policies;

\set VERBOSITY sqlstate
SELECT es_set_snapshot_policy('snap_pol_sum'::regproc, 0);
SELECT es_set_snapshot_policy('snap_pol_sum'::regproc, -5);
SELECT es_set_snapshot_policy('snap_pol_sum'::regproc, NULL);
SELECT es_set_snapshot_policy(NULL, 10);
SELECT es_set_snapshot_policy('es_stream_version'::regproc, 10);
SELECT es_drop_snapshot_policy(NULL);
SELECT es_drop_snapshot_policy('es_stream_version'::regproc);
\set VERBOSITY default
SELECT es_set_snapshot_policy('snap_pol_sum'::regproc, 0);

SET es_pg.log_replay = on;
-- 250 events replayed, more than 100: a snapshot is stored at the head
SELECT es_aggregate('snap-pol-1', 'snap_pol_sum'::regproc, '{"n": 0, "sum": 0}');
SELECT reducer, version, state FROM es_snapshots WHERE stream_id = 'snap-pol-1';
-- and the next load uses it
SELECT es_aggregate('snap-pol-1', 'snap_pol_sum'::regproc, '{"n": 0, "sum": 0}');
-- a tail of 100 events or fewer is replayed, not stored
SELECT snap_pol_append('snap-pol-1', 60);
SELECT es_aggregate('snap-pol-1', 'snap_pol_sum'::regproc, '{"n": 0, "sum": 0}');
-- more than 100: stored again
SELECT snap_pol_append('snap-pol-1', 50);
SELECT es_aggregate('snap-pol-1', 'snap_pol_sum'::regproc, '{"n": 0, "sum": 0}');
SELECT es_aggregate('snap-pol-1', 'snap_pol_sum'::regproc, '{"n": 0, "sum": 0}');
-- historical folds store snapshots too, and use the older ones
SELECT es_aggregate('snap-pol-1', 'snap_pol_sum'::regproc, '{"n": 0, "sum": 0}',
	as_of_version => 200);
SELECT es_aggregate('snap-pol-1', 'snap_pol_sum'::regproc, '{"n": 0, "sum": 0}',
	as_of_version => 240);
SELECT version, state FROM es_snapshots WHERE stream_id = 'snap-pol-1'
 ORDER BY version;
-- the state is the same as a full replay's
SELECT es_aggregate('snap-pol-1', 'snap_pol_sum'::regproc, '{"n": 0, "sum": 0}')
	= jsonb_build_object('n', count(*), 'sum', sum((data->>'x')::bigint)) AS same_state
  FROM es_events WHERE stream_id = 'snap-pol-1';

-- a read-only transaction gets its state and stores nothing, without error
SELECT snap_pol_append('snap-pol-2', 150);
BEGIN TRANSACTION READ ONLY;
SELECT es_aggregate('snap-pol-2', 'snap_pol_sum'::regproc, '{"n": 0, "sum": 0}');
COMMIT;
-- so does a serializable one (a write could make it fail to serialize)
BEGIN ISOLATION LEVEL SERIALIZABLE;
SELECT es_aggregate('snap-pol-2', 'snap_pol_sum'::regproc, '{"n": 0, "sum": 0}');
COMMIT;
SELECT count(*) FROM es_snapshots WHERE stream_id = 'snap-pol-2';
-- a repeatable read one stores the snapshot
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT es_aggregate('snap-pol-2', 'snap_pol_sum'::regproc, '{"n": 0, "sum": 0}');
COMMIT;
SELECT version FROM es_snapshots WHERE stream_id = 'snap-pol-2';
-- a rolled back transaction takes its snapshot with it
SELECT snap_pol_append('snap-pol-3', 150);
BEGIN;
SELECT es_aggregate('snap-pol-3', 'snap_pol_sum'::regproc, '{"n": 0, "sum": 0}');
ROLLBACK;
SELECT count(*) FROM es_snapshots WHERE stream_id = 'snap-pol-3';

-- a reader without any privilege on es_snapshots gets snapshots stored
CREATE ROLE snap_pol_reader;
GRANT SELECT ON es_events TO snap_pol_reader;
SET ROLE snap_pol_reader;
SELECT es_aggregate('snap-pol-3', 'snap_pol_sum'::regproc, '{"n": 0, "sum": 0}');
\set VERBOSITY sqlstate
SELECT count(*) FROM es_snapshots;
\set VERBOSITY default
RESET ROLE;
REVOKE SELECT ON es_events FROM snap_pol_reader;
DROP ROLE snap_pol_reader;
SELECT version, state FROM es_load_snapshot('snap-pol-3');

-- snapshots are per initial state: another one does not use them...
SELECT es_aggregate('snap-pol-3', 'snap_pol_sum'::regproc, '{"n": 1000, "sum": 0}');
-- ...nor do they survive a change of the reducer's code
CREATE OR REPLACE FUNCTION snap_pol_sum(state jsonb, event es_events) RETURNS jsonb
	LANGUAGE sql IMMUTABLE
	AS $$ SELECT jsonb_build_object(
		'n', (state->>'n')::bigint + 1,
		'sum', (state->>'sum')::bigint + 2 * (event.data->>'x')::bigint) $$;
SELECT es_aggregate('snap-pol-3', 'snap_pol_sum'::regproc, '{"n": 0, "sum": 0}');
SELECT es_aggregate('snap-pol-3', 'snap_pol_sum'::regproc, '{"n": 0, "sum": 0}');

-- the trap: a change the digest cannot see.  The reducer calls a helper;
-- changing the helper leaves the snapshots in place, and they are wrong
CREATE FUNCTION snap_pol_weight() RETURNS bigint
	LANGUAGE sql IMMUTABLE AS $$ SELECT 1::bigint $$;
CREATE FUNCTION snap_pol_weighted(state jsonb, event es_events) RETURNS jsonb
	LANGUAGE sql IMMUTABLE
	AS $$ SELECT jsonb_build_object('sum',
		(state->>'sum')::bigint + snap_pol_weight() * (event.data->>'x')::bigint) $$;
SELECT es_set_snapshot_policy('snap_pol_weighted'::regproc, 100);
SELECT es_aggregate('snap-pol-2', 'snap_pol_weighted'::regproc, '{"sum": 0}');
CREATE OR REPLACE FUNCTION snap_pol_weight() RETURNS bigint
	LANGUAGE sql IMMUTABLE AS $$ SELECT 10::bigint $$;
SELECT es_aggregate('snap-pol-2', 'snap_pol_weighted'::regproc, '{"sum": 0}');
-- one fix: change the reducer's source too (a revision comment): its
-- digest changes and the old snapshot is skipped
CREATE OR REPLACE FUNCTION snap_pol_weighted(state jsonb, event es_events) RETURNS jsonb
	LANGUAGE sql IMMUTABLE
	AS $$ -- rev 2: snap_pol_weight() changed
	SELECT jsonb_build_object('sum',
		(state->>'sum')::bigint + snap_pol_weight() * (event.data->>'x')::bigint) $$;
SELECT es_aggregate('snap-pol-2', 'snap_pol_weighted'::regproc, '{"sum": 0}');
-- the other: es_drop_snapshots; the next load replays everything
CREATE OR REPLACE FUNCTION snap_pol_weight() RETURNS bigint
	LANGUAGE sql IMMUTABLE AS $$ SELECT 100::bigint $$;
SELECT es_aggregate('snap-pol-2', 'snap_pol_weighted'::regproc, '{"sum": 0}');
SELECT es_drop_snapshots('snap_pol_weighted'::regproc);
SELECT es_aggregate('snap-pol-2', 'snap_pol_weighted'::regproc, '{"sum": 0}');

-- removing a policy keeps the snapshots and stops storing new ones; the
-- snapshots were folded in the policy's environment (the reducer's owner,
-- the pinned search_path), which a fold without the policy no longer is:
-- they are skipped
SELECT es_drop_snapshot_policy('snap_pol_weighted'::regproc);
SELECT es_drop_snapshot_policy('snap_pol_weighted'::regproc);
SELECT es_drop_snapshot_policy('snap_pol_sum'::regproc);
SELECT count(*) FROM es_snapshot_policies;
SELECT snap_pol_append('snap-pol-2', 150);
SELECT es_aggregate('snap-pol-2', 'snap_pol_weighted'::regproc, '{"sum": 0}');
SELECT es_aggregate('snap-pol-2', 'snap_pol_weighted'::regproc, '{"sum": 0}');
SELECT count(*) AS kept FROM es_snapshots WHERE reducer = 'public.snap_pol_weighted';
RESET es_pg.log_replay;
