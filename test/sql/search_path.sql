-- search_path attacks: look-alike functions, operators and tables planted in
-- a schema earlier on a victim's search_path are never called by es_pg
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS es_pg;
DROP SCHEMA IF EXISTS regress_evil CASCADE;
DROP ROLE IF EXISTS regress_es_victim;
DROP ROLE IF EXISTS regress_es_attacker;
RESET client_min_messages;

-- every function of es_pg written in SQL or PL/pgSQL pins its search_path;
-- a SECURITY DEFINER one also puts pg_temp last (temporary tables would
-- otherwise come first)
SELECT p.oid::regprocedure AS unpinned, l.lanname, p.prosecdef, p.proconfig
  FROM pg_proc p
  JOIN pg_language l ON l.oid = p.prolang
  JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid
	AND d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
	AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'es_pg')
 WHERE (l.lanname NOT IN ('c', 'internal')
		AND NOT EXISTS (SELECT FROM unnest(p.proconfig) c
						 WHERE c LIKE 'search\_path=%'))
	OR (p.prosecdef
		AND NOT EXISTS (SELECT FROM unnest(p.proconfig) c
						 WHERE c LIKE 'search\_path=pg\_catalog%pg\_temp'));
SELECT count(*) > 0 AS has_sql_functions,
	   count(*) FILTER (WHERE p.prosecdef) AS security_definer
  FROM pg_proc p
  JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid
	AND d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
	AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'es_pg')
 WHERE p.prolang NOT IN (SELECT oid FROM pg_language WHERE lanname IN ('c', 'internal'));

CREATE ROLE regress_es_attacker;
CREATE ROLE regress_es_victim;
SELECT es_grant_appender('regress_es_victim');
-- a reducer that pins its own search_path (what a reducer does with names is
-- its own business; here it must not be what calls the plants)
CREATE FUNCTION public.sp_count(state jsonb, event public.es_events) RETURNS jsonb
	LANGUAGE sql SET search_path = pg_catalog
	AS $$SELECT pg_catalog.jsonb_build_object('n',
		pg_catalog.int8pl(COALESCE((state OPERATOR(pg_catalog.->>) 'n')::pg_catalog.int8, 0), 1))$$;
SELECT es_set_snapshot_policy('sp_count(jsonb,es_events)', 1);
-- projections, created by the owner with an ordinary search_path; their
-- handlers use unqualified names on purpose: they run with the creator's
-- pinned search_path, never with the appender's
CREATE TABLE public.sp_model (stream_id text PRIMARY KEY, n int, types text);
CREATE FUNCTION public.sp_handler(e es_events) RETURNS void LANGUAGE sql AS $$
	INSERT INTO sp_model VALUES (e.stream_id, 1, e.event_type)
	ON CONFLICT (stream_id) DO UPDATE
	   SET n = sp_model.n + 1, types = sp_model.types || ',' || e.event_type
	 WHERE e.stream_id = 'sp-1'$$;
CREATE FUNCTION public.sp_reset() RETURNS void LANGUAGE sql AS $$DELETE FROM sp_model$$;
CREATE TABLE public.sp_async_model (stream_id text PRIMARY KEY, n int);
CREATE FUNCTION public.sp_async_handler(e es_events) RETURNS void LANGUAGE sql AS $$
	INSERT INTO sp_async_model VALUES (e.stream_id, 1)
	ON CONFLICT (stream_id) DO UPDATE SET n = sp_async_model.n + 1$$;
CREATE FUNCTION public.sp_async_reset() RETURNS void LANGUAGE sql AS $$DELETE FROM sp_async_model$$;
SELECT es_create_projection('sp_inline', 'sp_handler(es_events)', NULL, 'inline', 'sp_reset()', false);
SELECT es_create_projection('sp_async', 'sp_async_handler(es_events)', NULL, 'async', 'sp_async_reset()', false);
CREATE SCHEMA regress_evil AUTHORIZATION regress_es_attacker;
GRANT USAGE ON SCHEMA regress_evil TO PUBLIC;

-- the attacker plants look-alikes; each one writes to a log table when it
-- runs, then does what the real one does
SET ROLE regress_es_attacker;
CREATE TABLE regress_evil.calls (what text);
GRANT INSERT, SELECT, DELETE ON regress_evil.calls TO PUBLIC;
CREATE FUNCTION regress_evil.log(what text) RETURNS boolean LANGUAGE sql
	AS $$INSERT INTO regress_evil.calls VALUES (what) RETURNING true$$;

CREATE FUNCTION regress_evil.texteq(a text, b text) RETURNS boolean LANGUAGE sql
	AS $$SELECT regress_evil.log('text = text') AND pg_catalog.texteq(a, b)$$;
CREATE OPERATOR regress_evil.= (LEFTARG = text, RIGHTARG = text,
	FUNCTION = regress_evil.texteq);
CREATE FUNCTION regress_evil.int8eq(a bigint, b bigint) RETURNS boolean LANGUAGE sql
	AS $$SELECT regress_evil.log('bigint = bigint') AND pg_catalog.int8eq(a, b)$$;
CREATE OPERATOR regress_evil.= (LEFTARG = bigint, RIGHTARG = bigint,
	FUNCTION = regress_evil.int8eq);
CREATE FUNCTION regress_evil.int8gt(a bigint, b bigint) RETURNS boolean LANGUAGE sql
	AS $$SELECT regress_evil.log('bigint > bigint') AND pg_catalog.int8gt(a, b)$$;
CREATE OPERATOR regress_evil.> (LEFTARG = bigint, RIGHTARG = bigint,
	FUNCTION = regress_evil.int8gt);
CREATE FUNCTION regress_evil.jsonb_get(a jsonb, b text) RETURNS text LANGUAGE sql
	AS $$SELECT CASE WHEN regress_evil.log('jsonb ->> text') THEN a OPERATOR(pg_catalog.->>) b END$$;
CREATE OPERATOR regress_evil.->> (LEFTARG = jsonb, RIGHTARG = text,
	FUNCTION = regress_evil.jsonb_get);
CREATE FUNCTION regress_evil.textcat(a text, b text) RETURNS text LANGUAGE sql
	AS $$SELECT CASE WHEN regress_evil.log('text || text') THEN pg_catalog.textcat(a, b) END$$;
CREATE OPERATOR regress_evil.|| (LEFTARG = text, RIGHTARG = text,
	FUNCTION = regress_evil.textcat);
CREATE FUNCTION regress_evil.now() RETURNS timestamptz LANGUAGE sql
	AS $$SELECT CASE WHEN regress_evil.log('now()') THEN pg_catalog.now() END$$;
CREATE FUNCTION regress_evil.clock_timestamp() RETURNS timestamptz LANGUAGE sql
	AS $$SELECT CASE WHEN regress_evil.log('clock_timestamp()') THEN pg_catalog.clock_timestamp() END$$;
CREATE FUNCTION regress_evil.gen_random_uuid() RETURNS uuid LANGUAGE sql
	AS $$SELECT CASE WHEN regress_evil.log('gen_random_uuid()') THEN pg_catalog.gen_random_uuid() END$$;
CREATE FUNCTION regress_evil.nextval(regclass) RETURNS bigint LANGUAGE sql
	AS $$SELECT CASE WHEN regress_evil.log('nextval()') THEN 1::bigint END$$;
CREATE FUNCTION regress_evil.format(text, VARIADIC text[]) RETURNS text LANGUAGE sql
	AS $$SELECT CASE WHEN regress_evil.log('format()') THEN pg_catalog.format($1, VARIADIC $2) END$$;
CREATE FUNCTION regress_evil.has_table_privilege(oid, text) RETURNS boolean LANGUAGE sql
	AS $$SELECT regress_evil.log('has_table_privilege()') AND pg_catalog.has_table_privilege($1, $2)$$;
CREATE FUNCTION regress_evil.jsonb_typeof(jsonb) RETURNS text LANGUAGE sql
	AS $$SELECT CASE WHEN regress_evil.log('jsonb_typeof()') THEN pg_catalog.jsonb_typeof($1) END$$;
CREATE FUNCTION regress_evil.lower(text) RETURNS text LANGUAGE sql
	AS $$SELECT CASE WHEN regress_evil.log('lower()') THEN pg_catalog.lower($1) END$$;
-- a look-alike event store and sequence
CREATE TABLE regress_evil.es_events (global_position bigint, stream_id text, version bigint,
	event_id uuid, event_type text, data jsonb, metadata jsonb,
	recorded_at timestamptz);
GRANT ALL ON regress_evil.es_events TO PUBLIC;
CREATE FUNCTION regress_evil.log_trigger() RETURNS trigger LANGUAGE plpgsql
	AS $$BEGIN PERFORM regress_evil.log(TG_OP || ' on ' || CASE WHEN TG_TABLE_SCHEMA LIKE 'pg\_temp%' THEN 'pg_temp' ELSE TG_TABLE_SCHEMA END || '.' || TG_TABLE_NAME); RETURN NULL; END$$;
CREATE TRIGGER log_insert AFTER INSERT OR UPDATE OR DELETE ON regress_evil.es_events
	FOR EACH STATEMENT EXECUTE FUNCTION regress_evil.log_trigger();
CREATE SEQUENCE regress_evil.es_events_position_seq START 1000000;
GRANT ALL ON regress_evil.es_events_position_seq TO PUBLIC;
CREATE VIEW regress_evil.es_streams AS
	SELECT stream_id, max(version) AS version, count(*) AS events,
		   min(recorded_at) AS created_at, max(recorded_at) AS updated_at,
		   max(global_position) AS last_position
	  FROM regress_evil.es_events WHERE regress_evil.log('es_streams view')
	 GROUP BY stream_id;
GRANT SELECT ON regress_evil.es_streams TO PUBLIC;
-- look-alike read models
CREATE TABLE regress_evil.sp_model (stream_id text PRIMARY KEY, n int, types text);
CREATE TABLE regress_evil.sp_async_model (stream_id text PRIMARY KEY, n int);
GRANT ALL ON regress_evil.sp_model, regress_evil.sp_async_model TO PUBLIC;
CREATE TRIGGER log_insert AFTER INSERT OR UPDATE OR DELETE ON regress_evil.sp_model
	FOR EACH STATEMENT EXECUTE FUNCTION regress_evil.log_trigger();
CREATE TRIGGER log_insert AFTER INSERT OR UPDATE OR DELETE ON regress_evil.sp_async_model
	FOR EACH STATEMENT EXECUTE FUNCTION regress_evil.log_trigger();
RESET ROLE;

-- the victim's session: the attacker's schema first, then pg_catalog, with
-- look-alikes in pg_temp as well
SET ROLE regress_es_victim;
SET search_path = regress_evil, pg_catalog, public;
CREATE TEMP TABLE es_events (global_position bigint, stream_id text, version bigint,
	event_id uuid, event_type text, data jsonb, metadata jsonb,
	recorded_at timestamptz);
CREATE TRIGGER log_insert AFTER INSERT OR UPDATE OR DELETE ON pg_temp.es_events
	FOR EACH STATEMENT EXECUTE FUNCTION regress_evil.log_trigger();
CREATE FUNCTION pg_temp.nextval(regclass) RETURNS bigint LANGUAGE sql
	AS $$SELECT CASE WHEN regress_evil.log('pg_temp.nextval()') THEN 1::bigint END$$;
CREATE FUNCTION pg_temp.es_stream_version(text) RETURNS bigint LANGUAGE sql
	AS $$SELECT CASE WHEN regress_evil.log('pg_temp.es_stream_version()') THEN 0::bigint END$$;

-- the plants work: ordinary queries of the victim call them
SELECT 'a'::text = 'a'::text AS eq, '{"a": "x"}'::jsonb ->> 'a' AS get,
	   now() IS NOT NULL AS now, 1::bigint > 0::bigint AS gt;
INSERT INTO es_events (global_position, stream_id, version, event_id, event_type, data, recorded_at)
	VALUES (1, 'x', 1, gen_random_uuid(), 'X', '{}', clock_timestamp());
SELECT DISTINCT what FROM regress_evil.calls ORDER BY what;
DELETE FROM regress_evil.calls;

-- es_pg's functions, called by the victim with this search_path, never do
SELECT public.es_head_position() AS sp_start \gset
SELECT public.es_append('sp-1', 'Created', '{"a": "x"}') AS v;
SELECT public.es_append('sp-1', 'Renamed', '{"a": "y"}', 1, '{"m": 1}',
						'6a1f0c8e-0000-4000-8000-000000000001') AS v;
-- an exact retry with the same event id
SELECT public.es_append('sp-1', 'Renamed', '{"a": "y"}', 1, '{"m": 1}',
						'6a1f0c8e-0000-4000-8000-000000000001') AS v;
SELECT public.es_append_batch('sp-1', '[{"type": "A", "data": {}}, {"type": "B", "data": {}, "metadata": {}, "id": "6a1f0c8e-0000-4000-8000-000000000002"}]', 2) AS v;
\set VERBOSITY sqlstate
SELECT public.es_append('sp-1', 'Late', '{}', 1);
\set VERBOSITY default
SELECT version, event_type, data FROM public.es_read_stream('sp-1');
SELECT version FROM public.es_read_stream('sp-1', 1, 2);
SELECT version FROM public.es_read_stream_backward('sp-1', 4, 2);
SELECT public.es_stream_version('sp-1') AS version;
SELECT count(*) FROM public.es_read_all(:sp_start, 1000) WHERE stream_id OPERATOR(pg_catalog.=) 'sp-1';
SELECT public.es_head_position() OPERATOR(pg_catalog.>) 0 AS has_head;
SELECT version, events FROM public.es_streams WHERE stream_id OPERATOR(pg_catalog.=) 'sp-1';
SELECT count(*) OPERATOR(pg_catalog.>) 0 AS model_rows FROM public.es_privilege_model;
-- snapshots: es_aggregate stores one through its policy (SPI, as the owner)
SELECT public.es_aggregate('sp-1', 'public.sp_count(jsonb,public.es_events)');
SELECT public.es_aggregate('sp-1', 'public.sp_count(jsonb,public.es_events)', '{}', 2);
SELECT public.es_save_snapshot('sp-1', 3, '{"n": 3}');
SELECT public.es_save_snapshot('sp-1', 3, '{"n": 3}');
SELECT version, state FROM public.es_load_snapshot('sp-1');
SELECT version, state FROM public.es_load_snapshot('sp-1', 'public.sp_count(jsonb,public.es_events)');
RESET ROLE;

-- the inline projection ran inside the victim's appends
SELECT n, types FROM public.sp_model WHERE stream_id OPERATOR(pg_catalog.=) 'sp-1';

-- the owner's commands with the same search_path: grant functions, the
-- guards on direct writes, the DDL guard
SET search_path = regress_evil, pg_catalog, public;
SELECT public.es_grant_reader('regress_es_attacker');
SELECT public.es_revoke_reader('regress_es_attacker');
SELECT public.es_set_snapshot_policy('public.sp_count(jsonb,public.es_events)', 2);
SELECT public.es_drop_snapshots('public.sp_count(jsonb,public.es_events)', 'sp-1') OPERATOR(pg_catalog.>) 0 AS dropped;
SELECT public.es_drop_snapshots(NULL, 'sp-1') OPERATOR(pg_catalog.>) 0 AS dropped;
SELECT public.es_drop_snapshot_policy('public.sp_count(jsonb,public.es_events)');
-- projections: apply, rebuild, wait, status (the inline one already ran
-- inside the victim's appends)
SELECT public.es_apply_projections('sp_async') OPERATOR(pg_catalog.>=) 0 AS applied;
SELECT public.es_rebuild_projection('sp_inline') OPERATOR(pg_catalog.>) 0 AS rebuilt;
SELECT public.es_rebuild_projection('sp_async') OPERATOR(pg_catalog.>) 0 AS rebuilt;
SELECT public.es_wait_for_projection('sp_async', public.es_head_position(), '1 s');
SELECT name, state FROM public.es_projection_status
 WHERE name OPERATOR(pg_catalog.~~) 'sp\_%' ORDER BY name;
BEGIN;
INSERT INTO public.es_events (stream_id, version, event_type, data)
	VALUES ('sp-direct', 1, 'Restored', '{}');
ROLLBACK;
\set VERBOSITY sqlstate
UPDATE public.es_events SET data = '{}' WHERE false;
\set VERBOSITY default
ALTER TABLE public.es_events SET (autovacuum_enabled = true);
ALTER TABLE public.es_events RESET (autovacuum_enabled);
RESET search_path;

-- nothing planted ran
SELECT count(*) AS planted_calls FROM regress_evil.calls;
SELECT what FROM regress_evil.calls;
SELECT count(*) AS look_alike_rows FROM regress_evil.es_events;
SELECT count(*) AS look_alike_model_rows FROM regress_evil.sp_model;
SELECT count(*) AS look_alike_model_rows FROM regress_evil.sp_async_model;
-- the read models were written where they belong
SELECT n, types FROM public.sp_model WHERE stream_id = 'sp-1';
SELECT n FROM public.sp_async_model WHERE stream_id = 'sp-1';
SELECT last_value AS look_alike_sequence FROM regress_evil.es_events_position_seq;

SET client_min_messages = warning;
DISCARD TEMP;
DROP SCHEMA regress_evil CASCADE;
RESET client_min_messages;
SELECT es_revoke_reader('regress_es_victim');
DROP FUNCTION public.sp_count(jsonb, es_events);
SELECT es_drop_projection('sp_inline'), es_drop_projection('sp_async');
DROP FUNCTION public.sp_handler(es_events), public.sp_reset(),
	public.sp_async_handler(es_events), public.sp_async_reset();
DROP TABLE public.sp_model, public.sp_async_model;
DROP ROLE regress_es_victim;
DROP ROLE regress_es_attacker;
