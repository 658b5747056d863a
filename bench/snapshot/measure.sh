#!/usr/bin/env bash
# bench/snapshot/measure.sh: a quick, rough measurement of snapshot loads
# (see measure.sql) on a throwaway cluster.  Not the benchmark suite: the
# figures vary with the machine and its load.
#
#   PG_CONFIG=... bench/snapshot/measure.sh
source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lib.sh"

es_need_server
es_build_install
es_cluster_start
es_as_pg "$($PG_CONFIG --bindir)/psql" -X -q -v ON_ERROR_STOP=1 \
	-f "$ES_ROOT/bench/snapshot/measure.sql"
