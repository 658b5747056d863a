-- audit/export.sql: export seals and the events they cover, one JSON
-- object per line, for audit/verify_export.py (docs/audit.md).
--
--   psql -X -At -v schema=public -v from=0 -v to=9223372036854775807 \
--        -f audit/export.sql -o export.jsonl mydb
--
-- Every variable is optional: schema (es_pg's schema, default public),
-- from and to (positions; the seals that cover any position from "from"
-- to "to", both included, and all their events).  Plain SQL, readable by
-- an auditor: it reads es_seals, es_events and es_archived_events (where
-- es_archive moved sealed events of deleted streams) and prints what they
-- hold, each field of an event as the canonical text the encoding hashes.
\if :{?schema}
\else
\set schema public
\endif
\if :{?from}
\else
\set from 0
\endif
\if :{?to}
\else
\set to 9223372036854775807
\endif
\set QUIET on
\pset format unaligned
\pset tuples_only on
BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;
SELECT pg_catalog.json_build_object('seal', pg_catalog.json_build_object(
		'seal_id', s.seal_id,
		'format', s.format,
		'after_position', s.after_position,
		'to_position', s.to_position,
		'positions', s.positions,
		'digests', pg_catalog.encode(s.digests, 'hex'),
		'prev_hash', pg_catalog.encode(s.prev_hash, 'hex'),
		'hash', pg_catalog.encode(s.hash, 'hex')))
  FROM :"schema".es_seals s
 WHERE s.to_position >= :'from'::bigint AND s.after_position < :'to'::bigint
 ORDER BY s.seal_id;
SELECT pg_catalog.json_build_object('event', pg_catalog.json_build_object(
		'global_position', e.global_position::text,
		'stream_id', e.stream_id,
		'version', e.version::text,
		'event_id', e.event_id::text,
		'event_type', e.event_type,
		'data', e.data::text,
		'metadata', e.metadata::text,
		'recorded_at', CASE WHEN pg_catalog.isfinite(e.recorded_at)
			THEN ((pg_catalog.extract('epoch', e.recorded_at) * 1000000)::bigint)::text
			ELSE e.recorded_at::text END,
		'schema_version', e.schema_version::text))
  FROM (SELECT global_position, stream_id, version, event_id, event_type, data, metadata, recorded_at, schema_version
		  FROM :"schema".es_events
		UNION ALL
		SELECT global_position, stream_id, version, event_id, event_type, data, metadata, recorded_at, schema_version
		  FROM :"schema".es_archived_events) e,
	   (SELECT pg_catalog.min(s.after_position) AS lo, pg_catalog.max(s.to_position) AS hi
		  FROM :"schema".es_seals s
		 WHERE s.to_position >= :'from'::bigint AND s.after_position < :'to'::bigint) r
 WHERE e.global_position > r.lo AND e.global_position <= r.hi
 ORDER BY e.global_position;
COMMIT;
