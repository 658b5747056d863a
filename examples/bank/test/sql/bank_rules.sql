-- es_pg_bank: every rule of the account aggregate, with its SQLSTATE; a
-- refused command writes nothing, neither events nor read models
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS es_pg_bank CASCADE;
RESET client_min_messages;
\set SHOW_CONTEXT never

SELECT bank_create_account('rules-open', 'Alice', 100);
SELECT bank_create_account('rules-closed', 'Bob', 0);
SELECT bank_close_account('rules-closed');

-- each rule once with its message, detail and hint (the SQLSTATEs are
-- checked below)
SELECT bank_deposit('rules-missing', 10);			-- EB001
SELECT bank_create_account('rules-open', 'Eve', 5);	-- EB002
SELECT bank_deposit('rules-closed', 10);			-- EB003
SELECT bank_withdraw('rules-closed', 10);			-- EB003
SELECT bank_close_account('rules-closed');			-- EB003
SELECT bank_deposit('rules-open', -10);				-- EB004
SELECT bank_create_account('rules-new', 'Eve', -1);	-- EB004
SELECT bank_withdraw('rules-open', 100.01);			-- EB005
SELECT bank_close_account('rules-open');			-- EB006
SELECT bank_deposit(NULL, 10);						-- 22004
SELECT bank_deposit('rules-open', NULL);			-- 22004
SELECT bank_create_account('rules-new', NULL);		-- 22004
SELECT bank_deposit('', 10);						-- 22023

-- every case: the SQLSTATE, and nothing written anywhere
CREATE TEMP TABLE cases (n serial, label text, sql text, want text);
INSERT INTO cases (label, sql, want) VALUES
	('deposit to a missing account', $$SELECT bank_deposit('rules-missing', 10)$$, 'EB001'),
	('withdraw from a missing account', $$SELECT bank_withdraw('rules-missing', 10)$$, 'EB001'),
	('close a missing account', $$SELECT bank_close_account('rules-missing')$$, 'EB001'),
	('create an existing account', $$SELECT bank_create_account('rules-open', 'Eve', 5)$$, 'EB002'),
	('create a closed account again', $$SELECT bank_create_account('rules-closed', 'Bob')$$, 'EB002'),
	('deposit to a closed account', $$SELECT bank_deposit('rules-closed', 10)$$, 'EB003'),
	('withdraw from a closed account', $$SELECT bank_withdraw('rules-closed', 10)$$, 'EB003'),
	('close a closed account', $$SELECT bank_close_account('rules-closed')$$, 'EB003'),
	('deposit zero', $$SELECT bank_deposit('rules-open', 0)$$, 'EB004'),
	('deposit a negative amount', $$SELECT bank_deposit('rules-open', -0.01)$$, 'EB004'),
	('deposit NaN', $$SELECT bank_deposit('rules-open', 'NaN')$$, 'EB004'),
	('deposit Infinity', $$SELECT bank_deposit('rules-open', 'Infinity')$$, 'EB004'),
	('withdraw zero', $$SELECT bank_withdraw('rules-open', 0)$$, 'EB004'),
	('withdraw a negative amount', $$SELECT bank_withdraw('rules-open', -5)$$, 'EB004'),
	('withdraw NaN', $$SELECT bank_withdraw('rules-open', 'NaN')$$, 'EB004'),
	('withdraw -Infinity', $$SELECT bank_withdraw('rules-open', '-Infinity')$$, 'EB004'),
	('create with a negative deposit', $$SELECT bank_create_account('rules-new', 'Eve', -1)$$, 'EB004'),
	('create with a NaN deposit', $$SELECT bank_create_account('rules-new', 'Eve', 'NaN')$$, 'EB004'),
	('bad amount on a missing account: the amount first', $$SELECT bank_deposit('rules-missing', -1)$$, 'EB004'),
	('withdraw a cent too much', $$SELECT bank_withdraw('rules-open', 100.01)$$, 'EB005'),
	('withdraw far too much', $$SELECT bank_withdraw('rules-open', 1e20)$$, 'EB005'),
	('close with a balance', $$SELECT bank_close_account('rules-open')$$, 'EB006'),
	('null account id', $$SELECT bank_deposit(NULL, 10)$$, '22004'),
	('null amount', $$SELECT bank_withdraw('rules-open', NULL)$$, '22004'),
	('null owner', $$SELECT bank_create_account('rules-new', NULL)$$, '22004'),
	('null initial deposit', $$SELECT bank_create_account('rules-new', 'Eve', NULL)$$, '22004'),
	('empty account id', $$SELECT bank_create_account('', 'Eve')$$, '22023'),
	('account id with a newline (es_pg rejects the stream id)', $$SELECT bank_create_account(E'rules\nnew', 'Eve')$$, '22023');

CREATE TEMP TABLE results (n int, label text, want text, got text, nothing_written boolean);
DO $$
DECLARE
	c record;
	state text;
	before text;
	after text;
BEGIN
	FOR c IN SELECT * FROM cases ORDER BY n LOOP
		SELECT format('%s|%s|%s|%s', es_head_position(),
					  (SELECT string_agg(a::text, ',' ORDER BY account_id) FROM bank_accounts a),
					  (SELECT string_agg(t::text, ',' ORDER BY global_position) FROM bank_transactions t),
					  (SELECT string_agg(s::text, ',' ORDER BY day) FROM bank_daily_summary s))
		  INTO before;
		state := 'none';
		BEGIN
			EXECUTE c.sql;
		EXCEPTION WHEN OTHERS THEN
			GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE;
		END;
		SELECT format('%s|%s|%s|%s', es_head_position(),
					  (SELECT string_agg(a::text, ',' ORDER BY account_id) FROM bank_accounts a),
					  (SELECT string_agg(t::text, ',' ORDER BY global_position) FROM bank_transactions t),
					  (SELECT string_agg(s::text, ',' ORDER BY day) FROM bank_daily_summary s))
		  INTO after;
		INSERT INTO results VALUES (c.n, c.label, c.want, state, before = after);
	END LOOP;
END
$$;
SELECT n, label, got, got = want AS ok, nothing_written FROM results ORDER BY n;

-- the limits themselves are allowed: a zero opening deposit, withdrawing
-- the whole balance, closing at exactly zero, amounts with many decimals
SELECT bank_create_account('rules-zero', 'Carol');
SELECT bank_deposit('rules-zero', 0.005);
SELECT bank_withdraw('rules-zero', 0.005);
SELECT bank_close_account('rules-zero');
SELECT bank_withdraw('rules-open', 100);
SELECT account_id, owner, balance, status, version
  FROM bank_accounts WHERE account_id LIKE 'rules-%' ORDER BY account_id;

-- what the refused commands left: only the accepted events
SELECT stream_id, version, event_type, data
  FROM es_events WHERE stream_id LIKE 'account-rules-%'
 ORDER BY stream_id, version;

-- leave es_pg as the other tests expect it: the policy and the snapshots
-- are es_pg's rows, which DROP EXTENSION es_pg_bank does not remove
SELECT es_drop_snapshot_policy('bank_account_reducer(jsonb, es_events)');
SELECT es_drop_snapshots('bank_account_reducer(jsonb, es_events)') >= 0 AS dropped;
DROP EXTENSION es_pg_bank;
