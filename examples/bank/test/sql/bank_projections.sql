-- es_pg_bank: the three read models are projections like any other: a
-- rebuild from the events gives the same tables as the live ones, a
-- projection added late is filled from history, and a failing inline
-- handler fails the command, which then writes nothing
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS es_pg_bank CASCADE;
RESET client_min_messages;

SELECT bank_create_account('proj-1', 'Alice', 100);
SELECT bank_create_account('proj-2', 'Bob', 0);
SELECT bank_deposit('proj-1', 500);
SELECT bank_deposit('proj-2', 750.25);
SELECT bank_withdraw('proj-1', 50);
SELECT bank_withdraw('proj-2', 750.25);
SELECT bank_close_account('proj-2');
SELECT bank_deposit('proj-1', 1200);

-- the live read models
CREATE TEMP TABLE live_accounts AS SELECT * FROM bank_accounts;
CREATE TEMP TABLE live_transactions AS SELECT * FROM bank_transactions;
CREATE TEMP TABLE live_summary AS SELECT * FROM bank_daily_summary;

-- rebuilt from every event: the same rows
SELECT es_rebuild_projection('bank_accounts') > 0 AS rebuilt,
	   es_rebuild_projection('bank_transactions') > 0 AS rebuilt,
	   es_rebuild_projection('bank_daily_summary') > 0 AS rebuilt;
SELECT (SELECT count(*) FROM (TABLE live_accounts EXCEPT ALL TABLE bank_accounts) d) AS accounts_lost,
	   (SELECT count(*) FROM (TABLE bank_accounts EXCEPT ALL TABLE live_accounts) d) AS accounts_new,
	   (SELECT count(*) FROM (TABLE live_transactions EXCEPT ALL TABLE bank_transactions) d) AS history_lost,
	   (SELECT count(*) FROM (TABLE bank_transactions EXCEPT ALL TABLE live_transactions) d) AS history_new,
	   (SELECT count(*) FROM (TABLE live_summary EXCEPT ALL TABLE bank_daily_summary) d) AS summary_lost,
	   (SELECT count(*) FROM (TABLE bank_daily_summary EXCEPT ALL TABLE live_summary) d) AS summary_new;
SELECT account_id, balance, status, version FROM bank_accounts
 WHERE account_id LIKE 'proj-%' ORDER BY account_id;
SELECT name, mode, state, lag_events FROM es_projection_status
 WHERE name LIKE 'bank%' ORDER BY name;

-- every balance matches its events
SELECT count(*) AS mismatches FROM bank_accounts a
 WHERE a.balance <> (bank_account_state(a.account_id)->>'balance')::numeric;

-- a projection added late: large deposits (500 or more, opening deposits
-- included), filled from the history when it is created
CREATE TABLE bank_large_deposits (global_position bigint PRIMARY KEY,
	account_id text NOT NULL, amount numeric NOT NULL);
CREATE FUNCTION bank_large_deposits_apply(event es_events) RETURNS void
	LANGUAGE sql AS $$
	INSERT INTO bank_large_deposits
	SELECT event.global_position, bank_account_id(event.stream_id), a.amount
	  FROM (SELECT COALESCE(event.data->>'amount', event.data->>'initial_deposit')::numeric AS amount) a
	 WHERE bank_account_id(event.stream_id) LIKE 'proj-%' AND a.amount >= 500
	$$;
CREATE FUNCTION bank_large_deposits_reset() RETURNS void
	LANGUAGE sql AS $$ DELETE FROM bank_large_deposits $$;
SELECT es_create_projection('bank_large_deposits',
	'bank_large_deposits_apply(es_events)', ARRAY['AccountCreated', 'MoneyDeposited'],
	'inline', 'bank_large_deposits_reset()');
SELECT account_id, amount FROM bank_large_deposits ORDER BY global_position;
-- and it follows new commands
SELECT bank_deposit('proj-1', 999);
SELECT account_id, amount FROM bank_large_deposits ORDER BY global_position;
SELECT es_drop_projection('bank_large_deposits');
TRUNCATE bank_large_deposits;

-- the same as an async projection: the worker (or es_apply_projections)
-- fills it after commit; es_wait_for_projection waits for it
SELECT es_create_projection('bank_large_deposits_async',
	'bank_large_deposits_apply(es_events)', ARRAY['AccountCreated', 'MoneyDeposited'],
	'async', 'bank_large_deposits_reset()');
SELECT es_wait_for_projection('bank_large_deposits_async', es_head_position(), '30 s');
SELECT account_id, amount FROM bank_large_deposits ORDER BY global_position;
SELECT name, mode, state, lag_events FROM es_projection_status
 WHERE name = 'bank_large_deposits_async';
SELECT es_drop_projection('bank_large_deposits_async');
DROP FUNCTION bank_large_deposits_apply(es_events), bank_large_deposits_reset();
DROP TABLE bank_large_deposits;

-- a failing inline handler fails the command with the handler's error:
-- no event, no read-model change
CREATE FUNCTION bank_audit_apply(event es_events) RETURNS void
	LANGUAGE plpgsql AS $$
BEGIN
	IF (event.data->>'amount')::numeric = 13 THEN
		RAISE EXCEPTION 'unlucky amount' USING ERRCODE = 'P0013';
	END IF;
END
$$;
SELECT es_create_projection('bank_audit', 'bank_audit_apply(es_events)',
	ARRAY['MoneyWithdrawn']);
SELECT es_head_position() AS head \gset
\set VERBOSITY sqlstate
SELECT bank_withdraw('proj-1', 13);
\set VERBOSITY default
SELECT es_head_position() = :head AS nothing_appended;
SELECT balance, version FROM bank_accounts WHERE account_id = 'proj-1';
SELECT bank_withdraw('proj-1', 12);
SELECT es_drop_projection('bank_audit');
DROP FUNCTION bank_audit_apply(es_events);

-- leave es_pg as the other tests expect it: the policy and the snapshots
-- are es_pg's rows, which DROP EXTENSION es_pg_bank does not remove
SELECT es_drop_snapshot_policy('bank_account_reducer(jsonb, es_events)');
SELECT es_drop_snapshots('bank_account_reducer(jsonb, es_events)') >= 0 AS dropped;
DROP EXTENSION es_pg_bank;
