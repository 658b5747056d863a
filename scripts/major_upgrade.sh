#!/usr/bin/env bash
# scripts/major_upgrade.sh: an event store on PostgreSQL 15 taken to a newer
# major, by pg_upgrade and by dump and restore, keeps every event.
#
#   scripts/major_upgrade.sh          to 17 and to 18
#   scripts/major_upgrade.sh 17       to 17 only
#
# Each target major runs in its Debian chroot (17: trixie, 18: sid; see
# scripts/lib.sh), where bookworm's postgresql-15 is installed beside it and
# es_pg and es_pg_bank are built for both.  A PostgreSQL 15 cluster gets the
# bank example (events, snapshots stored by its snapshot policy, three
# inline projections), events of plain es_pg calls and an aborted append,
# an async projection whose checkpoint is half-way, a role with es_pg's
# reader grants, and a follower that has paged part of the feed.  Then:
#
#   pg_upgrade   15 -> N (copy mode), after pg_upgrade --check
#   dump         pg_dumpall --globals-only and pg_dump -Fc of the database,
#                with N's programs, restored into a fresh N cluster
#
# and after each, on N: the same events row by row in global_position
# order, the same position sequence, snapshots, snapshot policies,
# projections, checkpoints, read models, aggregate states, privileges; then
# an append gets the next version and the next position, a bank command
# updates its inline read model, the async projection catches up from its
# checkpoint without applying an event twice, and the follower carries on
# from where it stopped on 15 to the new head without repeating or skipping
# an event.  Every check prints PASS or FAIL with its step; the exit status
# is 1 when one failed.  The report of each target is also written to
# log/major-upgrade-pgN.txt.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

OLD_MAJOR=15

# ---- on the host: one chroot run per target major
if [ -z "${ES_IN_CHROOT:-}" ]; then
	targets=("$@")
	[ ${#targets[@]} -gt 0 ] || targets=(17 18)
	if [ "$(id -u)" != 0 ]; then
		# chroots need root; once for all targets
		exec sudo "$BASH" "$0" "${targets[@]}"
	fi
	results=()
	rc=0
	for t in "${targets[@]}"; do
		suite=$(es_suite_for_major "$t") || es_die "no Debian suite for PostgreSQL $t (17 and 18 are known)"
		[ "$t" -gt "$OLD_MAJOR" ] || es_die "the target major must be newer than $OLD_MAJOR, not $t"
		rm -f "$ES_ROOT/log/major-upgrade-pg$t.txt"
		t0=$SECONDS
		PG_MAJOR=$t
		if es_chroot_run "$suite" "$0" "$t"; then
			results+=("PostgreSQL $OLD_MAJOR -> $t: passed ($((SECONDS - t0)) s)")
		else
			results+=("PostgreSQL $OLD_MAJOR -> $t: FAILED ($((SECONDS - t0)) s, log/major-upgrade-pg$t.txt)")
			rc=1
		fi
	done
	es_log "major upgrades"
	printf '  %s\n' "${results[@]}"
	for t in "${targets[@]}"; do
		f=$ES_ROOT/log/major-upgrade-pg$t.txt
		[ -f "$f" ] || continue
		echo "  $OLD_MAJOR -> $t: $(grep -c '^PASS' "$f") checks passed, $(grep -c '^FAIL' "$f") failed"
		grep '^FAIL' "$f" | sed 's/^/    /' || true
	done
	exit "$rc"
fi

# ---- in the chroot of the target major
es_chroot_if_needed "$@"
NEW_MAJOR=$PG_MAJOR
OLD_BIN=/usr/lib/postgresql/$OLD_MAJOR/bin
NEW_BIN=/usr/lib/postgresql/$NEW_MAJOR/bin
REPORT=$ES_ROOT/log/major-upgrade-pg$NEW_MAJOR.txt
mkdir -p "$(dirname "$REPORT")"
: >"$REPORT"
# timestamps and dates in row text, the same in every session
export PGTZ=UTC PGDATESTYLE=ISO

# bookworm's PostgreSQL 15 beside the suite's own major: bookworm's archive
# at a low priority, so that it only gives what the suite lacks
if [ ! -f /etc/apt/sources.list.d/es-pg-bookworm.list ]; then
	echo "deb $ES_MIRROR bookworm main" >/etc/apt/sources.list.d/es-pg-bookworm.list
	printf 'Package: *\nPin: release n=bookworm\nPin-Priority: 100\n' \
		>/etc/apt/preferences.d/es-pg-bookworm
fi
es_need_server
es_need_packages "postgresql-$OLD_MAJOR" "postgresql-server-dev-$OLD_MAJOR"

es_tmpdir
# one copy of the tree per major: objects are built for one
es_copy_tree "$ES_TMP/build-$OLD_MAJOR"
PG_MAJOR=$OLD_MAJOR PG_CONFIG=$OLD_BIN/pg_config es_build_install "$ES_TMP/build-$OLD_MAJOR"
es_build_install

failures=0
# report PASS|FAIL|NOTE STEP TEXT [DETAIL...]: one line of the report
report() {
	local verdict=$1 step=$2 text=$3 line
	shift 3
	[ "$verdict" != FAIL ] || failures=$((failures + 1))
	printf '%-4s  %-22s %s\n' "$verdict" "$step" "$text" | tee -a "$REPORT"
	for line in "$@"; do
		printf '%s\n' "$line" | sed 's/^/        | /' | tee -a "$REPORT"
	done
}

# ---- clusters, each a directory, a port and a major
declare -A PORT BIN
CLUSTERS=()
cluster_init() {
	local name=$1 major=$2 port=$3 opts=()
	PORT[$name]=$port
	BIN[$name]=/usr/lib/postgresql/$major/bin
	CLUSTERS+=("$name")
	# pg_upgrade needs the checksum setting of the old cluster; 18's initdb
	# turns checksums on by default
	[ "$major" -lt 18 ] || opts+=(--no-data-checksums)
	es_as_pg "${BIN[$name]}/initdb" -D "$ES_TMP/$name" -U postgres -A trust \
		--no-sync -E UTF8 --no-locale "${opts[@]}" >/dev/null
	cat <<-EOF | es_as_pg tee -a "$ES_TMP/$name/postgresql.conf" >/dev/null
		port = $port
		listen_addresses = ''
		unix_socket_directories = '$ES_TMP'
		shared_preload_libraries = 'es_pg'
		logging_collector = off
		fsync = off
		# async projections move only when this script applies them
		es_pg.projection_workers = off
	EOF
}
cluster_start() {
	es_as_pg "${BIN[$1]}/pg_ctl" -D "$ES_TMP/$1" -l "$ES_TMP/$1.log" -w -t 60 start >/dev/null
}
cluster_stop() {
	es_as_pg "${BIN[$1]}/pg_ctl" -D "$ES_TMP/$1" -m fast -w stop >/dev/null
}
clusters_stop_all() {
	local c
	for c in "${CLUSTERS[@]}"; do
		[ -f "$ES_TMP/$c/postmaster.pid" ] &&
			es_as_pg "${BIN[$c]}/pg_ctl" -D "$ES_TMP/$c" -m immediate stop >/dev/null 2>&1
	done
	return 0
}
es_on_exit clusters_stop_all
# q CLUSTER [PSQL ARG...]: psql in the database "bank" of CLUSTER
q() {
	local c=$1
	shift
	"${BIN[$c]}/psql" -X -q -At -v ON_ERROR_STOP=1 -h "$ES_TMP" -p "${PORT[$c]}" \
		-U postgres -d bank "$@"
}

# ---- the event store on 15
es_log "PostgreSQL $OLD_MAJOR: the event store to upgrade"
cluster_init old "$OLD_MAJOR" 54331
cluster_start old
"${BIN[old]}/psql" -X -q -h "$ES_TMP" -p 54331 -U postgres -d postgres \
	-c "CREATE ROLE bank_reader" -c "CREATE DATABASE bank"
q old >/dev/null <<'EOF'
CREATE EXTENSION es_pg_bank CASCADE;
SELECT es_grant_reader('bank_reader');
-- accounts and commands: each command loads its account through
-- es_aggregate, and the bank's snapshot policy (100) stores a snapshot when a
-- load replays more than 100 events
SELECT count(bank_create_account('ACC-' || g, 'Owner ' || g, 100 * g)) FROM generate_series(1, 20) g;
SELECT count(bank_deposit('ACC-' || (g % 4 + 1), g % 50 + 1)) FROM generate_series(1, 600) g;
SELECT count(bank_withdraw('ACC-' || (g % 4 + 1), 5)) FROM generate_series(1, 40) g;
-- plain es_pg: metadata, an event id, a batch, unicode, an aborted append
-- (a hole in the positions)
SELECT es_append('order-1', 'Created', '{"total": 10}', 0, '{"user": "u1"}',
                 '0b8e3f4e-61a1-4b1f-8a53-000000000001');
SELECT es_append_batch('order-1', '[{"type": "ItemAdded", "data": {"sku": "a"}},
                                    {"type": "ItemAdded", "data": {"sku": "b"}}]', 1);
SELECT es_append(U&'commande-\00E9', U&'Cr\00E9\00E9e', '{"note": "caf\u00e9"}');
BEGIN;
SELECT es_append('order-aborted', 'Created', '{}');
ROLLBACK;
-- an async projection, applied half-way: its checkpoint is behind the head
CREATE TABLE deposits_seen (global_position bigint PRIMARY KEY, stream_id text NOT NULL,
                            amount numeric NOT NULL);
CREATE FUNCTION deposits_seen_apply(e es_events) RETURNS void LANGUAGE sql AS $$
	INSERT INTO deposits_seen VALUES (e.global_position, e.stream_id, (e.data->>'amount')::numeric) $$;
CREATE FUNCTION deposits_seen_reset() RETURNS void LANGUAGE sql AS 'DELETE FROM deposits_seen';
SELECT es_create_projection('deposits_seen', 'deposits_seen_apply(es_events)',
                            ARRAY['MoneyDeposited'], 'async', 'deposits_seen_reset()');
SELECT es_apply_projections('deposits_seen', 300);
SELECT count(bank_deposit('ACC-' || (g % 4 + 1), 3)) FROM generate_series(1, 50) g;
EOF

# follow CLUSTER FROM [PAGES]: a follower paging es_read_all by 100 from
# position FROM, for PAGES pages (default: until a page is empty); prints
# "COUNT LAST POSITIONS" with the positions it saw, in the order it saw them
follow() {
	q "$1" <<-EOF
		CREATE TEMP TABLE seen (n bigserial, pos bigint);
		DO \$\$
		DECLARE
			last bigint := $2;
			got bigint;
			pages int := 0;
		BEGIN
			LOOP
				INSERT INTO seen (pos) SELECT global_position FROM es_read_all(last, 100);
				GET DIAGNOSTICS got = ROW_COUNT;
				pages := pages + 1;
				EXIT WHEN got = 0 OR pages = ${3:-0};
				SELECT pos INTO last FROM seen ORDER BY n DESC LIMIT 1;
			END LOOP;
		END
		\$\$;
		SELECT count(*) || ' ' || coalesce(max(pos), $2) || ' ' || coalesce(string_agg(pos::text, ',' ORDER BY n), '')
		  FROM seen;
	EOF
}
# all_positions CLUSTER: every position of es_events, in order
all_positions() {
	q "$1" -c "SELECT coalesce(string_agg(global_position::text, ',' ORDER BY global_position), '') FROM es_events"
}

# the follower's first part, on 15: five pages
read -r f_count f_last f_seen < <(follow old 0 5)
[[ "${f_count:-}" =~ ^[0-9]+$ ]] || es_die "the follower on $OLD_MAJOR failed"
report NOTE "15" "a follower read $f_count events of the feed on $OLD_MAJOR, up to position $f_last"

# state CLUSTER DIR: what must survive, one file per part.  The aggregate
# states come first: a load may store a snapshot (the policy), and the
# snapshots listed after it must include that.
PARTS=(aggregates events sequence streams snapshots snapshot_policies projections
	checkpoints projection_status read_models privileges extensions)
state() {
	local c=$1 dir=$2
	mkdir -p "$dir"
	q "$c" -c "SELECT a || ' ' || bank_account_state(a)::text
	             FROM (SELECT 'ACC-' || g FROM generate_series(1, 20) g) v(a) ORDER BY a" >"$dir/aggregates"
	q "$c" -c "SELECT e::text FROM es_events e ORDER BY global_position" >"$dir/events"
	q "$c" -c "SELECT 'sequence ' || last_value || ' ' || is_called FROM es_events_position_seq" \
		-c "SELECT 'head ' || es_head_position()" >"$dir/sequence"
	q "$c" -c "SELECT s::text FROM es_streams s ORDER BY stream_id" >"$dir/streams"
	q "$c" -c "SELECT s::text FROM es_snapshots s ORDER BY stream_id, reducer, version" >"$dir/snapshots"
	# rows an extension's install script made are made again by the
	# restore's CREATE EXTENSION, with the time of the restore: all but
	# that time must be the same
	q "$c" -c "SELECT concat_ws(' ', reducer, every_n_events, search_path, extension,
	                    CASE WHEN extension IS NULL THEN updated_at::text END)
	             FROM es_snapshot_policies ORDER BY reducer" >"$dir/snapshot_policies"
	q "$c" -c "SELECT concat_ws(' ', name, mode, handler, reset, event_types, owner, search_path,
	                    handler_timeout_ms, extension, CASE WHEN extension IS NULL THEN created_at::text END)
	             FROM es_projections ORDER BY name" >"$dir/projections"
	q "$c" -c "SELECT m::text FROM es_subscription_members m ORDER BY subscription, member" \
		-c "SELECT k::text FROM es_subscription_parked k ORDER BY subscription, member, position" >"$dir/checkpoints"
	q "$c" -c "SELECT concat_ws(' ', name, mode, state, position, head_position, lag_events, last_error)
	             FROM es_projection_status ORDER BY name" >"$dir/projection_status"
	q "$c" -c "SELECT 'bank_accounts ' || x::text FROM bank_accounts x ORDER BY account_id" \
		-c "SELECT 'bank_transactions ' || x::text FROM bank_transactions x ORDER BY global_position" \
		-c "SELECT 'bank_daily_summary ' || x::text FROM bank_daily_summary x ORDER BY day" \
		-c "SELECT 'deposits_seen ' || x::text FROM deposits_seen x ORDER BY global_position" >"$dir/read_models"
	# what is granted to others than the owner: the owner's own privileges
	# differ between majors (17 added MAINTAIN)
	q "$c" -c "SELECT c.relname || ' ' || coalesce(string_agg(
	                    CASE a.grantee WHEN 0 THEN 'PUBLIC' ELSE a.grantee::regrole::text END
	                    || '=' || a.privilege_type, ',' ORDER BY a.grantee::regrole::text, a.privilege_type), '')
	             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
	             LEFT JOIN LATERAL aclexplode(c.relacl) a ON a.grantee <> c.relowner
	            WHERE n.nspname = 'public' AND c.relkind IN ('r', 'v', 'S')
	            GROUP BY c.relname ORDER BY 1" \
		-c "SELECT p.oid::regprocedure::text || ' ' || coalesce(string_agg(
	                    CASE a.grantee WHEN 0 THEN 'PUBLIC' ELSE a.grantee::regrole::text END
	                    || '=' || a.privilege_type, ',' ORDER BY a.grantee::regrole::text), '')
	             FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
	             LEFT JOIN LATERAL aclexplode(p.proacl) a ON a.grantee <> p.proowner
	            WHERE n.nspname = 'public' GROUP BY p.oid ORDER BY 1" >"$dir/privileges"
	q "$c" -c "SELECT extname || ' ' || extversion FROM pg_extension ORDER BY 1" >"$dir/extensions"
}
state old "$ES_TMP/state/old"
report NOTE "15" "$(wc -l <"$ES_TMP/state/old/events") events, $(wc -l <"$ES_TMP/state/old/snapshots") snapshots, $(wc -l <"$ES_TMP/state/old/projections") projections; $(tr '\n' ' ' <"$ES_TMP/state/old/projection_status")"

# the numbers the checks after the upgrade start from
old_seq=$(sed -n 's/^sequence \([0-9]*\) .*/\1/p' "$ES_TMP/state/old/sequence")
old_order_version=$(q old -c "SELECT es_stream_version('order-1')")
old_balance=$(q old -c "SELECT balance FROM bank_accounts WHERE account_id = 'ACC-1'")

# ---- the dump, taken from 15 with the newer major's programs
es_log "dump of the $OLD_MAJOR cluster with PostgreSQL $NEW_MAJOR's pg_dump"
dump_ok=1
if ! "$NEW_BIN/pg_dumpall" -h "$ES_TMP" -p 54331 -U postgres --globals-only \
	-f "$ES_TMP/globals.sql" 2>"$ES_TMP/dump.err" ||
	! "$NEW_BIN/pg_dump" -h "$ES_TMP" -p 54331 -U postgres -Fc -d bank \
		-f "$ES_TMP/bank.dump" 2>>"$ES_TMP/dump.err"; then
	dump_ok=0
	report FAIL "dump" "pg_dump $NEW_MAJOR of the $OLD_MAJOR cluster failed" "$(head -n 20 "$ES_TMP/dump.err")"
fi
cluster_stop old

# check CLUSTER STEP: what must have survived, then what must carry on
check() {
	local c=$1 step=$2 part d out
	state "$c" "$ES_TMP/state/$c"
	for part in "${PARTS[@]}"; do
		if d=$(diff -u "$ES_TMP/state/old/$part" "$ES_TMP/state/$c/$part"); then
			report PASS "$step" "same $part ($(wc -l <"$ES_TMP/state/$c/$part") rows)"
		else
			report FAIL "$step" "$part differ from $OLD_MAJOR's (- $OLD_MAJOR, + $NEW_MAJOR)" \
				"$(printf '%s\n' "$d" | sed -n '3,22p')"
		fi
	done

	# the follower carries on from where it stopped on 15
	local seen rest n last all
	read -r n last rest < <(follow "$c" "$f_last")
	all=$(all_positions "$c")
	seen=$f_seen${rest:+,$rest}
	if [ "$seen" = "$all" ]; then
		report PASS "$step" "the follower's next pages: $n events after $f_last, none repeated or skipped"
	else
		report FAIL "$step" "the follower repeated or skipped events after $f_last" \
			"seen:   $(echo "$seen" | cut -c 1-200)" "events: $(echo "$all" | cut -c 1-200)"
	fi

	# appends continue: next version, next position
	if out=$(q "$c" -c "SELECT es_append('order-1', 'Shipped', '{}', $old_order_version)" \
		-c "SELECT global_position FROM es_events WHERE stream_id = 'order-1'
		     AND version = $((old_order_version + 1))" 2>&1); then
		if [ "$out" = "$((old_order_version + 1))"$'\n'"$((old_seq + 1))" ]; then
			report PASS "$step" "es_append: version $((old_order_version + 1)) of order-1 at position $((old_seq + 1)), the next ones"
		else
			report FAIL "$step" "es_append gave version and position $(echo $out), not $((old_order_version + 1)) $((old_seq + 1))"
		fi
	else
		report FAIL "$step" "es_append failed" "$out"
	fi
	# a bank command: its inline projection and the replayed state agree
	if out=$(q "$c" -c "SELECT bank_deposit('ACC-1', 7)" \
		-c "SELECT balance || ' ' || (bank_account_state('ACC-1')->>'balance') || ' ' ||
		           (balance = $old_balance + 7
		            AND (bank_account_state('ACC-1')->>'balance')::numeric = balance)
		      FROM bank_accounts WHERE account_id = 'ACC-1'" 2>&1) &&
		[ "${out##* }" = true ]; then
		out=$(echo "$out" | tail -n 1)
		report PASS "$step" "bank_deposit: the read model and the replayed state at ${out% *}, $old_balance + 7"
	else
		report FAIL "$step" "bank_deposit: the read model or the replayed state is not $old_balance + 7" "$out"
	fi
	# the async projection catches up from its checkpoint, each event once
	# (workers are off here, so its status says "no worker", at lag 0)
	if out=$(q "$c" -c "SELECT es_apply_projections('deposits_seen')" \
		-c "SELECT concat_ws(' ', state, lag_events, last_error) FROM es_projection_status WHERE name = 'deposits_seen'" \
		-c "SELECT (SELECT string_agg(global_position::text, ',' ORDER BY global_position) FROM deposits_seen) =
		           (SELECT string_agg(global_position::text, ',' ORDER BY global_position) FROM es_events
		             WHERE event_type = 'MoneyDeposited')" 2>&1) &&
		[ "$(echo "$out" | sed -n 2,3p | tr '\n' ' ')" = "no worker 0 t " ]; then
		report PASS "$step" "async projection: $(echo "$out" | head -n 1) events applied from the checkpoint, at the head, every deposit once"
	else
		report FAIL "$step" "async projection did not catch up exactly once" "$out"
	fi
	# and the follower on to the new head
	read -r n last rest < <(follow "$c" "$f_last")
	all=$(all_positions "$c")
	seen=$f_seen${rest:+,$rest}
	if [ "$seen" = "$all" ]; then
		report PASS "$step" "the follower after the new appends: up to $last, none repeated or skipped"
	else
		report FAIL "$step" "the follower repeated or skipped events after the new appends"
	fi
}

# ---- pg_upgrade 15 -> N
es_log "pg_upgrade $OLD_MAJOR -> $NEW_MAJOR"
cluster_init upgraded "$NEW_MAJOR" 54332
upgrade=(env -C "$ES_TMP" "$NEW_BIN/pg_upgrade" -b "$OLD_BIN" -B "$NEW_BIN"
	-d "$ES_TMP/old" -D "$ES_TMP/upgraded" -U postgres -s "$ES_TMP" -p 54334 -P 54335 -j 2)
# show LOG: pg_upgrade's lines that tell why, and the files it points to
why() {
	local f
	grep -v -e '^ *ok$' -e '^Performing' -e '^---' -e '^$' "$1" | grep -v ' ok$' | head -n 20
	for f in $(grep -o '/[^ "]*\.txt' "$1" | sort -u); do
		[ -f "$f" ] && { echo "$f:"; head -n 10 "$f"; }
	done
	for f in $(grep -o '/[^ "]*\.log' "$1" | sort -u); do
		[ -f "$f" ] && { echo "$f:"; tail -n 12 "$f"; }
	done
	return 0
}
if ! es_as_pg "${upgrade[@]}" --check >"$ES_TMP/upgrade-check.log" 2>&1; then
	report FAIL "pg_upgrade --check" "pg_upgrade $OLD_MAJOR -> $NEW_MAJOR --check refused the cluster" \
		"$(why "$ES_TMP/upgrade-check.log")"
	report NOTE "pg_upgrade" "not run: its checks failed; none of its checks below"
elif ! es_as_pg "${upgrade[@]}" >"$ES_TMP/upgrade.log" 2>&1; then
	report PASS "pg_upgrade --check" "pg_upgrade $OLD_MAJOR -> $NEW_MAJOR --check passed"
	report FAIL "pg_upgrade" "pg_upgrade $OLD_MAJOR -> $NEW_MAJOR failed" "$(why "$ES_TMP/upgrade.log")"
else
	report PASS "pg_upgrade --check" "pg_upgrade $OLD_MAJOR -> $NEW_MAJOR --check passed"
	report PASS "pg_upgrade" "pg_upgrade $OLD_MAJOR -> $NEW_MAJOR (copy mode) done"
	cluster_start upgraded
	if out=$(q upgraded -c "ALTER EXTENSION es_pg UPDATE" -c "ALTER EXTENSION es_pg_bank UPDATE" 2>&1); then
		report PASS "pg_upgrade" "ALTER EXTENSION ... UPDATE on $NEW_MAJOR"
	else
		report FAIL "pg_upgrade" "ALTER EXTENSION ... UPDATE on $NEW_MAJOR failed" "$out"
	fi
	check upgraded "after pg_upgrade"
	cluster_stop upgraded
fi

# ---- dump and restore into a fresh N cluster
es_log "restore into a fresh PostgreSQL $NEW_MAJOR cluster"
if [ "$dump_ok" = 1 ]; then
	cluster_init restored "$NEW_MAJOR" 54333
	cluster_start restored
	# the roles first; the dump creates the role postgres, which exists:
	# that error is the one expected
	"$NEW_BIN/psql" -X -q -h "$ES_TMP" -p 54333 -U postgres -d postgres \
		-f "$ES_TMP/globals.sql" >"$ES_TMP/globals.log" 2>&1 || true
	if grep ERROR "$ES_TMP/globals.log" | grep -vq 'role "postgres" already exists'; then
		report FAIL "restore" "the roles of pg_dumpall --globals-only did not restore" \
			"$(grep ERROR "$ES_TMP/globals.log")"
	fi
	if "$NEW_BIN/pg_restore" -h "$ES_TMP" -p 54333 -U postgres -C -d postgres \
		"$ES_TMP/bank.dump" >"$ES_TMP/restore.log" 2>&1; then
		report PASS "restore" "pg_restore of the $NEW_MAJOR dump into a fresh $NEW_MAJOR cluster: no error"
	else
		report FAIL "restore" "pg_restore reported errors (the checks below run on what it restored)" \
			"$(grep -E 'ERROR|error|DETAIL|Command was' "$ES_TMP/restore.log" | cut -c 1-220 | head -n 20)"
	fi
	check restored "after dump/restore"
	cluster_stop restored
else
	report NOTE "restore" "not run: no dump"
fi

es_log "PostgreSQL $OLD_MAJOR -> $NEW_MAJOR: $failures failed check(s) (log/major-upgrade-pg$NEW_MAJOR.txt)"
[ "$failures" = 0 ]
