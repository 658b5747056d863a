-- es_pg_bank: the design notes' story (create with 1000, deposit 500,
-- withdraw 200): events, the three read models, the same balance replayed
-- from the events, the balance as it was, and install/uninstall
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS es_pg;
RESET client_min_messages;

-- a bare es_pg has no bank objects
SELECT count(*) AS bank_objects FROM pg_class WHERE relname LIKE 'bank\_%';
SELECT count(*) AS bank_functions FROM pg_proc WHERE proname LIKE 'bank\_%';

CREATE EXTENSION es_pg_bank;
SELECT extname, extversion, extrequires::text FROM pg_extension
  JOIN LATERAL (SELECT array_agg(r.extname ORDER BY r.extname) AS extrequires
				  FROM pg_depend d JOIN pg_extension r ON r.oid = d.refobjid
				 WHERE d.objid = pg_extension.oid AND d.classid = 'pg_extension'::regclass
				   AND d.refclassid = 'pg_extension'::regclass) req ON true
 WHERE extname = 'es_pg_bank';

-- three inline projections and a snapshot policy come with it
SELECT name, mode, state, lag_events, event_types, handler
  FROM es_projection_status WHERE name LIKE 'bank%' ORDER BY name;
SELECT reducer, every_n_events FROM es_snapshot_policies
 WHERE reducer LIKE '%bank_account_reducer';

-- the story
SELECT bank_create_account('ACC-001', 'Alice', 1000);
SELECT bank_deposit('ACC-001', 500);
SELECT bank_withdraw('ACC-001', 200);

-- the events: one stream per account, metadata names the command
SELECT stream_id, version, event_type, data, metadata - 'user' AS metadata,
	   metadata->>'user' = session_user AS by_session_user
  FROM es_read_stream('account-ACC-001');

-- read model 1: the balance view, and its query function
SELECT account_id, owner, balance, status, version,
	   opened_at = (SELECT recorded_at FROM es_events WHERE stream_id = 'account-ACC-001' AND version = 1) AS opened_at_ok,
	   last_updated = (SELECT recorded_at FROM es_events WHERE stream_id = 'account-ACC-001' AND version = 3) AS last_updated_ok
  FROM bank_get_account('ACC-001');
SELECT count(*) FROM bank_get_account('ACC-404');

-- read model 2: the transaction history, oldest first
SELECT account_id, version, type, amount,
	   recorded_at = (SELECT recorded_at FROM es_events e WHERE e.global_position = h.global_position) AS recorded_at_ok
  FROM bank_get_history('ACC-001') h;

-- read model 3: the daily summary (UTC days), in and out of a range
SELECT day = (now() AT TIME ZONE 'UTC')::date AS today, deposits, withdrawals, net, transactions
  FROM bank_get_daily_summary();
SELECT count(*) FROM bank_get_daily_summary(from_day => (now() AT TIME ZONE 'UTC')::date + 1);
SELECT count(*) FROM bank_get_daily_summary(to_day => (now() AT TIME ZONE 'UTC')::date - 1);

-- the same balance from replaying the events through the reducer
SELECT bank_account_state('ACC-001');
SELECT (bank_account_state('ACC-001')->>'balance')::numeric = balance AS same_balance
  FROM bank_accounts WHERE account_id = 'ACC-001';
SELECT es_aggregate('account-ACC-001', 'bank_account_reducer(jsonb, es_events)') =
	   bank_account_state('ACC-001') AS same_as_es_aggregate;

-- temporal queries: the balance as of each version, and as of a time
SELECT v AS as_of_version, bank_account_state('ACC-001', v)->>'balance' AS balance
  FROM generate_series(0, 3) v;
SELECT bank_account_state('ACC-001', as_of_time => e.recorded_at)->>'balance' AS balance_at_v2_time
  FROM es_events e WHERE stream_id = 'account-ACC-001' AND version = 2;
SELECT bank_account_state('ACC-001', as_of_time => '2000-01-01') AS before_it_existed;
SELECT bank_account_state('ACC-404') AS missing_account;

-- a day boundary in UTC, whatever the session's TimeZone
SET TimeZone = 'Pacific/Kiritimati';	-- UTC+14
SELECT bank_create_account('ACC-TZ', 'Bob', 0);
SELECT bank_deposit('ACC-TZ', 7);
SELECT day = (now() AT TIME ZONE 'UTC')::date AS utc_day, deposits
  FROM bank_daily_summary ORDER BY day;
RESET TimeZone;

-- streams that are not bank accounts are ignored by the projections, even
-- with bank event types
SELECT es_append('not-an-account', 'MoneyDeposited', '{"amount": 1000000}');
SELECT es_append('ACC-001', 'MoneyDeposited', '{"amount": 1000000}');
SELECT (SELECT count(*) FROM bank_accounts) AS accounts,
	   (SELECT count(*) FROM bank_transactions) AS transactions,
	   (SELECT sum(deposits) FROM bank_daily_summary) AS deposits;

-- uninstall: the read models go, the events stay; appends keep working
DROP EXTENSION es_pg_bank;
SELECT count(*) AS bank_objects FROM pg_class WHERE relname LIKE 'bank\_%';
SELECT count(*) AS bank_projections FROM es_projection_status WHERE name LIKE 'bank%';
SELECT count(*) AS events FROM es_events WHERE stream_id LIKE 'account-ACC-%';
SELECT es_append('account-ACC-001', 'MoneyDeposited', '{"amount": 1}', 3);

-- reinstall: the read models are built again from the events
CREATE EXTENSION es_pg_bank;
SELECT account_id, owner, balance, status, version FROM bank_accounts ORDER BY account_id;
SELECT account_id, version, type, amount FROM bank_transactions ORDER BY global_position;
SELECT bank_withdraw('ACC-001', 1);

-- leave es_pg as the other tests expect it: the policy and the snapshots
-- are es_pg's rows, which DROP EXTENSION es_pg_bank does not remove
SELECT es_drop_snapshot_policy('bank_account_reducer(jsonb, es_events)');
SELECT es_drop_snapshots('bank_account_reducer(jsonb, es_events)') >= 0 AS dropped;
DROP EXTENSION es_pg_bank;
