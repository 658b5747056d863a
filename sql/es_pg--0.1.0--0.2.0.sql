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
 * change them as the tables' owner (src/subscription.c).  A subscription
 * with a handler (an async projection, later) would be one more column of
 * es_subscriptions; the member rows are the same.
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
	CONSTRAINT es_subscriptions_pkey PRIMARY KEY (name),
	CONSTRAINT es_subscriptions_group_size_check
		CHECK (group_size BETWEEN 1 AND 1024),
	CONSTRAINT es_subscriptions_start_position_check
		CHECK (start_position >= 0),
	CONSTRAINT es_subscriptions_max_attempts_check
		CHECK (max_attempts BETWEEN 1 AND 1000000),
	CONSTRAINT es_subscriptions_lease_check
		CHECK (lease > '0'::interval)
);
SELECT pg_catalog.pg_extension_config_dump('@extschema@.es_subscriptions', '');
REVOKE ALL ON @extschema@.es_subscriptions FROM PUBLIC;
COMMENT ON TABLE @extschema@.es_subscriptions IS
	'subscriptions: a filter on the global feed, read by a consumer group';
COMMENT ON COLUMN @extschema@.es_subscriptions.category IS
	'the category whose streams it delivers; NULL: every stream';
COMMENT ON COLUMN @extschema@.es_subscriptions.event_types IS
	'the event types it delivers; NULL: every type';
COMMENT ON COLUMN @extschema@.es_subscriptions.group_size IS
	'members of the consumer group; a stream goes to member hash(stream_id) mod group_size';

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
		recorded_at timestamptz, attempt integer)
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
		   s.event_types
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

