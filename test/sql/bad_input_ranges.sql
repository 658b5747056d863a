-- bad input: negative, zero, huge and overflowing versions, positions and
-- counts for every function that takes one.  Each gives its documented
-- SQLSTATE (or its documented result) and writes nothing.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS es_pg;
RESET client_min_messages;
SELECT es_append_batch('rng-1', '[{"type": "A", "data": {}}, {"type": "B", "data": {}}, {"type": "C", "data": {}}]') AS v;
CREATE FUNCTION rng_count(state jsonb, event es_events) RETURNS jsonb
	LANGUAGE sql AS $$SELECT jsonb_build_object('n', coalesce((state->>'n')::int, 0) + 1)$$;
CREATE FUNCTION rng_not_a_reducer(state jsonb, event jsonb) RETURNS jsonb
	LANGUAGE sql AS $$SELECT state$$;

CREATE TEMP TABLE cases (n serial, label text, sql text, want text);
INSERT INTO cases (label, sql, want) VALUES
	-- es_read_stream(stream_id, from_version, max_count)
	('read_stream from -1', $$SELECT * FROM es_read_stream('rng-1', -1)$$, '22023'),
	('read_stream from min bigint', $$SELECT * FROM es_read_stream('rng-1', -9223372036854775808)$$, '22023'),
	('read_stream from 0', $$SELECT * FROM es_read_stream('rng-1', 0)$$, 'ok'),
	('read_stream from 2', $$SELECT * FROM es_read_stream('rng-1', 2)$$, 'ok'),
	('read_stream from 3 (the head)', $$SELECT * FROM es_read_stream('rng-1', 3)$$, 'ok'),
	('read_stream from max bigint', $$SELECT * FROM es_read_stream('rng-1', 9223372036854775807)$$, 'ok'),
	('read_stream from max bigint + 1 (numeric)', $$SELECT * FROM es_read_stream('rng-1', 9223372036854775808)$$, '42883'),
	('read_stream from max bigint + 1 (text)', $$SELECT * FROM es_read_stream('rng-1', '9223372036854775808')$$, '22003'),
	('read_stream from 1.5', $$SELECT * FROM es_read_stream('rng-1', 1.5)$$, '42883'),
	('read_stream from ''1e3''', $$SELECT * FROM es_read_stream('rng-1', '1e3')$$, '22P02'),
	('read_stream max_count -1', $$SELECT * FROM es_read_stream('rng-1', 0, -1)$$, '22023'),
	('read_stream max_count min bigint', $$SELECT * FROM es_read_stream('rng-1', 0, -9223372036854775808)$$, '22023'),
	('read_stream max_count 0', $$SELECT * FROM es_read_stream('rng-1', 0, 0)$$, 'ok'),
	('read_stream max_count 1', $$SELECT * FROM es_read_stream('rng-1', 0, 1)$$, 'ok'),
	('read_stream max_count max bigint', $$SELECT * FROM es_read_stream('rng-1', 0, 9223372036854775807)$$, 'ok'),
	('read_stream of a missing stream', $$SELECT * FROM es_read_stream('rng-missing')$$, 'ok'),
	-- es_read_stream_backward(stream_id, before_version, max_count)
	('read_backward before -1', $$SELECT * FROM es_read_stream_backward('rng-1', -1)$$, '22023'),
	('read_backward before min bigint', $$SELECT * FROM es_read_stream_backward('rng-1', -9223372036854775808)$$, '22023'),
	('read_backward before 0', $$SELECT * FROM es_read_stream_backward('rng-1', 0)$$, 'ok'),
	('read_backward before 1', $$SELECT * FROM es_read_stream_backward('rng-1', 1)$$, 'ok'),
	('read_backward before 3', $$SELECT * FROM es_read_stream_backward('rng-1', 3)$$, 'ok'),
	('read_backward before max bigint', $$SELECT * FROM es_read_stream_backward('rng-1', 9223372036854775807)$$, 'ok'),
	('read_backward before max bigint + 1', $$SELECT * FROM es_read_stream_backward('rng-1', '9223372036854775808')$$, '22003'),
	('read_backward max_count -1', $$SELECT * FROM es_read_stream_backward('rng-1', NULL, -1)$$, '22023'),
	('read_backward max_count 0', $$SELECT * FROM es_read_stream_backward('rng-1', NULL, 0)$$, 'ok'),
	('read_backward max_count 2', $$SELECT * FROM es_read_stream_backward('rng-1', NULL, 2)$$, 'ok'),
	-- es_read_all(from_position, max_count)
	('read_all from -1', $$SELECT * FROM es_read_all(-1)$$, '22023'),
	('read_all from min bigint', $$SELECT * FROM es_read_all(-9223372036854775808)$$, '22023'),
	('read_all from the head', $$SELECT * FROM es_read_all(es_head_position())$$, 'ok'),
	('read_all from the head - 3', $$SELECT * FROM es_read_all(es_head_position() - 3)$$, 'ok'),
	('read_all from max bigint', $$SELECT * FROM es_read_all(9223372036854775807)$$, 'ok'),
	('read_all from max bigint + 1', $$SELECT * FROM es_read_all('9223372036854775808')$$, '22003'),
	('read_all max_count -1', $$SELECT * FROM es_read_all(0, -1)$$, '22023'),
	('read_all max_count min bigint', $$SELECT * FROM es_read_all(0, -9223372036854775808)$$, '22023'),
	('read_all max_count 0', $$SELECT * FROM es_read_all(0, 0)$$, 'ok'),
	('read_all max_count 2', $$SELECT * FROM es_read_all(0, 2)$$, 'ok'),
	('read_all max_count max bigint, from the head - 1', $$SELECT * FROM es_read_all(es_head_position() - 1, 9223372036854775807)$$, 'ok'),
	-- es_append(..., expected_version)
	('append expected -1 (no check)', $$SELECT es_append('rng-2', 'T', '{}', -1)$$, 'ok'),
	('append expected -2 to a missing stream', $$SELECT es_append('rng-missing', 'T', '{}', -2)$$, '40001'),
	('append expected -2 to an existing stream', $$SELECT es_append('rng-2', 'T', '{}', -2)$$, 'ok'),
	('append expected -3', $$SELECT es_append('rng-2', 'T', '{}', -3)$$, '22023'),
	('append expected min bigint', $$SELECT es_append('rng-2', 'T', '{}', -9223372036854775808)$$, '22023'),
	('append expected 0 to an existing stream', $$SELECT es_append('rng-1', 'T', '{}', 0)$$, '40001'),
	('append expected 2 to a stream at 3', $$SELECT es_append('rng-1', 'T', '{}', 2)$$, '40001'),
	('append expected 4 to a stream at 3', $$SELECT es_append('rng-1', 'T', '{}', 4)$$, '40001'),
	('append expected 1 to a missing stream', $$SELECT es_append('rng-missing', 'T', '{}', 1)$$, '40001'),
	('append expected max bigint', $$SELECT es_append('rng-1', 'T', '{}', 9223372036854775807)$$, '40001'),
	('append expected max bigint + 1', $$SELECT es_append('rng-1', 'T', '{}', '9223372036854775808')$$, '22003'),
	('append expected 3.0 (numeric)', $$SELECT es_append('rng-1', 'T', '{}', 3.0)$$, '42883'),
	('append expected 3 (int)', $$SELECT es_append('rng-1', 'T', '{}', 3::int)$$, 'ok'),
	-- es_append_batch(..., expected_version)
	('batch expected -3', $$SELECT es_append_batch('rng-1', '[{"type": "T", "data": {}}]', -3)$$, '22023'),
	('batch expected min bigint', $$SELECT es_append_batch('rng-1', '[{"type": "T", "data": {}}]', -9223372036854775808)$$, '22023'),
	('batch expected 0 to an existing stream', $$SELECT es_append_batch('rng-1', '[{"type": "T", "data": {}}]', 0)$$, '40001'),
	('batch expected max bigint', $$SELECT es_append_batch('rng-1', '[{"type": "T", "data": {}}]', 9223372036854775807)$$, '40001'),
	('batch expected -2 to a missing stream', $$SELECT es_append_batch('rng-missing', '[{"type": "T", "data": {}}]', -2)$$, '40001'),
	('batch expected 0 to a new stream', $$SELECT es_append_batch('rng-3', '[{"type": "T", "data": {}}, {"type": "T", "data": {}}]', 0)$$, 'ok'),
	('batch expected 2 to a stream at 2', $$SELECT es_append_batch('rng-3', '[{"type": "T", "data": {}}]', 2)$$, 'ok'),
	-- es_save_snapshot(stream_id, version, state, reducer)
	('save_snapshot version -1', $$SELECT es_save_snapshot('rng-1', -1, '{}')$$, '22023'),
	('save_snapshot version 0', $$SELECT es_save_snapshot('rng-1', 0, '{}')$$, '22023'),
	('save_snapshot version min bigint', $$SELECT es_save_snapshot('rng-1', -9223372036854775808, '{}')$$, '22023'),
	('save_snapshot version 1', $$SELECT es_save_snapshot('rng-1', 1, '{"n": 1}')$$, 'ok'),
	('save_snapshot at the head', $$SELECT es_save_snapshot('rng-1', es_stream_version('rng-1'), '{"n": 4}', 'rng_count(jsonb,es_events)')$$, 'ok'),
	('save_snapshot beyond the head', $$SELECT es_save_snapshot('rng-1', es_stream_version('rng-1') + 1, '{}')$$, '22023'),
	('save_snapshot version max bigint', $$SELECT es_save_snapshot('rng-1', 9223372036854775807, '{}')$$, '22023'),
	('save_snapshot version max bigint + 1', $$SELECT es_save_snapshot('rng-1', '9223372036854775808', '{}')$$, '22003'),
	('save_snapshot of a missing stream', $$SELECT es_save_snapshot('rng-missing', 1, '{}')$$, '22023'),
	('save_snapshot with a non-reducer', $$SELECT es_save_snapshot('rng-1', 1, '{}', 'rng_not_a_reducer(jsonb,jsonb)')$$, '22023'),
	('save_snapshot with a missing function', $$SELECT es_save_snapshot('rng-1', 1, '{}', 'rng_nope(jsonb,es_events)')$$, '42883'),
	('save_snapshot with a dangling oid', $$SELECT es_save_snapshot('rng-1', 1, '{}', 4294967295::oid::regprocedure)$$, '42883'),
	-- es_aggregate(stream_id, reducer, initial, as_of_version, as_of_time)
	('aggregate as of version -1', $$SELECT es_aggregate('rng-1', 'rng_count(jsonb,es_events)', '{}', -1)$$, '22023'),
	('aggregate as of version min bigint', $$SELECT es_aggregate('rng-1', 'rng_count(jsonb,es_events)', '{}', -9223372036854775808)$$, '22023'),
	('aggregate as of version 0', $$SELECT es_aggregate('rng-1', 'rng_count(jsonb,es_events)', '{}', 0)$$, 'ok'),
	('aggregate as of version 2', $$SELECT es_aggregate('rng-1', 'rng_count(jsonb,es_events)', '{}', 2)$$, 'ok'),
	('aggregate as of the head + 1', $$SELECT es_aggregate('rng-1', 'rng_count(jsonb,es_events)', '{}', es_stream_version('rng-1') + 1)$$, '22023'),
	('aggregate as of version max bigint', $$SELECT es_aggregate('rng-1', 'rng_count(jsonb,es_events)', '{}', 9223372036854775807)$$, '22023'),
	('aggregate as of version 0 of a missing stream', $$SELECT es_aggregate('rng-missing', 'rng_count(jsonb,es_events)', '{}', 0)$$, 'ok'),
	('aggregate as of version 1 of a missing stream', $$SELECT es_aggregate('rng-missing', 'rng_count(jsonb,es_events)', '{}', 1)$$, '22023'),
	('aggregate as of -infinity', $$SELECT es_aggregate('rng-1', 'rng_count(jsonb,es_events)', '{}', NULL, '-infinity')$$, 'ok'),
	('aggregate as of infinity', $$SELECT es_aggregate('rng-1', 'rng_count(jsonb,es_events)', '{}', NULL, 'infinity')$$, 'ok'),
	('aggregate as of 4714-11-24 BC', $$SELECT es_aggregate('rng-1', 'rng_count(jsonb,es_events)', '{}', NULL, '4714-11-24 00:00:00+00 BC')$$, 'ok'),
	('aggregate as of year 294277', $$SELECT es_aggregate('rng-1', 'rng_count(jsonb,es_events)', '{}', NULL, '294277-01-01')$$, '22008'),
	('aggregate with a non-reducer', $$SELECT es_aggregate('rng-1', 'rng_not_a_reducer(jsonb,jsonb)')$$, '22023'),
	('aggregate with a dangling oid', $$SELECT es_aggregate('rng-1', 4294967295::oid::regprocedure)$$, '42883'),
	('aggregate with initial an array', $$SELECT es_aggregate('rng-1', 'rng_count(jsonb,es_events)', '[]')$$, 'ok'),
	-- es_set_snapshot_policy(reducer, every_n_events)
	('policy every 0 events', $$SELECT es_set_snapshot_policy('rng_count(jsonb,es_events)', 0)$$, '22023'),
	('policy every -1 events', $$SELECT es_set_snapshot_policy('rng_count(jsonb,es_events)', -1)$$, '22023'),
	('policy every max int events', $$SELECT es_set_snapshot_policy('rng_count(jsonb,es_events)', 2147483647)$$, 'ok'),
	('policy every max int + 1 events', $$SELECT es_set_snapshot_policy('rng_count(jsonb,es_events)', 2147483648)$$, '42883'),
	('policy of a non-reducer', $$SELECT es_set_snapshot_policy('rng_not_a_reducer(jsonb,jsonb)', 10)$$, '22023');

-- the harness: run each case, then report the SQLSTATE (or ok and the
-- number of rows), and whether rows or positions were written by a case
-- that failed
CREATE FUNCTION pg_temp.run_cases() RETURNS TABLE (label text, got text, verdict text)
LANGUAGE plpgsql AS $$
DECLARE
	c record;
	nrows bigint;
	ev_before bigint;
	ev_after bigint;
	pos_before bigint;
	pos_after bigint;
BEGIN
	FOR c IN SELECT * FROM cases ORDER BY n LOOP
		SELECT count(*) INTO ev_before FROM es_events;
		SELECT last_value + is_called::int INTO pos_before FROM es_events_position_seq;
		BEGIN
			EXECUTE 'SELECT count(*) FROM (' || c.sql || ') q' INTO nrows;
			got := 'ok';
		EXCEPTION WHEN OTHERS THEN
			GET STACKED DIAGNOSTICS got = RETURNED_SQLSTATE;
		END;
		SELECT count(*) INTO ev_after FROM es_events;
		SELECT last_value + is_called::int INTO pos_after FROM es_events_position_seq;
		label := c.label;
		verdict := CASE
			WHEN got <> c.want THEN 'WRONG: want ' || c.want
			WHEN got <> 'ok' AND (ev_after <> ev_before OR pos_after <> pos_before)
				THEN 'WRONG: wrote ' || (ev_after - ev_before) || ' rows, '
					 || (pos_after - pos_before) || ' positions'
			ELSE 'ok' END;
		IF got = 'ok' THEN
			got := 'ok, ' || nrows || ' row' || CASE WHEN nrows = 1 THEN '' ELSE 's' END;
		END IF;
		RETURN NEXT;
	END LOOP;
END $$;

SELECT * FROM pg_temp.run_cases();
SELECT count(*) AS range_cases_tried FROM cases;

-- what the successful reads returned
SELECT version FROM es_read_stream('rng-1', 2);
SELECT version FROM es_read_stream('rng-1', 9223372036854775807);
SELECT version FROM es_read_stream_backward('rng-1', 3);
SELECT version FROM es_read_stream_backward('rng-1', 0);
SELECT count(*) FROM es_read_all(9223372036854775807);
SELECT stream_id, version FROM es_read_all(es_head_position() - 1, 9223372036854775807);
SELECT stream_id, version FROM es_streams WHERE stream_id LIKE 'rng-%' ORDER BY 1;

SELECT version, state FROM es_load_snapshot('rng-1');
SELECT version, state FROM es_load_snapshot('rng-1', NULL);
SELECT es_aggregate('rng-1', 'rng_count(jsonb,es_events)', '{}', 2) AS as_of_2;

-- the messages
SELECT * FROM es_read_stream('rng-1', -1);
SELECT * FROM es_read_all(0, -5);
SELECT es_append('rng-1', 'T', '{}', -3);
SELECT es_save_snapshot('rng-1', 0, '{}');
SELECT es_aggregate('rng-1', 'rng_count(jsonb,es_events)', '{}', 99);

SELECT es_drop_snapshots('rng_count(jsonb,es_events)') >= 0 AS dropped,
	   es_drop_snapshots(NULL, 'rng-1') >= 0 AS dropped,
	   es_drop_snapshot_policy('rng_count(jsonb,es_events)') AS policy_dropped;
DROP FUNCTION rng_count(jsonb, es_events);
DROP FUNCTION rng_not_a_reducer(jsonb, jsonb);
