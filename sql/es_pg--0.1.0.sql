/*
 * es_pg install script, assembled from the files in sql/src, in name order.
 * 00_core.sql: the event store, appends and reads.
 */
\echo Use "CREATE EXTENSION es_pg" to load this file. \quit

/*
 * Global positions.  CACHE 1 (the default) matters: positions must be handed
 * out in increasing order across backends, see src/lock.c.
 */
CREATE SEQUENCE @extschema@.es_events_position_seq AS bigint CACHE 1 NO CYCLE;

CREATE TABLE @extschema@.es_events (
	global_position bigint NOT NULL
		DEFAULT pg_catalog.nextval('@extschema@.es_events_position_seq'::pg_catalog.regclass),
	stream_id	text COLLATE "C" NOT NULL,
	version		bigint NOT NULL,
	event_id	uuid NOT NULL DEFAULT pg_catalog.gen_random_uuid(),
	event_type	text COLLATE "C" NOT NULL,
	data		jsonb NOT NULL,
	metadata	jsonb,
	recorded_at timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
	CONSTRAINT es_events_pkey PRIMARY KEY (global_position),
	CONSTRAINT es_events_stream_id_version_key UNIQUE (stream_id, version),
	CONSTRAINT es_events_event_id_key UNIQUE (event_id),
	CONSTRAINT es_events_version_check CHECK (version > 0)
);
ALTER SEQUENCE @extschema@.es_events_position_seq
	OWNED BY @extschema@.es_events.global_position;
SELECT pg_catalog.pg_extension_config_dump('@extschema@.es_events', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.es_events_position_seq', '');
REVOKE ALL ON @extschema@.es_events FROM PUBLIC;
REVOKE ALL ON SEQUENCE @extschema@.es_events_position_seq FROM PUBLIC;

COMMENT ON TABLE @extschema@.es_events IS
	'the event store: one row per event, append-only';
COMMENT ON COLUMN @extschema@.es_events.global_position IS
	'position in the global feed, unique and increasing in append order';
COMMENT ON COLUMN @extschema@.es_events.stream_id IS
	'the stream (aggregate) the event belongs to';
COMMENT ON COLUMN @extschema@.es_events.version IS
	'1, 2, 3... within the stream, without gaps';
COMMENT ON COLUMN @extschema@.es_events.event_id IS
	'unique id of the event; a retried append resends the same ids';
COMMENT ON COLUMN @extschema@.es_events.recorded_at IS
	'when es_append wrote the event (one value per call)';

/* history is never rewritten: see src/guard.c */
CREATE FUNCTION @extschema@.es_events_append_only()
	RETURNS trigger
	AS 'MODULE_PATHNAME', 'es_events_append_only'
	LANGUAGE C;
CREATE TRIGGER es_events_append_only
	BEFORE UPDATE OR DELETE OR TRUNCATE ON @extschema@.es_events
	FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.es_events_append_only();
ALTER TABLE @extschema@.es_events ENABLE ALWAYS TRIGGER es_events_append_only;

CREATE FUNCTION @extschema@.es_events_insert_guard()
	RETURNS trigger
	AS 'MODULE_PATHNAME', 'es_events_insert_guard'
	LANGUAGE C;
CREATE TRIGGER es_events_insert_guard
	BEFORE INSERT ON @extschema@.es_events
	FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.es_events_insert_guard();
ALTER TABLE @extschema@.es_events ENABLE ALWAYS TRIGGER es_events_insert_guard;

CREATE FUNCTION @extschema@.es_ddl_guard()
	RETURNS event_trigger
	AS 'MODULE_PATHNAME', 'es_ddl_guard'
	LANGUAGE C;
CREATE EVENT TRIGGER es_guard_ddl ON ddl_command_end
	WHEN TAG IN ('ALTER TABLE', 'DROP TRIGGER', 'ALTER TRIGGER', 'CREATE RULE',
				 'DROP INDEX')
	EXECUTE FUNCTION @extschema@.es_ddl_guard();
CREATE EVENT TRIGGER es_guard_drop ON ddl_command_start
	WHEN TAG IN ('DROP EXTENSION', 'DROP SCHEMA')
	EXECUTE FUNCTION @extschema@.es_ddl_guard();
ALTER EVENT TRIGGER es_guard_ddl ENABLE ALWAYS;
ALTER EVENT TRIGGER es_guard_drop ENABLE ALWAYS;

REVOKE ALL ON FUNCTION @extschema@.es_events_append_only() FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.es_events_insert_guard() FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.es_ddl_guard() FROM PUBLIC;

/* appends */
CREATE FUNCTION @extschema@.es_append(stream_id text, event_type text,
		data jsonb, expected_version bigint DEFAULT NULL,
		metadata jsonb DEFAULT NULL, event_id uuid DEFAULT NULL)
	RETURNS bigint
	AS 'MODULE_PATHNAME', 'es_append'
	LANGUAGE C VOLATILE;
COMMENT ON FUNCTION @extschema@.es_append(text, text, jsonb, bigint, jsonb, uuid) IS
	'append one event to a stream with an expected-version check; returns the new version';

CREATE FUNCTION @extschema@.es_append_batch(stream_id text, events jsonb,
		expected_version bigint DEFAULT NULL)
	RETURNS bigint
	AS 'MODULE_PATHNAME', 'es_append_batch'
	LANGUAGE C VOLATILE;
COMMENT ON FUNCTION @extschema@.es_append_batch(text, jsonb, bigint) IS
	'append a JSON array of events to a stream atomically; returns the new version';

REVOKE ALL ON FUNCTION @extschema@.es_append(text, text, jsonb, bigint, jsonb, uuid) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.es_append_batch(text, jsonb, bigint) FROM PUBLIC;

/* reads: they check SELECT on es_events themselves */
CREATE FUNCTION @extschema@.es_read_stream(stream_id text,
		from_version bigint DEFAULT 0, max_count bigint DEFAULT NULL)
	RETURNS SETOF @extschema@.es_events
	AS 'MODULE_PATHNAME', 'es_read_stream'
	LANGUAGE C STABLE ROWS 100;
COMMENT ON FUNCTION @extschema@.es_read_stream(text, bigint, bigint) IS
	'events of a stream after from_version, oldest first';

CREATE FUNCTION @extschema@.es_read_stream_backward(stream_id text,
		before_version bigint DEFAULT NULL, max_count bigint DEFAULT NULL)
	RETURNS SETOF @extschema@.es_events
	AS 'MODULE_PATHNAME', 'es_read_stream_backward'
	LANGUAGE C STABLE ROWS 100;
COMMENT ON FUNCTION @extschema@.es_read_stream_backward(text, bigint, bigint) IS
	'events of a stream before before_version, newest first';

CREATE FUNCTION @extschema@.es_stream_version(stream_id text)
	RETURNS bigint
	AS 'MODULE_PATHNAME', 'es_stream_version'
	LANGUAGE C STABLE;
COMMENT ON FUNCTION @extschema@.es_stream_version(text) IS
	'current version of a stream, 0 when it does not exist';

CREATE FUNCTION @extschema@.es_read_all(from_position bigint DEFAULT 0,
		max_count bigint DEFAULT 1000)
	RETURNS SETOF @extschema@.es_events
	AS 'MODULE_PATHNAME', 'es_read_all'
	LANGUAGE C VOLATILE ROWS 1000;
COMMENT ON FUNCTION @extschema@.es_read_all(bigint, bigint) IS
	'the global feed after from_position; never skips an event that commits late';

CREATE FUNCTION @extschema@.es_head_position()
	RETURNS bigint
	AS 'MODULE_PATHNAME', 'es_head_position'
	LANGUAGE C STABLE;
COMMENT ON FUNCTION @extschema@.es_head_position() IS
	'highest committed global position, 0 when there are no events';

CREATE VIEW @extschema@.es_streams AS
	SELECT e.stream_id,
		   pg_catalog.max(e.version) AS version,
		   pg_catalog.count(*) AS events,
		   pg_catalog.min(e.recorded_at) AS created_at,
		   pg_catalog.max(e.recorded_at) AS updated_at,
		   pg_catalog.max(e.global_position) AS last_position
	  FROM @extschema@.es_events e
	 GROUP BY e.stream_id;
COMMENT ON VIEW @extschema@.es_streams IS
	'one row per stream: version, event count, first and last event time';

/*
 * 10_snapshot.sql: snapshots, aggregate state and temporal queries.
 * See docs/snapshots.md and src/snapshot.c.
 */

/*
 * One row per snapshot.  reducer is the schema-qualified name of the
 * function whose fold produced the state ('' for snapshots the application
 * saved without naming one); a reducer's signature is fixed, (jsonb,
 * es_events) -> jsonb, so its name identifies it.  The key answers "the
 * newest snapshot of this reducer at or before version V" with one backward
 * index probe.  reducer_digest fingerprints the reducer's code and the
 * initial state of the fold that made the snapshot; es_aggregate ignores a
 * snapshot whose digest no longer matches.
 */
CREATE TABLE @extschema@.es_snapshots (
	stream_id	text COLLATE "C" NOT NULL,
	reducer		text COLLATE "C" NOT NULL DEFAULT '',
	version		bigint NOT NULL,
	state		jsonb NOT NULL,
	created_at	timestamptz NOT NULL DEFAULT pg_catalog.now(),
	reducer_digest text COLLATE "C",
	CONSTRAINT es_snapshots_pkey PRIMARY KEY (stream_id, reducer, version),
	CONSTRAINT es_snapshots_version_check CHECK (version > 0)
);
/* es_load_snapshot(stream_id): the newest snapshot whatever its reducer */
CREATE INDEX es_snapshots_stream_id_version_idx
	ON @extschema@.es_snapshots (stream_id, version);
SELECT pg_catalog.pg_extension_config_dump('@extschema@.es_snapshots', '');
REVOKE ALL ON @extschema@.es_snapshots FROM PUBLIC;

COMMENT ON TABLE @extschema@.es_snapshots IS
	'cached aggregate state of a stream at a version';
COMMENT ON COLUMN @extschema@.es_snapshots.reducer IS
	'schema-qualified name of the reducer that produced the state, '''' for application snapshots';
COMMENT ON COLUMN @extschema@.es_snapshots.version IS
	'the stream version the state includes';
COMMENT ON COLUMN @extschema@.es_snapshots.reducer_digest IS
	'SHA-256 of the reducer''s code and initial state (es_aggregate snapshots), NULL when saved with es_save_snapshot';

/* snapshot policies: es_aggregate stores a snapshot every N replayed events */
CREATE TABLE @extschema@.es_snapshot_policies (
	reducer		text COLLATE "C" NOT NULL,
	every_n_events integer NOT NULL,
	updated_at	timestamptz NOT NULL DEFAULT pg_catalog.now(),
	CONSTRAINT es_snapshot_policies_pkey PRIMARY KEY (reducer),
	CONSTRAINT es_snapshot_policies_every_n_events_check CHECK (every_n_events > 0)
);
SELECT pg_catalog.pg_extension_config_dump('@extschema@.es_snapshot_policies', '');
REVOKE ALL ON @extschema@.es_snapshot_policies FROM PUBLIC;

COMMENT ON TABLE @extschema@.es_snapshot_policies IS
	'reducers whose folds es_aggregate snapshots when it replays more than every_n_events events';
COMMENT ON COLUMN @extschema@.es_snapshot_policies.reducer IS
	'schema-qualified name of the reducer, as in es_snapshots.reducer';

CREATE FUNCTION @extschema@.es_save_snapshot(stream_id text, version bigint,
		state jsonb, reducer regprocedure DEFAULT NULL)
	RETURNS void
	AS 'MODULE_PATHNAME', 'es_save_snapshot'
	LANGUAGE C VOLATILE;
COMMENT ON FUNCTION @extschema@.es_save_snapshot(text, bigint, jsonb, regprocedure) IS
	'store (or replace) the state of a stream at a version';

CREATE FUNCTION @extschema@.es_load_snapshot(stream_id text)
	RETURNS TABLE (version bigint, state jsonb, created_at timestamptz)
	AS 'MODULE_PATHNAME', 'es_load_snapshot'
	LANGUAGE C STABLE ROWS 1;
COMMENT ON FUNCTION @extschema@.es_load_snapshot(text) IS
	'the newest snapshot of a stream, whatever reducer made it; no row when there is none';

CREATE FUNCTION @extschema@.es_load_snapshot(stream_id text, reducer regprocedure)
	RETURNS TABLE (version bigint, state jsonb, created_at timestamptz)
	AS 'MODULE_PATHNAME', 'es_load_snapshot_reducer'
	LANGUAGE C STABLE ROWS 1;
COMMENT ON FUNCTION @extschema@.es_load_snapshot(text, regprocedure) IS
	'the newest snapshot of a stream made by one reducer (NULL: by the application)';

CREATE FUNCTION @extschema@.es_aggregate(stream_id text, reducer regprocedure,
		initial jsonb DEFAULT '{}', as_of_version bigint DEFAULT NULL,
		as_of_time timestamptz DEFAULT NULL)
	RETURNS jsonb
	AS 'MODULE_PATHNAME', 'es_aggregate'
	LANGUAGE C VOLATILE;
COMMENT ON FUNCTION @extschema@.es_aggregate(text, regprocedure, jsonb, bigint, timestamptz) IS
	'fold a stream through reducer(state jsonb, event es_events), from the newest usable snapshot; optionally as of a version or time';

CREATE FUNCTION @extschema@.es_set_snapshot_policy(reducer regprocedure,
		every_n_events integer)
	RETURNS void
	AS 'MODULE_PATHNAME', 'es_set_snapshot_policy'
	LANGUAGE C VOLATILE;
COMMENT ON FUNCTION @extschema@.es_set_snapshot_policy(regprocedure, integer) IS
	'make es_aggregate store a snapshot when it replays more than every_n_events events of the reducer';

CREATE FUNCTION @extschema@.es_drop_snapshot_policy(reducer regprocedure)
	RETURNS boolean
	AS 'MODULE_PATHNAME', 'es_drop_snapshot_policy'
	LANGUAGE C VOLATILE;
COMMENT ON FUNCTION @extschema@.es_drop_snapshot_policy(regprocedure) IS
	'remove the snapshot policy of a reducer; false when it had none';

CREATE FUNCTION @extschema@.es_drop_snapshots(reducer regprocedure,
		stream_id text DEFAULT NULL)
	RETURNS bigint
	AS 'MODULE_PATHNAME', 'es_drop_snapshots'
	LANGUAGE C VOLATILE;
COMMENT ON FUNCTION @extschema@.es_drop_snapshots(regprocedure, text) IS
	'delete the snapshots of a reducer (NULL: application snapshots), of one stream or all; returns the count';

/*
 * es_load_snapshot and es_aggregate check SELECT on es_events themselves,
 * like the stream readers.  Writing snapshots and policies is for the
 * roles an administrator grants it to.
 */
REVOKE ALL ON FUNCTION @extschema@.es_save_snapshot(text, bigint, jsonb, regprocedure) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.es_set_snapshot_policy(regprocedure, integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.es_drop_snapshot_policy(regprocedure) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.es_drop_snapshots(regprocedure, text) FROM PUBLIC;

/*
 * 20_projection.sql: projections, the read side (src/projection.c,
 * src/worker.c, docs/projections.md).
 */

/*
 * One row per projection.  Changes to this table reset the per-backend
 * caches of inline projections (es_projections_changed below).
 */
CREATE TABLE @extschema@.es_projections (
	name		text COLLATE "C" NOT NULL,
	mode		text COLLATE "C" NOT NULL,
	handler		regprocedure NOT NULL,
	reset		regprocedure,
	event_types text[] COLLATE "C",
	owner		regrole NOT NULL,
	search_path text NOT NULL,
	created_at	timestamptz NOT NULL DEFAULT pg_catalog.now(),
	CONSTRAINT es_projections_pkey PRIMARY KEY (name),
	CONSTRAINT es_projections_mode_check CHECK (mode IN ('inline', 'async'))
);
SELECT pg_catalog.pg_extension_config_dump('@extschema@.es_projections', '');
REVOKE ALL ON @extschema@.es_projections FROM PUBLIC;
COMMENT ON TABLE @extschema@.es_projections IS
	'projections: a handler function that turns events into a read model';
COMMENT ON COLUMN @extschema@.es_projections.owner IS
	'the role that created the projection; handlers run with its rights';
COMMENT ON COLUMN @extschema@.es_projections.search_path IS
	'search_path the handlers run with, pinned when the projection was created';

/*
 * Where each projection stands.  Async projections update their row in the
 * same transaction as their read model: that is what makes the effect of
 * each event exactly-once.
 */
CREATE TABLE @extschema@.es_projection_checkpoints (
	name		text COLLATE "C" NOT NULL,
	position	bigint NOT NULL,
	updated_at	timestamptz NOT NULL,
	parked		boolean NOT NULL DEFAULT false,
	retries		integer NOT NULL DEFAULT 0,
	error_position bigint,
	error_sqlstate text,
	error_message text,
	error_at	timestamptz,
	CONSTRAINT es_projection_checkpoints_pkey PRIMARY KEY (name)
);
SELECT pg_catalog.pg_extension_config_dump('@extschema@.es_projection_checkpoints', '');
REVOKE ALL ON @extschema@.es_projection_checkpoints FROM PUBLIC;
COMMENT ON TABLE @extschema@.es_projection_checkpoints IS
	'last global position each projection applied, and its last error';

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
	'let a parked async projection retry the event it failed on';

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
		   c.error_message AS last_error,
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
	'per projection: mode, state, position reached, head, lag in events and time, last error';
/*
 * 90_privileges.sql: the privilege model (docs/privileges.md).
 *
 * Three kinds of application roles:
 *
 *	reader		reads events, streams, the global feed, snapshots and
 *				aggregate state (es_aggregate)
 *	appender	what a reader may do; appends events and saves snapshots
 *	admin		what a reader may do; administers snapshot policies,
 *				invalidates snapshots, creates, drops, rebuilds, applies
 *				and resumes projections, reads the snapshot and projection
 *				tables
 *
 * Nobody gets INSERT, UPDATE, DELETE or TRUNCATE on es_events: events are
 * written by es_append and es_append_batch only, and never changed (see
 * src/guard.c).  Objects of kind "owner" are for the extension's owner (and
 * superusers) only; the grant functions never hand them out.
 *
 * es_privilege_model is the ONE list of what each kind gets.  It names every
 * object of the extension, so that test/sql/privileges.sql fails when a new
 * function is added without saying who may call it.  The objects are
 * regclass/regprocedure constants: a misspelt name fails at CREATE EXTENSION,
 * and the view depends on what it names.
 */

/*
 * es_privileges_apply grants the privileges of a kind ("reader", "appender"
 * or "admin") to a role, or revokes them.  Granting "appender" or "admin"
 * grants "reader" too.  Revoking "appender" or "admin" takes away what the
 * kind adds to reading; revoking "reader" takes away everything the model
 * grants.  It runs with the caller's rights: only a role that may grant on
 * the extension's objects (their owner, a superuser) can use it.
 */
CREATE FUNCTION @extschema@.es_privileges_apply(kind text, role regrole,
		is_grant boolean)
	RETURNS void
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, pg_temp
	AS $fn$
#variable_conflict use_variable
DECLARE
	r record;
	target text;
	missing text;
	nmissing bigint;
BEGIN
	IF kind IS NULL OR role IS NULL OR is_grant IS NULL THEN
		RAISE EXCEPTION 'role must not be null' USING ERRCODE = '22004';
	END IF;
	IF kind NOT IN ('reader', 'appender', 'admin') THEN
		RAISE EXCEPTION 'unknown privilege kind "%"', kind
			USING ERRCODE = '22023',
				  HINT = 'The kinds are reader, appender and admin.';
	END IF;

	/*
	 * Check first that the caller may grant every privilege of the kind:
	 * GRANT and REVOKE by a role without grant option only warn.
	 */
	SELECT count(*), min(m.privilege || ' on ' || m.object_name)
	  INTO nmissing, missing
	  FROM @extschema@.es_privilege_model m
	 WHERE m.kind OPERATOR(pg_catalog.<>) 'owner'
	   AND NOT CASE m.object_type
		   WHEN 'schema' THEN has_schema_privilege(m.object,
									m.privilege || ' WITH GRANT OPTION')
		   WHEN 'function' THEN has_function_privilege(m.object,
									m.privilege || ' WITH GRANT OPTION')
		   ELSE has_table_privilege(m.object,
									m.privilege || ' WITH GRANT OPTION')
	   END;
	IF nmissing > 0 THEN
		RAISE EXCEPTION 'permission denied to % the privileges of es_pg',
			CASE WHEN is_grant THEN 'grant' ELSE 'revoke' END
			USING ERRCODE = '42501',
				  DETAIL = format('Role %s may not grant %s of the privileges in es_privilege_model, such as %s.',
								  current_user, nmissing, missing),
				  HINT = 'Run it as the owner of the extension or as a superuser.';
	END IF;

	FOR r IN
		SELECT m.object_type, m.object, m.privilege
		  FROM @extschema@.es_privilege_model m
		 WHERE m.kind OPERATOR(pg_catalog.=) kind
			OR (is_grant AND m.kind OPERATOR(pg_catalog.=) 'reader')
			OR (NOT is_grant AND kind OPERATOR(pg_catalog.=) 'reader'
				AND m.kind OPERATOR(pg_catalog.<>) 'owner')
		 ORDER BY m.object_type, m.object_name
	LOOP
		target := CASE r.object_type
			WHEN 'schema' THEN 'SCHEMA ' || r.object::regnamespace::text
			WHEN 'function' THEN 'FUNCTION ' || r.object::regprocedure::text
			ELSE 'TABLE ' || r.object::regclass::text
		END;
		IF is_grant THEN
			EXECUTE format('GRANT %s ON %s TO %s', r.privilege, target, role);
		ELSE
			EXECUTE format('REVOKE %s ON %s FROM %s', r.privilege, target, role);
		END IF;
	END LOOP;
END
$fn$;
COMMENT ON FUNCTION @extschema@.es_privileges_apply(text, regrole, boolean) IS
	'grant or revoke the privileges of one kind of the privilege model';

CREATE FUNCTION @extschema@.es_grant_reader(role regrole) RETURNS void
	LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp
	AS $$SELECT @extschema@.es_privileges_apply('reader', role, true)$$;
CREATE FUNCTION @extschema@.es_grant_appender(role regrole) RETURNS void
	LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp
	AS $$SELECT @extschema@.es_privileges_apply('appender', role, true)$$;
CREATE FUNCTION @extschema@.es_grant_admin(role regrole) RETURNS void
	LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp
	AS $$SELECT @extschema@.es_privileges_apply('admin', role, true)$$;
CREATE FUNCTION @extschema@.es_revoke_reader(role regrole) RETURNS void
	LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp
	AS $$SELECT @extschema@.es_privileges_apply('reader', role, false)$$;
CREATE FUNCTION @extschema@.es_revoke_appender(role regrole) RETURNS void
	LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp
	AS $$SELECT @extschema@.es_privileges_apply('appender', role, false)$$;
CREATE FUNCTION @extschema@.es_revoke_admin(role regrole) RETURNS void
	LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp
	AS $$SELECT @extschema@.es_privileges_apply('admin', role, false)$$;
COMMENT ON FUNCTION @extschema@.es_grant_reader(regrole) IS
	'let a role read events, streams and the global feed';
COMMENT ON FUNCTION @extschema@.es_grant_appender(regrole) IS
	'let a role read and append events';
COMMENT ON FUNCTION @extschema@.es_grant_admin(regrole) IS
	'let a role read events and administer projections and snapshots';
COMMENT ON FUNCTION @extschema@.es_revoke_reader(regrole) IS
	'take back every privilege the model grants';
COMMENT ON FUNCTION @extschema@.es_revoke_appender(regrole) IS
	'take back the right to append (the role can still read)';
COMMENT ON FUNCTION @extschema@.es_revoke_admin(regrole) IS
	'take back projection and snapshot administration (the role can still read)';
REVOKE ALL ON FUNCTION @extschema@.es_privileges_apply(text, regrole, boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.es_grant_reader(regrole) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.es_grant_appender(regrole) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.es_grant_admin(regrole) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.es_revoke_reader(regrole) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.es_revoke_appender(regrole) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.es_revoke_admin(regrole) FROM PUBLIC;

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
