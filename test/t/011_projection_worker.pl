# The projection workers and the databases they sit in.
#
# With es_pg preloaded: a database's worker applies async projections with
# no call from the application; DROP DATABASE, ALTER DATABASE RENAME and
# CREATE DATABASE ... TEMPLATE still work while it is connected (it steps
# aside); it comes back after a restart; a pg_dump/pg_restore copy keeps the
# read models and checkpoints and carries on (no handler re-run on restore).
#
# Without preloading: creating an async projection starts the database's
# worker, and after a restart the first appends (from several sessions:
# one worker between them), es_start_projection_worker or a wait for an
# async projection do; the worker leaves with the last async projection;
# nothing errors, rebuilds and waits work; with the workers off the status
# says so.

use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep time);

my $setup = q{
	CREATE EXTENSION es_pg;
	CREATE TABLE seen (event_id uuid PRIMARY KEY, n integer NOT NULL);
	CREATE FUNCTION seen_apply(event es_events) RETURNS void
	LANGUAGE sql AS $$
		INSERT INTO seen VALUES (event.event_id, 1)
		ON CONFLICT (event_id) DO UPDATE SET n = seen.n + 1
	$$;
	CREATE FUNCTION seen_reset() RETURNS void
	LANGUAGE sql AS $$ DELETE FROM seen $$;
	CREATE TABLE inline_seen (event_id uuid PRIMARY KEY, n integer NOT NULL);
	CREATE FUNCTION inline_apply(event es_events) RETURNS void
	LANGUAGE sql AS $$
		INSERT INTO inline_seen VALUES (event.event_id, 1)
		ON CONFLICT (event_id) DO UPDATE SET n = inline_seen.n + 1
	$$;
	SELECT es_create_projection('w_async', 'seen_apply(es_events)', NULL,
		'async', 'seen_reset()');
	SELECT es_create_projection('w_inline', 'inline_apply(es_events)');
};

my $append10 = q{
	SELECT es_append_batch('w-' || pg_catalog.gen_random_uuid(), (
		SELECT jsonb_agg(jsonb_build_object('type', 'W', 'data',
											jsonb_build_object('i', i)))
		  FROM generate_series(1, 10) i));
};

my $caught_up = q{
	SELECT es_wait_for_projection('w_async', es_head_position(), '30 s')
};

sub workers_in
{
	my ($node, $db) = @_;
	return $node->safe_psql('postgres', qq{
		SELECT count(*) FROM pg_stat_activity
		 WHERE backend_type = 'es_pg projection worker' AND datname = '$db'});
}

# wait up to ten seconds for a condition
sub eventually
{
	my ($node, $db, $sql, $want) = @_;
	my $got;
	for my $try (1 .. 100)
	{
		$got = $node->safe_psql($db, $sql);
		return $got if $got eq $want;
		usleep(100_000);
	}
	return $got;
}

#
# With es_pg preloaded
#
my $node = PostgreSQL::Test::Cluster->new('workers');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'es_pg'
max_worker_processes = 16
});
$node->start;

$node->safe_psql('postgres', 'CREATE DATABASE wdb1');
$node->safe_psql('wdb1', $setup);
$node->safe_psql('wdb1', $append10);
is($node->safe_psql('wdb1', $caught_up), 't',
	'the worker applies the events of a new database');
is(eventually($node, 'postgres',
		q{SELECT count(*) FROM pg_stat_activity
		   WHERE backend_type = 'es_pg projection worker' AND datname = 'wdb1'}, '1'),
	'1', 'one worker in the database');

# database-wide commands while the worker is connected
my $t0 = time();
$node->safe_psql('postgres', 'CREATE DATABASE wdb2 TEMPLATE wdb1');
$node->safe_psql('postgres', 'ALTER DATABASE wdb1 RENAME TO wdb1r');
ok(time() - $t0 < 20, 'CREATE DATABASE ... TEMPLATE and RENAME succeed with the worker connected');
is($node->safe_psql('wdb2', 'SELECT count(*) FROM seen'), '10',
	'the copy has the read model');
$node->safe_psql('wdb2', $append10);
is($node->safe_psql('wdb2', $caught_up), 't',
	'the copied database gets a worker of its own');
is(eventually($node, 'wdb1r', "SELECT count(*) > 0 FROM pg_stat_activity WHERE backend_type = 'es_pg projection worker' AND datname = 'wdb1r'", 't'),
	't', 'the worker comes back to the renamed database');
$t0 = time();
$node->safe_psql('postgres', 'DROP DATABASE wdb1r');
ok(time() - $t0 < 10, 'DROP DATABASE succeeds with the worker connected');

# after a restart the worker comes back and catches up
$node->restart;
$node->safe_psql('wdb2', $append10);
is($node->safe_psql('wdb2', $caught_up), 't', 'the worker is back after a restart');
is($node->safe_psql('wdb2', 'SELECT count(*) || \' \' || max(n) FROM seen'),
	'30 1', 'every event applied once');

# dump and restore: read models and checkpoints come from the dump; the
# restore re-runs no handler, and the async projection carries on
my $dump = PostgreSQL::Test::Utils::tempdir . '/wdb2.dump';
$node->command_ok([ 'pg_dump', '-Fc', '-f', $dump, '-d', $node->connstr('wdb2') ],
	'pg_dump');
$node->safe_psql('postgres', 'CREATE DATABASE wdb3');
$node->command_ok([ 'pg_restore', '-d', $node->connstr('wdb3'), $dump ],
	'pg_restore');
is( $node->safe_psql('wdb3', q{
		SELECT (SELECT count(*) FROM seen) || ' ' || (SELECT max(n) FROM seen)
			   || ' ' || (SELECT count(*) FROM inline_seen) || ' '
			   || (SELECT max(n) FROM inline_seen)}),
	'30 1 30 1', 'read models restored as dumped, no handler re-run');
is( $node->safe_psql('wdb3', q{
		SELECT string_agg(name || ':' || state || ':' || (position = head_position), ',' ORDER BY name)
		  FROM es_projection_status}),
	'w_async:running:true,w_inline:running:true', 'projections restored at the head');
$node->safe_psql('wdb3', $append10);
is($node->safe_psql('wdb3', $caught_up), 't',
	'the restored async projection is applied by a worker');
is( $node->safe_psql('wdb3', q{
		SELECT (SELECT count(*) FROM seen) || ' ' || (SELECT max(n) FROM seen)
			   || ' ' || (SELECT count(*) FROM inline_seen) || ' '
			   || (SELECT max(n) FROM inline_seen)}),
	'40 1 40 1', 'both projections follow new appends in the restored database');

# turning the workers off stops them; es_apply_projections still works
$node->append_conf('postgresql.conf', 'es_pg.projection_workers = off');
$node->reload;
is(eventually($node, 'postgres', "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'es_pg projection worker'", '0'),
	'0', 'es_pg.projection_workers = off stops the workers');
$node->safe_psql('wdb3', $append10);
is($node->safe_psql('wdb3', q{SELECT es_wait_for_projection('w_async', es_head_position(), '1 s')}),
	'f', 'no worker applies');
is($node->safe_psql('wdb3', q{SELECT es_apply_projections()}), '10',
	'es_apply_projections applies');
$node->stop;

#
# Without preloading: no shared memory, no launcher.  Creating an async
# projection starts the database's worker (the committing backend registers
# it); after a restart the first append for an async projection does; the
# worker leaves when the last async projection goes; with the workers
# turned off nothing starts and es_apply_projections still applies.
#
my $plain = PostgreSQL::Test::Cluster->new('plain');
$plain->init;
$plain->start;
$plain->safe_psql('postgres', $setup);
is(eventually($plain, 'postgres', "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'es_pg projection worker'", '1'),
	'1', 'creating an async projection starts a worker, without preloading');
$plain->safe_psql('postgres', $append10);
is($plain->safe_psql('postgres', $caught_up), 't',
	'the worker applies new events');
is($plain->safe_psql('postgres', 'SELECT count(*) FROM es_projection_progress()'),
	'0', 'no progress slots without preloading, and no error');
is($plain->safe_psql('postgres', q{SELECT es_rebuild_projection('w_async')}), '10',
	'rebuild works without shared memory');
is($plain->safe_psql('postgres', q{SELECT es_start_projection_worker()}), 't',
	'es_start_projection_worker: one runs');
is($plain->safe_psql('postgres', q{SELECT state FROM es_projection_worker()}), 'running',
	'es_projection_worker sees it');
# (a change of es_projections also starts a worker, which leaves at once
# if the running one stays)
is(eventually($plain, 'postgres', "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'es_pg projection worker'", '1'),
	'1', 'still one worker');

# after a restart: no worker until something needs one
$plain->restart;
is($plain->safe_psql('postgres', "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'es_pg projection worker'"),
	'0', 'no worker after a restart');
is($plain->safe_psql('postgres', q{SELECT state || ': ' || reason FROM es_projection_worker()}),
	'not running: es_pg is not preloaded: the next append for an async projection, or es_start_projection_worker(), starts one',
	'es_projection_worker says why, and what starts one');
# appends from several sessions, one after another, start one worker
my @bg;
for my $i (1 .. 4)
{
	push @bg, $plain->background_psql('postgres');
}
$_->query_safe($append10) for @bg;
$_->quit for @bg;
is($plain->safe_psql('postgres', $caught_up), 't',
	'the first appends after a restart start a worker, which applies them');
is(eventually($plain, 'postgres', "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'es_pg projection worker'", '1'),
	'1', 'one worker, however many sessions woke it');
is($plain->safe_psql('postgres', 'SELECT count(*) || \' \' || max(n) FROM seen'),
	'50 1', 'every event applied once');

# a restart, then es_start_projection_worker
$plain->restart;
is($plain->safe_psql('postgres', q{SELECT es_start_projection_worker()}), 't',
	'es_start_projection_worker starts a worker after a restart');
$plain->safe_psql('postgres', $append10);
is($plain->safe_psql('postgres', $caught_up), 't', 'which applies');

# the last async projection goes: the worker leaves
$plain->safe_psql('postgres', q{SELECT es_drop_projection('w_async')});
is(eventually($plain, 'postgres', "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'es_pg projection worker'", '0'),
	'0', 'the worker leaves with the last async projection');
is($plain->safe_psql('postgres', q{SELECT state FROM es_projection_worker()}), 'not needed',
	'no worker needed');

# workers off: creating one starts nothing, the status says so
$plain->append_conf('postgresql.conf', 'es_pg.projection_workers = off');
$plain->reload;
$plain->safe_psql('postgres', q{SELECT es_create_projection('w_async', 'seen_apply(es_events)', NULL, 'async', 'seen_reset()', false)});
$plain->safe_psql('postgres', $append10);
usleep(500_000);
is($plain->safe_psql('postgres', "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'es_pg projection worker'"),
	'0', 'es_pg.projection_workers = off: no worker starts');
is($plain->safe_psql('postgres',
		q{SELECT state || ' ' || lag_events || ' ' || worker_state FROM es_projection_status WHERE name = 'w_async'}),
	'no worker 10 disabled', 'the status view shows the lag and why');
my ($ret, $out, $err) = $plain->psql('postgres', q{SELECT es_start_projection_worker()});
is($out, 'f', 'es_start_projection_worker says false');
like($err, qr/WARNING:  es_pg.projection_workers is off/, 'with a warning naming the setting');
is($plain->safe_psql('postgres', q{SELECT es_apply_projections('w_async')}), '10',
	'es_apply_projections applies');

# workers on again, events pending and no worker: a wait for the projection
# is a call that needs one, and starts it
$plain->safe_psql('postgres', $append10);
$plain->append_conf('postgresql.conf', 'es_pg.projection_workers = on');
$plain->reload;
usleep(500_000);
is($plain->safe_psql('postgres', "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'es_pg projection worker'"),
	'0', 'no worker yet');
is($plain->safe_psql('postgres', $caught_up), 't',
	'es_wait_for_projection starts the worker it waits for');
$plain->stop;

done_testing();
