-- Attack: rewrite or remove history through ordinary DDL, as a superuser.
-- Promise: no role rewrites or removes events through SQL; every such
-- command is refused (0A000, or 2BP01 for dropping the store) and history
-- and its guards are exactly as before.  The same matrix as the table
-- owner and as the schema owner runs in test/t/061_guard_matrix.pl.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS es_pg;
RESET client_min_messages;

SELECT es_append_batch('guard-1', '[{"type": "A", "data": {"n": 1}}, {"type": "B", "data": {"n": 2}}]') AS v;
CREATE TEMP TABLE history AS
SELECT md5(string_agg(global_position || stream_id || version || event_type || data::text,
					  ',' ORDER BY global_position)) AS digest,
	   count(*) AS events
  FROM es_events;
CREATE TABLE guard_parent (x int);
CREATE TYPE guard_row AS (global_position bigint);
CREATE TABLE guard_partitioned (global_position bigint, stream_id text, version bigint,
	event_id uuid, event_type text, data jsonb, metadata jsonb, recorded_at timestamptz)
	PARTITION BY RANGE (global_position);

-- each attack in a subtransaction that is rolled back even if the attack
-- succeeds: it must fail, with this SQLSTATE
CREATE FUNCTION pg_temp.attack(sql text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE sql;
	RAISE EXCEPTION 'allowed' USING ERRCODE = 'ES999';
EXCEPTION WHEN OTHERS THEN
	RETURN CASE SQLSTATE WHEN 'ES999' THEN 'ALLOWED' ELSE SQLSTATE END;
END $$;

SELECT label, pg_temp.attack(sql) AS sqlstate FROM (VALUES
	-- replacing or detaching es_pg's functions
	('replace the append-only trigger function',
	 $$CREATE OR REPLACE FUNCTION es_events_append_only() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NULL; END'$$),
	('replace the insert check',
	 $$CREATE OR REPLACE FUNCTION es_events_insert_check(global_position bigint) RETURNS boolean LANGUAGE sql AS 'SELECT true'$$),
	('replace a reader',
	 $$CREATE OR REPLACE FUNCTION es_stream_version(stream_id text) RETURNS bigint LANGUAGE sql AS 'SELECT 0::bigint'$$),
	('make a function SECURITY DEFINER', $$ALTER FUNCTION es_read_all(bigint, bigint) SECURITY DEFINER$$),
	('change a function''s settings', $$ALTER FUNCTION es_privileges_apply(text, regrole, boolean) RESET search_path$$),
	('rename a function', $$ALTER FUNCTION es_ddl_guard() RENAME TO nothing$$),
	('move a function', $$ALTER FUNCTION es_ddl_guard() SET SCHEMA pg_temp$$),
	('give a function away', $$ALTER FUNCTION es_ddl_guard() OWNER TO pg_database_owner$$),
	('detach a function', $$ALTER EXTENSION es_pg DROP FUNCTION es_events_append_only()$$),
	('detach the table', $$ALTER EXTENSION es_pg DROP TABLE es_events$$),
	('add to the extension', $$ALTER EXTENSION es_pg ADD TABLE guard_parent$$),
	('replace a view', $$CREATE OR REPLACE VIEW es_streams AS SELECT stream_id, 0::bigint AS version, 0::bigint AS events, now() AS created_at, now() AS updated_at, 0::bigint AS last_position FROM es_events$$),
	('switch a view to its owner''s rights', $$ALTER VIEW es_streams SET (security_invoker = false)$$),
	-- ALTER TABLE subcommands that change stored values or the guards
	('rewrite payloads with a type change', $$ALTER TABLE es_events ALTER COLUMN data TYPE jsonb USING '{"rewritten": true}'$$),
	('change a column type', $$ALTER TABLE es_events ALTER COLUMN version TYPE numeric$$),
	('change a default', $$ALTER TABLE es_events ALTER COLUMN global_position SET DEFAULT 1$$),
	('drop a default', $$ALTER TABLE es_events ALTER COLUMN event_id DROP DEFAULT$$),
	('drop NOT NULL', $$ALTER TABLE es_events ALTER COLUMN data DROP NOT NULL$$),
	('add a column', $$ALTER TABLE es_events ADD COLUMN x int$$),
	('add a generated column', $$ALTER TABLE es_events ADD COLUMN g text GENERATED ALWAYS AS (stream_id) STORED$$),
	('drop a column', $$ALTER TABLE es_events DROP COLUMN metadata$$),
	('rename a column', $$ALTER TABLE es_events RENAME COLUMN data TO payload$$),
	('rename the table', $$ALTER TABLE es_events RENAME TO h$$),
	('move the table', $$ALTER TABLE es_events SET SCHEMA pg_temp$$),
	('make the table unlogged', $$ALTER TABLE es_events SET UNLOGGED$$),
	('change the access method', $$ALTER TABLE es_events SET ACCESS METHOD heap$$),
	('make it an inheritance child', $$ALTER TABLE es_events INHERIT guard_parent$$),
	('make it a typed table', $$ALTER TABLE es_events OF guard_row$$),
	('attach it as a partition', $$ALTER TABLE guard_partitioned ATTACH PARTITION es_events FOR VALUES FROM (0) TO (1000)$$),
	('give it away', $$ALTER TABLE es_events OWNER TO pg_database_owner$$),
	('an identity column', $$ALTER TABLE es_events ALTER COLUMN global_position ADD GENERATED ALWAYS AS IDENTITY$$),
	('rename a constraint', $$ALTER TABLE es_events RENAME CONSTRAINT es_events_insert_check TO x$$),
	('drop the insert check', $$ALTER TABLE es_events DROP CONSTRAINT es_events_insert_check$$),
	('drop a unique constraint', $$ALTER TABLE es_events DROP CONSTRAINT es_events_event_id_key$$),
	('disable the row guard', $$ALTER TABLE es_events DISABLE TRIGGER es_events_append_only_row$$),
	('disable every trigger', $$ALTER TABLE es_events DISABLE TRIGGER ALL$$),
	('rename a trigger', $$ALTER TRIGGER es_events_append_only_row ON es_events RENAME TO x$$),
	('drop a trigger', $$DROP TRIGGER es_events_append_only_row ON es_events$$),
	('a rule', $$CREATE RULE r AS ON DELETE TO es_events DO INSTEAD NOTHING$$),
	-- around the table
	('inherit from it', $$CREATE TABLE guard_child () INHERITS (es_events)$$),
	('inherit from it later', $$ALTER TABLE guard_parent INHERIT es_events$$),
	('rename an index', $$ALTER INDEX es_events_pkey RENAME TO x$$),
	('drop an index', $$DROP INDEX es_events_stream_id_version_key$$),
	('restart the sequence', $$ALTER SEQUENCE es_events_position_seq RESTART WITH 1$$),
	('cache the sequence', $$ALTER SEQUENCE es_events_position_seq CACHE 20$$),
	('rename the sequence', $$ALTER SEQUENCE es_events_position_seq RENAME TO x$$),
	('rename the extension''s schema', $$ALTER SCHEMA public RENAME TO elsewhere$$),
	('drop the extension', $$DROP EXTENSION es_pg$$),
	('drop its schema', $$DROP SCHEMA public CASCADE$$),
	('drop what its owner owns', $$DROP OWNED BY CURRENT_USER$$)
) AS a(label, sql);

-- history and guards are as they were
SELECT h.digest = n.digest AS same_history, h.events = n.events AS same_count
  FROM history h,
	   (SELECT md5(string_agg(global_position || stream_id || version || event_type || data::text,
							  ',' ORDER BY global_position)) AS digest,
			   count(*) AS events
		  FROM es_events) n;
SELECT tgname, tgenabled, tgfoid::regproc FROM pg_trigger
 WHERE tgrelid = 'es_events'::regclass ORDER BY tgname;
SELECT conname, contype FROM pg_constraint
 WHERE conrelid = 'es_events'::regclass AND contype <> 'n' ORDER BY conname;
SELECT prosrc FROM pg_proc WHERE oid = 'es_events_append_only()'::regprocedure;

-- what a user sees
\set VERBOSITY default
ALTER TABLE es_events ALTER COLUMN data TYPE jsonb USING '{}';
CREATE OR REPLACE FUNCTION es_events_append_only() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NULL; END';
ALTER TABLE es_events RENAME TO h;

-- DDL that changes neither stored values nor guards goes through
BEGIN;
ALTER TABLE es_events SET (fillfactor = 90);
ALTER TABLE es_events ALTER COLUMN data SET STATISTICS 200;
ALTER TABLE es_events ADD CONSTRAINT guard_small CHECK (pg_column_size(data) < 1000000);
ALTER TABLE es_events DROP CONSTRAINT guard_small;
CREATE INDEX guard_recorded ON es_events (recorded_at);
DROP INDEX guard_recorded;
COMMENT ON TABLE es_events IS 'the event store: one row per event, append-only';
GRANT SELECT ON es_events TO pg_monitor;
REVOKE SELECT ON es_events FROM pg_monitor;
ALTER TABLE es_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE es_events DISABLE ROW LEVEL SECURITY;
ROLLBACK;

DROP TABLE guard_partitioned;
DROP TYPE guard_row;
DROP TABLE guard_parent;
