-- the workers of async projections as SQL sees them: es_projection_worker(),
-- the worker columns of es_projection_status, es_start_projection_worker()
-- in a database that needs no worker, a worker that comes with the first
-- async projection and goes with the last; and
-- es_create_projection_if_not_exists, the idempotent form for migrations.
-- Needs es_pg in shared_preload_libraries, as the test clusters have.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS es_pg;
DROP ROLE IF EXISTS regress_pw_admin;
DROP ROLE IF EXISTS regress_pw_nobody;
RESET client_min_messages;
CREATE ROLE regress_pw_admin;
CREATE ROLE regress_pw_nobody;

CREATE SCHEMA proj_workers;
SET search_path = proj_workers, public;
CREATE TABLE seen (event_id uuid PRIMARY KEY, n integer NOT NULL);
CREATE FUNCTION seen_apply(event es_events) RETURNS void
LANGUAGE sql AS $$
	INSERT INTO proj_workers.seen VALUES (event.event_id, 1)
	ON CONFLICT (event_id) DO UPDATE SET n = seen.n + 1
$$;
CREATE FUNCTION other_apply(event es_events) RETURNS void
LANGUAGE sql AS $$ SELECT $$;
CREATE FUNCTION seen_reset() RETURNS void
LANGUAGE sql AS $$ DELETE FROM proj_workers.seen $$;

-- wait (up to 30 s) until the worker state is the one wanted
CREATE FUNCTION wait_worker(want text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	got text;
BEGIN
	FOR i IN 1 .. 300 LOOP
		SELECT w.state INTO got FROM public.es_projection_worker() w;
		EXIT WHEN got = want;
		PERFORM pg_sleep(0.1);
	END LOOP;
	RETURN got;
END
$$;

-- wait (up to 30 s) until this database has that many workers (the
-- launcher may be looking into it just now: such a look leaves at once)
CREATE FUNCTION wait_workers(want integer) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
	got integer;
BEGIN
	FOR i IN 1 .. 300 LOOP
		SELECT count(*) INTO got FROM pg_stat_activity
		 WHERE backend_type = 'es_pg projection worker'
		   AND datname = current_database();
		EXIT WHEN got = want;
		PERFORM pg_sleep(0.1);
	END LOOP;
	RETURN got;
END
$$;

-- no async projection here: no worker, and none is started
SELECT wait_worker('not needed');
SELECT state, pid, reason FROM es_projection_worker();
SELECT es_start_projection_worker() AS started;
SELECT wait_workers(0) AS workers;

-- an inline projection needs no worker either; its status has no worker
SELECT es_create_projection('pw_inline', 'seen_apply(es_events)',
	ARRAY['PwInline']);
SELECT name, state, worker_state, worker_reason FROM es_projection_status;
SELECT es_start_projection_worker() AS started;
SELECT es_drop_projection('pw_inline');

-- an async projection created in an open transaction: the worker is asked
-- for at commit
BEGIN;
SELECT es_create_projection('pw_async', 'seen_apply(es_events)',
	ARRAY['PwEvent'], 'async', 'seen_reset()');
SELECT es_append('pw-1', 'PwEvent', '{}');
-- (what the worker's state says before the commit is a race: the launcher
-- may be looking into this database just now and find no async projection
-- committed yet; after the commit it must start one, below)
SELECT name, state, lag_events > 0 AS lags FROM es_projection_status;
COMMIT;

-- after commit the worker starts by itself and applies the event
SELECT wait_worker('running');
SELECT es_wait_for_projection('pw_async', es_head_position(), '30 s') AS applied;
SELECT count(*), max(n) FROM seen;
SELECT w.state, w.reason, w.pid = a.pid AS pid_is_the_worker
  FROM es_projection_worker() w
  JOIN pg_stat_activity a ON a.backend_type = 'es_pg projection worker'
   AND a.datname = current_database();
SELECT name, state, worker_state, worker_reason FROM es_projection_status;
SELECT es_start_projection_worker() AS started;
SELECT wait_workers(1) AS workers;

-- everybody may look at the worker (pg_stat_activity shows as much)
SET ROLE regress_pw_nobody;
SELECT state FROM es_projection_worker();
RESET ROLE;

-- es_create_projection_if_not_exists: the same definition is left alone
-- with a notice; arrays of event types compare as sets
SELECT es_create_projection_if_not_exists('pw_async', 'seen_apply(es_events)',
	ARRAY['PwEvent'], 'async', 'seen_reset()') AS created;
SELECT es_create_projection_if_not_exists('pw_async', 'seen_apply(es_events)',
	ARRAY['PwEvent', 'PwEvent'], mode => 'async', reset => 'seen_reset()',
	from_beginning => false) AS created;
-- the same handler named through another search_path is the same definition
SET search_path = pg_catalog, public;
SELECT es_create_projection_if_not_exists('pw_async',
	'proj_workers.seen_apply(es_events)', ARRAY['PwEvent'], 'async',
	'proj_workers.seen_reset()') AS created;
SET search_path = proj_workers, public;
SELECT count(*) AS definitions FROM es_projections WHERE name = 'pw_async';

-- another definition is an error, whatever differs; nothing changes
\set VERBOSITY sqlstate
SELECT es_create_projection_if_not_exists('pw_async', 'seen_apply(es_events)',
	ARRAY['PwEvent'], 'inline', 'seen_reset()');
SELECT es_create_projection_if_not_exists('pw_async', 'other_apply(es_events)',
	ARRAY['PwEvent'], 'async', 'seen_reset()');
SELECT es_create_projection_if_not_exists('pw_async', 'seen_apply(es_events)',
	ARRAY['PwEvent', 'Other'], 'async', 'seen_reset()');
SELECT es_create_projection_if_not_exists('pw_async', 'seen_apply(es_events)',
	NULL, 'async', 'seen_reset()');
SELECT es_create_projection_if_not_exists('pw_async', 'seen_apply(es_events)',
	ARRAY['PwEvent'], 'async');
-- the plain form still refuses an existing name
SELECT es_create_projection('pw_async', 'seen_apply(es_events)',
	ARRAY['PwEvent'], 'async', 'seen_reset()');
-- the arguments are checked as es_create_projection checks them
SELECT es_create_projection_if_not_exists('pw_bad', 'seen_apply(es_events)',
	ARRAY['PwEvent'], 'sometimes');
SELECT es_create_projection_if_not_exists('pw_bad', 'seen_reset()');
SELECT es_create_projection_if_not_exists(repeat('x', 64), 'seen_apply(es_events)');
SELECT es_create_projection_if_not_exists('pw_bad', 'seen_apply(es_events)',
	ARRAY[]::text[]);
-- an admin function: a role without es_grant_admin may not call it
GRANT USAGE ON SCHEMA proj_workers TO regress_pw_nobody;
SET ROLE regress_pw_nobody;
SELECT es_create_projection_if_not_exists('pw_async', 'seen_apply(es_events)',
	ARRAY['PwEvent'], 'async', 'seen_reset()');
RESET ROLE;
\set VERBOSITY default
SELECT mode, handler, reset, event_types FROM es_projections
 WHERE name = 'pw_async';

-- an admin that may execute the handler can create one; a second run of
-- the same migration by another admin changes nothing
SELECT es_grant_admin('regress_pw_admin');
GRANT USAGE, CREATE ON SCHEMA proj_workers TO regress_pw_admin;
GRANT SELECT, INSERT, UPDATE, DELETE ON seen TO regress_pw_admin;
SET ROLE regress_pw_admin;
SELECT es_create_projection_if_not_exists('pw_second', 'seen_apply(es_events)',
	ARRAY['PwOther'], 'async') AS created;
RESET ROLE;
SELECT es_create_projection_if_not_exists('pw_second', 'seen_apply(es_events)',
	ARRAY['PwOther'], 'async') AS created;
SELECT name, owner FROM es_projections WHERE name = 'pw_second';
SELECT es_drop_projection('pw_second');

-- inline: replays history like es_create_projection, and needs
-- READ COMMITTED only when it creates
CREATE TABLE inline_seen (event_id uuid PRIMARY KEY);
CREATE FUNCTION inline_apply(event es_events) RETURNS void
LANGUAGE sql AS $$ INSERT INTO proj_workers.inline_seen VALUES (event.event_id) $$;
SELECT es_create_projection_if_not_exists('pw_inline2', 'inline_apply(es_events)',
	ARRAY['PwEvent']) AS created;
SELECT count(*) AS replayed FROM inline_seen;
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT es_create_projection_if_not_exists('pw_inline2', 'inline_apply(es_events)',
	ARRAY['PwEvent']) AS created;
COMMIT;
BEGIN ISOLATION LEVEL REPEATABLE READ;
\set VERBOSITY sqlstate
SELECT es_create_projection_if_not_exists('pw_inline3', 'inline_apply(es_events)',
	ARRAY['PwEvent']) AS created;
\set VERBOSITY default
ROLLBACK;
SELECT es_drop_projection('pw_inline2');

-- a hostile search_path does not reach the status view's worker function
CREATE SCHEMA pw_evil;
CREATE FUNCTION pw_evil.es_projection_worker(OUT state text, OUT pid integer,
		OUT reason text)
LANGUAGE sql AS $$ SELECT 'hijacked', 0, 'hijacked' $$;
SET search_path = pw_evil, public, proj_workers;
SELECT name, worker_state FROM public.es_projection_status;
SET search_path = proj_workers, public;
DROP SCHEMA pw_evil CASCADE;

-- the new objects are guarded like the others
\set VERBOSITY sqlstate
ALTER FUNCTION es_projection_worker() RENAME TO es_pw;
CREATE OR REPLACE FUNCTION public.es_projection_worker(OUT state text,
		OUT pid integer, OUT reason text)
LANGUAGE sql AS $$ SELECT 'running', 1, NULL::text $$;
ALTER FUNCTION es_create_projection_if_not_exists(text, regprocedure, text[],
	text, regprocedure, boolean) SECURITY DEFINER;
DROP VIEW es_projection_status;
\set VERBOSITY default

-- dropping the last async projection sends the worker away
SELECT es_drop_projection('pw_async');
SELECT wait_worker('not needed');
SELECT state, pid, reason FROM es_projection_worker();
SELECT wait_workers(0) AS workers;

RESET search_path;
DROP SCHEMA proj_workers CASCADE;
SELECT es_revoke_admin('regress_pw_admin');
DROP OWNED BY regress_pw_admin;
DROP OWNED BY regress_pw_nobody;
DROP ROLE regress_pw_admin;
DROP ROLE regress_pw_nobody;
