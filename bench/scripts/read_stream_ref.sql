-- read a whole 1,000-event stream (plain indexed SELECT)
\set r random(1, :read_count)
SELECT * FROM bench.ref_events WHERE stream_id = 'read-' || :r ORDER BY version;
