-- subscriptions: consumer groups, at-least-once delivery in order, acks,
-- nacks, parking and replay, leases, the status views, privileges.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS es_pg;
DROP ROLE IF EXISTS regress_sub_reader;
DROP ROLE IF EXISTS regress_sub_appender;
DROP ROLE IF EXISTS regress_sub_admin;
DROP ROLE IF EXISTS regress_sub_nobody;
RESET client_min_messages;
\set VERBOSITY sqlstate

SELECT es_head_position() AS start \gset

-- nine streams of category "sub", three events each, interleaved, and
-- events of another category and of a type the subscription skips
SELECT count(es_append('sub-' || s, 'E' || v, jsonb_build_object('s', s, 'v', v)))
  FROM generate_series(1, 3) v, generate_series(1, 9) s;
SELECT es_append('subother-1', 'E1', '{}') AS v;
SELECT es_append('sub-1', 'Skipped', '{}') AS v;

SELECT es_create_subscription('g', 'sub', ARRAY['E1', 'E2', 'E3'],
		group_size => 3, start_position => :start, max_attempts => 3) AS created;
-- the if-not-exists form, for migrations: same definition, nothing done
SELECT es_create_subscription('g', 'sub', ARRAY['E1', 'E2', 'E3'],
		group_size => 3, start_position => :start, max_attempts => 3,
		if_not_exists => true) AS created_again;
-- another definition, or without the flag: 42710
SELECT es_create_subscription('g', 'sub', group_size => 3, if_not_exists => true);
SELECT es_create_subscription('g', 'sub', ARRAY['E1', 'E2', 'E3'],
		group_size => 3, start_position => :start, max_attempts => 3);
SELECT subscription, member, group_size, position = :start AS at_start,
	   lag_events > 0 AS lagging, parked, consumer
  FROM es_subscription_status WHERE subscription = 'g' ORDER BY member;

-- each member gets its streams' events, in global order, nothing of
-- another category or type; together they get every event, once
CREATE TEMP TABLE got (member int, global_position bigint, stream_id text,
					   version bigint, attempt int);
INSERT INTO got SELECT 0, global_position, stream_id, version, attempt FROM es_poll('g', 0, 100);
INSERT INTO got SELECT 1, global_position, stream_id, version, attempt FROM es_poll('g', 1, 100);
INSERT INTO got SELECT 2, global_position, stream_id, version, attempt FROM es_poll('g', 2, 100);
SELECT count(*) AS delivered, count(DISTINCT global_position) AS distinct_events,
	   bool_and(attempt = 1) AS first_attempts
  FROM got;
-- complete: exactly the category's events of those types
SELECT (SELECT array_agg(global_position ORDER BY global_position) FROM got) =
	   (SELECT array_agg(global_position ORDER BY global_position) FROM es_events
		 WHERE global_position > :start AND stream_id LIKE 'sub-%'
		   AND event_type IN ('E1', 'E2', 'E3')) AS complete;
-- disjoint: no stream at two members
SELECT count(*) AS streams_at_two_members
  FROM (SELECT stream_id FROM got GROUP BY stream_id HAVING count(DISTINCT member) > 1) x;
-- the member of a stream is (hashtextextended(stream_id, 0) & max) % group_size
SELECT bool_and(member = (hashtextextended(stream_id, 0) & 9223372036854775807) % 3)
	   AS documented_hash
  FROM got;
-- per-stream order
SELECT bool_and(ordered) AS in_stream_order FROM (
	SELECT array_agg(version ORDER BY global_position) =
		   array_agg(version ORDER BY version) AS ordered
	  FROM got GROUP BY stream_id) x;

-- without an ack, the same events come again, attempt 2, and nothing after
-- them even if more arrive
SELECT es_append('sub-1', 'E1', '{"late": true}') AS v;
SELECT (SELECT member FROM got WHERE stream_id = 'sub-1' LIMIT 1) AS m1 \gset
SELECT count(*) AS again, bool_and(attempt = 2) AS second_attempt,
	   max(global_position) = (SELECT max(global_position) FROM got WHERE member = :m1) AS same_batch
  FROM es_poll('g', :m1, 100);
-- a smaller page of the redelivery: its start
SELECT count(*) AS first_two, bool_and(attempt = 3) AS third FROM es_poll('g', :m1, 2);

-- acks: cumulative, monotonic, not past what was delivered (22023)
SELECT max(global_position) AS last1 FROM got WHERE member = :m1 \gset
SELECT min(global_position) AS first1 FROM got WHERE member = :m1 \gset
SELECT es_ack('g', :m1, :last1 + 1000);
SELECT es_ack('g', :m1, :first1) = :first1 AS acked_first;
SELECT es_ack('g', :m1, :first1 - 1) = :first1 AS not_back;
SELECT count(*) = (SELECT count(*) - 1 FROM got WHERE member = :m1) AS rest_again
  FROM es_poll('g', :m1, 100);
-- acking the last delivered moves past what the walk saw (the skipped
-- types and the other category)
SELECT es_ack('g', :m1, :last1) >= :last1 AS acked_all;
SELECT global_position > :last1 AS after, stream_id, data, attempt FROM es_poll('g', :m1, 100);
SELECT es_ack('g', :m1, es_head_position()) = es_head_position() AS at_head;
SELECT count(*) AS nothing_new FROM es_poll('g', :m1, 100);
SELECT position = es_head_position() AS caught_up, lag_events, delivered_to = position AS none_pending
  FROM es_subscription_status WHERE subscription = 'g' AND member = :m1;

-- nack: the event comes again with attempt + 1; what came before it is
-- acked; at max_attempts (3) it is parked and the rest flows
SELECT (:m1 + 1) % 3 AS m2 \gset
SELECT min(global_position) AS p1 FROM got WHERE member = :m2 \gset
SELECT min(global_position) AS p2 FROM got WHERE member = :m2 AND global_position > :p1 \gset
SELECT es_ack('g', :m2, :p1) = :p1 AS acked_p1;
SELECT es_nack('g', :m2, :p2, 'first failure') AS parked;
SELECT global_position = :p2 AS p2_first, attempt FROM es_poll('g', :m2, 1);
SELECT es_nack('g', :m2, :p2, 'second failure') AS parked;
SELECT global_position = :p2 AS p2_first, attempt FROM es_poll('g', :m2, 1);
SELECT es_nack('g', :m2, :p2, 'third failure') AS parked;
SELECT subscription, member = :m2 AS m2, position = :p2 AS p2, stream_id, event_type,
	   attempts, last_error, replay
  FROM es_parked_events;
SELECT parked, last_error, position = :p2 AS checkpoint_past_it
  FROM es_subscription_status WHERE subscription = 'g' AND member = :m2;
-- the rest flows: the next event after the parked one
SELECT bool_and(global_position > :p2) AS after_parked, min(attempt) AS attempt
  FROM es_poll('g', :m2, 100);
-- nack of what is not pending, or was never delivered: 22023
SELECT es_nack('g', :m2, :p2, 'again');
SELECT es_nack('g', :m2, es_head_position() + 10, 'x');
SELECT es_ack('g', :m2, (SELECT delivered_to FROM es_subscription_status
						  WHERE subscription = 'g' AND member = :m2)) > :p2 AS acked_rest;

-- replay: the parked event comes again (alone, before new events) until
-- it is acked
SELECT es_replay_parked('g') AS replayed;
SELECT es_replay_parked('g') AS replayed_twice;
SELECT min(stream_id) AS m2_stream FROM got WHERE member = :m2 \gset
SELECT es_append(:'m2_stream', 'E2', '{"after replay": true}') AS v;
SELECT global_position = :p2 AS parked_one, attempt FROM es_poll('g', :m2, 100);
-- not acked: it comes again
SELECT global_position = :p2 AS parked_one_again FROM es_poll('g', :m2, 100);
-- a replayed event nacked: parked again, with one attempt more
SELECT es_nack('g', :m2, :p2, 'fourth failure') AS parked_again;
SELECT attempts, last_error, replay FROM es_parked_events;
SELECT count(*) AS new_event, min(stream_id) AS of_stream FROM es_poll('g', :m2, 100);
-- replayed again and acked: gone from the parked events; the checkpoint
-- stays where it was
SELECT position AS checkpoint_before FROM es_subscription_status
 WHERE subscription = 'g' AND member = :m2 \gset
SELECT es_replay_parked('g', :m2, :p2) AS replayed;
SELECT global_position = :p2 AS parked_one FROM es_poll('g', :m2, 100);
SELECT es_ack('g', :m2, :p2) = :checkpoint_before AS checkpoint_unchanged;
SELECT count(*) AS parked_left FROM es_parked_events;
-- then the new event again (not acked yet)
SELECT data FROM es_poll('g', :m2, 100);
SELECT es_replay_parked('g', 7);
SELECT es_replay_parked('nosuch');

-- leases: a named consumer holds the member; a second one gets 55006;
-- after the lease expires it takes the member over with what was
-- delivered and not acked
SELECT es_create_subscription('lease', 'sub', start_position => :start,
		lease => '300 ms') AS created;
SELECT count(*) AS a_got, min(attempt) AS attempt FROM es_poll('lease', 0, 5, consumer => 'consumer-a');
SELECT * FROM es_poll('lease', 0, 5, consumer => 'consumer-b');
SELECT * FROM es_poll('lease', 0, 5);
SELECT es_ack('lease', 0, es_head_position(), 'consumer-b');
SELECT consumer, lease_live FROM es_subscription_status WHERE subscription = 'lease';
SELECT pg_sleep(0.4);
SELECT consumer, lease_live FROM es_subscription_status WHERE subscription = 'lease';
SELECT count(*) AS b_got, min(attempt) AS attempt FROM es_poll('lease', 0, 5, consumer => 'consumer-b');
-- the old consumer's acks are refused now
SELECT es_ack('lease', 0, (SELECT delivered_to FROM es_subscription_status WHERE subscription = 'lease'), 'consumer-a');
-- a graceful shutdown releases the lease: another consumer may go on at once
SELECT es_release('lease', 0, 'consumer-a') AS released_by_a;
SELECT es_release('lease', 0, 'consumer-b') AS released_by_b;
SELECT count(*) AS c_got, min(attempt) AS attempt FROM es_poll('lease', 0, 5, consumer => 'consumer-c');

-- exactly-once: the ack in the consumer's own transaction, beside its
-- writes; a failed transaction leaves both undone, and the events come again
SELECT es_create_subscription('once', 'sub', start_position => :start) AS created;
CREATE TEMP TABLE handled (global_position bigint PRIMARY KEY);
BEGIN;
INSERT INTO handled SELECT global_position FROM es_poll('once', 0, 5);
SELECT es_ack('once', 0, (SELECT max(global_position) FROM handled)) > 0 AS acked;
ROLLBACK;
SELECT count(*) AS handled_after_rollback FROM handled;
SELECT position = :start AS checkpoint_after_rollback
  FROM es_subscription_status WHERE subscription = 'once';
BEGIN;
INSERT INTO handled SELECT global_position FROM es_poll('once', 0, 5);
SELECT es_ack('once', 0, (SELECT max(global_position) FROM handled)) > 0 AS acked;
COMMIT;
BEGIN;
INSERT INTO handled SELECT global_position FROM es_poll('once', 0, 5);
SELECT es_ack('once', 0, (SELECT max(global_position) FROM handled)) > 0 AS acked;
COMMIT;
-- ten events handled, each once (a duplicate would violate the key)
SELECT count(*) AS handled FROM handled;

-- bad arguments
SELECT es_create_subscription('');
SELECT es_create_subscription(repeat('n', 256));
SELECT es_create_subscription(E'a\nb');
SELECT es_create_subscription('x', 'a-b');
SELECT es_create_subscription('x', '');
SELECT es_create_subscription('x', NULL, ARRAY[]::text[]);
SELECT es_create_subscription('x', NULL, ARRAY['A', NULL]);
SELECT es_create_subscription('x', NULL, ARRAY[['A'], ['B']]);
SELECT es_create_subscription('x', group_size => 0);
SELECT es_create_subscription('x', group_size => 1025);
SELECT es_create_subscription('x', start_position => -1);
SELECT es_create_subscription('x', max_attempts => 0);
SELECT es_create_subscription('x', lease => '0 s');
SELECT es_create_subscription('x', lease => '-1 s');
SELECT * FROM es_poll('nosuch');
SELECT * FROM es_poll('g', 3);
SELECT * FROM es_poll('g', -1);
SELECT * FROM es_poll('g', 0, 0);
SELECT * FROM es_poll('g', 0, 100001);
SELECT * FROM es_poll('g', 0, 1, '-1 s');
SELECT * FROM es_poll('g', 0, 1, '2 hours');
SELECT * FROM es_poll('g', 0, 1, '0', '');
SELECT es_ack('nosuch', 0, 1);
SELECT es_ack('g', 5, 1);
SELECT es_release('g', 5, 'c');
SELECT es_drop_subscription('nosuch');
SELECT es_drop_subscription('nosuch', true) AS dropped;
-- nothing was created by the failed calls
SELECT count(*) AS subscriptions FROM es_subscriptions;

-- privileges: readers consume, admins create, drop and replay; a role
-- without the read privilege may not poll
CREATE ROLE regress_sub_reader;
CREATE ROLE regress_sub_appender;
CREATE ROLE regress_sub_admin;
CREATE ROLE regress_sub_nobody;
SELECT es_grant_reader('regress_sub_reader');
SELECT es_grant_appender('regress_sub_appender');
SELECT es_grant_admin('regress_sub_admin');
GRANT USAGE ON SCHEMA public TO regress_sub_nobody;
SET ROLE regress_sub_reader;
SELECT count(*) >= 0 AS reader_polls FROM es_poll('once', 0, 1);
SELECT count(*) AS reader_sees_status FROM es_subscription_status WHERE subscription = 'once';
SELECT es_create_subscription('by_reader');
SELECT es_drop_subscription('once');
SELECT es_replay_parked('g');
SELECT count(*) FROM es_subscriptions;
UPDATE es_subscription_members SET checkpoint = 0;
RESET ROLE;
SET ROLE regress_sub_admin;
SELECT es_create_subscription('by_admin') AS created;
SELECT count(*) AS admin_reads_table FROM es_subscriptions WHERE name = 'by_admin';
UPDATE es_subscription_members SET checkpoint = 0;
SELECT es_drop_subscription('by_admin') AS dropped;
RESET ROLE;
SET ROLE regress_sub_nobody;
SELECT * FROM es_poll('once');
SELECT count(*) FROM es_subscription_status;
RESET ROLE;
-- a role the read privilege was taken from may not poll either
SELECT es_revoke_reader('regress_sub_reader');
GRANT EXECUTE ON FUNCTION es_poll(text, integer, integer, interval, text) TO regress_sub_reader;
GRANT USAGE ON SCHEMA public TO regress_sub_reader;
SET ROLE regress_sub_reader;
SELECT * FROM es_poll('once');
RESET ROLE;
REVOKE EXECUTE ON FUNCTION es_poll(text, integer, integer, interval, text) FROM regress_sub_reader;
REVOKE USAGE ON SCHEMA public FROM regress_sub_reader;

-- a hostile search_path: es_pg's statements are schema-qualified
CREATE SCHEMA sub_evil;
CREATE FUNCTION sub_evil.clock_timestamp() RETURNS timestamptz
	LANGUAGE sql AS $$SELECT 'epoch'::timestamptz$$;
CREATE TABLE sub_evil.es_subscription_members (x int);
SET search_path = sub_evil, public;
SELECT count(*) >= 0 AS polled FROM es_poll('once', 0, 1);
SELECT position IS NOT NULL AND NOT lease_live AS status_ok FROM public.es_subscription_status WHERE subscription = 'once';
RESET search_path;
DROP SCHEMA sub_evil CASCADE;

-- the subscription tables are es_pg's: DDL on them is refused
ALTER TABLE es_subscription_members DROP COLUMN attempts;
ALTER TABLE es_subscriptions RENAME TO subs;

-- dropping a subscription drops its members and parked events
SELECT es_drop_subscription('g') AS dropped;
SELECT es_drop_subscription('lease') AS dropped;
SELECT es_drop_subscription('once') AS dropped;
SELECT (SELECT count(*) FROM es_subscriptions) AS subscriptions,
	   (SELECT count(*) FROM es_subscription_members) AS members,
	   (SELECT count(*) FROM es_subscription_parked) AS parked;
SELECT * FROM es_poll('g');

DROP ROLE regress_sub_reader;
SELECT es_revoke_appender('regress_sub_appender');
SELECT es_revoke_reader('regress_sub_appender');
DROP ROLE regress_sub_appender;
SELECT es_revoke_admin('regress_sub_admin');
SELECT es_revoke_reader('regress_sub_admin');
DROP ROLE regress_sub_admin;
REVOKE USAGE ON SCHEMA public FROM regress_sub_nobody;
DROP ROLE regress_sub_nobody;
