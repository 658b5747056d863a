/*
 * bench/sql/setup.sql: the data every workload starts from, written once
 * into es_events and, identically, into the plain reference table
 * bench.ref_events.  psql variables (set by bench/run.sh):
 *   streams     streams for the append workloads (10,000)
 *   per_stream  events already in each of them
 *   read_len    events of each stream that the read workload reads (1,000)
 *   read_count  how many such streams
 *   snap_len    events of the snapshot workload's streams (10,000)
 *   snap_tail   events after the snapshot (100); stream tail-1 has twice as
 *               many, for the "no more than replaying 2x the tail" goal
 */
\set ON_ERROR_STOP on
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS es_pg;
CREATE SCHEMA bench;

/*
 * The reference: the shape of es_events (same columns, types, "C"
 * collations, defaults, check and unique indexes, its own sequence), without
 * the extension.  Versions are computed in SQL by each workload's script.
 */
CREATE SEQUENCE bench.ref_events_position_seq AS bigint CACHE 1 NO CYCLE;
CREATE TABLE bench.ref_events (
	global_position bigint NOT NULL
		DEFAULT nextval('bench.ref_events_position_seq'::regclass),
	stream_id	text COLLATE "C" NOT NULL,
	version		bigint NOT NULL,
	event_id	uuid NOT NULL DEFAULT gen_random_uuid(),
	event_type	text COLLATE "C" NOT NULL,
	data		jsonb NOT NULL,
	metadata	jsonb,
	recorded_at timestamptz NOT NULL DEFAULT clock_timestamp(),
	schema_version integer,		-- as in es_events since 0.2.0: NULL is version 1
	CONSTRAINT ref_events_pkey PRIMARY KEY (global_position),
	CONSTRAINT ref_events_stream_id_version_key UNIQUE (stream_id, version),
	CONSTRAINT ref_events_event_id_key UNIQUE (event_id),
	CONSTRAINT ref_events_version_check CHECK (version > 0)
);
ALTER SEQUENCE bench.ref_events_position_seq
	OWNED BY bench.ref_events.global_position;

/*
 * The starting data, generated once and inserted into both tables in the
 * same order, so that positions, versions and the physical layout match.
 * Streams are interleaved the way concurrent appenders leave them: one
 * stream's events are spread over many pages.
 */
CREATE TEMP TABLE seed AS
SELECT row_number() OVER (ORDER BY o1, o2, version) AS n,
	   stream_id, version, event_type, data
  FROM (SELECT 'account-' || s AS stream_id, v AS version,
			   CASE WHEN v = 1 THEN 'AccountCreated'
					WHEN v % 3 = 0 THEN 'MoneyWithdrawn'
					ELSE 'MoneyDeposited' END AS event_type,
			   CASE WHEN v = 1
					THEN jsonb_build_object('account_id', s::text,
											'owner', 'owner ' || s,
											'initial_deposit', 1000)
					ELSE jsonb_build_object('amount', 10 + (s * 7 + v) % 90)
			   END AS data,
			   v AS o1, s AS o2
		  FROM generate_series(0, :streams - 1) s,
			   generate_series(1, :per_stream) v
		UNION ALL
		SELECT 'read-' || s, v, 'MoneyDeposited',
			   jsonb_build_object('amount', 10 + v % 90),
			   v * :per_stream / :read_len, :streams + s
		  FROM generate_series(1, :read_count) s,
			   generate_series(1, :read_len) v
		UNION ALL
		SELECT 'snap-' || s, v,
			   CASE WHEN v = 1 THEN 'AccountCreated'
					WHEN v % 3 = 0 THEN 'MoneyWithdrawn'
					ELSE 'MoneyDeposited' END,
			   CASE WHEN v = 1
					THEN jsonb_build_object('account_id', 'snap-' || s,
											'owner', 'owner of snap-' || s,
											'initial_deposit', 1000000)
					ELSE jsonb_build_object('amount', 10 + v % 90)
			   END,
			   v * :per_stream / :snap_len, :streams + :read_count + s
		  FROM generate_series(1, 2) s,
			   generate_series(1, :snap_len) v
		UNION ALL
		SELECT 'tail-1', v,
			   CASE WHEN v = 1 THEN 'AccountCreated'
					WHEN v % 3 = 0 THEN 'MoneyWithdrawn'
					ELSE 'MoneyDeposited' END,
			   CASE WHEN v = 1
					THEN jsonb_build_object('account_id', 'tail-1',
											'owner', 'owner of tail-1',
											'initial_deposit', 1000000)
					ELSE jsonb_build_object('amount', 10 + v % 90)
			   END,
			   v * :per_stream / (2 * :snap_tail), :streams + :read_count + 3
		  FROM generate_series(1, 2 * :snap_tail) v) g
 ORDER BY o1, o2, version;

/*
 * A year of history: recorded_at grows with the position, from a year ago
 * to now, so that the daily-summary read model has a row per day, as it
 * would in a live system, rather than one row that every event updates.
 */
SELECT count(*) AS seed_count, now() AS seed_now FROM seed \gset
INSERT INTO es_events (stream_id, version, event_type, data, recorded_at)
SELECT stream_id, version, event_type, data,
	   :'seed_now'::timestamptz - interval '365 days' * (1 - n::float8 / :seed_count)
  FROM seed ORDER BY n;
INSERT INTO bench.ref_events (stream_id, version, event_type, data, recorded_at)
SELECT stream_id, version, event_type, data,
	   :'seed_now'::timestamptz - interval '365 days' * (1 - n::float8 / :seed_count)
  FROM seed ORDER BY n;
DROP TABLE seed;
VACUUM (FREEZE, ANALYZE) es_events;
VACUUM (FREEZE, ANALYZE) bench.ref_events;
CHECKPOINT;

/*
 * The snapshot workload's reducer: the bank account's fold (the same code
 * as bank_account_reducer of examples/bank), kept here so that the workload
 * does not depend on the bank module and no snapshot policy applies to it.
 */
CREATE FUNCTION bench.account_reducer(state jsonb, event es_events)
	RETURNS jsonb
	LANGUAGE sql IMMUTABLE PARALLEL SAFE
	RETURN CASE
		WHEN event.event_type = 'AccountCreated' AND NOT state ? 'account_id' THEN
			jsonb_build_object(
				'account_id', event.data->'account_id',
				'owner', event.data->'owner',
				'balance', COALESCE((event.data->>'initial_deposit')::numeric, 0),
				'status', 'open',
				'version', event.version)
		WHEN event.event_type = 'MoneyDeposited' THEN
			state || jsonb_build_object(
				'balance', (state->>'balance')::numeric + (event.data->>'amount')::numeric,
				'version', event.version)
		WHEN event.event_type = 'MoneyWithdrawn' THEN
			state || jsonb_build_object(
				'balance', (state->>'balance')::numeric - (event.data->>'amount')::numeric,
				'version', event.version)
		WHEN event.event_type = 'AccountClosed' THEN
			state || jsonb_build_object('status', 'closed', 'version', event.version)
		ELSE
			state || jsonb_build_object('version', event.version)
	END;
