
# Attacks on history from other identities and other entry points than
# test/sql/guard_ddl.sql (which runs the DDL matrix as a superuser):
#
#   - the DDL matrix as the (non-superuser) owner of es_events, and as the
#     owner of the schema es_pg is installed in;
#   - logical replication into es_events: a subscription that would
#     replicate into it is refused; one made with the guards switched off
#     gets its INSERTs, UPDATEs and DELETEs refused by the apply worker;
#   - the boundary: a superuser who switches the event triggers off can
#     rewrite an event; the feed then steps over the dead row instead of
#     stopping for good.
# Promise: every attack fails and history is exactly as before.

use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

my $node = PostgreSQL::Test::Cluster->new('guards');
$node->init(allows_streaming => 'logical');
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'es_pg'");
$node->start;

my $digest = q{
	SELECT count(*) || ' ' || md5(string_agg(global_position || stream_id || version ||
		event_type || data::text, ',' ORDER BY global_position)) FROM %s.es_events};

# the attacks, each rolled back even if it succeeds; %s is the schema
my @attacks = (
	[ 'rewrite payloads', q{ALTER TABLE %s.es_events ALTER COLUMN data TYPE jsonb USING '{}'} ],
	[ 'change a default', q{ALTER TABLE %s.es_events ALTER COLUMN global_position SET DEFAULT 1} ],
	[ 'drop NOT NULL', q{ALTER TABLE %s.es_events ALTER COLUMN data DROP NOT NULL} ],
	[ 'add a column', q{ALTER TABLE %s.es_events ADD COLUMN x int} ],
	[ 'rename the table', q{ALTER TABLE %s.es_events RENAME TO h} ],
	[ 'move the table', q{ALTER TABLE %s.es_events SET SCHEMA public} ],
	[ 'unlogged', q{ALTER TABLE %s.es_events SET UNLOGGED} ],
	[ 'disable the guards', q{ALTER TABLE %s.es_events DISABLE TRIGGER ALL} ],
	[ 'drop the insert check', q{ALTER TABLE %s.es_events DROP CONSTRAINT es_events_insert_check} ],
	[ 'a rule', q{CREATE RULE r AS ON DELETE TO %s.es_events DO INSTEAD NOTHING} ],
	[ 'replace a function',
	  q{CREATE OR REPLACE FUNCTION %s.es_events_append_only() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NULL; END'} ],
	[ 'detach a function', q{ALTER EXTENSION es_pg DROP FUNCTION %s.es_events_append_only()} ],
	[ 'restart the sequence', q{ALTER SEQUENCE %s.es_events_position_seq RESTART WITH 1} ],
	[ 'inherit from it', q{CREATE TABLE public.child () INHERITS (%s.es_events)} ],
	[ 'rename the schema', q{ALTER SCHEMA %s RENAME TO elsewhere} ],
	[ 'drop the schema', q{DROP SCHEMA %s CASCADE} ],
	[ 'drop the table', q{DROP TABLE %s.es_events CASCADE} ],
	[ 'delete', q{DELETE FROM %s.es_events} ],
	[ 'update', q{UPDATE %s.es_events SET data = '{}'} ],
	[ 'truncate', q{TRUNCATE %s.es_events} ],);

# run_matrix(db, schema, role): every attack as role; returns "label sqlstate" lines
sub run_matrix
{
	my ($db, $schema, $role) = @_;
	my @lines;
	for my $a (@attacks)
	{
		my $sql = sprintf($a->[1], $schema);
		my ($ret, $out, $err) = $node->psql($db, qq{
			SET ROLE $role;
			DO \$do\$ BEGIN
				EXECUTE \$sql\$$sql\$sql\$;
				RAISE EXCEPTION 'allowed' USING ERRCODE = 'ES999';
			EXCEPTION WHEN OTHERS THEN
				RAISE NOTICE 'sqlstate %', CASE SQLSTATE WHEN 'ES999' THEN 'ALLOWED' ELSE SQLSTATE END;
			END \$do\$;});
		my ($state) = $err =~ /sqlstate (\S+)/;
		push @lines, "$a->[0]: " . ($state // "no answer: $err");
	}
	return @lines;
}

#
# The owner of es_events, not a superuser (ownership handed over by a
# superuser with the guards switched off, as a DBA might have done)
#
$node->safe_psql('postgres', q{
	CREATE ROLE regress_owner;
	CREATE DATABASE owned;
});
$node->safe_psql('owned', q{
	CREATE EXTENSION es_pg;
	SELECT es_append_batch('own-1', '[{"type": "A", "data": {"n": 1}}, {"type": "B", "data": {"n": 2}}]');
	ALTER EVENT TRIGGER es_guard_ddl_start DISABLE;
	ALTER EVENT TRIGGER es_guard_ddl_end DISABLE;
	ALTER TABLE es_events OWNER TO regress_owner;
	ALTER EVENT TRIGGER es_guard_ddl_start ENABLE ALWAYS;
	ALTER EVENT TRIGGER es_guard_ddl_end ENABLE ALWAYS;
	GRANT CREATE ON SCHEMA public TO regress_owner;
});
is($node->safe_psql('owned', q{SELECT relowner::regrole FROM pg_class WHERE oid = 'es_events'::regclass}),
	'regress_owner', 'es_events is owned by a non-superuser');
my $before = $node->safe_psql('owned', sprintf($digest, 'public'));
for my $line (run_matrix('owned', 'public', 'regress_owner'))
{
	unlike($line, qr/ALLOWED|no answer/, "as the table owner: $line");
}
is($node->safe_psql('owned', sprintf($digest, 'public')), $before,
	'as the table owner: history is unchanged');

#
# The owner of the schema es_pg is installed in
#
$node->safe_psql('postgres', q{
	CREATE ROLE regress_schema_owner;
	CREATE DATABASE schemed;
});
$node->safe_psql('schemed', q{
	CREATE SCHEMA store AUTHORIZATION regress_schema_owner;
	CREATE EXTENSION es_pg SCHEMA store;
	SELECT store.es_append_batch('sch-1', '[{"type": "A", "data": {"n": 1}}, {"type": "B", "data": {"n": 2}}]');
	GRANT CREATE ON SCHEMA public TO regress_schema_owner;
});
$before = $node->safe_psql('schemed', sprintf($digest, 'store'));
for my $line (run_matrix('schemed', 'store', 'regress_schema_owner'))
{
	unlike($line, qr/ALLOWED|no answer/, "as the schema owner: $line");
}
is($node->safe_psql('schemed', sprintf($digest, 'store')), $before,
	'as the schema owner: history is unchanged');

#
# Logical replication into es_events
#
my $pub = PostgreSQL::Test::Cluster->new('publisher');
$pub->init(allows_streaming => 'logical');
$pub->start;
# the publisher's es_events is a plain table of the same shape, whose rows
# are not guarded: what a hostile publisher sends
$pub->safe_psql('postgres', q{
	CREATE TABLE es_events (global_position bigint PRIMARY KEY, stream_id text NOT NULL,
		version bigint NOT NULL, event_id uuid NOT NULL, event_type text NOT NULL,
		data jsonb NOT NULL, metadata jsonb, recorded_at timestamptz NOT NULL);
	CREATE PUBLICATION events FOR TABLE es_events;
});
my $pubconn = 'host=' . $pub->host . ' port=' . $pub->port . ' dbname=postgres';
$node->safe_psql('postgres', 'CREATE DATABASE subscriber');
$node->safe_psql('subscriber', q{
	CREATE EXTENSION es_pg;
	SELECT es_append('sub-1', 'Local', '{"n": 1}');
});
$before = $node->safe_psql('subscriber', sprintf($digest, 'public'));
my ($ret, $out, $err) = $node->psql('subscriber',
	"CREATE SUBSCRIPTION sub CONNECTION '$pubconn' PUBLICATION events WITH (copy_data = false)");
like($err, qr/es_events cannot be the target of a logical replication subscription/,
	'a subscription that would replicate into es_events is refused');
# the slot it made on the publisher stays behind; the refusal is what counts
$pub->safe_psql('postgres', q{SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots});

# made anyway, with the guards off: the apply worker's writes are refused
$node->safe_psql('subscriber', qq{
	ALTER EVENT TRIGGER es_guard_ddl_end DISABLE;
	CREATE SUBSCRIPTION sub CONNECTION '$pubconn' PUBLICATION events WITH (copy_data = false);
	ALTER EVENT TRIGGER es_guard_ddl_end ENABLE ALWAYS;
});
my $local = $node->safe_psql('subscriber', q{
	SELECT global_position || ',' || stream_id || ',' || version || ',' || event_id || ',' ||
		   event_type || ',' || recorded_at FROM es_events});
my ($lpos, $lstream, $lversion, $lid, $ltype, $lat) = split /,/, $local;
# the same row on the publisher, so that UPDATE and DELETE find it
$pub->safe_psql('postgres', qq{
	INSERT INTO es_events VALUES ($lpos, '$lstream', $lversion, '$lid', '$ltype', '{"n": 1}', NULL, '$lat')});
my $log = $node->logfile;
my $offset = -s $log;
$pub->safe_psql('postgres', q{
	INSERT INTO es_events VALUES (1000, 'forged', 1, gen_random_uuid(), 'Forged', '{}', NULL, now())});
ok($node->wait_for_log(qr/events enter es_events only through es_append/, $offset),
	'the apply worker\'s INSERT is refused');
$pub->safe_psql('postgres', q{DELETE FROM es_events WHERE global_position = 1000});
$pub->safe_psql('postgres', qq{UPDATE es_events SET data = '{"n": 666}' WHERE global_position = $lpos});
$offset = -s $log;
ok($node->wait_for_log(qr/(UPDATE|DELETE) is not allowed on es_events|events enter es_events only/, $offset),
	'the apply worker keeps being refused');
is($node->safe_psql('subscriber', sprintf($digest, 'public')), $before,
	'the subscriber\'s history is unchanged');
$node->safe_psql('subscriber', q{
	ALTER SUBSCRIPTION sub DISABLE;
	ALTER SUBSCRIPTION sub SET (slot_name = NONE);
	DROP SUBSCRIPTION sub;
});
$pub->stop;

#
# The boundary: a superuser with the event triggers off, and the check
# constraint dropped (even with the triggers off it refuses an UPDATE).  The
# feed steps over what was rewritten instead of stopping there for good.
#
$node->safe_psql('postgres', 'CREATE DATABASE boundary');
$node->safe_psql('boundary', q{
	CREATE EXTENSION es_pg;
	SELECT es_append('b-' || i, 'E', jsonb_build_object('i', i)) FROM generate_series(1, 5) i;
});
$node->safe_psql('boundary', q{
	ALTER EVENT TRIGGER es_guard_ddl_start DISABLE;
	ALTER EVENT TRIGGER es_guard_ddl_end DISABLE;
	ALTER TABLE es_events DISABLE TRIGGER es_events_append_only;
	ALTER TABLE es_events DISABLE TRIGGER es_events_append_only_row;
	ALTER TABLE es_events DROP CONSTRAINT es_events_insert_check;
	UPDATE es_events SET data = '{"rewritten": true}' WHERE stream_id = 'b-2';
	DELETE FROM es_events WHERE stream_id = 'b-4';
	ALTER TABLE es_events ENABLE ALWAYS TRIGGER es_events_append_only;
	ALTER TABLE es_events ENABLE ALWAYS TRIGGER es_events_append_only_row;
	ALTER EVENT TRIGGER es_guard_ddl_start ENABLE ALWAYS;
	ALTER EVENT TRIGGER es_guard_ddl_end ENABLE ALWAYS;
});
$node->safe_psql('boundary', q{SELECT es_append('b-6', 'E', '{"i": 6}')});
is($node->safe_psql('boundary', q{SELECT string_agg(stream_id, ' ' ORDER BY global_position) FROM es_read_all(0, 100)}),
	'b-1 b-2 b-3 b-5 b-6',
	'the feed steps over the rewritten and the removed rows and goes on');
is($node->safe_psql('boundary', q{SELECT data FROM es_read_all(0, 100) WHERE stream_id = 'b-2'}),
	'{"rewritten": true}',
	'what a superuser with the guards off rewrote shows (the boundary docs/privileges.md states)');

$node->stop;
done_testing();
