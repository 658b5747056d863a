/*
 * bench/sql/apply_latency.sql: the append-to-apply latency workload.  An
 * async projection (from the head, on event type 'Lat' only) whose handler
 * notes when it ran; the latency of an event is that moment less the
 * event's recorded_at (the clock when es_append inserted it, a little
 * before its commit, so the figure errs on the high side).
 */
\set ON_ERROR_STOP on
CREATE TABLE bench.lat_seen (event_id uuid PRIMARY KEY,
							 applied_at timestamptz NOT NULL);
CREATE FUNCTION bench.lat_apply(event es_events) RETURNS void
LANGUAGE sql AS $$
	INSERT INTO bench.lat_seen VALUES (event.event_id, pg_catalog.clock_timestamp())
$$;
SELECT es_create_projection('bench_latency', 'bench.lat_apply(es_events)',
	ARRAY['Lat'], 'async', NULL, false);

-- lat_stats(prefix): p50, p99 and max in ms of the events of the streams
-- starting with prefix, once all are applied
CREATE FUNCTION bench.lat_stats(prefix text, OUT n bigint, OUT p50 float8,
		OUT p99 float8, OUT max float8)
LANGUAGE sql AS $$
	SELECT count(*),
		   percentile_cont(0.5) WITHIN GROUP (ORDER BY ms),
		   percentile_cont(0.99) WITHIN GROUP (ORDER BY ms),
		   max(ms)
	  FROM (SELECT extract(epoch FROM s.applied_at - e.recorded_at) * 1000 AS ms
			  FROM es_events e JOIN bench.lat_seen s USING (event_id)
			 WHERE e.stream_id LIKE prefix || '%') d
$$;
