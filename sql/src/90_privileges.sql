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
 *				tables; protects event types and forgets data subjects
 *	personal	what a reader may do; sees the personal data of protected
 *				event types in plain text (docs/privacy.md)
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
 * grants "reader" too, and so does granting "personal".  Revoking "appender" or "admin" takes away what the
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
