#!/usr/bin/env bash
# Prints a Redis URL for tests: the server at $REDIS_HOST:$REDIS_PORT if one answers, otherwise a
# private server started here (installing redis-server from Debian when it is missing).
set -euo pipefail
cd "$(dirname "$0")/.."
host="${REDIS_HOST:-127.0.0.1}"
port="${REDIS_PORT:-6379}"
db="${REDIS_TEST_DB:-15}"
answers() { .venv/bin/python - "$1" "$2" <<'PY' >/dev/null 2>&1
import sys, redis
redis.Redis(host=sys.argv[1], port=int(sys.argv[2]), socket_connect_timeout=1).ping()
PY
}
if ! answers "$host" "$port"; then
  if ! command -v redis-server >/dev/null 2>&1; then
    (apt-get update -qq && apt-get install -y -qq redis-server) >&2
  fi
  port=6391
  if ! answers 127.0.0.1 "$port"; then
    mkdir -p var/redis
    redis-server --daemonize yes --bind 127.0.0.1 --port "$port" --save "" --appendonly no \
      --dir "$PWD/var/redis" --logfile "$PWD/var/redis/redis.log" >&2
    for _ in $(seq 50); do answers 127.0.0.1 "$port" && break; sleep 0.1; done
  fi
  host=127.0.0.1
fi
echo "redis://$host:$port/$db"
