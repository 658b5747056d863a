/*
 * bench/sql/projections.sql: the three read models of the projection
 * workloads, and functions that register and drop them.
 *
 * With the bank module (examples/bank, extension es_pg_bank) installed, its
 * handlers and tables are used: bench.projection_defs names them.  Without
 * it, this file creates equivalent handlers of its own (the same statements
 * as the bank module's, on tables in schema bench), and the report says so.
 * psql variable: bank = 1 when es_pg_bank is installed.
 */
\set ON_ERROR_STOP on
SET client_min_messages = warning;

CREATE TABLE bench.projection_defs (
	name		text PRIMARY KEY,
	handler		regprocedure NOT NULL,
	event_types text[],
	reset		regprocedure
);

\if :bank
INSERT INTO bench.projection_defs VALUES
	('bank_accounts', 'bank_accounts_apply(es_events)',
	 ARRAY['AccountCreated', 'MoneyDeposited', 'MoneyWithdrawn', 'AccountClosed'],
	 'bank_accounts_reset()'),
	('bank_transactions', 'bank_transactions_apply(es_events)',
	 ARRAY['MoneyDeposited', 'MoneyWithdrawn'], 'bank_transactions_reset()'),
	('bank_daily_summary', 'bank_daily_summary_apply(es_events)',
	 ARRAY['MoneyDeposited', 'MoneyWithdrawn'], 'bank_daily_summary_reset()');
\else
CREATE TABLE bench.accounts (
	account_id	text PRIMARY KEY,
	owner		text NOT NULL,
	balance		numeric NOT NULL,
	status		text NOT NULL CHECK (status IN ('open', 'closed')),
	opened_at	timestamptz NOT NULL,
	last_updated timestamptz NOT NULL,
	version		bigint NOT NULL
);
CREATE TABLE bench.transactions (
	global_position bigint PRIMARY KEY,
	account_id	text NOT NULL,
	version		bigint NOT NULL,
	type		text NOT NULL CHECK (type IN ('deposit', 'withdrawal')),
	amount		numeric NOT NULL,
	recorded_at timestamptz NOT NULL,
	UNIQUE (account_id, version)
);
CREATE TABLE bench.daily_summary (
	day			date PRIMARY KEY,
	deposits	numeric NOT NULL DEFAULT 0,
	withdrawals numeric NOT NULL DEFAULT 0,
	net			numeric GENERATED ALWAYS AS (deposits - withdrawals) STORED,
	transactions bigint NOT NULL DEFAULT 0
);

CREATE FUNCTION bench.account_id(stream_id text)
	RETURNS text
	LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
	RETURN CASE WHEN starts_with(stream_id, 'account-')
				THEN substr(stream_id, 9) END;

CREATE FUNCTION bench.accounts_apply(event es_events)
	RETURNS void
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, bench, public
	AS $$
DECLARE
	account text := bench.account_id(event.stream_id);
BEGIN
	IF account IS NULL THEN
		RETURN;
	END IF;
	CASE event.event_type
		WHEN 'AccountCreated' THEN
			INSERT INTO bench.accounts (account_id, owner, balance, status,
										opened_at, last_updated, version)
			VALUES (account, COALESCE(event.data->>'owner', ''),
					COALESCE((event.data->>'initial_deposit')::numeric, 0),
					'open', event.recorded_at, event.recorded_at, event.version)
			ON CONFLICT (account_id) DO NOTHING;
		WHEN 'MoneyDeposited' THEN
			UPDATE bench.accounts
			   SET balance = balance + (event.data->>'amount')::numeric,
				   last_updated = event.recorded_at, version = event.version
			 WHERE account_id = account AND version < event.version;
		WHEN 'MoneyWithdrawn' THEN
			UPDATE bench.accounts
			   SET balance = balance - (event.data->>'amount')::numeric,
				   last_updated = event.recorded_at, version = event.version
			 WHERE account_id = account AND version < event.version;
		WHEN 'AccountClosed' THEN
			UPDATE bench.accounts
			   SET status = 'closed',
				   last_updated = event.recorded_at, version = event.version
			 WHERE account_id = account AND version < event.version;
		ELSE
			NULL;
	END CASE;
END
$$;
CREATE FUNCTION bench.accounts_reset()
	RETURNS void
	LANGUAGE sql VOLATILE
	BEGIN ATOMIC
		DELETE FROM bench.accounts;
	END;

CREATE FUNCTION bench.transactions_apply(event es_events)
	RETURNS void
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, bench, public
	AS $$
DECLARE
	account text := bench.account_id(event.stream_id);
BEGIN
	IF account IS NULL OR event.event_type NOT IN ('MoneyDeposited', 'MoneyWithdrawn') THEN
		RETURN;
	END IF;
	INSERT INTO bench.transactions (global_position, account_id, version, type,
									amount, recorded_at)
	VALUES (event.global_position, account, event.version,
			CASE event.event_type WHEN 'MoneyDeposited' THEN 'deposit' ELSE 'withdrawal' END,
			(event.data->>'amount')::numeric, event.recorded_at)
	ON CONFLICT DO NOTHING;
END
$$;
CREATE FUNCTION bench.transactions_reset()
	RETURNS void
	LANGUAGE sql VOLATILE
	BEGIN ATOMIC
		DELETE FROM bench.transactions;
	END;

CREATE FUNCTION bench.daily_summary_apply(event es_events)
	RETURNS void
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, bench, public
	AS $$
DECLARE
	amount numeric := (event.data->>'amount')::numeric;
	deposit boolean := event.event_type = 'MoneyDeposited';
BEGIN
	IF bench.account_id(event.stream_id) IS NULL
		OR event.event_type NOT IN ('MoneyDeposited', 'MoneyWithdrawn') THEN
		RETURN;
	END IF;
	INSERT INTO bench.daily_summary AS s (day, deposits, withdrawals, transactions)
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
CREATE FUNCTION bench.daily_summary_reset()
	RETURNS void
	LANGUAGE sql VOLATILE
	BEGIN ATOMIC
		DELETE FROM bench.daily_summary;
	END;

INSERT INTO bench.projection_defs VALUES
	('bench_accounts', 'bench.accounts_apply(es_events)',
	 ARRAY['AccountCreated', 'MoneyDeposited', 'MoneyWithdrawn', 'AccountClosed'],
	 'bench.accounts_reset()'),
	('bench_transactions', 'bench.transactions_apply(es_events)',
	 ARRAY['MoneyDeposited', 'MoneyWithdrawn'], 'bench.transactions_reset()'),
	('bench_daily_summary', 'bench.daily_summary_apply(es_events)',
	 ARRAY['MoneyDeposited', 'MoneyWithdrawn'], 'bench.daily_summary_reset()');
\endif

/* register the three projections in a mode, starting at the head */
CREATE FUNCTION bench.projections_on(mode text)
	RETURNS void
	LANGUAGE plpgsql
	AS $$
DECLARE
	d record;
BEGIN
	FOR d IN SELECT * FROM bench.projection_defs ORDER BY name LOOP
		PERFORM es_create_projection(d.name, d.handler, d.event_types, mode,
									 d.reset, false);
	END LOOP;
END
$$;

/* drop whichever of the three projections exist */
CREATE FUNCTION bench.projections_off()
	RETURNS void
	LANGUAGE plpgsql
	AS $$
DECLARE
	d record;
BEGIN
	FOR d IN SELECT p.name FROM bench.projection_defs p
			   JOIN es_projections e ON e.name = p.name LOOP
		PERFORM es_drop_projection(d.name);
	END LOOP;
END
$$;

/*
 * The reference of the catch-up and rebuild workloads: the three handlers
 * called on the events of a position range, in global order, from one plain
 * statement, each for the event types its projection takes.  Returns the
 * handler calls.
 */
CREATE FUNCTION bench.apply_handlers(from_position bigint, to_position bigint,
		only_name text DEFAULT NULL)
	RETURNS bigint
	LANGUAGE plpgsql
	AS $$
DECLARE
	d record;
	calls bigint := 0;
	n bigint;
BEGIN
	FOR d IN SELECT * FROM bench.projection_defs
			  WHERE only_name IS NULL OR name = only_name ORDER BY name LOOP
		EXECUTE format('SELECT count(%s(s.ev) IS NULL)
						  FROM (SELECT e AS ev FROM es_events e
								 WHERE e.global_position > $1
								   AND e.global_position <= $2
								   AND ($3 IS NULL OR e.event_type = ANY ($3))
								 ORDER BY e.global_position) s',
					   d.handler::regproc)
			INTO n USING from_position, to_position, d.event_types;
		calls := calls + n;
	END LOOP;
	RETURN calls;
END
$$;

/*
 * The reference of the rebuild workload: the projection's reset function,
 * then its handler over every event.  Returns the handler calls.
 */
CREATE FUNCTION bench.reset_and_apply(projection text)
	RETURNS bigint
	LANGUAGE plpgsql
	AS $$
DECLARE
	reset regprocedure;
BEGIN
	SELECT d.reset INTO reset FROM bench.projection_defs d WHERE d.name = projection;
	EXECUTE format('SELECT %s()', reset::regproc);
	RETURN bench.apply_handlers(0, (SELECT max(global_position) FROM es_events),
								projection);
END
$$;

/*
 * A backlog for the async workload: n events in batches of 10 (seven
 * deposits, three withdrawals) on random accounts among the first "streams".
 * Returns the events.
 */
CREATE FUNCTION bench.make_backlog(n integer, streams integer)
	RETURNS bigint
	LANGUAGE sql
	AS $$
	SELECT 10 * count(es_append_batch('account-' || floor(random() * streams)::int,
		'[{"type": "MoneyDeposited", "data": {"amount": 10}},
		  {"type": "MoneyDeposited", "data": {"amount": 20}},
		  {"type": "MoneyWithdrawn", "data": {"amount": 5}},
		  {"type": "MoneyDeposited", "data": {"amount": 30}},
		  {"type": "MoneyDeposited", "data": {"amount": 40}},
		  {"type": "MoneyWithdrawn", "data": {"amount": 15}},
		  {"type": "MoneyDeposited", "data": {"amount": 50}},
		  {"type": "MoneyDeposited", "data": {"amount": 60}},
		  {"type": "MoneyWithdrawn", "data": {"amount": 25}},
		  {"type": "MoneyDeposited", "data": {"amount": 70}}]'))
	  FROM generate_series(1, n / 10)
$$;

/*
 * The reference of the inline workload: es_append, then the three handlers
 * called by hand on the new event, in the same transaction: the work of the
 * inline projections without the dispatch machinery.  Generated from
 * bench.projection_defs, so that it calls the same handlers.
 */
DO $do$
DECLARE
	body text := '';
	d record;
BEGIN
	FOR d IN SELECT * FROM bench.projection_defs ORDER BY name LOOP
		body := body || format(
			E'\tIF %L IS NULL OR e.event_type = ANY (%L::text[]) THEN\n'
			'\t\tPERFORM %s(e);\n\tEND IF;\n',
			d.event_types, d.event_types, d.handler::regproc);
	END LOOP;
	EXECUTE format($f$
CREATE FUNCTION bench.append_by_hand(stream text, type text, data jsonb)
	RETURNS bigint
	LANGUAGE plpgsql
	AS $body$
DECLARE
	v bigint := es_append(stream, type, data);
	e es_events;
BEGIN
	SELECT * INTO e FROM es_events ev
	 WHERE ev.stream_id = stream AND ev.version = v;
%s	RETURN v;
END
$body$;
$f$, body);
END
$do$;
