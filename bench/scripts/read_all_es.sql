-- one page of 1,000 events of the global feed (es_pg)
\set x random(0, :feed_len - 1000)
SELECT * FROM es_read_all(:x, 1000);
