-- one page of 1,000 events of the global feed (plain ordered SELECT)
\set x random(0, :feed_len - 1000)
SELECT * FROM bench.ref_events WHERE global_position > :x
 ORDER BY global_position LIMIT 1000;
