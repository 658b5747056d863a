# scripts/lib.sh: shared by scripts/test.sh, scripts/demo.sh and bench/run.sh.
#
# Installs what is missing from Debian's packages, builds and installs the
# extension, and runs a throwaway PostgreSQL cluster in a private directory
# (Unix socket only) that es_cleanup stops and removes.
#
# Settings (environment):
#   PG_CONFIG   pg_config of the PostgreSQL to build against and run
#               (default: /usr/lib/postgresql/15/bin/pg_config)
#   ES_KEEP=1   keep the cluster directory after the run, for debugging

set -euo pipefail

ES_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PG_MAJOR=15
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/$PG_MAJOR/bin/pg_config}
ES_TMP=""
ES_PGPORT=54321

es_log() { printf '\n== %s\n' "$*"; }

# es_as_root CMD...: run a command as root (directly, or through sudo).
es_as_root() {
	if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

# es_as_pg CMD...: run a command as the OS user that owns the clusters;
# initdb refuses root, so root runs them as "postgres".
es_as_pg() {
	if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# es_need_packages PKG...: install the Debian packages that are missing.
es_need_packages() {
	local missing=() p
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
			missing+=("$p")
	done
	if [ ${#missing[@]} -gt 0 ]; then
		es_log "installing ${missing[*]}"
		es_as_root apt-get update -qq
		es_as_root env DEBIAN_FRONTEND=noninteractive \
			apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
	fi
}

# es_need_server: PostgreSQL, its headers and build tools.
es_need_server() {
	es_need_packages postgresql-$PG_MAJOR postgresql-server-dev-$PG_MAJOR \
		postgresql-contrib make gcc libc6-dev rsync
}

# es_need_node: node and npm, from Debian unless the machine has them.
es_need_node() {
	if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
		es_need_packages nodejs npm
	fi
}

# es_build_install: warning-free build, then install into PostgreSQL: es_pg
# and the bank example extension es_pg_bank (examples/bank), whose tests run
# with es_pg's.
es_build_install() {
	local dir
	for dir in "$ES_ROOT" "$ES_ROOT/examples/bank"; do
		es_log "building $(sed -n "s/^EXTENSION[[:space:]]*=[[:space:]]*//p" "$dir/Makefile")"
		make -C "$dir" -s PG_CONFIG="$PG_CONFIG" COPT=-Werror
		es_as_root make -C "$dir" -s PG_CONFIG="$PG_CONFIG" install >/dev/null
	done
}

# es_cleanup: stop the cluster and remove its directory.
es_cleanup() {
	local rc=$?
	if [ -n "$ES_TMP" ] && [ -d "$ES_TMP" ]; then
		if [ -f "$ES_TMP/data/postmaster.pid" ]; then
			es_as_pg "$($PG_CONFIG --bindir)/pg_ctl" -D "$ES_TMP/data" \
				-m immediate stop >/dev/null 2>&1 || true
		fi
		if [ "${ES_KEEP:-0}" = 1 ]; then
			echo "kept $ES_TMP"
		else
			rm -rf "$ES_TMP"
		fi
	fi
	return $rc
}

# es_cluster_start [SETTING...]: initdb and start a throwaway cluster with
# es_pg preloaded; extra postgresql.conf lines may be passed.  Exports
# PGHOST, PGPORT, PGUSER and PGDATABASE for the clients that follow.
es_cluster_start() {
	local bindir line
	bindir=$($PG_CONFIG --bindir)
	ES_TMP=$(mktemp -d /tmp/es_pg.XXXXXX)
	chmod 755 "$ES_TMP"
	[ "$(id -u)" = 0 ] && chown postgres: "$ES_TMP"
	trap es_cleanup EXIT
	es_log "starting a throwaway PostgreSQL in $ES_TMP"
	es_as_pg "$bindir/initdb" -D "$ES_TMP/data" -U postgres -A trust \
		--no-sync -E UTF8 --no-locale >/dev/null
	{
		echo "port = $ES_PGPORT"
		echo "listen_addresses = ''"
		echo "unix_socket_directories = '$ES_TMP'"
		echo "shared_preload_libraries = 'es_pg'"
		echo "max_connections = 100"
		echo "logging_collector = off"
		for line in "$@"; do echo "$line"; done
	} | es_as_pg tee -a "$ES_TMP/data/postgresql.conf" >/dev/null
	es_as_pg "$bindir/pg_ctl" -D "$ES_TMP/data" -l "$ES_TMP/server.log" \
		-w -t 60 start >/dev/null
	export PGHOST="$ES_TMP" PGPORT="$ES_PGPORT" PGUSER=postgres PGDATABASE=postgres
}

# es_copy_tree DIR: copy the working tree (without .git) to DIR, owned by
# the cluster user, so that tests write their results there.
es_copy_tree() {
	rsync -a --exclude .git --exclude node_modules "$ES_ROOT/" "$1/"
	[ "$(id -u)" = 0 ] && chown -R postgres: "$1"
	return 0
}
