-- bad input: control characters, NUL, every unicode plane, invalid UTF-8
-- and SQL-injection strings in stream ids, event types and payloads.  Each
-- gives its documented SQLSTATE (or is stored verbatim) and a refused one
-- writes nothing.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS es_pg;
RESET client_min_messages;

CREATE TEMP TABLE cases (n serial, label text, sql text, want text);

-- every control character (C0, DEL, C1) in every name an append takes
INSERT INTO cases (label, sql, want)
SELECT format('%s with U+%s', w.place, lpad(upper(to_hex(cp)), 4, '0')),
	   format(w.tmpl, quote_literal('ctl-' || chr(cp) || '-x')), '22023'
  FROM (SELECT generate_series(1, 31) UNION ALL SELECT 127
		UNION ALL SELECT generate_series(128, 159)) c(cp),
	   (VALUES (1, 'append stream id', $$SELECT es_append(%s, 'T', '{}')$$),
			   (2, 'append event type', $$SELECT es_append('ctl-1', %s, '{}')$$),
			   (3, 'batch stream id', $$SELECT es_append_batch(%s, '[{"type": "T", "data": {}}]')$$),
			   (4, 'batch event type', $$SELECT es_append_batch('ctl-1', jsonb_build_array(jsonb_build_object('type', %s, 'data', '{}'::jsonb)))$$)
	   ) w(k, place, tmpl)
 ORDER BY w.k, c.cp;

INSERT INTO cases (label, sql, want) VALUES
	-- NUL cannot even be written in a text value or a JSON string
	('NUL with chr(0)', $$SELECT es_append('ctl-' || chr(0), 'T', '{}')$$, '54000'),
	('NUL in an escape string', $$SELECT es_append(E'ctl-\x00', 'T', '{}')$$, '22021'),
	('NUL in a JSON string', $$SELECT es_append('ctl-1', 'T', '{"a": "\u0000"}')$$, '22P05'),
	('NUL in a batch JSON type', $$SELECT es_append_batch('ctl-1', '[{"type": "T\u0000", "data": {}}]')$$, '22P05'),
	-- control characters are fine inside JSON data: it is opaque
	('newline and ESC in data', $$SELECT es_append('ctl-data', 'T', '{"a": "x\ny\u001b[0m\u0085"}')$$, 'ok'),
	-- invalid UTF-8 and lone surrogates never become text
	('invalid UTF-8 bytes', $$SELECT es_append(convert_from('\x6162c3'::bytea, 'UTF8'), 'T', '{}')$$, '22021'),
	('overlong UTF-8 slash', $$SELECT es_append(convert_from('\x6162c0af'::bytea, 'UTF8'), 'T', '{}')$$, '22021'),
	('UTF-8 of a surrogate', $$SELECT es_append(convert_from('\x61eda080'::bytea, 'UTF8'), 'T', '{}')$$, '22021'),
	('surrogate escape', $$SELECT es_append(U&'a\D800', 'T', '{}')$$, '42601'),
	('surrogate code point', $$SELECT es_append('a' || chr(55296), 'T', '{}')$$, '54000'),
	('code point above U+10FFFF', $$SELECT es_append('a' || chr(1114112), 'T', '{}')$$, '54000'),
	('surrogate in JSON', $$SELECT es_append('ctl-1', 'T', '{"a": "\ud800"}')$$, '22P02');

-- the first, a middle and the last code points of every plane, and its two
-- noncharacters, as stream ids and as event types: all accepted
CREATE TEMP TABLE unicode_ids AS
SELECT p AS plane, cp, 'uni-' || p || '-' || to_hex(cp) || '-' || chr(cp) AS s
  FROM generate_series(0, 16) p,
	   LATERAL (VALUES (CASE p WHEN 0 THEN 32 ELSE p * 65536 END),
					   (p * 65536 + 4660), (p * 65536 + 65533),
					   (p * 65536 + 65534), (p * 65536 + 65535)) v(cp);
INSERT INTO cases (label, sql, want)
SELECT format('plane %s U+%s as stream id', plane, upper(to_hex(cp))),
	   format($$SELECT es_append(%L, 'T', '{}')$$, s), 'ok'
  FROM unicode_ids ORDER BY cp;
INSERT INTO cases (label, sql, want)
SELECT format('plane %s U+%s as event type', plane, upper(to_hex(cp))),
	   format($$SELECT es_append('uni-types', %L, '{}')$$, chr(cp)), 'ok'
  FROM unicode_ids ORDER BY cp;
INSERT INTO cases (label, sql, want) VALUES
	-- format characters are not control characters: accepted, verbatim
	('zero width space', $$SELECT es_append(E'fmt-a\u200Bb', 'T', '{}')$$, 'ok'),
	('right-to-left override', $$SELECT es_append(E'fmt-a\u202Eb', 'T', '{}')$$, 'ok'),
	('byte order mark', $$SELECT es_append(E'\uFEFFfmt-c', 'T', '{}')$$, 'ok'),
	('line separator', $$SELECT es_append(E'fmt-d\u2028', 'T', '{}')$$, 'ok'),
	('no-break space (U+00A0, after C1)', $$SELECT es_append(E'fmt-e\u00A0', 'T', '{}')$$, 'ok');

-- SQL injection, format strings and path tricks, everywhere a string goes
CREATE TEMP TABLE payloads (k int, p text);
INSERT INTO payloads VALUES
	(1, $p$'; DROP TABLE es_events; --$p$),
	(2, $p$" OR 1=1 --$p$),
	(3, $p$Robert'); DELETE FROM es_events WHERE ('1'='1$p$),
	(4, $p$$$; TRUNCATE es_events; $$$p$),
	(5, $p$\'; SELECT pg_sleep(10); --$p$),
	(6, $p$%s%s%s%s%n%x%p$p$),
	(7, $p$../../../../etc/passwd$p$),
	(8, $p${"type": "X", "data": {}}$p$),
	(9, $p$$1 :'x' :"y" ?$p$),
	(10, $p$ʼ; DROP TABLE es_events; --$p$);
INSERT INTO cases (label, sql, want)
SELECT format('payload %s as %s', payloads.k, w.place), format(w.tmpl, p), 'ok'
  FROM payloads,
	   (VALUES (1, 'stream id', $$SELECT es_append('inj-' || %L, 'T', '{}')$$),
			   (2, 'event type', $$SELECT es_append('inj-types', %L, '{}')$$),
			   (3, 'data key and value', $$SELECT es_append('inj-data', 'T', jsonb_build_object(%1$L, %1$L))$$),
			   (4, 'metadata', $$SELECT es_append('inj-data', 'T', '{}', NULL, jsonb_build_object('m', %L))$$),
			   (5, 'batch type', $$SELECT es_append_batch('inj-batch', jsonb_build_array(jsonb_build_object('type', %L, 'data', '{}'::jsonb)))$$),
			   (6, 'read_stream stream id', $$SELECT * FROM es_read_stream(%L)$$),
			   (7, 'stream_version stream id', $$SELECT es_stream_version(%L)$$)
	   ) w(k, place, tmpl)
 ORDER BY w.k, payloads.k;

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

-- one line per kind of case, and every case that went wrong
CREATE TEMP TABLE outcome AS SELECT row_number() OVER () AS n, * FROM pg_temp.run_cases();
SELECT regexp_replace(regexp_replace(label, 'U\+[0-9A-F]+', '*', 'g'),
					  '^(plane|payload) \d+', '\1 *') AS kind,
	   count(*) AS tried, string_agg(DISTINCT got, ', ') AS got,
	   count(*) FILTER (WHERE verdict = 'ok') AS as_documented
  FROM outcome GROUP BY 1 ORDER BY min(n);
SELECT label, got, verdict FROM outcome WHERE verdict <> 'ok';
SELECT count(*) AS text_cases_tried FROM cases;

-- what was accepted is stored and read back byte for byte
SELECT count(*) AS unicode_ids,
	   count(*) FILTER (WHERE es_stream_version(s) = 1
						  AND (SELECT r.stream_id FROM es_read_stream(s) r) = s) AS read_back
  FROM unicode_ids;
SELECT count(*) AS unicode_types FROM es_read_stream('uni-types') r
  JOIN unicode_ids u ON r.event_type = chr(u.cp);
SELECT p.k, r.stream_id = 'inj-' || p.p AS stream_id_verbatim
  FROM payloads p LEFT JOIN es_events r ON r.stream_id = 'inj-' || p.p ORDER BY p.k;
SELECT count(*) AS types_verbatim FROM es_read_stream('inj-types') r
  JOIN payloads p ON r.event_type = p.p;
SELECT count(*) AS data_verbatim FROM es_read_stream('inj-data') r
  JOIN payloads p ON r.data ->> p.p = p.p OR r.metadata ->> 'm' = p.p;
SELECT data FROM es_read_stream('ctl-data');
-- stream ids are compared byte for byte: case, spaces and unicode
-- normalization make different streams
SELECT es_append(s, 'T', '{}') AS version
  FROM (VALUES ('norm-A'), ('norm-a'), ('norm-a '), (U&'norm-\00E9'), (U&'norm-e\0301')) v(s);

-- the messages name the character; user strings in messages are data,
-- never format strings
SELECT es_append(E'ctl-\u0085x', 'T', '{}');
SELECT es_append_batch('ctl-1', '[{"type": "ok", "data": {}}, {"type": "T\u001b", "data": {}}]');
SELECT es_append('inj-%s%s%s%s%n%x%p', 'T', '{}', 0);
SELECT es_append_batch('inj-batch', '[{"type": "T", "data": {}, "%s%n": 1}]');

-- an invalid id is quoted in the message cut at a character boundary, so
-- the message stays valid text in every client encoding (it used to cut a
-- character in two, and a LATIN1 client then got 22021 instead of 22023)
SELECT es_append_batch('ctl-1', jsonb_build_array(jsonb_build_object('type', 'T', 'data', '{}'::jsonb, 'id', repeat('a', 63) || U&'\00E9\00E9')));
SET client_encoding = 'LATIN1';
\set VERBOSITY sqlstate
SELECT es_append_batch('ctl-1', jsonb_build_array(jsonb_build_object('type', 'T', 'data', '{}'::jsonb, 'id', repeat('a', 63) || U&'\00E9\00E9')));
\set VERBOSITY default
RESET client_encoding;
