# Workers go only where async projections are, whatever the number of
# databases.
#
# With es_pg preloaded and the default max_worker_processes (8): nine
# databases with es_pg and one async projection (in the last one).  The
# one that needs a worker gets it, the others keep none (before the fix the
# launcher gave the first seven a worker each and the ninth none); the same
# after a restart, and with 66 more databases without es_pg (the launcher
# had 64 slots shared by every database).  Log lines name databases, never
# OIDs.
#
# With max_worker_processes = 2 (the logical replication launcher and
# es_pg's launcher take both): no worker can start; es_projection_status
# says 'no worker' with the reason, es_start_projection_worker() returns
# false with a WARNING naming max_worker_processes, and the server log says
# so once per database, not every ten seconds.

use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

my $node = PostgreSQL::Test::Cluster->new('slots');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'es_pg'
es_pg.projection_naptime = 100
});
$node->start;
is($node->safe_psql('postgres', 'SHOW max_worker_processes'), '8',
	'the default max_worker_processes');

sub workers
{
	return $node->safe_psql('postgres', q{
		SELECT coalesce(string_agg(datname, ',' ORDER BY datname), '')
		  FROM pg_stat_activity
		 WHERE backend_type = 'es_pg projection worker'});
}

# wait up to 30 s for a query to give what is wanted
sub eventually
{
	my ($db, $sql, $want) = @_;
	my $got;
	for my $try (1 .. 300)
	{
		$got = $node->safe_psql($db, $sql);
		return $got if $got eq $want;
		usleep(100_000);
	}
	return $got;
}

for my $i (1 .. 9)
{
	$node->safe_psql('postgres', "CREATE DATABASE es$i");
	$node->safe_psql("es$i", 'CREATE EXTENSION es_pg');
	$node->safe_psql("es$i", q{SELECT es_append('a-1', 'A', '{}')});
}
$node->safe_psql('es9', q{
	CREATE TABLE seen (event_id uuid PRIMARY KEY);
	CREATE FUNCTION seen_apply(event es_events) RETURNS void
	LANGUAGE sql AS $$ INSERT INTO seen VALUES (event.event_id) $$;
	SELECT es_create_projection('served', 'seen_apply(es_events)', NULL, 'async');
});
my $caught_up = q{SELECT es_wait_for_projection('served', es_head_position(), '30 s')};
my $append = q{SELECT es_append('b-' || gen_random_uuid(), 'B', '{}')};

$node->safe_psql('es9', $append);
is($node->safe_psql('es9', $caught_up), 't', 'the ninth database is served');
# (the launcher looks into each new database once: those looks leave at
# once, so wait for them to be gone)
is(eventually('postgres', q{SELECT string_agg(datname, ',') FROM pg_stat_activity
		WHERE backend_type = 'es_pg projection worker'}, 'es9'),
	'es9', 'one worker in all, in the database that has the async projection');
is($node->safe_psql('es9', q{SELECT state || ' ' || worker_state FROM es_projection_status}),
	'running running', 'its status');
is($node->safe_psql('es1', q{SELECT state FROM es_projection_worker()}),
	'not needed', 'a database without async projections needs none');

# after a restart the launcher looks into every database and starts the
# one worker needed, with no append to ask for it
$node->restart;
is(eventually('postgres', q{SELECT string_agg(datname, ',') FROM pg_stat_activity
		WHERE backend_type = 'es_pg projection worker'}, 'es9'),
	'es9', 'after a restart: the one worker, in es9');
$node->safe_psql('es9', $append);
is($node->safe_psql('es9', $caught_up), 't', 'served after a restart');

# 66 databases without es_pg take no slot
for my $i (1 .. 66)
{
	$node->safe_psql('postgres', "CREATE DATABASE plain$i");
}
$node->restart;
$node->safe_psql('es9', $append);
is($node->safe_psql('es9', $caught_up), 't',
	'served with 75 databases, 66 of them without es_pg');
is(eventually('postgres', q{SELECT string_agg(datname, ',') FROM pg_stat_activity
		WHERE backend_type = 'es_pg projection worker'}, 'es9'),
	'es9', 'still the one worker');
# and a second database that gets an async projection then gets a worker
$node->safe_psql('es5', q{
	CREATE TABLE seen (event_id uuid PRIMARY KEY);
	CREATE FUNCTION seen_apply(event es_events) RETURNS void
	LANGUAGE sql AS $$ INSERT INTO seen VALUES (event.event_id) $$;
	SELECT es_create_projection('served', 'seen_apply(es_events)', NULL, 'async');
});
$node->safe_psql('es5', $append);
is($node->safe_psql('es5', $caught_up), 't', 'a new async projection elsewhere is served');
is(eventually('postgres', q{SELECT string_agg(datname, ',' ORDER BY datname) FROM pg_stat_activity
		WHERE backend_type = 'es_pg projection worker'}, 'es5,es9'),
	'es5,es9', 'two workers, where the async projections are');
$node->safe_psql('es5', q{SELECT es_drop_projection('served')});
is(eventually('postgres', q{SELECT string_agg(datname, ',') FROM pg_stat_activity
		WHERE backend_type = 'es_pg projection worker'}, 'es9'),
	'es9', 'the worker leaves with the last async projection');

my $log = slurp_file($node->logfile);
unlike($log, qr/projection worker for database \d+/,
	'no log line names a database by OID');
unlike($log, qr/could not start/, 'no worker failed to start');

# no room for any worker: max_worker_processes = 2
$node->append_conf('postgresql.conf', 'max_worker_processes = 2');
$node->restart;
my $logstart = -s $node->logfile;
$node->safe_psql('es9', $append);
is(eventually('es9', q{SELECT state || ' | ' || worker_state || ' | ' || worker_reason
		FROM es_projection_status}, 'no worker | failed | no background worker slot is free: raise max_worker_processes (needs a restart)'),
	'no worker | failed | no background worker slot is free: raise max_worker_processes (needs a restart)',
	'the status says there is no worker, and why');
my ($ret, $out, $err) = $node->psql('es9', q{SELECT es_start_projection_worker()});
is($out, 'f', 'es_start_projection_worker() returns false');
like($err, qr/WARNING:  could not start an es_pg projection worker for database "es9"/,
	'with a warning naming the database');
like($err, qr/HINT:  Raise max_worker_processes/, 'and the setting to raise');
# the launcher tries every ten seconds; the log says so once
sleep(25);
my $tail = substr(slurp_file($node->logfile), $logstart);
my $lines = () = $tail =~ /LOG:  es_pg could not start a projection worker for database "es9"/g;
is($lines, 1, 'the log says it once for es9, not every ten seconds');
unlike($tail, qr/could not start a projection worker for database "(es[1-8]|plain\d+|postgres)"/,
	'nothing about databases that need no worker');
is($node->safe_psql('es9', q{SELECT es_apply_projections()}), '1',
	'es_apply_projections still applies');

# room again: served, and the log says so
$node->append_conf('postgresql.conf', 'max_worker_processes = 8');
$node->restart;
$node->safe_psql('es9', $append);
is($node->safe_psql('es9', $caught_up), 't', 'served again with room for it');

$node->stop;
done_testing();
