#!/usr/bin/env bash
# scripts/test.sh: run the whole es_pg test suite on a throwaway cluster.
#
#   scripts/test.sh                    every part
#   scripts/test.sh regress isolation  only the parts named
#   PG_MAJOR=17 scripts/test.sh        on PostgreSQL 17 (a Debian chroot
#                                      when the host has no postgresql-17)
#
# Parts: regress (pg_regress, test/sql and examples/bank/test/sql),
# isolation (test/specs and examples/bank/test/specs), tap (test/t,
# clusters of their own), clients (examples/*/test.sh).
# ES_SOAK=1 runs the longer reliability workloads (see docs/reliability.md).
# The logs of a part that fails are kept in log/test-pgNN/.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

parts=("$@")
[ ${#parts[@]} -gt 0 ] || parts=(regress isolation tap clients)
want() { local p; for p in "${parts[@]}"; do [ "$p" = "$1" ] && return 0; done; return 1; }
for p in "${parts[@]}"; do
	case $p in regress | isolation | tap | clients) ;; *) es_die "unknown part \"$p\" (regress, isolation, tap, clients)" ;; esac
done

logs=log/test-pg$PG_MAJOR
rm -rf "${ES_ROOT:?}/$logs"
es_chroot_if_needed "$@"

started=$SECONDS
es_need_server
es_need_packages libipc-run-perl python3 python3-psycopg2 python3-sqlalchemy
if want tap; then es_need_fuzzer; es_need_packages pgbouncer; fi
if want clients; then es_need_node; es_need_packages nats-server; fi
es_build_install
es_cluster_start
es_copy_tree "$ES_TMP/src"

failed=()
passed=()
pgenv=(env PGHOST="$PGHOST" PGPORT="$PGPORT" PGUSER=postgres
	ES_SOAK="${ES_SOAK:-0}" PATH="$PATH")

# keep FILE...: copy what a failed part left to log/test-pgNN/, which
# survives the cluster directory (and comes out of a chroot)
keep() {
	local f
	mkdir -p "$ES_ROOT/$logs"
	for f in "$@"; do
		[ -e "$f" ] && cp -r "$f" "$ES_ROOT/$logs/"
	done
	return 0
}

run_part() {
	local name=$1 t0=$SECONDS
	shift
	es_log "$name"
	if ! "$@"; then
		failed+=("$name")
		echo "$name: FAILED after $((SECONDS - t0)) s"
		return 1
	fi
	passed+=("$name ($((SECONDS - t0)) s)")
}

# the regression and isolation tests of es_pg (test/) and of the bank
# example extension (examples/bank/test/), each in its own database
for dir in "" examples/bank; do
	src=$ES_TMP/src${dir:+/$dir}
	label=${dir:+ (bank)}
	if want regress; then
		run_part "regress$label" es_as_pg "${pgenv[@]}" make -C "$src" -s \
			PG_CONFIG="$PG_CONFIG" installcheck-regress || {
			head -n 300 "$src/regression.diffs" 2>/dev/null || true
			keep "$src/regression.diffs" "$src/regression.out" "$src/results"
		}
	fi
	if want isolation; then
		run_part "isolation$label" es_as_pg "${pgenv[@]}" make -C "$src" -s \
			PG_CONFIG="$PG_CONFIG" installcheck-isolation || {
			head -n 300 "$src/output_iso/regression.diffs" 2>/dev/null || true
			keep "$src/output_iso"
		}
	fi
done
if want tap; then
	run_part tap es_as_pg "${pgenv[@]}" make -C "$ES_TMP/src" -s \
		PG_CONFIG="$PG_CONFIG" installcheck-tap || {
		tail -n 80 "$ES_TMP"/src/tmp_check/log/regress_log_* 2>/dev/null || true
		keep "$ES_TMP/src/tmp_check/log"
	}
fi
if want clients; then
	for t in "$ES_TMP"/src/examples/*/test.sh; do
		[ -e "$t" ] || continue
		run_part "client $(basename "$(dirname "$t")")" "${pgenv[@]}" bash "$t" || true
	done
fi

es_log "PostgreSQL $PG_MAJOR, $((SECONDS - started)) s: passed: ${passed[*]:-none}"
if [ ${#failed[@]} -gt 0 ]; then
	keep "$ES_TMP/server.log"
	es_log "FAILED: ${failed[*]} (logs in $logs/)"
	exit 1
fi
es_log "all tests passed (${parts[*]})"
