
# The README's five-minute tour, run as written: every SQL block of the tour
# section goes through psql against a fresh cluster, the only errors are the
# two the tour shows on purpose, and the results it promises hold.

use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;

# the README two levels above this file: PGXS sets TESTDIR only before
# PostgreSQL 17 (17 sets TESTLOGDIR and TESTDATADIR instead)
my $readme = slurp_file("$FindBin::RealBin/../../README.md");
my ($tour) = $readme =~ /^## A five-minute tour in psql\n(.*?)^## /ms;
ok(defined $tour, 'the README has a tour section');
my @blocks = $tour =~ /^```sql\n(.*?)^```/msg;
cmp_ok(scalar @blocks, '>=', 3, 'the tour has its SQL blocks');

my $node = PostgreSQL::Test::Cluster->new('tour');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'es_pg'");
$node->start;

my ($ret, $stdout, $stderr) =
  $node->psql('postgres', join("\n", @blocks), on_error_stop => 0);
my @errors = $stderr =~ /^.*ERROR:\s+(.*)$/mg;
is_deeply(
	\@errors,
	[
		'wrong expected version for stream "ACC-001"',
		'40001',
		'DELETE is not allowed on es_events: events are never changed or removed'
	],
	'the tour raises exactly the errors it shows')
  or diag($stderr);

is($node->safe_psql('postgres', q{SELECT es_stream_version('ACC-001')}),
	'4', 'ACC-001 ends at version 4');
is($node->safe_psql('postgres', q{SELECT count(*) FROM es_events WHERE stream_id = 'ACC-002'}),
	'1', 'the retried append of ACC-002 wrote one event');
is( $node->safe_psql('postgres',
		q{SELECT es_aggregate('ACC-001', 'balance(jsonb, es_events)', as_of_version => 3)->>'balance'}),
	'1300', 'the balance after the story is 1300');
is( $node->safe_psql('postgres',
		q{SELECT es_aggregate('ACC-001', 'balance(jsonb, es_events)', as_of_version => 2)->>'balance'}),
	'1500', 'the balance as of version 2 is 1500');
is( $node->safe_psql('postgres',
		q{SELECT string_agg(account || ' ' || balance, ', ' ORDER BY account) FROM account_balances}),
	'ACC-001 1350, ACC-002 0', 'the projection holds the balances');
is( $node->safe_psql('postgres',
		q{SELECT state || ' ' || lag_events FROM es_projection_status WHERE name = 'account_balances'}),
	'running 0', 'the projection is running without lag');

$node->stop;
done_testing();
