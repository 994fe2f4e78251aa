#!/usr/bin/env bash
# Make sure PostgreSQL and Redis answer at DATABASE_URL and REDIS_URL.
#
# Why one script: `make run`, `make test` and `.ci/run` all need the same two
# servers, and a new user should get the same single clear line from each of
# them when a server is missing. When a server on this machine does not
# answer, the script starts it with the Debian tools if they are installed (only a
# PostgreSQL cluster configured for the URL's port), and says "started" only once
# it answers; otherwise it says what is missing and how to start it, and exits 1.
#
# Usage: ops/services.sh [ensure|check]
#   ensure (default)  start what does not answer (local addresses only), then wait
#   check             only report; exit 1 when a server does not answer
# Environment: DATABASE_URL, REDIS_URL (defaults as in shared_kernel/settings.py),
#              SERVICES_WAIT_SECONDS (default 30), ENV_FILE (default .env).
set -euo pipefail

# `.env` is read as the processes read it (python-dotenv; a variable already in the
# environment wins), so this script checks and starts the servers they will use.
env_file="${ENV_FILE:-.env}"
if [ -f "$env_file" ] && [ -z "${LEDGER_DOTENV_LOADED:-}" ]; then
  dotenv_cli="$(dirname "$0")/../.venv/bin/dotenv"
  if [ ! -x "$dotenv_cli" ]; then
    echo "services: $env_file is there but python-dotenv is not installed to read it; run make install" >&2
    exit 2
  fi
  LEDGER_DOTENV_LOADED=1 exec "$dotenv_cli" -f "$env_file" run --no-override -- bash "$0" "$@"
fi

mode="${1:-ensure}"
case "$mode" in
  ensure|check) ;;
  *) echo "usage: $0 [ensure|check]" >&2; exit 2 ;;
esac

DATABASE_URL="${DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/ledger}"
REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379/0}"
wait_seconds="${SERVICES_WAIT_SECONDS:-30}"

# host and port of a URL, parsed by Python's urllib rather than by hand.
url_host_port() {
  python3 - "$1" "$2" <<'PY'
import sys
from urllib.parse import urlsplit
parts = urlsplit(sys.argv[1])
print(parts.hostname or "127.0.0.1", parts.port or int(sys.argv[2]))
PY
}

read -r pg_host pg_port < <(url_host_port "$DATABASE_URL" 5432)
read -r redis_host redis_port < <(url_host_port "$REDIS_URL" 6379)

is_local() {
  case "$1" in
    127.*|localhost|::1|0.0.0.0) return 0 ;;
    *) return 1 ;;
  esac
}

# A TCP connect with a short timeout, for machines without the client tools.
tcp_open() {
  timeout 2 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null
}

postgres_answers() {
  if command -v pg_isready >/dev/null 2>&1; then
    pg_isready -q -h "$pg_host" -p "$pg_port" -t 2
  else
    tcp_open "$pg_host" "$pg_port"
  fi
}

redis_answers() {
  if command -v redis-cli >/dev/null 2>&1; then
    [ "$(timeout 3 redis-cli -h "$redis_host" -p "$redis_port" ping 2>/dev/null)" = "PONG" ]
  else
    tcp_open "$redis_host" "$redis_port"
  fi
}

# A starter either starts the server that will answer at host:port, setting `started` to
# what it started, or returns 1 with `why` saying why not. It never claims a start: the
# caller says "started" only once the server answers.
started=""
why=""

start_postgres() {
  if ! command -v pg_lsclusters >/dev/null 2>&1; then
    why="PostgreSQL's Debian tools are not installed"
    return 1
  fi
  local version cluster output
  # Only the cluster configured for the URL's port: another one would not answer there.
  read -r version cluster < <(pg_lsclusters --no-header 2>/dev/null |
    awk -v port="$pg_port" '$3 == port { print $1, $2; exit }') || true
  if [ -z "${cluster:-}" ]; then
    why="no PostgreSQL cluster on this machine is configured for port $pg_port"
    return 1
  fi
  echo "services: starting PostgreSQL $version/$cluster (port $pg_port)" >&2
  if ! output="$(pg_ctlcluster --skip-systemctl-redirect "$version" "$cluster" start 2>&1)"; then
    why="pg_ctlcluster $version $cluster start failed: $(printf '%s' "$output" | tail -n 1)"
    return 1
  fi
  started="PostgreSQL $version/$cluster"
}

start_redis() {
  if ! command -v redis-server >/dev/null 2>&1; then
    why="redis-server is not installed"
    return 1
  fi
  echo "services: starting Redis on port $redis_port" >&2
  mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
  # --daemonize returns before the server binds its port: only the probe can tell.
  if ! redis-server --daemonize yes --bind 127.0.0.1 -::1 --port "$redis_port" --save "" \
      --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log >&2; then
    why="redis-server --port $redis_port failed to launch"
    return 1
  fi
  started="Redis (log: /var/log/redis/ci.log)"
}

# wait_for NAME PROBE: poll PROBE until it succeeds or the wait runs out.
wait_for() {
  local deadline=$((SECONDS + wait_seconds))
  until "$2"; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.5
  done
}

# ensure_one NAME HOST PORT PROBE STARTER HOW_TO_START
ensure_one() {
  local name="$1" host="$2" port="$3" probe="$4" starter="$5" how="$6"
  "$probe" && return 0
  if [ "$mode" = check ]; then
    echo "$name does not answer at $host:$port; $how" >&2
    return 1
  fi
  if ! is_local "$host"; then
    echo "$name does not answer at $host:$port (not this machine, so not starting it); start it there or fix the URL" >&2
    return 1
  fi
  started="" why=""
  if ! "$starter"; then
    echo "$name does not answer at $host:$port and was not started here: $why; $how" >&2
    return 1
  fi
  if ! wait_for "$name" "$probe"; then
    echo "$name does not answer at $host:$port ${wait_seconds}s after launching $started; check its log, or start it with: $how" >&2
    return 1
  fi
  echo "services: started $started, answering at $host:$port" >&2
}

pg_how="start it with: apt-get install -y postgresql && pg_ctlcluster --skip-systemctl-redirect \$(ls /etc/postgresql) main start (or set DATABASE_URL)"
redis_how="start it with: apt-get install -y redis-server && redis-server --daemonize yes --port $redis_port (or set REDIS_URL)"

status=0
ensure_one PostgreSQL "$pg_host" "$pg_port" postgres_answers start_postgres "$pg_how" || status=1
ensure_one Redis "$redis_host" "$redis_port" redis_answers start_redis "$redis_how" || status=1
exit "$status"
