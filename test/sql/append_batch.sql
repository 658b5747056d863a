-- es_append_batch: all events, in order, atomically
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS es_pg;
RESET client_min_messages;

SELECT es_append_batch('batch-1', $$[
	{"type": "AccountCreated", "data": {"owner": "Alice", "initial_deposit": 1000}},
	{"type": "MoneyDeposited", "data": {"amount": 500}, "metadata": {"user": "alice"}},
	{"type": "MoneyWithdrawn", "data": {"amount": 200}, "metadata": null, "id": null},
	{"type": "MoneyDeposited", "data": {"amount": 5}, "id": "aaaaaaaa-0000-4000-8000-000000000001"}
]$$);
SELECT version, event_type, data, metadata FROM es_events
 WHERE stream_id = 'batch-1' ORDER BY version;
SELECT event_id FROM es_events WHERE stream_id = 'batch-1' AND version = 4;

-- positions are consecutive within a batch, and one recorded_at per call
SELECT max(global_position) - min(global_position) + 1 AS span,
	   count(*) AS events,
	   count(DISTINCT recorded_at) AS timestamps
  FROM es_events WHERE stream_id = 'batch-1';

-- uuids written without hyphens are accepted
SELECT es_append_batch('batch-1',
	'[{"type": "X", "data": {}, "id": "AAAAAAAA00004000800000000000000A"}]', 4);
SELECT event_id FROM es_events WHERE stream_id = 'batch-1' AND version = 5;

-- a batch continues the stream's numbering
SELECT es_append('batch-2', 'A', '{}');
SELECT es_append_batch('batch-2', '[{"type": "B", "data": {}}, {"type": "C", "data": {}}]', 1);
SELECT version, event_type FROM es_events WHERE stream_id = 'batch-2' ORDER BY version;

-- all or nothing: a bad element anywhere means no event is written
\set VERBOSITY sqlstate
SELECT es_append_batch('batch-3', $$[
	{"type": "A", "data": {}},
	{"type": "B", "data": {}},
	{"type": "C", "data": 42}
]$$);
\set VERBOSITY default
SELECT count(*) FROM es_events WHERE stream_id = 'batch-3';

-- a batch that fails inside a transaction leaves the earlier appends alone
BEGIN;
SELECT es_append('batch-4', 'A', '{}');
SAVEPOINT s;
\set VERBOSITY sqlstate
SELECT es_append_batch('batch-4', '[{"type": "B", "data": {}}]', 5);
\set VERBOSITY default
ROLLBACK TO SAVEPOINT s;
SELECT es_append_batch('batch-4', '[{"type": "B", "data": {}}]', 1);
COMMIT;
SELECT version, event_type FROM es_events WHERE stream_id = 'batch-4' ORDER BY version;

-- a large batch: 5,000 events in one call, numbered 1..5000 in order
SELECT es_append_batch('batch-big',
	(SELECT jsonb_agg(jsonb_build_object('type', 'Tick', 'data', jsonb_build_object('n', i))
					  ORDER BY i)
	   FROM generate_series(1, 5000) i));
SELECT count(*) AS events, min(version), max(version),
	   bool_and((data->>'n')::int = version) AS in_order,
	   max(global_position) - min(global_position) + 1 AS span
  FROM es_events WHERE stream_id = 'batch-big';

-- es_pg.max_append_events bounds one call
SET es_pg.max_append_events = 3;
\set VERBOSITY sqlstate
SELECT es_append_batch('batch-5', '[{"type":"A","data":{}},{"type":"A","data":{}},{"type":"A","data":{}},{"type":"A","data":{}}]');
\set VERBOSITY default
SELECT es_append_batch('batch-5', '[{"type":"A","data":{}},{"type":"A","data":{}},{"type":"A","data":{}}]');
RESET es_pg.max_append_events;
