#!/usr/bin/env bash
# examples/nats/test.sh: the NATS forwarder's test, run by
# `scripts/test.sh clients` with PGHOST, PGPORT and PGUSER set.  It starts a
# nats-server of its own (Debian's nats-server, with JetStream, in a
# temporary directory) and creates a database of its own (es_nats_node),
# and removes both at the end.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
npm ci --no-audit --no-fund --loglevel=error
node --test test/forward.test.js
