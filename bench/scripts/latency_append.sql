-- single-event appends to the category "lat", for the append-to-delivery
-- latency (run at a fixed rate with pgbench -R)
\set s random(1, 100)
SELECT es_append('lat-' || :s, 'LatencyProbe', '{}');
