
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
