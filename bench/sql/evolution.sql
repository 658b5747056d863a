/*
 * bench/sql/evolution.sql: the registry states of the schema evolution
 * workloads (issue 13).  bench.evolution(mode) leaves exactly one of them:
 *
 *	none		no event type registered, no upcaster
 *	other		an upcaster for another type only (EvoOther v1 -> v2):
 *				reads of MoneyDeposited take the per-event path, no upcaster
 *				applies
 *	upcast		MoneyDeposited at version 2 with a one-step SQL upcaster:
 *				every stored (version 1) MoneyDeposited is upcast on read
 *	validator	MoneyDeposited at version 1 with a simple jsonpath validator:
 *				every append is validated
 */
CREATE FUNCTION bench.evo_md_v2(e es_events) RETURNS es_events
LANGUAGE sql IMMUTABLE AS $$
	SELECT (e.global_position, e.stream_id, e.version, e.event_id, e.event_type,
			jsonb_build_object('amount', jsonb_build_object('value', e.data->'amount',
															'currency', 'EUR')),
			e.metadata, e.recorded_at, e.schema_version)::es_events $$;
CREATE FUNCTION bench.evo_other_v2(e es_events) RETURNS es_events
LANGUAGE sql IMMUTABLE AS $$SELECT e$$;

CREATE FUNCTION bench.evolution(mode text) RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
	PERFORM es_drop_upcaster('MoneyDeposited', 1, true), es_drop_upcaster('EvoOther', 1, true);
	PERFORM es_drop_event_type('MoneyDeposited', true), es_drop_event_type('EvoOther', true);
	IF mode = 'other' THEN
		PERFORM es_register_event_type('EvoOther', 2);
		PERFORM es_create_upcaster('EvoOther', 1, 'bench.evo_other_v2(es_events)');
	ELSIF mode = 'upcast' THEN
		PERFORM es_register_event_type('MoneyDeposited', 2);
		PERFORM es_create_upcaster('MoneyDeposited', 1, 'bench.evo_md_v2(es_events)');
	ELSIF mode = 'validator' THEN
		PERFORM es_register_event_type('MoneyDeposited', 1, '$.amount > 0');
	ELSIF mode <> 'none' THEN
		RAISE EXCEPTION 'unknown mode %', mode;
	END IF;
	RETURN mode;
END $$;
