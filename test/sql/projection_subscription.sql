-- async projections are subscriptions whose consumer is their handler: one
-- checkpoint, retry, park and status mechanism for both (issue 12).  A
-- failing handler is retried, the event parked at max_attempts and passed,
-- shown in es_parked_events and es_projection_status, replayed through the
-- handler with es_replay_parked once fixed, and applied exactly once.  The
-- consumer API refuses a projection's subscription, for every role.
-- Everything runs in one transaction that is rolled back at the end, so
-- the background worker never sees it (projection_worker tests the
-- worker); psql rolls back each failing statement alone.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS es_pg;
RESET client_min_messages;
\set VERBOSITY sqlstate
\set ON_ERROR_ROLLBACK on
BEGIN;

CREATE SCHEMA proj_sub;
SET search_path = proj_sub, public;
CREATE TABLE applied (position bigint PRIMARY KEY, i int);
-- the handler refuses events with "poison" while proj_sub.cure is empty
CREATE TABLE cure (ok boolean);
CREATE FUNCTION ps_apply(event es_events) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	IF event.data ? 'poison' AND NOT EXISTS (SELECT 1 FROM proj_sub.cure) THEN
		RAISE EXCEPTION 'poisoned event %', event.data->>'i'
			USING ERRCODE = 'P0001';
	END IF;
	INSERT INTO proj_sub.applied VALUES (event.global_position,
										 (event.data->>'i')::int);
END
$$;

-- three attempts per event; the projection starts at the head
SET es_pg.projection_retries = 3;
SELECT es_head_position() AS start \gset
SELECT es_create_projection('ps_proj', 'ps_apply(es_events)',
	ARRAY['PsEvent'], 'async', from_beginning => false);
RESET es_pg.projection_retries;

-- its subscription: the projection's name, one member, its event types,
-- max_attempts from es_pg.projection_retries, at the head
SELECT name, projection, category, event_types, group_size, max_attempts,
	   start_position = :start AS at_head
  FROM es_subscriptions WHERE name = 'ps_proj';
SELECT subscription, member, position = :start AS at_head, parked, projection
  FROM es_subscription_status WHERE subscription = 'ps_proj';
-- inline projections have none
SELECT count(*) FROM es_subscriptions s JOIN es_projections p
	ON p.name = s.name WHERE p.mode = 'inline';

SELECT es_append_batch('ps-1', $$[
	{"type": "PsEvent", "data": {"i": 1}},
	{"type": "PsEvent", "data": {"i": 2}},
	{"type": "PsEvent", "data": {"i": 3, "poison": true}},
	{"type": "PsOther", "data": {"i": 0}},
	{"type": "PsEvent", "data": {"i": 4}}
]$$) AS v;
SELECT global_position AS poison FROM es_events
 WHERE stream_id = 'ps-1' AND data ? 'poison' \gset

-- attempt 1: the good prefix is applied, the checkpoint stops just before
-- the poison, the member counts one delivery of it with the error
SET client_min_messages = error;
SELECT es_apply_projections('ps_proj') AS calls;
RESET client_min_messages;
SELECT count(*) AS applied FROM applied;
SELECT state, retries, last_error, error_sqlstate,
	   error_position = :poison AS error_at_poison,
	   position = :poison - 1 AS stopped_before_it, parked
  FROM es_projection_status WHERE name = 'ps_proj';
SELECT position = :poison - 1 AS checkpoint, delivered_to = :poison AS pending,
	   attempts, last_error
  FROM es_subscription_status WHERE subscription = 'ps_proj';

-- attempt 2: only the poison is tried again (and fails again)
SET client_min_messages = error;
SELECT es_apply_projections('ps_proj') AS calls;
RESET client_min_messages;
SELECT state, retries FROM es_projection_status WHERE name = 'ps_proj';

-- attempt 3 = max_attempts: parked (a warning), and the rest flows on
SELECT es_apply_projections('ps_proj') AS calls;
SELECT subscription, member, position = :poison AS is_poison, stream_id,
	   event_type, attempts, last_error, replay
  FROM es_parked_events WHERE subscription = 'ps_proj';
SELECT es_apply_projections('ps_proj') AS calls;
SELECT array_agg(i ORDER BY position) AS applied FROM applied;
SELECT state, lag_events, retries, parked, last_error
  FROM es_projection_status WHERE name = 'ps_proj';
SELECT es_wait_for_projection('ps_proj', es_head_position(), '1 s') AS caught_up;

-- fix the handler and replay the parked event through it: applied once
INSERT INTO cure VALUES (true);
SELECT es_replay_parked('ps_proj') AS marked;
SELECT replay FROM es_parked_events WHERE subscription = 'ps_proj';
SELECT es_apply_projections('ps_proj') AS calls;
SELECT count(*) AS parked_left FROM es_parked_events
 WHERE subscription = 'ps_proj';
SELECT array_agg(i ORDER BY position) AS applied FROM applied;
SELECT es_apply_projections('ps_proj') AS calls_again;
SELECT count(*) AS poison_applied FROM applied WHERE position = :poison;
SELECT state, parked, lag_events, last_error FROM es_projection_status
 WHERE name = 'ps_proj';

-- a replay that fails again parks it again with one more attempt; the
-- compatibility form es_resume_projection replays too
DELETE FROM cure;
SELECT es_append('ps-2', 'PsEvent', '{"i": 5, "poison": true}') AS v;
SET client_min_messages = error;
SELECT es_apply_projections('ps_proj') FROM generate_series(1, 3);
RESET client_min_messages;
SELECT attempts FROM es_parked_events WHERE subscription = 'ps_proj';
SELECT es_resume_projection('ps_proj');
SET client_min_messages = error;
SELECT es_apply_projections('ps_proj') AS calls;
RESET client_min_messages;
SELECT attempts, replay FROM es_parked_events WHERE subscription = 'ps_proj';
SELECT count(*) AS applied_5 FROM applied WHERE i = 5;

-- the consumer API refuses the projection's subscription: 42809
SELECT * FROM es_poll('ps_proj');
SELECT es_ack('ps_proj', 0, :poison);
SELECT es_nack('ps_proj', 0, :poison, 'no');
SELECT es_release('ps_proj', 0, 'me');
SELECT es_drop_subscription('ps_proj');
SELECT es_drop_subscription('ps_proj', if_exists => true);
-- and its name: a subscription cannot take it, nor an async projection
-- the name of a subscription: 42710
SELECT es_create_subscription('ps_proj');
SELECT es_create_subscription('ps_proj', event_types => ARRAY['PsEvent'],
	if_not_exists => true);
SELECT es_create_subscription('ps_plain');
SELECT es_create_projection('ps_plain', 'ps_apply(es_events)', NULL, 'async');
-- an inline projection takes no subscription, and shares no name space
SELECT es_create_projection('ps_plain', 'ps_apply(es_events)', ARRAY['None'], 'inline');
SELECT es_drop_projection('ps_plain');
SELECT es_drop_subscription('ps_plain');

-- the same for roles other than the owner
CREATE ROLE regress_ps_reader;
CREATE ROLE regress_ps_admin;
SELECT es_grant_reader('regress_ps_reader');
SELECT es_grant_admin('regress_ps_admin');
GRANT USAGE ON SCHEMA proj_sub TO regress_ps_reader, regress_ps_admin;
SET ROLE regress_ps_reader;
SELECT * FROM es_poll('ps_proj', 0, 10, '0', 'intruder');
SELECT es_ack('ps_proj', 0, 1, 'intruder');
SELECT es_nack('ps_proj', 0, 1, 'x', 'intruder');
SELECT es_release('ps_proj', 0, 'intruder');
-- the tables stay closed
UPDATE es_subscription_members SET checkpoint = 0 WHERE subscription = 'ps_proj';
DELETE FROM es_subscription_parked;
RESET ROLE;
SET ROLE regress_ps_admin;
SELECT es_drop_subscription('ps_proj');
SELECT * FROM es_poll('ps_proj');
SELECT name, state FROM es_projection_status WHERE name = 'ps_proj';
RESET ROLE;

-- rebuild resets the member consistently: every event through the
-- handler, the checkpoint at the end, no parked events, no error
CREATE FUNCTION ps_reset() RETURNS void
LANGUAGE sql AS $$ DELETE FROM proj_sub.applied $$;
SELECT es_drop_projection('ps_proj');
SELECT count(*) AS gone FROM es_subscriptions WHERE name = 'ps_proj';
SELECT es_create_projection('ps_proj', 'ps_apply(es_events)',
	ARRAY['PsEvent'], 'async', 'ps_reset()');
DELETE FROM applied;
SET client_min_messages = error;
SELECT es_apply_projections('ps_proj') FROM generate_series(1, 4);
RESET client_min_messages;
SELECT parked > 0 AS has_parked FROM es_projection_status
 WHERE name = 'ps_proj';
INSERT INTO cure VALUES (true);
SELECT es_rebuild_projection('ps_proj') > 0 AS rebuilt;
SELECT state, parked, retries, last_error, lag_events
  FROM es_projection_status WHERE name = 'ps_proj';
SELECT delivered_to = position AS nothing_pending, attempts
  FROM es_subscription_status WHERE subscription = 'ps_proj';
SELECT count(*) AS missing FROM es_events e
 WHERE e.event_type = 'PsEvent'
   AND NOT EXISTS (SELECT 1 FROM applied a WHERE a.position = e.global_position);

-- dropping the projection drops its subscription, member and parked events
DELETE FROM cure;
SELECT es_append('ps-3', 'PsEvent', '{"i": 6, "poison": true}') AS v;
SET client_min_messages = error;
SELECT es_apply_projections('ps_proj') FROM generate_series(1, 3);
RESET client_min_messages;
SELECT count(*) AS parked FROM es_parked_events WHERE subscription = 'ps_proj';
SELECT es_drop_projection('ps_proj');
SELECT (SELECT count(*) FROM es_subscriptions WHERE name = 'ps_proj') AS subs,
	   (SELECT count(*) FROM es_subscription_members WHERE subscription = 'ps_proj') AS members,
	   (SELECT count(*) FROM es_subscription_parked WHERE subscription = 'ps_proj') AS parked;

-- an event that failed and was archived since (es_delete_stream, es_seal,
-- es_archive) is passed, as es_poll passes it: the projection goes on
SELECT es_create_projection('ps_arch', 'ps_apply(es_events)',
	ARRAY['PsEvent'], 'async', from_beginning => false);
SELECT es_append('ps-arch-1', 'PsEvent', '{"i": 7, "poison": true}') AS v;
SELECT es_append('ps-arch-2', 'PsEvent', '{"i": 8}') AS v;
SET client_min_messages = error;
SELECT es_apply_projections('ps_arch') AS calls;
RESET client_min_messages;
SELECT state, retries FROM es_projection_status WHERE name = 'ps_arch';
SELECT es_delete_stream('ps-arch-1') AS tombstone_version;
SELECT es_seal() > 0 AS sealed;
SELECT es_archive(es_head_position() + 1) >= 1 AS archived;
SELECT es_apply_projections('ps_arch') AS calls;
SELECT state, retries, parked, lag_events FROM es_projection_status
 WHERE name = 'ps_arch';
SELECT array_agg(i ORDER BY position) AS applied FROM applied WHERE i >= 7;
-- a parked event archived since is not skipped in silence by its replay:
-- it stays parked, with the reason
SELECT es_append('ps-arch-3', 'PsEvent', '{"i": 9, "poison": true}') AS v;
SET client_min_messages = error;
SELECT es_apply_projections('ps_arch') FROM generate_series(1, 3);
RESET client_min_messages;
SELECT count(*) AS parked FROM es_parked_events WHERE subscription = 'ps_arch';
SELECT es_delete_stream('ps-arch-3') AS tombstone_version;
SELECT es_seal() > 0 AS sealed;
SELECT es_archive(es_head_position() + 1) >= 1 AS archived;
SELECT es_replay_parked('ps_arch') AS marked;
SET client_min_messages = error;
SELECT es_apply_projections('ps_arch') AS calls;
RESET client_min_messages;
SELECT attempts, replay, last_error FROM es_parked_events
 WHERE subscription = 'ps_arch';

ROLLBACK;
\unset ON_ERROR_ROLLBACK
SELECT count(*) AS left_behind FROM es_subscriptions WHERE name LIKE 'ps\_%';
RESET search_path;
