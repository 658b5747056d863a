
/*
 * 30_evolution.sql: event schema evolution: the event type registry,
 * validation at append and upcasters (src/evolution.c, src/evoladmin.c,
 * docs/schema-evolution.md).
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
