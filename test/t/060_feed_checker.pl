# The feed checker (issue 10) attacks guarantee 3 of docs/reliability.md: a
# follower of the global feed that pages es_read_all(last, n), passing the
# last position it received, sees every committed event exactly once, in
# increasing position order, and never an event whose transaction aborted,
# whatever writes meanwhile.
#
# test/feed_checker.py runs writers of every kind against two databases of
# one feed lock slot (es_append, es_append_batch, TOASTed batches, direct
# INSERT and COPY into es_events, rollbacks, savepoints, two-phase commit, a
# long transaction; direct inserts and appends in the twin database), with
# followers at READ COMMITTED and REPEATABLE READ and an async projection,
# then checks every follower and the projection against the final table and
# the table against what the writers were told.  Here it runs twice: with
# es_pg in shared_preload_libraries (the feed LWLock, the projection
# worker) and without (the heavyweight lock, es_apply_projections).
#
# The figures go to tmp_check/figures/feed_checker.txt (or $ES_FIGURES_DIR).
# The writers run 30 s per mode (ES_FEED_SECONDS overrides), 300 s with
# ES_SOAK=1.  The checker needs Debian's python3-psycopg2.

use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use File::Basename qw(dirname);
use File::Spec;
use IPC::Run;
use JSON::PP;
use Test::More;

my $seconds = $ENV{ES_FEED_SECONDS} || ($ENV{ES_SOAK} ? 300 : 30);
my $checker =
  File::Spec->rel2abs(File::Spec->catfile(dirname(__FILE__), '..', 'feed_checker.py'));

# Debian's python3, which has Debian's psycopg2, whatever python3 comes
# first on PATH
my $python = -x '/usr/bin/python3' ? '/usr/bin/python3' : 'python3';
my ($pyout, $pyerr) = ('', '');
IPC::Run::run([ $python, '-c', 'import psycopg2' ], '>', \$pyout, '2>', \$pyerr)
  or BAIL_OUT("the feed checker needs $python with psycopg2 "
	  . "(apt-get install python3-psycopg2): $pyerr");

my $dir = PostgreSQL::Test::Utils::tempdir;
my $figdir = $ENV{ES_FIGURES_DIR}
  || "$PostgreSQL::Test::Utils::tmp_check/figures";
mkdir $figdir unless -d $figdir;
my $figfile = "$figdir/feed_checker.txt";
unlink $figfile;

my @reports;
for my $preload (1, 0)
{
	my $mode = $preload ? 'preloaded' : 'not preloaded';
	my $tag = $preload ? 'preload' : 'nopreload';
	my $node = PostgreSQL::Test::Cluster->new("feed_$tag");
	$node->init;
	$node->append_conf('postgresql.conf', qq{
max_connections = 40
max_prepared_transactions = 10
} . ($preload ? "shared_preload_libraries = 'es_pg'\n" : ''));
	$node->start;

	# the checks themselves, on made-up records and tables that are wrong
	# in one way each
	if ($preload)
	{
		($pyout, $pyerr) = ('', '');
		ok( IPC::Run::run(
				[
					$python, $checker, '--self-test', '--host', $node->host,
					'--port', $node->port
				],
				'>', \$pyout, '2>', \$pyerr),
			'the checks catch a skipped, repeated, reordered, aborted, invented or '
			  . 'altered event, and a lost, resurrected, unknown or misplaced row')
		  or diag("$pyout$pyerr");
	}

	my $json = "$dir/feed_$tag.json";
	my ($out, $err) = ('', '');
	my $rc = eval {
		IPC::Run::run(
			[
				$python, $checker, '--host', $node->host, '--port', $node->port,
				'--seconds', $seconds, '--label', '060_feed_checker.pl',
				'--figures', $figfile, '--json', $json
			],
			'>', \$out, '2>', \$err,
			IPC::Run::timeout($seconds + 900));
		$? >> 8;
	};
	$rc = "none: $@" unless defined $rc;
	note("$mode:\n$out");

	if (!-s $json)
	{
		fail("$mode: the checker ran to the end");
		diag("exit code $rc\n$out\n$err");
		$node->stop('immediate');
		next;
	}
	my $s = decode_json(slurp_file($json));
	pass("$mode: the checker ran to the end");
	push @reports, $out;

	is($s->{preloaded} ? 1 : 0, $preload, "$mode: es_pg is preloaded as intended");

	# every kind of writer did its part
	for my $kind (sort keys %{ $s->{kinds} })
	{
		my $k = $s->{kinds}{$kind};
		cmp_ok($k->{tx_committed}, '>', 0, "$mode: $kind writers committed")
		  if $kind ne 'rollback';
		cmp_ok($k->{tx_aborted}, '>', 0, "$mode: $kind writers rolled back")
		  if $kind =~ /^(rollback|savepoint|twophase)$/;
	}
	cmp_ok($s->{events}{twin}, '>', 0, "$mode: the twin database got events");

	for my $r (@{ $s->{readers} })
	{
		my $who = "$mode: $r->{reader}";
		is($r->{missed}, 0, "$who missed none of the $r->{expected} committed events")
		  or diag("$who missed $r->{missed}; by writer kind: "
			  . join(', ', map { "$_ $r->{missed_by_kind}{$_}" }
				  sort keys %{ $r->{missed_by_kind} })
			  . '; first missed (position, tag): '
			  . join(', ', map { "$_->[0] ($_->[1])" } @{ $r->{first_missed} }));
		is($r->{duplicates}, 0, "$who saw no event twice");
		is($r->{out_of_order}, 0, "$who saw positions in increasing order");
		is($r->{aborted_seen}, 0, "$who saw no event of an aborted transaction");
		is($r->{not_in_table} - $r->{aborted_seen},
			0, "$who saw no event that does not exist");
		is($r->{mismatched}, 0, "$who saw each event as it is stored");
	}
	is(scalar(@{ $s->{problems} }), 0, "$mode: the checker found no problem")
	  or diag("$mode, the checker's diagnosis:\n  - "
		  . join("\n  - ", @{ $s->{problems} }));
	is($rc, 0, "$mode: the checker exited with 0") or diag($err);

	is($node->safe_psql('postgres', 'SELECT count(*) FROM pg_prepared_xacts'),
		'0', "$mode: no prepared transaction is left behind");
	$node->stop;
}

diag("feed checker, $seconds s per mode:\n" . join("\n", @reports));
done_testing();
