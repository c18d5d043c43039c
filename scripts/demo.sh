#!/usr/bin/env bash
# The demo: installs into .venv, generates a synthetic shop, trains, publishes and serves on :8000.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
exec .venv/bin/recsys demo "$@"
