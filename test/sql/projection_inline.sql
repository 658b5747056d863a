-- inline projections: the read model commits or rolls back with the append
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS es_pg;
DROP ROLE IF EXISTS regress_proj_admin;
DROP ROLE IF EXISTS regress_proj_appender;
RESET client_min_messages;

-- an admin role owns the read model; an appender role may only append
CREATE ROLE regress_proj_admin;
CREATE ROLE regress_proj_appender;
GRANT EXECUTE ON FUNCTION es_create_projection(text, regprocedure, text[], text, regprocedure, boolean),
	es_drop_projection(text), es_rebuild_projection(text)
	TO regress_proj_admin;
GRANT EXECUTE ON FUNCTION es_append(text, text, jsonb, bigint, jsonb, uuid),
	es_append_batch(text, jsonb, bigint)
	TO regress_proj_appender;
CREATE SCHEMA proj_inline AUTHORIZATION regress_proj_admin;

SET ROLE regress_proj_admin;
SET search_path = proj_inline, public;

-- a tiny bank: one row per account; applied_by shows whose rights the
-- handler runs with
CREATE TABLE balances (
	account		text PRIMARY KEY,
	balance		numeric NOT NULL CHECK (balance >= 0),
	events		integer NOT NULL,
	applied_by	name NOT NULL
);
CREATE FUNCTION balance_apply(event es_events) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	IF event.stream_id NOT LIKE 'pi-%' THEN
		RETURN;		-- other tests' accounts
	END IF;
	IF event.event_type = 'AccountCreated' THEN
		INSERT INTO balances
		VALUES (event.stream_id, (event.data->>'initial_deposit')::numeric, 1,
				current_user);
	ELSE
		UPDATE balances
		   SET balance = balance + CASE event.event_type
					WHEN 'MoneyDeposited' THEN 1 ELSE -1 END
					* (event.data->>'amount')::numeric,
			   events = events + 1,
			   applied_by = current_user
		 WHERE account = event.stream_id;
	END IF;
END
$$;
CREATE FUNCTION balance_reset() RETURNS void
LANGUAGE sql AS $$ DELETE FROM balances $$;

SELECT es_create_projection('pi_balances', 'balance_apply(es_events)',
	ARRAY['AccountCreated', 'MoneyDeposited', 'MoneyWithdrawn'],
	'inline', 'balance_reset()');
RESET ROLE;

-- the design notes' story, appended by the appender, which has no
-- privilege on the read model and a search_path of its own
SELECT has_schema_privilege('regress_proj_appender', 'proj_inline', 'USAGE') AS may_use_schema,
	   has_table_privilege('regress_proj_appender', 'proj_inline.balances', 'INSERT') AS may_write;
SET ROLE regress_proj_appender;
SET search_path = public;
SELECT es_append('pi-acc-1', 'AccountCreated', '{"initial_deposit": 1000}', 0);
SELECT es_append('pi-acc-1', 'MoneyDeposited', '{"amount": 500}', 1);
SELECT es_append('pi-acc-1', 'MoneyWithdrawn', '{"amount": 200}', 2);
RESET ROLE;
SET search_path = proj_inline, public;
SELECT account, balance, events, applied_by FROM balances ORDER BY account;

-- a rolled back append takes its read-model change along
BEGIN;
SELECT es_append('pi-acc-1', 'MoneyDeposited', '{"amount": 50}', 3);
SELECT balance FROM balances WHERE account = 'pi-acc-1';
ROLLBACK;
SELECT balance FROM balances WHERE account = 'pi-acc-1';
SELECT es_stream_version('pi-acc-1');

-- a batch: every event reaches the handler, in order
SELECT es_append_batch('pi-acc-2', $$[
	{"type": "AccountCreated", "data": {"initial_deposit": 10}},
	{"type": "MoneyDeposited", "data": {"amount": 5}},
	{"type": "MoneyWithdrawn", "data": {"amount": 15}},
	{"type": "MoneyDeposited", "data": {"amount": 7}}
]$$, 0);
SELECT account, balance, events FROM balances ORDER BY account;

-- event types the projection did not ask for never reach the handler
SELECT es_append('pi-acc-2', 'AddressChanged', '{"street": "Elm"}', 4);
SELECT events FROM balances WHERE account = 'pi-acc-2';

-- a batch rejected by es_append_batch itself writes nothing anywhere
\set VERBOSITY sqlstate
SELECT es_append_batch('pi-acc-3', $$[
	{"type": "AccountCreated", "data": {"initial_deposit": 10}},
	{"type": "MoneyDeposited", "data": 5}
]$$);
\set VERBOSITY default
SELECT count(*) FROM balances WHERE account = 'pi-acc-3';

-- a failing handler fails the append with the handler's own error, and
-- nothing is half-written: neither events nor read model
\set VERBOSITY sqlstate
SELECT es_append('pi-acc-1', 'MoneyWithdrawn', '{"amount": 5000}', 3);
SELECT es_append_batch('pi-acc-1', $$[
	{"type": "MoneyDeposited", "data": {"amount": 1}},
	{"type": "MoneyWithdrawn", "data": {"amount": 9999}},
	{"type": "MoneyDeposited", "data": {"amount": 1}}
]$$, 3);
\set VERBOSITY terse
SELECT es_append('pi-acc-1', 'MoneyWithdrawn', '{"amount": 5000}', 3);
\set VERBOSITY default
SELECT es_stream_version('pi-acc-1');
SELECT account, balance, events FROM balances ORDER BY account;

-- inside a savepoint, the failure rolls back to the savepoint only
BEGIN;
SELECT es_append('pi-acc-1', 'MoneyDeposited', '{"amount": 1}', 3);
SAVEPOINT s;
\set VERBOSITY sqlstate
SELECT es_append('pi-acc-1', 'MoneyWithdrawn', '{"amount": 5000}', 4);
\set VERBOSITY default
ROLLBACK TO SAVEPOINT s;
SELECT current_user = session_user AS own_rights, current_setting('search_path');
SELECT es_append('pi-acc-1', 'MoneyWithdrawn', '{"amount": 1}', 4);
COMMIT;
SELECT account, balance, events FROM balances ORDER BY account;

-- the handler's search_path is pinned: look-alikes in a schema first on the
-- appender's path are never used
CREATE SCHEMA proj_evil;
CREATE TABLE proj_evil.balances (LIKE proj_inline.balances);
GRANT USAGE ON SCHEMA proj_evil TO PUBLIC;
GRANT ALL ON proj_evil.balances TO PUBLIC;
SET ROLE regress_proj_appender;
SET search_path = proj_evil, public;
SELECT es_append('pi-acc-4', 'AccountCreated', '{"initial_deposit": 1}', 0);
RESET ROLE;
SET search_path = proj_inline, public;
SELECT count(*) AS look_alike_rows FROM proj_evil.balances;
SELECT account, balance FROM balances WHERE account = 'pi-acc-4';
SELECT search_path FROM es_projections WHERE name = 'pi_balances';

-- the projection list is cached per backend; the trigger fires once per
-- append call, is enabled ALWAYS, and is kept in place by the DDL guard
SELECT tgname, tgenabled, (tgtype & 1) = 0 AS for_each_statement
  FROM pg_trigger WHERE tgrelid = 'es_events'::regclass
   AND tgname = 'es_events_dispatch_inline';
\set VERBOSITY sqlstate
ALTER TABLE es_events DISABLE TRIGGER es_events_dispatch_inline;
DROP TRIGGER es_events_dispatch_inline ON es_events;
\set VERBOSITY default

-- a projection created late is built from history, in the creating
-- transaction; one created with from_beginning = false starts at the head
CREATE TABLE stream_counts (stream_id text PRIMARY KEY, n integer NOT NULL);
CREATE FUNCTION count_apply(event es_events) RETURNS void
LANGUAGE sql AS $$
	INSERT INTO proj_inline.stream_counts VALUES (event.stream_id, 1)
	ON CONFLICT (stream_id) DO UPDATE SET n = stream_counts.n + 1
$$;
CREATE FUNCTION count_reset() RETURNS void
LANGUAGE sql AS $$ DELETE FROM proj_inline.stream_counts $$;
SELECT es_create_projection('pi_counts', 'count_apply(es_events)',
	NULL, 'inline', 'count_reset()');
SELECT count(*) AS mismatches FROM (
	(SELECT stream_id, count(*)::integer FROM es_events GROUP BY stream_id
	 EXCEPT SELECT stream_id, n FROM stream_counts)
	UNION ALL
	(SELECT stream_id, n FROM stream_counts
	 EXCEPT SELECT stream_id, count(*)::integer FROM es_events GROUP BY stream_id)) d;

CREATE TABLE later_counts (stream_id text PRIMARY KEY, n integer NOT NULL);
CREATE FUNCTION later_apply(event es_events) RETURNS void
LANGUAGE sql AS $$
	INSERT INTO proj_inline.later_counts VALUES (event.stream_id, 1)
	ON CONFLICT (stream_id) DO UPDATE SET n = later_counts.n + 1
$$;
SELECT es_create_projection('pi_later', 'later_apply(es_events)',
	from_beginning => false);
SELECT count(*) FROM later_counts;
SELECT es_append('pi-acc-5', 'AccountCreated', '{"initial_deposit": 3}', 0);
SELECT stream_id, n FROM later_counts;

-- rebuild replays history into the same read model as live projection
CREATE TABLE balances_live AS SELECT account, balance, events FROM balances;
SELECT es_rebuild_projection('pi_balances') = (
	SELECT count(*) FROM es_events
	 WHERE event_type IN ('AccountCreated', 'MoneyDeposited', 'MoneyWithdrawn'))
	AS rebuild_count_ok;
SELECT count(*) AS differences FROM (
	(SELECT account, balance, events FROM balances
	 EXCEPT SELECT * FROM balances_live)
	UNION ALL
	(SELECT * FROM balances_live
	 EXCEPT SELECT account, balance, events FROM balances)) d;

-- status: inline projections are always up to date
SELECT name, mode, state, position = head_position AS at_head, lag_events,
	   lag_time, last_error, event_types, handler,
	   owner = 'regress_proj_admin'::regrole AS admin_owned
  FROM es_projection_status WHERE name LIKE 'pi\_%' ORDER BY name;

-- argument errors
\set VERBOSITY sqlstate
SELECT es_create_projection('pi_balances', 'balance_apply(es_events)');
SELECT es_create_projection('pi_bad_mode', 'balance_apply(es_events)', NULL, 'sometimes');
SELECT es_create_projection('pi_bad_mode', 'balance_apply(es_events)', NULL, NULL);
SELECT es_create_projection(NULL, 'balance_apply(es_events)');
SELECT es_create_projection('', 'balance_apply(es_events)');
SELECT es_create_projection(repeat('x', 64), 'balance_apply(es_events)');
SELECT es_create_projection('pi_bad', NULL);
SELECT es_create_projection('pi_bad', 'balance_apply(es_events)', ARRAY[]::text[]);
SELECT es_create_projection('pi_bad', 'balance_apply(es_events)', ARRAY['A', NULL]);
SELECT es_create_projection('pi_bad', 'balance_apply(es_events)', ARRAY['']);
SELECT es_create_projection('pi_bad', 'balance_apply(es_events)', from_beginning => NULL);
SELECT es_drop_projection('pi_nope');
SELECT es_rebuild_projection('pi_nope');
SELECT es_rebuild_projection('pi_later');
\set VERBOSITY default
-- handler signature mismatches get a clear message
SELECT es_create_projection('pi_bad', 'count_reset()');
SELECT es_create_projection('pi_bad', 'balance_apply(es_events)', reset => 'count_apply(es_events)');
SELECT es_create_projection('pi_bad', 'pg_catalog.abs(integer)');

-- the creator must be allowed to execute the handler and the reset function
CREATE FUNCTION private_apply(event es_events) RETURNS void
LANGUAGE sql AS $$ SELECT $$;
CREATE FUNCTION private_reset() RETURNS void
LANGUAGE sql AS $$ SELECT $$;
REVOKE ALL ON FUNCTION private_apply(es_events) FROM PUBLIC;
REVOKE ALL ON FUNCTION private_reset() FROM PUBLIC;
SET ROLE regress_proj_admin;
\set VERBOSITY sqlstate
SELECT es_create_projection('pi_bad', 'private_apply(es_events)');
SELECT es_create_projection('pi_bad', 'balance_apply(es_events)', reset => 'private_reset()');
\set VERBOSITY default
RESET ROLE;
-- and the appender may not administer projections
SET ROLE regress_proj_appender;
\set VERBOSITY sqlstate
SELECT es_drop_projection('pi_balances');
\set VERBOSITY default
RESET ROLE;

-- a handler cannot be dropped from under its projection; CASCADE takes
-- the projection along
\set VERBOSITY sqlstate
DROP FUNCTION later_apply(es_events);
\set VERBOSITY default
DROP FUNCTION later_apply(es_events) CASCADE;
SELECT name FROM es_projections WHERE name LIKE 'pi\_%' ORDER BY name;

-- dropped projections leave their tables alone and stop being called
SELECT es_drop_projection('pi_counts');
SELECT es_drop_projection('pi_balances');
SELECT es_append('pi-acc-1', 'MoneyDeposited', '{"amount": 1}');
SELECT balance FROM balances WHERE account = 'pi-acc-1';
SELECT count(*) FROM es_subscriptions WHERE name LIKE 'pi\_%';

RESET search_path;
DROP SCHEMA proj_inline CASCADE;
DROP SCHEMA proj_evil CASCADE;
REVOKE ALL ON FUNCTION es_create_projection(text, regprocedure, text[], text, regprocedure, boolean),
	es_drop_projection(text), es_rebuild_projection(text)
	FROM regress_proj_admin;
REVOKE ALL ON FUNCTION es_append(text, text, jsonb, bigint, jsonb, uuid),
	es_append_batch(text, jsonb, bigint)
	FROM regress_proj_appender;
DROP ROLE regress_proj_admin;
DROP ROLE regress_proj_appender;
