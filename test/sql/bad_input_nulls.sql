-- bad input: a NULL in every argument of every function of es_pg.  A NULL
-- either has a documented meaning (no check, no limit, from the start) or
-- is refused with 22004; nothing is written and no position is used.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS es_pg;
DROP ROLE IF EXISTS regress_es_nulls;
RESET client_min_messages;
CREATE ROLE regress_es_nulls;
SELECT es_append('nul-1', 'Created', '{}') AS v;
CREATE FUNCTION nul_reducer(state jsonb, event es_events) RETURNS jsonb
	LANGUAGE sql AS $$SELECT state || jsonb_build_object('v', event.version)$$;
CREATE FUNCTION nul_handler(e es_events) RETURNS void LANGUAGE sql AS $$SELECT$$;
CREATE FUNCTION nul_reset() RETURNS void LANGUAGE sql AS $$SELECT$$;
SELECT es_create_projection('nul_proj', 'nul_handler(es_events)', NULL, 'async', 'nul_reset()', false);
CREATE FUNCTION nul_upcaster(e es_events) RETURNS es_events LANGUAGE sql AS $$SELECT e$$;
CREATE FUNCTION nul_validator(data jsonb, metadata jsonb) RETURNS boolean
	LANGUAGE sql AS $$SELECT true$$;
SELECT es_register_event_type('NulT', 2), es_register_event_type('NulT2', 1),
	   es_create_upcaster('NulT', 1, 'nul_upcaster(es_events)');
SELECT es_create_subscription('nul_sub', start_position => es_head_position() - 1);
SELECT count(*) FROM es_poll('nul_sub');

-- valid arguments for each function, and what a NULL in each place gives
CREATE TEMP TABLE fn_cases (fn regprocedure, args text[], want text[]);
INSERT INTO fn_cases VALUES
	('es_append(text,text,jsonb,bigint,jsonb,uuid)',
	 ARRAY[$$'nul-1'$$, $$'T'$$, $$'{}'$$, '-1', $$'{}'$$, 'gen_random_uuid()'],
	 ARRAY['22004', '22004', '22004', 'ok', 'ok', 'ok']),
	('es_append_batch(text,jsonb,bigint)',
	 ARRAY[$$'nul-1'$$, $$'[{"type": "T", "data": {}}]'$$, '-1'],
	 ARRAY['22004', '22004', 'ok']),
	('es_read_stream(text,bigint,bigint)',
	 ARRAY[$$'nul-1'$$, '0', '10'],
	 ARRAY['22004', 'ok', 'ok']),
	('es_read_stream_backward(text,bigint,bigint)',
	 ARRAY[$$'nul-1'$$, '2', '10'],
	 ARRAY['22004', 'ok', 'ok']),
	('es_stream_version(text)', ARRAY[$$'nul-1'$$], ARRAY['22004']),
	('es_read_all(bigint,bigint)', ARRAY['es_head_position() - 1', '1'], ARRAY['ok', 'ok']),
	('es_head_position()', ARRAY[]::text[], ARRAY['ok']),
	-- snapshots
	('es_save_snapshot(text,bigint,jsonb,regprocedure)',
	 ARRAY[$$'nul-1'$$, '1', $$'{}'$$, $$'nul_reducer(jsonb,es_events)'$$],
	 ARRAY['22004', '22004', '22004', 'ok']),
	('es_load_snapshot(text)', ARRAY[$$'nul-1'$$], ARRAY['22004']),
	('es_load_snapshot(text,regprocedure)', ARRAY[$$'nul-1'$$, $$'nul_reducer(jsonb,es_events)'$$],
	 ARRAY['22004', 'ok']),
	('es_aggregate(text,regprocedure,jsonb,bigint,timestamp with time zone)',
	 ARRAY[$$'nul-1'$$, $$'nul_reducer(jsonb,es_events)'$$, $$'{}'$$, '1', 'now()'],
	 ARRAY['22004', '22004', '22004', 'ok', 'ok']),
	('es_set_snapshot_policy(regprocedure,integer)', ARRAY[$$'nul_reducer(jsonb,es_events)'$$, '10'],
	 ARRAY['22004', '22004']),
	('es_drop_snapshot_policy(regprocedure)', ARRAY[$$'nul_reducer(jsonb,es_events)'$$], ARRAY['22004']),
	('es_drop_snapshots(regprocedure,text)', ARRAY[$$'nul_reducer(jsonb,es_events)'$$, $$'nul-1'$$],
	 ARRAY['ok', 'ok']),
	-- projections
	('es_create_projection(text,regprocedure,text[],text,regprocedure,boolean)',
	 ARRAY[$$'nul_proj_2'$$, $$'nul_handler(es_events)'$$, $$'{T}'$$, $$'async'$$, $$'nul_reset()'$$, 'false'],
	 ARRAY['22004', '22004', 'ok', '22004', 'ok', '22004']),
	('es_create_projection_if_not_exists(text,regprocedure,text[],text,regprocedure,boolean)',
	 ARRAY[$$'nul_proj_3'$$, $$'nul_handler(es_events)'$$, $$'{T}'$$, $$'async'$$, $$'nul_reset()'$$, 'false'],
	 ARRAY['22004', '22004', 'ok', '22004', 'ok', '22004']),
	('es_drop_projection(text)', ARRAY[$$'nul_proj'$$], ARRAY['22004']),
	('es_rebuild_projection(text)', ARRAY[$$'nul_proj'$$], ARRAY['22004']),
	('es_apply_projections(text,bigint)', ARRAY[$$'nul_proj'$$, '10'], ARRAY['ok', 'ok']),
	('es_resume_projection(text)', ARRAY[$$'nul_proj'$$], ARRAY['22004']),
	('es_set_projection_timeout(text,interval)', ARRAY[$$'nul_proj'$$, $$'1 s'$$],
	 ARRAY['22004', 'ok']),
	('es_start_projection_worker()', ARRAY[]::text[], ARRAY['ok']),
	('es_wait_for_projection(text,bigint,interval)', ARRAY[$$'nul_proj'$$, '0', $$'0 s'$$],
	 ARRAY['22004', '22004', '22004']),
	('es_projection_progress()', ARRAY[]::text[], ARRAY['ok']),
	('es_projection_worker()', ARRAY[]::text[], ARRAY['ok']),
	('es_projections_changed()', ARRAY[]::text[], ARRAY['42804']),
	('es_dispatch_inline()', ARRAY[]::text[], ARRAY['42804']),
	('es_projection_sql_drop()', ARRAY[]::text[], ARRAY['42804']),
	('es_subscription_members_restore()', ARRAY[]::text[], ARRAY['42804']),
	-- the seal chain
	('es_seal(bigint)', ARRAY['10'], ARRAY['ok']),
	('es_verify(bigint,bigint)', ARRAY['0', '100'], ARRAY['ok', 'ok']),
	('es_audit_append_only()', ARRAY[]::text[], ARRAY['42804']),
	('es_archive(bigint,name,boolean)', ARRAY['100', $$'pg_default'$$, 'false'],
	 ARRAY['ok', 'ok', '22004']),
	('es_read_archived(bigint,bigint,text)', ARRAY['0', '10', $$'nul-1'$$],
	 ARRAY['ok', 'ok', 'ok']),
	('es_archives_changed()', ARRAY[]::text[], ARRAY['42804']),
	('es_delete_stream(text,bigint,jsonb)', ARRAY[$$'nul-1'$$, '1', $$'{}'$$],
	 ARRAY['22004', 'ok', 'ok']),
	-- positions, categories and subscriptions
	('es_last_position()', ARRAY[]::text[], ARRAY['null']),
	('es_read_category(text,bigint,bigint)', ARRAY[$$'nul'$$, '0', '10'],
	 ARRAY['22004', 'ok', 'ok']),
	('es_create_subscription(text,text,text[],integer,bigint,integer,interval,boolean)',
	 ARRAY[$$'nul_sub_2'$$, $$'nul'$$, $$'{Created}'$$, '2', '0', '3', $$'1 min'$$, 'false'],
	 ARRAY['22004', 'ok', 'ok', 'ok', 'ok', 'ok', 'ok', 'ok']),
	('es_drop_subscription(text,boolean)', ARRAY[$$'nul_sub'$$, 'false'],
	 ARRAY['22004', 'ok']),
	('es_poll(text,integer,integer,interval,text)',
	 ARRAY[$$'nul_sub'$$, '0', '10', $$'0 s'$$, $$'c'$$],
	 ARRAY['22004', 'ok', 'ok', 'ok', 'ok']),
	('es_ack(text,integer,bigint,text)',
	 ARRAY[$$'nul_sub'$$, '0', 'es_head_position()', $$'c'$$],
	 ARRAY['22004', '22004', '22004', 'ok']),
	('es_nack(text,integer,bigint,text,text)',
	 ARRAY[$$'nul_sub'$$, '0', 'es_head_position()', $$'e'$$, $$'c'$$],
	 ARRAY['22004', '22004', '22004', 'ok', 'ok']),
	('es_release(text,integer,text)', ARRAY[$$'nul_sub'$$, '0', $$'c'$$],
	 ARRAY['22004', '22004', '22004']),
	('es_replay_parked(text,integer,bigint)', ARRAY[$$'nul_sub'$$, '0', '1'],
	 ARRAY['22004', 'ok', 'ok']),
	-- privileges
	('es_privileges_apply(text,regrole,boolean)',
	 ARRAY[$$'reader'$$, $$'regress_es_nulls'$$, 'true'],
	 ARRAY['22004', '22004', '22004']),
	('es_grant_reader(regrole)', ARRAY[$$'regress_es_nulls'$$], ARRAY['22004']),
	('es_grant_appender(regrole)', ARRAY[$$'regress_es_nulls'$$], ARRAY['22004']),
	('es_grant_admin(regrole)', ARRAY[$$'regress_es_nulls'$$], ARRAY['22004']),
	('es_revoke_reader(regrole)', ARRAY[$$'regress_es_nulls'$$], ARRAY['22004']),
	('es_revoke_appender(regrole)', ARRAY[$$'regress_es_nulls'$$], ARRAY['22004']),
	('es_revoke_admin(regrole)', ARRAY[$$'regress_es_nulls'$$], ARRAY['22004']),
	-- trigger functions cannot be called at all
	('es_events_append_only()', ARRAY[]::text[], ARRAY['42804']),
	('es_events_insert_guard()', ARRAY[]::text[], ARRAY['42804']),
	-- the check of direct inserts: NULL passes (NOT NULL reports the row)
	('es_events_insert_check(bigint)', ARRAY['1'], ARRAY['null']),
	-- schema evolution
	('es_register_event_type(text,integer,jsonpath,regprocedure)',
	 ARRAY[$$'NulT2'$$, '1', $$'$.x'$$, $$'nul_validator(jsonb,jsonb)'$$],
	 ARRAY['22004', '22004', 'ok', 'ok']),
	('es_drop_event_type(text,boolean)', ARRAY[$$'NulT2'$$, 'false'],
	 ARRAY['22004', '22004']),
	('es_create_upcaster(text,integer,regprocedure)',
	 ARRAY[$$'NulT'$$, '1', $$'nul_upcaster(es_events)'$$],
	 ARRAY['22004', '22004', '22004']),
	('es_drop_upcaster(text,integer,boolean)', ARRAY[$$'NulT'$$, '1', 'false'],
	 ARRAY['22004', '22004', '22004']),
	('es_event_registry_changed()', ARRAY[]::text[], ARRAY['42804']),
	('es_evolution_sql_drop()', ARRAY[]::text[], ARRAY['42804']),
	('es_ddl_guard()', ARRAY[]::text[], ARRAY['42804']),
	-- crypto-shredding
	('es_protect(text,text[],text)', ARRAY[$$'NulP'$$, $$'{$.a}'$$, $$'$.id'$$],
	 ARRAY['22004', '22004', '22004']),
	('es_unprotect(text)', ARRAY[$$'NulP'$$], ARRAY['22004']),
	('es_forget_subject(text)', ARRAY[$$'nul-subject'$$], ARRAY['22004']),
	('es_rotate_master_key()', ARRAY[]::text[], ARRAY['ok']),
	('es_personal_data_access()', ARRAY[]::text[], ARRAY['ok']),
	('es_privacy_changed()', ARRAY[]::text[], ARRAY['42804']);

-- every function of the extension is in the list above
SELECT p.oid::regprocedure AS function_without_null_cases
  FROM pg_proc p
  JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid
	AND d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
	AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'es_pg')
 WHERE p.oid NOT IN (SELECT fn FROM fn_cases)
 ORDER BY 1;

-- one call per argument, with NULL (of the argument's type) in its place;
-- zero-argument functions are called once as they are (trigger functions
-- refuse: 42804).  Each call is rolled back afterwards.  "null": the call
-- returned NULL and did nothing (STRICT functions).
CREATE TEMP TABLE cases AS
SELECT row_number() OVER (ORDER BY f.fn::text, a.i) AS n,
	   f.fn::text || CASE WHEN a.i IS NULL THEN '' ELSE ' arg ' || a.i END AS label,
	   format('SELECT * FROM %s(%s)', p.proname,
			  (SELECT string_agg(CASE WHEN j = a.i
									  THEN 'NULL::' || format_type(p.proargtypes[j - 1], NULL)
									  ELSE f.args[j] || '::' || format_type(p.proargtypes[j - 1], NULL)
								 END, ', ' ORDER BY j)
				 FROM generate_series(1, p.pronargs) j)) AS sql,
	   f.want[coalesce(a.i, 1)] AS want
  FROM fn_cases f
  JOIN pg_proc p ON p.oid = f.fn
  CROSS JOIN LATERAL (SELECT i FROM generate_series(1, p.pronargs) i
					  UNION ALL SELECT NULL WHERE p.pronargs = 0) a;

-- the harness: run each case, then report the SQLSTATE (or ok and the
-- number of rows), and whether rows or positions were written by a case
-- that failed
CREATE FUNCTION pg_temp.run_cases() RETURNS TABLE (label text, got text, verdict text)
LANGUAGE plpgsql AS $$
DECLARE
	c record;
	nrows bigint;
	all_null boolean;
	ev_before bigint;
	ev_after bigint;
	pos_before bigint;
	pos_after bigint;
BEGIN
	FOR c IN SELECT * FROM cases ORDER BY n LOOP
		SELECT count(*) INTO ev_before FROM es_events;
		SELECT last_value + is_called::int INTO pos_before FROM es_events_position_seq;
		BEGIN
			EXECUTE 'SELECT count(*), bool_and(q IS NULL) FROM (' || c.sql || ') q'
				INTO nrows, all_null;
			-- undo what it did, so that every case starts from the same state
			RAISE EXCEPTION USING ERRCODE = 'ZZ000';
		EXCEPTION WHEN OTHERS THEN
			GET STACKED DIAGNOSTICS got = RETURNED_SQLSTATE;
		END;
		SELECT count(*) INTO ev_after FROM es_events;
		SELECT last_value + is_called::int INTO pos_after FROM es_events_position_seq;
		IF got = 'ZZ000' THEN
			got := CASE WHEN nrows = 1 AND all_null THEN 'null' ELSE 'ok' END;
		END IF;
		label := c.label;
		verdict := CASE
			WHEN got <> c.want THEN 'WRONG: want ' || c.want
			WHEN got NOT IN ('ok', 'null') AND (ev_after <> ev_before OR pos_after <> pos_before)
				THEN 'WRONG: wrote ' || (ev_after - ev_before) || ' rows, '
					 || (pos_after - pos_before) || ' positions'
			ELSE 'ok' END;
		IF got = 'ok' THEN
			got := 'ok, ' || nrows || ' row' || CASE WHEN nrows = 1 THEN '' ELSE 's' END;
		END IF;
		RETURN NEXT;
	END LOOP;
END $$;

SELECT * FROM pg_temp.run_cases();
SELECT count(*) AS null_cases_tried FROM cases;

SELECT es_revoke_reader('regress_es_nulls');
DROP ROLE regress_es_nulls;
SELECT es_drop_snapshots('nul_reducer(jsonb,es_events)'), es_drop_snapshots(NULL, 'nul-1');
DROP FUNCTION nul_reducer(jsonb, es_events);
SELECT es_drop_projection('nul_proj');
SELECT es_drop_subscription('nul_sub');
DROP FUNCTION nul_handler(es_events);
DROP FUNCTION nul_reset();
SELECT es_drop_upcaster('NulT', 1), es_drop_event_type('NulT'),
	   es_drop_event_type('NulT2');
DROP FUNCTION nul_upcaster(es_events);
DROP FUNCTION nul_validator(jsonb, jsonb);
