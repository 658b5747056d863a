
/*
 * 50_audit.sql: the seal chain (docs/audit.md, src/seal.c, src/verify.c)
 * deleted streams (src/tombstone.c, src/delete.c) and archiving
 * (src/archive.c).
 *
 * Each seal covers the committed events with a position in
 * (after_position, to_position], in position order, and names the hash of
 * the seal before it, so that a change to any sealed event, or to any seal,
 * breaks the chain from there on.  Seals are written by es_seal() only,
 * after commit, never on the append path.
 */
CREATE TABLE @extschema@.es_seals (
	seal_id		bigint NOT NULL,
	format		integer NOT NULL,
	after_position bigint NOT NULL,
	to_position bigint NOT NULL,
	positions	bigint[] NOT NULL,
	digests		bytea NOT NULL,
	prev_hash	bytea NOT NULL,
	hash		bytea NOT NULL,
	sealed_at	timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
	CONSTRAINT es_seals_pkey PRIMARY KEY (seal_id),
	CONSTRAINT es_seals_to_position_key UNIQUE (to_position),
	CONSTRAINT es_seals_seal_id_check CHECK (seal_id > 0),
	CONSTRAINT es_seals_range_check CHECK (after_position >= 0
		AND to_position > after_position),
	CONSTRAINT es_seals_hash_check CHECK (pg_catalog.length(hash) = 32
		AND pg_catalog.length(prev_hash) = 32)
);
SELECT pg_catalog.pg_extension_config_dump('@extschema@.es_seals', '');
REVOKE ALL ON @extschema@.es_seals FROM PUBLIC;
COMMENT ON TABLE @extschema@.es_seals IS
	'the seal chain: each row seals the events in (after_position, to_position] and names the hash of the seal before it';
COMMENT ON COLUMN @extschema@.es_seals.format IS
	'the canonical encoding of the events (docs/audit.md); 1 covers the eight columns of es_events of 0.2.0';
COMMENT ON COLUMN @extschema@.es_seals.positions IS
	'the positions of the sealed events, in order';
COMMENT ON COLUMN @extschema@.es_seals.digests IS
	'the SHA-256 digest of each sealed event''s encoding, 32 bytes each, in the order of positions';
COMMENT ON COLUMN @extschema@.es_seals.hash IS
	'SHA-256 of prev_hash, the seal''s header and its positions and digests (docs/audit.md)';

/* seals are never changed or removed: see src/seal.c */
CREATE FUNCTION @extschema@.es_audit_append_only()
	RETURNS trigger
	AS 'MODULE_PATHNAME', 'es_audit_append_only'
	LANGUAGE C;
CREATE TRIGGER es_seals_append_only
	BEFORE UPDATE OR DELETE OR TRUNCATE ON @extschema@.es_seals
	FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.es_audit_append_only();
ALTER TABLE @extschema@.es_seals ENABLE ALWAYS TRIGGER es_seals_append_only;
CREATE TRIGGER es_seals_append_only_row
	BEFORE UPDATE OR DELETE ON @extschema@.es_seals
	FOR EACH ROW EXECUTE FUNCTION @extschema@.es_audit_append_only();
ALTER TABLE @extschema@.es_seals ENABLE ALWAYS TRIGGER es_seals_append_only_row;
REVOKE ALL ON FUNCTION @extschema@.es_audit_append_only() FROM PUBLIC;

CREATE FUNCTION @extschema@.es_seal(max_events bigint DEFAULT NULL)
	RETURNS bigint
	AS 'MODULE_PATHNAME', 'es_seal'
	LANGUAGE C VOLATILE;
COMMENT ON FUNCTION @extschema@.es_seal(bigint) IS
	'seal the committed events after the last seal, up to the feed''s safe horizon (at most max_events); returns how many it sealed';
REVOKE ALL ON FUNCTION @extschema@.es_seal(bigint) FROM PUBLIC;

CREATE FUNCTION @extschema@.es_verify(from_position bigint DEFAULT 0,
		to_position bigint DEFAULT NULL,
		OUT intact boolean, OUT problem text, OUT "position" bigint,
		OUT expected text, OUT found text, OUT seal_id bigint,
		OUT seals bigint, OUT events bigint, OUT sealed_to bigint,
		OUT archived bigint, OUT archived_ranges int8multirange)
	RETURNS record
	AS 'MODULE_PATHNAME', 'es_verify'
	LANGUAGE C STABLE;
COMMENT ON FUNCTION @extschema@.es_verify(bigint, bigint) IS
	'recompute the seal chain over the seals that cover positions from_position to to_position; the first mismatch, or intact';
REVOKE ALL ON FUNCTION @extschema@.es_verify(bigint, bigint) FROM PUBLIC;

/*
 * Deleted streams (src/tombstone.c, src/delete.c): es_delete_stream appends
 * a tombstone event and records it here; appends and stream reads then
 * refuse the stream (55Z01).  Its history stays, sealed like the rest.
 */
CREATE TABLE @extschema@.es_tombstones (
	stream_id	text COLLATE "C" NOT NULL,
	version		bigint NOT NULL,
	global_position bigint NOT NULL,
	deleted_at	timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
	CONSTRAINT es_tombstones_pkey PRIMARY KEY (stream_id)
);
SELECT pg_catalog.pg_extension_config_dump('@extschema@.es_tombstones', '');
REVOKE ALL ON @extschema@.es_tombstones FROM PUBLIC;
COMMENT ON TABLE @extschema@.es_tombstones IS
	'deleted streams: the version and position of each one''s tombstone event';
CREATE TRIGGER es_tombstones_append_only
	BEFORE UPDATE OR DELETE OR TRUNCATE ON @extschema@.es_tombstones
	FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.es_audit_append_only();
ALTER TABLE @extschema@.es_tombstones ENABLE ALWAYS TRIGGER es_tombstones_append_only;
CREATE TRIGGER es_tombstones_append_only_row
	BEFORE UPDATE OR DELETE ON @extschema@.es_tombstones
	FOR EACH ROW EXECUTE FUNCTION @extschema@.es_audit_append_only();
ALTER TABLE @extschema@.es_tombstones ENABLE ALWAYS TRIGGER es_tombstones_append_only_row;

CREATE FUNCTION @extschema@.es_delete_stream(stream_id text,
		expected_version bigint DEFAULT NULL, metadata jsonb DEFAULT NULL)
	RETURNS bigint
	AS 'MODULE_PATHNAME', 'es_delete_stream'
	LANGUAGE C VOLATILE;
COMMENT ON FUNCTION @extschema@.es_delete_stream(text, bigint, jsonb) IS
	'delete a stream: append its tombstone event ($StreamDeleted); appends and stream reads then refuse it; returns the tombstone''s version';
REVOKE ALL ON FUNCTION @extschema@.es_delete_stream(text, bigint, jsonb) FROM PUBLIC;

/*
 * Archiving (src/archive.c): es_archive moves the sealed events of deleted
 * streams, tombstones excepted (and with live_streams those of live
 * streams, each stream's last event excepted), from es_events into
 * es_archived_events (which may live in another tablespace), through the
 * one removal path the guard of es_events lets through; es_verify checks
 * them there.  Reads that would miss them refuse (src/archhorizon.c).
 */
CREATE TABLE @extschema@.es_archived_events (
	global_position bigint NOT NULL,
	stream_id	text COLLATE "C" NOT NULL,
	version		bigint NOT NULL,
	event_id	uuid NOT NULL,
	event_type	text COLLATE "C" NOT NULL,
	data		jsonb NOT NULL,
	metadata	jsonb,
	recorded_at timestamptz NOT NULL,
	schema_version integer,
	archive_id	bigint NOT NULL,
	CONSTRAINT es_archived_events_pkey PRIMARY KEY (global_position)
);
SELECT pg_catalog.pg_extension_config_dump('@extschema@.es_archived_events', '');
REVOKE ALL ON @extschema@.es_archived_events FROM PUBLIC;
COMMENT ON TABLE @extschema@.es_archived_events IS
	'events es_archive moved out of es_events (sealed events of deleted streams, and with live_streams of live streams), as they were';
CREATE TABLE @extschema@.es_archives (
	archive_id	bigint NOT NULL,
	up_to_position bigint NOT NULL,
	events		bigint NOT NULL,
	first_position bigint,
	last_position bigint,
	tablespace	name,
	archived_at timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
	live_streams boolean NOT NULL DEFAULT false,
	CONSTRAINT es_archives_pkey PRIMARY KEY (archive_id)
);
SELECT pg_catalog.pg_extension_config_dump('@extschema@.es_archives', '');
REVOKE ALL ON @extschema@.es_archives FROM PUBLIC;
COMMENT ON TABLE @extschema@.es_archives IS
	'one row per es_archive call that moved events: how many, which positions, where';
CREATE TRIGGER es_archived_events_append_only
	BEFORE UPDATE OR DELETE OR TRUNCATE ON @extschema@.es_archived_events
	FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.es_audit_append_only();
ALTER TABLE @extschema@.es_archived_events ENABLE ALWAYS TRIGGER es_archived_events_append_only;
CREATE TRIGGER es_archived_events_append_only_row
	BEFORE UPDATE OR DELETE ON @extschema@.es_archived_events
	FOR EACH ROW EXECUTE FUNCTION @extschema@.es_audit_append_only();
ALTER TABLE @extschema@.es_archived_events ENABLE ALWAYS TRIGGER es_archived_events_append_only_row;
CREATE TRIGGER es_archives_append_only
	BEFORE UPDATE OR DELETE OR TRUNCATE ON @extschema@.es_archives
	FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.es_audit_append_only();
ALTER TABLE @extschema@.es_archives ENABLE ALWAYS TRIGGER es_archives_append_only;
COMMENT ON COLUMN @extschema@.es_archives.live_streams IS
	'true: es_archive(..., live_streams => true) moved events of live streams too; reads of positions up to last_position then refuse (55Z02)';

/*
 * A new row of es_archives changes what the read paths refuse: every
 * backend forgets its cached archive horizon (src/archhorizon.c).
 */
CREATE FUNCTION @extschema@.es_archives_changed()
	RETURNS trigger
	AS 'MODULE_PATHNAME', 'es_archives_changed'
	LANGUAGE C;
CREATE TRIGGER es_archives_changed
	AFTER INSERT ON @extschema@.es_archives
	FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.es_archives_changed();
ALTER TABLE @extschema@.es_archives ENABLE ALWAYS TRIGGER es_archives_changed;
REVOKE ALL ON FUNCTION @extschema@.es_archives_changed() FROM PUBLIC;

CREATE FUNCTION @extschema@.es_archive(before_position bigint DEFAULT NULL,
		destination name DEFAULT NULL, live_streams boolean DEFAULT false)
	RETURNS bigint
	AS 'MODULE_PATHNAME', 'es_archive'
	LANGUAGE C VOLATILE;
COMMENT ON FUNCTION @extschema@.es_archive(bigint, name, boolean) IS
	'move sealed events below before_position into es_archived_events (tablespace destination if given): of deleted streams (tombstones stay), with live_streams also of live streams (each stream''s last event stays); returns how many';
REVOKE ALL ON FUNCTION @extschema@.es_archive(bigint, name, boolean) FROM PUBLIC;

/*
 * Reading archived events back (src/archread.c): the events of the
 * archived range, from both tables, in position order.
 */
CREATE FUNCTION @extschema@.es_read_archived(from_position bigint DEFAULT 0,
		max_count bigint DEFAULT 1000, stream_id text DEFAULT NULL)
	RETURNS SETOF @extschema@.es_events
	AS 'MODULE_PATHNAME', 'es_read_archived'
	LANGUAGE C STABLE ROWS 1000;
COMMENT ON FUNCTION @extschema@.es_read_archived(bigint, bigint, text) IS
	'the events of the archived range (positions up to the last archived one) after from_position, archived or not, in position order; of one stream if stream_id is given';
REVOKE ALL ON FUNCTION @extschema@.es_read_archived(bigint, bigint, text) FROM PUBLIC;
