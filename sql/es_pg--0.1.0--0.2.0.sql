/*
 * sql/es_pg--0.1.0--0.2.0.sql: from 0.1.0 to 0.2.0 (see CHANGELOG.md).
 */
\echo Use "ALTER EXTENSION es_pg UPDATE TO '0.2.0'" to load this file. \quit

/*
 * Direct inserts keep the invariants (src/direct.c).  Adding the constraint
 * checks the rows already there; the function lets them pass while this
 * script runs.
 */
CREATE FUNCTION @extschema@.es_events_insert_check(global_position bigint)
	RETURNS boolean
	AS 'MODULE_PATHNAME', 'es_events_insert_check'
	LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION @extschema@.es_events_insert_check(bigint) IS
	'the check of es_events_insert_check: rows come from es_append or from an INSERT or COPY that keeps the invariants';
ALTER TABLE @extschema@.es_events ADD CONSTRAINT es_events_insert_check
	CHECK (@extschema@.es_events_insert_check(global_position));

/* rows reached through an inheritance parent or by logical replication */
CREATE TRIGGER es_events_append_only_row
	BEFORE UPDATE OR DELETE ON @extschema@.es_events
	FOR EACH ROW EXECUTE FUNCTION @extschema@.es_events_append_only();
ALTER TABLE @extschema@.es_events ENABLE ALWAYS TRIGGER es_events_append_only_row;

/* the DDL guard sees every command, before and after (src/guard.c) */
DROP EVENT TRIGGER es_guard_ddl;
DROP EVENT TRIGGER es_guard_drop;
CREATE EVENT TRIGGER es_guard_ddl_start ON ddl_command_start
	EXECUTE FUNCTION @extschema@.es_ddl_guard();
CREATE EVENT TRIGGER es_guard_ddl_end ON ddl_command_end
	EXECUTE FUNCTION @extschema@.es_ddl_guard();
ALTER EVENT TRIGGER es_guard_ddl_start ENABLE ALWAYS;
ALTER EVENT TRIGGER es_guard_ddl_end ENABLE ALWAYS;

/* with the caller's rights, so that row-level security on es_events applies */
ALTER VIEW @extschema@.es_streams SET (security_invoker = true);

/*
 * Snapshot policies fold with a pinned search_path.  Policies set before
 * 0.2.0 get the reducer's schema and the extension's; snapshots they made
 * no longer match the digest (which now covers the environment) and are
 * replayed once.
 */
ALTER TABLE @extschema@.es_snapshot_policies ADD COLUMN search_path text;
UPDATE @extschema@.es_snapshot_policies p
   SET search_path = CASE
		WHEN (pg_catalog.parse_ident(p.reducer))[1] OPERATOR(pg_catalog.=) '@extschema@'
		THEN pg_catalog.quote_ident('@extschema@') OPERATOR(pg_catalog.||) ', pg_temp'
		ELSE pg_catalog.quote_ident((pg_catalog.parse_ident(p.reducer))[1])
			 OPERATOR(pg_catalog.||) ', '
			 OPERATOR(pg_catalog.||) pg_catalog.quote_ident('@extschema@')
			 OPERATOR(pg_catalog.||) ', pg_temp'
	   END;
ALTER TABLE @extschema@.es_snapshot_policies ALTER COLUMN search_path SET NOT NULL;
ALTER TABLE @extschema@.es_snapshot_policies ADD COLUMN extension name;
SELECT pg_catalog.pg_extension_config_dump('@extschema@.es_snapshot_policies',
	'WHERE extension IS NULL');
COMMENT ON COLUMN @extschema@.es_snapshot_policies.search_path IS
	'search_path the reducer folds with under the policy, pinned when it was set';
COMMENT ON COLUMN @extschema@.es_snapshot_policies.extension IS
	'the extension whose install script set the policy; such rows are not dumped';
COMMENT ON COLUMN @extschema@.es_snapshots.reducer_digest IS
	'SHA-256 of the reducer''s code, owner and pinned search_path and of the initial state (es_aggregate snapshots), NULL when saved with es_save_snapshot';

/*
 * Projections name their functions by schema-qualified signature, the
 * identity pg_identify_object gives (reg* columns made pg_upgrade refuse
 * the cluster).  The status view depends on the column: it is made again.
 */
DROP VIEW @extschema@.es_privilege_model;
DROP VIEW @extschema@.es_projection_status;
ALTER TABLE @extschema@.es_projections
	ALTER COLUMN handler TYPE text
		USING (pg_catalog.pg_identify_object('pg_catalog.pg_proc'::pg_catalog.regclass,
											 handler::pg_catalog.oid, 0)).identity,
	ALTER COLUMN reset TYPE text
		USING (pg_catalog.pg_identify_object('pg_catalog.pg_proc'::pg_catalog.regclass,
											 reset::pg_catalog.oid, 0)).identity;
ALTER TABLE @extschema@.es_projections
	ADD COLUMN handler_timeout_ms integer,
	ADD CONSTRAINT es_projections_handler_timeout_ms_check
		CHECK (handler_timeout_ms > 0);
ALTER TABLE @extschema@.es_projections ADD COLUMN extension name;
SELECT pg_catalog.pg_extension_config_dump('@extschema@.es_projections',
	'WHERE extension IS NULL');
COMMENT ON COLUMN @extschema@.es_projections.handler IS
	'the handler function, as a schema-qualified signature';
COMMENT ON COLUMN @extschema@.es_projections.reset IS
	'the reset function, as a schema-qualified signature; NULL: none';
COMMENT ON COLUMN @extschema@.es_projections.handler_timeout_ms IS
	'how long an async batch of handler calls may run; NULL: es_pg.projection_handler_timeout';
COMMENT ON COLUMN @extschema@.es_projections.extension IS
	'the extension whose install script created the projection; such rows are not dumped';

CREATE FUNCTION @extschema@.es_projection_checkpoints_restore()
	RETURNS trigger
	AS 'MODULE_PATHNAME', 'es_projection_checkpoints_restore'
	LANGUAGE C;
CREATE TRIGGER es_projection_checkpoints_restore
	BEFORE INSERT ON @extschema@.es_projection_checkpoints
	FOR EACH ROW EXECUTE FUNCTION @extschema@.es_projection_checkpoints_restore();
ALTER TABLE @extschema@.es_projection_checkpoints
	ENABLE ALWAYS TRIGGER es_projection_checkpoints_restore;
REVOKE ALL ON FUNCTION @extschema@.es_projection_checkpoints_restore() FROM PUBLIC;

CREATE EVENT TRIGGER es_projection_guard_rename ON ddl_command_start
	WHEN TAG IN ('ALTER FUNCTION', 'ALTER PROCEDURE', 'ALTER ROUTINE',
				 'ALTER SCHEMA')
	EXECUTE FUNCTION @extschema@.es_projection_sql_drop();
ALTER EVENT TRIGGER es_projection_guard_rename ENABLE ALWAYS;

CREATE FUNCTION @extschema@.es_set_projection_timeout(name text,
		timeout interval)
	RETURNS void
	AS 'MODULE_PATHNAME', 'es_set_projection_timeout'
	LANGUAGE C VOLATILE;
COMMENT ON FUNCTION @extschema@.es_set_projection_timeout(text, interval) IS
	'how long one async batch of the projection''s handler calls may run (NULL: es_pg.projection_handler_timeout)';
REVOKE ALL ON FUNCTION @extschema@.es_set_projection_timeout(text, interval) FROM PUBLIC;

CREATE VIEW @extschema@.es_projection_status AS
	SELECT p.name,
		   p.mode,
		   CASE
			   WHEN r.name IS NOT NULL THEN 'rebuilding'
			   WHEN c.parked THEN 'parked'
			   WHEN p.mode OPERATOR(pg_catalog.=) 'inline'
				 OR c.position OPERATOR(pg_catalog.>=) h.position THEN 'running'
			   ELSE 'catching up'
		   END AS state,
		   CASE WHEN p.mode OPERATOR(pg_catalog.=) 'inline'
				THEN h.position ELSE c.position END AS position,
		   h.position AS head_position,
		   CASE WHEN p.mode OPERATOR(pg_catalog.=) 'inline' THEN 0::bigint
				ELSE GREATEST(h.position OPERATOR(pg_catalog.-) c.position, 0)
		   END AS lag_events,
		   CASE WHEN p.mode OPERATOR(pg_catalog.=) 'inline'
				  OR c.position OPERATOR(pg_catalog.>=) h.position
				THEN '0'::interval
				ELSE GREATEST(pg_catalog.clock_timestamp() OPERATOR(pg_catalog.-)
					(SELECT e.recorded_at FROM @extschema@.es_events e
					  WHERE e.global_position OPERATOR(pg_catalog.>) c.position
					  ORDER BY e.global_position LIMIT 1), '0'::interval)
		   END AS lag_time,
		   CASE WHEN pg_catalog.has_table_privilege(
						'@extschema@.es_events'::pg_catalog.regclass, 'SELECT')
				THEN c.error_message END AS last_error,
		   c.error_sqlstate,
		   c.error_position,
		   c.error_at,
		   c.retries,
		   c.updated_at,
		   r.events_done AS rebuild_done,
		   r.events_total AS rebuild_total,
		   p.event_types,
		   p.handler,
		   p.owner
	  FROM @extschema@.es_projections p
	  JOIN @extschema@.es_projection_checkpoints c
		ON c.name OPERATOR(pg_catalog.=) p.name
	 CROSS JOIN (SELECT COALESCE((SELECT e.global_position
									FROM @extschema@.es_events e
								   ORDER BY e.global_position DESC LIMIT 1), 0)
						AS position) h
	  LEFT JOIN @extschema@.es_projection_progress() r
		ON r.name OPERATOR(pg_catalog.=) p.name;
GRANT SELECT ON @extschema@.es_projection_status TO PUBLIC;
COMMENT ON VIEW @extschema@.es_projection_status IS
	'per projection: mode, state, position reached, head, lag in events and time, last error (to roles that may read events)';

/* the privilege model, made again with the new functions */
CREATE VIEW @extschema@.es_privilege_model AS
SELECT m.kind, m.object_type, m.object,
	   CASE m.object_type
		   WHEN 'function' THEN m.object::pg_catalog.regprocedure::pg_catalog.text
		   WHEN 'schema' THEN m.object::pg_catalog.regnamespace::pg_catalog.text
		   ELSE m.object::pg_catalog.regclass::pg_catalog.text
	   END AS object_name,
	   m.privilege
  FROM (VALUES
	-- reader
	('reader', 'schema', '@extschema@'::pg_catalog.regnamespace::pg_catalog.oid, 'USAGE'),
	('reader', 'table', '@extschema@.es_events'::pg_catalog.regclass::pg_catalog.oid, 'SELECT'),
	('reader', 'view', '@extschema@.es_streams'::pg_catalog.regclass::pg_catalog.oid, 'SELECT'),
	('reader', 'function', '@extschema@.es_read_stream(text, bigint, bigint)'::pg_catalog.regprocedure::pg_catalog.oid, 'EXECUTE'),
	('reader', 'function', '@extschema@.es_read_stream_backward(text, bigint, bigint)'::pg_catalog.regprocedure::pg_catalog.oid, 'EXECUTE'),
	('reader', 'function', '@extschema@.es_stream_version(text)'::pg_catalog.regprocedure::pg_catalog.oid, 'EXECUTE'),
	('reader', 'function', '@extschema@.es_read_all(bigint, bigint)'::pg_catalog.regprocedure::pg_catalog.oid, 'EXECUTE'),
	('reader', 'function', '@extschema@.es_head_position()'::pg_catalog.regprocedure::pg_catalog.oid, 'EXECUTE'),
	('reader', 'function', '@extschema@.es_load_snapshot(text)'::pg_catalog.regprocedure::pg_catalog.oid, 'EXECUTE'),
	('reader', 'function', '@extschema@.es_load_snapshot(text, regprocedure)'::pg_catalog.regprocedure::pg_catalog.oid, 'EXECUTE'),
	('reader', 'function', '@extschema@.es_aggregate(text, regprocedure, jsonb, bigint, timestamptz)'::pg_catalog.regprocedure::pg_catalog.oid, 'EXECUTE'),
	('reader', 'function', '@extschema@.es_wait_for_projection(text, bigint, interval)'::pg_catalog.regprocedure::pg_catalog.oid, 'EXECUTE'),
	('reader', 'function', '@extschema@.es_projection_progress()'::pg_catalog.regprocedure::pg_catalog.oid, 'EXECUTE'),
	('reader', 'view', '@extschema@.es_projection_status'::pg_catalog.regclass::pg_catalog.oid, 'SELECT'),
	-- the check of direct inserts: callable by anyone, it only reads this session's state
	('reader', 'function', '@extschema@.es_events_insert_check(bigint)'::pg_catalog.regprocedure::pg_catalog.oid, 'EXECUTE'),
	-- appender
	('appender', 'function', '@extschema@.es_append(text, text, jsonb, bigint, jsonb, uuid)'::pg_catalog.regprocedure::pg_catalog.oid, 'EXECUTE'),
	('appender', 'function', '@extschema@.es_append_batch(text, jsonb, bigint)'::pg_catalog.regprocedure::pg_catalog.oid, 'EXECUTE'),
	('appender', 'function', '@extschema@.es_save_snapshot(text, bigint, jsonb, regprocedure)'::pg_catalog.regprocedure::pg_catalog.oid, 'EXECUTE'),
	-- admin: snapshot policies and invalidation, the tables behind them
	('admin', 'function', '@extschema@.es_set_snapshot_policy(regprocedure, integer)'::pg_catalog.regprocedure::pg_catalog.oid, 'EXECUTE'),
	('admin', 'function', '@extschema@.es_drop_snapshot_policy(regprocedure)'::pg_catalog.regprocedure::pg_catalog.oid, 'EXECUTE'),
	('admin', 'function', '@extschema@.es_drop_snapshots(regprocedure, text)'::pg_catalog.regprocedure::pg_catalog.oid, 'EXECUTE'),
	('admin', 'table', '@extschema@.es_snapshots'::pg_catalog.regclass::pg_catalog.oid, 'SELECT'),
	('admin', 'table', '@extschema@.es_snapshot_policies'::pg_catalog.regclass::pg_catalog.oid, 'SELECT'),
	-- admin: projections
	('admin', 'function', '@extschema@.es_create_projection(text, regprocedure, text[], text, regprocedure, boolean)'::pg_catalog.regprocedure::pg_catalog.oid, 'EXECUTE'),
	('admin', 'function', '@extschema@.es_drop_projection(text)'::pg_catalog.regprocedure::pg_catalog.oid, 'EXECUTE'),
	('admin', 'function', '@extschema@.es_rebuild_projection(text)'::pg_catalog.regprocedure::pg_catalog.oid, 'EXECUTE'),
	('admin', 'function', '@extschema@.es_apply_projections(text, bigint)'::pg_catalog.regprocedure::pg_catalog.oid, 'EXECUTE'),
	('admin', 'function', '@extschema@.es_resume_projection(text)'::pg_catalog.regprocedure::pg_catalog.oid, 'EXECUTE'),
	('admin', 'function', '@extschema@.es_set_projection_timeout(text, interval)'::pg_catalog.regprocedure::pg_catalog.oid, 'EXECUTE'),
	('admin', 'function', '@extschema@.es_start_projection_worker()'::pg_catalog.regprocedure::pg_catalog.oid, 'EXECUTE'),
	('admin', 'table', '@extschema@.es_projections'::pg_catalog.regclass::pg_catalog.oid, 'SELECT'),
	('admin', 'table', '@extschema@.es_projection_checkpoints'::pg_catalog.regclass::pg_catalog.oid, 'SELECT'),
	-- owner only
	('owner', 'sequence', '@extschema@.es_events_position_seq'::pg_catalog.regclass::pg_catalog.oid, NULL),
	('owner', 'function', '@extschema@.es_events_append_only()'::pg_catalog.regprocedure::pg_catalog.oid, NULL),
	('owner', 'function', '@extschema@.es_events_insert_guard()'::pg_catalog.regprocedure::pg_catalog.oid, NULL),
	('owner', 'function', '@extschema@.es_ddl_guard()'::pg_catalog.regprocedure::pg_catalog.oid, NULL),
	('owner', 'function', '@extschema@.es_projections_changed()'::pg_catalog.regprocedure::pg_catalog.oid, NULL),
	('owner', 'function', '@extschema@.es_dispatch_inline()'::pg_catalog.regprocedure::pg_catalog.oid, NULL),
	('owner', 'function', '@extschema@.es_projection_sql_drop()'::pg_catalog.regprocedure::pg_catalog.oid, NULL),
	('owner', 'function', '@extschema@.es_projection_checkpoints_restore()'::pg_catalog.regprocedure::pg_catalog.oid, NULL),
	('owner', 'function', '@extschema@.es_privileges_apply(text, regrole, boolean)'::pg_catalog.regprocedure::pg_catalog.oid, NULL),
	('owner', 'function', '@extschema@.es_grant_reader(regrole)'::pg_catalog.regprocedure::pg_catalog.oid, NULL),
	('owner', 'function', '@extschema@.es_grant_appender(regrole)'::pg_catalog.regprocedure::pg_catalog.oid, NULL),
	('owner', 'function', '@extschema@.es_grant_admin(regrole)'::pg_catalog.regprocedure::pg_catalog.oid, NULL),
	('owner', 'function', '@extschema@.es_revoke_reader(regrole)'::pg_catalog.regprocedure::pg_catalog.oid, NULL),
	('owner', 'function', '@extschema@.es_revoke_appender(regrole)'::pg_catalog.regprocedure::pg_catalog.oid, NULL),
	('owner', 'function', '@extschema@.es_revoke_admin(regrole)'::pg_catalog.regprocedure::pg_catalog.oid, NULL)
	) AS m(kind, object_type, object, privilege);
COMMENT ON VIEW @extschema@.es_privilege_model IS
	'what es_grant_reader, es_grant_appender and es_grant_admin grant (kind owner: nobody)';
GRANT SELECT ON @extschema@.es_privilege_model TO PUBLIC;


/*
 * ---- Projection workers (issue 12, the workers' half) ----
 * es_projection_worker() says whether a worker applies the database's
 * async projections and why not; es_projection_status shows it (state
 * 'no worker', columns worker_state and worker_reason);
 * es_create_projection_if_not_exists is the idempotent form for
 * migrations.  The privilege model is made again with the new functions.
 */
DROP VIEW @extschema@.es_privilege_model;
DROP VIEW @extschema@.es_projection_status;

/* whether a worker applies this database's async projections, and if not why */
CREATE FUNCTION @extschema@.es_projection_worker(OUT state text,
		OUT pid integer, OUT reason text)
	RETURNS record
	AS 'MODULE_PATHNAME', 'es_projection_worker'
	LANGUAGE C VOLATILE;
COMMENT ON FUNCTION @extschema@.es_projection_worker() IS
	'the state of this database''s projection worker (running, starting, waiting, requested, away, failed, disabled, not running, not needed), its pid, and why none runs';

/* the idempotent form, for migrations */
CREATE FUNCTION @extschema@.es_create_projection_if_not_exists(name text,
		handler regprocedure, event_types text[] DEFAULT NULL,
		mode text DEFAULT 'inline', reset regprocedure DEFAULT NULL,
		from_beginning boolean DEFAULT true)
	RETURNS boolean
	AS 'MODULE_PATHNAME', 'es_create_projection_if_not_exists'
	LANGUAGE C VOLATILE;
COMMENT ON FUNCTION @extschema@.es_create_projection_if_not_exists(text, regprocedure, text[], text, regprocedure, boolean) IS
	'register a projection unless one of that name and definition exists (then a notice and false); another definition is an error';
REVOKE ALL ON FUNCTION @extschema@.es_create_projection_if_not_exists(text, regprocedure, text[], text, regprocedure, boolean) FROM PUBLIC;

/* where each projection stands, and for async ones their worker */
CREATE VIEW @extschema@.es_projection_status AS
	SELECT p.name,
		   p.mode,
		   CASE
			   WHEN r.name IS NOT NULL THEN 'rebuilding'
			   WHEN c.parked THEN 'parked'
			   WHEN p.mode OPERATOR(pg_catalog.=) 'inline' THEN 'running'
			   WHEN w.state OPERATOR(pg_catalog.=) ANY (ARRAY['failed', 'disabled'])
				 OR (w.state OPERATOR(pg_catalog.=) 'not running'
					 AND c.position OPERATOR(pg_catalog.<) h.position)
				THEN 'no worker'
			   WHEN c.position OPERATOR(pg_catalog.>=) h.position THEN 'running'
			   ELSE 'catching up'
		   END AS state,
		   CASE WHEN p.mode OPERATOR(pg_catalog.=) 'inline'
				THEN h.position ELSE c.position END AS position,
		   h.position AS head_position,
		   CASE WHEN p.mode OPERATOR(pg_catalog.=) 'inline' THEN 0::bigint
				ELSE GREATEST(h.position OPERATOR(pg_catalog.-) c.position, 0)
		   END AS lag_events,
		   CASE WHEN p.mode OPERATOR(pg_catalog.=) 'inline'
				  OR c.position OPERATOR(pg_catalog.>=) h.position
				THEN '0'::interval
				ELSE GREATEST(pg_catalog.clock_timestamp() OPERATOR(pg_catalog.-)
					(SELECT e.recorded_at FROM @extschema@.es_events e
					  WHERE e.global_position OPERATOR(pg_catalog.>) c.position
					  ORDER BY e.global_position LIMIT 1), '0'::interval)
		   END AS lag_time,
		   CASE WHEN pg_catalog.has_table_privilege(
						'@extschema@.es_events'::pg_catalog.regclass, 'SELECT')
				THEN c.error_message END AS last_error,
		   c.error_sqlstate,
		   c.error_position,
		   c.error_at,
		   c.retries,
		   c.updated_at,
		   r.events_done AS rebuild_done,
		   r.events_total AS rebuild_total,
		   p.event_types,
		   p.handler,
		   p.owner,
		   CASE WHEN p.mode OPERATOR(pg_catalog.=) 'async' THEN w.state END
			 AS worker_state,
		   CASE WHEN p.mode OPERATOR(pg_catalog.=) 'async' THEN w.reason END
			 AS worker_reason
	  FROM @extschema@.es_projections p
	  JOIN @extschema@.es_projection_checkpoints c
		ON c.name OPERATOR(pg_catalog.=) p.name
	 CROSS JOIN (SELECT COALESCE((SELECT e.global_position
									FROM @extschema@.es_events e
								   ORDER BY e.global_position DESC LIMIT 1), 0)
						AS position) h
	  LEFT JOIN @extschema@.es_projection_progress() r
		ON r.name OPERATOR(pg_catalog.=) p.name
	 CROSS JOIN @extschema@.es_projection_worker() w;
GRANT SELECT ON @extschema@.es_projection_status TO PUBLIC;
COMMENT ON VIEW @extschema@.es_projection_status IS
	'per projection: mode, state, position reached, head, lag in events and time, last error (to roles that may read events), and for async ones the worker''s state and why there is none';

CREATE VIEW @extschema@.es_privilege_model AS
SELECT m.kind, m.object_type, m.object,
	   CASE m.object_type
		   WHEN 'function' THEN m.object::pg_catalog.regprocedure::pg_catalog.text
		   WHEN 'schema' THEN m.object::pg_catalog.regnamespace::pg_catalog.text
		   ELSE m.object::pg_catalog.regclass::pg_catalog.text
	   END AS object_name,
	   m.privilege
  FROM (VALUES
	-- reader
	('reader', 'schema', '@extschema@'::pg_catalog.regnamespace::pg_catalog.oid, 'USAGE'),
	('reader', 'table', '@extschema@.es_events'::pg_catalog.regclass::pg_catalog.oid, 'SELECT'),
	('reader', 'view', '@extschema@.es_streams'::pg_catalog.regclass::pg_catalog.oid, 'SELECT'),
	('reader', 'function', '@extschema@.es_read_stream(text, bigint, bigint)'::pg_catalog.regprocedure::pg_catalog.oid, 'EXECUTE'),
	('reader', 'function', '@extschema@.es_read_stream_backward(text, bigint, bigint)'::pg_catalog.regprocedure::pg_catalog.oid, 'EXECUTE'),
	('reader', 'function', '@extschema@.es_stream_version(text)'::pg_catalog.regprocedure::pg_catalog.oid, 'EXECUTE'),
	('reader', 'function', '@extschema@.es_read_all(bigint, bigint)'::pg_catalog.regprocedure::pg_catalog.oid, 'EXECUTE'),
	('reader', 'function', '@extschema@.es_head_position()'::pg_catalog.regprocedure::pg_catalog.oid, 'EXECUTE'),
	('reader', 'function', '@extschema@.es_load_snapshot(text)'::pg_catalog.regprocedure::pg_catalog.oid, 'EXECUTE'),
	('reader', 'function', '@extschema@.es_load_snapshot(text, regprocedure)'::pg_catalog.regprocedure::pg_catalog.oid, 'EXECUTE'),
	('reader', 'function', '@extschema@.es_aggregate(text, regprocedure, jsonb, bigint, timestamptz)'::pg_catalog.regprocedure::pg_catalog.oid, 'EXECUTE'),
	('reader', 'function', '@extschema@.es_wait_for_projection(text, bigint, interval)'::pg_catalog.regprocedure::pg_catalog.oid, 'EXECUTE'),
	('reader', 'function', '@extschema@.es_projection_progress()'::pg_catalog.regprocedure::pg_catalog.oid, 'EXECUTE'),
	('reader', 'function', '@extschema@.es_projection_worker()'::pg_catalog.regprocedure::pg_catalog.oid, 'EXECUTE'),
	('reader', 'view', '@extschema@.es_projection_status'::pg_catalog.regclass::pg_catalog.oid, 'SELECT'),
	-- the check of direct inserts: callable by anyone, it only reads this session's state
	('reader', 'function', '@extschema@.es_events_insert_check(bigint)'::pg_catalog.regprocedure::pg_catalog.oid, 'EXECUTE'),
	-- appender
	('appender', 'function', '@extschema@.es_append(text, text, jsonb, bigint, jsonb, uuid)'::pg_catalog.regprocedure::pg_catalog.oid, 'EXECUTE'),
	('appender', 'function', '@extschema@.es_append_batch(text, jsonb, bigint)'::pg_catalog.regprocedure::pg_catalog.oid, 'EXECUTE'),
	('appender', 'function', '@extschema@.es_save_snapshot(text, bigint, jsonb, regprocedure)'::pg_catalog.regprocedure::pg_catalog.oid, 'EXECUTE'),
	-- admin: snapshot policies and invalidation, the tables behind them
	('admin', 'function', '@extschema@.es_set_snapshot_policy(regprocedure, integer)'::pg_catalog.regprocedure::pg_catalog.oid, 'EXECUTE'),
	('admin', 'function', '@extschema@.es_drop_snapshot_policy(regprocedure)'::pg_catalog.regprocedure::pg_catalog.oid, 'EXECUTE'),
	('admin', 'function', '@extschema@.es_drop_snapshots(regprocedure, text)'::pg_catalog.regprocedure::pg_catalog.oid, 'EXECUTE'),
	('admin', 'table', '@extschema@.es_snapshots'::pg_catalog.regclass::pg_catalog.oid, 'SELECT'),
	('admin', 'table', '@extschema@.es_snapshot_policies'::pg_catalog.regclass::pg_catalog.oid, 'SELECT'),
	-- admin: projections
	('admin', 'function', '@extschema@.es_create_projection(text, regprocedure, text[], text, regprocedure, boolean)'::pg_catalog.regprocedure::pg_catalog.oid, 'EXECUTE'),
	('admin', 'function', '@extschema@.es_create_projection_if_not_exists(text, regprocedure, text[], text, regprocedure, boolean)'::pg_catalog.regprocedure::pg_catalog.oid, 'EXECUTE'),
	('admin', 'function', '@extschema@.es_drop_projection(text)'::pg_catalog.regprocedure::pg_catalog.oid, 'EXECUTE'),
	('admin', 'function', '@extschema@.es_rebuild_projection(text)'::pg_catalog.regprocedure::pg_catalog.oid, 'EXECUTE'),
	('admin', 'function', '@extschema@.es_apply_projections(text, bigint)'::pg_catalog.regprocedure::pg_catalog.oid, 'EXECUTE'),
	('admin', 'function', '@extschema@.es_resume_projection(text)'::pg_catalog.regprocedure::pg_catalog.oid, 'EXECUTE'),
	('admin', 'function', '@extschema@.es_set_projection_timeout(text, interval)'::pg_catalog.regprocedure::pg_catalog.oid, 'EXECUTE'),
	('admin', 'function', '@extschema@.es_start_projection_worker()'::pg_catalog.regprocedure::pg_catalog.oid, 'EXECUTE'),
	('admin', 'table', '@extschema@.es_projections'::pg_catalog.regclass::pg_catalog.oid, 'SELECT'),
	('admin', 'table', '@extschema@.es_projection_checkpoints'::pg_catalog.regclass::pg_catalog.oid, 'SELECT'),
	-- owner only
	('owner', 'sequence', '@extschema@.es_events_position_seq'::pg_catalog.regclass::pg_catalog.oid, NULL),
	('owner', 'function', '@extschema@.es_events_append_only()'::pg_catalog.regprocedure::pg_catalog.oid, NULL),
	('owner', 'function', '@extschema@.es_events_insert_guard()'::pg_catalog.regprocedure::pg_catalog.oid, NULL),
	('owner', 'function', '@extschema@.es_ddl_guard()'::pg_catalog.regprocedure::pg_catalog.oid, NULL),
	('owner', 'function', '@extschema@.es_projections_changed()'::pg_catalog.regprocedure::pg_catalog.oid, NULL),
	('owner', 'function', '@extschema@.es_dispatch_inline()'::pg_catalog.regprocedure::pg_catalog.oid, NULL),
	('owner', 'function', '@extschema@.es_projection_sql_drop()'::pg_catalog.regprocedure::pg_catalog.oid, NULL),
	('owner', 'function', '@extschema@.es_projection_checkpoints_restore()'::pg_catalog.regprocedure::pg_catalog.oid, NULL),
	('owner', 'function', '@extschema@.es_privileges_apply(text, regrole, boolean)'::pg_catalog.regprocedure::pg_catalog.oid, NULL),
	('owner', 'function', '@extschema@.es_grant_reader(regrole)'::pg_catalog.regprocedure::pg_catalog.oid, NULL),
	('owner', 'function', '@extschema@.es_grant_appender(regrole)'::pg_catalog.regprocedure::pg_catalog.oid, NULL),
	('owner', 'function', '@extschema@.es_grant_admin(regrole)'::pg_catalog.regprocedure::pg_catalog.oid, NULL),
	('owner', 'function', '@extschema@.es_revoke_reader(regrole)'::pg_catalog.regprocedure::pg_catalog.oid, NULL),
	('owner', 'function', '@extschema@.es_revoke_appender(regrole)'::pg_catalog.regprocedure::pg_catalog.oid, NULL),
	('owner', 'function', '@extschema@.es_revoke_admin(regrole)'::pg_catalog.regprocedure::pg_catalog.oid, NULL)
	) AS m(kind, object_type, object, privilege);
COMMENT ON VIEW @extschema@.es_privilege_model IS
	'what es_grant_reader, es_grant_appender and es_grant_admin grant (kind owner: nobody)';
GRANT SELECT ON @extschema@.es_privilege_model TO PUBLIC;
