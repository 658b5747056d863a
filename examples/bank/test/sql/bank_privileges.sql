-- es_pg_bank: an application role with EXECUTE on the commands and SELECT
-- on the read models runs the bank, and cannot write events or read
-- models any other way; the caller's search_path cannot redirect the
-- commands
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS es_pg_bank CASCADE;
RESET client_min_messages;

CREATE ROLE regress_bank_app;
CREATE ROLE regress_bank_nobody;
GRANT USAGE ON SCHEMA public TO regress_bank_app, regress_bank_nobody;
GRANT EXECUTE ON FUNCTION bank_create_account(text, text, numeric),
	bank_deposit(text, numeric), bank_withdraw(text, numeric),
	bank_close_account(text), bank_account_state(text, bigint, timestamptz)
	TO regress_bank_app;
GRANT SELECT ON bank_accounts, bank_transactions, bank_daily_summary
	TO regress_bank_app;

-- what PUBLIC gets: the query functions, not the commands
SELECT p.oid::regprocedure AS function,
	   has_function_privilege('regress_bank_nobody', p.oid, 'EXECUTE') AS public_execute,
	   p.prosecdef AS security_definer,
	   p.proconfig IS NOT NULL OR p.prosqlbody IS NOT NULL OR p.proname = 'bank_account_reducer'
		   AS no_search_path_dependence
  FROM pg_proc p
  JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
  JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'es_pg_bank'
 ORDER BY p.proname;

SET ROLE regress_bank_app;
SELECT bank_create_account('priv-1', 'Alice', 10);
SELECT bank_deposit('priv-1', 5);
SELECT bank_withdraw('priv-1', 3);
SELECT account_id, owner, balance FROM bank_get_account('priv-1');
SELECT type, amount FROM bank_get_history('priv-1');
SELECT bank_account_state('priv-1', 2)->>'balance' AS balance_at_2;

-- no way around the commands
\set VERBOSITY sqlstate
SELECT es_append('account-priv-1', 'MoneyDeposited', '{"amount": 1000000}');
SELECT count(*) FROM es_events;
SELECT bank_execute('DepositMoney', 'priv-1', 1000000, NULL);
SELECT bank_accounts_apply(e) FROM es_events e LIMIT 1;
UPDATE bank_accounts SET balance = 1000000 WHERE account_id = 'priv-1';
INSERT INTO bank_transactions VALUES (-1, 'priv-1', 99, 'deposit', 1000000, now());
DELETE FROM bank_daily_summary;
\set VERBOSITY default
RESET ROLE;

-- a role without grants can do nothing
SET ROLE regress_bank_nobody;
\set VERBOSITY sqlstate
SELECT bank_deposit('priv-1', 5);
SELECT bank_account_state('priv-1');
SELECT * FROM bank_accounts;
SELECT * FROM bank_get_account('priv-1');
\set VERBOSITY default
RESET ROLE;

-- events record who asked: the session user
SELECT version, metadata->>'command' AS command, metadata->>'user' = session_user AS by_session_user
  FROM es_read_stream('account-priv-1');

-- look-alikes on the caller's search_path are never used: a schema in
-- front with a forged state function and an es_append that writes
-- nothing, and temporary tables named like the read models
CREATE SCHEMA regress_bank_evil;
CREATE FUNCTION regress_bank_evil.bank_account_state(account_id text,
		as_of_version bigint DEFAULT NULL, as_of_time timestamptz DEFAULT NULL)
	RETURNS jsonb LANGUAGE sql
	AS $$ SELECT '{"account_id": "priv-1", "balance": 1000000, "status": "open", "version": 3}'::jsonb $$;
CREATE FUNCTION regress_bank_evil.es_append(stream_id text, event_type text,
		data jsonb, expected_version bigint DEFAULT NULL,
		metadata jsonb DEFAULT NULL, event_id uuid DEFAULT NULL)
	RETURNS bigint LANGUAGE sql AS $$ SELECT 42::bigint $$;
GRANT USAGE ON SCHEMA regress_bank_evil TO regress_bank_app;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA regress_bank_evil TO regress_bank_app;
SET ROLE regress_bank_app;
CREATE TEMP TABLE bank_accounts (LIKE public.bank_accounts);
CREATE TEMP TABLE bank_transactions (LIKE public.bank_transactions);
SET search_path = regress_bank_evil, public;
\set VERBOSITY sqlstate
SELECT bank_withdraw('priv-1', 1000);		-- EB005: the real state
\set VERBOSITY default
SELECT bank_deposit('priv-1', 1);			-- the real append: version 4
SELECT count(*) AS temp_rows FROM pg_temp.bank_accounts;
DROP TABLE pg_temp.bank_accounts, pg_temp.bank_transactions;
RESET search_path;
RESET ROLE;
SELECT account_id, balance, version FROM public.bank_accounts WHERE account_id = 'priv-1';
DROP SCHEMA regress_bank_evil CASCADE;

-- leave es_pg as the other tests expect it: the policy and the snapshots
-- are es_pg's rows, which DROP EXTENSION es_pg_bank does not remove
SELECT es_drop_snapshot_policy('bank_account_reducer(jsonb, es_events)');
SELECT es_drop_snapshots('bank_account_reducer(jsonb, es_events)') >= 0 AS dropped;
DROP EXTENSION es_pg_bank;
DROP OWNED BY regress_bank_app, regress_bank_nobody;
DROP ROLE regress_bank_app, regress_bank_nobody;
