
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
	'SHA-256 of the reducer''s code, owner and pinned search_path and of the initial state (es_aggregate snapshots), NULL when saved with es_save_snapshot';

/* snapshot policies: es_aggregate stores a snapshot every N replayed events */
/*
 * Under a policy, es_aggregate folds as the reducer's owner, in a
 * security-restricted operation, with the search_path pinned when the
 * policy was set: the snapshots it stores are shared by every caller, so
 * no caller's environment may shape them.  Rows an extension's install
 * script creates are marked with its name and left out of dumps (the
 * script creates them again on restore).
 */
CREATE TABLE @extschema@.es_snapshot_policies (
	reducer		text COLLATE "C" NOT NULL,
	every_n_events integer NOT NULL,
	updated_at	timestamptz NOT NULL DEFAULT pg_catalog.now(),
	search_path text NOT NULL,
	extension	name,
	CONSTRAINT es_snapshot_policies_pkey PRIMARY KEY (reducer),
	CONSTRAINT es_snapshot_policies_every_n_events_check CHECK (every_n_events > 0)
);
SELECT pg_catalog.pg_extension_config_dump('@extschema@.es_snapshot_policies',
	'WHERE extension IS NULL');
REVOKE ALL ON @extschema@.es_snapshot_policies FROM PUBLIC;

COMMENT ON TABLE @extschema@.es_snapshot_policies IS
	'reducers whose folds es_aggregate snapshots when it replays more than every_n_events events';
COMMENT ON COLUMN @extschema@.es_snapshot_policies.reducer IS
	'schema-qualified name of the reducer, as in es_snapshots.reducer';
COMMENT ON COLUMN @extschema@.es_snapshot_policies.search_path IS
	'search_path the reducer folds with under the policy, pinned when it was set';
COMMENT ON COLUMN @extschema@.es_snapshot_policies.extension IS
	'the extension whose install script set the policy; such rows are not dumped';

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
