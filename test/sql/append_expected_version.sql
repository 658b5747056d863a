-- expected version: every case, the 40001 error and what it carries
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS es_pg;
RESET client_min_messages;

-- err(sql) runs a statement and shows the error fields a client sees
CREATE FUNCTION pg_temp.err(sql text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	state text; msg text; detail text; hint text; cons text; tab text;
BEGIN
	EXECUTE sql;
	RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, msg = MESSAGE_TEXT,
		detail = PG_EXCEPTION_DETAIL, hint = PG_EXCEPTION_HINT,
		cons = CONSTRAINT_NAME, tab = TABLE_NAME;
	RETURN concat_ws(E'\n', state, msg, 'detail: ' || nullif(detail, ''),
		'hint: ' || nullif(hint, ''), 'constraint: ' || nullif(cons, ''),
		'table: ' || nullif(tab, ''));
END $$;

-- 0: the stream must not exist yet
SELECT es_append('ev-1', 'Created', '{}', 0);
SELECT pg_temp.err($$SELECT es_append('ev-1', 'Created', '{}', 0)$$);

-- N > 0: the stream must be exactly at N
SELECT es_append('ev-1', 'Changed', '{}', 1);
SELECT pg_temp.err($$SELECT es_append('ev-1', 'Changed', '{}', 1)$$);
SELECT pg_temp.err($$SELECT es_append('ev-1', 'Changed', '{}', 3)$$);
SELECT pg_temp.err($$SELECT es_append('ev-new', 'Changed', '{}', 1)$$);

-- -2: the stream must exist
SELECT es_append('ev-1', 'Changed', '{}', -2);
SELECT pg_temp.err($$SELECT es_append('ev-missing', 'Changed', '{}', -2)$$);

-- -1 and NULL: no check
SELECT es_append('ev-1', 'Changed', '{}', -1);
SELECT es_append('ev-1', 'Changed', '{}');

-- anything else: 22023, nothing written
SELECT pg_temp.err($$SELECT es_append('ev-1', 'Changed', '{}', -3)$$);
SELECT pg_temp.err($$SELECT es_append('ev-1', 'Changed', '{}', -9223372036854775808)$$);

-- a failed check writes nothing
SELECT version, event_type FROM es_events WHERE stream_id = 'ev-1' ORDER BY version;
SELECT count(*) FROM es_events WHERE stream_id IN ('ev-new', 'ev-missing');

-- the same rules hold for es_append_batch
SELECT es_append_batch('ev-2', '[{"type": "A", "data": {}}, {"type": "B", "data": {}}]', 0);
SELECT pg_temp.err($$SELECT es_append_batch('ev-2', '[{"type": "C", "data": {}}]', 1)$$);
SELECT pg_temp.err($$SELECT es_append_batch('ev-2', '[{"type": "C", "data": {}}]', 0)$$);
SELECT pg_temp.err($$SELECT es_append_batch('ev-3', '[{"type": "C", "data": {}}]', -2)$$);
SELECT pg_temp.err($$SELECT es_append_batch('ev-2', '[{"type": "C", "data": {}}]', -7)$$);
SELECT es_append_batch('ev-2', '[{"type": "C", "data": {}}]', 2);
SELECT es_append_batch('ev-2', '[{"type": "D", "data": {}}]', -2);
SELECT version, event_type FROM es_events WHERE stream_id = 'ev-2' ORDER BY version;

-- the conflict is a serialization failure: a retry loop re-runs the command
DO $$
DECLARE
	attempts int := 0;
	v bigint;
BEGIN
	LOOP
		attempts := attempts + 1;
		BEGIN
			-- the first attempt uses a stale version, like a command that
			-- loaded the stream before somebody else appended
			v := es_append('ev-2', 'Retried', '{}',
						   CASE WHEN attempts = 1 THEN 1
								ELSE es_stream_version('ev-2') END);
			EXIT;
		EXCEPTION WHEN serialization_failure THEN
			RAISE NOTICE 'attempt % failed with 40001, retrying', attempts;
		END;
	END LOOP;
	RAISE NOTICE 'appended version % after % attempts', v, attempts;
END $$;
