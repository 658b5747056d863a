
# Attacks on the background worker, which connects as a superuser.
#
#   - A read model owned by a non-superuser admin carries a deferred
#     constraint trigger that tries to make the admin a superuser.  Promise:
#     the worker runs the handler as the projection's creator in a
#     security-restricted operation; the deferred trigger is refused (42501),
#     recorded as the handler's error, retried and parked (the event, in the
#     projection's subscription); it never fires.
#   - A handler that never returns (pg_sleep) or raises 57014 itself.
#     Promise: the worker cancels it after its timeout, records 57014,
#     retries and parks the event; the worker lives on; other projections
#     go on.
#   - es_drop_projection, es_rebuild_projection and DROP DATABASE while a
#     handler is stuck (with a timeout of an hour).  Promise: each finishes
#     within seconds.

use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep time);

my $node = PostgreSQL::Test::Cluster->new('worker_attacks');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'es_pg'
max_worker_processes = 16
es_pg.projection_naptime = 100
});
$node->start;

# wait up to twenty seconds for a query to give the wanted answer
sub eventually
{
	my ($db, $sql, $want) = @_;
	my $got;
	for my $try (1 .. 200)
	{
		$got = $node->safe_psql($db, $sql);
		return $got if $got eq $want;
		usleep(100_000);
	}
	return $got;
}

$node->safe_psql('postgres', q{
	CREATE EXTENSION es_pg;
	CREATE ROLE regress_admin;
	SELECT es_grant_admin('regress_admin');
	CREATE SCHEMA adm AUTHORIZATION regress_admin;
	SET ROLE regress_admin;
	CREATE TABLE adm.model (stream_id text PRIMARY KEY, n int NOT NULL);
	CREATE TABLE adm.fired (who text);
	CREATE FUNCTION adm.escalate() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN
		INSERT INTO adm.fired VALUES (current_user);
		EXECUTE 'ALTER ROLE regress_admin SUPERUSER';
		RETURN NULL;
	END $$;
	CREATE CONSTRAINT TRIGGER later AFTER INSERT OR UPDATE ON adm.model
		DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION adm.escalate();
	CREATE FUNCTION adm.apply(e es_events) RETURNS void LANGUAGE sql AS $$
		INSERT INTO adm.model VALUES (e.stream_id, 1)
		ON CONFLICT (stream_id) DO UPDATE SET n = model.n + 1 $$;
	SELECT es_create_projection('escalation', 'adm.apply(es_events)', ARRAY['Escalate'], 'async');
	RESET ROLE;

	-- a handler that sleeps while ctl.stuck says so, and one that cancels itself
	CREATE TABLE ctl (stuck boolean NOT NULL);
	INSERT INTO ctl VALUES (true);
	CREATE TABLE slow_model (position bigint PRIMARY KEY);
	CREATE FUNCTION slow_apply(e es_events) RETURNS void LANGUAGE plpgsql AS $$
	BEGIN
		IF (SELECT stuck FROM ctl) THEN
			PERFORM pg_sleep(3600);
		END IF;
		INSERT INTO slow_model VALUES (e.global_position);
	END $$;
	CREATE FUNCTION slow_reset() RETURNS void LANGUAGE sql AS $$ DELETE FROM slow_model $$;
	CREATE FUNCTION self_cancel(e es_events) RETURNS void LANGUAGE plpgsql AS $$
	BEGIN
		RAISE EXCEPTION 'giving up' USING ERRCODE = 'query_canceled';
	END $$;
	CREATE TABLE ok_model (position bigint PRIMARY KEY);
	CREATE FUNCTION ok_apply(e es_events) RETURNS void LANGUAGE sql AS $$
		INSERT INTO ok_model VALUES (e.global_position) $$;
	SELECT es_create_projection('timed', 'slow_apply(es_events)', ARRAY['Slow'], 'async', 'slow_reset()');
	SELECT es_set_projection_timeout('timed', '300 ms');
	SELECT es_create_projection('self_cancel', 'self_cancel(es_events)', ARRAY['Cancel'], 'async');
	SELECT es_create_projection('bystander', 'ok_apply(es_events)', NULL, 'async');
});

# the escalation attempt, the stuck handler, the self-canceling one
$node->safe_psql('postgres', q{
	SELECT es_append('attack-1', 'Escalate', '{}');
	SELECT es_append('attack-2', 'Slow', '{}');
	SELECT es_append('attack-3', 'Cancel', '{}');
});
# each parks its event in its subscription after three attempts and goes
# on after it (one mechanism with subscriptions: es_parked_events)
for my $name ('escalation', 'timed', 'self_cancel')
{
	is(eventually('postgres',
			qq{SELECT count(*) FROM es_parked_events WHERE subscription = '$name'}, '1'),
		'1', "$name: its event parked after its retries");
	is($node->safe_psql('postgres',
			qq{SELECT state || ' ' || parked || ' ' || lag_events FROM es_projection_status WHERE name = '$name'}),
		'running 1 0', "$name: the projection goes on after it");
}
is($node->safe_psql('postgres', q{
		SELECT s.error_sqlstate || ' ' || k.attempts FROM es_projection_status s
		  JOIN es_parked_events k ON k.subscription = s.name WHERE s.name = 'escalation'}),
	'42501 3', 'escalation: the deferred trigger was refused (42501), three times');
is($node->safe_psql('postgres', q{SELECT count(*) FROM adm.fired}),
	'0', 'escalation: the trigger never fired');
is($node->safe_psql('postgres', q{SELECT rolsuper FROM pg_roles WHERE rolname = 'regress_admin'}),
	'f', 'escalation: the admin is no superuser');
like($node->safe_psql('postgres', q{
		SELECT s.error_sqlstate || ' ' || k.attempts || ' ' || k.last_error FROM es_projection_status s
		  JOIN es_parked_events k ON k.subscription = s.name WHERE s.name = 'timed'}),
	qr/^57014 3 the projection's handler calls were canceled after 300 ms/,
	'timed: canceled after its timeout, recorded as 57014');
is($node->safe_psql('postgres', q{
		SELECT s.error_sqlstate || ' ' || k.attempts FROM es_projection_status s
		  JOIN es_parked_events k ON k.subscription = s.name WHERE s.name = 'self_cancel'}),
	'57014 3', 'self_cancel: a handler raising 57014 is retried and parked');
is(eventually('postgres', q{SELECT count(*) = (SELECT count(*) FROM es_events) FROM ok_model}, 't'),
	't', 'bystander: another projection applied every event meanwhile');
is($node->safe_psql('postgres', q{
		SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'es_pg projection worker'}),
	'1', 'the worker lives on');

# stuck for an hour: drop, rebuild and DROP DATABASE do not wait for it
$node->safe_psql('postgres', q{
	SELECT es_set_projection_timeout('timed', '1 hour');
	SELECT es_replay_parked('timed');
});
is(eventually('postgres', q{
		SELECT count(*) FROM pg_stat_activity
		 WHERE backend_type = 'es_pg projection worker' AND wait_event = 'PgSleep'}, '1'),
	'1', 'the worker is stuck in the handler');
$node->safe_psql('postgres', q{UPDATE ctl SET stuck = false});
my $t0 = time;
is($node->safe_psql('postgres', q{SELECT es_rebuild_projection('timed')}), '1',
	'es_rebuild_projection takes a stuck projection over and replays it');
cmp_ok(time - $t0, '<', 10, 'within seconds');
is($node->safe_psql('postgres', q{SELECT state FROM es_projection_status WHERE name = 'timed'}),
	'running', 'the rebuilt projection runs');

$node->safe_psql('postgres', q{UPDATE ctl SET stuck = true});
$node->safe_psql('postgres', q{SELECT es_append('attack-4', 'Slow', '{}')});
is(eventually('postgres', q{
		SELECT count(*) FROM pg_stat_activity
		 WHERE backend_type = 'es_pg projection worker' AND wait_event = 'PgSleep'}, '1'),
	'1', 'the worker is stuck again');
$t0 = time;
$node->safe_psql('postgres', q{SELECT es_drop_projection('timed')});
cmp_ok(time - $t0, '<', 10, 'es_drop_projection of a stuck projection finishes within seconds');
is($node->safe_psql('postgres', q{SELECT count(*) FROM es_projections WHERE name = 'timed'}),
	'0', 'and the projection is gone');

# DROP DATABASE of a database whose worker is stuck
$node->safe_psql('postgres', 'CREATE DATABASE doomed');
$node->safe_psql('doomed', q{
	CREATE EXTENSION es_pg;
	CREATE FUNCTION sleepy(e es_events) RETURNS void LANGUAGE sql AS $$ SELECT pg_sleep(3600) $$;
	SELECT es_create_projection('sleepy', 'sleepy(es_events)', NULL, 'async');
	SELECT es_set_projection_timeout('sleepy', '1 hour');
	SELECT es_append('doomed-1', 'Sleep', '{}');
});
is(eventually('postgres', q{
		SELECT count(*) FROM pg_stat_activity
		 WHERE backend_type = 'es_pg projection worker' AND datname = 'doomed'
		   AND wait_event = 'PgSleep'}, '1'),
	'1', 'the worker of the doomed database is stuck');
$t0 = time;
my ($ret, $out, $err) = $node->psql('postgres', 'DROP DATABASE doomed');
is($ret, 0, 'DROP DATABASE succeeds while its worker is stuck') or diag $err;
cmp_ok(time - $t0, '<', 10, 'within seconds');

$node->stop;
done_testing();
