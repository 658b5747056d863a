-- idempotent retries by event id
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS es_pg;
RESET client_min_messages;

CREATE FUNCTION pg_temp.err(sql text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE state text; msg text; detail text; cons text;
BEGIN
	EXECUTE sql;
	RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, msg = MESSAGE_TEXT,
		detail = PG_EXCEPTION_DETAIL, cons = CONSTRAINT_NAME;
	RETURN concat_ws(E'\n', state, msg, 'detail: ' || nullif(detail, ''),
		'constraint: ' || nullif(cons, ''));
END $$;

-- a single append retried with the same id: nothing written, same version
SELECT es_append('idem-1', 'Created', '{}', 0, NULL, 'b0000000-0000-4000-8000-000000000001');
SELECT es_append('idem-1', 'Created', '{}', 0, NULL, 'b0000000-0000-4000-8000-000000000001');
SELECT es_append('idem-1', 'Created', '{}', 7, NULL, 'b0000000-0000-4000-8000-000000000001');
SELECT count(*) FROM es_events WHERE stream_id = 'idem-1';

-- the retry answers with the version of its own event even after the
-- stream moved on
SELECT es_append('idem-1', 'Changed', '{}', 1);
SELECT es_append('idem-1', 'Created', '{}', 0, NULL, 'b0000000-0000-4000-8000-000000000001');

-- a batch retried: the same ids, same order, same stream
SELECT es_append_batch('idem-1', $$[
	{"type": "A", "data": {}, "id": "b0000000-0000-4000-8000-000000000002"},
	{"type": "B", "data": {}, "id": "b0000000-0000-4000-8000-000000000003"},
	{"type": "C", "data": {}, "id": "b0000000-0000-4000-8000-000000000004"}
]$$, 2);
SELECT es_append_batch('idem-1', $$[
	{"type": "A", "data": {}, "id": "b0000000-0000-4000-8000-000000000002"},
	{"type": "B", "data": {}, "id": "b0000000-0000-4000-8000-000000000003"},
	{"type": "C", "data": {}, "id": "b0000000-0000-4000-8000-000000000004"}
]$$, 2);
SELECT count(*) FROM es_events WHERE stream_id = 'idem-1';

-- the same ids in another stream: 23505 on es_events_event_id_key
SELECT pg_temp.err($$SELECT es_append('idem-2', 'Created', '{}', 0, NULL, 'b0000000-0000-4000-8000-000000000001')$$);
-- a partial overlap (a prefix of the committed batch)
SELECT pg_temp.err($$SELECT es_append_batch('idem-1', '[
	{"type": "A", "data": {}, "id": "b0000000-0000-4000-8000-000000000002"},
	{"type": "B", "data": {}, "id": "b0000000-0000-4000-8000-000000000003"},
	{"type": "X", "data": {}, "id": "b0000000-0000-4000-8000-00000000000f"}
]')$$);
-- the same ids in another order
SELECT pg_temp.err($$SELECT es_append_batch('idem-1', '[
	{"type": "B", "data": {}, "id": "b0000000-0000-4000-8000-000000000003"},
	{"type": "A", "data": {}, "id": "b0000000-0000-4000-8000-000000000002"}
]')$$);
-- a known id next to new events without ids
SELECT pg_temp.err($$SELECT es_append_batch('idem-1', '[
	{"type": "New", "data": {}},
	{"type": "A", "data": {}, "id": "b0000000-0000-4000-8000-000000000002"}
]')$$);
-- a known id at another position of a new batch
SELECT pg_temp.err($$SELECT es_append_batch('idem-1', '[
	{"type": "New", "data": {}, "id": "b0000000-0000-4000-8000-0000000000aa"},
	{"type": "A", "data": {}, "id": "b0000000-0000-4000-8000-000000000002"}
]')$$);
-- the same id twice in one call
SELECT pg_temp.err($$SELECT es_append_batch('idem-3', '[
	{"type": "A", "data": {}, "id": "b0000000-0000-4000-8000-0000000000bb"},
	{"type": "B", "data": {}, "id": "b0000000-0000-4000-8000-0000000000bb"}
]')$$);

-- none of the refused calls wrote anything
SELECT stream_id, count(*) FROM es_events
 WHERE stream_id LIKE 'idem-%' GROUP BY stream_id ORDER BY stream_id;
SELECT count(*) FROM es_events
 WHERE event_id IN ('b0000000-0000-4000-8000-00000000000f',
					'b0000000-0000-4000-8000-0000000000aa',
					'b0000000-0000-4000-8000-0000000000bb');

-- a retry inside the transaction that appended is also recognized
BEGIN;
SELECT es_append('idem-4', 'A', '{}', 0, NULL, 'b0000000-0000-4000-8000-0000000000cc');
SELECT es_append('idem-4', 'A', '{}', 0, NULL, 'b0000000-0000-4000-8000-0000000000cc');
COMMIT;
SELECT count(*) FROM es_events WHERE stream_id = 'idem-4';
