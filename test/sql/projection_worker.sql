-- the background worker applies async projections with no call from the
-- application: append, then wait (bounded) for the read model to catch up.
-- Needs es_pg in shared_preload_libraries, as the test clusters have.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS es_pg;
RESET client_min_messages;

CREATE SCHEMA proj_worker;
SET search_path = proj_worker, public;
CREATE TABLE seen (event_id uuid PRIMARY KEY, n integer NOT NULL);
CREATE FUNCTION seen_apply(event es_events) RETURNS void
LANGUAGE sql AS $$
	INSERT INTO proj_worker.seen VALUES (event.event_id, 1)
	ON CONFLICT (event_id) DO UPDATE SET n = seen.n + 1
$$;
SELECT es_create_projection('pw_seen', 'seen_apply(es_events)',
	ARRAY['PwEvent'], 'async');

-- one event, then a batch: nothing but the worker applies them
SELECT es_append('pw-1', 'PwEvent', '{"i": 1}');
SELECT global_position AS pos FROM es_events
 WHERE stream_id = 'pw-1' AND version = 1 \gset
SELECT es_wait_for_projection('pw_seen', :pos, '30 s') AS applied;
SELECT count(*), max(n) FROM seen;

SELECT es_append_batch('pw-1', (
	SELECT jsonb_agg(jsonb_build_object('type', 'PwEvent',
										'data', jsonb_build_object('i', i)))
	  FROM generate_series(2, 200) i));
SELECT es_head_position() AS head \gset
SELECT es_wait_for_projection('pw_seen', :head, '30 s') AS applied;
SELECT count(*), max(n) FROM seen;
SELECT state, lag_events, position = head_position AS at_head
  FROM es_projection_status WHERE name = 'pw_seen';

-- the worker shows in pg_stat_activity
SELECT count(*) > 0 AS worker_running FROM pg_stat_activity
 WHERE backend_type = 'es_pg projection worker'
   AND datname = current_database();

-- a manual apply at the same time never applies twice
SELECT es_append_batch('pw-2', (
	SELECT jsonb_agg(jsonb_build_object('type', 'PwEvent',
										'data', jsonb_build_object('i', i)))
	  FROM generate_series(1, 50) i));
SELECT es_apply_projections('pw_seen') <= 50 AS at_most_once;
SELECT es_head_position() AS head \gset
SELECT es_wait_for_projection('pw_seen', :head, '30 s') AS applied;
SELECT count(*), max(n) FROM seen;

SELECT es_drop_projection('pw_seen');
RESET search_path;
DROP SCHEMA proj_worker CASCADE;
