-- es_aggregate: folds, temporal queries, snapshots, reducer checks
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS es_pg;
RESET client_min_messages;

-- the design notes' BankAccount as a reducer, in SQL...
CREATE FUNCTION snap_agg_bank(state jsonb, event es_events) RETURNS jsonb
	LANGUAGE sql IMMUTABLE
	AS $$
	SELECT CASE event.event_type
		WHEN 'AccountCreated' THEN jsonb_build_object(
			'account_id', event.data->'account_id',
			'balance', coalesce((event.data->>'initial_deposit')::numeric, 0),
			'is_open', true)
		WHEN 'MoneyDeposited' THEN jsonb_set(state, '{balance}',
			to_jsonb((state->>'balance')::numeric + (event.data->>'amount')::numeric))
		WHEN 'MoneyWithdrawn' THEN jsonb_set(state, '{balance}',
			to_jsonb((state->>'balance')::numeric - (event.data->>'amount')::numeric))
		WHEN 'AccountClosed' THEN jsonb_set(state, '{is_open}', 'false')
		ELSE state
	END
	$$;

-- ...and in PL/pgSQL
CREATE FUNCTION snap_agg_bank_pl(state jsonb, event es_events) RETURNS jsonb
	LANGUAGE plpgsql IMMUTABLE
	AS $$
BEGIN
	CASE event.event_type
		WHEN 'AccountCreated' THEN
			RETURN jsonb_build_object('account_id', event.data->'account_id',
				'balance', coalesce((event.data->>'initial_deposit')::numeric, 0),
				'is_open', true);
		WHEN 'MoneyDeposited' THEN
			RETURN jsonb_set(state, '{balance}',
				to_jsonb((state->>'balance')::numeric + (event.data->>'amount')::numeric));
		WHEN 'MoneyWithdrawn' THEN
			RETURN jsonb_set(state, '{balance}',
				to_jsonb((state->>'balance')::numeric - (event.data->>'amount')::numeric));
		WHEN 'AccountClosed' THEN
			RETURN jsonb_set(state, '{is_open}', 'false');
		ELSE
			RETURN state;
	END CASE;
END
$$;

-- create with 1000, deposit 500, withdraw 200
SELECT es_append('snap-agg-bank', 'AccountCreated',
	'{"account_id": "ACC-001", "owner": "Alice", "initial_deposit": 1000}', 0);
SELECT es_append('snap-agg-bank', 'MoneyDeposited', '{"amount": 500}', 1);
SELECT clock_timestamp() AS after_event_2 \gset
SELECT es_append('snap-agg-bank', 'MoneyWithdrawn', '{"amount": 200}', 2);

-- a reducer is named by its signature, or by name with ::regproc
SELECT es_aggregate('snap-agg-bank', 'snap_agg_bank(jsonb, es_events)');
SELECT es_aggregate('snap-agg-bank', 'snap_agg_bank'::regproc) ->> 'balance' AS balance;
SELECT es_aggregate('snap-agg-bank', 'snap_agg_bank_pl'::regproc) ->> 'balance' AS balance;

-- temporal queries: the balance as it was after event 2...
SELECT es_aggregate('snap-agg-bank', 'snap_agg_bank'::regproc,
	as_of_version => 2) ->> 'balance' AS balance_at_v2;
SELECT es_aggregate('snap-agg-bank', 'snap_agg_bank_pl'::regproc,
	as_of_version => 2) ->> 'balance' AS balance_at_v2;
-- ...and at the time event 2 was recorded, or just after
SELECT es_aggregate('snap-agg-bank', 'snap_agg_bank'::regproc,
	as_of_time => :'after_event_2') ->> 'balance' AS balance_after_event_2;
SELECT es_aggregate('snap-agg-bank', 'snap_agg_bank'::regproc,
	as_of_time => recorded_at) ->> 'balance' AS balance_at_event_2
  FROM es_events WHERE stream_id = 'snap-agg-bank' AND version = 2;
-- before the first event: the initial state
SELECT es_aggregate('snap-agg-bank', 'snap_agg_bank'::regproc,
	as_of_time => recorded_at - interval '1 microsecond') AS before_event_1
  FROM es_events WHERE stream_id = 'snap-agg-bank' AND version = 1;
SELECT es_aggregate('snap-agg-bank', 'snap_agg_bank'::regproc,
	as_of_version => 0) AS at_v0;
-- a time in the future is now; with both bounds the earlier one wins
SELECT es_aggregate('snap-agg-bank', 'snap_agg_bank'::regproc,
	as_of_time => now() + interval '1 day') ->> 'balance' AS balance;
SELECT es_aggregate('snap-agg-bank', 'snap_agg_bank'::regproc,
	as_of_version => 1, as_of_time => :'after_event_2') ->> 'balance' AS balance;
SELECT es_aggregate('snap-agg-bank', 'snap_agg_bank'::regproc,
	as_of_version => 3, as_of_time => :'after_event_2') ->> 'balance' AS balance;

-- a stream that does not exist folds to the initial state
SELECT es_aggregate('snap-agg-missing', 'snap_agg_bank'::regproc);
SELECT es_aggregate('snap-agg-missing', 'snap_agg_bank'::regproc, '{"balance": 0}');
-- the initial state is the state before event 1
CREATE FUNCTION snap_agg_count(state jsonb, event es_events) RETURNS jsonb
	LANGUAGE sql IMMUTABLE
	AS $$ SELECT state || jsonb_build_object('n', (state->>'n')::int + 1,
		'last', event.version) $$;
SELECT es_aggregate('snap-agg-bank', 'snap_agg_count'::regproc, '{"n": 100}');

-- rolled back appends leave dead index entries behind: the fold skips them
SELECT es_append_batch('snap-agg-aborted', '[{"type": "A", "data": {}}, {"type": "B", "data": {}}]');
BEGIN;
SELECT es_append_batch('snap-agg-aborted', '[{"type": "X", "data": {}}, {"type": "Y", "data": {}}]');
ROLLBACK;
SELECT es_append_batch('snap-agg-aborted', '[{"type": "C", "data": {}}, {"type": "D", "data": {}}]');
SELECT es_aggregate('snap-agg-aborted', 'snap_agg_count'::regproc, '{"n": 0}');
SELECT es_aggregate('snap-agg-aborted', 'snap_agg_count'::regproc, '{"n": 0}');

-- es_pg.log_replay reports the snapshot used and the events replayed
SET es_pg.log_replay = on;
SELECT es_aggregate('snap-agg-bank', 'snap_agg_bank'::regproc) ->> 'balance' AS balance;

-- a snapshot of the reducer is used: only the tail is replayed.  A
-- snapshot saved with es_save_snapshot is trusted as it is...
SELECT es_save_snapshot('snap-agg-bank', 2,
	'{"account_id": "ACC-001", "balance": 9999, "is_open": true}',
	'snap_agg_bank'::regproc);
SELECT es_aggregate('snap-agg-bank', 'snap_agg_bank'::regproc) ->> 'balance' AS balance;
-- ...but not for the bounds before it, nor by another reducer
SELECT es_aggregate('snap-agg-bank', 'snap_agg_bank'::regproc,
	as_of_version => 1) ->> 'balance' AS balance;
SELECT es_aggregate('snap-agg-bank', 'snap_agg_bank_pl'::regproc) ->> 'balance' AS balance;
-- es_drop_snapshots invalidates it: the next load replays everything
SELECT es_drop_snapshots('snap_agg_bank'::regproc, 'snap-agg-bank');
SELECT es_aggregate('snap-agg-bank', 'snap_agg_bank'::regproc) ->> 'balance' AS balance;

-- thousands of events: the same state with and without snapshots
SELECT es_append('snap-agg-long', 'AccountCreated',
	'{"account_id": "ACC-LONG", "initial_deposit": 100}');
SELECT es_append_batch('snap-agg-long',
	(SELECT jsonb_agg(jsonb_build_object(
				'type', CASE WHEN i % 3 = 0 THEN 'MoneyWithdrawn' ELSE 'MoneyDeposited' END,
				'data', jsonb_build_object('amount', i % 97 + 0.5))
			ORDER BY i)
	   FROM generate_series(2, 5000) i));
-- the balance computed with plain SQL
SELECT 100 + sum(CASE WHEN i % 3 = 0 THEN -1 ELSE 1 END * (i % 97 + 0.5)) AS expected
  FROM generate_series(2, 5000) i \gset
SELECT 100 + sum(CASE WHEN i % 3 = 0 THEN -1 ELSE 1 END * (i % 97 + 0.5)) AS expected_3000
  FROM generate_series(2, 3000) i \gset
SELECT es_aggregate('snap-agg-long', 'snap_agg_bank'::regproc) AS full_replay \gset
SELECT (:'full_replay'::jsonb ->> 'balance')::numeric = :expected AS full_replay_right;
-- snapshots in the middle and near the head
SELECT es_save_snapshot('snap-agg-long', 2500,
	es_aggregate('snap-agg-long', 'snap_agg_bank'::regproc, as_of_version => 2500),
	'snap_agg_bank'::regproc);
SELECT es_aggregate('snap-agg-long', 'snap_agg_bank'::regproc) = :'full_replay' AS same_state;
SELECT es_save_snapshot('snap-agg-long', 4990,
	es_aggregate('snap-agg-long', 'snap_agg_bank'::regproc, as_of_version => 4990),
	'snap_agg_bank'::regproc);
SELECT es_aggregate('snap-agg-long', 'snap_agg_bank'::regproc) = :'full_replay' AS same_state;
-- a historical state starts from the newest snapshot at or before it
SELECT (es_aggregate('snap-agg-long', 'snap_agg_bank'::regproc,
	as_of_version => 3000) ->> 'balance')::numeric = :expected_3000 AS same_state_at_3000;
-- the PL/pgSQL reducer agrees
SELECT es_aggregate('snap-agg-long', 'snap_agg_bank_pl'::regproc) = :'full_replay' AS same_state;
RESET es_pg.log_replay;

-- one query over many streams; the reducer may change from row to row
SELECT s.stream_id, r.reducer,
	   es_aggregate(s.stream_id, r.reducer) ->> 'balance' AS balance
  FROM (VALUES ('snap-agg-bank'), ('snap-agg-long'), ('snap-agg-missing')) s(stream_id)
 CROSS JOIN (VALUES ('snap_agg_bank'::regproc::regprocedure),
					('snap_agg_bank_pl'::regproc)) r(reducer)
 ORDER BY 1, 2;
SELECT count(*) AS streams,
	   sum((es_aggregate(stream_id, 'snap_agg_bank'::regproc) ->> 'balance')::numeric)
		   = 1300 + :expected AS right_total
  FROM es_streams WHERE stream_id IN ('snap-agg-bank', 'snap-agg-long');

-- the reducer must not return NULL: an error names the event
CREATE FUNCTION snap_agg_no_else(state jsonb, event es_events) RETURNS jsonb
	LANGUAGE sql IMMUTABLE
	AS $$ SELECT CASE WHEN event.event_type = 'AccountCreated' THEN state END $$;
SELECT es_aggregate('snap-agg-bank', 'snap_agg_no_else'::regproc);
-- an error in the reducer names the event too
CREATE FUNCTION snap_agg_fails(state jsonb, event es_events) RETURNS jsonb
	LANGUAGE plpgsql IMMUTABLE
	AS $$
BEGIN
	IF event.event_type = 'MoneyWithdrawn' THEN
		RAISE EXCEPTION 'withdrawals are not supported';
	END IF;
	RETURN state;
END
$$;
SELECT es_aggregate('snap-agg-bank', 'snap_agg_fails'::regproc);

-- functions that are not reducers
CREATE FUNCTION snap_agg_wrong_args(state jsonb, event jsonb) RETURNS jsonb
	LANGUAGE sql AS $$ SELECT state $$;
CREATE FUNCTION snap_agg_wrong_result(state jsonb, event es_events) RETURNS text
	LANGUAGE sql AS $$ SELECT 'x' $$;
CREATE FUNCTION snap_agg_set(state jsonb, event es_events) RETURNS SETOF jsonb
	LANGUAGE sql AS $$ SELECT state $$;
CREATE FUNCTION snap_agg_three(state jsonb, event es_events, x int) RETURNS jsonb
	LANGUAGE sql AS $$ SELECT state $$;
CREATE PROCEDURE snap_agg_proc(state jsonb, event es_events)
	LANGUAGE sql AS $$ SELECT 1 $$;
SELECT es_aggregate('snap-agg-bank', 'snap_agg_wrong_args'::regproc);
SELECT es_aggregate('snap-agg-bank', 'snap_agg_wrong_result'::regproc);
SELECT es_aggregate('snap-agg-bank', 'snap_agg_set'::regproc);
SELECT es_aggregate('snap-agg-bank', 'snap_agg_proc'::regproc);

-- bad arguments
\set VERBOSITY sqlstate
SELECT es_aggregate('snap-agg-bank', 'snap_agg_wrong_args'::regproc);
SELECT es_aggregate('snap-agg-bank', 'snap_agg_wrong_result'::regproc);
SELECT es_aggregate('snap-agg-bank', 'snap_agg_set'::regproc);
SELECT es_aggregate('snap-agg-bank', 'snap_agg_three'::regproc);
SELECT es_aggregate('snap-agg-bank', 'snap_agg_proc'::regproc);
SELECT es_aggregate('snap-agg-bank', 'no_such_reducer(jsonb, es_events)');
SELECT es_aggregate('snap-agg-bank', 0::regprocedure);
SELECT es_aggregate('snap-agg-bank', 'snap_agg_no_else'::regproc);
SELECT es_aggregate('snap-agg-bank', 'snap_agg_fails'::regproc);
SELECT es_aggregate(NULL, 'snap_agg_bank'::regproc);
SELECT es_aggregate('snap-agg-bank', NULL);
SELECT es_aggregate('snap-agg-bank', 'snap_agg_bank'::regproc, NULL);
SELECT es_aggregate('snap-agg-bank', 'snap_agg_bank'::regproc, as_of_version => -1);
SELECT es_aggregate('snap-agg-bank', 'snap_agg_bank'::regproc, as_of_version => 4);
SELECT es_aggregate('snap-agg-missing', 'snap_agg_bank'::regproc, as_of_version => 1);
\set VERBOSITY default
SELECT es_aggregate('snap-agg-bank', 'snap_agg_bank'::regproc, as_of_version => 4);
-- NULL bounds mean now
SELECT es_aggregate('snap-agg-bank', 'snap_agg_bank'::regproc, '{}', NULL, NULL)
	->> 'balance' AS balance;

-- privileges: SELECT on es_events and EXECUTE on the reducer
CREATE ROLE snap_agg_reader;
GRANT SELECT ON es_events TO snap_agg_reader;
SET ROLE snap_agg_reader;
SELECT es_aggregate('snap-agg-bank', 'snap_agg_bank'::regproc) ->> 'balance' AS balance;
RESET ROLE;
REVOKE EXECUTE ON FUNCTION snap_agg_bank(jsonb, es_events) FROM PUBLIC;
SET ROLE snap_agg_reader;
\set VERBOSITY sqlstate
SELECT es_aggregate('snap-agg-bank', 'snap_agg_bank'::regproc);
\set VERBOSITY default
RESET ROLE;
GRANT EXECUTE ON FUNCTION snap_agg_bank(jsonb, es_events) TO PUBLIC;
REVOKE SELECT ON es_events FROM snap_agg_reader;
SET ROLE snap_agg_reader;
\set VERBOSITY sqlstate
SELECT es_aggregate('snap-agg-bank', 'snap_agg_bank'::regproc);
\set VERBOSITY default
RESET ROLE;
DROP ROLE snap_agg_reader;
