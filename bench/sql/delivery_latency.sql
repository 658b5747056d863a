-- The consumer of the append-to-delivery latency workload: long-polls the
-- subscription bench_lat for :dur seconds and records, for each event it
-- receives, the time from its append (recorded_at) to its delivery.
-- psql variables: dur.
SELECT set_config('bench.dur', :'dur', false);
DO $$
DECLARE
	t_end timestamptz := clock_timestamp() + make_interval(secs => current_setting('bench.dur')::int);
	p bigint;
BEGIN
	WHILE clock_timestamp() < t_end LOOP
		WITH got AS (
			INSERT INTO bench.delivery_lat
			SELECT global_position, clock_timestamp() - recorded_at
			  FROM es_poll('bench_lat', 0, 1000, '1 s')
			RETURNING global_position)
		SELECT max(global_position) INTO p FROM got;
		IF p IS NOT NULL THEN
			PERFORM es_ack('bench_lat', 0, p);
		END IF;
	END LOOP;
END $$;
