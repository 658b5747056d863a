-- event schema evolution: the registry, validation at append, upcasters on
-- every read path, the stored rows unchanged
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS es_pg;
DROP ROLE IF EXISTS regress_evo_admin;
DROP ROLE IF EXISTS regress_evo_reader;
DROP ROLE IF EXISTS regress_evo_appender;
RESET client_min_messages;

CREATE ROLE regress_evo_admin;
CREATE ROLE regress_evo_reader;
CREATE ROLE regress_evo_appender;
SELECT es_grant_admin('regress_evo_admin'), es_grant_reader('regress_evo_reader'),
	   es_grant_appender('regress_evo_appender'),
	   es_grant_appender('regress_evo_admin');
CREATE SCHEMA evo AUTHORIZATION regress_evo_admin;
SET ROLE regress_evo_admin;
SET search_path = evo, public;

-- the bank's history as it was written before the schema changed:
-- MoneyDeposited v1 {"amount": 500} and the older name FundsAdded
SELECT es_append('evo-acc-1', 'AccountCreated', '{"owner": "Alice", "initial_deposit": 1000}', 0);
SELECT es_append('evo-acc-1', 'MoneyDeposited', '{"amount": 500}', 1);
SELECT es_append('evo-acc-1', 'FundsAdded', '{"amount": 300}', 2);
SELECT es_append('evo-acc-1', 'MoneyWithdrawn', '{"amount": 200}', 3);
-- what is stored, before any registration: unregistered types record no version
CREATE TEMP TABLE stored_before AS
	SELECT * FROM es_events WHERE stream_id LIKE 'evo-%' ORDER BY global_position;
SELECT version, event_type, data, schema_version FROM stored_before ORDER BY version;

-- version 2 of MoneyDeposited: the amount carries its currency
CREATE FUNCTION money_deposited_v2(e es_events) RETURNS es_events
LANGUAGE sql IMMUTABLE AS $$
	SELECT (e.global_position, e.stream_id, e.version, e.event_id, e.event_type,
			jsonb_set(e.data, '{amount}',
					  jsonb_build_object('value', e.data->'amount', 'currency', 'EUR')),
			e.metadata, e.recorded_at, e.schema_version)::es_events $$;
-- FundsAdded is MoneyDeposited under its old name: version 1 of it
CREATE FUNCTION funds_added_renamed(e es_events) RETURNS es_events
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
	e.event_type := 'MoneyDeposited';
	e.schema_version := 1;
	RETURN e;
END $$;
SELECT es_register_event_type('MoneyDeposited', 2,
	validator => '$.amount.value > 0 && $.amount.currency like_regex "^[A-Z]{3}$"');
SELECT es_create_upcaster('MoneyDeposited', 1, 'money_deposited_v2(es_events)');
-- the old name is retired: version 2 of it refuses appends
SELECT es_register_event_type('FundsAdded', 2, validator => 'false');
SELECT es_create_upcaster('FundsAdded', 1, 'funds_added_renamed(es_events)');

-- new appends are recorded at version 2 and validated
SELECT es_append('evo-acc-1', 'MoneyDeposited',
				 '{"amount": {"value": 50, "currency": "EUR"}}', 4);

-- every read path sees the current shape
SELECT version, event_type, data, schema_version FROM es_read_stream('evo-acc-1');
SELECT version, event_type, data, schema_version
  FROM es_read_stream_backward('evo-acc-1', max_count => 3);
SELECT version, event_type, data, schema_version
  FROM es_read_all((SELECT min(global_position) - 1 FROM stored_before), 1000)
 WHERE stream_id = 'evo-acc-1';
-- the consumers' read paths: a category read, and a subscription to the
-- category's MoneyDeposited events, which gets FundsAdded under its new
-- name (the type filter sees the current shape), nacks it into the parked
-- events and has it replayed, still in its current shape
SELECT version, event_type, data, schema_version
  FROM es_read_category('evo', (SELECT min(global_position) - 1 FROM stored_before))
 WHERE stream_id = 'evo-acc-1';
SELECT es_create_subscription('evo_deposits', 'evo', ARRAY['MoneyDeposited'],
	start_position => (SELECT min(global_position) - 1 FROM stored_before),
	max_attempts => 1);
SELECT global_position - (SELECT min(global_position) FROM stored_before) AS at,
	   version, event_type, data, schema_version, attempt
  FROM es_poll('evo_deposits', consumer => 'c1');
SELECT es_nack('evo_deposits', 0, (SELECT min(global_position) + 2 FROM stored_before),
			   'cannot handle it', 'c1') AS parked;
SELECT "position" - (SELECT min(global_position) FROM stored_before) AS at,
	   event_type, attempts FROM es_parked_events WHERE subscription = 'evo_deposits';
SELECT es_replay_parked('evo_deposits');
SELECT version, event_type, data, schema_version, attempt
  FROM es_poll('evo_deposits', consumer => 'c1');
SELECT es_drop_subscription('evo_deposits');

-- the same through the reducer
CREATE FUNCTION evo_balance(state jsonb, event es_events) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
	SELECT CASE event.event_type
		WHEN 'AccountCreated' THEN jsonb_build_object('balance', (event.data->>'initial_deposit')::numeric)
		WHEN 'MoneyDeposited' THEN jsonb_build_object('balance',
			(state->>'balance')::numeric + (event.data->'amount'->>'value')::numeric,
			'currency', event.data->'amount'->>'currency')
		WHEN 'MoneyWithdrawn' THEN state || jsonb_build_object('balance',
			(state->>'balance')::numeric - (event.data->>'amount')::numeric)
		ELSE state || jsonb_build_object('unknown', event.event_type) END $$;
SELECT es_aggregate('evo-acc-1', 'evo_balance(jsonb, es_events)');
SELECT es_aggregate('evo-acc-1', 'evo_balance(jsonb, es_events)', as_of_version => 3);

-- projections: inline (built from the history), async, rebuilt
CREATE TABLE deposits (stream_id text, version bigint, event_type text,
					   amount jsonb, mode text);
CREATE FUNCTION deposits_inline(e es_events) RETURNS void LANGUAGE sql AS $$
	INSERT INTO deposits VALUES (e.stream_id, e.version, e.event_type,
								 e.data->'amount', 'inline') $$;
CREATE FUNCTION deposits_async(e es_events) RETURNS void LANGUAGE sql AS $$
	INSERT INTO deposits VALUES (e.stream_id, e.version, e.event_type,
								 e.data->'amount', 'async') $$;
CREATE FUNCTION deposits_reset() RETURNS void LANGUAGE sql AS $$
	DELETE FROM deposits WHERE mode = 'async' $$;
-- they want MoneyDeposited only: FundsAdded reaches them renamed (the async
-- one applied here or by the worker, whichever comes first)
SELECT es_create_projection('evo_inline', 'deposits_inline(es_events)',
							ARRAY['MoneyDeposited']);
SELECT es_create_projection('evo_async', 'deposits_async(es_events)',
							ARRAY['MoneyDeposited'], 'async', 'deposits_reset()');
SELECT es_apply_projections('evo_async') >= 0
	   AND es_wait_for_projection('evo_async', es_head_position(), '30 s') AS applied;
SELECT * FROM deposits WHERE stream_id LIKE 'evo-%' ORDER BY mode, version;
SELECT es_rebuild_projection('evo_async');
SELECT es_apply_projections('evo_async') >= 0
	   AND es_wait_for_projection('evo_async', es_head_position(), '30 s') AS applied;
SELECT * FROM deposits WHERE stream_id LIKE 'evo-%' AND mode = 'async' ORDER BY version;
-- an append after: inline sees it in the appending transaction, async later
SELECT es_append('evo-acc-1', 'MoneyDeposited',
				 '{"amount": {"value": 7, "currency": "EUR"}}', 5);
SELECT es_apply_projections('evo_async') >= 0
	   AND es_wait_for_projection('evo_async', es_head_position(), '30 s') AS applied;
SELECT mode, count(*) FROM deposits WHERE stream_id LIKE 'evo-%' GROUP BY mode ORDER BY mode;
SELECT es_drop_projection('evo_inline'), es_drop_projection('evo_async');

-- validation: a batch whose third event has the old shape is refused
-- whole, nothing written, no position used
RESET ROLE;
SELECT es_head_position() AS head_before \gset
SELECT last_value AS seq_before FROM es_events_position_seq \gset
SET ROLE regress_evo_admin;
\set VERBOSITY sqlstate
SELECT es_append_batch('evo-acc-2', '[
	{"type": "AccountCreated", "data": {"owner": "Bob", "initial_deposit": 0}},
	{"type": "MoneyDeposited", "data": {"amount": {"value": 10, "currency": "EUR"}}},
	{"type": "MoneyDeposited", "data": {"amount": 10}}]', 0);
\set VERBOSITY default
SELECT es_append_batch('evo-acc-2', '[
	{"type": "AccountCreated", "data": {"owner": "Bob", "initial_deposit": 0}},
	{"type": "MoneyDeposited", "data": {"amount": {"value": 10, "currency": "EUR"}}},
	{"type": "MoneyDeposited", "data": {"amount": 10}}]', 0);
RESET ROLE;
SELECT es_head_position() = :head_before AS head_unchanged,
	   (SELECT last_value FROM es_events_position_seq) = :seq_before AS no_position_used,
	   es_stream_version('evo-acc-2') AS stream_version;
SET ROLE regress_evo_admin;
-- a single append too, and the retired name
\set VERBOSITY sqlstate
SELECT es_append('evo-acc-1', 'MoneyDeposited', '{"amount": {"value": -1, "currency": "EUR"}}');
SELECT es_append('evo-acc-1', 'FundsAdded', '{"amount": 300}');
\set VERBOSITY default
SELECT es_append('evo-acc-1', 'FundsAdded', '{"amount": 300}');

-- a validator function, for what a path cannot say (as its registrant)
CREATE TABLE known_accounts (stream_id text PRIMARY KEY);
INSERT INTO known_accounts VALUES ('evo-acc-1');
CREATE FUNCTION withdrawal_ok(data jsonb, metadata jsonb) RETURNS boolean
LANGUAGE sql STABLE AS $$
	SELECT (data->>'amount')::numeric > 0
	   AND metadata->>'account' IN (SELECT stream_id FROM known_accounts) $$;
SELECT es_register_event_type('MoneyWithdrawn', 1,
							  validator_function => 'withdrawal_ok(jsonb, jsonb)');
RESET ROLE;
GRANT EXECUTE ON FUNCTION es_append(text, text, jsonb, bigint, jsonb, uuid) TO regress_evo_appender;
SET ROLE regress_evo_appender;
-- the appender may not read known_accounts; the validator runs as its registrant
SELECT es_append('evo-acc-1', 'MoneyWithdrawn', '{"amount": 5}', NULL,
				 '{"account": "evo-acc-1"}') > 0 AS appended;
\set VERBOSITY sqlstate
SELECT es_append('evo-acc-1', 'MoneyWithdrawn', '{"amount": 5}', NULL,
				 '{"account": "evo-nobody"}');
SELECT es_append('evo-acc-1', 'MoneyWithdrawn', '{"amount": 5}');
\set VERBOSITY default
-- the appender cannot register types
\set VERBOSITY sqlstate
SELECT es_register_event_type('MoneyWithdrawn', 2);
\set VERBOSITY default
SET ROLE regress_evo_admin;

-- a chain v1 -> v2 -> v3
CREATE FUNCTION chain_v2(e es_events) RETURNS es_events LANGUAGE plpgsql AS $$
BEGIN e.data := e.data || '{"v2": true}'; RETURN e; END $$;
CREATE FUNCTION chain_v3(e es_events) RETURNS es_events LANGUAGE plpgsql AS $$
BEGIN e.data := (e.data - 'old') || jsonb_build_object('new', e.data->'old', 'v3', true);
RETURN e; END $$;
SELECT es_append('evo-chain', 'Chained', '{"old": 1}', 0);
SELECT es_register_event_type('Chained', 2);
SELECT es_append('evo-chain', 'Chained', '{"old": 2, "v2": true}', 1);
SELECT es_register_event_type('Chained', 3);
SELECT es_append('evo-chain', 'Chained', '{"new": 3, "v2": true, "v3": true}', 2);
SELECT es_create_upcaster('Chained', 1, 'chain_v2(es_events)');
SELECT es_create_upcaster('Chained', 2, 'chain_v3(es_events)');
SELECT version, data, schema_version FROM es_read_stream('evo-chain');
SELECT version, schema_version FROM es_events WHERE stream_id = 'evo-chain' ORDER BY version;

-- the registry
SELECT event_type, registered, current_version, events_per_version, upcasters,
	   validator, validator_function, owner
  FROM es_event_registry
 WHERE event_type IN ('MoneyDeposited', 'FundsAdded', 'MoneyWithdrawn',
					  'Chained', 'AccountCreated')
 ORDER BY event_type;

-- registering again is idempotent; a version only goes up
SELECT es_register_event_type('Chained', 3);
SELECT es_create_upcaster('Chained', 2, 'chain_v3(es_events)');
\set VERBOSITY sqlstate
SELECT es_register_event_type('Chained', 2);
SELECT es_register_event_type('Chained', 0);
SELECT es_register_event_type('', 1);
SELECT es_register_event_type(repeat('x', 256), 1);
SELECT es_register_event_type(E'Bad\nType', 1);
SELECT es_create_upcaster('Chained', 2147483647, 'chain_v2(es_events)');
SELECT es_create_upcaster('Chained', 2, 'chain_v2(es_events)');
SELECT es_create_upcaster('Chained', 3, 'chain_v2(es_events)');
SELECT es_create_upcaster('Chained', 0, 'chain_v2(es_events)');
SELECT es_create_upcaster('NeverRegistered', 1, 'chain_v2(es_events)');
SELECT es_create_upcaster('Chained', 1, 'evo_balance(jsonb, es_events)');
SELECT es_register_event_type('Chained', 3, validator_function => 'chain_v2(es_events)');
SELECT es_drop_event_type('Chained');
SELECT es_drop_event_type('NeverRegistered');
SELECT es_drop_upcaster('Chained', 5);
\set VERBOSITY default
SELECT es_register_event_type('Chained', 2);
SELECT es_create_upcaster('Chained', 3, 'chain_v2(es_events)');
SELECT es_drop_event_type('Chained');
SELECT es_drop_event_type('NeverRegistered', missing_ok => true);
SELECT es_drop_upcaster('Chained', 5, missing_ok => true);

-- upcasters that break the rules are refused, and nothing is stored
CREATE FUNCTION bad_stream(e es_events) RETURNS es_events LANGUAGE plpgsql AS $$
BEGIN e.stream_id := 'elsewhere'; RETURN e; END $$;
CREATE FUNCTION bad_version(e es_events) RETURNS es_events LANGUAGE plpgsql AS $$
BEGIN e.version := e.version + 100; RETURN e; END $$;
CREATE FUNCTION bad_position(e es_events) RETURNS es_events LANGUAGE plpgsql AS $$
BEGIN e.global_position := 0; RETURN e; END $$;
CREATE FUNCTION bad_null(e es_events) RETURNS es_events LANGUAGE plpgsql AS $$
BEGIN RETURN NULL; END $$;
CREATE FUNCTION bad_data(e es_events) RETURNS es_events LANGUAGE plpgsql AS $$
BEGIN e.data := '[1, 2]'; RETURN e; END $$;
SELECT es_append('evo-bad', 'Bad', '{"n": 1}', 0);
SELECT es_register_event_type('Bad', 2);
\set VERBOSITY sqlstate
SELECT es_create_upcaster('Bad', 1, 'bad_stream(es_events)');
SELECT * FROM es_read_stream('evo-bad');
SELECT es_drop_upcaster('Bad', 1), es_create_upcaster('Bad', 1, 'bad_version(es_events)');
SELECT * FROM es_read_all((SELECT global_position - 1 FROM es_events WHERE stream_id = 'evo-bad'), 1);
SELECT es_drop_upcaster('Bad', 1), es_create_upcaster('Bad', 1, 'bad_position(es_events)');
SELECT * FROM es_read_stream_backward('evo-bad');
SELECT es_drop_upcaster('Bad', 1), es_create_upcaster('Bad', 1, 'bad_null(es_events)');
SELECT es_aggregate('evo-bad', 'evo_balance(jsonb, es_events)');
SELECT es_drop_upcaster('Bad', 1), es_create_upcaster('Bad', 1, 'bad_data(es_events)');
SELECT * FROM es_read_stream('evo-bad');
\set VERBOSITY terse
SELECT * FROM es_read_stream('evo-bad');
SELECT es_drop_upcaster('Bad', 1), es_create_upcaster('Bad', 1, 'bad_stream(es_events)');
SELECT * FROM es_read_stream('evo-bad');
\set VERBOSITY default
-- a failed read leaves the reader as it was
SELECT current_user, current_setting('search_path') AS search_path;
SELECT es_drop_upcaster('Bad', 1), es_drop_event_type('Bad');

-- an upcaster that renames to a type too long, or to an empty one
CREATE FUNCTION bad_rename(e es_events) RETURNS es_events LANGUAGE plpgsql AS $$
BEGIN e.event_type := repeat('y', 300); RETURN e; END $$;
SELECT es_append('evo-bad2', 'Bad2', '{}', 0);
SELECT es_register_event_type('Bad2', 2), es_create_upcaster('Bad2', 1, 'bad_rename(es_events)');
\set VERBOSITY sqlstate
SELECT * FROM es_read_stream('evo-bad2');
\set VERBOSITY default
SELECT es_drop_upcaster('Bad2', 1), es_drop_event_type('Bad2');

-- an upcaster's function cannot be dropped under it; with CASCADE the
-- upcaster goes too, and readers see the events as stored
CREATE FUNCTION gone_v2(e es_events) RETURNS es_events LANGUAGE plpgsql AS $$
BEGIN e.data := '{"upcast": true}'; RETURN e; END $$;
CREATE FUNCTION gone_ok(data jsonb, metadata jsonb) RETURNS boolean LANGUAGE sql AS $$SELECT true$$;
SELECT es_append('evo-gone', 'Gone', '{}', 0);
SELECT es_register_event_type('Gone', 2, validator_function => 'gone_ok(jsonb, jsonb)'),
	   es_create_upcaster('Gone', 1, 'gone_v2(es_events)');
SELECT version, event_type, data FROM es_read_stream('evo-gone');
\set VERBOSITY sqlstate
DROP FUNCTION gone_v2(es_events);
DROP FUNCTION gone_ok(jsonb, jsonb);
\set VERBOSITY default
DROP FUNCTION gone_v2(es_events);
DROP FUNCTION gone_v2(es_events) CASCADE;
DROP FUNCTION gone_ok(jsonb, jsonb) CASCADE;
SELECT version, event_type, data FROM es_read_stream('evo-gone');
SELECT upcasters, validator_function FROM es_event_registry WHERE event_type = 'Gone';
SELECT es_drop_event_type('Gone');

-- snapshots: one folded through the upcasters is not reused once they change
SELECT es_set_snapshot_policy('evo_balance(jsonb, es_events)', 1);
SET es_pg.log_replay = on;
SELECT es_aggregate('evo-acc-1', 'evo_balance(jsonb, es_events)');
SELECT es_aggregate('evo-acc-1', 'evo_balance(jsonb, es_events)');
CREATE OR REPLACE FUNCTION money_deposited_v2(e es_events) RETURNS es_events
LANGUAGE sql IMMUTABLE AS $$
	SELECT (e.global_position, e.stream_id, e.version, e.event_id, e.event_type,
			jsonb_set(e.data, '{amount}',
					  jsonb_build_object('value', (e.data->>'amount')::numeric * 2, 'currency', 'EUR')),
			e.metadata, e.recorded_at, e.schema_version)::es_events $$;
SELECT es_aggregate('evo-acc-1', 'evo_balance(jsonb, es_events)');
RESET es_pg.log_replay;
SELECT es_drop_snapshot_policy('evo_balance(jsonb, es_events)'),
	   es_drop_snapshots('evo_balance(jsonb, es_events)') > 0 AS dropped;
CREATE OR REPLACE FUNCTION money_deposited_v2(e es_events) RETURNS es_events
LANGUAGE sql IMMUTABLE AS $$
	SELECT (e.global_position, e.stream_id, e.version, e.event_id, e.event_type,
			jsonb_set(e.data, '{amount}',
					  jsonb_build_object('value', e.data->'amount', 'currency', 'EUR')),
			e.metadata, e.recorded_at, e.schema_version)::es_events $$;

-- upcasters run as their creator, with the search_path of their creation
CREATE FUNCTION currency_of(e es_events) RETURNS text LANGUAGE sql AS $$SELECT 'EUR'$$;
CREATE FUNCTION tagged_v2(e es_events) RETURNS es_events LANGUAGE plpgsql AS $$
BEGIN
	e.data := e.data || jsonb_build_object('currency', currency_of(e),
										   'upcast_by', current_user::text,
										   'path', current_setting('search_path'));
	RETURN e;
END $$;
REVOKE EXECUTE ON FUNCTION tagged_v2(es_events), currency_of(es_events) FROM PUBLIC;
SELECT es_append('evo-tag', 'Tagged', '{"n": 1}', 0);
SELECT es_register_event_type('Tagged', 2);
SELECT es_create_upcaster('Tagged', 1, 'tagged_v2(es_events)');
RESET ROLE;
CREATE SCHEMA evo_evil;
CREATE FUNCTION evo_evil.currency_of(e es_events) RETURNS text LANGUAGE sql AS $$SELECT 'XXX'$$;
GRANT USAGE ON SCHEMA evo_evil TO PUBLIC;
GRANT USAGE ON SCHEMA evo TO regress_evo_reader;
SET ROLE regress_evo_reader;
SET search_path = evo_evil, evo, public, pg_catalog;
SELECT data FROM es_read_stream('evo-tag');
SELECT data FROM es_read_all((SELECT global_position - 1 FROM es_events WHERE stream_id = 'evo-tag'), 1);
-- and the reader is itself again, with its own search_path
SELECT current_user, current_setting('search_path') AS search_path;
-- also when an error after the read is caught by a subtransaction
DO $$
BEGIN
	PERFORM * FROM es_read_stream('evo-bad-never');
	PERFORM es_read_stream('evo-tag'), 1 / 0;
EXCEPTION WHEN division_by_zero THEN
	RAISE NOTICE 'caught; current_user %, search_path %', current_user,
		current_setting('search_path');
END $$;
SELECT current_user, current_setting('search_path') AS search_path;
-- the reader cannot call the upcaster itself, and needs not
\set VERBOSITY sqlstate
SELECT evo.tagged_v2(e) FROM es_events e WHERE stream_id = 'evo-tag';
\set VERBOSITY default
RESET ROLE;
-- the creator loses EXECUTE: reads of those events fail, loudly
REVOKE EXECUTE ON FUNCTION evo.tagged_v2(es_events) FROM regress_evo_admin;
SET ROLE regress_evo_reader;
\set VERBOSITY sqlstate
SELECT data FROM es_read_stream('evo-tag');
\set VERBOSITY default
RESET ROLE;
GRANT EXECUTE ON FUNCTION evo.tagged_v2(es_events) TO regress_evo_admin;
SET search_path = evo, public;
SET ROLE regress_evo_admin;

-- the registry's tables are guarded like es_pg's others
RESET ROLE;
\set VERBOSITY sqlstate
ALTER TABLE es_upcasters ADD COLUMN extra int;
ALTER TABLE es_event_types RENAME COLUMN validator TO v;
DROP TABLE es_upcasters;
ALTER TABLE es_events DROP COLUMN schema_version;
SET ROLE regress_evo_reader;
INSERT INTO es_upcasters VALUES ('Tagged', 1, 'x', 'regress_evo_reader', '');
DELETE FROM es_event_types;
RESET ROLE;
\set VERBOSITY default

-- the stored events never changed
SELECT count(*) AS stored_rows_unchanged
  FROM stored_before b JOIN es_events e USING (global_position)
 WHERE (b.*)::text = (e.global_position, e.stream_id, e.version, e.event_id,
					  e.event_type, e.data, e.metadata, e.recorded_at,
					  e.schema_version)::es_events::text;
SELECT count(*) AS events_before FROM stored_before;
-- and the raw read: es_events itself
SELECT version, event_type, data, schema_version FROM es_events
 WHERE stream_id = 'evo-acc-1' ORDER BY version;

-- clean up: later tests use these types too
SET ROLE regress_evo_admin;
SELECT es_drop_upcaster('MoneyDeposited', 1), es_drop_upcaster('FundsAdded', 1),
	   es_drop_upcaster('Chained', 1), es_drop_upcaster('Chained', 2),
	   es_drop_upcaster('Tagged', 1);
SELECT es_drop_event_type(t)
  FROM unnest(ARRAY['MoneyDeposited', 'FundsAdded', 'MoneyWithdrawn', 'Chained',
					'Tagged']) t;
SELECT count(*) AS registered FROM es_event_types;
RESET ROLE;
RESET search_path;

-- the read paths find each event's type past stream ids of every length
-- (EsEventTypeOf in src/evolution.c): a short one and one of 200 bytes
-- (stored with a 4-byte header), with and without metadata (a null
-- bitmap), and a type name of 255 bytes; every one of the 8 is upcast
CREATE FUNCTION evo_layout_v2(e es_events) RETURNS es_events
LANGUAGE sql IMMUTABLE AS $$
	SELECT (e.global_position, e.stream_id, e.version, e.event_id, e.event_type,
			e.data || '{"upcast": true}', e.metadata, e.recorded_at,
			e.schema_version)::es_events $$;
SELECT count(es_append(s, t, '{"n": 1}', NULL, m)) AS appended
  FROM (VALUES ('evo-layout-short'), ('evo-layout-' || repeat('x', 189))) s(s),
	   (VALUES ('EvoLayout'), (repeat('L', 255))) t(t),
	   (VALUES (NULL::jsonb), ('{"m": 1}'::jsonb)) m(m);
SELECT count(es_append('evo-layout-long', CASE WHEN g = 1500 THEN 'EvoLayout' ELSE 'EvoPlain' END,
					   jsonb_build_object('n', g, 'pad', repeat('p', 100))))
  FROM generate_series(1, 1500) g;
SELECT es_register_event_type(t, 2), es_create_upcaster(t, 1, 'evo_layout_v2(es_events)')
  FROM (VALUES ('EvoLayout'), (repeat('L', 255))) t(t);
SELECT length(stream_id) AS stream_bytes, length(event_type) AS type_bytes,
	   metadata IS NULL AS no_metadata, data, schema_version
  FROM es_read_all((SELECT min(global_position) - 1 FROM es_events
					 WHERE stream_id LIKE 'evo-layout-%'), 100)
 WHERE stream_id LIKE 'evo-layout-%' AND stream_id <> 'evo-layout-long'
 ORDER BY global_position;
SELECT count(*) FILTER (WHERE data ? 'upcast') AS upcast, count(*) AS events
  FROM es_read_stream('evo-layout-' || repeat('x', 189));
-- a read stores the events as they are and upcasts in a second pass when
-- one of them has to change (src/read.c): here only the last of 1,500 does,
-- and the stored events go to disk first (work_mem of 64 kB)
SET work_mem = '64kB';
SELECT count(*) AS events, count(*) FILTER (WHERE data ? 'upcast') AS upcast,
	   bool_and(version = n) AS in_order,
	   max(version) FILTER (WHERE data ? 'upcast') AS upcast_version
  FROM (SELECT version, data, row_number() OVER () AS n
		  FROM es_read_stream('evo-layout-long')) r;
SELECT version, data ? 'upcast' AS upcast
  FROM es_read_stream_backward('evo-layout-long', NULL, 2);
RESET work_mem;
-- a type that has no upcaster is handed out as stored, whatever its place
SELECT count(*) FILTER (WHERE data ? 'upcast') AS upcast, count(*) AS events
  FROM es_read_stream('evo-acc-1') WHERE event_type NOT IN ('MoneyDeposited', 'FundsAdded');
SELECT es_drop_upcaster(t, 1), es_drop_event_type(t)
  FROM (VALUES ('EvoLayout'), (repeat('L', 255))) t(t);
DROP FUNCTION evo_layout_v2(es_events);
DROP TABLE stored_before;
SET client_min_messages = warning;
DROP SCHEMA evo CASCADE;
DROP SCHEMA evo_evil CASCADE;
RESET client_min_messages;
SELECT es_revoke_reader('regress_evo_admin'), es_revoke_reader('regress_evo_reader'),
	   es_revoke_reader('regress_evo_appender');
REVOKE EXECUTE ON FUNCTION es_append(text, text, jsonb, bigint, jsonb, uuid) FROM regress_evo_appender;
DROP ROLE regress_evo_admin;
DROP ROLE regress_evo_reader;
DROP ROLE regress_evo_appender;
