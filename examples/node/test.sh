#!/usr/bin/env bash
# examples/node/test.sh: the Node.js client's tests, run by
# `scripts/test.sh clients` with PGHOST, PGPORT and PGUSER set.  They create
# a database of their own (es_bank_node) and drop it at the end.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
npm ci --no-audit --no-fund --loglevel=error
node --test test/bank.test.js test/consumer.test.js
