-- Attack: exhaust memory or hold the store with huge input.
-- Promise: one event, one batch and the number of events of a batch are
-- capped (54000, nothing written); only superusers raise the caps; a
-- huge timeout is a long wait, not an error.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS es_pg;
DROP ROLE IF EXISTS regress_limits;
RESET client_min_messages;
CREATE ROLE regress_limits;
SELECT es_grant_appender('regress_limits');
SELECT es_append('limits-0', 'Seed', '{}') AS v;
SELECT last_value AS seq_before FROM es_events_position_seq \gset

-- one event: data and metadata together
SET es_pg.max_event_bytes = '4kB';
\set VERBOSITY sqlstate
SELECT es_append('limits-1', 'Big', jsonb_build_object('x', repeat('a', 5000)));
SELECT es_append('limits-1', 'Big', '{}', NULL, jsonb_build_object('x', repeat('a', 5000)));
SELECT es_append_batch('limits-1', jsonb_build_array(
	jsonb_build_object('type', 'Small', 'data', '{}'::jsonb),
	jsonb_build_object('type', 'Big', 'data', jsonb_build_object('x', repeat('a', 5000)))));
\set VERBOSITY default
SELECT es_append_batch('limits-1', jsonb_build_array(
	jsonb_build_object('type', 'Small', 'data', '{}'::jsonb),
	jsonb_build_object('type', 'Big', 'data', jsonb_build_object('x', repeat('a', 5000)))));
SELECT es_append('limits-1', 'Fits', jsonb_build_object('x', repeat('a', 3000))) AS v;
RESET es_pg.max_event_bytes;

-- one batch
SET es_pg.max_batch_bytes = '8kB';
\set VERBOSITY sqlstate
SELECT es_append_batch('limits-2', (SELECT jsonb_agg(jsonb_build_object('type', 'T', 'data', jsonb_build_object('x', repeat('a', 100))))
									  FROM generate_series(1, 100)));
\set VERBOSITY default
RESET es_pg.max_batch_bytes;

-- events per batch: a role may lower its limit, not raise it past the
-- ceiling, which only superusers set
SET es_pg.max_append_events_ceiling = 5;
SET ROLE regress_limits;
\set VERBOSITY sqlstate
SET es_pg.max_append_events_ceiling = 1000000;
\set VERBOSITY default
SET es_pg.max_append_events = 1000000;
SELECT es_append_batch('limits-3', (SELECT jsonb_agg(jsonb_build_object('type', 'T', 'data', '{}'::jsonb))
									  FROM generate_series(1, 6)));
SELECT es_append_batch('limits-3', (SELECT jsonb_agg(jsonb_build_object('type', 'T', 'data', '{}'::jsonb))
									  FROM generate_series(1, 5))) AS v;
SET es_pg.max_append_events = 2;
\set VERBOSITY sqlstate
SELECT es_append_batch('limits-3', (SELECT jsonb_agg(jsonb_build_object('type', 'T', 'data', '{}'::jsonb))
									  FROM generate_series(1, 3)));
\set VERBOSITY default
RESET es_pg.max_append_events;
RESET ROLE;
RESET es_pg.max_append_events_ceiling;
SHOW es_pg.max_append_events_ceiling;

-- what was refused used no position
SELECT last_value - :seq_before AS positions_used,
	   (SELECT count(*) FROM es_events WHERE stream_id LIKE 'limits-_' AND stream_id <> 'limits-0') AS events_written
  FROM es_events_position_seq;
SELECT stream_id, count(*) FROM es_events WHERE stream_id LIKE 'limits-%'
 GROUP BY 1 ORDER BY 1;

-- a timeout of a million years waits as long as needed, and no longer
CREATE FUNCTION limits_handler(e es_events) RETURNS void LANGUAGE sql AS $$ SELECT $$;
SELECT es_create_projection('limits_inline', 'limits_handler(es_events)');
SELECT es_wait_for_projection('limits_inline', es_head_position(), '1000000 years') AS reached;
\set VERBOSITY sqlstate
SELECT es_wait_for_projection('limits_inline', 1, '-1000000 years');
SELECT es_set_projection_timeout('limits_inline', '0.5 ms');
SELECT es_set_projection_timeout('limits_inline', '1000000 years');
\set VERBOSITY default
SELECT es_set_projection_timeout('limits_inline', '2 s');
SELECT handler_timeout_ms FROM es_projections WHERE name = 'limits_inline';
SELECT es_set_projection_timeout('limits_inline', NULL);
SELECT handler_timeout_ms FROM es_projections WHERE name = 'limits_inline';
SELECT es_drop_projection('limits_inline');
DROP FUNCTION limits_handler(es_events);

SELECT es_revoke_reader('regress_limits');
DROP ROLE regress_limits;
