-- long polls: es_poll with a wait returns when a matching append commits,
-- not at the end of its wait; an append that stays open is not delivered
-- until it commits; a wait with nothing to deliver returns empty at its
-- end.  The appenders run in a dblink connection while this session polls.
-- Then LISTEN/NOTIFY (es_pg.notify_appends), with the dblink connection
-- listening.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS es_pg;
CREATE EXTENSION IF NOT EXISTS dblink;
RESET client_min_messages;
\set VERBOSITY sqlstate

SELECT es_create_subscription('wait', 'wait',
		start_position => es_head_position()) AS created;
SELECT dblink_connect('bg', format('dbname=%s host=%s port=%s',
		current_database(),
		split_part(current_setting('unix_socket_directories'), ',', 1),
		current_setting('port'))) AS connected;

-- the append commits 0.3 s after the poll started to wait for up to 60 s
SELECT dblink_send_query('bg',
		$$SELECT pg_sleep(0.3), es_append('wait-1', 'W1', '{}')$$) AS sent;
SELECT stream_id, event_type, attempt,
	   clock_timestamp() - statement_timestamp() < interval '30 s' AS before_timeout
  FROM es_poll('wait', 0, 10, '60 s');
SELECT v > 0 AS appended FROM dblink_get_result('bg') AS t(s text, v bigint);
SELECT count(*) AS done FROM dblink_get_result('bg') AS t(s text, v bigint);
SELECT es_ack('wait', 0, es_head_position()) > 0 AS acked;

-- an append of another category does not end the wait; a matching one
-- that stays open for a while is delivered once it commits
SELECT dblink_send_query('bg',
		$$SELECT es_append('waitx-1', 'X', '{}'), pg_sleep(0.2),
				 es_append('wait-1', 'W2', '{}'), pg_sleep(0.3)$$) AS sent;
SELECT stream_id, event_type,
	   clock_timestamp() - statement_timestamp() >= interval '0.25 s' AS after_commit,
	   clock_timestamp() - statement_timestamp() < interval '30 s' AS before_timeout
  FROM es_poll('wait', 0, 10, '60 s');
SELECT count(*) FROM dblink_get_result('bg') AS t(a bigint, b text, c bigint, d text);
SELECT count(*) AS done FROM dblink_get_result('bg') AS t(a bigint, b text, c bigint, d text);
SELECT es_ack('wait', 0, es_head_position()) > 0 AS acked;

-- nothing comes: empty at the end of the wait
SELECT count(*) AS nothing,
	   clock_timestamp() - statement_timestamp() >= interval '0.2 s' AS waited
  FROM es_poll('wait', 0, 10, '0.2 s');

-- a wait is interrupted by statement_timeout like any statement
SET statement_timeout = '200ms';
SELECT count(*) FROM es_poll('wait', 0, 10, '60 s');
RESET statement_timeout;

-- es_pg.notify_appends: off by default, no notification; on, each
-- appending transaction notifies channel es_pg with its highest position
SELECT dblink_exec('bg', 'LISTEN es_pg') AS listening;
SELECT es_append('wait-2', 'Quiet', '{}') AS v;
SELECT pg_sleep(0.2);
SELECT count(*) AS no_notification FROM dblink_get_notify('bg');
SET es_pg.notify_appends = on;
BEGIN;
SELECT es_append('wait-2', 'Loud', '{}') AS v;
SELECT es_append_batch('wait-3', '[{"type": "Loud", "data": {}}, {"type": "Loud", "data": {}}]') AS v;
COMMIT;
-- a transaction that rolls back notifies nothing
BEGIN;
SELECT es_append('wait-2', 'Rolled', '{}') AS v;
ROLLBACK;
RESET es_pg.notify_appends;
-- collect what arrives for up to 10 s, then 0.2 s more: one notification
CREATE TEMP TABLE notes AS SELECT * FROM dblink_get_notify('bg') WHERE false;
DO $$
BEGIN
	FOR i IN 1 .. 200 LOOP
		INSERT INTO notes SELECT * FROM dblink_get_notify('bg');
		EXIT WHEN EXISTS (SELECT FROM notes);
		PERFORM pg_sleep(0.05);
	END LOOP;
	PERFORM pg_sleep(0.2);
	INSERT INTO notes SELECT * FROM dblink_get_notify('bg');
END $$;
SELECT notify_name, extra::bigint = es_head_position() AS payload_is_head
  FROM notes;
SELECT dblink_exec('bg', 'UNLISTEN es_pg') AS unlistened;

SELECT dblink_disconnect('bg');
SELECT es_drop_subscription('wait') AS dropped;
