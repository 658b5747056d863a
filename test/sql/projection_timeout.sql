-- Attack: an async handler that never returns, or cancels itself, wedges
-- its projection.  Promise: after its timeout (es_pg.projection_handler_timeout,
-- or the projection's own) a batch is canceled and counts as a handler
-- error, SQLSTATE 57014, retried and then parked like any other; the events
-- before and after it are applied.  The worker's side, and taking over a stuck
-- projection, are in test/t/062_worker_attacks.pl.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS es_pg;
RESET client_min_messages;

-- in one transaction rolled back at the end, out of the background
-- worker's sight
BEGIN;
CREATE TABLE timeout_model (position bigint PRIMARY KEY);
CREATE FUNCTION timeout_handler(e es_events) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	IF e.event_type = 'Slow' THEN
		PERFORM pg_sleep(30);
	END IF;
	INSERT INTO timeout_model VALUES (e.global_position);
END $$;
SELECT es_create_projection('timeout_proj', 'timeout_handler(es_events)', ARRAY['Fast', 'Slow'], 'async', NULL, false);
SELECT es_set_projection_timeout('timeout_proj', '200 ms');
SELECT es_append('timeout-1', 'Fast', '{}') AS v, es_append('timeout-1', 'Slow', '{}') AS v2,
	   es_append('timeout-1', 'Fast', '{}') AS v3;

-- three attempts, each canceled after 200 ms; the first event is applied,
-- the third parks the slow one and the projection goes on after it
SET LOCAL client_min_messages = error;
SELECT clock_timestamp() AS started \gset
SELECT es_apply_projections('timeout_proj') AS applied;
SELECT es_apply_projections('timeout_proj') AS applied;
SELECT state, error_sqlstate, retries, last_error FROM es_projection_status
 WHERE name = 'timeout_proj';
SELECT es_apply_projections('timeout_proj') AS applied;
SELECT clock_timestamp() - :'started' < interval '10 s' AS quick;
RESET client_min_messages;
SELECT state, parked, lag_events FROM es_projection_status
 WHERE name = 'timeout_proj';
SELECT event_type, attempts, last_error FROM es_parked_events
 WHERE subscription = 'timeout_proj';
SELECT count(*) AS applied_rows FROM timeout_model;

-- a handler that raises 57014 itself, in a session, is the caller's cancel
CREATE OR REPLACE FUNCTION timeout_handler(e es_events) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION 'handler gives up' USING ERRCODE = 'query_canceled';
END $$;
SELECT es_resume_projection('timeout_proj');
SAVEPOINT cancel;
\set VERBOSITY sqlstate
SELECT es_apply_projections('timeout_proj');
\set VERBOSITY default
ROLLBACK TO cancel;
ROLLBACK;
