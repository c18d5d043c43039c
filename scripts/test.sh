#!/usr/bin/env bash
# The test command: installs what it needs, makes sure a Redis server answers, runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
export RECSYS_TEST_REDIS_URL="${RECSYS_TEST_REDIS_URL:-$(scripts/ensure_redis.sh)}"
exec .venv/bin/python -m pytest "$@"
