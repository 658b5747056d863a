#!/usr/bin/env bash
# test/fuzz/run.sh [SECONDS]: build the libFuzzer harness of src/parse.c
# with AddressSanitizer and UndefinedBehaviorSanitizer, and run it for
# SECONDS (default 60).  Exits non-zero when it finds a crash or a
# difference from the reference implementations; the input that did it is
# left in $ES_FUZZ_DIR (default tmp_check/fuzz).
#
#   PG_CONFIG=... test/fuzz/run.sh 600
set -euo pipefail
secs=${1:-60}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PG_CONFIG=${PG_CONFIG:-pg_config}
out=${ES_FUZZ_DIR:-$root/tmp_check/fuzz}
CLANG=${CLANG:-clang}

mkdir -p "$out/corpus"
flags=(-g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all)
"$CLANG" "${flags[@]/-fsanitize=fuzzer,/-fsanitize=fuzzer-no-link,}" \
	-Wno-ignored-attributes -DFRONTEND -I"$($PG_CONFIG --includedir-server)" \
	-c "$root/src/parse.c" -o "$out/parse.o"
"$CLANG" "${flags[@]}" -I"$root/src" "$root/test/fuzz/fuzz_parse.c" \
	"$out/parse.o" -o "$out/fuzz_parse"
cd "$out"
exec ./fuzz_parse -max_total_time="$secs" -print_final_stats=1 \
	-dict="$root/test/fuzz/parse.dict" -artifact_prefix="$out/" \
	"$out/corpus" "$root/test/fuzz/seeds"
