-- the seal chain: es_seal, es_verify, the encoding recomputed in plain SQL,
-- the guard of es_seals, tampering by a superuser (rolled back), bad input
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS es_pg;
DROP ROLE IF EXISTS regress_seal_reader;
DROP SCHEMA IF EXISTS seal_evil CASCADE;
RESET client_min_messages;
CREATE ROLE regress_seal_reader;
SELECT es_grant_reader('regress_seal_reader');

-- everything already in the store is sealed first, so that the checks
-- below start from a known head
SELECT es_seal() >= 0 AS sealed_what_was_there;
SELECT coalesce(max(seal_id), 0) AS seals_before FROM es_seals \gset
SELECT coalesce(max(to_position), 0) AS head_before FROM es_seals \gset
SELECT es_seal() AS nothing_left;

-- events of every shape: metadata or none, unicode, a TOASTed payload, a
-- gap left by a rolled-back append, a direct insert with its own values
SELECT es_append('seal-1', 'Created', '{"n": 1, "b": [1, 2.50, "x"]}') AS v;
SELECT es_append('seal-1', 'Noted', '{"note": "café ☕"}', 1, '{"by": "me"}') AS v;
BEGIN;
SELECT es_append('seal-gap', 'Created', '{}') AS v;
ROLLBACK;
SELECT es_append_batch('seal-2', '[{"type": "A", "data": {}}, {"type": "B", "data": {"z": null}}]', 0) AS v;
SELECT es_append('seal-big', 'Blob',
	jsonb_build_object('blob', (SELECT string_agg(md5(g::text), '') FROM generate_series(1, 3000) g))) AS v;
INSERT INTO es_events (stream_id, version, event_id, event_type, data, metadata, recorded_at)
	VALUES ('seal-direct', 1, '6f1c0d4e-2b7a-4c61-9d2e-5a8b3c7d9e10', 'Imported',
			'{"k": "v"}', NULL, '2001-02-03 04:05:06.789012+00');

-- bad input
\set VERBOSITY sqlstate
SELECT es_seal(-1);
SELECT * FROM es_verify(-1);
SELECT * FROM es_verify(10, 9);
\set VERBOSITY default
SELECT es_seal(0) AS zero;

-- seal two events, then the rest
SELECT es_seal(2) AS sealed;
SELECT es_seal() AS sealed;
SELECT es_seal() AS sealed;
SELECT seal_id - :seals_before AS seal, after_position - :head_before AS after,
	   to_position - :head_before AS "to", cardinality(positions) AS events,
	   length(digests) AS digest_bytes, format
  FROM es_seals WHERE seal_id > :seals_before ORDER BY seal_id;
-- the gap is not in any seal; every event up to the head is in exactly one
SELECT count(*) = count(DISTINCT p) AS no_double,
	   count(*) = (SELECT count(*) FROM es_events) AS none_left_out
  FROM es_seals, unnest(positions) p;
SELECT bool_and(s.after_position = p.to_position AND s.prev_hash = p.hash) AS linked
  FROM es_seals s JOIN es_seals p ON p.seal_id = s.seal_id - 1;
SELECT prev_hash = '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea
	   AND after_position = 0 AS first_seal_starts_the_chain
  FROM es_seals WHERE seal_id = 1;

-- the encoding of docs/audit.md, recomputed in plain SQL with sha256()
CREATE FUNCTION pg_temp.field(t text) RETURNS bytea LANGUAGE sql IMMUTABLE AS $$
	SELECT CASE WHEN t IS NULL THEN '\x00'::bytea
		   ELSE '\x01'::bytea || int4send(octet_length(t)) || convert_to(t, 'UTF8') END $$;
CREATE FUNCTION pg_temp.event_digest(e es_events) RETURNS bytea LANGUAGE sql AS $$
	SELECT sha256(int4send(1)
		|| pg_temp.field(e.global_position::text) || pg_temp.field(e.stream_id)
		|| pg_temp.field(e.version::text) || pg_temp.field(e.event_id::text)
		|| pg_temp.field(e.event_type) || pg_temp.field(e.data::text)
		|| pg_temp.field(e.metadata::text)
		|| pg_temp.field(((extract(epoch FROM e.recorded_at) * 1000000)::bigint)::text)
		|| pg_temp.field(e.schema_version::text)) $$;
SELECT count(*) = (SELECT count(*) FROM es_events) AS all_events_compared,
	   count(*) FILTER (WHERE substr(s.digests, 32 * (x.i - 1)::int + 1, 32)
						IS DISTINCT FROM pg_temp.event_digest(e)) AS digests_differing
  FROM es_seals s
 CROSS JOIN LATERAL unnest(s.positions) WITH ORDINALITY x(p, i)
  JOIN es_events e ON e.global_position = x.p;
SELECT count(*) > 0 AS seals_compared,
	   count(*) FILTER (WHERE s.hash IS DISTINCT FROM sha256(int4send(1) || s.prev_hash
			|| int8send(s.seal_id) || int8send(s.after_position)
			|| int8send(s.to_position) || int8send(cardinality(s.positions)::bigint)
			|| (SELECT string_agg(int8send(x.p) || substr(s.digests, 32 * (x.i - 1)::int + 1, 32), ''::bytea ORDER BY x.i)
				  FROM unnest(s.positions) WITH ORDINALITY x(p, i)))) AS hashes_differing
  FROM es_seals s;
-- a known answer: the digest of an event whose every field is fixed, as
-- audit/verify_export.py computes it too (docs/audit.md)
SELECT encode(pg_temp.event_digest(ROW(6, 'seal-direct', 1,
			'6f1c0d4e-2b7a-4c61-9d2e-5a8b3c7d9e10', 'Imported', '{"k": "v"}', NULL,
			'2001-02-03 04:05:06.789012+00', NULL)::es_events), 'hex') AS known_digest;
-- the schema version an event was appended with is covered too
SELECT encode(pg_temp.event_digest(ROW(6, 'seal-direct', 1,
			'6f1c0d4e-2b7a-4c61-9d2e-5a8b3c7d9e10', 'Imported', '{"k": "v"}', NULL,
			'2001-02-03 04:05:06.789012+00', 2)::es_events), 'hex') AS known_digest_v2;

-- the whole chain, a part of it, nothing
SELECT intact, problem, seals > 0 AS some_seals, events = (SELECT count(*) FROM es_events) AS all_events,
	   sealed_to = es_head_position() AS to_head
  FROM es_verify();
SELECT intact, seals, events FROM es_verify(:head_before + 1, :head_before + 2);
SELECT intact, seals, events, sealed_to FROM es_verify(es_head_position() + 1);
-- progress for long runs (the NOTICEs are in test/t/070_seal.pl)
\set VERBOSITY sqlstate
SET es_pg.verify_progress_events = -1;
\set VERBOSITY default
SET es_pg.verify_progress_events = 0;
SELECT intact FROM es_verify(:head_before + 1);
RESET es_pg.verify_progress_events;

-- a reader verifies; under row-level security it is refused
SET ROLE regress_seal_reader;
SELECT intact FROM es_verify();
\set VERBOSITY sqlstate
SELECT es_seal();
SELECT count(*) FROM es_seals;
RESET ROLE;
BEGIN;
ALTER TABLE es_events ENABLE ROW LEVEL SECURITY;
CREATE POLICY seal_p ON es_events TO regress_seal_reader USING (stream_id = 'seal-1');
SET ROLE regress_seal_reader;
SELECT intact FROM es_verify();
ROLLBACK;

-- seals are never changed or removed, not even by a superuser
UPDATE es_seals SET hash = hash;
DELETE FROM es_seals;
TRUNCATE es_seals;
\set VERBOSITY default

-- a hostile search_path: a table and functions of the same names
CREATE SCHEMA seal_evil;
CREATE TABLE seal_evil.es_seals (LIKE es_seals);
CREATE FUNCTION seal_evil.sha256(bytea) RETURNS bytea LANGUAGE sql AS $$SELECT '\x00'::bytea$$;
SET search_path = seal_evil, public;
SELECT es_append('seal-3', 'T', '{}') AS v;
SELECT public.es_seal() AS sealed;
SELECT intact FROM public.es_verify();
SELECT count(*) AS evil_rows FROM seal_evil.es_seals;
RESET search_path;
DROP SCHEMA seal_evil CASCADE;

-- a superuser with every guard switched off changes one event, removes
-- another, adds one in the gap and edits a seal: each is found, at its
-- position (all rolled back)
SELECT global_position AS changed FROM es_events WHERE stream_id = 'seal-1' AND version = 2 \gset
SELECT global_position AS removed FROM es_events WHERE stream_id = 'seal-2' AND version = 1 \gset
SELECT global_position + 1 AS gap FROM es_events WHERE stream_id = 'seal-1' AND version = 2 \gset
BEGIN;
ALTER EVENT TRIGGER es_guard_ddl_start DISABLE;
ALTER EVENT TRIGGER es_guard_ddl_end DISABLE;
ALTER TABLE es_events DISABLE TRIGGER ALL;
ALTER TABLE es_events DROP CONSTRAINT es_events_insert_check;
UPDATE es_events SET data = '{"note": "cafe"}' WHERE global_position = :changed;
SELECT problem, position - :changed AS at_changed, seal_id - :seals_before AS seal
  FROM es_verify();
DELETE FROM es_events WHERE global_position = :removed;
SELECT problem, position - :changed AS at_changed FROM es_verify();
SELECT problem, position - :removed AS at_removed, found FROM es_verify(:changed + 1);
INSERT INTO es_events (global_position, stream_id, version, event_type, data)
	VALUES (:gap, 'seal-intruder', 1, 'T', '{}');
SELECT problem, position - :gap AS at_gap, expected FROM es_verify(:gap, :gap);
ALTER TABLE es_seals DISABLE TRIGGER ALL;
UPDATE es_seals SET digests = overlay(digests PLACING
		CASE WHEN get_byte(digests, 0) = 255 THEN '\x00'::bytea ELSE '\xff'::bytea END FROM 1)
 WHERE seal_id = :seals_before + 2;
SELECT problem, seal_id - :seals_before AS seal FROM es_verify(:gap + 1);
DELETE FROM es_seals WHERE seal_id = :seals_before + 1;
SELECT problem, seal_id - :seals_before AS seal FROM es_verify();
ROLLBACK;
SELECT intact FROM es_verify();
-- a changed schema version would change what the upcasters make of the
-- event: it is found at its position too
BEGIN;
ALTER EVENT TRIGGER es_guard_ddl_start DISABLE;
ALTER EVENT TRIGGER es_guard_ddl_end DISABLE;
ALTER TABLE es_events DISABLE TRIGGER ALL;
ALTER TABLE es_events DROP CONSTRAINT es_events_insert_check;
UPDATE es_events SET schema_version = 2 WHERE global_position = :changed;
SELECT problem, position - :changed AS at_changed FROM es_verify();
ROLLBACK;
SELECT intact FROM es_verify();

DROP OWNED BY regress_seal_reader;
DROP ROLE regress_seal_reader;
