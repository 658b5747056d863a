-- bad input: each case gives its documented SQLSTATE and writes nothing
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS es_pg;
RESET client_min_messages;

CREATE TEMP TABLE cases (n serial, label text, sql text, want text);
INSERT INTO cases (label, sql, want) VALUES
	-- NULLs
	('null stream id', $$SELECT es_append(NULL, 'T', '{}')$$, '22004'),
	('null event type', $$SELECT es_append('bad-1', NULL, '{}')$$, '22004'),
	('null data', $$SELECT es_append('bad-1', 'T', NULL)$$, '22004'),
	('null stream id, batch', $$SELECT es_append_batch(NULL, '[{"type":"T","data":{}}]')$$, '22004'),
	('null events', $$SELECT es_append_batch('bad-1', NULL)$$, '22004'),
	-- empty and over-long names
	('empty stream id', $$SELECT es_append('', 'T', '{}')$$, '22023'),
	('empty event type', $$SELECT es_append('bad-1', '', '{}')$$, '22023'),
	('stream id of 1025 bytes', $$SELECT es_append(repeat('s', 1025), 'T', '{}')$$, '22023'),
	('stream id of 1025 bytes in 4-byte characters', $$SELECT es_append(repeat('🚀', 256) || 'x', 'T', '{}')$$, '22023'),
	('event type of 256 bytes', $$SELECT es_append('bad-1', repeat('t', 256), '{}')$$, '22023'),
	('empty event type in batch', $$SELECT es_append_batch('bad-1', '[{"type":"","data":{}}]')$$, '22023'),
	-- control characters
	('stream id with a newline', $$SELECT es_append(E'bad\n1', 'T', '{}')$$, '22023'),
	('stream id with a tab', $$SELECT es_append(E'bad\t1', 'T', '{}')$$, '22023'),
	('stream id with DEL', $$SELECT es_append(E'bad\x7f1', 'T', '{}')$$, '22023'),
	('stream id with a C1 control', $$SELECT es_append(E'bad\u00851', 'T', '{}')$$, '22023'),
	('event type with ESC', $$SELECT es_append('bad-1', E'T\x1b[31m', '{}')$$, '22023'),
	-- JSON shapes
	('data is an array', $$SELECT es_append('bad-1', 'T', '[1, 2]')$$, '22023'),
	('data is a string', $$SELECT es_append('bad-1', 'T', '"x"')$$, '22023'),
	('data is a number', $$SELECT es_append('bad-1', 'T', '42')$$, '22023'),
	('data is JSON null', $$SELECT es_append('bad-1', 'T', 'null')$$, '22023'),
	('metadata is an array', $$SELECT es_append('bad-1', 'T', '{}', NULL, '[]')$$, '22023'),
	('invalid JSON text', $$SELECT es_append('bad-1', 'T', '{"a": }')$$, '22P02'),
	('events is an object', $$SELECT es_append_batch('bad-1', '{"type":"T","data":{}}')$$, '22023'),
	('events is a scalar', $$SELECT es_append_batch('bad-1', '1')$$, '22023'),
	('events is empty', $$SELECT es_append_batch('bad-1', '[]')$$, '22023'),
	('event is not an object', $$SELECT es_append_batch('bad-1', '[{"type":"T","data":{}}, 7]')$$, '22023'),
	('event without type', $$SELECT es_append_batch('bad-1', '[{"data":{}}]')$$, '22023'),
	('event without data', $$SELECT es_append_batch('bad-1', '[{"type":"T"}]')$$, '22023'),
	('event type not a string', $$SELECT es_append_batch('bad-1', '[{"type":1,"data":{}}]')$$, '22023'),
	('event data an array', $$SELECT es_append_batch('bad-1', '[{"type":"T","data":[]}]')$$, '22023'),
	('event data null', $$SELECT es_append_batch('bad-1', '[{"type":"T","data":null}]')$$, '22023'),
	('event metadata a string', $$SELECT es_append_batch('bad-1', '[{"type":"T","data":{},"metadata":"m"}]')$$, '22023'),
	('event id not a uuid', $$SELECT es_append_batch('bad-1', '[{"type":"T","data":{},"id":"not-a-uuid"}]')$$, '22023'),
	('event id a number', $$SELECT es_append_batch('bad-1', '[{"type":"T","data":{},"id":12}]')$$, '22023'),
	('event with a misspelt key', $$SELECT es_append_batch('bad-1', '[{"type":"T","data":{},"metdata":{}}]')$$, '22023'),
	('invalid uuid argument', $$SELECT es_append('bad-1', 'T', '{}', NULL, NULL, 'xyz')$$, '22P02'),
	-- versions
	('expected version -3', $$SELECT es_append('bad-1', 'T', '{}', -3)$$, '22023'),
	('expected version minimum bigint', $$SELECT es_append('bad-1', 'T', '{}', -9223372036854775808)$$, '22023'),
	('expected version overflowing bigint', $$SELECT es_append('bad-1', 'T', '{}', 9223372036854775808)$$, '42883'),
	('expected version maximum bigint', $$SELECT es_append('bad-1', 'T', '{}', 9223372036854775807)$$, '40001'),
	-- injection-shaped strings are data, nothing else
	('injection in expected version text', $$SELECT es_append('bad-1', 'T', '{}', '1; DROP TABLE es_events'::bigint)$$, '22P02');

DO $$
DECLARE
	c record;
	got text;
	before bigint;
	after bigint;
BEGIN
	FOR c IN SELECT * FROM cases ORDER BY n LOOP
		SELECT count(*) INTO before FROM es_events;
		BEGIN
			EXECUTE c.sql;
			got := 'no error';
		EXCEPTION WHEN OTHERS THEN
			GET STACKED DIAGNOSTICS got = RETURNED_SQLSTATE;
		END;
		SELECT count(*) INTO after FROM es_events;
		RAISE NOTICE '% | % | %', rpad(c.label, 48), got,
			CASE WHEN got = c.want AND before = after THEN 'ok'
				 ELSE 'WRONG: want ' || c.want || ', rows ' || before || ' -> ' || after END;
	END LOOP;
END $$;

-- the messages users read, for a few of them
\set VERBOSITY default
SELECT es_append(repeat('s', 1025), 'T', '{}');
SELECT es_append(E'bad\n1', 'T', '{}');
SELECT es_append('bad-1', 'T', '[1]');
SELECT es_append_batch('bad-1', '[{"type":"T","data":{}}, {"type":"T","data":{},"metdata":{}}]');
SELECT es_append_batch('bad-1', '[{"type":"T","data":{},"id":"not-a-uuid"}]');

-- injection-shaped stream ids and types are stored verbatim
SELECT es_append($$x'); DROP TABLE es_events; --$$, $$T'; DELETE FROM es_events; --$$, '{"q": "'' OR 1=1 --"}');
SELECT stream_id, event_type, data FROM es_events WHERE stream_id LIKE 'x''); DROP%';

-- every unicode plane is accepted in stream ids (except control characters)
SELECT es_append(s, 'T', '{}') FROM (VALUES
	(E'plane0-\u00e9\u4e2d\uffef'),
	(E'plane1-\U0001F680\U00010000'),
	(E'plane2-\U00020000'),
	(E'plane3-\U00030000'),
	(E'plane14-\U000E0001'),
	(E'plane15-\U000F0000'),
	(E'plane16-\U0010FFFD')) v(s);
SELECT count(*) FROM es_events WHERE stream_id ~ '^plane[0-9]+-';
