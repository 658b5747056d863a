-- es_append: versions, return values, stored columns
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS es_pg;
RESET client_min_messages;

-- the design notes' story: versions 1, 2, 3 and the new version returned
SELECT es_append('append-acc-1', 'AccountCreated',
	'{"account_id": "append-acc-1", "owner": "Alice", "initial_deposit": 1000}', 0);
SELECT es_append('append-acc-1', 'MoneyDeposited', '{"amount": 500}', 1);
SELECT es_append('append-acc-1', 'MoneyWithdrawn', '{"amount": 200}',
	metadata => '{"user": "alice", "ip": "10.0.0.1"}');

SELECT version, event_type, data, metadata
  FROM es_events WHERE stream_id = 'append-acc-1' ORDER BY version;

-- global positions increase in append order
SELECT bool_and(global_position > prev) AS increasing
  FROM (SELECT global_position,
			   lag(global_position, 1, 0::bigint) OVER (ORDER BY version) AS prev
		  FROM es_events WHERE stream_id = 'append-acc-1') s;

-- a fresh random (version 4) uuid when event_id is NULL
SELECT count(DISTINCT event_id) AS ids,
	   bool_and(substr(event_id::text, 15, 1) = '4') AS version_4
  FROM es_events WHERE stream_id = 'append-acc-1';

-- a caller-supplied event id is stored as given
SELECT es_append('append-acc-2', 'AccountCreated', '{"owner": "Bob"}',
	event_id => '11111111-2222-4333-8444-555555555555');
SELECT event_id FROM es_events WHERE stream_id = 'append-acc-2';

-- -1 and NULL mean no check
SELECT es_append('append-acc-2', 'MoneyDeposited', '{"amount": 1}', -1);
SELECT es_append('append-acc-2', 'MoneyDeposited', '{"amount": 2}', NULL);

-- recorded_at is set, and not in the future
SELECT bool_and(recorded_at <= clock_timestamp()) AS recorded
  FROM es_events WHERE stream_id LIKE 'append-acc-%';

-- streams are independent
SELECT es_stream_version('append-acc-1') AS acc1,
	   es_stream_version('append-acc-2') AS acc2,
	   es_stream_version('append-none') AS none;

-- several appends in one transaction see each other
BEGIN;
SELECT es_append('append-tx', 'A', '{}', 0);
SELECT es_append('append-tx', 'B', '{}', 1);
SELECT es_stream_version('append-tx');
ROLLBACK;
-- and a rolled-back transaction leaves nothing
SELECT es_stream_version('append-tx');
SELECT count(*) FROM es_events WHERE stream_id = 'append-tx';

-- stream ids and types are text of any script; "C" collation, exact match
SELECT es_append('append-Ünïcødé-流-🚀', 'Ünïcødé-type', '{"x": "🚀"}');
SELECT stream_id, event_type, data FROM es_events
 WHERE stream_id = 'append-Ünïcødé-流-🚀';
SELECT es_stream_version('APPEND-ÜNÏCØDÉ-流-🚀') AS other_case;

-- the table is described in the catalog
SELECT attname, format_type(atttypid, atttypmod), attnotnull
  FROM pg_attribute
 WHERE attrelid = 'es_events'::regclass AND attnum > 0 ORDER BY attnum;
-- (NOT NULL constraints, listed here since PostgreSQL 18, are the
-- attnotnull column above)
SELECT conname, contype FROM pg_constraint
 WHERE conrelid = 'es_events'::regclass AND contype <> 'n' ORDER BY conname;

-- a constraint an administrator adds to es_events applies to appends too
BEGIN;
ALTER TABLE es_events ADD CONSTRAINT small_events
	CHECK (octet_length(data::text) < 100) NOT VALID;
\set VERBOSITY sqlstate
SELECT es_append('append-big', 'Big', jsonb_build_object('text', repeat('x', 200)));
\set VERBOSITY default
ROLLBACK;
SELECT count(*) FROM es_events WHERE stream_id = 'append-big';
