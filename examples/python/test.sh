#!/usr/bin/env bash
# examples/python/test.sh: the Python client's tests, run by
# `scripts/test.sh clients` with PGHOST, PGPORT and PGUSER set.  They create
# a database of their own (es_bank_python) and drop it at the end.
# Debian's python3 with Debian's psycopg2 and SQLAlchemy, whatever python3
# comes first on PATH.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
export PYTHONDONTWRITEBYTECODE=1
exec /usr/bin/python3 -m unittest -v test_bank_client test_consumer
