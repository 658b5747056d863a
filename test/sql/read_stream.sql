-- es_read_stream, es_read_stream_backward, es_stream_version
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS es_pg;
RESET client_min_messages;

SELECT es_append_batch('read-1',
	(SELECT jsonb_agg(jsonb_build_object('type', 'E' || i, 'data', jsonb_build_object('n', i))
					  ORDER BY i)
	   FROM generate_series(1, 10) i));
SELECT es_append('read-other', 'X', '{}');

-- forward: everything, after a version, at most max_count
SELECT version, event_type FROM es_read_stream('read-1');
SELECT version FROM es_read_stream('read-1', 7);
SELECT version FROM es_read_stream('read-1', 2, 3);
SELECT version FROM es_read_stream('read-1', from_version => 9, max_count => 100);
SELECT count(*) FROM es_read_stream('read-1', 10);
SELECT count(*) FROM es_read_stream('read-1', 0, 0);
SELECT count(*) FROM es_read_stream('read-missing');

-- backward: newest first, before a version
SELECT version FROM es_read_stream_backward('read-1');
SELECT version FROM es_read_stream_backward('read-1', 4);
SELECT version FROM es_read_stream_backward('read-1', NULL, 2);
SELECT version FROM es_read_stream_backward('read-1', 1);

-- rows have the es_events row type
SELECT (e).stream_id, (e).version, (e).data
  FROM (SELECT e FROM es_read_stream('read-1', 9) e) s;

-- the version of a stream
SELECT es_stream_version('read-1'), es_stream_version('read-other'),
	   es_stream_version('read-missing');

-- bad arguments
\set VERBOSITY sqlstate
SELECT * FROM es_read_stream(NULL);
SELECT * FROM es_read_stream('read-1', -1);
SELECT * FROM es_read_stream('read-1', 0, -1);
SELECT * FROM es_read_stream_backward(NULL);
SELECT * FROM es_read_stream_backward('read-1', -5);
SELECT * FROM es_read_stream_backward('read-1', NULL, -1);
SELECT es_stream_version(NULL);
\set VERBOSITY default
-- NULL from_version means from the start; NULL max_count means no limit
SELECT count(*) FROM es_read_stream('read-1', NULL, NULL);
