-- async projections applied by es_apply_projections: checkpoints, lag,
-- failures that park the event, resume, rebuild.  Everything runs in one transaction
-- that is rolled back at the end, so the background worker never sees it
-- (projection_worker tests the worker).
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS es_pg;
RESET client_min_messages;

CREATE SCHEMA proj_async;
SET search_path = proj_async, public;

-- a read model that counts each event id, so that a double apply shows
CREATE TABLE seen (event_id uuid PRIMARY KEY, stream_id text NOT NULL,
				   n integer NOT NULL);
CREATE FUNCTION seen_apply(event es_events) RETURNS void
LANGUAGE sql AS $$
	INSERT INTO proj_async.seen VALUES (event.event_id, event.stream_id, 1)
	ON CONFLICT (event_id) DO UPDATE SET n = seen.n + 1
$$;
CREATE FUNCTION seen_reset() RETURNS void
LANGUAGE sql AS $$ DELETE FROM proj_async.seen $$;

-- a handler that chokes on poisoned events
CREATE TABLE fragile (event_id uuid PRIMARY KEY);
CREATE FUNCTION fragile_apply(event es_events) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	IF event.data ? 'poison' THEN
		RAISE EXCEPTION 'poisoned event %', event.data->>'poison'
			USING ERRCODE = 'EP001';
	END IF;
	INSERT INTO proj_async.fragile VALUES (event.event_id);
END
$$;

-- argument errors, outside the transaction below
\set VERBOSITY sqlstate
SELECT es_apply_projections('pa_nope');
SELECT es_apply_projections(max_events => 0);
SELECT es_resume_projection('pa_nope');
SELECT es_wait_for_projection('pa_nope', 1, '1 s');
SELECT es_wait_for_projection('pa_x', -1, '1 s');
SELECT es_wait_for_projection('pa_x', 1, '-1 s');
SELECT es_create_projection('pa_x', 'seen_apply(es_events)', mode => 'ASYNC');
\set VERBOSITY default
\set VERBOSITY sqlstate
SELECT es_wait_for_projection('pa_x', 1, NULL);
SELECT es_wait_for_projection('pa_x', NULL, '1 s');
\set VERBOSITY default

BEGIN;
SELECT es_create_projection('pa_seen', 'seen_apply(es_events)',
	ARRAY['PaEvent', 'PaOther'], 'async', 'seen_reset()', from_beginning => false);
SELECT position = head_position AS starts_at_head, state, lag_events
  FROM es_projection_status WHERE name = 'pa_seen';

-- appends do not touch the read model; the status shows the lag
SELECT es_append_batch('pa-1', $$[
	{"type": "PaEvent", "data": {"i": 1}},
	{"type": "PaEvent", "data": {"i": 2}},
	{"type": "PaIgnored", "data": {"i": 3}},
	{"type": "PaOther", "data": {"i": 4}}
]$$);
SELECT count(*) FROM seen;
SELECT state, lag_events, lag_time > '0' AS lag_time_shown
  FROM es_projection_status WHERE name = 'pa_seen';

-- applying catches up: three handler calls, one event skipped by type
SELECT es_apply_projections('pa_seen');
SELECT count(*), max(n) FROM seen;
SELECT state, lag_events, lag_time, position = head_position AS at_head
  FROM es_projection_status WHERE name = 'pa_seen';
SELECT es_apply_projections('pa_seen');

-- waiting: true once applied, false on timeout for a position not reached
SELECT es_wait_for_projection('pa_seen', es_head_position(), '1 s');
SELECT es_append('pa-1', 'PaEvent', '{"i": 5}');
SELECT es_wait_for_projection('pa_seen', es_head_position(), '100 ms');

-- max_events bounds a call
SELECT es_append_batch('pa-1', $$[
	{"type": "PaEvent", "data": {"i": 6}},
	{"type": "PaEvent", "data": {"i": 7}}
]$$);
SELECT es_apply_projections('pa_seen', 2);
SELECT lag_events FROM es_projection_status WHERE name = 'pa_seen';
SELECT es_apply_projections();
SELECT es_wait_for_projection('pa_seen', es_head_position(), '1 s');
SELECT count(*), max(n) FROM seen;

-- a failing handler: the good prefix is applied, the checkpoint stops just
-- before the failing event, the error is recorded; after
-- es_pg.projection_retries attempts the event is parked in its
-- subscription and the projection goes on after it
-- (projection_subscription tests the mechanism in detail)
SET es_pg.projection_retries = 2;
SELECT es_create_projection('pa_fragile', 'fragile_apply(es_events)',
	ARRAY['PaEvent'], 'async', from_beginning => false);
RESET es_pg.projection_retries;
SELECT es_append_batch('pa-2', $$[
	{"type": "PaEvent", "data": {"i": 1}},
	{"type": "PaEvent", "data": {"i": 2}},
	{"type": "PaEvent", "data": {"poison": "arsenic"}},
	{"type": "PaEvent", "data": {"i": 4}}
]$$);
CREATE TEMP TABLE poison AS
	SELECT global_position AS p FROM es_events
	 WHERE stream_id = 'pa-2' AND data ? 'poison';
SET client_min_messages = error;
SELECT es_apply_projections('pa_fragile');
RESET client_min_messages;
SELECT count(*) FROM fragile;
SELECT s.state, s.retries, s.last_error, s.error_sqlstate,
	   s.error_position = p.p AS error_at_poison,
	   s.position = p.p - 1 AS stopped_before_it,
	   s.lag_events, s.error_at IS NOT NULL AS error_time_shown, s.parked
  FROM es_projection_status s, poison p WHERE s.name = 'pa_fragile';

-- failures are reported to whoever applies, as warnings; the second
-- attempt parks the event and the events after it are applied
\set VERBOSITY terse
SELECT es_apply_projections('pa_fragile');
\set VERBOSITY default
SELECT count(*) FROM fragile;
SELECT state, retries, parked, lag_events
  FROM es_projection_status WHERE name = 'pa_fragile';
SELECT k.position = p.p AS is_poison, k.attempts, k.last_error, k.replay
  FROM es_parked_events k, poison p WHERE k.subscription = 'pa_fragile';

-- a parked event does not hold the projection: waits succeed, appends are
-- applied, other projections carry on
SELECT es_wait_for_projection('pa_fragile', es_head_position(), '100 ms');
SELECT es_append('pa-2', 'PaEvent', '{"i": 5}');
SELECT es_apply_projections('pa_seen');
SELECT state, lag_events FROM es_projection_status WHERE name = 'pa_seen';
SELECT es_apply_projections('pa_fragile');
SELECT state, lag_events FROM es_projection_status WHERE name = 'pa_fragile';

-- fix the handler, resume (es_replay_parked of its subscription): the
-- parked event is applied, once, and the error is history
CREATE OR REPLACE FUNCTION fragile_apply(event es_events) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO proj_async.fragile VALUES (event.event_id);
END
$$;
SELECT es_resume_projection('pa_fragile');
SELECT state, parked FROM es_projection_status WHERE name = 'pa_fragile';
SELECT es_apply_projections('pa_fragile');
SELECT es_apply_projections('pa_fragile');
SELECT count(*) FROM fragile;
SELECT state, retries, parked, last_error, error_position, lag_events
  FROM es_projection_status WHERE name = 'pa_fragile';

-- a projection created late starts from the beginning of history
CREATE TABLE late (event_id uuid PRIMARY KEY);
CREATE FUNCTION late_apply(event es_events) RETURNS void
LANGUAGE sql AS $$ INSERT INTO proj_async.late VALUES (event.event_id) $$;
SELECT es_create_projection('pa_late', 'late_apply(es_events)',
	ARRAY['PaEvent'], 'async');
SELECT position, state FROM es_projection_status WHERE name = 'pa_late';
SELECT es_apply_projections('pa_late') =
	(SELECT count(*) FROM es_events WHERE event_type = 'PaEvent') AS all_history;
SELECT count(*) AS missing FROM es_events e
 WHERE e.event_type = 'PaEvent'
   AND NOT EXISTS (SELECT 1 FROM late l WHERE l.event_id = e.event_id);

-- rebuild gives the read model live projection built
CREATE TEMP TABLE seen_live AS SELECT * FROM seen;
SELECT es_rebuild_projection('pa_seen') = (SELECT count(*) FROM seen_live)
	AS same_count;
SELECT count(*) AS differences FROM (
	(SELECT * FROM seen EXCEPT SELECT * FROM seen_live)
	UNION ALL
	(SELECT * FROM seen_live EXCEPT SELECT * FROM seen)) d;
SELECT state, lag_events FROM es_projection_status WHERE name = 'pa_seen';

-- no rebuild is running now, so no progress is listed
SELECT count(*) FROM es_projection_progress();

-- inline projections are not applied by hand
CREATE FUNCTION noop_apply(event es_events) RETURNS void
LANGUAGE sql AS $$ SELECT $$;
SELECT es_create_projection('pa_inline', 'noop_apply(es_events)');
SAVEPOINT s;
\set VERBOSITY sqlstate
SELECT es_apply_projections('pa_inline');
\set VERBOSITY default
ROLLBACK TO SAVEPOINT s;

-- dropping stops the projection
SELECT es_drop_projection('pa_late');
SELECT name FROM es_projection_status WHERE name LIKE 'pa\_%' ORDER BY name;
ROLLBACK;

SELECT count(*) FROM es_projections WHERE name LIKE 'pa\_%';
RESET search_path;
DROP SCHEMA proj_async CASCADE;
