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

/*
 * ------------------------------------------------------------------------
 * Subscriptions (issue 12): the position of an append, category reads,
 * subscriptions with consumer groups; the same objects as
 * sql/src/40_subscription.sql.  The category index is built over the
 * events already there (CREATE INDEX takes a SHARE lock on es_events while
 * it is built: appends wait, reads go on).
 * It stands before the privilege model, which names its objects.
 * ------------------------------------------------------------------------
 */

/* the position of what this transaction appended (src/append.c) */
CREATE FUNCTION @extschema@.es_last_position()
	RETURNS bigint
	AS 'MODULE_PATHNAME', 'es_last_position'
	LANGUAGE C VOLATILE;
COMMENT ON FUNCTION @extschema@.es_last_position() IS
	'global position of the last event appended in this transaction, NULL when none';
REVOKE ALL ON FUNCTION @extschema@.es_last_position() FROM PUBLIC;

/*
 * Categories: the part of a stream id before its first "-".  The index is
 * filled in an append's flight, like the global_position index, so that a
 * category read has the global feed's guarantee (src/append.c, src/lock.c).
 */
CREATE INDEX es_events_category_idx ON @extschema@.es_events
	(pg_catalog.split_part(stream_id, '-', 1), global_position);

CREATE FUNCTION @extschema@.es_read_category(category text,
		from_position bigint DEFAULT 0, max_count bigint DEFAULT 1000)
	RETURNS SETOF @extschema@.es_events
	AS 'MODULE_PATHNAME', 'es_read_category'
	LANGUAGE C VOLATILE ROWS 1000;
COMMENT ON FUNCTION @extschema@.es_read_category(text, bigint, bigint) IS
	'events of the streams "category-..." after from_position, in global order; never skips an event that commits late';
REVOKE ALL ON FUNCTION @extschema@.es_read_category(text, bigint, bigint) FROM PUBLIC;

/*
 * Subscriptions.  One row per subscription; one row per member of its
 * consumer group, with the member's checkpoint, what it was last handed
 * and its lease; one row per parked event.  es_poll, es_ack and es_nack
 * change them as the tables' owner (src/subscription.c).  An async
 * projection is a subscription whose consumer is its handler (the
 * projections' section below moves their checkpoints here).
 */
CREATE TABLE @extschema@.es_subscriptions (
	name		text COLLATE "C" NOT NULL,
	category	text COLLATE "C",
	event_types text[] COLLATE "C",
	group_size	integer NOT NULL,
	start_position bigint NOT NULL,
	max_attempts integer NOT NULL,
	lease		interval NOT NULL,
	created_at	timestamptz NOT NULL DEFAULT pg_catalog.now(),
	projection	text COLLATE "C",
	CONSTRAINT es_subscriptions_pkey PRIMARY KEY (name),
	CONSTRAINT es_subscriptions_projection_fkey
		FOREIGN KEY (projection) REFERENCES @extschema@.es_projections (name)
		ON DELETE CASCADE,
	CONSTRAINT es_subscriptions_projection_check
		CHECK (projection IS NULL OR (projection = name AND group_size = 1
									  AND category IS NULL)),
	CONSTRAINT es_subscriptions_group_size_check
		CHECK (group_size BETWEEN 1 AND 1024),
	CONSTRAINT es_subscriptions_start_position_check
		CHECK (start_position >= 0),
	CONSTRAINT es_subscriptions_max_attempts_check
		CHECK (max_attempts BETWEEN 1 AND 1000000),
	CONSTRAINT es_subscriptions_lease_check
		CHECK (lease > '0'::interval)
);
/*
 * The subscription of a projection an extension's install script created
 * is not dumped (the script creates it again on restore, as it creates the
 * projection); its member row is, and replaces the script's one
 * (es_subscription_members_restore).
 */
SELECT pg_catalog.pg_extension_config_dump('@extschema@.es_subscriptions',
	'WHERE projection IS NULL OR projection NOT IN (SELECT p.name FROM @extschema@.es_projections p WHERE p.extension IS NOT NULL)');
REVOKE ALL ON @extschema@.es_subscriptions FROM PUBLIC;
COMMENT ON TABLE @extschema@.es_subscriptions IS
	'subscriptions: a filter on the global feed, read by a consumer group';
COMMENT ON COLUMN @extschema@.es_subscriptions.category IS
	'the category whose streams it delivers; NULL: every stream';
COMMENT ON COLUMN @extschema@.es_subscriptions.event_types IS
	'the event types it delivers; NULL: every type';
COMMENT ON COLUMN @extschema@.es_subscriptions.group_size IS
	'members of the consumer group; a stream goes to member hash(stream_id) mod group_size';
COMMENT ON COLUMN @extschema@.es_subscriptions.projection IS
	'the async projection whose handler consumes it (= name), applied by a worker; NULL: a subscription of es_poll';

CREATE TABLE @extschema@.es_subscription_members (
	subscription text COLLATE "C" NOT NULL,
	member		integer NOT NULL,
	checkpoint	bigint NOT NULL,
	delivered_to bigint NOT NULL,
	scanned_to	bigint NOT NULL,
	attempts	integer NOT NULL DEFAULT 0,
	consumer	text,
	lease_until timestamptz,
	last_poll	timestamptz,
	last_ack	timestamptz,
	last_error	text,
	last_error_at timestamptz,
	error_position bigint,
	error_sqlstate text,
	CONSTRAINT es_subscription_members_pkey PRIMARY KEY (subscription, member),
	CONSTRAINT es_subscription_members_subscription_fkey
		FOREIGN KEY (subscription) REFERENCES @extschema@.es_subscriptions (name)
		ON DELETE CASCADE,
	CONSTRAINT es_subscription_members_position_check
		CHECK (checkpoint <= delivered_to AND delivered_to <= scanned_to)
);
SELECT pg_catalog.pg_extension_config_dump('@extschema@.es_subscription_members', '');
REVOKE ALL ON @extschema@.es_subscription_members FROM PUBLIC;
COMMENT ON TABLE @extschema@.es_subscription_members IS
	'per subscription and member: checkpoint, what was delivered and not acked, lease';
COMMENT ON COLUMN @extschema@.es_subscription_members.checkpoint IS
	'every event of the member up to this position is acked or parked';
COMMENT ON COLUMN @extschema@.es_subscription_members.delivered_to IS
	'the last position delivered and not acked yet (= checkpoint when none)';
COMMENT ON COLUMN @extschema@.es_subscription_members.scanned_to IS
	'the position the last poll''s walk reached: no event of the member between delivered_to and it';
COMMENT ON COLUMN @extschema@.es_subscription_members.attempts IS
	'how often the events after the checkpoint up to delivered_to were delivered';
COMMENT ON COLUMN @extschema@.es_subscription_members.error_position IS
	'the position of the event that failed last (es_nack, or a projection''s handler)';
COMMENT ON COLUMN @extschema@.es_subscription_members.error_sqlstate IS
	'the SQLSTATE of a projection handler''s last error; NULL for es_nack';

/*
 * A restore's row for a member that exists already (one of a projection
 * an extension's script created again) replaces it, with the checkpoint
 * the dump had.
 */
CREATE FUNCTION @extschema@.es_subscription_members_restore()
	RETURNS trigger
	AS 'MODULE_PATHNAME', 'es_subscription_members_restore'
	LANGUAGE C;
CREATE TRIGGER es_subscription_members_restore
	BEFORE INSERT ON @extschema@.es_subscription_members
	FOR EACH ROW EXECUTE FUNCTION @extschema@.es_subscription_members_restore();
ALTER TABLE @extschema@.es_subscription_members
	ENABLE ALWAYS TRIGGER es_subscription_members_restore;
REVOKE ALL ON FUNCTION @extschema@.es_subscription_members_restore() FROM PUBLIC;

CREATE TABLE @extschema@.es_subscription_parked (
	subscription text COLLATE "C" NOT NULL,
	member		integer NOT NULL,
	position	bigint NOT NULL,
	stream_id	text COLLATE "C" NOT NULL,
	event_type	text COLLATE "C" NOT NULL,
	attempts	integer NOT NULL,
	last_error	text,
	parked_at	timestamptz NOT NULL,
	replay		boolean NOT NULL DEFAULT false,
	CONSTRAINT es_subscription_parked_pkey
		PRIMARY KEY (subscription, member, position),
	CONSTRAINT es_subscription_parked_member_fkey
		FOREIGN KEY (subscription, member)
		REFERENCES @extschema@.es_subscription_members (subscription, member)
		ON DELETE CASCADE
);
SELECT pg_catalog.pg_extension_config_dump('@extschema@.es_subscription_parked', '');
REVOKE ALL ON @extschema@.es_subscription_parked FROM PUBLIC;
COMMENT ON TABLE @extschema@.es_subscription_parked IS
	'events a subscription gave up on after max_attempts; es_replay_parked delivers them again';

CREATE FUNCTION @extschema@.es_create_subscription(name text,
		category text DEFAULT NULL, event_types text[] DEFAULT NULL,
		group_size integer DEFAULT 1, start_position bigint DEFAULT 0,
		max_attempts integer DEFAULT 5, lease interval DEFAULT '30 seconds',
		if_not_exists boolean DEFAULT false)
	RETURNS boolean
	AS 'MODULE_PATHNAME', 'es_create_subscription'
	LANGUAGE C VOLATILE;
COMMENT ON FUNCTION @extschema@.es_create_subscription(text, text, text[], integer, bigint, integer, interval, boolean) IS
	'create a subscription; true when created, false when if_not_exists found the same one';

CREATE FUNCTION @extschema@.es_drop_subscription(name text,
		if_exists boolean DEFAULT false)
	RETURNS boolean
	AS 'MODULE_PATHNAME', 'es_drop_subscription'
	LANGUAGE C VOLATILE;
COMMENT ON FUNCTION @extschema@.es_drop_subscription(text, boolean) IS
	'drop a subscription with its checkpoints and parked events';

CREATE FUNCTION @extschema@.es_poll(name text, member integer DEFAULT 0,
		max_count integer DEFAULT 100, wait interval DEFAULT '0',
		consumer text DEFAULT NULL)
	RETURNS TABLE (global_position bigint, stream_id text, version bigint,
		event_id uuid, event_type text, data jsonb, metadata jsonb,
		recorded_at timestamptz, schema_version integer, attempt integer)
	AS 'MODULE_PATHNAME', 'es_poll'
	LANGUAGE C VOLATILE ROWS 100;
COMMENT ON FUNCTION @extschema@.es_poll(text, integer, integer, interval, text) IS
	'the member''s events after its checkpoint, in global order, with the delivery attempt; waits up to "wait" for one';

CREATE FUNCTION @extschema@.es_ack(name text, member integer,
		"position" bigint, consumer text DEFAULT NULL)
	RETURNS bigint
	AS 'MODULE_PATHNAME', 'es_ack'
	LANGUAGE C VOLATILE;
COMMENT ON FUNCTION @extschema@.es_ack(text, integer, bigint, text) IS
	'acknowledge every delivered event of the member up to position; returns the checkpoint';

CREATE FUNCTION @extschema@.es_nack(name text, member integer,
		"position" bigint, error text DEFAULT NULL, consumer text DEFAULT NULL)
	RETURNS boolean
	AS 'MODULE_PATHNAME', 'es_nack'
	LANGUAGE C VOLATILE;
COMMENT ON FUNCTION @extschema@.es_nack(text, integer, bigint, text, text) IS
	'the event at position failed: it comes again, or is parked at max_attempts (true)';

CREATE FUNCTION @extschema@.es_release(name text, member integer,
		consumer text)
	RETURNS boolean
	AS 'MODULE_PATHNAME', 'es_release'
	LANGUAGE C VOLATILE;
COMMENT ON FUNCTION @extschema@.es_release(text, integer, text) IS
	'give up the lease of a member (graceful shutdown); false when the consumer did not hold it';

CREATE FUNCTION @extschema@.es_replay_parked(name text,
		member integer DEFAULT NULL, "position" bigint DEFAULT NULL)
	RETURNS bigint
	AS 'MODULE_PATHNAME', 'es_replay_parked'
	LANGUAGE C VOLATILE;
COMMENT ON FUNCTION @extschema@.es_replay_parked(text, integer, bigint) IS
	'deliver parked events again (of one member, or one event); returns how many';

REVOKE ALL ON FUNCTION @extschema@.es_create_subscription(text, text, text[], integer, bigint, integer, interval, boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.es_drop_subscription(text, boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.es_poll(text, integer, integer, interval, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.es_ack(text, integer, bigint, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.es_nack(text, integer, bigint, text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.es_release(text, integer, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.es_replay_parked(text, integer, bigint) FROM PUBLIC;

CREATE VIEW @extschema@.es_parked_events AS
	SELECT p.subscription, p.member, p.position, p.stream_id, p.event_type,
		   p.attempts, p.last_error, p.parked_at, p.replay
	  FROM @extschema@.es_subscription_parked p;
REVOKE ALL ON @extschema@.es_parked_events FROM PUBLIC;
COMMENT ON VIEW @extschema@.es_parked_events IS
	'events subscriptions parked after max_attempts, with the last error';

CREATE VIEW @extschema@.es_subscription_status AS
	SELECT s.name AS subscription,
		   m.member,
		   s.group_size,
		   m.checkpoint AS position,
		   m.delivered_to,
		   h.position AS head_position,
		   GREATEST(h.position OPERATOR(pg_catalog.-) m.checkpoint, 0) AS lag_events,
		   CASE WHEN m.checkpoint OPERATOR(pg_catalog.>=) h.position
				THEN '0'::interval
				ELSE GREATEST(pg_catalog.clock_timestamp() OPERATOR(pg_catalog.-)
					(SELECT e.recorded_at FROM @extschema@.es_events e
					  WHERE e.global_position OPERATOR(pg_catalog.>) m.checkpoint
					  ORDER BY e.global_position LIMIT 1), '0'::interval)
		   END AS lag_time,
		   (SELECT pg_catalog.count(*) FROM @extschema@.es_subscription_parked p
			 WHERE p.subscription OPERATOR(pg_catalog.=) m.subscription
			   AND p.member OPERATOR(pg_catalog.=) m.member) AS parked,
		   m.attempts,
		   m.consumer,
		   m.lease_until,
		   COALESCE(m.lease_until OPERATOR(pg_catalog.>) pg_catalog.clock_timestamp(), false) AS lease_live,
		   m.last_poll,
		   m.last_ack,
		   m.last_error,
		   m.last_error_at,
		   s.category,
		   s.event_types,
		   s.projection
	  FROM @extschema@.es_subscriptions s
	  JOIN @extschema@.es_subscription_members m
		ON m.subscription OPERATOR(pg_catalog.=) s.name
	 CROSS JOIN (SELECT COALESCE((SELECT e.global_position
									FROM @extschema@.es_events e
								   ORDER BY e.global_position DESC LIMIT 1), 0)
						AS position) h;
REVOKE ALL ON @extschema@.es_subscription_status FROM PUBLIC;
COMMENT ON VIEW @extschema@.es_subscription_status IS
	'per subscription and member: checkpoint, head, lag in events and time, parked events, consumer and lease, last poll, last error';

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
	-- reader: category reads and consumers of subscriptions (40_subscription.sql)
	('reader', 'function', '@extschema@.es_read_category(text, bigint, bigint)'::pg_catalog.regprocedure::pg_catalog.oid, 'EXECUTE'),
	('reader', 'function', '@extschema@.es_poll(text, integer, integer, interval, text)'::pg_catalog.regprocedure::pg_catalog.oid, 'EXECUTE'),
	('reader', 'function', '@extschema@.es_ack(text, integer, bigint, text)'::pg_catalog.regprocedure::pg_catalog.oid, 'EXECUTE'),
	('reader', 'function', '@extschema@.es_nack(text, integer, bigint, text, text)'::pg_catalog.regprocedure::pg_catalog.oid, 'EXECUTE'),
	('reader', 'function', '@extschema@.es_release(text, integer, text)'::pg_catalog.regprocedure::pg_catalog.oid, 'EXECUTE'),
	('reader', 'view', '@extschema@.es_subscription_status'::pg_catalog.regclass::pg_catalog.oid, 'SELECT'),
	('reader', 'view', '@extschema@.es_parked_events'::pg_catalog.regclass::pg_catalog.oid, 'SELECT'),
	-- the check of direct inserts: callable by anyone, it only reads this session's state
	('reader', 'function', '@extschema@.es_events_insert_check(bigint)'::pg_catalog.regprocedure::pg_catalog.oid, 'EXECUTE'),
	-- appender
	('appender', 'function', '@extschema@.es_append(text, text, jsonb, bigint, jsonb, uuid)'::pg_catalog.regprocedure::pg_catalog.oid, 'EXECUTE'),
	('appender', 'function', '@extschema@.es_append_batch(text, jsonb, bigint)'::pg_catalog.regprocedure::pg_catalog.oid, 'EXECUTE'),
	-- appender: the position of its own appends (40_subscription.sql)
	('appender', 'function', '@extschema@.es_last_position()'::pg_catalog.regprocedure::pg_catalog.oid, 'EXECUTE'),
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
	-- admin: subscriptions (40_subscription.sql)
	('admin', 'function', '@extschema@.es_create_subscription(text, text, text[], integer, bigint, integer, interval, boolean)'::pg_catalog.regprocedure::pg_catalog.oid, 'EXECUTE'),
	('admin', 'function', '@extschema@.es_drop_subscription(text, boolean)'::pg_catalog.regprocedure::pg_catalog.oid, 'EXECUTE'),
	('admin', 'function', '@extschema@.es_replay_parked(text, integer, bigint)'::pg_catalog.regprocedure::pg_catalog.oid, 'EXECUTE'),
	('admin', 'table', '@extschema@.es_subscriptions'::pg_catalog.regclass::pg_catalog.oid, 'SELECT'),
	('admin', 'table', '@extschema@.es_subscription_members'::pg_catalog.regclass::pg_catalog.oid, 'SELECT'),
	('admin', 'table', '@extschema@.es_subscription_parked'::pg_catalog.regclass::pg_catalog.oid, 'SELECT'),
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
 * ---------------------------------------------------------------------
 * Event schema evolution (sql/src/30_evolution.sql): es_events gets
 * schema_version (NULL for every event already there: version 1, nothing
 * is rewritten), the event type registry, upcasters and the registry
 * view (the privilege model is made again at the end).
 * ---------------------------------------------------------------------
 */

/*
 * The version of its type's schema each event was appended with.  NULL is
 * version 1: the type was not registered, which costs nothing (no default,
 * so adding the column rewrites nothing, and no CHECK, so appends check no
 * constraint for it).  Stored rows never change; readers get the current
 * shape through the upcasters.
 */
ALTER TABLE @extschema@.es_events ADD COLUMN schema_version integer;
COMMENT ON COLUMN @extschema@.es_events.schema_version IS
	'version of its type''s schema the event was appended with; NULL: version 1 (the type was not registered)';

/*
 * Registered event types: the version appends record, and what checks their
 * data.  Functions are kept as schema-qualified signatures, resolved when
 * the registry is loaded, as es_projections keeps them.  Rows an
 * extension's install script creates are marked with its name and left out
 * of dumps.
 */
CREATE TABLE @extschema@.es_event_types (
	event_type	text COLLATE "C" NOT NULL,
	schema_version integer NOT NULL,
	validator	jsonpath,
	validator_function text,
	owner		regrole NOT NULL,
	search_path text NOT NULL,
	registered_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	extension	name,
	CONSTRAINT es_event_types_pkey PRIMARY KEY (event_type),
	CONSTRAINT es_event_types_schema_version_check CHECK (schema_version > 0)
);
SELECT pg_catalog.pg_extension_config_dump('@extschema@.es_event_types',
	'WHERE extension IS NULL');
REVOKE ALL ON @extschema@.es_event_types FROM PUBLIC;
COMMENT ON TABLE @extschema@.es_event_types IS
	'registered event types: current schema version and validators';
COMMENT ON COLUMN @extschema@.es_event_types.schema_version IS
	'the current version: appends of the type record it, reads upcast older events to it';
COMMENT ON COLUMN @extschema@.es_event_types.validator IS
	'SQL/JSON path predicate the data of an appended event must match (jsonb_path_match); NULL: none';
COMMENT ON COLUMN @extschema@.es_event_types.validator_function IS
	'function (data jsonb, metadata jsonb) RETURNS boolean, as a schema-qualified signature, that must return true; NULL: none';
COMMENT ON COLUMN @extschema@.es_event_types.owner IS
	'the role that registered the type; the validator function runs with its rights';
COMMENT ON COLUMN @extschema@.es_event_types.search_path IS
	'search_path the validator function runs with, pinned when the type was registered';
COMMENT ON COLUMN @extschema@.es_event_types.extension IS
	'the extension whose install script registered the type; such rows are not dumped';

/*
 * Upcasters: upcaster(event es_events) RETURNS es_events turns an event of
 * from_version into one of from_version + 1 (or of another type).
 */
CREATE TABLE @extschema@.es_upcasters (
	event_type	text COLLATE "C" NOT NULL,
	from_version integer NOT NULL,
	upcaster	text NOT NULL,
	owner		regrole NOT NULL,
	search_path text NOT NULL,
	created_at	timestamptz NOT NULL DEFAULT pg_catalog.now(),
	extension	name,
	CONSTRAINT es_upcasters_pkey PRIMARY KEY (event_type, from_version),
	CONSTRAINT es_upcasters_from_version_check CHECK (from_version > 0)
);
SELECT pg_catalog.pg_extension_config_dump('@extschema@.es_upcasters',
	'WHERE extension IS NULL');
REVOKE ALL ON @extschema@.es_upcasters FROM PUBLIC;
COMMENT ON TABLE @extschema@.es_upcasters IS
	'upcasters: functions that turn an event of one schema version into the next';
COMMENT ON COLUMN @extschema@.es_upcasters.upcaster IS
	'the upcaster function, as a schema-qualified signature';
COMMENT ON COLUMN @extschema@.es_upcasters.owner IS
	'the role that created the upcaster; it runs with its rights';
COMMENT ON COLUMN @extschema@.es_upcasters.search_path IS
	'search_path the upcaster runs with, pinned when it was created';
COMMENT ON COLUMN @extschema@.es_upcasters.extension IS
	'the extension whose install script created the upcaster; such rows are not dumped';

/* any change resets the registry cache of every backend */
CREATE FUNCTION @extschema@.es_event_registry_changed()
	RETURNS trigger
	AS 'MODULE_PATHNAME', 'es_event_registry_changed'
	LANGUAGE C;
CREATE TRIGGER es_event_types_changed
	AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON @extschema@.es_event_types
	FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.es_event_registry_changed();
ALTER TABLE @extschema@.es_event_types ENABLE ALWAYS TRIGGER es_event_types_changed;
CREATE TRIGGER es_upcasters_changed
	AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON @extschema@.es_upcasters
	FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.es_event_registry_changed();
ALTER TABLE @extschema@.es_upcasters ENABLE ALWAYS TRIGGER es_upcasters_changed;
REVOKE ALL ON FUNCTION @extschema@.es_event_registry_changed() FROM PUBLIC;

/* a dropped upcaster or validator function is refused, or cascades */
CREATE FUNCTION @extschema@.es_evolution_sql_drop()
	RETURNS event_trigger
	AS 'MODULE_PATHNAME', 'es_evolution_sql_drop'
	LANGUAGE C;
CREATE EVENT TRIGGER es_evolution_guard ON sql_drop
	WHEN TAG IN ('DROP FUNCTION', 'DROP ROUTINE', 'DROP EXTENSION',
				 'DROP SCHEMA', 'DROP OWNED')
	EXECUTE FUNCTION @extschema@.es_evolution_sql_drop();
ALTER EVENT TRIGGER es_evolution_guard ENABLE ALWAYS;
REVOKE ALL ON FUNCTION @extschema@.es_evolution_sql_drop() FROM PUBLIC;

CREATE FUNCTION @extschema@.es_register_event_type(event_type text,
		schema_version integer, validator jsonpath DEFAULT NULL,
		validator_function regprocedure DEFAULT NULL)
	RETURNS void
	AS 'MODULE_PATHNAME', 'es_register_event_type'
	LANGUAGE C VOLATILE;
COMMENT ON FUNCTION @extschema@.es_register_event_type(text, integer, jsonpath, regprocedure) IS
	'register an event type at a schema version (or raise it), with an optional jsonpath validator and validator function';

CREATE FUNCTION @extschema@.es_drop_event_type(event_type text,
		missing_ok boolean DEFAULT false)
	RETURNS void
	AS 'MODULE_PATHNAME', 'es_drop_event_type'
	LANGUAGE C VOLATILE;
COMMENT ON FUNCTION @extschema@.es_drop_event_type(text, boolean) IS
	'forget a registered event type (it must have no upcasters); its events keep their recorded versions';

CREATE FUNCTION @extschema@.es_create_upcaster(event_type text,
		from_version integer, upcaster regprocedure)
	RETURNS void
	AS 'MODULE_PATHNAME', 'es_create_upcaster'
	LANGUAGE C VOLATILE;
COMMENT ON FUNCTION @extschema@.es_create_upcaster(text, integer, regprocedure) IS
	'have readers see events of a type and schema version through upcaster(event es_events) RETURNS es_events';

CREATE FUNCTION @extschema@.es_drop_upcaster(event_type text,
		from_version integer, missing_ok boolean DEFAULT false)
	RETURNS void
	AS 'MODULE_PATHNAME', 'es_drop_upcaster'
	LANGUAGE C VOLATILE;
COMMENT ON FUNCTION @extschema@.es_drop_upcaster(text, integer, boolean) IS
	'drop the upcaster of an event type from a schema version';

REVOKE ALL ON FUNCTION @extschema@.es_register_event_type(text, integer, jsonpath, regprocedure) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.es_drop_event_type(text, boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.es_create_upcaster(text, integer, regprocedure) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.es_drop_upcaster(text, integer, boolean) FROM PUBLIC;

/*
 * Every event type, registered or seen in es_events: its current version,
 * the events stored per version, its upcasters and validators.  With the
 * caller's rights, so that row-level security on es_events applies to the
 * counts.
 */
CREATE VIEW @extschema@.es_event_registry WITH (security_invoker = true) AS
	WITH counts AS (
		SELECT e.event_type,
			   COALESCE(e.schema_version, 1) AS schema_version,
			   pg_catalog.count(*) AS events
		  FROM @extschema@.es_events e
		 GROUP BY e.event_type, COALESCE(e.schema_version, 1)
	), per_type AS (
		SELECT c.event_type,
			   pg_catalog.sum(c.events)::bigint AS events,
			   pg_catalog.jsonb_object_agg(c.schema_version::text, c.events)
				   AS events_per_version
		  FROM counts c
		 GROUP BY c.event_type
	)
	SELECT COALESCE(t.event_type, p.event_type) AS event_type,
		   t.event_type IS NOT NULL AS registered,
		   COALESCE(t.schema_version, 1) AS current_version,
		   COALESCE(p.events, 0) AS events,
		   COALESCE(p.events_per_version, '{}'::jsonb) AS events_per_version,
		   COALESCE((SELECT pg_catalog.jsonb_object_agg(u.from_version::text,
														 u.upcaster)
					   FROM @extschema@.es_upcasters u
					  WHERE u.event_type OPERATOR(pg_catalog.=)
							COALESCE(t.event_type, p.event_type)),
					'{}'::jsonb) AS upcasters,
		   t.validator,
		   t.validator_function,
		   t.owner,
		   t.registered_at
	  FROM @extschema@.es_event_types t
	  FULL JOIN per_type p ON p.event_type OPERATOR(pg_catalog.=) t.event_type;
COMMENT ON VIEW @extschema@.es_event_registry IS
	'event types: registered or not, current version, events per stored version, upcasters, validators';

/*
 * ---------------------------------------------------------------------
 * The seal chain and deleted streams (issue 14; sql/src/50_audit.sql,
 * docs/audit.md): es_seals, its guard, es_seal, es_verify, es_tombstones,
 * es_delete_stream, es_archived_events, es_archives, es_archive (the
 * privilege model is made again at the end).
 * ---------------------------------------------------------------------
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

/* deleted streams */
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

/* archiving */
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
 * es_streams counts a stream's events by its version (versions are 1, 2,
 * 3... without gaps), which stays right when es_archive moved its first
 * events out of es_events (00_core.sql).
 */
CREATE OR REPLACE VIEW @extschema@.es_streams WITH (security_invoker = true) AS
	SELECT e.stream_id,
		   pg_catalog.max(e.version) AS version,
		   pg_catalog.max(e.version) AS events,
		   pg_catalog.min(e.recorded_at) AS created_at,
		   pg_catalog.max(e.recorded_at) AS updated_at,
		   pg_catalog.max(e.global_position) AS last_position
	  FROM @extschema@.es_events e
	 GROUP BY e.stream_id;

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

/*
 * ---- Crypto-shredding (issue 14) ----
 * es_protected_types, es_subject_keys, es_master_keys, es_protect,
 * es_unprotect, es_forget_subject, es_rotate_master_key and
 * es_personal_data_access(), whose EXECUTE is the privilege kind
 * "personal" that es_privileges_apply now knows (docs/privacy.md).
 */
/*
 * The protected event types: which members of their data hold personal
 * data (paths), and which names the data subject (subject_path; its keys
 * from the root in subject_keys, for es_forget_subject).
 */
CREATE TABLE @extschema@.es_protected_types (
	event_type	text COLLATE "C" NOT NULL,
	paths		text[] NOT NULL,
	subject_path text NOT NULL,
	subject_keys text[] NOT NULL,
	created_at	timestamptz NOT NULL DEFAULT pg_catalog.now(),
	CONSTRAINT es_protected_types_pkey PRIMARY KEY (event_type)
);
SELECT pg_catalog.pg_extension_config_dump('@extschema@.es_protected_types', '');
REVOKE ALL ON @extschema@.es_protected_types FROM PUBLIC;
COMMENT ON TABLE @extschema@.es_protected_types IS
	'event types whose personal data es_append encrypts with the key of its subject';
COMMENT ON COLUMN @extschema@.es_protected_types.paths IS
	'SQL/JSON paths of the members that hold personal data';
COMMENT ON COLUMN @extschema@.es_protected_types.subject_path IS
	'SQL/JSON path of the member that names the data subject';

/*
 * The keys of data subjects, wrapped by a master key of the key file that
 * es_pg.master_key_file names.  es_forget_subject destroys a key: its
 * wrapped form and master key become NULL and forgotten_at is set.
 */
CREATE SEQUENCE @extschema@.es_subject_keys_key_id_seq AS bigint;
SELECT pg_catalog.pg_extension_config_dump('@extschema@.es_subject_keys_key_id_seq', '');
REVOKE ALL ON @extschema@.es_subject_keys_key_id_seq FROM PUBLIC;
CREATE TABLE @extschema@.es_subject_keys (
	key_id		bigint NOT NULL
		DEFAULT pg_catalog.nextval('@extschema@.es_subject_keys_key_id_seq'::pg_catalog.regclass),
	subject		text COLLATE "C" NOT NULL,
	master_key	text COLLATE "C",
	wrapped		bytea,
	created_at	timestamptz NOT NULL DEFAULT pg_catalog.now(),
	forgotten_at timestamptz,
	CONSTRAINT es_subject_keys_pkey PRIMARY KEY (key_id),
	CONSTRAINT es_subject_keys_forgotten_check CHECK
		((forgotten_at IS NULL) = (wrapped IS NOT NULL AND master_key IS NOT NULL))
);
ALTER SEQUENCE @extschema@.es_subject_keys_key_id_seq
	OWNED BY @extschema@.es_subject_keys.key_id;
/* one live key per subject; forgotten keys stay as a record */
CREATE UNIQUE INDEX es_subject_keys_live_idx
	ON @extschema@.es_subject_keys (subject) WHERE forgotten_at IS NULL;
CREATE INDEX es_subject_keys_subject_idx
	ON @extschema@.es_subject_keys (subject);
SELECT pg_catalog.pg_extension_config_dump('@extschema@.es_subject_keys', '');
REVOKE ALL ON @extschema@.es_subject_keys FROM PUBLIC;
COMMENT ON TABLE @extschema@.es_subject_keys IS
	'keys of data subjects, wrapped by a master key outside the database; NULL once forgotten';
COMMENT ON COLUMN @extschema@.es_subject_keys.master_key IS
	'id of the master key (in es_pg.master_key_file) that wraps the key';
COMMENT ON COLUMN @extschema@.es_subject_keys.wrapped IS
	'AES-256-GCM of the key under the master key: nonce, ciphertext, tag';

/*
 * The master keys ever used, by id, each with a check value (an AES-256-GCM
 * tag under the key) that tells the right key from another one under the
 * same id.
 */
CREATE TABLE @extschema@.es_master_keys (
	master_key	text COLLATE "C" NOT NULL,
	check_value bytea NOT NULL,
	created_at	timestamptz NOT NULL DEFAULT pg_catalog.now(),
	CONSTRAINT es_master_keys_pkey PRIMARY KEY (master_key)
);
SELECT pg_catalog.pg_extension_config_dump('@extschema@.es_master_keys', '');
REVOKE ALL ON @extschema@.es_master_keys FROM PUBLIC;
COMMENT ON TABLE @extschema@.es_master_keys IS
	'ids of the master keys used, with a check value that recognizes each key';

/* a change resets the caches of every backend */
CREATE FUNCTION @extschema@.es_privacy_changed()
	RETURNS trigger
	AS 'MODULE_PATHNAME', 'es_privacy_changed'
	LANGUAGE C;
CREATE TRIGGER es_protected_types_changed
	AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON @extschema@.es_protected_types
	FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.es_privacy_changed();
ALTER TABLE @extschema@.es_protected_types ENABLE ALWAYS TRIGGER es_protected_types_changed;
CREATE TRIGGER es_subject_keys_changed
	AFTER UPDATE OR DELETE OR TRUNCATE ON @extschema@.es_subject_keys
	FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.es_privacy_changed();
ALTER TABLE @extschema@.es_subject_keys ENABLE ALWAYS TRIGGER es_subject_keys_changed;
REVOKE ALL ON FUNCTION @extschema@.es_privacy_changed() FROM PUBLIC;

CREATE FUNCTION @extschema@.es_protect(event_type text, paths text[],
		subject_path text)
	RETURNS void
	AS 'MODULE_PATHNAME', 'es_protect'
	LANGUAGE C VOLATILE;
COMMENT ON FUNCTION @extschema@.es_protect(text, text[], text) IS
	'encrypt the personal data at paths of an event type with the key of the subject at subject_path';
REVOKE ALL ON FUNCTION @extschema@.es_protect(text, text[], text) FROM PUBLIC;

CREATE FUNCTION @extschema@.es_unprotect(event_type text)
	RETURNS boolean
	AS 'MODULE_PATHNAME', 'es_unprotect'
	LANGUAGE C VOLATILE;
COMMENT ON FUNCTION @extschema@.es_unprotect(text) IS
	'drop the protection of an event type that has no events';
REVOKE ALL ON FUNCTION @extschema@.es_unprotect(text) FROM PUBLIC;

CREATE FUNCTION @extschema@.es_forget_subject(subject text,
		OUT keys_destroyed integer, OUT streams bigint,
		OUT snapshots_removed bigint)
	RETURNS record
	AS 'MODULE_PATHNAME', 'es_forget_subject'
	LANGUAGE C VOLATILE;
COMMENT ON FUNCTION @extschema@.es_forget_subject(text) IS
	'destroy the keys of a data subject and remove the snapshots of its streams';
REVOKE ALL ON FUNCTION @extschema@.es_forget_subject(text) FROM PUBLIC;

CREATE FUNCTION @extschema@.es_rotate_master_key()
	RETURNS bigint
	AS 'MODULE_PATHNAME', 'es_rotate_master_key'
	LANGUAGE C VOLATILE;
COMMENT ON FUNCTION @extschema@.es_rotate_master_key() IS
	'rewrap every subject key under the newest master key of es_pg.master_key_file';
REVOKE ALL ON FUNCTION @extschema@.es_rotate_master_key() FROM PUBLIC;

/* EXECUTE on this function is the right to see plain personal data */
CREATE FUNCTION @extschema@.es_personal_data_access()
	RETURNS boolean
	AS 'MODULE_PATHNAME', 'es_personal_data_access'
	LANGUAGE C STABLE;
COMMENT ON FUNCTION @extschema@.es_personal_data_access() IS
	'whether the current role sees plain personal data; EXECUTE on it is that right';
REVOKE ALL ON FUNCTION @extschema@.es_personal_data_access() FROM PUBLIC;

/* es_privileges_apply knows the kind "personal" */
CREATE OR REPLACE FUNCTION @extschema@.es_privileges_apply(kind text, role regrole,
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
	IF kind NOT IN ('reader', 'appender', 'admin', 'personal') THEN
		RAISE EXCEPTION 'unknown privilege kind "%"', kind
			USING ERRCODE = '22023',
				  HINT = 'The kinds are reader, appender, admin and personal.';
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

/*
 * ---- Async projections on the subscription engine (issue 12) ----
 * Each async projection becomes a subscription whose consumer is its
 * handler (es_subscriptions.projection): one member, the projection's
 * event types, max_attempts from es_pg.projection_retries.  Its member
 * starts at the 0.1.0 checkpoint, so nothing is applied twice or skipped;
 * a projection 0.1.0 had parked retries the event it stopped at.  The last
 * error is carried over.  es_projection_checkpoints and its restore
 * trigger go; es_projection_status reads the member.
 */
DROP VIEW @extschema@.es_projection_status;
INSERT INTO @extschema@.es_subscriptions
	(name, category, event_types, group_size, start_position, max_attempts,
	 lease, created_at, projection)
	SELECT p.name, NULL, p.event_types, 1, c.position,
		   COALESCE(NULLIF(pg_catalog.current_setting('es_pg.projection_retries', true),
						   '')::integer, 3),
		   '30 seconds', p.created_at, p.name
	  FROM @extschema@.es_projections p
	  JOIN @extschema@.es_projection_checkpoints c
		ON c.name OPERATOR(pg_catalog.=) p.name
	 WHERE p.mode OPERATOR(pg_catalog.=) 'async';
INSERT INTO @extschema@.es_subscription_members
	(subscription, member, checkpoint, delivered_to, scanned_to, attempts,
	 last_ack, last_error, last_error_at, error_position, error_sqlstate)
	SELECT p.name, 0, c.position, c.position, c.position, 0,
		   c.updated_at, c.error_message, c.error_at, c.error_position,
		   c.error_sqlstate
	  FROM @extschema@.es_projections p
	  JOIN @extschema@.es_projection_checkpoints c
		ON c.name OPERATOR(pg_catalog.=) p.name
	 WHERE p.mode OPERATOR(pg_catalog.=) 'async';
DROP TABLE @extschema@.es_projection_checkpoints;
DROP FUNCTION @extschema@.es_projection_checkpoints_restore();
COMMENT ON FUNCTION @extschema@.es_resume_projection(text) IS
	'deliver the events an async projection parked to its handler again (es_replay_parked of its subscription)';
/*
 * Where each projection stands, and for async ones their worker.  An
 * async projection's position, retries, last error and parked events are
 * those of its subscription's member (the one mechanism); inline
 * projections are at the head by construction.
 */
CREATE VIEW @extschema@.es_projection_status AS
	SELECT p.name,
		   p.mode,
		   CASE
			   WHEN r.name IS NOT NULL THEN 'rebuilding'
			   WHEN p.mode OPERATOR(pg_catalog.=) 'inline' THEN 'running'
			   WHEN w.state OPERATOR(pg_catalog.=) ANY (ARRAY['failed', 'disabled'])
				 OR (w.state OPERATOR(pg_catalog.=) 'not running'
					 AND m.checkpoint OPERATOR(pg_catalog.<) h.position)
				THEN 'no worker'
			   WHEN m.delivered_to OPERATOR(pg_catalog.>) m.checkpoint
				THEN 'retrying'
			   WHEN m.checkpoint OPERATOR(pg_catalog.>=) h.position THEN 'running'
			   ELSE 'catching up'
		   END AS state,
		   CASE WHEN p.mode OPERATOR(pg_catalog.=) 'inline'
				THEN h.position ELSE m.checkpoint END AS position,
		   h.position AS head_position,
		   CASE WHEN p.mode OPERATOR(pg_catalog.=) 'inline' THEN 0::bigint
				ELSE GREATEST(h.position OPERATOR(pg_catalog.-) m.checkpoint, 0)
		   END AS lag_events,
		   CASE WHEN p.mode OPERATOR(pg_catalog.=) 'inline'
				  OR m.checkpoint OPERATOR(pg_catalog.>=) h.position
				THEN '0'::interval
				ELSE GREATEST(pg_catalog.clock_timestamp() OPERATOR(pg_catalog.-)
					(SELECT e.recorded_at FROM @extschema@.es_events e
					  WHERE e.global_position OPERATOR(pg_catalog.>) m.checkpoint
					  ORDER BY e.global_position LIMIT 1), '0'::interval)
		   END AS lag_time,
		   CASE WHEN pg_catalog.has_table_privilege(
						'@extschema@.es_events'::pg_catalog.regclass, 'SELECT')
				THEN m.last_error END AS last_error,
		   m.error_sqlstate,
		   m.error_position,
		   m.last_error_at AS error_at,
		   CASE WHEN m.delivered_to OPERATOR(pg_catalog.>) m.checkpoint
				THEN m.attempts ELSE 0 END AS retries,
		   COALESCE(m.last_ack, s.created_at, p.created_at) AS updated_at,
		   r.events_done AS rebuild_done,
		   r.events_total AS rebuild_total,
		   p.event_types,
		   p.handler,
		   p.owner,
		   CASE WHEN p.mode OPERATOR(pg_catalog.=) 'async' THEN w.state END
			 AS worker_state,
		   CASE WHEN p.mode OPERATOR(pg_catalog.=) 'async' THEN w.reason END
			 AS worker_reason,
		   CASE WHEN p.mode OPERATOR(pg_catalog.=) 'async' THEN
			 (SELECT pg_catalog.count(*) FROM @extschema@.es_subscription_parked k
			   WHERE k.subscription OPERATOR(pg_catalog.=) p.name)
			 ELSE 0::bigint END AS parked
	  FROM @extschema@.es_projections p
	  LEFT JOIN @extschema@.es_subscriptions s
		ON s.projection OPERATOR(pg_catalog.=) p.name
	  LEFT JOIN @extschema@.es_subscription_members m
		ON m.subscription OPERATOR(pg_catalog.=) s.name
	 CROSS JOIN (SELECT COALESCE((SELECT e.global_position
									FROM @extschema@.es_events e
								   ORDER BY e.global_position DESC LIMIT 1), 0)
						AS position) h
	  LEFT JOIN @extschema@.es_projection_progress() r
		ON r.name OPERATOR(pg_catalog.=) p.name
	 CROSS JOIN @extschema@.es_projection_worker() w;
GRANT SELECT ON @extschema@.es_projection_status TO PUBLIC;
COMMENT ON VIEW @extschema@.es_projection_status IS
	'per projection: mode, state, position reached, head, lag in events and time, last error (to roles that may read events), parked events, and for async ones the worker''s state and why there is none';

/*
 * ---------------------------------------------------------------------
 * The privilege model, made again with every object of 0.2.0 (the same
 * list as sql/src/90_privileges.sql; the projection workers' section
 * dropped it, as it names es_projection_status).
 * ---------------------------------------------------------------------
 */
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
	('reader', 'function', '@extschema@.es_verify(bigint, bigint)'::pg_catalog.regprocedure::pg_catalog.oid, 'EXECUTE'),
	('reader', 'function', '@extschema@.es_read_archived(bigint, bigint, text)'::pg_catalog.regprocedure::pg_catalog.oid, 'EXECUTE'),
	-- reader: category reads and consumers of subscriptions (40_subscription.sql)
	('reader', 'function', '@extschema@.es_read_category(text, bigint, bigint)'::pg_catalog.regprocedure::pg_catalog.oid, 'EXECUTE'),
	('reader', 'function', '@extschema@.es_poll(text, integer, integer, interval, text)'::pg_catalog.regprocedure::pg_catalog.oid, 'EXECUTE'),
	('reader', 'function', '@extschema@.es_ack(text, integer, bigint, text)'::pg_catalog.regprocedure::pg_catalog.oid, 'EXECUTE'),
	('reader', 'function', '@extschema@.es_nack(text, integer, bigint, text, text)'::pg_catalog.regprocedure::pg_catalog.oid, 'EXECUTE'),
	('reader', 'function', '@extschema@.es_release(text, integer, text)'::pg_catalog.regprocedure::pg_catalog.oid, 'EXECUTE'),
	('reader', 'view', '@extschema@.es_subscription_status'::pg_catalog.regclass::pg_catalog.oid, 'SELECT'),
	('reader', 'view', '@extschema@.es_parked_events'::pg_catalog.regclass::pg_catalog.oid, 'SELECT'),
	-- the check of direct inserts: callable by anyone, it only reads this session's state
	('reader', 'function', '@extschema@.es_events_insert_check(bigint)'::pg_catalog.regprocedure::pg_catalog.oid, 'EXECUTE'),
	-- reader: the event type registry
	('reader', 'view', '@extschema@.es_event_registry'::pg_catalog.regclass::pg_catalog.oid, 'SELECT'),
	('reader', 'table', '@extschema@.es_event_types'::pg_catalog.regclass::pg_catalog.oid, 'SELECT'),
	('reader', 'table', '@extschema@.es_upcasters'::pg_catalog.regclass::pg_catalog.oid, 'SELECT'),
	-- appender
	('appender', 'function', '@extschema@.es_append(text, text, jsonb, bigint, jsonb, uuid)'::pg_catalog.regprocedure::pg_catalog.oid, 'EXECUTE'),
	('appender', 'function', '@extschema@.es_append_batch(text, jsonb, bigint)'::pg_catalog.regprocedure::pg_catalog.oid, 'EXECUTE'),
	-- appender: the position of its own appends (40_subscription.sql)
	('appender', 'function', '@extschema@.es_last_position()'::pg_catalog.regprocedure::pg_catalog.oid, 'EXECUTE'),
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
	-- admin: event types and upcasters
	('admin', 'function', '@extschema@.es_register_event_type(text, integer, jsonpath, regprocedure)'::pg_catalog.regprocedure::pg_catalog.oid, 'EXECUTE'),
	('admin', 'function', '@extschema@.es_drop_event_type(text, boolean)'::pg_catalog.regprocedure::pg_catalog.oid, 'EXECUTE'),
	('admin', 'function', '@extschema@.es_create_upcaster(text, integer, regprocedure)'::pg_catalog.regprocedure::pg_catalog.oid, 'EXECUTE'),
	('admin', 'function', '@extschema@.es_drop_upcaster(text, integer, boolean)'::pg_catalog.regprocedure::pg_catalog.oid, 'EXECUTE'),
	-- admin: the seal chain (docs/audit.md)
	('admin', 'function', '@extschema@.es_seal(bigint)'::pg_catalog.regprocedure::pg_catalog.oid, 'EXECUTE'),
	('admin', 'table', '@extschema@.es_seals'::pg_catalog.regclass::pg_catalog.oid, 'SELECT'),
	-- admin: deleted streams
	('admin', 'function', '@extschema@.es_delete_stream(text, bigint, jsonb)'::pg_catalog.regprocedure::pg_catalog.oid, 'EXECUTE'),
	('admin', 'table', '@extschema@.es_tombstones'::pg_catalog.regclass::pg_catalog.oid, 'SELECT'),
	-- admin: archiving
	('admin', 'function', '@extschema@.es_archive(bigint, name, boolean)'::pg_catalog.regprocedure::pg_catalog.oid, 'EXECUTE'),
	('admin', 'table', '@extschema@.es_archived_events'::pg_catalog.regclass::pg_catalog.oid, 'SELECT'),
	('admin', 'table', '@extschema@.es_archives'::pg_catalog.regclass::pg_catalog.oid, 'SELECT'),
	-- admin: subscriptions (40_subscription.sql)
	('admin', 'function', '@extschema@.es_create_subscription(text, text, text[], integer, bigint, integer, interval, boolean)'::pg_catalog.regprocedure::pg_catalog.oid, 'EXECUTE'),
	('admin', 'function', '@extschema@.es_drop_subscription(text, boolean)'::pg_catalog.regprocedure::pg_catalog.oid, 'EXECUTE'),
	('admin', 'function', '@extschema@.es_replay_parked(text, integer, bigint)'::pg_catalog.regprocedure::pg_catalog.oid, 'EXECUTE'),
	('admin', 'table', '@extschema@.es_subscriptions'::pg_catalog.regclass::pg_catalog.oid, 'SELECT'),
	('admin', 'table', '@extschema@.es_subscription_members'::pg_catalog.regclass::pg_catalog.oid, 'SELECT'),
	('admin', 'table', '@extschema@.es_subscription_parked'::pg_catalog.regclass::pg_catalog.oid, 'SELECT'),
	-- admin: crypto-shredding (55_privacy.sql)
	('admin', 'function', '@extschema@.es_protect(text, text[], text)'::pg_catalog.regprocedure::pg_catalog.oid, 'EXECUTE'),
	('admin', 'function', '@extschema@.es_unprotect(text)'::pg_catalog.regprocedure::pg_catalog.oid, 'EXECUTE'),
	('admin', 'function', '@extschema@.es_forget_subject(text)'::pg_catalog.regprocedure::pg_catalog.oid, 'EXECUTE'),
	('admin', 'function', '@extschema@.es_rotate_master_key()'::pg_catalog.regprocedure::pg_catalog.oid, 'EXECUTE'),
	-- reader: which types are protected
	('reader', 'table', '@extschema@.es_protected_types'::pg_catalog.regclass::pg_catalog.oid, 'SELECT'),
	-- personal: plain personal data through every read path
	('personal', 'function', '@extschema@.es_personal_data_access()'::pg_catalog.regprocedure::pg_catalog.oid, 'EXECUTE'),
	-- owner only
	('owner', 'table', '@extschema@.es_subject_keys'::pg_catalog.regclass::pg_catalog.oid, NULL),
	('owner', 'table', '@extschema@.es_master_keys'::pg_catalog.regclass::pg_catalog.oid, NULL),
	('owner', 'sequence', '@extschema@.es_subject_keys_key_id_seq'::pg_catalog.regclass::pg_catalog.oid, NULL),
	('owner', 'function', '@extschema@.es_privacy_changed()'::pg_catalog.regprocedure::pg_catalog.oid, NULL),
	('owner', 'sequence', '@extschema@.es_events_position_seq'::pg_catalog.regclass::pg_catalog.oid, NULL),
	('owner', 'function', '@extschema@.es_events_append_only()'::pg_catalog.regprocedure::pg_catalog.oid, NULL),
	('owner', 'function', '@extschema@.es_events_insert_guard()'::pg_catalog.regprocedure::pg_catalog.oid, NULL),
	('owner', 'function', '@extschema@.es_ddl_guard()'::pg_catalog.regprocedure::pg_catalog.oid, NULL),
	('owner', 'function', '@extschema@.es_projections_changed()'::pg_catalog.regprocedure::pg_catalog.oid, NULL),
	('owner', 'function', '@extschema@.es_dispatch_inline()'::pg_catalog.regprocedure::pg_catalog.oid, NULL),
	('owner', 'function', '@extschema@.es_projection_sql_drop()'::pg_catalog.regprocedure::pg_catalog.oid, NULL),
	('owner', 'function', '@extschema@.es_subscription_members_restore()'::pg_catalog.regprocedure::pg_catalog.oid, NULL),
	('owner', 'function', '@extschema@.es_event_registry_changed()'::pg_catalog.regprocedure::pg_catalog.oid, NULL),
	('owner', 'function', '@extschema@.es_evolution_sql_drop()'::pg_catalog.regprocedure::pg_catalog.oid, NULL),
	('owner', 'function', '@extschema@.es_audit_append_only()'::pg_catalog.regprocedure::pg_catalog.oid, NULL),
	('owner', 'function', '@extschema@.es_archives_changed()'::pg_catalog.regprocedure::pg_catalog.oid, NULL),
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
