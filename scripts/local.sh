#!/usr/bin/env bash
# `npm run local`: local Kafka and Redis, a fresh build, the service with a development token,
# the sample tasks loaded through Kafka, and a ready curl line. Ctrl-C stops the service;
# `npm run infra:down` stops Kafka and Redis. The service's output is also kept in
# .local/logs/service.log (tee -i: Ctrl-C must not cut the log while the service shuts down).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

command -v curl >/dev/null 2>&1 || { echo "[local] 'curl' is not installed; it is needed to wait for the service and to read a task" >&2; exit 1; }

PORT="${PORT:-3000}"
TOPIC="${KAFKA_TOPIC:-task-updates}"
SEED_TASK_ID="$(node -e "process.stdout.write(JSON.parse(require('fs').readFileSync('scripts/samples/seed-task.json','utf8')).taskId)")"

[ -d node_modules ] || npm ci --no-audit --no-fund
bash scripts/infra.sh up
# shellcheck disable=SC1091
set -a; . .local/infra.env; set +a
npm run --silent build

if curl -s -o /dev/null "http://127.0.0.1:$PORT/"; then
  echo "[local] port $PORT is already in use; set PORT to another port" >&2
  exit 1
fi

TOKEN="dev-$(node -e "process.stdout.write(require('crypto').randomBytes(24).toString('hex'))")"
mkdir -p .local/logs
PORT="$PORT" KAFKA_TOPIC="$TOPIC" AUTH_TOKENS="$TOKEN" node dist/main.js > >(tee -i -a .local/logs/service.log) 2>&1 &
SERVICE_PID=$!
trap 'kill -TERM $SERVICE_PID 2>/dev/null; wait $SERVICE_PID 2>/dev/null; echo "[local] service stopped; npm run infra:down stops Kafka and Redis"' EXIT
trap 'exit 0' INT TERM

deadline=$((SECONDS + 60))
until curl -s -o /dev/null "http://127.0.0.1:$PORT/tasks/ping"; do
  kill -0 $SERVICE_PID 2>/dev/null || { echo "[local] the service exited; see .local/logs/service.log" >&2; exit 1; }
  [ $SECONDS -lt $deadline ] || { echo "[local] the service did not answer within 60s" >&2; exit 1; }
  sleep 0.2
done

node scripts/produce-samples.mjs "$KAFKA_BROKERS" "$TOPIC"

URL="http://127.0.0.1:$PORT/api/tasks/$SEED_TASK_ID"
deadline=$((SECONDS + 60))
until [ "$(curl -s -o /dev/null -w '%{http_code}' -H "X-Authorization: $TOKEN" "$URL")" = 200 ]; do
  [ $SECONDS -lt $deadline ] || { echo "[local] the seed task did not become readable within 60s; see .local/logs/service.log" >&2; exit 1; }
  sleep 0.2
done

cat <<MSG

task-cache is running on port $PORT with the sample tasks loaded.
Development token (shown once): $TOKEN

  curl -s -H 'X-Authorization: $TOKEN' $URL

Press Ctrl-C to stop the service. Kafka and Redis keep running; 'npm run infra:down' stops them.
MSG
wait $SERVICE_PID
