
# A short libFuzzer run of src/parse.c under AddressSanitizer and
# UndefinedBehaviorSanitizer (test/fuzz/run.sh), checking it against the
# reference implementations in test/fuzz/fuzz_parse.c.  Skipped when clang
# or its libFuzzer runtime is missing.  ES_SOAK=1 fuzzes for 10 minutes;
# ES_FUZZ_SECONDS sets any other duration.

use strict;
use warnings;
use PostgreSQL::Test::Utils;
use IPC::Run;
use Test::More;

my $seconds = $ENV{ES_FUZZ_SECONDS} || ($ENV{ES_SOAK} ? 600 : 10);
my $dir = PostgreSQL::Test::Utils::tempdir;

my ($out, $err) = ('', '');
my $have_fuzzer = IPC::Run::run(
	[ 'clang', '-fsanitize=fuzzer', '-x', 'c', '-', '-o', "$dir/probe" ],
	'<', \"int LLVMFuzzerTestOneInput(const char *d, long n) { return 0; }\n",
	'>', \$out, '2>', \$err);
plan skip_all => 'clang with libFuzzer is not installed' unless $have_fuzzer;

($out, $err) = ('', '');
my $ok = IPC::Run::run(
	[ 'bash', 'test/fuzz/run.sh', $seconds ],
	'>', \$out, '2>&1',
	init => sub { $ENV{ES_FUZZ_DIR} = "$dir/fuzz" });
my ($runs) = $out =~ /stat::number_of_executed_units:\s*(\d+)/;
ok($ok, "libFuzzer ran src/parse.c for $seconds s without a finding")
  or diag(substr($out, -3000));
cmp_ok($runs // 0, '>', 0, 'and executed ' . ($runs // 0) . ' inputs');

my $figdir = $ENV{ES_FIGURES_DIR}
  || "$PostgreSQL::Test::Utils::tmp_check/figures";
mkdir $figdir unless -d $figdir;
open(my $fig, '>', "$figdir/fuzz.txt") or die;
print $fig "# 040_fuzz_parse.pl: libFuzzer + ASan + UBSan on src/parse.c\n"
  . "seconds $seconds\ninputs " . ($runs // 0) . "\nresult "
  . ($ok ? 'no finding' : 'FINDING') . "\n";
close $fig;
diag("fuzz: $seconds s, " . ($runs // 0) . ' inputs, ' . ($ok ? 'no finding' : 'FINDING'));

done_testing();
