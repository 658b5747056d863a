-- Attack: read what row-level security or missing grants should hide.
-- es_events carries a tenant policy; a tenant's role reads through es_pg's
-- functions and views.  Promise: es_pg's readers give what SELECT on
-- es_events would give the caller, or refuse (42501) while row-level
-- security applies to it; the public status view shows payload-derived
-- text (a handler's error message) only to roles that may read events.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS es_pg;
DROP ROLE IF EXISTS regress_rls_tenant_a;
DROP ROLE IF EXISTS regress_rls_nobody;
RESET client_min_messages;

CREATE ROLE regress_rls_tenant_a;
CREATE ROLE regress_rls_nobody;
SELECT es_grant_reader('regress_rls_tenant_a');
SELECT es_append('rls-a-1', 'Opened', '{"tenant": "a", "ssn": "111-11-1111"}') AS v;
SELECT es_append('rls-b-1', 'Opened', '{"tenant": "b", "ssn": "222-22-2222"}') AS v;
CREATE FUNCTION rls_reducer(state jsonb, e es_events) RETURNS jsonb LANGUAGE sql
	AS $$ SELECT state || e.data $$;
SELECT es_save_snapshot('rls-b-1', 1, '{"ssn": "222-22-2222"}');

BEGIN;
ALTER TABLE es_events ENABLE ROW LEVEL SECURITY;
CREATE POLICY rls_tenant ON es_events FOR SELECT TO regress_rls_tenant_a
	USING (data->>'tenant' = 'a');
SET ROLE regress_rls_tenant_a;
-- what the policy lets the tenant see
SELECT stream_id FROM es_events WHERE stream_id LIKE 'rls-%' ORDER BY 1;
SELECT stream_id, events FROM es_streams WHERE stream_id LIKE 'rls-%' ORDER BY 1;
-- es_pg's readers refuse rather than show tenant b
CREATE FUNCTION pg_temp.try(sql text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE sql;
	RETURN 'allowed';
EXCEPTION WHEN OTHERS THEN
	RETURN SQLSTATE;
END $$;
SELECT label, pg_temp.try(sql) AS sqlstate FROM (VALUES
	('es_read_all', $$SELECT count(*) FROM es_read_all(0, 1000)$$),
	('es_read_stream', $$SELECT count(*) FROM es_read_stream('rls-b-1')$$),
	('es_read_stream_backward', $$SELECT count(*) FROM es_read_stream_backward('rls-b-1')$$),
	('es_stream_version', $$SELECT es_stream_version('rls-b-1')$$),
	('es_head_position', $$SELECT es_head_position()$$),
	('es_aggregate', $$SELECT es_aggregate('rls-b-1', 'rls_reducer(jsonb,es_events)')$$),
	('es_load_snapshot', $$SELECT count(*) FROM es_load_snapshot('rls-b-1')$$),
	('es_load_snapshot of a reducer', $$SELECT count(*) FROM es_load_snapshot('rls-b-1', NULL)$$)
) AS t(label, sql);
SAVEPOINT message;
SELECT count(*) FROM es_read_all(0, 1000);
ROLLBACK TO message;
RESET ROLE;
-- roles the policy does not restrict read as before
SELECT count(*) > 0 AS owner_reads FROM es_read_stream('rls-b-1');
ROLLBACK;

-- a handler's error message can carry a payload value (in a transaction
-- rolled back at the end, out of the background worker's sight)
CREATE FUNCTION rls_failing(e es_events) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION 'bad ssn %', e.data->>'ssn';
END $$;
BEGIN;
SELECT es_create_projection('rls_failing', 'rls_failing(es_events)', ARRAY['Opened'], 'async');
SET LOCAL client_min_messages = error;
SELECT es_apply_projections('rls_failing') AS applied;
RESET client_min_messages;
-- a role with no grants sees that the projection failed, not the message
SET LOCAL ROLE regress_rls_nobody;
SELECT name, state, error_sqlstate, last_error FROM es_projection_status
 WHERE name = 'rls_failing';
RESET ROLE;
-- a role that may read events sees it
SET LOCAL ROLE regress_rls_tenant_a;
SELECT name, state, error_sqlstate, last_error FROM es_projection_status
 WHERE name = 'rls_failing';
RESET ROLE;
ROLLBACK;

SELECT es_drop_snapshots(NULL, 'rls-b-1');
DROP FUNCTION rls_failing(es_events);
DROP FUNCTION rls_reducer(jsonb, es_events);
SELECT es_revoke_reader('regress_rls_tenant_a');
DROP ROLE regress_rls_tenant_a;
DROP ROLE regress_rls_nobody;
