#!/usr/bin/env bash
# bench/run.sh: es_pg beside plain PostgreSQL, measured in one run.
#
#   bench/run.sh            full run (about 10 minutes on 2 cores)
#   bench/run.sh --quick    one short round of everything (about 2 minutes)
#
# Installs what is missing, builds and installs es_pg (scripts/lib.sh),
# starts a throwaway cluster, loads the same data into es_events and into a
# plain table of the same shape (bench.ref_events), runs every workload with
# pgbench (COPY with psql) under synchronous_commit on and off, with 1 and 2
# clients, prints a table and writes docs/benchmarks.md.  Raw pgbench output
# goes to bench/out/ (not committed).  See docs/benchmarks.md for what each
# workload does and why its reference is fair.
#
# Settings (environment): PG_CONFIG, ES_KEEP as for scripts/test.sh;
# BENCH_ROUNDS, BENCH_SECONDS override the mode's rounds and seconds per
# measurement; BENCH_DOC names the report to write (default
# docs/benchmarks.md).
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"

mode=full
case "${1:-}" in
	--quick) mode=quick ;;
	"") ;;
	*) echo "usage: bench/run.sh [--quick]" >&2; exit 2 ;;
esac
if [ "$mode" = quick ]; then rounds=1 secs=1; else rounds=3 secs=2; fi
rounds=${BENCH_ROUNDS:-$rounds}
secs=${BENCH_SECONDS:-$secs}
doc=${BENCH_DOC:-$ES_ROOT/docs/benchmarks.md}

# the data every workload starts from (bench/sql/setup.sql)
streams=10000		# streams of the append workloads
per_stream=10		# events already in each
read_len=1000		# events of each stream the read workload reads
read_count=10		# how many such streams
snap_len=10000		# events of the snapshot workload's streams
snap_tail=100		# events after the snapshot

BENCH=$ES_ROOT/bench
OUT=$BENCH/out/$(date -u +%Y%m%dT%H%M%SZ)
RESULTS=$OUT/results.tsv
started=$(date +%s)

es_need_server
es_need_packages python3
es_build_install
es_cluster_start \
	"shared_buffers = 512MB" \
	"max_wal_size = 8GB" \
	"checkpoint_timeout = 1h" \
	"autovacuum = off" \
	"fsync = on" \
	"synchronous_commit = on" \
	"full_page_writes = on" \
	"jit = off"

bindir=$($PG_CONFIG --bindir)
PGBENCH=$bindir/pgbench
PSQL=$bindir/psql
mkdir -p "$OUT/raw" "$OUT/gen"
printf 'workload\tvariant\tsync\tclients\tround\tevents_per_s\ttps\tlatency_ms\tstatus\n' >"$RESULTS"
printf 'key\tvalue\n' >"$OUT/meta.tsv"

meta() { printf '%s\t%s\n' "$1" "$2" >>"$OUT/meta.tsv"; }
sql() { "$PSQL" -X -q -v ON_ERROR_STOP=1 -At "$@"; }
has_function() { [ "$(sql -c "SELECT to_regprocedure('$1') IS NOT NULL")" = t ]; }

# a unique number for each measurement: it names the streams of the
# workloads that need fresh ones
runid=0

# record WORKLOAD VARIANT SYNC CLIENTS ROUND EVENTS/S TPS LATENCY STATUS
record() {
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >>"$RESULTS"
}

# skip WORKLOAD NOTE: the workload cannot run on this build
skip() {
	record "$1" - - - - - - - "skipped: $2"
	echo "  $1: skipped ($2)"
}

# bench_pgbench WORKLOAD VARIANT SYNC CLIENTS ROUND SCRIPT PROTOCOL EVENTS
#   [pgbench option...]: one pgbench measurement; EVENTS per transaction.
bench_pgbench() {
	local w=$1 v=$2 sync=$3 c=$4 r=$5 script=$6 proto=$7 ev=$8
	shift 8
	local log=$OUT/raw/$w.$v.$sync.c$c.r$r.log tps lat status=ok
	runid=$((runid + 1))
	if ! PGOPTIONS="-c synchronous_commit=${sync/any/on}" "$PGBENCH" -n -M "$proto" \
		-c "$c" -j "$c" -T "$secs" -f "$script" \
		-D nclients="$c" -D run="$runid" -D streams="$streams" \
		-D read_count="$read_count" -D feed_len="$feed_len" -D v=0 \
		-D 'data={"amount": 10}' "$@" >"$log" 2>&1; then
		status=failed
	fi
	grep -q '^number of failed transactions: 0 ' "$log" || status=failed
	tps=$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' "$log")
	lat=$(sed -n 's/^latency average = \([0-9.]*\) ms/\1/p' "$log")
	[ -n "$tps" ] || { tps=0; status=failed; }
	[ "$status" = ok ] || { echo "  $w/$v failed, see $log"; tail -n 5 "$log"; }
	record "$w" "$v" "$sync" "$c" "$r" \
		"$(awk -v t="$tps" -v e="$ev" 'BEGIN { printf "%.1f", t * e }')" \
		"$tps" "${lat:-0}" "$status"
}

# copy_overhead: seconds psql takes to connect, run nothing and exit; taken
# off COPY timings, as pgbench leaves out its connection time
copy_overhead=0
measure_copy_overhead() {
	local t0 t1 i
	t0=$(date +%s.%N)
	for i in 1 2 3 4 5; do sql -c "SELECT 1" >/dev/null; done
	t1=$(date +%s.%N)
	copy_overhead=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f", (b - a) / 5 }')
}

# copy_rate[WORKLOAD.SYNC.CLIENTS]: COPY's last events/s, to size the next
# COPY run to about $secs seconds
declare -A copy_rate

# bench_copy WORKLOAD SYNC CLIENTS ROUND BATCH: COPY FROM STDIN of BATCH
# events per statement (each one a transaction, into a new stream with the
# versions given by the client), by one psql per client, for about $secs s.
bench_copy() {
	local w=$1 sync=$2 c=$3 r=$4 n=$5
	local key=$w.$sync.$c rate k i t0 t1 status=ok pids=() secs_run evs
	rate=${copy_rate[$key]:-}
	if [ -z "$rate" ]; then
		# a short pilot run sizes the first measurement
		k=$((n >= 1000 ? 3 : 100))
	else
		k=$(awk -v r="$rate" -v s="$secs" -v n="$n" -v c="$c" \
			'BEGIN { k = int(r * s / n / c); print (k < 2 ? 2 : k) }')
	fi
	runid=$((runid + 1))
	for ((i = 0; i < c; i++)); do
		awk -v run="$runid" -v cl="$i" -v k="$k" -v n="$n" 'BEGIN {
			for (b = 0; b < k; b++) {
				print "COPY bench.ref_events (stream_id, version, event_type, data) FROM STDIN;"
				for (j = 1; j <= n; j++)
					printf "copy-%s-%s-%d\t%d\tMoneyDeposited\t{\"amount\": %d}\n", run, cl, b, j, 10 + j % 90
				print "\\."
			}
		}' >"$OUT/gen/copy.$i.sql"
	done
	t0=$(date +%s.%N)
	for ((i = 0; i < c; i++)); do
		PGOPTIONS="-c synchronous_commit=$sync" \
			"$PSQL" -X -q -v ON_ERROR_STOP=1 -f "$OUT/gen/copy.$i.sql" \
			>"$OUT/raw/$w.copy.$sync.c$c.r$r.$i.log" 2>&1 &
		pids+=($!)
	done
	for i in "${pids[@]}"; do wait "$i" || status=failed; done
	t1=$(date +%s.%N)
	rm -f "$OUT"/gen/copy.*.sql
	secs_run=$(awk -v a="$t0" -v b="$t1" -v o="$copy_overhead" \
		'BEGIN { d = b - a - o; printf "%.4f", (d > 0.001 ? d : 0.001) }')
	evs=$(awk -v k="$k" -v n="$n" -v c="$c" -v s="$secs_run" \
		'BEGIN { printf "%.1f", k * n * c / s }')
	copy_rate[$key]=$evs
	if [ -z "$rate" ]; then
		# the pilot is not a measurement: run again at the right size
		bench_copy "$@"
		return
	fi
	[ "$status" = ok ] || echo "  $w/copy failed, see $OUT/raw/$w.copy.$sync.c$c.r$r.*.log"
	record "$w" copy "$sync" "$c" "$r" "$evs" \
		"$(awk -v k="$k" -v c="$c" -v s="$secs_run" 'BEGIN { printf "%.1f", k * c / s }')" \
		"$(awk -v k="$k" -v s="$secs_run" 'BEGIN { printf "%.3f", s * 1000 / k }')" \
		"$status"
}

# gen_batch_scripts N: the pgbench scripts of the batch-of-N workload; the
# events are literals in the statement, so the client sends and the server
# parses them on every call, as with COPY (pgbench -M simple)
gen_batch_scripts() {
	local n=$1
	awk -v n="$n" 'BEGIN {
		print "-- es_append_batch of " n " events to a random stream, no version check"
		print "\\set sid :client_id + :nclients * random(0, :streams / :nclients - 1)"
		printf "SELECT es_append_batch('\''acct-'\'' || :sid, '\''["
		for (j = 1; j <= n; j++)
			printf "%s{\"type\": \"MoneyDeposited\", \"data\": {\"amount\": %d}}", (j > 1 ? ", " : ""), 10 + j % 90
		print "]'\'');"
	}' >"$OUT/gen/batch$n.es.sql"
	awk -v n="$n" 'BEGIN {
		print "-- one multi-row INSERT of " n " events to a random stream, versions computed in SQL"
		print "\\set sid :client_id + :nclients * random(0, :streams / :nclients - 1)"
		print "INSERT INTO bench.ref_events (stream_id, version, event_type, data)"
		print "SELECT '\''acct-'\'' || :sid, cur.version + t.n, t.event_type, t.data"
		print "  FROM (SELECT coalesce(max(version), 0) AS version FROM bench.ref_events"
		print "         WHERE stream_id = '\''acct-'\'' || :sid) cur,"
		printf "       (VALUES "
		for (j = 1; j <= n; j++)
			printf "%s(%d, '\''MoneyDeposited'\'', '\''{\"amount\": %d}'\''::jsonb)", (j > 1 ? ", " : ""), j, 10 + j % 90
		print ") AS t(n, event_type, data);"
	}' >"$OUT/gen/batch$n.insert.sql"
}

# rotate ROUND ITEM...: the items, starting at ROUND modulo their count, so
# that no variant always runs first
rotate() {
	local r=$1; shift
	local n=$# i
	local items=("$@")
	for ((i = 0; i < n; i++)); do echo "${items[$(((r + i) % n))]}"; done
}

S=$BENCH/scripts

es_log "loading the data ($streams streams of $per_stream events, $read_count of $read_len, 2 of $snap_len)"
sql -v streams=$streams -v per_stream=$per_stream -v read_len=$read_len \
	-v read_count=$read_count -v snap_len=$snap_len -v snap_tail=$snap_tail \
	-f "$BENCH/sql/setup.sql" >/dev/null
feed_len=$(sql -c "SELECT max(global_position) FROM es_events")
measure_copy_overhead

# the machine and the settings, for the report
meta mode "$mode"
meta rounds "$rounds"
meta seconds "$secs"
meta date "$(date -u '+%Y-%m-%d %H:%M UTC')"
meta cpu "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
meta cores "$(nproc)"
meta memory "$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
meta kernel "$(uname -sr)"
meta loadavg_start "$(cut -d' ' -f1-3 /proc/loadavg)"
meta postgres "$(sql -c 'SELECT version()')"
meta es_pg "$(sql -c "SELECT extversion FROM pg_extension WHERE extname = 'es_pg'")"
meta commit "$(git -C "$ES_ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
meta settings "$(sql -F '=' -R ', ' -c "SELECT name, setting || coalesce(unit, '') FROM pg_settings WHERE name IN ('shared_buffers', 'fsync', 'wal_sync_method', 'full_page_writes', 'max_wal_size', 'checkpoint_timeout', 'autovacuum', 'wal_level', 'jit') ORDER BY name")"
meta data "$(sql -c "SELECT count(*) || ' events, ' || pg_size_pretty(pg_total_relation_size('es_events')) FROM es_events")"
meta dsync "$(cd "$ES_TMP" && dd if=/dev/zero of=dsync.test bs=8k count=500 oflag=dsync 2>&1 |
	awk '/copied/ { for (i = 1; i <= NF; i++) if ($i ~ /^s,?$/) t = $(i - 1); printf "%.0f", 500 / t }';
	rm -f dsync.test)"
meta copy_overhead "$copy_overhead"

# ---- reads: no commit record is written, so once, not per durability
for c in 1 2; do
	es_log "reads, $c client(s)"
	for r in $(seq 1 "$rounds"); do
		for v in $(rotate "$r" es ref); do
			bench_pgbench read_stream "$v" any "$c" "$r" "$S/read_stream_$v.sql" prepared "$read_len"
			bench_pgbench read_all "$v" any "$c" "$r" "$S/read_all_$v.sql" prepared 1000
		done
	done
done

# ---- snapshots (issue 3)
# TODO when es_aggregate lands
skip snapshot "es_aggregate and es_save_snapshot are not installed (issue 3)"

# ---- appends
gen_batch_scripts 10
gen_batch_scripts 1000
for sync in on off; do
	for c in 1 2; do
		es_log "appends, synchronous_commit = $sync, $c client(s)"
		for r in $(seq 1 "$rounds"); do
			for v in $(rotate "$r" es ref); do
				bench_pgbench append "$v" "$sync" "$c" "$r" "$S/append_$v.sql" prepared 1
			done
			for v in $(rotate "$r" es ref); do
				bench_pgbench append_expected "$v" "$sync" "$c" "$r" "$S/expected_$v.sql" prepared 1
			done
			for n in 10 1000; do
				for v in $(rotate "$r" es insert copy); do
					if [ "$v" = copy ]; then
						bench_copy "batch$n" "$sync" "$c" "$r" "$n"
					else
						bench_pgbench "batch$n" "$v" "$sync" "$c" "$r" \
							"$OUT/gen/batch$n.$v.sql" simple "$n"
					fi
				done
			done
		done
	done
done

# ---- projections (issue 4)
skip inline_projections "es_create_projection is not installed (issue 4)"
skip async_projection "es_create_projection is not installed (issue 4)"

meta loadavg_end "$(cut -d' ' -f1-3 /proc/loadavg)"
meta duration "$(($(date +%s) - started)) s"
es_log "report"
python3 "$BENCH/report.py" "$OUT" "$doc"
echo "raw output in $OUT; report written to $doc"
