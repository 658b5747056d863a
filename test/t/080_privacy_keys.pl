
# The master key file of crypto-shredding (docs/privacy.md), through
# es_pg.master_key_file and configuration reloads:
#   - unset, missing, readable by other users, not a file, malformed: a
#     clear F0000 error, and nothing protected or written;
#   - the wrong key under a known id: reads that need plain values and
#     appends (of known and new subjects) fail with F0000, nothing is
#     written; readers without the grant still read; the right file back,
#     nothing was lost;
#   - rotation: old and new key in the file, es_rotate_master_key rewraps
#     every live key, after which the old key may leave the file;
#   - a dump restores with its ciphertext, keys and check values, decrypts
#     with the same file, and its seals verify.

use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

my $node = PostgreSQL::Test::Cluster->new('privacy');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'es_pg'
es_pg.projection_workers = off
});
$node->start;
my $dir = PostgreSQL::Test::Utils::tempdir;

$node->safe_psql('postgres', 'CREATE DATABASE shop');
$node->safe_psql('shop', q{
CREATE EXTENSION es_pg;
CREATE ROLE clerk;
SELECT es_grant_reader('clerk');
CREATE FUNCTION try(sql text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE sql;
	RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
	RETURN SQLSTATE || ': ' || SQLERRM;
END $$;
});

# write_keys(NAME, MODE, LINES...): a key file in the test's directory
sub write_keys
{
	my ($name, $mode, @lines) = @_;
	my $path = "$dir/$name";
	open(my $fh, '>', $path) or die "could not write $path: $!";
	print $fh map { "$_\n" } @lines;
	close($fh);
	chmod($mode, $path);
	return $path;
}

# use_keys(PATH): point es_pg.master_key_file at PATH and reload; returns
# once new sessions see it
sub use_keys
{
	my ($path) = @_;
	$node->append_conf('postgresql.conf', "es_pg.master_key_file = '$path'\n");
	$node->reload;
	for (1 .. 100)
	{
		return if $node->safe_psql('shop', 'SHOW es_pg.master_key_file') eq $path;
		usleep(50_000);
	}
	die "the reload did not take";
}

sub try { my ($sql) = @_; return $node->safe_psql('shop', "SELECT try(\$q\$$sql\$q\$)"); }

my $protect = q{SELECT es_protect('Customer', ARRAY['$.email'], '$.id')};
like(try($protect), qr/^F0000: es_pg.master_key_file is not set/, 'unset: F0000');

use_keys("$dir/nope");
like(try($protect), qr/^F0000: could not open master key file/, 'missing: F0000');

my $k1 = '1f' x 32;
my $k2 = '2e' x 32;
use_keys(write_keys('open', 0644, "k1 $k1"));
like(try($protect), qr/^F0000: .* is accessible to other users/, 'mode 0644: F0000');
use_keys($dir);
like(try($protect), qr/^F0000: .* is not a regular file/, 'a directory: F0000');
use_keys(write_keys('bad', 0600, "# comment", "k1 $k1 trailing"));
like(try($protect), qr/^F0000: line 2 of master key file/, 'malformed: F0000, with the line');
is($node->safe_psql('shop', 'SELECT count(*) FROM es_protected_types'), '0',
	'nothing was protected');

my $good = write_keys('good', 0600, "# the key of 2026", "k1 $k1");
use_keys($good);
is(try($protect), 'ok', 'the right file: es_protect');
$node->safe_psql('shop', q{
SELECT es_append('customer-' || g, 'Customer',
	jsonb_build_object('id', 'c' || g, 'email', 'c' || g || '@example.com'))
  FROM generate_series(1, 3) g;
SELECT es_seal();
});
is($node->safe_psql('shop', q{SELECT string_agg(data->>'email', ',' ORDER BY global_position) FROM es_read_all(0, 10)}),
	'c1@example.com,c2@example.com,c3@example.com', 'plain values for a superuser');

# the wrong key under the id k1
use_keys(write_keys('wrong', 0600, "k1 " . ('99' x 32)));
my $counts = q{SELECT (SELECT count(*) FROM es_events) || '/' || (SELECT count(*) FROM es_subject_keys)};
is($node->safe_psql('shop', $counts), '3/3', 'three events, three keys');
like(try(q{SELECT * FROM es_read_stream('customer-1')}),
	qr/^F0000: master key "k1" of master key file ".*" is not the key this database knows/,
	'wrong key: a read of plain values fails with F0000');
like(try(q{SELECT es_append('customer-1', 'Customer', '{"id": "c1", "email": "x@example.com"}')}),
	qr/^F0000/, 'wrong key: an append for a known subject fails');
like(try(q{SELECT es_append('customer-9', 'Customer', '{"id": "c9", "email": "x@example.com"}')}),
	qr/^F0000/, 'wrong key: an append for a new subject fails too');
is($node->safe_psql('shop', $counts), '3/3', 'nothing was written');
is($node->safe_psql('shop', q{SET ROLE clerk; SELECT string_agg(data->'email'->>'es_pg', ',') FROM es_read_all(0, 10)}),
	'encrypted,encrypted,encrypted', 'a reader without the grant still reads the ciphertext');

# the file gone
use_keys("$dir/gone");
like(try(q{SELECT * FROM es_read_stream('customer-2')}), qr/^F0000: could not open/,
	'missing file: a read of plain values fails with F0000');

# the right file back: nothing was lost
use_keys($good);
is($node->safe_psql('shop', q{SELECT string_agg(data->>'email', ',' ORDER BY global_position) FROM es_read_all(0, 10)}),
	'c1@example.com,c2@example.com,c3@example.com', 'the right file back: every value decrypts');
is(try(q{SELECT es_append('customer-9', 'Customer', '{"id": "c9", "email": "c9@example.com"}')}),
	'ok', 'and appends work');

# rotation
use_keys(write_keys('both', 0600, "k1 $k1", "k2 $k2"));
is($node->safe_psql('shop', 'SELECT es_rotate_master_key()'), '4', 'four live keys rewrapped under k2');
is($node->safe_psql('shop', 'SELECT es_rotate_master_key()'), '0', 'again: nothing left to rewrap');
is($node->safe_psql('shop', q{SELECT string_agg(DISTINCT master_key, ',') FROM es_subject_keys}),
	'k2', 'every key is wrapped by k2');
$node->safe_psql('shop', q{SELECT es_forget_subject('c3')});
use_keys(write_keys('new', 0600, "k2 $k2"));
is($node->safe_psql('shop', q{SELECT string_agg(coalesce(data->'email'->>'es_pg', data->>'email'), ',' ORDER BY global_position) FROM es_read_all(0, 10)}),
	'c1@example.com,c2@example.com,forgotten,c9@example.com',
	'k1 gone from the file: everything decrypts with k2, c3 stays forgotten');
is(try(q{SELECT es_append('customer-10', 'Customer', '{"id": "c10", "email": "c10@example.com"}')}),
	'ok', 'a new subject gets a key wrapped by k2');
is($node->safe_psql('shop', q{SELECT master_key FROM es_subject_keys WHERE subject = 'c10'}), 'k2',
	'wrapped by k2');
is($node->safe_psql('shop', q{SELECT string_agg(master_key, ',' ORDER BY master_key) FROM es_master_keys}),
	'k1,k2', 'both master keys have check values');

# a dump restores with its ciphertext, keys and check values
my $dumpfile = "$dir/shop.dump";
command_ok([ 'pg_dump', '-Fc', '-h', $node->host, '-p', $node->port, '-d', 'shop', '-f', $dumpfile ],
	'pg_dump -Fc');
$node->safe_psql('postgres', 'CREATE DATABASE shop_restored');
command_ok([ 'pg_restore', '--exit-on-error', '-h', $node->host, '-p', $node->port,
		'-d', 'shop_restored', $dumpfile ], 'pg_restore');
is($node->safe_psql('shop_restored', q{SELECT string_agg(coalesce(data->'email'->>'es_pg', data->>'email'), ',' ORDER BY global_position) FROM es_read_all(0, 10)}),
	'c1@example.com,c2@example.com,forgotten,c9@example.com,c10@example.com',
	'the restored store decrypts with the same file, c3 stays forgotten');
is($node->safe_psql('shop_restored', q{SELECT intact FROM es_verify()}), 't',
	'its seals verify (they cover the ciphertext)');
is($node->safe_psql('shop_restored', q{SELECT count(*) FROM es_events WHERE data::text LIKE '%example.com%'}),
	'0', 'and it holds no plain personal data');

done_testing();
