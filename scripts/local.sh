#!/usr/bin/env bash
# `npm run local`: local Kafka and Redis, a fresh build, the service with a development token and
# its metrics on METRICS_PORT (9464), the sample tasks loaded through Kafka, and a ready curl line.
# Ctrl-C stops the service; `npm run infra:down` stops Kafka and Redis. The service's output is
# also kept in .local/logs/service.log (tee -i: Ctrl-C must not cut the log while the service
# shuts down).
# It logs as text for a person (LOG_FORMAT=pretty) unless LOG_FORMAT says otherwise.
#
# `npm run local -- --instances N` (or `npm run local:cluster`, N = 3): N instances on ports
# PORT+1 … PORT+N behind HAProxy on PORT, with deploy/haproxy/haproxy.cfg, the configuration
# docker-compose.yml uses. Each instance logs to .local/logs/service-<i>.log, HAProxy to
# .local/logs/haproxy.log; its pid is in .local/haproxy/haproxy.pid. HAProxy 2.6 must be installed
# (Debian/Ubuntu: apt-get install haproxy).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

INSTANCES=1
while [ $# -gt 0 ]; do
  case "$1" in
    --instances) INSTANCES="${2:-}"; shift 2 || true ;;
    --instances=*) INSTANCES="${1#--instances=}"; shift ;;
    *) echo "[local] unknown argument '$1'; usage: npm run local [-- --instances N]" >&2; exit 2 ;;
  esac
done
[[ "$INSTANCES" =~ ^[1-9][0-9]?$ ]] || { echo "[local] --instances takes a number from 1 to 99" >&2; exit 2; }

command -v curl >/dev/null 2>&1 || { echo "[local] 'curl' is not installed; it is needed to wait for the service and to read a task" >&2; exit 1; }
# The HAProxy docker-compose.yml runs (haproxy:2.6); Debian 12's package is 2.6 as well.
HAPROXY_VERSION=2.6
if [ "$INSTANCES" -gt 1 ]; then
  if ! command -v haproxy >/dev/null 2>&1; then
    echo "[local] 'haproxy' is not installed; --instances runs the instances behind HAProxy $HAPROXY_VERSION. Install it (Debian/Ubuntu: sudo apt-get install -y haproxy), or run 'docker compose up', which brings its own." >&2
    exit 1
  fi
  installed="$(haproxy -v | sed -n 's/^HAProxy version \([0-9]*\.[0-9]*\).*/\1/p' | head -n 1)"
  [ "$installed" = "$HAPROXY_VERSION" ] ||
    echo "[local] warning: haproxy $installed is installed; deploy/haproxy/haproxy.cfg is written and tested for $HAPROXY_VERSION" >&2
fi

PORT="${PORT:-3000}"
TOPIC="${KAFKA_TOPIC:-task-updates}"
SEED_TASK_ID="$(node -e "process.stdout.write(JSON.parse(require('fs').readFileSync('scripts/samples/seed-task.json','utf8')).taskId)")"

[ -d node_modules ] || npm ci --no-audit --no-fund
bash scripts/infra.sh up
# shellcheck disable=SC1091
set -a; . .local/infra.env; set +a
npm run --silent build

# One instance answers on PORT itself; several answer on the ports after it, behind HAProxy on PORT.
if [ "$INSTANCES" -eq 1 ]; then PORTS=("$PORT"); else PORTS=($(seq $((PORT + 1)) $((PORT + INSTANCES)))); fi
# Instance i serves /metrics on METRICS_PORT + i - 1.
METRICS_PORT="${METRICS_PORT:-9464}"
METRICS_PORTS=($(seq "$METRICS_PORT" $((METRICS_PORT + INSTANCES - 1))))
for port in "$PORT" "${PORTS[@]}" "${METRICS_PORTS[@]}"; do
  if curl -s -o /dev/null "http://127.0.0.1:$port/"; then
    echo "[local] port $port is already in use; set PORT (or METRICS_PORT) to another port" >&2
    exit 1
  fi
done

TOKEN="dev-$(node -e "process.stdout.write(require('crypto').randomBytes(24).toString('hex'))")"
mkdir -p .local/logs .local/haproxy
PIDS=()
stop_all() {
  [ ${#PIDS[@]} -eq 0 ] || kill -TERM "${PIDS[@]}" 2>/dev/null || true
  wait "${PIDS[@]}" 2>/dev/null || true
  rm -f .local/haproxy/haproxy.pid
  echo "[local] stopped; npm run infra:down stops Kafka and Redis"
}
trap stop_all EXIT
trap 'exit 0' INT TERM

for i in "${!PORTS[@]}"; do
  log=.local/logs/service.log
  [ "$INSTANCES" -eq 1 ] || log=".local/logs/service-$((i + 1)).log"
  PORT="${PORTS[$i]}" METRICS_PORT="${METRICS_PORTS[$i]}" KAFKA_TOPIC="$TOPIC" AUTH_TOKENS="$TOKEN" LOG_FORMAT="${LOG_FORMAT:-pretty}" node dist/main.js > >(tee -i -a "$log") 2>&1 &
  PIDS+=($!)
done

# Ready, as a load balancer sees it: /health/ready answers 200.
for i in "${!PORTS[@]}"; do
  deadline=$((SECONDS + 60))
  until [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:${PORTS[$i]}/health/ready")" = 200 ]; do
    kill -0 "${PIDS[$i]}" 2>/dev/null || { echo "[local] instance on port ${PORTS[$i]} exited; see .local/logs/" >&2; exit 1; }
    [ $SECONDS -lt $deadline ] || { echo "[local] instance on port ${PORTS[$i]} was not ready within 60s" >&2; exit 1; }
    sleep 0.2
  done
done

if [ "$INSTANCES" -gt 1 ]; then
  {
    echo "# Written by scripts/local.sh: the local instances, for deploy/haproxy/haproxy.cfg."
    echo "backend task_cache"
    for i in "${!PORTS[@]}"; do echo "  server tc$((i + 1)) 127.0.0.1:${PORTS[$i]}"; done
  } > .local/haproxy/servers.cfg
  TC_LB_BIND="127.0.0.1:$PORT" haproxy -db -f deploy/haproxy/haproxy.cfg -f .local/haproxy/servers.cfg \
    >> .local/logs/haproxy.log 2>&1 &
  PIDS+=($!)
  echo "$!" > .local/haproxy/haproxy.pid
  deadline=$((SECONDS + 10))
  until [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/health/ready")" = 200 ]; do
    kill -0 "${PIDS[-1]}" 2>/dev/null || { echo "[local] haproxy exited; see .local/logs/haproxy.log" >&2; exit 1; }
    [ $SECONDS -lt $deadline ] || { echo "[local] haproxy did not answer within 10s; see .local/logs/haproxy.log" >&2; exit 1; }
    sleep 0.2
  done
fi

node scripts/produce-samples.mjs "$KAFKA_BROKERS" "$TOPIC"

URL="http://127.0.0.1:$PORT/api/tasks/$SEED_TASK_ID"
deadline=$((SECONDS + 60))
until [ "$(curl -s -o /dev/null -w '%{http_code}' -H "X-Authorization: $TOKEN" "$URL")" = 200 ]; do
  [ $SECONDS -lt $deadline ] || { echo "[local] the seed task did not become readable within 60s; see .local/logs/" >&2; exit 1; }
  sleep 0.2
done

if [ "$INSTANCES" -eq 1 ]; then
  WHAT="task-cache is running on port $PORT"
  METRICS_WHERE="on port ${METRICS_PORTS[0]}"
else
  WHAT="$INSTANCES task-cache instances (ports ${PORTS[0]}-${PORTS[-1]}) are running behind HAProxy on port $PORT"
  METRICS_WHERE="per instance on ports ${METRICS_PORTS[0]}-${METRICS_PORTS[-1]}"
fi
cat <<MSG

$WHAT with the sample tasks loaded.
Development token (shown once): $TOKEN

  curl -s -H 'X-Authorization: $TOKEN' $URL

Metrics (Prometheus), $METRICS_WHERE:

  curl -s http://127.0.0.1:${METRICS_PORTS[0]}/metrics | grep '^taskcache_'

Press Ctrl-C to stop. Kafka and Redis keep running; 'npm run infra:down' stops them.
MSG
wait "${PIDS[@]}"
