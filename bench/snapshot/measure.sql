-- bench/snapshot/measure.sql: loading a 10,000-event stream with a snapshot
-- near its head against a full replay, same reducer, same run.  Server-side
-- timings (a PL/pgSQL loop around es_aggregate), medians in milliseconds.
-- Run by bench/snapshot/measure.sh on a throwaway cluster.
\set ON_ERROR_STOP on
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS es_pg;
RESET client_min_messages;

-- the bank balance reducer of docs/snapshots.md, in SQL and in PL/pgSQL
CREATE FUNCTION bench_balance(state jsonb, event es_events) RETURNS jsonb
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
CREATE FUNCTION bench_balance_pl(state jsonb, event es_events) RETURNS jsonb
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
		ELSE
			RETURN state;
	END CASE;
END
$$;

CREATE FUNCTION bench_stream(stream text, n int) RETURNS bigint
	LANGUAGE sql
	AS $$
	SELECT es_append(stream, 'AccountCreated',
		jsonb_build_object('account_id', stream, 'initial_deposit', 1000));
	SELECT es_append_batch(stream,
		(SELECT jsonb_agg(jsonb_build_object(
					'type', CASE WHEN i % 4 = 0 THEN 'MoneyWithdrawn' ELSE 'MoneyDeposited' END,
					'data', jsonb_build_object('amount', i % 50 + 1)) ORDER BY i)
		   FROM generate_series(2, n) i));
	$$;

-- median time of one es_aggregate statement, in milliseconds.  Dynamic SQL
-- makes each call a statement of its own, as a client's would be (an SQL
-- reducer is then planned once per call).
CREATE FUNCTION bench_time(stream text, reducer regprocedure, reps int)
	RETURNS numeric LANGUAGE plpgsql
	AS $$
DECLARE
	t0 timestamptz;
	times double precision[] := '{}';
BEGIN
	EXECUTE 'SELECT es_aggregate($1, $2)' USING stream, reducer;	/* warm up */
	FOR i IN 1..reps LOOP
		t0 := clock_timestamp();
		EXECUTE 'SELECT es_aggregate($1, $2)' USING stream, reducer;
		times := times || extract(epoch FROM clock_timestamp() - t0) * 1000;
	END LOOP;
	RETURN round((SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY x)
					FROM unnest(times) x)::numeric, 3);
END
$$;

SELECT bench_stream('bench-10000', 10000), bench_stream('bench-200', 200),
	   bench_stream('bench-100', 100);
VACUUM ANALYZE es_events;

CREATE TEMP TABLE results (reducer text, what text, ms numeric);
DO $$
DECLARE
	r regprocedure;
BEGIN
	FOREACH r IN ARRAY ARRAY['bench_balance(jsonb,es_events)',
							 'bench_balance_pl(jsonb,es_events)']::regprocedure[]
	LOOP
		INSERT INTO results VALUES
			(r::text, 'full replay of 10,000 events', bench_time('bench-10000', r, 15)),
			(r::text, 'full replay of 200 events (2x the tail)', bench_time('bench-200', r, 200)),
			(r::text, 'full replay of 100 events (the tail)', bench_time('bench-100', r, 200));
		PERFORM es_save_snapshot('bench-10000', 9900,
			es_aggregate('bench-10000', r, as_of_version => 9900), r);
		INSERT INTO results VALUES
			(r::text, 'snapshot at 9,900 + 100 events', bench_time('bench-10000', r, 200));
		PERFORM es_save_snapshot('bench-10000', 10000,
			es_aggregate('bench-10000', r), r);
		INSERT INTO results VALUES
			(r::text, 'snapshot at 10,000 (no tail)', bench_time('bench-10000', r, 200));
		PERFORM es_drop_snapshots(r);
	END LOOP;
END
$$;

SELECT reducer, what, ms FROM results;
SELECT reducer,
	   round(max(ms) FILTER (WHERE what LIKE 'full replay of 10,000%')
			 / max(ms) FILTER (WHERE what LIKE 'snapshot at 9,900%'), 1)
		   AS full_over_snapshot,
	   round(max(ms) FILTER (WHERE what LIKE 'snapshot at 9,900%')
			 / max(ms) FILTER (WHERE what LIKE 'full replay of 200%'), 2)
		   AS snapshot_over_2x_tail
  FROM results GROUP BY reducer ORDER BY reducer;
