-- bad input: sizes and shapes.  Names at and over their limits, batches
-- over es_pg.max_append_events, large payloads, deep nesting, and every
-- wrong shape of a batch.  Refused ones give their documented SQLSTATE and
-- write nothing.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS es_pg;
RESET client_min_messages;

-- undo: roll the case back once checked (the 100,000-event batch would
-- otherwise slow down every later test that replays history)
CREATE TEMP TABLE cases (n serial, label text, sql text, want text, undo boolean DEFAULT false);
INSERT INTO cases (label, sql, want) VALUES
	-- names: stream ids up to 1024 bytes, event types up to 255 bytes
	('stream id of 1024 bytes', $$SELECT es_append(repeat('s', 1024), 'T', '{}')$$, 'ok'),
	('stream id of 1025 bytes', $$SELECT es_append(repeat('s', 1025), 'T', '{}')$$, '22023'),
	('stream id of 256 4-byte characters', $$SELECT es_append(repeat(U&'\+01F680', 256), 'T', '{}')$$, 'ok'),
	('stream id of 1026 bytes in 2-byte characters', $$SELECT es_append(repeat(U&'\00E9', 513), 'T', '{}')$$, '22023'),
	('stream id of 1 MB', $$SELECT es_append(repeat('s', 1048576), 'T', '{}')$$, '22023'),
	('event type of 255 bytes', $$SELECT es_append('size-1', repeat('t', 255), '{}')$$, 'ok'),
	('event type of 256 bytes', $$SELECT es_append('size-1', repeat('t', 256), '{}')$$, '22023'),
	('event type of 85 3-byte characters', $$SELECT es_append('size-1', repeat(U&'\4E2D', 85), '{}')$$, 'ok'),
	('event type of 86 3-byte characters', $$SELECT es_append('size-1', repeat(U&'\4E2D', 86), '{}')$$, '22023'),
	('batch event type of 256 bytes', $$SELECT es_append_batch('size-1', jsonb_build_array(jsonb_build_object('type', repeat('t', 256), 'data', '{}'::jsonb)))$$, '22023'),
	('batch stream id of 1025 bytes', $$SELECT es_append_batch(repeat('s', 1025), '[{"type": "T", "data": {}}]')$$, '22023'),
	-- large payloads are fine up to PostgreSQL's own limits
	('data of 10 MB', $$SELECT es_append('size-big', 'Big', jsonb_build_object('blob', repeat('x', 10485760)))$$, 'ok'),
	('metadata of 10 MB', $$SELECT es_append('size-big', 'Big', '{}', NULL, jsonb_build_object('blob', repeat('y', 10485760)))$$, 'ok'),
	('data with a key of 1 MB', $$SELECT es_append('size-big', 'Big', jsonb_build_object(repeat('k', 1048576), 1))$$, 'ok'),
	('data with 100000 keys', $$SELECT es_append('size-big', 'Big', (SELECT jsonb_object_agg('k' || i, i) FROM generate_series(1, 100000) i))$$, 'ok'),
	('batch of 10 events of 1 MB', $$SELECT es_append_batch('size-big', (SELECT jsonb_agg(jsonb_build_object('type', 'Big', 'data', jsonb_build_object('blob', repeat('z', 1048576)))) FROM generate_series(1, 10)))$$, 'ok'),
	('data nested 1000 deep', $$SELECT es_append('size-deep', 'Deep', ('{"a": ' || repeat('[', 1000) || repeat(']', 1000) || '}')::jsonb)$$, 'ok'),
	('data nested 1000000 deep', $$SELECT es_append('size-deep', 'Deep', ('{"a": ' || repeat('[', 1000000) || repeat(']', 1000000) || '}')::jsonb)$$, '54001'),
	-- batches: es_pg.max_append_events (100000 by default)
	('batch of 100000 events', $$SELECT 1 WHERE es_append_batch('size-many', (SELECT jsonb_agg('{"type": "T", "data": {}}'::jsonb) FROM generate_series(1, 100000))) = 100000$$, 'ok'),
	('batch of 100001 events', $$SELECT es_append_batch('size-many', (SELECT jsonb_agg('{"type": "T", "data": {}}'::jsonb) FROM generate_series(1, 100001)))$$, '54000'),
	-- wrong shapes of a batch
	('batch nested in an array', $$SELECT es_append_batch('size-1', '[[{"type": "T", "data": {}}]]')$$, '22023'),
	('batch with a null element', $$SELECT es_append_batch('size-1', '[{"type": "T", "data": {}}, null]')$$, '22023'),
	('batch with a string element', $$SELECT es_append_batch('size-1', '["T"]')$$, '22023'),
	('batch event that is empty', $$SELECT es_append_batch('size-1', '[{}]')$$, '22023'),
	('batch event type null', $$SELECT es_append_batch('size-1', '[{"type": null, "data": {}}]')$$, '22023'),
	('batch event type an object', $$SELECT es_append_batch('size-1', '[{"type": {}, "data": {}}]')$$, '22023'),
	('batch event type a number string', $$SELECT es_append_batch('size-1', '[{"type": "1", "data": {}}]')$$, 'ok'),
	('batch event data a string', $$SELECT es_append_batch('size-1', '[{"type": "T", "data": "{}"}]')$$, '22023'),
	('batch event data a number', $$SELECT es_append_batch('size-1', '[{"type": "T", "data": 1}]')$$, '22023'),
	('batch event data true', $$SELECT es_append_batch('size-1', '[{"type": "T", "data": true}]')$$, '22023'),
	('batch event metadata null', $$SELECT es_append_batch('size-1', '[{"type": "T", "data": {}, "metadata": null}]')$$, 'ok'),
	('batch event metadata an array', $$SELECT es_append_batch('size-1', '[{"type": "T", "data": {}, "metadata": []}]')$$, '22023'),
	('batch event id null', $$SELECT es_append_batch('size-1', '[{"type": "T", "data": {}, "id": null}]')$$, 'ok'),
	('batch event id upper case', $$SELECT es_append_batch('size-1', '[{"type": "T", "data": {}, "id": "6A1F0C8E-0000-4000-8000-0000000000A1"}]')$$, 'ok'),
	('batch event id without hyphens', $$SELECT es_append_batch('size-1', '[{"type": "T", "data": {}, "id": "6a1f0c8e0000400080000000000000a2"}]')$$, 'ok'),
	('batch event id in braces', $$SELECT es_append_batch('size-1', '[{"type": "T", "data": {}, "id": "{6a1f0c8e-0000-4000-8000-0000000000a3}"}]')$$, '22023'),
	('batch event id with hyphens misplaced', $$SELECT es_append_batch('size-1', '[{"type": "T", "data": {}, "id": "6a1f0c8e0-000-4000-8000-0000000000a4"}]')$$, '22023'),
	('batch event id of 35 digits', $$SELECT es_append_batch('size-1', '[{"type": "T", "data": {}, "id": "6a1f0c8e-0000-4000-8000-0000000000a"}]')$$, '22023'),
	('batch event id with a non-hex digit', $$SELECT es_append_batch('size-1', '[{"type": "T", "data": {}, "id": "6a1f0c8e-0000-4000-8000-0000000000ag"}]')$$, '22023'),
	('batch event id of 1 MB', $$SELECT es_append_batch('size-1', jsonb_build_array(jsonb_build_object('type', 'T', 'data', '{}'::jsonb, 'id', repeat('a', 1048576))))$$, '22023'),
	('batch event id an array', $$SELECT es_append_batch('size-1', '[{"type": "T", "data": {}, "id": []}]')$$, '22023'),
	('batch with one id twice', $$SELECT es_append_batch('size-1', '[{"type": "T", "data": {}, "id": "6a1f0c8e-0000-4000-8000-0000000000a5"}, {"type": "T", "data": {}, "id": "6a1f0c8e-0000-4000-8000-0000000000a5"}]')$$, '23505'),
	('batch event key in upper case', $$SELECT es_append_batch('size-1', '[{"Type": "T", "type": "T", "data": {}}]')$$, '22023'),
	('batch event with an unknown key of 1 MB', $$SELECT es_append_batch('size-1', jsonb_build_array(jsonb_build_object('type', 'T', 'data', '{}'::jsonb, repeat('u', 1048576), 1)))$$, '22023'),
	('batch event with a duplicate key (JSON keeps the last)', $$SELECT es_append_batch('size-dup', '[{"type": "First", "type": "Last", "data": {}}]')$$, 'ok'),
	('batch with a bad event after 999 good ones', $$SELECT es_append_batch('size-1', (SELECT jsonb_agg(CASE WHEN i < 1000 THEN '{"type": "T", "data": {}}'::jsonb ELSE '{"type": "T"}'::jsonb END) FROM generate_series(1, 1000) i))$$, '22023');
UPDATE cases SET undo = true WHERE label = 'batch of 100000 events';

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
			IF c.undo THEN
				RAISE EXCEPTION USING ERRCODE = 'ZZ000';
			END IF;
		EXCEPTION WHEN OTHERS THEN
			GET STACKED DIAGNOSTICS got = RETURNED_SQLSTATE;
			IF got = 'ZZ000' THEN
				got := 'ok';
			END IF;
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
SELECT count(*) + 2 AS size_cases_tried FROM cases;

-- a lower es_pg.max_append_events
SET es_pg.max_append_events = 3;
DELETE FROM cases;
INSERT INTO cases (label, sql, want) VALUES
	('batch of 3 with max_append_events = 3', $$SELECT es_append_batch('size-max', '[{"type": "T", "data": {}}, {"type": "T", "data": {}}, {"type": "T", "data": {}}]')$$, 'ok'),
	('batch of 4 with max_append_events = 3', $$SELECT es_append_batch('size-max', '[{"type": "T", "data": {}}, {"type": "T", "data": {}}, {"type": "T", "data": {}}, {"type": "T", "data": {}}]')$$, '54000');
SELECT * FROM pg_temp.run_cases();
\set VERBOSITY sqlstate
SET es_pg.max_append_events = 0;
SET es_pg.max_append_events = 10000001;
\set VERBOSITY default
SELECT es_append_batch('size-max', '[{"type": "T", "data": {}}, {"type": "T", "data": {}}, {"type": "T", "data": {}}, {"type": "T", "data": {}}]');
RESET es_pg.max_append_events;

-- what was stored: the large payloads whole, the duplicate key's last value
SELECT version, length(data ->> 'blob') AS data_blob, length(metadata ->> 'blob') AS metadata_blob,
	   (SELECT count(*) FROM jsonb_object_keys(data)) AS keys
  FROM es_read_stream('size-big') ORDER BY version;
SELECT es_stream_version('size-many') AS many_rolled_back, es_stream_version('size-max') AS max;
SELECT event_type FROM es_read_stream('size-dup');
SELECT count(*) AS ids FROM es_events
 WHERE event_id IN ('6a1f0c8e-0000-4000-8000-0000000000a1', '6a1f0c8e-0000-4000-8000-0000000000a2');

-- the messages
SELECT es_append(repeat('s', 1025), 'T', '{}');
SELECT es_append_batch('size-1', '[[{"type": "T", "data": {}}]]');
SELECT es_append_batch('size-1', '[{"type": "T", "data": {}, "id": "{6a1f0c8e-0000-4000-8000-0000000000a3}"}]');
SELECT es_append_batch('size-1', (SELECT jsonb_agg(CASE WHEN i < 1000 THEN '{"type": "T", "data": {}}'::jsonb ELSE '{"type": "T"}'::jsonb END) FROM generate_series(1, 1000) i));
\set VERBOSITY terse
SELECT es_append_batch('size-1', jsonb_build_array(jsonb_build_object('type', 'T', 'data', '{}'::jsonb, repeat('u', 100), 1)));
\set VERBOSITY default
