-- one event to a stream of its own run for the latency workload (es_pg)
\set sid :client_id + :nclients * random(0, 999)
SELECT es_append('lat-' || :run || '-' || :sid, 'Lat', '{}');
