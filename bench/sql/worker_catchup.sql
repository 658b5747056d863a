/*
 * bench/sql/worker_catchup.sql: commit a backlog of :backlog events, then
 * wait until the projection worker has applied it to every projection of
 * bench.projection_defs.  Prints "elapsed SECONDS" from the commit to the
 * moment the last projection reached the head.
 */
\set ON_ERROR_STOP on
SELECT bench.make_backlog(:backlog, :streams) \gset
SELECT max(global_position) AS head, clock_timestamp() AS t0 FROM es_events \gset
SELECT bool_and(es_wait_for_projection(name, :head, '120 s')) AS done
  FROM bench.projection_defs \gset
\if :done
SELECT 'elapsed ' || extract(epoch FROM clock_timestamp() - :'t0'::timestamptz);
\else
\echo the worker did not catch up within two minutes
SELECT 1 / 0;
\endif
