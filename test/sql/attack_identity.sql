-- Attack: code an admin owns runs as someone more powerful.  A read model
-- owned by a non-superuser admin carries a DEFERRABLE INITIALLY DEFERRED
-- constraint trigger that tries to make the admin a superuser; it would
-- succeed if it ever fired as a superuser (the worker, a superuser running
-- es_apply_projections or a rebuild) or gain the appender's rights inline.
-- Promise: handlers, reset functions and reducers under a snapshot policy
-- run as their owner in a security-restricted operation; what they queue
-- for later is refused (42501) and nothing of theirs fires afterwards under
-- another identity; settings they change do not outlive the call; a
-- caller's search_path never shapes a shared snapshot.  (The worker's
-- switch point is attacked in test/t/062_worker_attacks.pl.)
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS es_pg;
DROP SCHEMA IF EXISTS id_admin CASCADE;
DROP SCHEMA IF EXISTS id_evil CASCADE;
DROP ROLE IF EXISTS regress_id_admin;
DROP ROLE IF EXISTS regress_id_appender;
DROP ROLE IF EXISTS regress_id_reader;
RESET client_min_messages;

CREATE ROLE regress_id_admin;
CREATE ROLE regress_id_appender;
CREATE ROLE regress_id_reader;
SELECT es_grant_admin('regress_id_admin');
SELECT es_grant_appender('regress_id_appender');
SELECT es_grant_reader('regress_id_reader');
CREATE SCHEMA id_admin AUTHORIZATION regress_id_admin;
GRANT USAGE ON SCHEMA id_admin TO PUBLIC;

-- what the admin builds: a read model, a log of who fired the trigger, and
-- the trigger
SET ROLE regress_id_admin;
SET search_path = id_admin, public;
CREATE TABLE id_admin.model (stream_id text PRIMARY KEY, n int NOT NULL);
CREATE TABLE id_admin.fired (who text, superuser boolean);
GRANT INSERT ON id_admin.fired TO PUBLIC;
CREATE FUNCTION id_admin.escalate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO id_admin.fired VALUES (current_user, (SELECT rolsuper FROM pg_roles WHERE rolname = current_user));
	EXECUTE 'ALTER ROLE regress_id_admin SUPERUSER';
	RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER later AFTER INSERT OR UPDATE ON id_admin.model
	DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION id_admin.escalate();
CREATE FUNCTION id_admin.apply(e es_events) RETURNS void LANGUAGE sql AS $$
	INSERT INTO model VALUES (e.stream_id, 1)
	ON CONFLICT (stream_id) DO UPDATE SET n = model.n + 1 $$;
CREATE FUNCTION id_admin.reset() RETURNS void LANGUAGE sql AS $$ DELETE FROM model $$;
RESET ROLE;
SELECT es_append('id-1', 'Seed', '{}') AS v;

-- inline: the appender's append fails at the handler's statement, nothing
-- of it is written
SET ROLE regress_id_admin;
SELECT es_create_projection('id_inline', 'id_admin.apply(es_events)', NULL, 'inline', 'id_admin.reset()', false);
RESET ROLE;
SET ROLE regress_id_appender;
\set VERBOSITY sqlstate
SELECT es_append('id-1', 'Inline', '{}');
\set VERBOSITY terse
SELECT es_append('id-1', 'Inline', '{}');
\set VERBOSITY default
RESET ROLE;
SELECT count(*) AS written FROM es_events WHERE stream_id = 'id-1' AND event_type = 'Inline';
SELECT es_drop_projection('id_inline');

-- rebuild and apply, run by a superuser (as a cron job would): the rebuild
-- is refused the same way; the apply records the handler error, retries and
-- then parks, as for any other.  In one transaction rolled back at the end,
-- so that the background worker never sees these projections (the worker's
-- own switch point is attacked in test/t/062_worker_attacks.pl).
BEGIN;
SET LOCAL ROLE regress_id_admin;
SELECT es_create_projection('id_rebuilt', 'id_admin.apply(es_events)', NULL, 'async', 'id_admin.reset()', true);
SELECT es_create_projection('id_async', 'id_admin.apply(es_events)', NULL, 'async');
RESET ROLE;
SAVEPOINT rebuild;
\set VERBOSITY sqlstate
SELECT es_rebuild_projection('id_rebuilt');
\set VERBOSITY default
ROLLBACK TO rebuild;
SET LOCAL client_min_messages = error;
SELECT es_apply_projections('id_async') AS applied;
SELECT es_apply_projections('id_async') AS applied;
SELECT es_apply_projections('id_async') AS applied;
RESET client_min_messages;
SELECT state, error_sqlstate, retries, last_error FROM es_projection_status WHERE name = 'id_async';
ROLLBACK;
RESET search_path;

-- a reducer under a snapshot policy, run by a superuser: refused too
CREATE FUNCTION id_admin.fold(state jsonb, e es_events) RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO id_admin.model VALUES (e.stream_id || '-' || e.version, 1);
	RETURN state;
END $$;
ALTER FUNCTION id_admin.fold(jsonb, es_events) OWNER TO regress_id_admin;
SELECT es_set_snapshot_policy('id_admin.fold(jsonb,es_events)', 1);
SELECT es_append('id-2', 'A', '{}') AS v, es_append('id-2', 'B', '{}') AS v2;
\set VERBOSITY sqlstate
SELECT es_aggregate('id-2', 'id_admin.fold(jsonb,es_events)');
\set VERBOSITY default
SELECT es_drop_snapshot_policy('id_admin.fold(jsonb,es_events)');

-- nothing ever fired, the admin is no superuser, the model is empty
SELECT * FROM id_admin.fired;
SELECT rolsuper FROM pg_roles WHERE rolname = 'regress_id_admin';
SELECT count(*) AS model_rows FROM id_admin.model;

-- a handler cannot change roles, and the settings it changes, even with a
-- plain SET, are gone when it returns
CREATE FUNCTION id_admin.meddle(e es_events) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	PERFORM set_config('search_path', 'id_admin', false);
	PERFORM set_config('work_mem', '7MB', false);
	IF e.event_type = 'Role' THEN
		EXECUTE 'SET ROLE regress_id_admin';
	END IF;
END $$;
ALTER FUNCTION id_admin.meddle(es_events) OWNER TO regress_id_admin;
SET ROLE regress_id_admin;
SELECT es_create_projection('id_meddle', 'id_admin.meddle(es_events)', NULL, 'inline', NULL, false);
RESET ROLE;
SET ROLE regress_id_appender;
SET search_path = public;
SELECT es_append('id-3', 'Settings', '{}') AS v;
SELECT current_setting('search_path') AS search_path, current_setting('work_mem') AS work_mem,
	   current_user;
\set VERBOSITY sqlstate
SELECT es_append('id-3', 'Role', '{}');
\set VERBOSITY default
RESET search_path;
RESET ROLE;
SELECT es_drop_projection('id_meddle');

-- the reader's poison: its own + for numeric, first on its search_path,
-- does not reach the snapshot a policy stores; the appender's next fold
-- gives the right balance
CREATE FUNCTION public.id_balance(state jsonb, e es_events) RETURNS jsonb
	LANGUAGE sql IMMUTABLE AS $$
	SELECT jsonb_build_object('balance', coalesce((state->>'balance')::numeric, 0) + (e.data->>'amount')::numeric) $$;
SELECT es_set_snapshot_policy('id_balance(jsonb,es_events)', 10);
SELECT es_append_batch('id-acc', (SELECT jsonb_agg(jsonb_build_object('type', 'Deposited', 'data', jsonb_build_object('amount', 50)))
									FROM generate_series(1, 50)), 0) AS v;
CREATE SCHEMA id_evil AUTHORIZATION regress_id_reader;
SET ROLE regress_id_reader;
CREATE FUNCTION id_evil.poison(numeric, numeric) RETURNS numeric LANGUAGE sql
	AS $$ SELECT pg_catalog.numeric_add(pg_catalog.numeric_mul($1, 100), $2) $$;
CREATE OPERATOR id_evil.+ (LEFTARG = numeric, RIGHTARG = numeric, FUNCTION = id_evil.poison);
SET search_path = id_evil, pg_catalog, public;
SELECT 1::numeric + 1::numeric AS poisoned_here;
SELECT es_aggregate('id-acc', 'public.id_balance(jsonb,public.es_events)') AS reader_sees;
RESET search_path;
RESET ROLE;
SELECT version, state FROM es_snapshots WHERE stream_id = 'id-acc';
SET ROLE regress_id_appender;
SELECT es_aggregate('id-acc', 'id_balance(jsonb,es_events)') AS appender_sees;
RESET ROLE;

-- clean up
SELECT es_drop_snapshot_policy('id_balance(jsonb,es_events)');
SELECT es_drop_snapshots('id_balance(jsonb,es_events)');
SELECT es_drop_snapshots('id_admin.fold(jsonb,es_events)');
DROP FUNCTION public.id_balance(jsonb, es_events);
SET client_min_messages = warning;
DROP SCHEMA id_admin CASCADE;
DROP SCHEMA id_evil CASCADE;
SELECT es_revoke_reader('regress_id_admin');
SELECT es_revoke_reader('regress_id_appender');
SELECT es_revoke_reader('regress_id_reader');
DROP ROLE regress_id_admin;
DROP ROLE regress_id_appender;
DROP ROLE regress_id_reader;
RESET client_min_messages;
