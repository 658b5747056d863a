#!/usr/bin/env bash
# scripts/test.sh: run the whole es_pg test suite on a throwaway cluster.
#
#   scripts/test.sh                    every part
#   scripts/test.sh regress isolation  only the parts named
#
# Parts: regress (pg_regress, test/sql), isolation (test/specs), tap
# (test/t, clusters of their own), clients (examples/*/test.sh).
# ES_SOAK=1 runs the longer reliability workloads (see docs/reliability.md).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

parts=("$@")
[ ${#parts[@]} -gt 0 ] || parts=(regress isolation tap clients)
want() { local p; for p in "${parts[@]}"; do [ "$p" = "$1" ] && return 0; done; return 1; }

es_need_server
es_need_packages libipc-run-perl python3 python3-psycopg2 python3-sqlalchemy
want tap && es_need_packages clang libclang-rt-14-dev
want clients && es_need_node
es_build_install
es_cluster_start
es_copy_tree "$ES_TMP/src"

failed=()
pgenv=(env PGHOST="$PGHOST" PGPORT="$PGPORT" PGUSER=postgres
	ES_SOAK="${ES_SOAK:-0}" PATH="$PATH")

run_part() {
	local name=$1; shift
	es_log "$name"
	if ! "$@"; then failed+=("$name"); return 1; fi
}

if want regress; then
	run_part regress es_as_pg "${pgenv[@]}" make -C "$ES_TMP/src" -s \
		PG_CONFIG="$PG_CONFIG" installcheck-regress ||
		cat "$ES_TMP/src/regression.diffs" 2>/dev/null | head -300 || true
fi
if want isolation; then
	run_part isolation es_as_pg "${pgenv[@]}" make -C "$ES_TMP/src" -s \
		PG_CONFIG="$PG_CONFIG" installcheck-isolation ||
		cat "$ES_TMP/src/output_iso/regression.diffs" 2>/dev/null | head -300 || true
fi
if want tap; then
	run_part tap es_as_pg "${pgenv[@]}" make -C "$ES_TMP/src" -s \
		PG_CONFIG="$PG_CONFIG" installcheck-tap ||
		tail -n 80 "$ES_TMP"/src/tmp_check/log/regress_log_* 2>/dev/null || true
fi
if want clients; then
	for t in "$ES_TMP"/src/examples/*/test.sh; do
		[ -e "$t" ] || continue
		run_part "client $(basename "$(dirname "$t")")" "${pgenv[@]}" bash "$t" || true
	done
fi

if [ ${#failed[@]} -gt 0 ]; then
	es_log "FAILED: ${failed[*]}"
	exit 1
fi
es_log "all tests passed (${parts[*]})"
