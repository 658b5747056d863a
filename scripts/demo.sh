#!/usr/bin/env bash
# scripts/demo.sh: the bank account story of the design notes, told by es_pg
# on a throwaway PostgreSQL.
#
# Installs what is missing, builds and installs es_pg and the bank example
# (es_pg_bank), starts a private cluster, runs the story in psql, then stops
# the cluster and removes it.  ES_KEEP=1 keeps it; PG_MAJOR=17 tells it on
# PostgreSQL 17 (see scripts/lib.sh).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

es_chroot_if_needed "$@"
es_need_server
es_build_install
es_cluster_start
PSQL=("$($PG_CONFIG --bindir)/psql" -X -q -d postgres -v ON_ERROR_STOP=1
	-P footer=off -P null='')

if [ -t 1 ]; then B=$'\e[1m' D=$'\e[2m' R=$'\e[0m'; else B='' D='' R=''; fi

# scene TITLE [LINE...]: a header and a few words of explanation
scene() {
	printf '\n%s━━ %s%s\n' "$B" "$1" "$R"
	shift
	local line
	for line in "$@"; do printf '   %s\n' "$line"; done
}

# stmt SQL: print a statement, dimmed and indented
stmt() { printf '%s\n' "$1" | sed "s/^/   $D/; s/\$/$R/"; }

# show SQL: print the statement, then its result table, indented
show() {
	printf '\n'
	stmt "$1"
	"${PSQL[@]}" -c "$1" 2>&1 | sed -e '/^ *$/d' -e 's/^/   /'
}

# run SQL: print the statement and run it, without its output
run() {
	printf '\n'
	stmt "$1"
	"${PSQL[@]}" -c "$1" >/dev/null
}

# cmd SQL: run a command, print it with the value it returns
cmd() {
	local out
	out=$("${PSQL[@]}" -At -c "$1")
	printf '   %s%-54s%s -> %s\n' "$D" "$1" "$R" "$out"
}

# refuse SQL: run a command that must fail, print the SQLSTATE and why
refuse() {
	local out
	printf '\n'
	stmt "$1"
	if out=$("${PSQL[@]}" -v VERBOSITY=verbose -v SHOW_CONTEXT=never -c "$1" 2>&1); then
		echo "   unexpectedly accepted: $out" >&2
		exit 1
	fi
	printf '%s\n' "$out" | grep -v '^LOCATION:' | sed 's/^/   /'
}

sql() { "${PSQL[@]}" -c "$1" >/dev/null; }

# replay LABEL SQL: run SQL with es_pg.log_replay = on and print the last
# es_aggregate report it gave
replay() {
	local report
	report=$("${PSQL[@]}" -At -c "SET es_pg.log_replay = on" -c "$2" 2>&1 >/dev/null |
		sed -n 's/.*es_aggregate: stream "[^"]*", reducer [^,]*, //p' | tail -n 1)
	printf '\n'
	stmt "$2   -- $1"
	printf '   %s\n' "$report"
}

printf '\n%ses_pg: the bank account of the design notes%s\n' "$B" "$R"

scene "1. Install" \
	"es_pg is the event store; es_pg_bank is the example domain built on it:" \
	"commands, the account's rules, a reducer, three projections."
show "CREATE EXTENSION es_pg_bank CASCADE;"

scene "2. Commands" \
	"Each command loads the account from its events, checks the rules and" \
	"appends one event with the version it loaded. It returns the new version."
printf '\n'
cmd "SELECT bank_create_account('ACC-001', 'Alice', 1000);"
cmd "SELECT bank_deposit('ACC-001', 500);"
cmd "SELECT bank_withdraw('ACC-001', 200);"

scene "3. The events of ACC-001" \
	"The source of truth: an append-only stream, one row per event."
show "SELECT version, event_type, data, metadata->>'command' AS command
  FROM es_read_stream('account-ACC-001');"

scene "4. The balance, two ways" \
	"The read model (projection bank_accounts, updated in the same transaction" \
	"as each event) and a replay of the events through the reducer agree."
show "SELECT account_id, owner, balance, status FROM bank_get_account('ACC-001');"
show "SELECT bank_account_state('ACC-001')->>'balance' AS balance_replayed;"

scene "5. History and daily summary" \
	"Two more read models from the same events."
show "SELECT version, type, amount, recorded_at::timestamp(0) AS recorded_at
  FROM bank_get_history('ACC-001');"
show "SELECT * FROM bank_get_daily_summary();"

scene "6. Back in time" \
	"The state of an account at any version or time, replayed from its events."
show "SELECT v AS as_of_version, bank_account_state('ACC-001', v)->>'balance' AS balance
  FROM generate_series(1, 3) v;"

scene "7. A refused withdrawal" \
	"Rules are checked against the state the events give; a refusal has its" \
	"own SQLSTATE (class EB) and writes nothing."
refuse "SELECT bank_withdraw('ACC-001', 5000);"
show "SELECT es_stream_version('account-ACC-001') AS version_still;"

scene "8. Snapshots" \
	"ACC-002 gets 250 deposits, each a command that loads the account. The" \
	"bank's snapshot policy stores the state whenever a load replays more than" \
	"100 events, so no load replays the whole history."
"${PSQL[@]}" -c "SELECT bank_create_account('ACC-002', 'Bob', 0);
	SELECT count(bank_deposit('ACC-002', 10)) FROM generate_series(1, 250);" >/dev/null
printf '\n'
stmt "SELECT bank_create_account('ACC-002', 'Bob', 0);
SELECT bank_deposit('ACC-002', 10) FROM generate_series(1, 250);"
show "SELECT version, state->>'balance' AS balance, created_at::timestamp(0) AS created_at
  FROM es_snapshots WHERE stream_id = 'account-ACC-002' ORDER BY version;"
printf '\n   With es_pg.log_replay = on, each load reports where it started and what\n'
printf '   it replayed:\n'
replay "from the newest snapshot" "SELECT bank_account_state('ACC-002');"
replay "a temporal query: from an older one" "SELECT bank_account_state('ACC-002', 150);"
sql "SELECT es_drop_snapshots('bank_account_reducer(jsonb, es_events)', 'account-ACC-002');"
replay "snapshots dropped: a full replay" "SELECT bank_account_state('ACC-002');"
replay "the next load" "SELECT bank_account_state('ACC-002');"
sql "SELECT bank_deposit('ACC-002', 10) FROM generate_series(1, 3);"
replay "after 3 more deposits" "SELECT bank_account_state('ACC-002');"

scene "9. A projection added late" \
	"A new read model, large deposits (500 or more), created after the events" \
	"and filled from the history. This one is async: a background worker" \
	"applies events after commit and keeps a checkpoint."
sql "CREATE TABLE large_deposits (global_position bigint PRIMARY KEY,
	account_id text, amount numeric, recorded_at timestamptz);
CREATE FUNCTION large_deposits_apply(event es_events) RETURNS void
	LANGUAGE sql AS \$\$
	INSERT INTO large_deposits
	SELECT event.global_position, bank_account_id(event.stream_id), a.amount, event.recorded_at
	  FROM (SELECT COALESCE(event.data->>'amount', event.data->>'initial_deposit')::numeric AS amount) a
	 WHERE a.amount >= 500
	\$\$;
CREATE FUNCTION large_deposits_reset() RETURNS void
	LANGUAGE sql AS 'DELETE FROM large_deposits';"
printf '\n'
stmt "CREATE TABLE large_deposits (...);
CREATE FUNCTION large_deposits_apply(event es_events) RETURNS void ...;"
run "SELECT es_create_projection('large_deposits', 'large_deposits_apply(es_events)',
       ARRAY['AccountCreated', 'MoneyDeposited'], 'async', 'large_deposits_reset()');"
show "SELECT es_wait_for_projection('large_deposits', es_head_position(), '10 s') AS caught_up;"
show "SELECT account_id, amount, recorded_at::timestamp(0) AS recorded_at FROM large_deposits;"
show "SELECT name, mode, state, position, head_position, lag_events, lag_time
  FROM es_projection_status ORDER BY name;"

scene "10. Two commands at once" \
	"Session A deposits 100 and has not committed yet. Session B withdraws 50:" \
	"it loads version 3, and its append waits for A. When A commits, B's" \
	"append finds version 4 (SQLSTATE 40001): B reloads, decides again, appends."
# A: deposit, then hold the transaction until B waits for the stream lock
"${PSQL[@]}" -At >/dev/null <<'EOF' &
BEGIN;
SELECT bank_deposit('ACC-001', 100);
SELECT pg_advisory_lock(4242);
DO $$
BEGIN
	FOR i IN 1..600 LOOP
		EXIT WHEN EXISTS (SELECT FROM pg_stat_activity
						   WHERE wait_event_type = 'Lock'
							 AND query LIKE '%bank_withdraw%'
							 AND pid <> pg_backend_pid());
		PERFORM pg_sleep(0.05);
	END LOOP;
END
$$;
COMMIT;
EOF
a_pid=$!
# B starts once A holds its deposit (A signals with an advisory lock)
"${PSQL[@]}" -At -c "DO \$\$ BEGIN FOR i IN 1..600 LOOP
	EXIT WHEN EXISTS (SELECT FROM pg_locks WHERE locktype = 'advisory' AND objid = 4242 AND granted);
	PERFORM pg_sleep(0.05); END LOOP; END \$\$;"
printf '\n'
stmt "A: BEGIN; SELECT bank_deposit('ACC-001', 100);   ... COMMIT;
B: SELECT bank_withdraw('ACC-001', 50);"
"${PSQL[@]}" -At -c "SELECT bank_withdraw('ACC-001', 50);" 2>&1 |
	sed -e '/^[A-Z]*: /!s/^/-> version /' -e 's/^/   B: /'
wait "$a_pid"
show "SELECT version, event_type, data->>'amount' AS amount,
       metadata->>'attempt' AS attempt
  FROM es_read_stream('account-ACC-001', 3);"
show "SELECT balance, bank_account_state('ACC-001')->>'balance' AS balance_replayed
  FROM bank_get_account('ACC-001');"
printf '\n   Both took effect, exactly once: 1300 + 100 - 50 = 1350.\n'

printf '\n%sThe end.%s The cluster is removed now; docs/bank.md tells the rest.\n' "$B" "$R"
