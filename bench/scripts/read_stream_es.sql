-- read a whole 1,000-event stream (es_pg)
\set r random(1, :read_count)
SELECT * FROM es_read_stream('read-' || :r);
