-- es_read_all: the global feed, paged
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS es_pg;
RESET client_min_messages;

-- positions before this test
SELECT es_head_position() AS start \gset
SELECT set_config('es.start', :'start', false) IS NOT NULL AS set;

SELECT es_append('feed-a', 'A1', '{}');
SELECT es_append('feed-b', 'B1', '{}');
SELECT es_append_batch('feed-a', '[{"type": "A2", "data": {}}, {"type": "A3", "data": {}}]');
SELECT es_append('feed-c', 'C1', '{}');

-- everything after the start, in position order
SELECT global_position - :start AS pos, stream_id, version, event_type
  FROM es_read_all(:start);

-- paging two at a time, always from the last position seen, reaches
-- every event exactly once
CREATE TEMP TABLE seen (global_position bigint, event_type text);
DO $$
DECLARE
	last bigint := current_setting('es.start')::bigint;
	n int;
BEGIN
	LOOP
		INSERT INTO seen SELECT global_position, event_type FROM es_read_all(last, 2);
		GET DIAGNOSTICS n = ROW_COUNT;
		EXIT WHEN n = 0;
		SELECT max(global_position) INTO last FROM seen;
	END LOOP;
END $$;
SELECT count(*) AS seen, count(DISTINCT global_position) AS distinct_positions,
	   string_agg(event_type, ',' ORDER BY global_position) AS order_seen
  FROM seen;

-- max_count, the head, and the end of the feed
SELECT count(*) FROM es_read_all(:start, 3);
SELECT count(*) FROM es_read_all(:start, 0);
SELECT count(*) FROM es_read_all(:start, NULL);
SELECT es_head_position() - :start AS head;
SELECT count(*) FROM es_read_all(es_head_position());

-- an aborted append leaves a gap in positions that the feed steps over
BEGIN;
SELECT es_append('feed-aborted', 'X', '{}') AS v;
ROLLBACK;
SELECT es_append('feed-d', 'D1', '{}');
SELECT global_position - :start AS pos, event_type FROM es_read_all(:start)
 ORDER BY global_position;

-- the caller's own uncommitted appends are visible to it
BEGIN;
SELECT es_append('feed-e', 'E1', '{}');
SELECT event_type FROM es_read_all(:start) WHERE stream_id = 'feed-e';
ROLLBACK;

-- bad arguments
\set VERBOSITY sqlstate
SELECT * FROM es_read_all(-1);
SELECT * FROM es_read_all(0, -1);
\set VERBOSITY default
-- NULL from_position means from the start
SELECT count(*) > 0 AS from_start FROM es_read_all(NULL, 1);
