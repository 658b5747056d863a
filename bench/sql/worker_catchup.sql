/*
 * bench/sql/worker_catchup.sql: commit a backlog of :backlog events, then
 * wait until the projection worker has applied it to every projection of
 * bench.projection_defs.  Prints "elapsed SECONDS" from the commit to the
 * moment the last projection reached the head.
 *
 * The wait is a loop of short es_wait_for_projection calls with a COMMIT
 * between them: one long wait would hold a snapshot the whole time, and
 * that snapshot would keep the read models' old row versions from being
 * pruned while the worker updates them (see docs/benchmarks.md).
 */
\set ON_ERROR_STOP on
SELECT bench.make_backlog(:backlog, :streams) \gset
SELECT max(global_position) AS head, clock_timestamp() AS t0 FROM es_events \gset
SELECT set_config('bench.head', :'head', false) \gset
DO $$
DECLARE
	deadline timestamptz := clock_timestamp() + interval '120 s';
	done boolean;
BEGIN
	LOOP
		SELECT bool_and(es_wait_for_projection(name,
				current_setting('bench.head')::bigint, '50 ms')) INTO done
		  FROM bench.projection_defs;
		EXIT WHEN done;
		IF clock_timestamp() > deadline THEN
			RAISE EXCEPTION 'the worker did not catch up within two minutes';
		END IF;
		COMMIT;
	END LOOP;
END
$$;
SELECT 'elapsed ' || extract(epoch FROM clock_timestamp() - :'t0'::timestamptz);
