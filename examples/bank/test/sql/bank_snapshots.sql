-- es_pg_bank: commands load the account from its newest snapshot plus the
-- events after it; the snapshot policy (every 100 events) keeps the replay
-- short as the account grows, and the state is the same as a full replay
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS es_pg_bank CASCADE;
RESET client_min_messages;

SELECT bank_create_account('snap-1', 'Alice', 0);
SELECT count(bank_deposit('snap-1', 1)) AS deposits FROM generate_series(1, 250);

-- each command loaded the account; when a load replayed more than 100
-- events, es_aggregate stored a snapshot
SELECT version, state->>'balance' AS balance, reducer
  FROM es_snapshots WHERE stream_id = 'account-snap-1' ORDER BY version;

-- es_pg.log_replay shows what each load does: from the snapshot at 202,
-- the command replays 49 events, not 251
SET es_pg.log_replay = on;
SELECT bank_deposit('snap-1', 1);
SELECT bank_account_state('snap-1')->>'balance' AS balance;

-- a temporal query starts from the newest snapshot at or before its bound
SELECT bank_account_state('snap-1', 150)->>'balance' AS balance_at_150;
SELECT bank_account_state('snap-1', 50)->>'balance' AS balance_at_50;

-- without snapshots: a full replay, same state; the policy stores a fresh
-- snapshot, and the next load replays nothing
SELECT bank_account_state('snap-1') AS with_snapshots \gset
SELECT es_drop_snapshots('bank_account_reducer(jsonb, es_events)', 'account-snap-1');
SELECT bank_account_state('snap-1') = :'with_snapshots'::jsonb AS same_state;
SELECT bank_account_state('snap-1') = :'with_snapshots'::jsonb AS same_state;
RESET es_pg.log_replay;

-- the read model agrees with the replay
SELECT balance, version FROM bank_accounts WHERE account_id = 'snap-1';

-- leave es_pg as the other tests expect it: the policy and the snapshots
-- are es_pg's rows, which DROP EXTENSION es_pg_bank does not remove
SELECT es_drop_snapshot_policy('bank_account_reducer(jsonb, es_events)');
SELECT es_drop_snapshots('bank_account_reducer(jsonb, es_events)') >= 0 AS dropped;
DROP EXTENSION es_pg_bank;
