-- the privilege model: reader, appender and admin can do exactly what
-- docs/privileges.md says, and nothing more (42501 otherwise)
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS es_pg;
DROP ROLE IF EXISTS regress_es_reader;
DROP ROLE IF EXISTS regress_es_appender;
DROP ROLE IF EXISTS regress_es_admin;
DROP ROLE IF EXISTS regress_es_nobody;
RESET client_min_messages;

CREATE ROLE regress_es_reader;
CREATE ROLE regress_es_appender;
CREATE ROLE regress_es_admin;
CREATE ROLE regress_es_nobody;

-- every object of the extension is in the model, exactly once, so that a
-- new function cannot be added without saying who may use it
SELECT pg_describe_object(d.classid, d.objid, 0) AS not_in_the_model
  FROM pg_depend d
 WHERE d.refclassid = 'pg_extension'::regclass
   AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'es_pg')
   AND d.deptype = 'e'
   AND d.classid IN ('pg_proc'::regclass, 'pg_class'::regclass)
   AND d.objid <> 'es_privilege_model'::regclass
   AND d.objid NOT IN (SELECT object FROM es_privilege_model
						WHERE object_type <> 'schema')
 ORDER BY 1;
SELECT object_name, count(*) FROM es_privilege_model
 GROUP BY object_name HAVING count(*) > 1;
SELECT kind, object_type, object_name, privilege FROM es_privilege_model
 ORDER BY kind DESC, object_type, object_name;

SELECT es_grant_reader('regress_es_reader');
SELECT es_grant_appender('regress_es_appender');
SELECT es_grant_admin('regress_es_admin');

-- what each role holds directly on the extension's objects: the model,
-- and no INSERT, UPDATE, DELETE or TRUNCATE anywhere
SELECT r.rolname AS role, a.object_type, a.object_name, a.privilege_type
  FROM (SELECT 'table' AS object_type, c.oid::regclass::text AS object_name, x.*
		  FROM pg_class c, aclexplode(c.relacl) x
		 WHERE c.relnamespace = 'public'::regnamespace AND c.relname LIKE 'es\_%'
		UNION ALL
		SELECT 'function', p.oid::regprocedure::text, x.*
		  FROM pg_proc p, aclexplode(p.proacl) x
		 WHERE p.pronamespace = 'public'::regnamespace AND p.proname LIKE 'es\_%'
		UNION ALL
		SELECT 'schema', n.nspname::text, x.*
		  FROM pg_namespace n, aclexplode(n.nspacl) x
		 WHERE n.nspname = 'public') a
  JOIN pg_roles r ON r.oid = a.grantee
 WHERE r.rolname LIKE 'regress\_es\_%'
 ORDER BY 1, 2, 3, 4;

-- a few events to read, and a reducer everybody may call
SELECT es_append('priv-1', 'Created', '{"n": 1}') AS v;
CREATE FUNCTION priv_count(state jsonb, event es_events) RETURNS jsonb
	LANGUAGE sql AS $$SELECT jsonb_build_object('n', coalesce((state->>'n')::int, 0) + 1)$$;
SELECT es_save_snapshot('priv-1', 1, '{"n": 1}', 'priv_count(jsonb,es_events)');
-- and a projection, created by the owner, with a read model only it writes
CREATE TABLE priv_model (stream_id text PRIMARY KEY, n int);
CREATE FUNCTION priv_handler(e es_events) RETURNS void LANGUAGE sql AS $$
	INSERT INTO priv_model VALUES (e.stream_id, 1)
	ON CONFLICT (stream_id) DO UPDATE SET n = priv_model.n + 1$$;
CREATE FUNCTION priv_reset() RETURNS void LANGUAGE sql AS $$DELETE FROM priv_model$$;
SELECT es_create_projection('priv_proj', 'priv_handler(es_events)', NULL, 'async', 'priv_reset()', false);
SELECT count(*) AS events_before FROM es_events \gset

-- the matrix: every operation as every role, each rolled back
CREATE TEMP TABLE ops (n serial, op text, sql text);
INSERT INTO ops (op, sql) VALUES
	('es_append', $$SELECT es_append('priv-1', 'T', '{}')$$),
	('es_append_batch', $$SELECT es_append_batch('priv-1', '[{"type": "T", "data": {}}]')$$),
	('es_read_stream', $$SELECT count(*) FROM es_read_stream('priv-1')$$),
	('es_read_stream_backward', $$SELECT count(*) FROM es_read_stream_backward('priv-1')$$),
	('es_stream_version', $$SELECT es_stream_version('priv-1')$$),
	('es_read_all', $$SELECT count(*) FROM es_read_all(0, 10)$$),
	('es_head_position', $$SELECT es_head_position()$$),
	('SELECT es_streams', $$SELECT count(*) FROM es_streams$$),
	('SELECT es_events', $$SELECT count(*) FROM es_events$$),
	('SELECT es_privilege_model', $$SELECT count(*) FROM es_privilege_model$$),
	('es_load_snapshot', $$SELECT count(*) FROM es_load_snapshot('priv-1')$$),
	('es_load_snapshot by reducer', $$SELECT count(*) FROM es_load_snapshot('priv-1', 'priv_count(jsonb,es_events)')$$),
	('es_aggregate', $$SELECT es_aggregate('priv-1', 'priv_count(jsonb,es_events)')$$),
	('es_save_snapshot', $$SELECT es_save_snapshot('priv-1', 1, '{}')$$),
	('es_set_snapshot_policy', $$SELECT es_set_snapshot_policy('priv_count(jsonb,es_events)', 10)$$),
	('es_drop_snapshot_policy', $$SELECT es_drop_snapshot_policy('priv_count(jsonb,es_events)')$$),
	('es_drop_snapshots', $$SELECT es_drop_snapshots('priv_count(jsonb,es_events)')$$),
	('SELECT es_snapshots', $$SELECT count(*) FROM es_snapshots$$),
	('SELECT es_snapshot_policies', $$SELECT count(*) FROM es_snapshot_policies$$),
	('es_create_projection', $$SELECT es_create_projection('priv_proj_2', 'priv_handler(es_events)', NULL, 'async', NULL, false)$$),
	('es_drop_projection', $$SELECT es_drop_projection('priv_proj')$$),
	('es_rebuild_projection', $$SELECT es_rebuild_projection('priv_proj')$$),
	('es_apply_projections', $$SELECT es_apply_projections('priv_proj')$$),
	('es_resume_projection', $$SELECT es_resume_projection('priv_proj')$$),
	('es_start_projection_worker', $$SELECT es_start_projection_worker()$$),
	('es_wait_for_projection', $$SELECT es_wait_for_projection('priv_proj', 0, '0 s')$$),
	('es_projection_progress', $$SELECT count(*) FROM es_projection_progress()$$),
	('SELECT es_projection_status', $$SELECT count(*) FROM es_projection_status$$),
	('SELECT es_projections', $$SELECT count(*) FROM es_projections$$),
	('UPDATE es_subscription_members', $$UPDATE es_subscription_members SET checkpoint = 0$$),
	('UPDATE es_subscriptions', $$UPDATE es_subscriptions SET projection = NULL$$),
	('INSERT es_projections', $$INSERT INTO es_projections SELECT * FROM es_projections$$),
	('INSERT es_snapshots', $$INSERT INTO es_snapshots (stream_id, version, state) VALUES ('priv-1', 1, '{}')$$),
	('DELETE es_snapshots', $$DELETE FROM es_snapshots$$),
	('UPDATE es_snapshot_policies', $$UPDATE es_snapshot_policies SET every_n_events = 1$$),
	('es_seal', $$SELECT es_seal()$$),
	('es_delete_stream', $$SELECT es_delete_stream('priv-1')$$),
	('SELECT es_tombstones', $$SELECT count(*) FROM es_tombstones$$),
	('DELETE es_tombstones', $$DELETE FROM es_tombstones$$),
	('es_archive', $$SELECT es_archive()$$),
	('es_archive live', $$SELECT es_archive(0, NULL, true)$$),
	('es_read_archived', $$SELECT count(*) FROM es_read_archived()$$),
	('SELECT es_archives', $$SELECT count(*) FROM es_archives$$),
	('INSERT es_archives', $$INSERT INTO es_archives (archive_id, up_to_position, events) VALUES (-1, 0, 0)$$),
	('SELECT es_archived_events', $$SELECT count(*) FROM es_archived_events$$),
	('DELETE es_archived_events', $$DELETE FROM es_archived_events$$),
	('es_verify', $$SELECT intact FROM es_verify()$$),
	('SELECT es_seals', $$SELECT count(*) FROM es_seals$$),
	('INSERT es_seals', $$INSERT INTO es_seals SELECT * FROM es_seals$$),
	('UPDATE es_seals', $$UPDATE es_seals SET hash = hash$$),
	('DELETE es_seals', $$DELETE FROM es_seals$$),
	('INSERT es_events', $$INSERT INTO es_events (stream_id, version, event_type, data) VALUES ('priv-x', 1, 'T', '{}')$$),
	('UPDATE es_events', $$UPDATE es_events SET data = '{}'$$),
	('DELETE es_events', $$DELETE FROM es_events$$),
	('TRUNCATE es_events', $$TRUNCATE es_events$$),
	('LOCK es_events EXCLUSIVE', $$LOCK TABLE es_events IN EXCLUSIVE MODE$$),
	('LOCK es_events ROW SHARE', $$LOCK TABLE es_events IN ROW SHARE MODE$$),
	('SELECT es_events FOR SHARE', $$SELECT count(*) FROM (SELECT 1 FROM es_events FOR KEY SHARE) s$$),
	('nextval position sequence', $$SELECT nextval('es_events_position_seq')$$),
	('setval position sequence', $$SELECT setval('es_events_position_seq', 1)$$),
	('ALTER TABLE es_events', $$ALTER TABLE es_events ADD COLUMN x int$$),
	('ALTER TABLE es_events SET', $$ALTER TABLE es_events SET (fillfactor = 90)$$),
	('CREATE INDEX on es_events', $$CREATE INDEX ON es_events (event_type)$$),
	('CREATE TRIGGER on es_events', $$CREATE TRIGGER t BEFORE INSERT ON es_events FOR EACH STATEMENT EXECUTE FUNCTION es_events_insert_guard()$$),
	('CREATE RULE on es_events', $$CREATE RULE r AS ON INSERT TO es_events DO INSTEAD NOTHING$$),
	('DROP TABLE es_events', $$DROP TABLE es_events$$),
	('DROP EXTENSION es_pg', $$DROP EXTENSION es_pg$$),
	('call es_events_append_only()', $$SELECT es_events_append_only()$$),
	('es_grant_reader(self)', $$SELECT es_grant_reader(current_user::regrole)$$),
	('es_grant_appender(self)', $$SELECT es_grant_appender(current_user::regrole)$$),
	('es_revoke_reader(self)', $$SELECT es_revoke_reader(current_user::regrole)$$),
	('es_privileges_apply', $$SELECT es_privileges_apply('admin', current_user::regrole, true)$$);

CREATE TEMP TABLE results (n int, role text, got text);
GRANT INSERT ON results TO PUBLIC;
DO $$
DECLARE
	c record;
	r text;
	got text;
BEGIN
	FOR r IN SELECT unnest(ARRAY['regress_es_reader', 'regress_es_appender',
								 'regress_es_admin', 'regress_es_nobody'])
	LOOP
		FOR c IN SELECT * FROM ops ORDER BY n LOOP
			BEGIN
				EXECUTE format('SET LOCAL ROLE %I', r);
				EXECUTE c.sql;
				-- undo whatever it did
				RAISE EXCEPTION USING ERRCODE = 'ZZ000';
			EXCEPTION WHEN OTHERS THEN
				GET STACKED DIAGNOSTICS got = RETURNED_SQLSTATE;
			END;
			INSERT INTO results VALUES (c.n, r,
				CASE got WHEN 'ZZ000' THEN 'ok' ELSE got END);
		END LOOP;
	END LOOP;
END $$;
SELECT o.op,
	   max(got) FILTER (WHERE role = 'regress_es_reader') AS reader,
	   max(got) FILTER (WHERE role = 'regress_es_appender') AS appender,
	   max(got) FILTER (WHERE role = 'regress_es_admin') AS admin,
	   max(got) FILTER (WHERE role = 'regress_es_nobody') AS nobody
  FROM ops o JOIN results r USING (n)
 GROUP BY o.n, o.op ORDER BY o.n;
SELECT count(*) - :events_before AS rows_written FROM es_events;

-- for real: an appender appends and reads its own events
SET ROLE regress_es_appender;
SELECT es_append('priv-1', 'Deposited', '{"n": 2}', 1) AS v;
SELECT version, event_type, data FROM es_read_stream('priv-1');
RESET ROLE;

-- the grant functions: errors
\set VERBOSITY sqlstate
SELECT es_grant_reader(NULL);
SELECT es_grant_appender('regress_es_no_such_role');
SELECT es_privileges_apply('writer', 'regress_es_nobody', true);
SELECT es_grant_reader('public');
\set VERBOSITY default
-- a role allowed to call them but not to grant gets a clear error, and
-- nothing is granted
GRANT EXECUTE ON FUNCTION es_grant_reader(regrole),
	es_privileges_apply(text, regrole, boolean) TO regress_es_nobody;
SET ROLE regress_es_nobody;
SELECT es_grant_reader('regress_es_nobody');
RESET ROLE;
REVOKE EXECUTE ON FUNCTION es_grant_reader(regrole),
	es_privileges_apply(text, regrole, boolean) FROM regress_es_nobody;
SELECT has_table_privilege('regress_es_nobody', 'es_events', 'SELECT') AS nobody_reads;

-- revoking: appender -> reader -> nothing; granting twice is harmless
SELECT es_grant_appender('regress_es_appender');
SELECT es_revoke_appender('regress_es_appender');
SELECT has_function_privilege('regress_es_appender', 'es_append(text,text,jsonb,bigint,jsonb,uuid)', 'EXECUTE') AS appends,
	   has_table_privilege('regress_es_appender', 'es_events', 'SELECT') AS reads;
SELECT es_grant_admin('regress_es_appender');
SELECT es_revoke_reader('regress_es_appender');
SELECT count(*) AS privileges_left
  FROM pg_class c, aclexplode(c.relacl) x
 WHERE c.relname LIKE 'es\_%' AND x.grantee = 'regress_es_appender'::regrole;
SELECT count(*) AS privileges_left
  FROM pg_proc p, aclexplode(p.proacl) x
 WHERE p.proname LIKE 'es\_%' AND x.grantee = 'regress_es_appender'::regrole;
-- revoking admin leaves reading
SELECT es_revoke_admin('regress_es_admin');
SELECT has_table_privilege('regress_es_admin', 'es_events', 'SELECT') AS reads;

-- the messages users read
SET ROLE regress_es_reader;
SELECT es_append('priv-1', 'T', '{}');
INSERT INTO es_events (stream_id, version, event_type, data) VALUES ('priv-x', 1, 'T', '{}');
RESET ROLE;
SET ROLE regress_es_nobody;
SELECT * FROM es_read_all(0, 1);
RESET ROLE;

SELECT es_revoke_reader('regress_es_reader');
SELECT es_revoke_reader('regress_es_admin');
SELECT es_drop_snapshots('priv_count(jsonb,es_events)');
DROP FUNCTION priv_count(jsonb, es_events);
SELECT es_drop_projection('priv_proj');
DROP FUNCTION priv_handler(es_events);
DROP FUNCTION priv_reset();
DROP TABLE priv_model;
DROP ROLE regress_es_reader;
DROP ROLE regress_es_appender;
DROP ROLE regress_es_admin;
DROP ROLE regress_es_nobody;
