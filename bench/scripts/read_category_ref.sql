-- one page of 1,000 events of the category "account" (plain ordered SELECT
-- on an index of the same expression)
\set x random(0, :feed_len - 1000)
SELECT * FROM bench.ref_events
 WHERE split_part(stream_id, '-', 1) = 'account' AND global_position > :x
 ORDER BY split_part(stream_id, '-', 1), global_position LIMIT 1000;
