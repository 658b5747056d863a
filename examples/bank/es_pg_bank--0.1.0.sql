/*
 * es_pg_bank install script: the bank account of the design notes, as an
 * example module on top of es_pg.  docs/bank.md documents it.
 *
 *	write side		bank_create_account, bank_deposit, bank_withdraw,
 *					bank_close_account: load the aggregate (snapshot plus
 *					tail, through es_aggregate and bank_account_reducer),
 *					decide with the rules, append with the expected version,
 *					retry on a version conflict
 *	read side		three inline projections and their tables:
 *					bank_accounts, bank_transactions, bank_daily_summary,
 *					with a query function each
 *
 * Rule violations raise SQLSTATEs of the class EB (EB001 to EB006), listed
 * in docs/bank.md.
 */
\echo Use "CREATE EXTENSION es_pg_bank" to load this file. \quit

/*
 * No function of this module depends on the caller's search_path.  Most run
 * with a pinned one: pg_catalog, this extension's schema, es_pg's schema,
 * pg_temp last.  The path is set here for the rest of the script (CREATE
 * EXTENSION restores it afterwards) and each function takes it over with SET
 * search_path FROM CURRENT.  While the script runs, current_schema() is the
 * schema the extension goes into; with pg_catalog first, objects are created
 * with @extschema@ spelled out.  Functions with a SQL-standard body (RETURN
 * or BEGIN ATOMIC) are parsed once, here, under this path, and store the
 * objects they name: the caller's search_path plays no part in them, so they
 * go without the SET (which would also keep the planner from inlining them).
 * The reducer qualifies every name it uses instead (see there).
 */
SELECT pg_catalog.set_config('search_path',
		pg_catalog.concat_ws(', ', 'pg_catalog',
							 pg_catalog.quote_ident(pg_catalog.current_schema()),
							 CASE WHEN n.nspname OPERATOR(pg_catalog.<>) pg_catalog.current_schema()
								  THEN pg_catalog.quote_ident(n.nspname) END,
							 'pg_temp'),
		true)
  FROM pg_catalog.pg_extension e
  JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) e.extnamespace
 WHERE e.extname OPERATOR(pg_catalog.=) 'es_pg';

/* ---------------------------------------------------------------------
 * The aggregate: streams, state and the reducer
 * ---------------------------------------------------------------------
 */

/*
 * An account ACC-001 lives in the stream "account-ACC-001".  The prefix
 * keeps bank streams apart from any other stream of the store: the
 * projections ignore events of streams without it.
 */
CREATE FUNCTION @extschema@.bank_stream_id(account_id text)
	RETURNS text
	LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
	RETURN pg_catalog.concat('account-', account_id);
COMMENT ON FUNCTION bank_stream_id(text) IS
	'the es_pg stream of a bank account: ''account-'' || account_id';

CREATE FUNCTION @extschema@.bank_account_id(stream_id text)
	RETURNS text
	LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
	RETURN CASE WHEN pg_catalog.starts_with(stream_id, 'account-')
				THEN pg_catalog.substr(stream_id, 9) END;
COMMENT ON FUNCTION bank_account_id(text) IS
	'the account id of a bank stream, NULL for a stream that is not a bank account';

/*
 * bank_account_reducer folds one event into the account's state, for
 * es_aggregate.  The state is
 *	{"account_id", "owner", "balance" (a JSON number: exact numeric),
 *	 "status" ("open" or "closed"), "version" (of the last event folded)}
 * and '{}' before the account exists.  It must stay pure and deterministic:
 * snapshots store its output (after changing it, see docs/bank.md).
 *
 * It runs once per replayed event, so it is PL/pgSQL (simple expressions
 * are evaluated without the executor) without a SET clause (which costs a
 * GUC change per call): every name in it is qualified instead, operators
 * included.
 */
CREATE FUNCTION @extschema@.bank_account_reducer(state jsonb, event es_events)
	RETURNS jsonb
	LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
	AS $$
DECLARE
	kind pg_catalog.text := event.event_type;
BEGIN
	IF kind OPERATOR(pg_catalog.=) 'MoneyDeposited' THEN
		RETURN state OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object(
			'balance', (state OPERATOR(pg_catalog.->>) 'balance')::numeric
				OPERATOR(pg_catalog.+) (event.data OPERATOR(pg_catalog.->>) 'amount')::numeric,
			'version', event.version);
	ELSIF kind OPERATOR(pg_catalog.=) 'MoneyWithdrawn' THEN
		RETURN state OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object(
			'balance', (state OPERATOR(pg_catalog.->>) 'balance')::numeric
				OPERATOR(pg_catalog.-) (event.data OPERATOR(pg_catalog.->>) 'amount')::numeric,
			'version', event.version);
	ELSIF kind OPERATOR(pg_catalog.=) 'AccountCreated'
		AND NOT state OPERATOR(pg_catalog.?) 'account_id' THEN
		RETURN pg_catalog.jsonb_build_object(
			'account_id', event.data OPERATOR(pg_catalog.->) 'account_id',
			'owner', event.data OPERATOR(pg_catalog.->) 'owner',
			'balance', COALESCE((event.data OPERATOR(pg_catalog.->>) 'initial_deposit')::numeric, 0),
			'status', 'open',
			'version', event.version);
	ELSIF kind OPERATOR(pg_catalog.=) 'AccountClosed' THEN
		RETURN state OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object(
			'status', 'closed', 'version', event.version);
	END IF;
	/* a second AccountCreated, or an event this reducer does not know */
	RETURN state OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object('version', event.version);
END
$$;
COMMENT ON FUNCTION bank_account_reducer(jsonb, es_events) IS
	'es_aggregate reducer of a bank account: folds one event into the state';

/*
 * bank_account_state is the state of an account rebuilt from its events
 * (snapshot plus tail), now or as it was at a version or a time: '{}' when
 * the account does not exist (yet).  Like the commands it runs as the
 * extension's owner, so that a bank application role needs no privilege on
 * es_events.
 */
CREATE FUNCTION @extschema@.bank_account_state(account_id text,
		as_of_version bigint DEFAULT NULL,
		as_of_time timestamptz DEFAULT NULL)
	RETURNS jsonb
	LANGUAGE sql VOLATILE SECURITY DEFINER
	SET search_path FROM CURRENT
	RETURN es_aggregate(bank_stream_id(account_id),
						'bank_account_reducer(jsonb, es_events)'::regprocedure,
						'{}'::jsonb, as_of_version, as_of_time);
COMMENT ON FUNCTION bank_account_state(text, bigint, timestamptz) IS
	'state of a bank account replayed from its events, now or as of a version or a time';
REVOKE ALL ON FUNCTION bank_account_state(text, bigint, timestamptz) FROM PUBLIC;

/* snapshots every 100 events: loading an account replays at most about 100 */
SELECT es_set_snapshot_policy('bank_account_reducer(jsonb, es_events)'::regprocedure, 100);

/* ---------------------------------------------------------------------
 * The write side: rules and commands
 * ---------------------------------------------------------------------
 */

/*
 * bank_check_amount raises EB004 unless the amount is a positive finite
 * number (zero allowed for an opening deposit).  NaN needs its own test:
 * numeric NaN compares greater than every number.
 */
CREATE FUNCTION @extschema@.bank_check_amount(amount numeric, what text, zero_ok boolean)
	RETURNS void
	LANGUAGE plpgsql IMMUTABLE
	SET search_path FROM CURRENT
	AS $$
BEGIN
	IF amount IS NULL THEN
		RAISE EXCEPTION '% must not be null', what
			USING ERRCODE = 'null_value_not_allowed';
	END IF;
	IF amount = 'NaN'::numeric OR amount IN ('Infinity'::numeric, '-Infinity'::numeric)
		OR amount < 0 OR (amount = 0 AND NOT zero_ok) THEN
		RAISE EXCEPTION 'invalid % %', what, amount
			USING ERRCODE = 'EB004',
				  DETAIL = CASE WHEN zero_ok
							THEN pg_catalog.format('An %s must be zero or a positive number.', what)
							ELSE pg_catalog.format('An %s must be a positive number.', what) END;
	END IF;
END
$$;

CREATE FUNCTION @extschema@.bank_check_account_id(account_id text)
	RETURNS void
	LANGUAGE plpgsql IMMUTABLE
	SET search_path FROM CURRENT
	AS $$
BEGIN
	IF account_id IS NULL THEN
		RAISE EXCEPTION 'account id must not be null'
			USING ERRCODE = 'null_value_not_allowed';
	END IF;
	IF account_id = '' THEN
		RAISE EXCEPTION 'account id must not be empty'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
END
$$;

/*
 * bank_decide applies the rules of the aggregate to a command against the
 * account's current state.  It returns the event to append or raises the
 * rule's SQLSTATE; it has no side effects.
 */
CREATE FUNCTION @extschema@.bank_decide(state jsonb, command text, account_id text,
		amount numeric, owner text,
		OUT event_type text, OUT data jsonb)
	LANGUAGE plpgsql IMMUTABLE
	SET search_path FROM CURRENT
	AS $$
DECLARE
	exists_ boolean := state ? 'account_id';
	balance numeric := (state->>'balance')::numeric;
BEGIN
	IF command = 'CreateAccount' THEN
		IF exists_ THEN
			RAISE EXCEPTION 'account "%" already exists', account_id
				USING ERRCODE = 'EB002',
					  DETAIL = pg_catalog.format('Account "%s" was opened by %s.',
												 account_id, state->>'owner'),
					  HINT = 'Choose another account id.';
		END IF;
		event_type := 'AccountCreated';
		data := jsonb_build_object('account_id', account_id, 'owner', owner,
								   'initial_deposit', amount);
		RETURN;
	END IF;

	IF NOT exists_ THEN
		RAISE EXCEPTION 'account "%" does not exist', account_id
			USING ERRCODE = 'EB001',
				  HINT = 'Create it with bank_create_account.';
	END IF;
	IF state->>'status' = 'closed' THEN
		RAISE EXCEPTION 'account "%" is closed', account_id
			USING ERRCODE = 'EB003',
				  DETAIL = CASE command
					WHEN 'DepositMoney' THEN 'A closed account takes no deposits.'
					WHEN 'WithdrawMoney' THEN 'A closed account allows no withdrawals.'
					ELSE 'The account is already closed.' END;
	END IF;

	CASE command
		WHEN 'DepositMoney' THEN
			event_type := 'MoneyDeposited';
			data := jsonb_build_object('amount', amount);
		WHEN 'WithdrawMoney' THEN
			IF amount > balance THEN
				RAISE EXCEPTION 'insufficient funds in account "%"', account_id
					USING ERRCODE = 'EB005',
						  DETAIL = pg_catalog.format('The balance is %s; the withdrawal asks for %s.',
													 balance, amount);
			END IF;
			event_type := 'MoneyWithdrawn';
			data := jsonb_build_object('amount', amount);
		WHEN 'CloseAccount' THEN
			IF balance <> 0 THEN
				RAISE EXCEPTION 'account "%" still has a balance', account_id
					USING ERRCODE = 'EB006',
						  DETAIL = pg_catalog.format('The balance is %s; an account closes only at a zero balance.',
													 balance),
						  HINT = 'Withdraw the balance first.';
			END IF;
			event_type := 'AccountClosed';
			data := '{}'::jsonb;
	END CASE;
END
$$;

/*
 * bank_execute runs one command: check the arguments, load the aggregate,
 * decide, append with the expected version.  When another transaction
 * appended to the account in between (SQLSTATE 40001 from es_append), it
 * reloads and decides again, up to 5 attempts in all.  Only READ COMMITTED
 * can retry inside the transaction: under REPEATABLE READ or SERIALIZABLE
 * the transaction's snapshot cannot see the competing event, so the 40001
 * goes to the caller, who retries the whole transaction.  Each event's
 * metadata names the command, the attempt that wrote it and the session
 * user.  Returns the account's new version.
 */
CREATE FUNCTION @extschema@.bank_execute(command text, account_id text, amount numeric,
		owner text)
	RETURNS bigint
	LANGUAGE plpgsql VOLATILE SECURITY DEFINER
	SET search_path FROM CURRENT
	AS $$
DECLARE
	max_attempts constant integer := 5;
	attempt integer := 1;
	stream text;
	state jsonb;
	decision record;
	conflict text;
BEGIN
	PERFORM bank_check_account_id(account_id);
	IF command = 'CreateAccount' THEN
		IF owner IS NULL THEN
			RAISE EXCEPTION 'owner must not be null'
				USING ERRCODE = 'null_value_not_allowed';
		END IF;
		PERFORM bank_check_amount(amount, 'initial deposit', true);
	ELSIF command IN ('DepositMoney', 'WithdrawMoney') THEN
		PERFORM bank_check_amount(amount, 'amount', false);
	END IF;
	stream := bank_stream_id(account_id);

	LOOP
		BEGIN
			state := bank_account_state(account_id);
			SELECT * INTO decision
			  FROM bank_decide(state, command, account_id, amount, owner);
			RETURN es_append(stream, decision.event_type, decision.data,
							 COALESCE((state->>'version')::bigint, 0),
							 jsonb_build_object('command', command,
												'attempt', attempt,
												'user', session_user));
		EXCEPTION WHEN serialization_failure THEN
			IF attempt >= max_attempts
				OR current_setting('transaction_isolation') <> 'read committed' THEN
				RAISE;
			END IF;
			GET STACKED DIAGNOSTICS conflict = PG_EXCEPTION_DETAIL;
			RAISE NOTICE 'version conflict on account "%": retrying (attempt % of %)',
				account_id, attempt + 1, max_attempts
				USING DETAIL = conflict;
		END;
		attempt := attempt + 1;
	END LOOP;
END
$$;
REVOKE ALL ON FUNCTION bank_execute(text, text, numeric, text) FROM PUBLIC;

/*
 * The commands.  They run as the extension's owner (SECURITY DEFINER), so an
 * application role needs EXECUTE on them and nothing on es_events.
 */
CREATE FUNCTION @extschema@.bank_create_account(account_id text, owner text,
		initial_deposit numeric DEFAULT 0)
	RETURNS bigint
	LANGUAGE sql VOLATILE SECURITY DEFINER
	SET search_path FROM CURRENT
	RETURN bank_execute('CreateAccount', account_id, initial_deposit, owner);
COMMENT ON FUNCTION bank_create_account(text, text, numeric) IS
	'command CreateAccount: open an account with an initial deposit; returns its version (1)';

CREATE FUNCTION @extschema@.bank_deposit(account_id text, amount numeric)
	RETURNS bigint
	LANGUAGE sql VOLATILE SECURITY DEFINER
	SET search_path FROM CURRENT
	RETURN bank_execute('DepositMoney', account_id, amount, NULL);
COMMENT ON FUNCTION bank_deposit(text, numeric) IS
	'command DepositMoney; returns the account''s new version';

CREATE FUNCTION @extschema@.bank_withdraw(account_id text, amount numeric)
	RETURNS bigint
	LANGUAGE sql VOLATILE SECURITY DEFINER
	SET search_path FROM CURRENT
	RETURN bank_execute('WithdrawMoney', account_id, amount, NULL);
COMMENT ON FUNCTION bank_withdraw(text, numeric) IS
	'command WithdrawMoney; returns the account''s new version';

CREATE FUNCTION @extschema@.bank_close_account(account_id text)
	RETURNS bigint
	LANGUAGE sql VOLATILE SECURITY DEFINER
	SET search_path FROM CURRENT
	RETURN bank_execute('CloseAccount', account_id, NULL, NULL);
COMMENT ON FUNCTION bank_close_account(text) IS
	'command CloseAccount (only at a zero balance); returns the account''s new version';

REVOKE ALL ON FUNCTION bank_create_account(text, text, numeric) FROM PUBLIC;
REVOKE ALL ON FUNCTION bank_deposit(text, numeric) FROM PUBLIC;
REVOKE ALL ON FUNCTION bank_withdraw(text, numeric) FROM PUBLIC;
REVOKE ALL ON FUNCTION bank_close_account(text) FROM PUBLIC;

/* ---------------------------------------------------------------------
 * The read side: three projections, inline, with a query function each
 * ---------------------------------------------------------------------
 */

/* balance view: one row per account */
CREATE TABLE @extschema@.bank_accounts (
	account_id	text PRIMARY KEY,
	owner		text NOT NULL,
	balance		numeric NOT NULL,
	status		text NOT NULL CHECK (status IN ('open', 'closed')),
	opened_at	timestamptz NOT NULL,
	last_updated timestamptz NOT NULL,
	version		bigint NOT NULL
);
COMMENT ON TABLE bank_accounts IS
	'read model of projection bank_accounts: balance, owner and status per account';

/* transaction history: one row per deposit or withdrawal */
CREATE TABLE @extschema@.bank_transactions (
	global_position bigint PRIMARY KEY,
	account_id	text NOT NULL,
	version		bigint NOT NULL,
	type		text NOT NULL CHECK (type IN ('deposit', 'withdrawal')),
	amount		numeric NOT NULL,
	recorded_at timestamptz NOT NULL,
	UNIQUE (account_id, version)
);
COMMENT ON TABLE bank_transactions IS
	'read model of projection bank_transactions: deposits and withdrawals of every account';

/* daily summary: one row per day (UTC) with deposits or withdrawals */
CREATE TABLE @extschema@.bank_daily_summary (
	day			date PRIMARY KEY,
	deposits	numeric NOT NULL DEFAULT 0,
	withdrawals numeric NOT NULL DEFAULT 0,
	net			numeric GENERATED ALWAYS AS (deposits - withdrawals) STORED,
	transactions bigint NOT NULL DEFAULT 0
);
COMMENT ON TABLE bank_daily_summary IS
	'read model of projection bank_daily_summary: deposits, withdrawals and net per UTC day';

/* read models follow the events through pg_dump and restore */
SELECT pg_catalog.pg_extension_config_dump('bank_accounts', '');
SELECT pg_catalog.pg_extension_config_dump('bank_transactions', '');
SELECT pg_catalog.pg_extension_config_dump('bank_daily_summary', '');

/*
 * The handlers.  Each ignores streams that are not bank accounts.  They are
 * written so that applying the same event twice changes nothing where that
 * is cheap to check (the balance view tracks the version it reached, the
 * history is keyed by global position); the daily summary relies on the
 * projection machinery applying each event once.
 */
CREATE FUNCTION @extschema@.bank_accounts_apply(event es_events)
	RETURNS void
	LANGUAGE plpgsql VOLATILE
	SET search_path FROM CURRENT
	AS $$
DECLARE
	account text := bank_account_id(event.stream_id);
BEGIN
	IF account IS NULL THEN
		RETURN;
	END IF;
	CASE event.event_type
		WHEN 'AccountCreated' THEN
			INSERT INTO bank_accounts (account_id, owner, balance, status,
									   opened_at, last_updated, version)
			VALUES (account, COALESCE(event.data->>'owner', ''),
					COALESCE((event.data->>'initial_deposit')::numeric, 0),
					'open', event.recorded_at, event.recorded_at, event.version)
			ON CONFLICT (account_id) DO NOTHING;
		WHEN 'MoneyDeposited' THEN
			UPDATE bank_accounts
			   SET balance = balance + (event.data->>'amount')::numeric,
				   last_updated = event.recorded_at, version = event.version
			 WHERE account_id = account AND version < event.version;
		WHEN 'MoneyWithdrawn' THEN
			UPDATE bank_accounts
			   SET balance = balance - (event.data->>'amount')::numeric,
				   last_updated = event.recorded_at, version = event.version
			 WHERE account_id = account AND version < event.version;
		WHEN 'AccountClosed' THEN
			UPDATE bank_accounts
			   SET status = 'closed',
				   last_updated = event.recorded_at, version = event.version
			 WHERE account_id = account AND version < event.version;
		ELSE
			NULL;
	END CASE;
END
$$;

CREATE FUNCTION @extschema@.bank_accounts_reset()
	RETURNS void
	LANGUAGE sql VOLATILE
	BEGIN ATOMIC
		DELETE FROM bank_accounts;
	END;

CREATE FUNCTION @extschema@.bank_transactions_apply(event es_events)
	RETURNS void
	LANGUAGE plpgsql VOLATILE
	SET search_path FROM CURRENT
	AS $$
DECLARE
	account text := bank_account_id(event.stream_id);
BEGIN
	IF account IS NULL OR event.event_type NOT IN ('MoneyDeposited', 'MoneyWithdrawn') THEN
		RETURN;
	END IF;
	INSERT INTO bank_transactions (global_position, account_id, version, type,
								   amount, recorded_at)
	VALUES (event.global_position, account, event.version,
			CASE event.event_type WHEN 'MoneyDeposited' THEN 'deposit' ELSE 'withdrawal' END,
			(event.data->>'amount')::numeric, event.recorded_at)
	ON CONFLICT DO NOTHING;
END
$$;

CREATE FUNCTION @extschema@.bank_transactions_reset()
	RETURNS void
	LANGUAGE sql VOLATILE
	BEGIN ATOMIC
		DELETE FROM bank_transactions;
	END;

CREATE FUNCTION @extschema@.bank_daily_summary_apply(event es_events)
	RETURNS void
	LANGUAGE plpgsql VOLATILE
	SET search_path FROM CURRENT
	AS $$
DECLARE
	amount numeric := (event.data->>'amount')::numeric;
	deposit boolean := event.event_type = 'MoneyDeposited';
BEGIN
	IF bank_account_id(event.stream_id) IS NULL
		OR event.event_type NOT IN ('MoneyDeposited', 'MoneyWithdrawn') THEN
		RETURN;
	END IF;
	/* days are UTC days, whatever the appending session's TimeZone */
	INSERT INTO bank_daily_summary AS s (day, deposits, withdrawals, transactions)
	VALUES ((event.recorded_at AT TIME ZONE 'UTC')::date,
			CASE WHEN deposit THEN amount ELSE 0 END,
			CASE WHEN deposit THEN 0 ELSE amount END,
			1)
	ON CONFLICT (day) DO UPDATE
	   SET deposits = s.deposits + excluded.deposits,
		   withdrawals = s.withdrawals + excluded.withdrawals,
		   transactions = s.transactions + 1;
END
$$;

CREATE FUNCTION @extschema@.bank_daily_summary_reset()
	RETURNS void
	LANGUAGE sql VOLATILE
	BEGIN ATOMIC
		DELETE FROM bank_daily_summary;
	END;

/* the handlers write read models: only the projection machinery calls them */
REVOKE ALL ON FUNCTION bank_accounts_apply(es_events) FROM PUBLIC;
REVOKE ALL ON FUNCTION bank_accounts_reset() FROM PUBLIC;
REVOKE ALL ON FUNCTION bank_transactions_apply(es_events) FROM PUBLIC;
REVOKE ALL ON FUNCTION bank_transactions_reset() FROM PUBLIC;
REVOKE ALL ON FUNCTION bank_daily_summary_apply(es_events) FROM PUBLIC;
REVOKE ALL ON FUNCTION bank_daily_summary_reset() FROM PUBLIC;

SELECT es_create_projection('bank_accounts',
		'bank_accounts_apply(es_events)'::regprocedure,
		ARRAY['AccountCreated', 'MoneyDeposited', 'MoneyWithdrawn', 'AccountClosed'],
		'inline', 'bank_accounts_reset()'::regprocedure, true);
SELECT es_create_projection('bank_transactions',
		'bank_transactions_apply(es_events)'::regprocedure,
		ARRAY['MoneyDeposited', 'MoneyWithdrawn'],
		'inline', 'bank_transactions_reset()'::regprocedure, true);
SELECT es_create_projection('bank_daily_summary',
		'bank_daily_summary_apply(es_events)'::regprocedure,
		ARRAY['MoneyDeposited', 'MoneyWithdrawn'],
		'inline', 'bank_daily_summary_reset()'::regprocedure, true);

/* query functions, one per projection */
CREATE FUNCTION @extschema@.bank_get_account(account_id text)
	RETURNS SETOF bank_accounts
	LANGUAGE sql STABLE STRICT
	BEGIN ATOMIC
		SELECT * FROM bank_accounts a WHERE a.account_id = bank_get_account.account_id;
	END;
COMMENT ON FUNCTION bank_get_account(text) IS
	'query: balance, owner and status of one account (projection bank_accounts)';

CREATE FUNCTION @extschema@.bank_get_history(account_id text)
	RETURNS SETOF bank_transactions
	LANGUAGE sql STABLE STRICT
	BEGIN ATOMIC
		SELECT * FROM bank_transactions t
		 WHERE t.account_id = bank_get_history.account_id
		 ORDER BY t.version;
	END;
COMMENT ON FUNCTION bank_get_history(text) IS
	'query: deposits and withdrawals of one account, oldest first (projection bank_transactions)';

CREATE FUNCTION @extschema@.bank_get_daily_summary(from_day date DEFAULT NULL,
		to_day date DEFAULT NULL)
	RETURNS SETOF bank_daily_summary
	LANGUAGE sql STABLE
	BEGIN ATOMIC
		SELECT * FROM bank_daily_summary s
		 WHERE (from_day IS NULL OR s.day >= from_day)
		   AND (to_day IS NULL OR s.day <= to_day)
		 ORDER BY s.day;
	END;
COMMENT ON FUNCTION bank_get_daily_summary(date, date) IS
	'query: deposits, withdrawals and net per UTC day, between two days inclusive (projection bank_daily_summary)';
