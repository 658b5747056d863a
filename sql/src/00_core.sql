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

/*
 * Rows that do not come from es_append are checked one by one, however
 * they arrive (INSERT, COPY, logical replication), and per stream when
 * their transaction commits: see src/direct.c.
 */
CREATE FUNCTION @extschema@.es_events_insert_check(global_position bigint)
	RETURNS boolean
	AS 'MODULE_PATHNAME', 'es_events_insert_check'
	LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION @extschema@.es_events_insert_check(bigint) IS
	'the check of es_events_insert_check: rows come from es_append or from an INSERT or COPY that keeps the invariants';

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
	CONSTRAINT es_events_version_check CHECK (version > 0),
	CONSTRAINT es_events_insert_check
		CHECK (@extschema@.es_events_insert_check(global_position))
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
/* rows reached through an inheritance parent or by logical replication */
CREATE TRIGGER es_events_append_only_row
	BEFORE UPDATE OR DELETE ON @extschema@.es_events
	FOR EACH ROW EXECUTE FUNCTION @extschema@.es_events_append_only();
ALTER TABLE @extschema@.es_events ENABLE ALWAYS TRIGGER es_events_append_only_row;

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
/* every DDL command, before it runs and after (src/guard.c) */
CREATE EVENT TRIGGER es_guard_ddl_start ON ddl_command_start
	EXECUTE FUNCTION @extschema@.es_ddl_guard();
CREATE EVENT TRIGGER es_guard_ddl_end ON ddl_command_end
	EXECUTE FUNCTION @extschema@.es_ddl_guard();
ALTER EVENT TRIGGER es_guard_ddl_start ENABLE ALWAYS;
ALTER EVENT TRIGGER es_guard_ddl_end ENABLE ALWAYS;

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

/* with the caller's rights, so that row-level security on es_events applies */
CREATE VIEW @extschema@.es_streams WITH (security_invoker = true) AS
	SELECT e.stream_id,
		   pg_catalog.max(e.version) AS version,
		   pg_catalog.max(e.version) AS events,
		   pg_catalog.min(e.recorded_at) AS created_at,
		   pg_catalog.max(e.recorded_at) AS updated_at,
		   pg_catalog.max(e.global_position) AS last_position
	  FROM @extschema@.es_events e
	 GROUP BY e.stream_id;
COMMENT ON VIEW @extschema@.es_streams IS
	'one row per stream: version, event count, first and last event time';
