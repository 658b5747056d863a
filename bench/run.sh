#!/usr/bin/env bash
# bench/run.sh: es_pg beside plain PostgreSQL, measured in one run.
#
#   bench/run.sh            full run (about 25 minutes on 2 cores)
#   bench/run.sh --quick    one short round of everything (about 4 minutes)
#
# Installs what is missing, builds and installs es_pg and the bank example
# (scripts/lib.sh),
# starts a throwaway cluster, loads the same data into es_events and into a
# plain table of the same shape (bench.ref_events), runs every workload with
# pgbench (COPY with psql) under synchronous_commit on and off, with 1 and 2
# clients, prints a table and writes docs/benchmarks.md.  Raw pgbench output
# goes to bench/out/ (not committed).  See docs/benchmarks.md for what each
# workload does and why its reference is fair.
#
# Settings (environment): PG_MAJOR, PG_CONFIG, ES_KEEP as for
# scripts/test.sh; BENCH_ROUNDS, BENCH_SECONDS override the mode's rounds
# and seconds per measurement (BENCH_READ_ROUNDS the reads' rounds, 2 x
# rounds + 1 by default; BENCH_APPEND_ROUNDS those of the single-event
# appends that have a target, 2 x rounds - 1); BENCH_NOTE adds a note at the
# report's top.
#
# The report of PostgreSQL 15 (the default major) is docs/benchmarks.md; a
# run on another major (PG_MAJOR=17) writes docs/benchmarks-pg17.md instead,
# and each run keeps its ratios in bench/ratios-pgNN.tsv, from which the
# "Across PostgreSQL majors" section of docs/benchmarks.md is rewritten: a
# run on one major never overwrites another's figures.  BENCH_DOC names
# another file to write the report to, and then nothing else is written.
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"

mode=full
case "${1:-}" in
	--quick) mode=quick ;;
	"") ;;
	*) echo "usage: bench/run.sh [--quick]" >&2; exit 2 ;;
esac
if [ "$mode" = quick ]; then rounds=1 secs=1; else rounds=3 secs=2; fi
rounds=${BENCH_ROUNDS:-$rounds}
# Reads add no data, so they get more rounds: on 2 cores a 2-client read
# varies by 20% from one measurement to the next, and the median of 3
# pairs is not enough to tell 3% apart
read_rounds=$((rounds == 1 ? 1 : 2 * rounds + 1))
read_rounds=${BENCH_READ_ROUNDS:-$read_rounds}
# The single-event appends with a target get 2 x rounds - 1 rounds: with
# synchronous_commit on, a commit waits for this machine's disk, whose
# flushes vary by a third from one second to the next
append_rounds=$((rounds == 1 ? 1 : 2 * rounds - 1))
append_rounds=${BENCH_APPEND_ROUNDS:-$append_rounds}
secs=${BENCH_SECONDS:-$secs}
report_args=()
if [ -n "${BENCH_DOC:-}" ]; then
	doc=$(realpath -m "$BENCH_DOC")
	# in a chroot, the report is written inside and copied out to BENCH_DOC
	es_chroot_export log/bench-report.md "$doc"
	ES_CHROOT_ENV+=("BENCH_DOC=$ES_CHROOT_TREE/log/bench-report.md")
else
	if [ "$PG_MAJOR" = "$ES_DEFAULT_MAJOR" ]; then
		doc=$ES_ROOT/docs/benchmarks.md
	else
		doc=$ES_ROOT/docs/benchmarks-pg$PG_MAJOR.md
		es_chroot_export "docs/benchmarks-pg$PG_MAJOR.md"
	fi
	report_args=(--ratios "$ES_ROOT/bench/ratios-pg$PG_MAJOR.tsv"
		--main "$ES_ROOT/docs/benchmarks.md")
	es_chroot_export "bench/ratios-pg$PG_MAJOR.tsv"
	es_chroot_export docs/benchmarks.md
fi
es_chroot_export bench/out
es_chroot_if_needed "$@"

# the data every workload starts from (bench/sql/setup.sql)
streams=10000		# streams of the append workloads
per_stream=10		# events already in each
read_len=1000		# events of each stream the read workload reads
read_count=10		# how many such streams
snap_len=10000		# events of the snapshot workload's streams
snap_tail=100		# events after the snapshot
backlog=$([ "$mode" = quick ] && echo 5000 || echo 20000)	# async catch-up
large_mb=100		# the large event, MB
large_secs=$([ "$mode" = quick ] && echo 6 || echo 8)	# pgbench beside it, s
seal_backlog=$([ "$mode" = quick ] && echo 20000 || echo 100000)	# events sealed per round

BENCH=$ES_ROOT/bench
OUT=$BENCH/out/$(date -u +%Y%m%dT%H%M%SZ)
RESULTS=$OUT/results.tsv
started=$(date +%s)

es_need_server
# pgrep (procps) counts the postmaster's children
es_need_packages python3 procps
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
printf 'workload\tvariant\tsync\tclients\tround\tevents_per_s\ttps\tlatency_ms\tstatus\tcpu_us_per_event\n' >"$RESULTS"
printf 'key\tvalue\n' >"$OUT/meta.tsv"

meta() { printf '%s\t%s\n' "$1" "$2" >>"$OUT/meta.tsv"; }

# phase NAME: ends the current phase (its seconds go to the report) and
# starts the next one
phase_name="" phase_start=$(date +%s) phases=""
phase() {
	local now
	now=$(date +%s)
	[ -z "$phase_name" ] || phases="$phases${phases:+, }$phase_name $((now - phase_start)) s"
	phase_name=$1 phase_start=$now
}
sql() { "$PSQL" -X -q -v ON_ERROR_STOP=1 -At "$@"; }
has_function() { [ "$(sql -c "SELECT to_regprocedure('$1') IS NOT NULL")" = t ]; }

# a unique number for each measurement: it names the streams of the
# workloads that need fresh ones
runid=0

# record WORKLOAD VARIANT SYNC CLIENTS ROUND EVENTS/S TPS LATENCY STATUS
#   [CPU-US/EVENT]
record() {
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" \
		"$6" "$7" "$8" "$9" "${10:--}" >>"$RESULTS"
}

# Backend CPU time.  The postmaster reaps every backend that exits, so its
# children's CPU time (cutime + cstime in /proc/PID/stat) grows by exactly
# the CPU the backends of a measurement used, whatever else the machine
# runs: a figure that noise from other processes barely moves.
clk_tck=$(getconf CLK_TCK)
pm_pid=$(head -n 1 "$ES_TMP/data/postmaster.pid")
# cpu_mark: "TICKS CHILDREN", the children's CPU so far and how many
# processes the postmaster has before the measurement starts its own
cpu_mark() {
	echo "$(awk '{ print $16 + $17 }' "/proc/$pm_pid/stat") $(pgrep -c -P "$pm_pid" || true)"
}
# cpu_since MARK EVENTS: backend CPU microseconds per event since MARK,
# once the measurement's backends have exited (waiting a second at most)
cpu_since() {
	local i now
	set -- $1 "$2"
	for ((i = 0; i < 50; i++)); do
		[ "$(pgrep -c -P "$pm_pid" || true)" -le "$2" ] && break
		sleep 0.02
	done
	now=$(awk '{ print $16 + $17 }' "/proc/$pm_pid/stat")
	awk -v a="$1" -v b="$now" -v e="$3" -v hz="$clk_tck" \
		'BEGIN { printf "%.2f", (e > 0 ? (b - a) * 1e6 / hz / e : 0) }'
}

# skip WORKLOAD NOTE: the workload cannot run on this build
skip() {
	record "$1" - - - - - - - "skipped: $2"
	echo "  $1: skipped ($2)"
}

# settle: wait (two seconds at most) until the postmaster's processes stop
# coming and going, so that a background worker that exits after a
# configuration change is not counted in the next measurement's CPU
settle() {
	local i n m
	n=$(pgrep -c -P "$pm_pid" || true)
	for ((i = 0; i < 10; i++)); do
		sleep 0.2
		m=$(pgrep -c -P "$pm_pid" || true)
		[ "$m" = "$n" ] && [ "$i" -ge 2 ] && break
		n=$m
	done
}

# bench_pgbench WORKLOAD VARIANT SYNC CLIENTS ROUND SCRIPT PROTOCOL EVENTS
#   [pgbench option...]: one pgbench measurement; EVENTS per transaction.
bench_pgbench() {
	local w=$1 v=$2 sync=$3 c=$4 r=$5 script=$6 proto=$7 ev=$8
	shift 8
	local log=$OUT/raw/$w.$v.$sync.c$c.r$r.log tps lat status=ok cpu0 n
	runid=$((runid + 1))
	cpu0=$(cpu_mark)
	if ! PGOPTIONS="-c synchronous_commit=${sync/any/on}" "$PGBENCH" -n -M "$proto" \
		-c "$c" -j "$c" -T "$secs" -f "$script" \
		-D nclients="$c" -D run="$runid" -D streams="$streams" \
		-D read_count="$read_count" -D feed_len="$feed_len" -D v=0 \
		-D 'data={"amount": 10}' "$@" >"$log" 2>&1; then
		status=failed
	fi
	grep -q '^number of failed transactions: 0 ' "$log" || status=failed
	grep -q 'Run was aborted' "$log" && status=failed
	tps=$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' "$log")
	lat=$(sed -n 's/^latency average = \([0-9.]*\) ms/\1/p' "$log")
	[ -n "$tps" ] && [ "${tps%%.*}" != 0 ] || { tps=${tps:-0}; status=failed; }
	[ "$status" = ok ] || { echo "  $w/$v failed, see $log"; tail -n 5 "$log"; }
	n=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$log")
	record "$w" "$v" "$sync" "$c" "$r" \
		"$(awk -v t="$tps" -v e="$ev" 'BEGIN { printf "%.1f", t * e }')" \
		"$tps" "${lat:-0}" "$status" "$(cpu_since "$cpu0" $((${n:-0} * ev)))"
}

# bench_mixed WORKLOAD ES-VARIANT REF-VARIANT SYNC CLIENTS ROUND ES-SCRIPT
#   REF-SCRIPT EVENTS [pgbench option...]: es_pg and its reference measured in one
#   pgbench run, each transaction of each client drawn at random from the
#   two scripts (equal weights), so that both meet the same disk flushes and
#   the same CPU at the same moments: on this VM two 2-second runs back to
#   back differ by a third and more when commits wait for the disk, far more
#   than the difference measured, and reads on 2 cores by a fifth.  Each
#   side's events/s is what its latency gives the clients (clients /
#   latency, EVENTS a transaction);
#   the ratio is thus the reference's latency over es_pg's.  No CPU figure:
#   the backends run both.
bench_mixed() {
	local w=$1 ve=$2 vr=$3 sync=$4 c=$5 r=$6 es_script=$7 ref_script=$8 ev=$9
	shift 9
	local log=$OUT/raw/$w.mixed.$sync.c$c.r$r.log status=ok lat_es lat_ref n_es n_ref
	runid=$((runid + 1))
	if ! PGOPTIONS="-c synchronous_commit=${sync/any/on}" "$PGBENCH" -n -M prepared \
		-c "$c" -j "$c" -T "$secs" -f "$es_script@1" -f "$ref_script@1" \
		-D nclients="$c" -D run="$runid" -D streams="$streams" \
		-D read_count="$read_count" -D feed_len="$feed_len" \
		-D 'data={"amount": 10}' "$@" >"$log" 2>&1; then
		status=failed
	fi
	grep -q '^number of failed transactions: 0 ' "$log" || status=failed
	grep -q 'Run was aborted' "$log" && status=failed
	# the per-script sections, in the order of the -f options
	lat_es=$(sed -n 's/^ - latency average = \([0-9.]*\) ms/\1/p' "$log" | sed -n 1p)
	lat_ref=$(sed -n 's/^ - latency average = \([0-9.]*\) ms/\1/p' "$log" | sed -n 2p)
	n_es=$(sed -n 's/^ - \([0-9]*\) transactions (.*/\1/p' "$log" | sed -n 1p)
	n_ref=$(sed -n 's/^ - \([0-9]*\) transactions (.*/\1/p' "$log" | sed -n 2p)
	if [ -z "$lat_es" ] || [ -z "$lat_ref" ] || [ "${n_es:-0}" = 0 ] || [ "${n_ref:-0}" = 0 ]; then
		status=failed lat_es=${lat_es:-0} lat_ref=${lat_ref:-0}
	fi
	[ "$status" = ok ] || { echo "  $w (mixed) failed, see $log"; tail -n 5 "$log"; }
	local v lat rate
	for v in es ref; do
		if [ "$v" = es ]; then lat=$lat_es; else lat=$lat_ref; fi
		rate=$(awk -v c="$c" -v l="$lat" 'BEGIN { printf "%.1f", (l > 0 ? c * 1000 / l : 0) }')
		record "$w" "$([ "$v" = es ] && echo "$ve" || echo "$vr")" "$sync" "$c" "$r" \
			"$(awk -v t="$rate" -v e="$ev" 'BEGIN { printf "%.1f", t * e }')" \
			"$rate" "$lat" "$status" -
	done
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
	local key=$w.$sync.$c rate k i t0 t1 status=ok pids=() secs_run evs cpu0 cpu
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
	cpu0=$(cpu_mark)
	t0=$(date +%s.%N)
	for ((i = 0; i < c; i++)); do
		PGOPTIONS="-c synchronous_commit=$sync" \
			"$PSQL" -X -q -v ON_ERROR_STOP=1 -f "$OUT/gen/copy.$i.sql" \
			>"$OUT/raw/$w.copy.$sync.c$c.r$r.$i.log" 2>&1 &
		pids+=($!)
	done
	for i in "${pids[@]}"; do wait "$i" || status=failed; done
	t1=$(date +%s.%N)
	cpu=$(cpu_since "$cpu0" $((k * n * c)))
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
		"$status" "$cpu"
}

# bench_sql WORKLOAD VARIANT ROUND SQL|@FILE [EVENTS [PSQL OPTION...]]: one
# timed psql run of a statement or a script (each statement its own
# transaction).  The figure is EVENTS (default: the number the statement
# returns) per second of wall-clock time, less psql's start-up.  A script
# may print "elapsed SECONDS" to time itself instead.
bench_sql() {
	local w=$1 v=$2 r=$3 q=$4 ev=${5:-} cpu0 t0 t1 n out secs_run status=ok
	shift 4
	[ $# -gt 0 ] && shift
	cpu0=$(cpu_mark)
	t0=$(date +%s.%N)
	if [ "${q:0:1}" = @ ]; then
		out=$(sql "$@" -f "${q:1}" 2>"$OUT/raw/$w.$v.r$r.err") || status=failed
	else
		out=$(sql "$@" -c "$q" 2>"$OUT/raw/$w.$v.r$r.err") || status=failed
	fi
	t1=$(date +%s.%N)
	[ "$status" = ok ] || { echo "  $w/$v failed:"; head -n 5 "$OUT/raw/$w.$v.r$r.err"; }
	n=$(echo "$out" | tail -n 1)
	[[ "$n" =~ ^[0-9]+$ ]] || n=0
	ev=${ev:-$n}
	secs_run=$(echo "$out" | sed -n 's/^elapsed //p')
	[ -n "$secs_run" ] || secs_run=$(awk -v a="$t0" -v b="$t1" -v o="$copy_overhead" \
		'BEGIN { d = b - a - o; printf "%.4f", (d > 0.001 ? d : 0.001) }')
	record "$w" "$v" any 1 "$r" \
		"$(awk -v n="$ev" -v s="$secs_run" 'BEGIN { printf "%.1f", (n + 0) / s }')" \
		"${n:-0}" "$(awk -v s="$secs_run" 'BEGIN { printf "%.1f", s * 1000 }')" \
		"$status" "$(cpu_since "$cpu0" "$ev")"
}

# gen_batch_scripts N: the pgbench scripts of the batch-of-N workload; the
# events are literals in the statement, so the client sends and the server
# parses them on every call, as with COPY (pgbench -M simple)
gen_batch_scripts() {
	local n=$1
	awk -v n="$n" 'BEGIN {
		print "-- es_append_batch of " n " events to a random stream, no version check"
		print "\\set sid :client_id + :nclients * random(0, :streams / :nclients - 1)"
		printf "SELECT es_append_batch('\''account-'\'' || :sid, '\''["
		for (j = 1; j <= n; j++)
			printf "%s{\"type\": \"MoneyDeposited\", \"data\": {\"amount\": %d}}", (j > 1 ? ", " : ""), 10 + j % 90
		print "]'\'');"
	}' >"$OUT/gen/batch$n.es.sql"
	awk -v n="$n" 'BEGIN {
		print "-- one multi-row INSERT of " n " events to a random stream, versions computed in SQL"
		print "\\set sid :client_id + :nclients * random(0, :streams / :nclients - 1)"
		print "INSERT INTO bench.ref_events (stream_id, version, event_type, data)"
		print "SELECT '\''account-'\'' || :sid, cur.version + t.n, t.event_type, t.data"
		print "  FROM (SELECT coalesce(max(version), 0) AS version FROM bench.ref_events"
		print "         WHERE stream_id = '\''account-'\'' || :sid) cur,"
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

# The projection workloads need es_create_projection (issue 4) and use the
# bank module's handlers (issue 5) when it installs.  The bank module
# registers its projections and replays history at CREATE EXTENSION: it is
# created before the data is loaded, and its projections dropped; the
# workloads register them again, at the head.
sql -c "CREATE EXTENSION es_pg" >/dev/null
projections=0 bank=0 bank_note=""
if has_function 'es_create_projection(text,regprocedure,text[],text,regprocedure,boolean)'; then
	projections=1
	if [ "$(sql -c "SELECT count(*) FROM pg_available_extensions WHERE name = 'es_pg_bank'")" = 1 ]; then
		if sql -c "CREATE EXTENSION es_pg_bank" >"$OUT/raw/bank.log" 2>&1; then
			bank=1
			sql -c "SELECT es_drop_projection(name) FROM es_projections" >/dev/null
		else
			bank_note="es_pg_bank did not install ($(head -n 1 "$OUT/raw/bank.log"))"
		fi
	else
		bank_note="the bank module (es_pg_bank) is not installed"
	fi
fi

phase setup
es_log "loading the data ($streams streams of $per_stream events, $read_count of $read_len, 2 of $snap_len)"
sql -v streams=$streams -v per_stream=$per_stream -v read_len=$read_len \
	-v read_count=$read_count -v snap_len=$snap_len -v snap_tail=$snap_tail \
	-f "$BENCH/sql/setup.sql" >/dev/null
feed_len=$(sql -c "SELECT max(global_position) FROM es_events")
measure_copy_overhead

# the machine and the settings, for the report
meta mode "$mode"
meta rounds "$rounds"
meta read_rounds "$read_rounds"
meta append_rounds "$append_rounds"
meta seconds "$secs"
meta date "$(date -u '+%Y-%m-%d %H:%M UTC')"
meta cpu "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
meta cores "$(nproc)"
meta memory "$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
meta kernel "$(uname -sr)"
meta loadavg_start "$(cut -d' ' -f1-3 /proc/loadavg)"
meta postgres "$(sql -c 'SELECT version()')"
meta es_pg "$(sql -c "SELECT extversion FROM pg_extension WHERE extname = 'es_pg'")"
meta pg_major "$PG_MAJOR"
# a copy of the tree in a chroot has no .git: the commit comes with the run
meta commit "${ES_GIT_COMMIT:-$(git -C "$ES_ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)}"
meta settings "$(sql -F '=' -R ', ' -c "SELECT name, current_setting(name) FROM pg_settings WHERE name IN ('shared_buffers', 'fsync', 'wal_sync_method', 'full_page_writes', 'max_wal_size', 'checkpoint_timeout', 'autovacuum', 'wal_level', 'jit') ORDER BY name")"
meta data "$(sql -c "SELECT count(*) || ' events, ' || pg_size_pretty(pg_total_relation_size('es_events')) FROM es_events")"
meta dsync "$(cd "$ES_TMP" && dd if=/dev/zero of=dsync.test bs=8k count=500 oflag=dsync 2>&1 |
	awk '/copied/ { for (i = 1; i <= NF; i++) if ($i ~ /^s,?$/) t = $(i - 1); printf "%.0f", 500 / t }';
	rm -f dsync.test)"
meta copy_overhead "$copy_overhead"

# ---- reads: no commit record is written, so once, not per durability
phase reads
# category pages (issue 12) against an index of the same expression on the
# reference table, there only while the reads run (the append references
# below have the indexes of 0.1.0's es_events)
category=0
if has_function 'es_read_category(text,bigint,bigint)'; then
	category=1
	sql -c "CREATE INDEX ref_events_category_idx ON bench.ref_events (split_part(stream_id, '-', 1), global_position)" \
		-c "ANALYZE bench.ref_events" >/dev/null
fi
reads=(read_stream read_all)
[ "$category" = 1 ] && reads+=(read_category)
for c in 1 2; do
	es_log "reads, $c client(s)"
	for r in $(seq 1 "$read_rounds"); do
		# each workload's two variants run back to back, so that the
		# machine's drift between them is a few seconds' worth
		for w in "${reads[@]}"; do
			case $w in
				read_stream) n=$read_len ;;
				*) n=1000 ;;
			esac
			bench_mixed "$w" es ref any "$c" "$r" "$S/${w}_es.sql" "$S/${w}_ref.sql" "$n"
		done
	done
done
if [ "$category" = 1 ]; then
	sql -c "DROP INDEX bench.ref_events_category_idx" >/dev/null
else
	skip read_category "es_read_category is not installed (issue 12)"
fi

# ---- snapshots (issue 3): one stream with a snapshot $snap_tail events from
# its head, one without (full replay), and one of twice the tail
reducer="'bench.account_reducer(jsonb, es_events)'::regprocedure"
if has_function 'es_aggregate(text,regprocedure,jsonb,bigint,timestamptz)' &&
	has_function 'es_save_snapshot(text,bigint,jsonb,regprocedure)'; then
	phase snapshots
	es_log "snapshot load vs full replay"
	at=$((snap_len - snap_tail))
	sql -c "SELECT es_save_snapshot('snap-1', $at, es_aggregate('snap-1', $reducer, '{}', $at), $reducer)" >/dev/null
	# the snapshot path must give the state the full replay gives
	same=$(sql -c "SELECT es_aggregate('snap-1', $reducer)->'balance' = es_aggregate('snap-2', $reducer)->'balance'")
	if [ "$same" != t ]; then
		skip snapshot "the state loaded from the snapshot differs from the full replay"
	else
		for c in 1 2; do
			for r in $(seq 1 "$rounds"); do
				for v in $(rotate "$r" snapshot replay tail2x); do
					bench_pgbench snapshot "$v" any "$c" "$r" "$S/snapshot_$v.sql" prepared 1
				done
			done
		done
		# a policy or an automatic snapshot would make "replay" a snapshot load
		n=$(sql -c "SELECT (SELECT count(*) FROM es_load_snapshot('snap-2')) + (SELECT count(*) FROM es_load_snapshot('tail-1'))")
		[ "$n" = 0 ] || record snapshot - - - - - - - "invalid: es_aggregate stored snapshots of snap-2 or tail-1 during the run"
	fi
else
	skip snapshot "es_aggregate and es_save_snapshot are not installed (issue 3)"
fi

# ---- projections (issue 4)
if [ "$projections" = 1 ]; then
	sql -v bank=$bank -f "$BENCH/sql/projections.sql" >/dev/null
	if [ "$bank" = 1 ]; then
		meta projections "the bank module's three projections (es_pg_bank: bank_accounts, bank_transactions, bank_daily_summary)"
	else
		meta projections "three handlers of bench/sql/projections.sql, the same statements as the bank module's ($bank_note)"
	fi
	# async projections are applied by es_apply_projections here, not by the
	# worker, so that the time is the machinery's and not the worker's nap
	sql -c "ALTER SYSTEM SET es_pg.projection_workers = off" -c "SELECT pg_reload_conf()" >/dev/null
	settle

	# rebuild: es_rebuild_projection against reset + the handlers over every
	# event; this also fills the read models for the workloads below
	phase rebuild
	es_log "projections: rebuild"
	sql -c "SELECT bench.projections_on('inline')" >/dev/null
	for r in $(seq 1 "$rounds"); do
		for v in $(rotate "$r" rebuild handlers); do
			if [ "$v" = rebuild ]; then
				bench_sql rebuild_projection rebuild "$r" \
					"SELECT sum(es_rebuild_projection(name)) FROM (SELECT name FROM bench.projection_defs ORDER BY name) d"
			else
				bench_sql rebuild_projection handlers "$r" \
					"SELECT sum(bench.reset_and_apply(name)) FROM (SELECT name FROM bench.projection_defs ORDER BY name) d"
			fi
		done
	done

	# inline: the same single-event appends with and without the projections
	phase inline
	for sync in on off; do
		for c in 1 2; do
			es_log "projections: inline, synchronous_commit = $sync, $c client(s)"
			for r in $(seq 1 "$rounds"); do
				for v in $(rotate "$r" bank3 alone by_hand); do
					if [ "$v" = bank3 ]; then
						sql -c "SELECT bench.projections_on('inline')" >/dev/null
					else
						sql -c "SELECT bench.projections_off()" >/dev/null
					fi
					bench_pgbench inline_projections "$v" "$sync" "$c" "$r" \
						"$S/$([ "$v" = by_hand ] && echo inline_by_hand || echo append_es).sql" prepared 1
				done
			done
		done
	done
	sql -c "SELECT bench.projections_off()" >/dev/null

	# async: a backlog of $backlog events applied in batches of 1,000 events
	# per projection and transaction, as the worker applies them, by
	# es_apply_projections(NULL, 1000) called until it has nothing left,
	# against the handlers called on another backlog of the same shape, in
	# the same batches
	phase async
	es_log "projections: async catch-up"
	nbatch=$(((backlog + 999) / 1000))
	for r in $(seq 1 "$rounds"); do
		for v in $(rotate "$r" catchup handlers); do
			if [ "$v" = catchup ]; then
				sql -c "SELECT bench.projections_on('async')" >/dev/null
				sql -c "SELECT bench.make_backlog($backlog, $streams)" >/dev/null
				for ((i = 0; i <= nbatch; i++)); do
					echo "SELECT es_apply_projections(NULL, 1000);"
				done >"$OUT/gen/catchup.sql"
				bench_sql async_projection catchup "$r" "@$OUT/gen/catchup.sql" "$backlog"
				lag=$(sql -c "SELECT sum(lag_events) FROM es_projection_status WHERE name IN (SELECT name FROM bench.projection_defs)")
				[ "$lag" = 0 ] || record async_projection - - - - - - - "invalid: es_apply_projections left $lag events unapplied"
				sql -c "SELECT bench.projections_off()" >/dev/null
			else
				from=$(sql -c "SELECT max(global_position) FROM es_events")
				sql -c "SELECT bench.make_backlog($backlog, $streams)" >/dev/null
				to=$(sql -c "SELECT max(global_position) FROM es_events")
				for ((i = from; i < to; i += 1000)); do
					echo "SELECT bench.apply_handlers($i, $((i + 1000 < to ? i + 1000 : to)));"
				done >"$OUT/gen/handlers.sql"
				bench_sql async_projection handlers "$r" "@$OUT/gen/handlers.sql" "$backlog"
				tail -n 1 "$RESULTS" | sed 's/^async_projection/async_worker/' >>"$RESULTS"
			fi
		done
	done

	# the worker: time from the commit of a backlog to the moment
	# es_wait_for_projection says all three projections have applied it
	sql -c "ALTER SYSTEM RESET es_pg.projection_workers" -c "SELECT pg_reload_conf()" >/dev/null
	settle
	for r in $(seq 1 "$rounds"); do
		sql -c "SELECT bench.projections_on('async')" >/dev/null
		bench_sql async_worker worker "$r" "@$BENCH/sql/worker_catchup.sql" "$backlog" \
			-v backlog="$backlog" -v streams="$streams"
		sql -c "SELECT bench.projections_off()" >/dev/null
	done
else
	for w in rebuild_projection inline_projections async_projection; do
		skip "$w" "es_create_projection is not installed (issue 4)"
	done
fi

# (subscriptions and schema evolution append events of their own: they come
# after the projections, whose rebuild replays every event in one transaction)
# ---- subscriptions (issue 12): delivery through es_poll + es_ack in pages
# of 100 and 1,000 (50,000 events per measurement, from the start of the
# feed), each page and its ack one transaction (the exactly-once pattern),
# against plain SELECT paging from a checkpoint row that each page updates
# in one transaction; then the append-to-delivery latency of a long poll while
# pgbench appends 1,000 events/s
# delivery_script VARIANT PAGE FILE: the psql script of one measurement
delivery_script() {
	local v=$1 page=$2 n=$((50000 / $2)) i
	for ((i = 0; i < n; i++)); do
		echo "BEGIN;"
		if [ "$v" = es ]; then
			echo "SELECT max(global_position) AS p FROM es_poll('bench_delivery', 0, $page) \\gset"
			echo "SELECT es_ack('bench_delivery', 0, :p);"
		else
			echo "SELECT max(global_position) AS p FROM (SELECT * FROM bench.ref_events WHERE global_position > (SELECT position FROM bench.ref_checkpoint) ORDER BY global_position LIMIT $page) x \\gset"
			echo "UPDATE bench.ref_checkpoint SET position = :p;"
		fi
		echo "COMMIT;"
	done >"$3"
}
# group_script VARIANT PAGE FILE: the psql script of one consumer-group
# measurement
group_script() {
	local v=$1 page=$2 n=$((25000 / $2)) i
	{
	if [ "$v" = msgdb ]; then
		echo "SET search_path = message_store, public;"
		echo "\\set pos 1"
	fi
	for ((i = 0; i < n; i++)); do
		echo "BEGIN;"
		if [ "$v" = es ]; then
			echo "SELECT max(global_position) AS p FROM es_poll('bench_group', 0, $page) \\gset"
			echo "SELECT es_ack('bench_group', 0, :p);"
		else
			echo "SELECT max(global_position) + 1 AS pos FROM get_category_messages('account', :pos, $page, NULL, 0, 2) \\gset"
			echo "SELECT write_message(gen_random_uuid()::text, 'benchConsumer:position-0', 'Recorded', jsonb_build_object('position', :pos));"
		fi
		echo "COMMIT;"
	done
	} >"$3"
}
# msgdb_install: Message DB's package from npm, installed into this
# database (schema message_store), with the events of the account streams
msgdb_install() {
	local dir=$OUT/gen/msgdb
	es_need_node || return 1
	mkdir -p "$dir"
	(cd "$dir" && npm pack --silent @eventide/message-db@1.3.1 && tar xzf eventide-message-db-1.3.1.tgz) \
		>"$OUT/raw/msgdb.install.log" 2>&1 || return 1
	env PGUSER=postgres DATABASE_NAME=postgres CREATE_DATABASE=off PATH="$bindir:$PATH" \
		bash "$dir/package/database/install.sh" >>"$OUT/raw/msgdb.install.log" 2>&1 || return 1
	sql -c "INSERT INTO message_store.messages (id, stream_name, type, position, data, metadata, time)
			SELECT event_id, stream_id, event_type, version - 1, data, metadata, recorded_at
			  FROM es_events WHERE stream_id LIKE 'account-%' ORDER BY global_position" \
		-c "ANALYZE message_store.messages" >/dev/null
}
if has_function 'es_poll(text,integer,integer,interval,text)'; then
	phase subscriptions
	es_log "subscriptions: delivery"
	sql -c "CREATE TABLE bench.ref_checkpoint (position bigint NOT NULL)" \
		-c "INSERT INTO bench.ref_checkpoint VALUES (0)" >/dev/null
	for page in 100 1000; do
		delivery_script es "$page" "$OUT/gen/delivery_es_$page.sql"
		delivery_script ref "$page" "$OUT/gen/delivery_ref_$page.sql"
	done
	for r in $(seq 1 "$rounds"); do
		for page in 100 1000; do
			for v in $(rotate "$r" es ref); do
				sql -c "SELECT es_drop_subscription('bench_delivery', true)" \
					-c "SELECT es_create_subscription('bench_delivery')" \
					-c "UPDATE bench.ref_checkpoint SET position = 0" >/dev/null
				bench_sql "delivery$page" "$v" "$r" "@$OUT/gen/delivery_${v}_$page.sql" 50000
			done
		done
	done
	# every page was full: the subscription's checkpoint is at the 50,000th event
	n=$(sql -c "SELECT count(*) FROM es_events WHERE global_position <= (SELECT position FROM es_subscription_status WHERE subscription = 'bench_delivery')")
	[ "$n" = 50000 ] || record delivery1000 - - - - - - - "invalid: the last measurement delivered $n events, not 50,000"

	# consumer groups: member 0 of a group of 2 on the category "account",
	# 25,000 events per measurement, each page and its checkpoint one
	# transaction, against Message DB (npm @eventide/message-db, installed
	# here in schema message_store with the same events): its
	# get_category_messages with a consumer group, the consumer writing its
	# position to a stream after each page, as Message DB consumers do
	if msgdb_install; then
		es_log "subscriptions: consumer groups beside Message DB"
		for page in 100 1000; do
			group_script es "$page" "$OUT/gen/group_es_$page.sql"
			group_script msgdb "$page" "$OUT/gen/group_msgdb_$page.sql"
		done
		for r in $(seq 1 "$rounds"); do
			for page in 100 1000; do
				for v in $(rotate "$r" es msgdb); do
					sql -c "SELECT es_drop_subscription('bench_group', true)" \
						-c "SELECT es_create_subscription('bench_group', 'account', group_size => 2)" >/dev/null
					bench_sql "group$page" "$v" "$r" "@$OUT/gen/group_${v}_$page.sql" 25000
				done
			done
		done
		n=$(sql -c "SELECT count(*) FROM es_events WHERE stream_id LIKE 'account-%' AND (hashtextextended(stream_id, 0) & 9223372036854775807) % 2 = 0 AND global_position <= (SELECT position FROM es_subscription_status WHERE subscription = 'bench_group' AND member = 0)")
		[ "$n" = 25000 ] || record group1000 - - - - - - - "invalid: the last measurement delivered $n events, not 25,000"
	else
		skip group100 "Message DB (npm @eventide/message-db) could not be installed: see $OUT/raw/msgdb.install.log"
		skip group1000 "Message DB (npm @eventide/message-db) could not be installed"
	fi

	es_log "subscriptions: append-to-delivery latency at 1,000 appends/s"
	lat_secs=$([ "$mode" = quick ] && echo 3 || echo 6)
	sql -c "CREATE TABLE bench.delivery_lat (global_position bigint, latency interval)" >/dev/null
	# measure_latency LABEL: one run; its p50 and p99 go to the report
	measure_latency() {
		local label=$1 consumer appended delivered
		sql -c "TRUNCATE bench.delivery_lat" \
			-c "SELECT es_drop_subscription('bench_lat', true)" \
			-c "SELECT es_create_subscription('bench_lat', 'lat', start_position => es_head_position())" >/dev/null
		sql -v dur=$((lat_secs + 2)) -f "$BENCH/sql/delivery_latency.sql" >/dev/null &
		consumer=$!
		sleep 0.5
		"$PGBENCH" -n -M prepared -c 2 -j 2 -R 1000 -T "$lat_secs" -f "$S/latency_append.sql" \
			>"$OUT/raw/latency.$label.log" 2>&1
		wait "$consumer"
		appended=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$OUT/raw/latency.$label.log")
		delivered=$(sql -c "SELECT count(*) FROM bench.delivery_lat")
		meta "latency_${label}_appended" "${appended:-0}"
		meta "latency_${label}_delivered" "$delivered"
		meta "latency_${label}_p50_ms" "$(sql -c "SELECT round((extract(epoch FROM percentile_cont(0.5) WITHIN GROUP (ORDER BY latency)) * 1000)::numeric, 2) FROM bench.delivery_lat")"
		meta "latency_${label}_p99_ms" "$(sql -c "SELECT round((extract(epoch FROM percentile_cont(0.99) WITHIN GROUP (ORDER BY latency)) * 1000)::numeric, 2) FROM bench.delivery_lat")"
		meta "latency_${label}_max_ms" "$(sql -c "SELECT round((extract(epoch FROM max(latency)) * 1000)::numeric, 2) FROM bench.delivery_lat")"
	}
	measure_latency preloaded
	subscriptions=1
else
	skip delivery100 "es_poll is not installed (issue 12)"
	skip delivery1000 "es_poll is not installed (issue 12)"
	subscriptions=0
fi

# ---- schema evolution (issue 13): stream reads with no upcaster at all,
# with upcasters for other types only, and with a one-step SQL upcaster on
# every event, beside the plain SELECT; appends with a jsonpath validator
# beside appends of a type not registered (bench/sql/evolution.sql)
if has_function 'es_register_event_type(text,integer,jsonpath,regprocedure)'; then
	sql -f "$BENCH/sql/evolution.sql" >/dev/null
	phase evolution
	for c in 1 2; do
		es_log "schema evolution: reads, $c client(s)"
		for r in $(seq 1 "$read_rounds"); do
			# one reference run serves the three workloads, and the read
			# without upcaster is the second reference of the upcast one
			for v in $(rotate "$r" none other upcast ref); do
				case $v in
					ref)
						bench_pgbench read_upcast ref any "$c" "$r" "$S/read_stream_ref.sql" prepared "$read_len"
						;;
					none)
						# mixed with the plain SELECT; its es_pg figure is
						# also the second reference of the upcast reads
						sql -c "SELECT bench.evolution('none')" >/dev/null
						bench_mixed read_no_upcaster es ref any "$c" "$r" "$S/read_stream_es.sql" \
							"$S/read_stream_ref.sql" "$read_len"
						tail -n 2 "$RESULTS" | head -n 1 | sed 's/^read_no_upcaster\tes/read_upcast\tnone/' >>"$RESULTS"
						;;
					other)
						sql -c "SELECT bench.evolution('other')" >/dev/null
						bench_mixed read_other_upcaster es ref any "$c" "$r" "$S/read_stream_es.sql" \
							"$S/read_stream_ref.sql" "$read_len"
						;;
					upcast)
						sql -c "SELECT bench.evolution('upcast')" >/dev/null
						bench_pgbench read_upcast es any "$c" "$r" "$S/read_stream_es.sql" prepared "$read_len"
						;;
				esac
			done
		done
	done
	for sync in on off; do
		for c in 1 2; do
			es_log "schema evolution: appends, synchronous_commit = $sync, $c client(s)"
			for r in $(seq 1 "$append_rounds"); do
				for v in $(rotate "$r" validator none); do
					sql -c "SELECT bench.evolution('$v')" >/dev/null
					bench_pgbench append_validator "$([ "$v" = validator ] && echo es || echo none)" \
						"$sync" "$c" "$r" "$S/append_es.sql" prepared 1
				done
			done
		done
	done
	sql -c "SELECT bench.evolution('none')" >/dev/null
else
	for w in read_no_upcaster read_other_upcaster read_upcast append_validator; do
		skip "$w" "es_register_event_type is not installed (issue 13)"
	done
fi

# ---- crypto-shredding (issue 14): single-event appends of a protected
# type (two members encrypted under the key of the customer the event
# names) beside the same appends of a type that is not protected
# (bench/sql/privacy.sql)
if has_function 'es_protect(text,text[],text)'; then
	sql -f "$BENCH/sql/privacy.sql" >/dev/null
	phase privacy
	# one script per type, so that one pgbench run can mix them
	sed "s/:type/'BenchCustomer'/" "$S/append_protected.sql" >"$OUT/gen/append_protected.es.sql"
	sed "s/:type/'BenchCustomerPlain'/" "$S/append_protected.sql" >"$OUT/gen/append_protected.none.sql"
	for sync in on off; do
		for c in 1 2; do
			es_log "crypto-shredding: appends, synchronous_commit = $sync, $c client(s)"
			for r in $(seq 1 "$append_rounds"); do
				bench_mixed append_protected es none "$sync" "$c" "$r" \
					"$OUT/gen/append_protected.es.sql" \
					"$OUT/gen/append_protected.none.sql" 1
			done
		done
	done
	# the protection goes (its events stay, encrypted), so that the read
	# paths of the later phases keep the install's fast path
	sql -c "DELETE FROM es_protected_types WHERE event_type = 'BenchCustomer'" >/dev/null
else
	skip append_protected "es_protect is not installed (issue 14)"
fi

# ---- appends
phase appends
gen_batch_scripts 10
gen_batch_scripts 1000
for sync in on off; do
	for c in 1 2; do
		es_log "appends, synchronous_commit = $sync, $c client(s)"
		for r in $(seq 1 "$append_rounds"); do
			bench_mixed append es ref "$sync" "$c" "$r" "$S/append_es.sql" "$S/append_ref.sql" 1
			for v in $(rotate "$r" es ref); do
				bench_pgbench append_expected "$v" "$sync" "$c" "$r" "$S/expected_$v.sql" prepared 1
			done
			[ "$r" -le "$rounds" ] || continue
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

# ---- a large event beside small appends and feed reads: a session appends
# one event of $large_mb MB (random hex, which compresses badly, so that it
# goes to TOAST nearly whole) while pgbench appends single events to other
# streams, or reads pages of the feed; the same pgbench run without the large
# append is the reference.  The figure that matters is the slowest small
# append (latency column: the maximum, from pgbench's per-transaction log):
# the large event's TOAST work must not hold the feed lock.
phase large_event
es_log "a $large_mb MB event beside small appends and feed reads"
sql -c "CREATE TABLE bench.blob AS SELECT string_agg(md5(random()::text) || md5(random()::text), '') AS b
		  FROM generate_series(1, $large_mb * 16384)" >/dev/null
# bench_large VARIANT WORKLOAD ROUND SCRIPT: pgbench for $large_secs s, with
# the large append started a second in (VARIANT beside) or not (alone)
bench_large() {
	local v=$1 w=$2 r=$3 script=$4
	local log=$OUT/raw/large.$w.$v.r$r pid t0 t1 tps max status=ok
	runid=$((runid + 1))
	rm -f "$log".*
	PGOPTIONS="-c synchronous_commit=on" "$PGBENCH" -n -M prepared -c 1 -j 1 -T "$large_secs" \
		-f "$script" -l --log-prefix="$log" -D nclients=1 -D run="$runid" \
		-D streams="$streams" -D feed_len="$feed_len" -D 'data={"amount": 10}' \
		>"$log.out" 2>&1 &
	pid=$!
	if [ "$v" = beside ]; then
		sleep 1
		t0=$(date +%s.%N)
		sql -c "SET es_pg.max_event_bytes = '1GB'" \
			-c "SELECT es_append('large-$runid', 'Large', jsonb_build_object('blob', b)) FROM bench.blob" \
			>/dev/null 2>"$log.large.err" || status=failed
		t1=$(date +%s.%N)
		meta "large_event_seconds_$w.r$r" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')"
	fi
	wait "$pid" || status=failed
	tps=$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' "$log.out")
	max=$(cat "$log".[0-9]* 2>/dev/null | awk '$3 > m { m = $3 } END { printf "%.1f", m / 1000 }')
	[ -n "$tps" ] || { tps=0; status=failed; }
	[ "$status" = ok ] || { echo "  large_event/$w/$v failed, see $log.*"; }
	record "$w" "$v" on 1 "$r" "$tps" "$tps" "$max" "$status"
}
for r in $(seq 1 "$rounds"); do
	for v in $(rotate "$r" beside alone); do
		bench_large "$v" large_event "$r" "$S/append_es.sql"
		bench_large "$v" large_event_read "$r" "$S/read_all_es.sql"
	done
done
meta large_event_mb "$large_mb"
sql -c "DROP TABLE bench.blob" >/dev/null

# ---- the seal chain (issue 14, docs/audit.md): es_seal of a backlog of
# $seal_backlog fresh events, and es_verify of the same range, against plain
# PostgreSQL hashing the same events (sha256 of each row's text, one SQL
# statement); the report sets the sealing rate beside the highest append
# rate of the run
if has_function 'es_seal(bigint)' && has_function 'es_verify(bigint,bigint)'; then
	phase seal
	es_log "seal chain: es_seal and es_verify of $seal_backlog events"
	sql -c "SELECT es_seal()" >/dev/null
	seal_backlog_fn="CREATE FUNCTION bench.seal_backlog(n integer) RETURNS bigint LANGUAGE sql AS \$\$
		SELECT 10 * count(es_append_batch('seal-' || g, '[{\"type\": \"MoneyDeposited\", \"data\": {\"amount\": 10}},
		  {\"type\": \"MoneyDeposited\", \"data\": {\"amount\": 20}}, {\"type\": \"MoneyWithdrawn\", \"data\": {\"amount\": 5}},
		  {\"type\": \"MoneyDeposited\", \"data\": {\"amount\": 30}}, {\"type\": \"MoneyDeposited\", \"data\": {\"amount\": 40}},
		  {\"type\": \"MoneyWithdrawn\", \"data\": {\"amount\": 15}}, {\"type\": \"MoneyDeposited\", \"data\": {\"amount\": 50}},
		  {\"type\": \"MoneyDeposited\", \"data\": {\"amount\": 60}}, {\"type\": \"MoneyWithdrawn\", \"data\": {\"amount\": 25}},
		  {\"type\": \"MoneyDeposited\", \"data\": {\"amount\": 70}}]', 0))
		  FROM generate_series(1, n / 10) g(x), LATERAL (SELECT pg_catalog.gen_random_uuid()::text || x) s(g) \$\$"
	sql -c "$seal_backlog_fn" >/dev/null
	for r in $(seq 1 "$rounds"); do
		from=$(sql -c "SELECT max(global_position) FROM es_events")
		sql -c "SELECT bench.seal_backlog($seal_backlog)" >/dev/null
		to=$(sql -c "SELECT max(global_position) FROM es_events")
		sha="SELECT count(pg_catalog.sha256(pg_catalog.convert_to(e::text, 'UTF8'))) FROM es_events e WHERE e.global_position > $from AND e.global_position <= $to"
		for v in $(rotate "$r" es sha256); do
			if [ "$v" = es ]; then
				bench_sql seal es "$r" "SELECT es_seal()"
			else
				bench_sql seal sha256 "$r" "$sha"
			fi
		done
		for v in $(rotate "$r" es sha256); do
			if [ "$v" = es ]; then
				bench_sql verify es "$r" "SELECT events FROM es_verify($from + 1, $to)"
			else
				bench_sql verify sha256 "$r" "$sha"
			fi
		done
		# archiving: the round's streams deleted and sealed (untimed), then
		# es_archive of their events against moving the same rows between
		# two plain tables (DELETE ... RETURNING into INSERT)
		if has_function 'es_archive(bigint,name,boolean)'; then
			[ "$r" = 1 ] && meta archive_size_before "$(sql -c "SELECT pg_total_relation_size('es_events')")"
			sql -c "SELECT count(es_delete_stream(s.stream_id)) FROM (SELECT DISTINCT stream_id FROM es_events
				WHERE global_position > $from AND global_position <= $to) s" >/dev/null
			sql -c "SELECT es_seal()" >/dev/null
			sql -c "DROP TABLE IF EXISTS bench.arch_src, bench.arch_dst" \
				-c "CREATE TABLE bench.arch_src AS SELECT * FROM es_events WHERE global_position > $from AND global_position <= $to AND event_type <> '\$StreamDeleted'" \
				-c "ALTER TABLE bench.arch_src ADD PRIMARY KEY (global_position)" \
				-c "CREATE TABLE bench.arch_dst (LIKE bench.arch_src INCLUDING ALL)" >/dev/null
			for v in $(rotate "$r" es move); do
				if [ "$v" = es ]; then
					bench_sql archive es "$r" "SELECT es_archive()"
				else
					bench_sql archive move "$r" "WITH moved AS (DELETE FROM bench.arch_src RETURNING *), ins AS (INSERT INTO bench.arch_dst SELECT * FROM moved RETURNING 1) SELECT count(*) FROM ins"
				fi
			done
		fi
	done
	if has_function 'es_archive(bigint,name,boolean)'; then
		t0=$(date +%s.%N)
		sql -c "VACUUM FULL es_events" >/dev/null
		t1=$(date +%s.%N)
		meta archive_vacuum_seconds "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')"
		meta archive_size_after "$(sql -c "SELECT pg_total_relation_size('es_events')")"
		meta archive_events "$(sql -c "SELECT count(*) FROM es_archived_events")"
		meta archive_table_size "$(sql -c "SELECT pg_total_relation_size('es_archived_events')")"
		sql -c "DROP TABLE IF EXISTS bench.arch_src, bench.arch_dst" >/dev/null
	fi
	# archiving live streams (es_archive(..., live_streams => true)): in a
	# database of its own each round, since reads below the archived range
	# are refused afterwards; $seal_backlog events in streams of 10, sealed
	# (untimed), then es_archive of all but each stream's last event
	# against moving the same rows between two plain tables; the space
	# reclaimed by VACUUM FULL after the last round
	if has_function 'es_archive(bigint,name,boolean)'; then
		for r in $(seq 1 "$rounds"); do
			adb=bench_archive_live_$r
			sql -c "DROP DATABASE IF EXISTS $adb" -c "CREATE DATABASE $adb" >/dev/null
			sql -d "$adb" -c "CREATE EXTENSION es_pg" -c "CREATE SCHEMA bench" -c "$seal_backlog_fn" \
				-c "SELECT bench.seal_backlog($seal_backlog)" -c "SELECT es_seal()" >/dev/null
			sql -d "$adb" -c "CREATE TABLE bench.arch_src AS SELECT e.* FROM es_events e
					WHERE e.version < (SELECT max(h.version) FROM es_events h WHERE h.stream_id = e.stream_id)" \
				-c "ALTER TABLE bench.arch_src ADD PRIMARY KEY (global_position)" \
				-c "CREATE TABLE bench.arch_dst (LIKE bench.arch_src INCLUDING ALL)" -c "CHECKPOINT" >/dev/null
			[ "$r" = "$rounds" ] && meta archive_live_size_before "$(sql -d "$adb" -c "SELECT pg_total_relation_size('es_events')")"
			for v in $(rotate "$r" es move); do
				if [ "$v" = es ]; then
					bench_sql archive_live es "$r" "SELECT es_archive(NULL, NULL, true)" "" -d "$adb"
				else
					bench_sql archive_live move "$r" "WITH moved AS (DELETE FROM bench.arch_src RETURNING *), ins AS (INSERT INTO bench.arch_dst SELECT * FROM moved RETURNING 1) SELECT count(*) FROM ins" "" -d "$adb"
				fi
			done
			if [ "$r" = "$rounds" ]; then
				t0=$(date +%s.%N)
				sql -d "$adb" -c "VACUUM FULL es_events" >/dev/null
				t1=$(date +%s.%N)
				meta archive_live_vacuum_seconds "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')"
				meta archive_live_size_after "$(sql -d "$adb" -c "SELECT pg_total_relation_size('es_events')")"
				meta archive_live_events "$(sql -d "$adb" -c "SELECT count(*) FROM es_archived_events")"
				meta archive_live_kept "$(sql -d "$adb" -c "SELECT count(*) FROM es_events")"
				meta archive_live_verify "$(sql -d "$adb" -c "SELECT intact || ' (' || events || ' events, ' || archived || ' in the archive)' FROM es_verify()")"
			fi
			sql -c "DROP DATABASE $adb" >/dev/null
		done
	fi
	meta seal_backlog "$seal_backlog"
	meta seal_storage "$(sql -c "SELECT pg_size_pretty(pg_total_relation_size('es_seals')) || ' of seals for ' || (SELECT count(*) FROM es_events) || ' events (' || round(pg_total_relation_size('es_seals')::numeric / greatest((SELECT count(*) FROM es_events), 1), 1) || ' bytes per event)'")"
else
	for w in seal verify archive archive_live; do
		skip "$w" "es_seal and es_verify are not installed (issue 14)"
	done
fi

# ---- append-to-apply latency of an async projection (issue 12): pgbench
# appends single events at a fixed rate (2 clients, $lat_rate a second in
# all, synchronous_commit off so that the rate holds on a small machine;
# the worker commits with the server's default) while the projection worker applies them; each event's latency is
# from its insert (recorded_at) to its handler call (bench/sql/
# apply_latency.sql).  Measured with es_pg preloaded (the worker's latch
# is set from shared memory at commit) and, after a restart without
# shared_preload_libraries, not preloaded (the committing backend finds
# the worker among the server's processes).  Targets: p99 under 50 ms
# preloaded, under 200 ms not.  The reference is the appends' own latency
# in the same run (pgbench's average), for scale.
phase apply_latency
lat_rate=1000
lat_secs=$((secs * 3 > 3 ? secs * 3 : 3))
restart_cluster() {
	es_as_pg "$bindir/pg_ctl" -D "$ES_TMP/data" -l "$ES_TMP/server.log" -w -t 60 restart >/dev/null ||
		{ tail -n 20 "$ES_TMP/server.log"; es_die "the cluster did not restart"; }
	pm_pid=$(head -n 1 "$ES_TMP/data/postmaster.pid")
}
if has_function 'es_projection_worker()'; then
	sql -c "ALTER SYSTEM RESET es_pg.projection_workers" -c "SELECT pg_reload_conf()" >/dev/null
	sql -f "$BENCH/sql/apply_latency.sql" >/dev/null
	for v in preloaded unpreloaded; do
		if [ "$v" = unpreloaded ]; then
			# (ALTER SYSTEM would store '""', a library named "")
			echo "shared_preload_libraries = ''	# apply_latency" |
				es_as_pg tee -a "$ES_TMP/data/postgresql.conf" >/dev/null
			restart_cluster
		fi
		es_log "append-to-apply latency, $v"
		for r in $(seq 1 "$rounds"); do
			runid=$((runid + 1))
			log=$OUT/raw/apply_latency.$v.r$r
			status=ok
			PGOPTIONS="-c synchronous_commit=off" "$PGBENCH" -n -M prepared -c 2 -j 2 \
				-R "$lat_rate" -T "$lat_secs" -f "$S/apply_latency.sql" \
				-D nclients=2 -D run="$runid" >"$log.out" 2>&1 || status=failed
			sql -c "SELECT es_wait_for_projection('bench_latency', es_head_position(), '60 s')" \
				>"$log.wait" 2>&1 || status=failed
			[ "$(cat "$log.wait")" = t ] || status=failed
			IFS='|' read -r n p50 p99 pmax < <(sql -c "SELECT * FROM bench.lat_stats('lat-$runid-')")
			alat=$(sed -n 's/^latency average = \([0-9.]*\) ms/\1/p' "$log.out")
			tps=$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' "$log.out")
			[ -n "$tps" ] && [ "${n:-0}" -gt 0 ] || status=failed
			[ "$status" = ok ] || echo "  apply_latency/$v failed, see $log.*"
			meta "apply_latency_$v.r$r" "$n ${p50:-0} ${p99:-0} ${pmax:-0} ${alat:-0} ${tps:-0}"
			record apply_latency "$v" off 2 "$r" "${tps:-0}" "${tps:-0}" "${p99:-0}" "$status"
		done
	done
	es_as_pg sed -i '/# apply_latency$/d' "$ES_TMP/data/postgresql.conf"
	restart_cluster
	meta apply_latency_rate "$lat_rate"
else
	skip apply_latency "es_projection_worker is not installed (issue 12)"
fi

# ---- the append-to-delivery latency without shared_preload_libraries: the
# cluster restarts without es_pg preloaded, so this comes last
if [ "$subscriptions" = 1 ]; then
	phase latency_not_preloaded
	es_log "subscriptions: append-to-delivery latency, es_pg not preloaded"
	es_as_pg "$bindir/pg_ctl" -D "$ES_TMP/data" -l "$ES_TMP/server.log" -w -t 60 \
		-o "-c shared_preload_libraries=" restart -m fast >/dev/null
	measure_latency not_preloaded
fi

phase end
meta phases "$phases"
meta loadavg_end "$(cut -d' ' -f1-3 /proc/loadavg)"
meta duration "$(($(date +%s) - started)) s"
es_log "report"
python3 "$BENCH/report.py" "${report_args[@]}" "$OUT" "$doc"
echo "raw output in $OUT; report written to $doc"
