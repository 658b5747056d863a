-- bad input, at random: 3000 calls of es_append_batch and es_append with
-- generated arguments (random JSON shapes, keys, strings with control and
-- non-ASCII characters, ids, expected versions), from a fixed seed.  Every
-- call either succeeds and stores exactly what it was given, or fails with
-- one of the documented SQLSTATEs having written nothing and used no
-- position.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS es_pg;
RESET client_min_messages;
SELECT setseed(0.4242);

-- a random string: mostly letters, sometimes control characters, quotes,
-- backslashes, non-ASCII and astral characters, sometimes empty
CREATE FUNCTION pg_temp.rnd_text(maxlen int) RETURNS text LANGUAGE sql AS $f$
	SELECT coalesce(string_agg(CASE
		WHEN r < 0.70 THEN chr(97 + (random() * 25)::int)
		WHEN r < 0.75 THEN chr(1 + (random() * 30)::int)
		WHEN r < 0.78 THEN chr(127 + (random() * 33)::int)
		WHEN r < 0.84 THEN (ARRAY['''', '"', '\', '%s', '$$', ';', '-'])[1 + (random() * 6)::int]
		WHEN r < 0.92 THEN chr(160 + (random() * 50000)::int)
		ELSE chr(65536 + (random() * 1000000)::int) END, ''), '')
	  FROM (SELECT random() AS r FROM generate_series(1, (random() * maxlen)::int)) s
$f$;
SELECT count(*) FROM (SELECT pg_temp.rnd_text(20) FROM generate_series(1, 10)) s;

-- a random JSON value, nested up to depth
CREATE FUNCTION pg_temp.rnd_json(depth int) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
	r float8 := random();
	n int;
	o jsonb := '{}';
	a jsonb := '[]';
BEGIN
	IF depth <= 0 OR r < 0.35 THEN
		r := random();
		RETURN CASE WHEN r < 0.2 THEN 'null'::jsonb
					WHEN r < 0.4 THEN to_jsonb(random() < 0.5)
					WHEN r < 0.6 THEN to_jsonb((random() * 1e6)::numeric(12, 3))
					ELSE to_jsonb(pg_temp.rnd_text(12)) END;
	END IF;
	n := (random() * 4)::int;
	IF r < 0.7 THEN
		FOR i IN 1 .. n LOOP
			o := o || jsonb_build_object(pg_temp.rnd_text(6), pg_temp.rnd_json(depth - 1));
		END LOOP;
		RETURN o;
	END IF;
	FOR i IN 1 .. n LOOP
		a := a || jsonb_build_array(pg_temp.rnd_json(depth - 1));
	END LOOP;
	RETURN a;
END $$;

-- one event of a batch: mostly well formed, each key sometimes wrong
CREATE FUNCTION pg_temp.rnd_event() RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
	e jsonb := '{}';
BEGIN
	IF random() < 0.03 THEN
		RETURN pg_temp.rnd_json(2);
	END IF;
	IF random() < 0.95 THEN
		e := e || jsonb_build_object('type', CASE WHEN random() < 0.85
			THEN to_jsonb('T' || pg_temp.rnd_text(8)) ELSE pg_temp.rnd_json(1) END);
	END IF;
	IF random() < 0.95 THEN
		e := e || jsonb_build_object('data', CASE WHEN random() < 0.85
			THEN jsonb_build_object('v', pg_temp.rnd_json(2)) ELSE pg_temp.rnd_json(1) END);
	END IF;
	IF random() < 0.3 THEN
		e := e || jsonb_build_object('metadata', CASE WHEN random() < 0.7
			THEN jsonb_build_object('m', pg_temp.rnd_json(1)) ELSE pg_temp.rnd_json(1) END);
	END IF;
	IF random() < 0.3 THEN
		e := e || jsonb_build_object('id', CASE
			WHEN random() < 0.15 THEN to_jsonb(md5('reused-' || (random() * 4)::int)::uuid::text)
			WHEN random() < 0.6 THEN to_jsonb(md5(random()::text)::uuid::text)
			WHEN random() < 0.5 THEN to_jsonb(replace(md5(random()::text)::uuid::text, '-', ''))
			ELSE pg_temp.rnd_json(1) END);
	END IF;
	IF random() < 0.03 THEN
		e := e || jsonb_build_object(pg_temp.rnd_text(5), 1);
	END IF;
	RETURN e;
END $$;

CREATE TEMP TABLE outcome (n int, fn text, got text, problem text);

DO $$
DECLARE
	stream text;
	batch jsonb;
	expected bigint;
	got text;
	v_before bigint;
	v_after bigint;
	pos_before bigint;
	pos_after bigint;
	rows_before bigint;
	rows_after bigint;
	problem text;
	stored jsonb;
	given jsonb;
	etype text;
	edata jsonb;
	emeta jsonb;
BEGIN
	FOR i IN 1 .. 3000 LOOP
		stream := CASE WHEN random() < 0.9 THEN 'rnd-' || (random() * 40)::int
					   ELSE pg_temp.rnd_text(10) END;
		v_before := es_stream_version(stream);
		expected := CASE WHEN random() < 0.4 THEN NULL
						 WHEN random() < 0.7 THEN v_before
						 ELSE (ARRAY[-3, -2, -1, 0, 1, 5, v_before + 1])[1 + (random() * 6)::int] END;
		SELECT last_value + is_called::int INTO pos_before FROM es_events_position_seq;
		SELECT count(*) INTO rows_before FROM es_events;
		problem := NULL;
		IF i % 3 = 0 THEN
			-- es_append with random pieces
			etype := CASE WHEN random() < 0.9 THEN 'T' || pg_temp.rnd_text(6) ELSE pg_temp.rnd_text(4) END;
			edata := CASE WHEN random() < 0.85 THEN jsonb_build_object('v', pg_temp.rnd_json(2)) ELSE pg_temp.rnd_json(1) END;
			emeta := CASE WHEN random() < 0.7 THEN NULL WHEN random() < 0.8 THEN jsonb_build_object('m', 1) ELSE pg_temp.rnd_json(1) END;
			batch := jsonb_build_array(jsonb_build_object('type', etype, 'data', edata, 'metadata', emeta));
			BEGIN
				PERFORM es_append(stream, etype, edata, expected, emeta);
				got := 'ok';
			EXCEPTION WHEN OTHERS THEN
				GET STACKED DIAGNOSTICS got = RETURNED_SQLSTATE;
			END;
		ELSE
			batch := CASE WHEN random() < 0.05 THEN pg_temp.rnd_json(2)
						  ELSE (SELECT coalesce(jsonb_agg(pg_temp.rnd_event()), '[]')
								  FROM generate_series(1, (random() * 5)::int)) END;
			BEGIN
				PERFORM es_append_batch(stream, batch, expected);
				got := 'ok';
			EXCEPTION WHEN OTHERS THEN
				GET STACKED DIAGNOSTICS got = RETURNED_SQLSTATE;
			END;
		END IF;
		v_after := es_stream_version(stream);
		SELECT last_value + is_called::int INTO pos_after FROM es_events_position_seq;
		SELECT count(*) INTO rows_after FROM es_events;

		IF got NOT IN ('ok') THEN
			IF got NOT IN ('22023', '22004', '23505', '40001', '54000') THEN
				problem := 'undocumented SQLSTATE';
			ELSIF rows_after <> rows_before OR pos_after <> pos_before OR v_after <> v_before THEN
				problem := 'a failed call wrote something';
			END IF;
		ELSIF v_after = v_before AND jsonb_array_length(batch) > 0
			  AND NOT EXISTS (SELECT FROM jsonb_array_elements(batch) e
							   WHERE NOT EXISTS (SELECT FROM es_events x
												  WHERE x.stream_id = stream
													AND x.event_id::text = replace(e->>'id', '-', '')::uuid::text)) THEN
			-- an exact retry: every id is already in this stream, nothing new
			got := 'ok (retry)';
		ELSE
			-- what was stored is what was given, in order, at the next versions
			SELECT jsonb_agg(jsonb_build_object('type', event_type, 'data', data,
												'metadata', metadata) ORDER BY version)
			  INTO stored FROM es_events
			 WHERE stream_id = stream AND version > v_before;
			SELECT jsonb_agg(jsonb_build_object('type', e->'type', 'data', e->'data',
												'metadata', CASE WHEN e->'metadata' = 'null' THEN NULL ELSE e->'metadata' END)
							 ORDER BY o)
			  INTO given FROM jsonb_array_elements(batch) WITH ORDINALITY AS x(e, o);
			IF stored IS DISTINCT FROM given THEN
				problem := 'stored events differ from the call';
			ELSIF v_after <> v_before + jsonb_array_length(batch) THEN
				problem := 'wrong new version';
			ELSIF expected IS NOT NULL AND expected NOT IN (-1, -2) AND expected <> v_before THEN
				problem := 'a wrong expected version was accepted';
			END IF;
		END IF;
		INSERT INTO outcome VALUES (i, CASE WHEN i % 3 = 0 THEN 'es_append' ELSE 'es_append_batch' END,
									got, problem);
	END LOOP;
END $$;

SELECT fn, string_agg(DISTINCT got, ', ' ORDER BY got) AS outcomes,
	   count(*) FILTER (WHERE got LIKE 'ok%') > 100 AS many_succeeded,
	   count(*) FILTER (WHERE got NOT LIKE 'ok%') > 100 AS many_refused
  FROM outcome GROUP BY 1 ORDER BY 1;
SELECT n, fn, got, problem FROM outcome WHERE problem IS NOT NULL ORDER BY n LIMIT 20;
SELECT count(*) AS random_cases_tried FROM outcome;
-- versions are still 1..N
SELECT count(*) AS broken_streams FROM (
	SELECT stream_id FROM es_events GROUP BY stream_id
	HAVING min(version) <> 1 OR max(version) <> count(*)) s;
