
/*
 * 40_subscription.sql: events out of the database.  The position of an
 * append, category reads and subscriptions with consumer groups
 * (src/category.c, src/subscription.c, src/subwait.c,
 * docs/subscriptions.md).
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
 * projection is a subscription whose consumer is its handler: its row
 * names the projection (projection = name, one member, the projection's
 * event types), the worker applies it through the same member row and
 * parked events (src/projapply.c), and the consumer API refuses it.
 * Subscriptions and async projections share one name space.
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
