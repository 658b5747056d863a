# scripts/lib.sh: shared by scripts/test.sh, scripts/demo.sh,
# scripts/major_upgrade.sh and bench/run.sh.
#
# Installs what is missing from Debian's packages, builds and installs the
# extension, and runs a throwaway PostgreSQL cluster in a private directory
# (Unix socket only) that es_cleanup stops and removes.  A PostgreSQL major
# that the host's Debian does not have runs in a Debian chroot that has it
# (es_chroot_if_needed).
#
# Settings (environment):
#   PG_MAJOR    the PostgreSQL major to build against and run (default 15).
#               When the host has no postgresql-NN package, the script runs
#               itself again in a Debian chroot that has one (17: trixie,
#               18: sid), made once under /var/cache/es_pg/chroot and
#               reused; results come back into the working tree.
#   PG_CONFIG   pg_config of the PostgreSQL to use instead (default:
#               /usr/lib/postgresql/$PG_MAJOR/bin/pg_config); given, it
#               decides the major and no chroot is used
#   ES_KEEP=1   keep the cluster directory after the run, for debugging
#   ES_PGPORT   the throwaway cluster's port (default 54321), for runs side by side

set -euo pipefail

ES_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ES_TMP=""
ES_PGPORT=${ES_PGPORT:-54321}
ES_CHROOTS=/var/cache/es_pg/chroot
# where the working tree goes inside a chroot
ES_CHROOT_TREE=/srv/es_pg
# the Debian mirror, the one archive this machine may reach
ES_MIRROR=http://deb.debian.org/debian
# the major of the host's Debian (bookworm), used when PG_MAJOR is not set
ES_DEFAULT_MAJOR=15

es_log() { printf '\n== %s\n' "$*"; }
es_die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# ---- the major: PG_CONFIG, when given, names it
if [ -n "${PG_CONFIG:-}" ]; then
	ES_PG_CONFIG_GIVEN=1
	if command -v "$PG_CONFIG" >/dev/null; then
		es_major=$("$PG_CONFIG" --version | sed -n 's/^PostgreSQL \([0-9]*\).*/\1/p')
		if [ -n "${PG_MAJOR:-}" ] && [ "$PG_MAJOR" != "$es_major" ]; then
			es_die "PG_MAJOR=$PG_MAJOR, but PG_CONFIG=$PG_CONFIG is PostgreSQL $es_major"
		fi
		PG_MAJOR=$es_major
	else
		# not installed yet: the major of Debian's path, or the default
		es_major=$(echo "$PG_CONFIG" | sed -n 's|^/usr/lib/postgresql/\([0-9]*\)/bin/pg_config$|\1|p')
		PG_MAJOR=${PG_MAJOR:-${es_major:-$ES_DEFAULT_MAJOR}}
	fi
	unset es_major
else
	ES_PG_CONFIG_GIVEN=""
	PG_MAJOR=${PG_MAJOR:-$ES_DEFAULT_MAJOR}
	PG_CONFIG=/usr/lib/postgresql/$PG_MAJOR/bin/pg_config
fi
[[ "$PG_MAJOR" =~ ^[0-9]+$ ]] || es_die "PG_MAJOR must be a major version such as 17, not \"$PG_MAJOR\""

# ---- the locale
#
# Everything the scripts run gets C.UTF-8, whatever the login left in LANG
# and LC_*.  initdb takes its encoding from the locale: with LANG unset it
# picks SQL_ASCII, and with a locale that is not generated (LANG=en_US.UTF-8
# on a machine without the locales package, common over SSH) it refuses to
# run at all.  The TAP tests' clusters (PostgreSQL::Test::Cluster->init) run
# initdb without locale options after PostgreSQL::Test::Utils deletes LC_ALL,
# so LANG is what they see, and it must be C.UTF-8 for UTF8 clusters.
# C.UTF-8 is always there: built into glibc since 2.35, and shipped by
# Debian's libc-bin before that.
if ! LC_ALL=C.UTF-8 locale charmap 2>/dev/null | grep -qx UTF-8; then
	es_die "the C.UTF-8 locale is missing (Debian ships it in libc-bin)"
fi
for es_var in $(compgen -v LC_ || true); do unset "$es_var"; done
unset LANGUAGE es_var
export LANG=C.UTF-8 LC_ALL=C.UTF-8

# ---- exit paths
#
# One EXIT trap runs the cleanups that were registered, newest first, on
# every exit: normal end, error (set -e), and a signal.  SIGINT and SIGTERM
# are forwarded to the child that es_spawn started (its own process group)
# and waited for, so that it cleans up too, before this shell exits.
ES_CLEANUPS=()
ES_CHILD=""
es_on_exit() { ES_CLEANUPS+=("$1"); }
es_exit() {
	local rc=$? i
	# the cleanups run to their end, even on a second Ctrl-C
	trap - EXIT
	trap '' INT TERM HUP
	for ((i = ${#ES_CLEANUPS[@]} - 1; i >= 0; i--)); do
		"${ES_CLEANUPS[$i]}" || true
	done
	exit "$rc"
}
es_signal() {
	local sig=$1 code=$2
	trap - INT TERM HUP
	if [ -n "$ES_CHILD" ]; then
		kill -TERM -- "-$ES_CHILD" 2>/dev/null || kill -TERM "$ES_CHILD" 2>/dev/null || true
		wait "$ES_CHILD" 2>/dev/null || true
	fi
	echo "interrupted (SIG$sig)" >&2
	exit "$code"
}
trap es_exit EXIT

# es_spawn CMD...: run a command in a process group of its own and wait
# for it, returning its status.  A shell waiting for a foreground command
# handles signals only when the command ends; waiting with the wait builtin
# it handles them at once, and es_signal then stops the whole group.
es_spawn() {
	local rc=0
	trap 'es_signal INT 130' INT
	trap 'es_signal TERM 143' TERM
	trap 'es_signal HUP 129' HUP
	# (--wait: should setsid have to fork, its status is still the command's)
	setsid --wait "$@" &
	ES_CHILD=$!
	wait "$ES_CHILD" || rc=$?
	ES_CHILD=""
	trap - INT TERM HUP
	return "$rc"
}

# es_as_root CMD...: run a command as root (directly, or through sudo).
es_as_root() {
	if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

# es_as_pg CMD...: run a command as the OS user that owns the clusters;
# initdb refuses root, so root runs them as "postgres".  From /, which that
# user can enter: PostgreSQL's programs complain ("could not change
# directory") when started from a directory it cannot, such as /root.
es_as_pg() {
	if [ "$(id -u)" = 0 ]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi
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
		es_as_root apt-get -o Acquire::Retries=3 update -qq
		es_as_root env DEBIAN_FRONTEND=noninteractive \
			apt-get -o Acquire::Retries=3 install -y -qq --no-install-recommends \
			"${missing[@]}" >/dev/null
	fi
}

# es_need_server: PostgreSQL, its headers and build tools.  Debian's
# postgresql-NN has contrib (amcheck, pageinspect) in it; the
# postgresql-contrib package is only a pointer to bookworm's default major.
es_need_server() {
	es_need_packages postgresql-$PG_MAJOR postgresql-server-dev-$PG_MAJOR \
		make gcc libc6-dev rsync
}

# es_need_fuzzer: clang with its libFuzzer runtime, for the fuzzing test;
# the runtime's package carries clang's major (bookworm 14, trixie 19, ...).
es_need_fuzzer() {
	local v
	es_need_packages clang
	v=$(clang --version | sed -n 's/.*clang version \([0-9]*\)\..*/\1/p' | head -n 1)
	[ -n "$v" ] || es_die "cannot tell clang's version: $(clang --version | head -n 1)"
	es_need_packages "libclang-rt-$v-dev"
}

# es_need_node: node and npm, from Debian unless the machine has them.
es_need_node() {
	if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
		es_need_packages nodejs npm
	fi
}

# es_build_install [DIR]: warning-free build, then install into PostgreSQL:
# es_pg and the bank example extension es_pg_bank (examples/bank), whose
# tests run with es_pg's.  DIR is a copy of the tree to build in (default:
# the tree itself); one copy serves one major, as objects are not rebuilt
# when PG_CONFIG changes.
es_build_install() {
	local top=${1:-$ES_ROOT} dir
	for dir in "$top" "$top/examples/bank"; do
		es_log "building $(sed -n "s/^EXTENSION[[:space:]]*=[[:space:]]*//p" "$dir/Makefile") for PostgreSQL $PG_MAJOR"
		make -C "$dir" -s PG_CONFIG="$PG_CONFIG" COPT=-Werror
		es_as_root make -C "$dir" -s PG_CONFIG="$PG_CONFIG" install >/dev/null
	done
}

# es_cleanup: stop the cluster and remove its directory.
es_cleanup() {
	if [ -n "$ES_TMP" ] && [ -d "$ES_TMP" ]; then
		if [ -f "$ES_TMP/data/postmaster.pid" ]; then
			es_as_pg "$($PG_CONFIG --bindir)/pg_ctl" -D "$ES_TMP/data" \
				-m immediate stop >/dev/null 2>&1 || true
		fi
		if [ "${ES_KEEP:-0}" = 1 ]; then
			echo "kept $ES_TMP${ES_IN_CHROOT:+ (in the chroot $ES_CHROOTS/$ES_IN_CHROOT)}"
		else
			rm -rf "$ES_TMP"
		fi
	fi
}

# es_tmpdir: a private directory for this run (ES_TMP), removed by
# es_cleanup, that the cluster user may write to.
es_tmpdir() {
	ES_TMP=$(mktemp -d /tmp/es_pg.XXXXXX)
	chmod 755 "$ES_TMP"
	if [ "$(id -u)" = 0 ]; then chown postgres: "$ES_TMP"; fi
	es_on_exit es_cleanup
}

# es_cluster_start [SETTING...]: initdb and start a throwaway cluster with
# es_pg preloaded and a master key file for protected event types
# (docs/privacy.md); extra postgresql.conf lines may be passed.  Exports
# PGHOST, PGPORT, PGUSER and PGDATABASE for the clients that follow.
es_cluster_start() {
	local bindir line
	bindir=$($PG_CONFIG --bindir)
	es_tmpdir
	es_log "starting a throwaway PostgreSQL $PG_MAJOR in $ES_TMP"
	es_as_pg "$bindir/initdb" -D "$ES_TMP/data" -U postgres -A trust \
		--no-sync -E UTF8 --no-locale >/dev/null
	echo "test1 $(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')" |
		es_as_pg tee "$ES_TMP/data/es_pg_test_keys" >/dev/null
	es_as_pg chmod 600 "$ES_TMP/data/es_pg_test_keys"
	{
		echo "port = $ES_PGPORT"
		echo "listen_addresses = ''"
		echo "unix_socket_directories = '$ES_TMP'"
		echo "shared_preload_libraries = 'es_pg'"
		echo "max_connections = 100"
		echo "logging_collector = off"
		echo "es_pg.master_key_file = 'es_pg_test_keys'"
		for line in "$@"; do echo "$line"; done
	} | es_as_pg tee -a "$ES_TMP/data/postgresql.conf" >/dev/null
	es_as_pg "$bindir/pg_ctl" -D "$ES_TMP/data" -l "$ES_TMP/server.log" \
		-w -t 60 start >/dev/null
	export PGHOST="$ES_TMP" PGPORT="$ES_PGPORT" PGUSER=postgres PGDATABASE=postgres
}

# es_copy_tree DIR: copy the working tree (without .git and build
# products) to DIR, owned by the cluster user, so that tests write their
# results there.
es_copy_tree() {
	rsync -a --exclude .git --exclude node_modules --exclude '*.o' --exclude '*.so' \
		--exclude '*.bc' --exclude /build/ --exclude /results/ --exclude /output_iso/ \
		--exclude /tmp_check/ --exclude /log/ --exclude /bench/out/ \
		"$ES_ROOT/" "$1/"
	if [ "$(id -u)" = 0 ]; then chown -R postgres: "$1"; fi
	return 0
}

# ---- Debian chroots for the majors the host's Debian does not have

# es_suite_for_major N: the Debian suite whose archive has postgresql-N.
es_suite_for_major() {
	case $1 in
		15) echo bookworm ;;
		17) echo trixie ;;
		18) echo sid ;;
		*) return 1 ;;
	esac
}

# es_host_has_major: whether this machine runs PG_MAJOR itself: it is
# installed, or its Debian is the suite that has it, or apt knows the
# package.
es_host_has_major() {
	local codename
	[ -x "/usr/lib/postgresql/$PG_MAJOR/bin/pg_config" ] && return 0
	codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
	if [ "$codename" = forky ] && grep -qs sid /etc/debian_version; then codename=sid; fi
	[ "$codename" = "$(es_suite_for_major "$PG_MAJOR" || true)" ] && return 0
	apt-cache policy "postgresql-$PG_MAJOR" 2>/dev/null | grep -q 'Candidate: [0-9]'
}

# es_chroot_if_needed ARG...: unless the host runs PG_MAJOR, run the
# calling script again, with the same arguments, in the Debian chroot of
# PG_MAJOR's suite, and exit with its status.  Inside the chroot (and when
# the host will do), it returns and the script carries on.
es_chroot_if_needed() {
	local suite rc=0
	if [ -n "${ES_IN_CHROOT:-}" ]; then
		# a run interrupted while dpkg worked leaves it to be finished
		es_as_root dpkg --configure -a
		# the host's local certificate authorities (es_chroot_run copied
		# them in): what the host's TLS clients trust, npm in here trusts
		if compgen -G '/usr/local/share/ca-certificates/*.crt' >/dev/null; then
			es_need_packages ca-certificates
			update-ca-certificates >/dev/null 2>&1
		fi
		return 0
	fi
	[ -z "$ES_PG_CONFIG_GIVEN" ] || return 0
	es_host_has_major && return 0
	suite=$(es_suite_for_major "$PG_MAJOR") ||
		es_die "PostgreSQL $PG_MAJOR is in no Debian suite these scripts know (15: bookworm, 17: trixie, 18: sid)"
	es_chroot_run "$suite" "${BASH_SOURCE[-1]}" "$@" || rc=$?
	exit "$rc"
}

# es_umount_under DIR: unmount everything mounted at or below DIR, deepest
# first; a busy mount is detached lazily so that nothing stays visible.
es_umount_under() {
	local dir m
	dir=$(realpath -m "$1")
	# mount points are field 5 of mountinfo, with spaces escaped as \040
	awk -v d="$dir" '$5 == d || index($5, d "/") == 1 { print $5 }' /proc/self/mountinfo |
		sort -r | while read -r m; do
		umount "$m" 2>/dev/null || umount -l "$m" || true
	done
}

# es_chroot_pids DIR: the processes whose root directory is DIR
es_chroot_pids() {
	local p
	for p in /proc/[0-9]*; do
		[ "$(readlink "$p/root" 2>/dev/null)" = "$1" ] && echo "${p#/proc/}"
	done
	return 0
}

# es_chroot_kill DIR: stop the processes still running in the chroot DIR
# (a cluster whose owner was killed), found by their root directory, after
# a grace period for those that are ending already (runuser takes a
# moment after a SIGTERM).
es_chroot_kill() {
	local dir pids=() i
	dir=$(realpath -m "$1")
	for ((i = 0; i < 30; i++)); do
		mapfile -t pids < <(es_chroot_pids "$dir")
		[ ${#pids[@]} -gt 0 ] || return 0
		sleep 0.1
	done
	echo "stopping what was left running in $dir:" >&2
	ps -o pid=,args= -p "$(IFS=,; echo "${pids[*]}")" >&2 || true
	kill -TERM "${pids[@]}" 2>/dev/null || true
	for ((i = 0; i < 50; i++)); do
		mapfile -t pids < <(es_chroot_pids "$dir")
		[ ${#pids[@]} -gt 0 ] || return 0
		sleep 0.1
	done
	kill -KILL "${pids[@]}" 2>/dev/null || true
}

# es_chroot_make SUITE: the chroot of SUITE, made once.  It is built in a
# temporary directory beside its final place and renamed when complete, so
# a chroot that exists is whole; what an interrupted run left is removed.
ES_CHROOT_NEW=""
es_chroot_discard_new() {
	if [ -n "$ES_CHROOT_NEW" ] && [ -d "$ES_CHROOT_NEW" ]; then
		es_chroot_kill "$ES_CHROOT_NEW"
		es_umount_under "$ES_CHROOT_NEW"
		rm -rf --one-file-system "$ES_CHROOT_NEW" "$ES_CHROOT_NEW.log"
	fi
}
es_chroot_make() {
	local suite=$1 dir=$ES_CHROOTS/$1 old
	[ -d "$dir" ] && return 0
	es_need_packages debootstrap debian-archive-keyring
	for old in "$dir".new.*; do
		[ -d "$old" ] || continue
		ES_CHROOT_NEW=$old
		es_chroot_discard_new
	done
	ES_CHROOT_NEW=$(mktemp -d "$dir.new.XXXXXX")
	# the chroot's /, which every user must be able to enter
	chmod 755 "$ES_CHROOT_NEW"
	es_on_exit es_chroot_discard_new
	es_log "making a Debian $suite chroot in $dir (once: later runs reuse it)"
	if ! es_spawn debootstrap --variant=minbase "$suite" "$ES_CHROOT_NEW" "$ES_MIRROR" \
		>"$ES_CHROOT_NEW.log" 2>&1; then
		tail -n 30 "$ES_CHROOT_NEW.log" >&2
		es_die "debootstrap of $suite failed (log above)"
	fi
	# sid's Release file is often past its Valid-Until date
	echo 'Acquire::Check-Valid-Until "false";' >"$ES_CHROOT_NEW/etc/apt/apt.conf.d/99es-pg"
	# no service starts in the chroot: clusters are the scripts' own
	printf '#!/bin/sh\nexit 101\n' >"$ES_CHROOT_NEW/usr/sbin/policy-rc.d"
	chmod 755 "$ES_CHROOT_NEW/usr/sbin/policy-rc.d"
	# and postgresql-NN creates no "main" cluster; postgresql-common keeps
	# this file when it is installed later (ucf keeps a local file)
	mkdir -p "$ES_CHROOT_NEW/etc/postgresql-common"
	echo 'create_main_cluster = false' >"$ES_CHROOT_NEW/etc/postgresql-common/createcluster.conf"
	rm -f "$ES_CHROOT_NEW.log"
	mv -T "$ES_CHROOT_NEW" "$dir"
	ES_CHROOT_NEW=""
}

# es_chroot_mount DIR: what PostgreSQL and apt need inside: /proc, /sys,
# /dev with /dev/pts, and a tmpfs on /dev/shm for POSIX shared memory.
# /dev is bound privately, so that the mounts below it stay in the chroot.
es_chroot_mount() {
	local dir=$1
	es_umount_under "$dir"	# what a killed run left mounted
	mount -t proc proc "$dir/proc"
	mount -t sysfs sysfs "$dir/sys"
	mount --bind /dev "$dir/dev"
	mount --make-private "$dir/dev"
	mount --bind /dev/pts "$dir/dev/pts"
	mount -t tmpfs -o mode=1777,nosuid,nodev shm "$dir/dev/shm"
}

# es_chroot_export PATH [HOST-PATH]: a file or directory of the tree in the
# chroot (relative to the tree) that es_chroot_run copies out after the
# run, whatever its end, to HOST-PATH (default: the same place in this
# tree).  log/ always comes back: test.sh leaves the logs of failures there.
ES_EXPORTS=("log" "$ES_ROOT/log")
es_chroot_export() { ES_EXPORTS+=("$1" "${2:-$ES_ROOT/$1}"); }
# ES_CHROOT_ENV: NAME=VALUE settings a script passes to its run in the chroot
ES_CHROOT_ENV=()

# es_chroot_run SUITE SCRIPT ARG...: run SCRIPT (a script of this tree)
# with ARGs in the chroot of SUITE with PG_MAJOR set, on a fresh copy of the
# working tree, and return its status.  One run at a time uses a chroot (a
# lock); mounts are undone and results copied out on every exit path.
ES_CHROOT_DIR=""
es_chroot_leave() {
	local dir=$ES_CHROOT_DIR i src
	[ -n "$dir" ] || return 0
	ES_CHROOT_DIR=""
	es_chroot_kill "$dir"
	es_umount_under "$dir"
	for ((i = 0; i < ${#ES_EXPORTS[@]}; i += 2)); do
		src=$dir$ES_CHROOT_TREE/${ES_EXPORTS[$i]}
		[ -e "$src" ] || continue
		if [ -d "$src" ]; then
			mkdir -p "${ES_EXPORTS[$((i + 1))]}"
			rsync -a "$src/" "${ES_EXPORTS[$((i + 1))]}/"
		else
			mkdir -p "$(dirname "${ES_EXPORTS[$((i + 1))]}")"
			cp "$src" "${ES_EXPORTS[$((i + 1))]}"
		fi
		echo "copied ${ES_EXPORTS[$i]} out of the chroot to ${ES_EXPORTS[$((i + 1))]}"
	done
}
es_chroot_run() {
	local suite=$1 script=$2 dir=$ES_CHROOTS/$1 rel lock rc=0 v
	shift 2
	if [ "$(id -u)" != 0 ]; then
		# debootstrap, mount and chroot need root
		command -v sudo >/dev/null ||
			es_die "PostgreSQL $PG_MAJOR runs in a Debian chroot, which needs root: run this as root"
		exec sudo PG_MAJOR="$PG_MAJOR" ES_KEEP="${ES_KEEP:-0}" ES_SOAK="${ES_SOAK:-0}" \
			"$BASH" "$script" "$@"
	fi
	rel=$(realpath --relative-to="$ES_ROOT" "$script")
	mkdir -p "$ES_CHROOTS"
	# one run per chroot: the lock is held by this shell only (not passed
	# to the chroot), until it exits
	exec {lock}>"$ES_CHROOTS/$suite.lock"
	if ! flock -n "$lock"; then
		es_log "waiting for another run that uses the $suite chroot"
		flock "$lock"
	fi
	es_chroot_make "$suite"
	es_need_packages rsync
	ES_CHROOT_DIR=$dir
	es_on_exit es_chroot_leave
	es_chroot_mount "$dir"
	# the host's name servers and local certificate authorities (a proxy's,
	# say), which the host's own clients use for the same network
	cp -L /etc/resolv.conf "$dir/etc/resolv.conf" 2>/dev/null || true
	mkdir -p "$dir/usr/local/share/ca-certificates"
	rsync -rL --delete /usr/local/share/ca-certificates/ "$dir/usr/local/share/ca-certificates/" 2>/dev/null || true
	# what killed runs left in the chroot's /tmp (TAP tests' directories),
	# but the clusters that ES_KEEP=1 kept
	find "$dir/tmp" -mindepth 1 -maxdepth 1 ! -name 'es_pg.*' -exec rm -rf --one-file-system {} +
	# a fresh copy: --delete-excluded also drops the previous run's build
	# products and logs
	mkdir -p "$dir$ES_CHROOT_TREE"
	rsync -a --delete --delete-excluded --exclude .git --exclude node_modules \
		--exclude '*.o' --exclude '*.so' --exclude '*.bc' --exclude __pycache__ \
		--exclude /build/ --exclude /results/ --exclude /output_iso/ --exclude /tmp_check/ \
		--exclude /log/ --exclude /bench/out/ --exclude /regression.diffs \
		--exclude /regression.out "$ES_ROOT/" "$dir$ES_CHROOT_TREE/"
	es_log "PostgreSQL $PG_MAJOR: running $rel in the Debian $suite chroot $dir"
	# a clean environment: the settings these scripts read, and no more
	local env=(PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
		HOME=/root LANG=C.UTF-8 LC_ALL=C.UTF-8 TERM="${TERM:-dumb}"
		PG_MAJOR="$PG_MAJOR" ES_IN_CHROOT="$suite"
		ES_GIT_COMMIT="$(git -C "$ES_ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)")
	for v in ES_KEEP ES_SOAK ES_FUZZ_SECONDS BENCH_ROUNDS BENCH_SECONDS BENCH_NOTE; do
		[ -z "${!v:-}" ] || env+=("$v=${!v}")
	done
	env+=("${ES_CHROOT_ENV[@]}")
	es_spawn chroot "$dir" /usr/bin/env -i "${env[@]}" \
		/bin/bash "$ES_CHROOT_TREE/$rel" "$@" {lock}>&- || rc=$?
	es_chroot_leave
	exec {lock}>&-
	return "$rc"
}
