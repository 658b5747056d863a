
/*
 * 20_projection.sql: projections, the read side (src/projection.c,
 * src/worker.c, docs/projections.md).
 */

/*
 * One row per projection.  Changes to this table reset the per-backend
 * caches of inline projections (es_projections_changed below).  Handler
 * and reset functions are kept as schema-qualified signatures, resolved
 * when the projection is loaded (function OIDs change across pg_upgrade
 * and restores; reg* columns would make pg_upgrade refuse the cluster);
 * es_projection_guard keeps them from being dropped or renamed under it.
 * Rows an extension's install script creates are marked with its name and
 * left out of dumps (the script creates them again on restore).
 */
CREATE TABLE @extschema@.es_projections (
	name		text COLLATE "C" NOT NULL,
	mode		text COLLATE "C" NOT NULL,
	handler		text NOT NULL,
	reset		text,
	event_types text[] COLLATE "C",
	owner		regrole NOT NULL,
	search_path text NOT NULL,
	created_at	timestamptz NOT NULL DEFAULT pg_catalog.now(),
	handler_timeout_ms integer,
	extension	name,
	CONSTRAINT es_projections_pkey PRIMARY KEY (name),
	CONSTRAINT es_projections_mode_check CHECK (mode IN ('inline', 'async')),
	CONSTRAINT es_projections_handler_timeout_ms_check
		CHECK (handler_timeout_ms > 0)
);
SELECT pg_catalog.pg_extension_config_dump('@extschema@.es_projections',
	'WHERE extension IS NULL');
REVOKE ALL ON @extschema@.es_projections FROM PUBLIC;
COMMENT ON TABLE @extschema@.es_projections IS
	'projections: a handler function that turns events into a read model';
COMMENT ON COLUMN @extschema@.es_projections.owner IS
	'the role that created the projection; handlers run with its rights';
COMMENT ON COLUMN @extschema@.es_projections.search_path IS
	'search_path the handlers run with, pinned when the projection was created';
COMMENT ON COLUMN @extschema@.es_projections.handler IS
	'the handler function, as a schema-qualified signature';
COMMENT ON COLUMN @extschema@.es_projections.reset IS
	'the reset function, as a schema-qualified signature; NULL: none';
COMMENT ON COLUMN @extschema@.es_projections.handler_timeout_ms IS
	'how long an async batch of handler calls may run; NULL: es_pg.projection_handler_timeout';
COMMENT ON COLUMN @extschema@.es_projections.extension IS
	'the extension whose install script created the projection; such rows are not dumped';

/*
 * Where each async projection stands is the member row of its subscription
 * (es_subscriptions.projection, 40_subscription.sql): one checkpoint,
 * retry, park and status mechanism for subscriptions and projections.
 * Inline projections are applied in the appending transaction and have
 * no checkpoint.
 */

CREATE FUNCTION @extschema@.es_projections_changed()
	RETURNS trigger
	AS 'MODULE_PATHNAME', 'es_projections_changed'
	LANGUAGE C;
CREATE TRIGGER es_projections_changed
	AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON @extschema@.es_projections
	FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.es_projections_changed();
ALTER TABLE @extschema@.es_projections ENABLE ALWAYS TRIGGER es_projections_changed;

/*
 * Inline projections: one firing per es_append or es_append_batch call.
 * The DDL guard (src/guard.c) keeps this trigger in place.
 */
CREATE FUNCTION @extschema@.es_dispatch_inline()
	RETURNS trigger
	AS 'MODULE_PATHNAME', 'es_dispatch_inline'
	LANGUAGE C;
CREATE TRIGGER es_events_dispatch_inline
	AFTER INSERT ON @extschema@.es_events
	FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.es_dispatch_inline();
ALTER TABLE @extschema@.es_events ENABLE ALWAYS TRIGGER es_events_dispatch_inline;

/* a dropped handler takes its projection along (CASCADE) or is refused */
CREATE FUNCTION @extschema@.es_projection_sql_drop()
	RETURNS event_trigger
	AS 'MODULE_PATHNAME', 'es_projection_sql_drop'
	LANGUAGE C;
CREATE EVENT TRIGGER es_projection_guard ON sql_drop
	WHEN TAG IN ('DROP FUNCTION', 'DROP ROUTINE', 'DROP EXTENSION',
				 'DROP SCHEMA', 'DROP OWNED')
	EXECUTE FUNCTION @extschema@.es_projection_sql_drop();
ALTER EVENT TRIGGER es_projection_guard ENABLE ALWAYS;
/* nor renamed or moved under it */
CREATE EVENT TRIGGER es_projection_guard_rename ON ddl_command_start
	WHEN TAG IN ('ALTER FUNCTION', 'ALTER PROCEDURE', 'ALTER ROUTINE',
				 'ALTER SCHEMA')
	EXECUTE FUNCTION @extschema@.es_projection_sql_drop();
ALTER EVENT TRIGGER es_projection_guard_rename ENABLE ALWAYS;

REVOKE ALL ON FUNCTION @extschema@.es_projections_changed() FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.es_dispatch_inline() FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.es_projection_sql_drop() FROM PUBLIC;

/* administration */
CREATE FUNCTION @extschema@.es_create_projection(name text,
		handler regprocedure, event_types text[] DEFAULT NULL,
		mode text DEFAULT 'inline', reset regprocedure DEFAULT NULL,
		from_beginning boolean DEFAULT true)
	RETURNS void
	AS 'MODULE_PATHNAME', 'es_create_projection'
	LANGUAGE C VOLATILE;
COMMENT ON FUNCTION @extschema@.es_create_projection(text, regprocedure, text[], text, regprocedure, boolean) IS
	'register a projection: handler(es_events) called for each event, inline or async';

CREATE FUNCTION @extschema@.es_drop_projection(name text)
	RETURNS void
	AS 'MODULE_PATHNAME', 'es_drop_projection'
	LANGUAGE C VOLATILE;
COMMENT ON FUNCTION @extschema@.es_drop_projection(text) IS
	'unregister a projection; its read-model tables are left alone';

CREATE FUNCTION @extschema@.es_rebuild_projection(name text)
	RETURNS bigint
	AS 'MODULE_PATHNAME', 'es_rebuild_projection'
	LANGUAGE C VOLATILE;
COMMENT ON FUNCTION @extschema@.es_rebuild_projection(text) IS
	'empty a read model with its reset function and replay every event; returns the handler calls';

CREATE FUNCTION @extschema@.es_apply_projections(name text DEFAULT NULL,
		max_events bigint DEFAULT NULL)
	RETURNS bigint
	AS 'MODULE_PATHNAME', 'es_apply_projections'
	LANGUAGE C VOLATILE;
COMMENT ON FUNCTION @extschema@.es_apply_projections(text, bigint) IS
	'apply pending events to one async projection, or all (NULL); returns the handler calls';

CREATE FUNCTION @extschema@.es_resume_projection(name text)
	RETURNS void
	AS 'MODULE_PATHNAME', 'es_resume_projection'
	LANGUAGE C VOLATILE;
COMMENT ON FUNCTION @extschema@.es_resume_projection(text) IS
	'deliver the events an async projection parked to its handler again (es_replay_parked of its subscription)';

CREATE FUNCTION @extschema@.es_set_projection_timeout(name text,
		timeout interval)
	RETURNS void
	AS 'MODULE_PATHNAME', 'es_set_projection_timeout'
	LANGUAGE C VOLATILE;
COMMENT ON FUNCTION @extschema@.es_set_projection_timeout(text, interval) IS
	'how long one async batch of the projection''s handler calls may run (NULL: es_pg.projection_handler_timeout)';

CREATE FUNCTION @extschema@.es_start_projection_worker()
	RETURNS boolean
	AS 'MODULE_PATHNAME', 'es_start_projection_worker'
	LANGUAGE C VOLATILE;
COMMENT ON FUNCTION @extschema@.es_start_projection_worker() IS
	'make sure a background worker applies this database''s async projections';

REVOKE ALL ON FUNCTION @extschema@.es_create_projection(text, regprocedure, text[], text, regprocedure, boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.es_drop_projection(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.es_rebuild_projection(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.es_apply_projections(text, bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.es_resume_projection(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.es_set_projection_timeout(text, interval) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.es_start_projection_worker() FROM PUBLIC;

/* reading where projections stand: open to every role */
CREATE FUNCTION @extschema@.es_wait_for_projection(name text,
		"position" bigint, timeout interval)
	RETURNS boolean
	AS 'MODULE_PATHNAME', 'es_wait_for_projection'
	LANGUAGE C VOLATILE;
COMMENT ON FUNCTION @extschema@.es_wait_for_projection(text, bigint, interval) IS
	'wait until a projection has applied a global position; false on timeout';

CREATE FUNCTION @extschema@.es_projection_progress(OUT name text,
		OUT pid integer, OUT events_done bigint, OUT events_total bigint,
		OUT started_at timestamptz)
	RETURNS SETOF record
	AS 'MODULE_PATHNAME', 'es_projection_progress'
	LANGUAGE C VOLATILE ROWS 4;
COMMENT ON FUNCTION @extschema@.es_projection_progress() IS
	'rebuilds running in this database and how far they are';
