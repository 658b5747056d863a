
/*
 * 25_workers.sql: the workers that apply async projections, and creating a
 * projection from a migration (src/worker.c, src/projadmin.c,
 * docs/projections.md, docs/admin-guide.md).
 */

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
