#!/usr/bin/env bash
# Local infrastructure for task-cache: a single-node KRaft Apache Kafka broker on the JDK
# (assembled from Maven Central) and a redis-server of its own. State lives under .local/.
#
#   scripts/infra.sh up      start (or reuse) both, wait until ready, write .local/infra.env
#   scripts/infra.sh down    stop exactly what `up` started, by pid
#   scripts/infra.sh status  say what is running
#
# Ports: TC_KAFKA_PORT (19092), TC_KAFKA_CONTROLLER_PORT (19093), TC_REDIS_PORT (16379).
# Readiness timeout: TC_INFRA_TIMEOUT_S (120).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LOCAL="$ROOT/.local"
RUN="$LOCAL/run"
LOGS="$LOCAL/logs"
KAFKA_HOME="$LOCAL/kafka"
KAFKA_DATA="$LOCAL/data/kafka"
REDIS_DATA="$LOCAL/data/redis"
KAFKA_PORT="${TC_KAFKA_PORT:-19092}"
CONTROLLER_PORT="${TC_KAFKA_CONTROLLER_PORT:-19093}"
REDIS_PORT="${TC_REDIS_PORT:-16379}"
TIMEOUT_S="${TC_INFRA_TIMEOUT_S:-120}"
KAFKA_HEAP="${TC_KAFKA_HEAP:--Xms256m -Xmx512m}"

log() { printf '[infra] %s\n' "$*" >&2; }
die() { printf '[infra] error: %s\n' "$*" >&2; exit 1; }

require() {
  command -v "$1" >/dev/null 2>&1 ||
    die "'$1' is not installed. Install it ($2), or run the stack with 'docker compose up' instead."
}

# True if the pid file names a running process that is ours: a pid file left behind by a crash or a
# reboot may name an unrelated process that reused the pid, which must be neither reused nor killed.
alive() {
  local file="$1" pid args
  [ -f "$file" ] || return 1
  pid="$(cat "$file")"
  args="$(ps -o args= -p "$pid" 2>/dev/null)" || return 1
  case "$(basename "$file")" in
    kafka.pid) [[ "$args" == *"$KAFKA_HOME/server.properties"* ]] ;;
    redis.pid) [[ "$args" == *redis-server*":$REDIS_PORT"* ]] ;;
    *) return 1 ;;
  esac
}

kafka_version() { sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$ROOT/scripts/kafka/pom.xml"; }

# Fetch the broker's jars through Maven into .local/kafka/libs. Maven's cache (~/.m2) makes later runs offline.
fetch_kafka() {
  local stamp="$KAFKA_HOME/libs/.pom.sha"
  local want
  want="$(sha256sum "$ROOT/scripts/kafka/pom.xml" | cut -d' ' -f1)"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then return; fi
  log "fetching Apache Kafka $(kafka_version) from Maven Central (cached in ~/.m2 for next time)"
  rm -rf "$KAFKA_HOME/libs"
  mvn -q -B -f "$ROOT/scripts/kafka/pom.xml" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$KAFKA_HOME/libs" >"$LOGS/maven.log" 2>&1 ||
    die "Maven could not fetch Kafka; see $LOGS/maven.log"
  echo "$want" >"$stamp"
}

# shellcheck disable=SC2206 # TC_KAFKA_HEAP holds several JVM flags
KAFKA_JAVA=(java $KAFKA_HEAP -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true
  -Dkafka.logs.dir="$LOGS" -Dlog4j2.configurationFile="$ROOT/scripts/kafka/log4j2.properties"
  -cp "$KAFKA_HOME/libs/*")
kafka_java() { "${KAFKA_JAVA[@]}" "$@"; }

start_kafka() {
  if alive "$RUN/kafka.pid"; then log "kafka already running (pid $(cat "$RUN/kafka.pid"))"; return; fi
  rm -f "$RUN/kafka.pid"
  fetch_kafka
  sed -e "s#@KAFKA_PORT@#$KAFKA_PORT#g" -e "s#@CONTROLLER_PORT@#$CONTROLLER_PORT#g" -e "s#@DATA_DIR@#$KAFKA_DATA#g" \
    "$ROOT/scripts/kafka/server.properties.template" >"$KAFKA_HOME/server.properties"
  if [ ! -f "$KAFKA_DATA/meta.properties" ]; then
    local cluster_id
    cluster_id="$(kafka_java kafka.tools.StorageTool random-uuid 2>>"$LOGS/kafka-format.log" | tail -n 1)" || cluster_id=""
    [ -n "$cluster_id" ] || die "the JDK could not run Kafka's StorageTool (Kafka 4 needs JDK 17+); see $LOGS/kafka-format.log"
    kafka_java kafka.tools.StorageTool format -t "$cluster_id" -c "$KAFKA_HOME/server.properties" \
      >>"$LOGS/kafka-format.log" 2>&1 || die "formatting Kafka storage failed; see $LOGS/kafka-format.log"
  fi
  # setsid: the broker outlives the shell (and test runner) that started it; `down` stops it by pid.
  # A background job is no group leader, so setsid execs in place and $! is the JVM's own pid.
  setsid "${KAFKA_JAVA[@]}" kafka.Kafka "$KAFKA_HOME/server.properties" >"$LOGS/kafka.out" 2>&1 </dev/null &
  echo $! >"$RUN/kafka.pid"
  log "kafka starting (pid $!, port $KAFKA_PORT)"
}

start_redis() {
  if alive "$RUN/redis.pid"; then log "redis already running (pid $(cat "$RUN/redis.pid"))"; return; fi
  rm -f "$RUN/redis.pid"
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$REDIS_DATA" \
    --appendonly yes --appendfsync everysec --save "" \
    --daemonize yes --pidfile "$RUN/redis.pid" --logfile "$LOGS/redis.log" >/dev/null
  local deadline=$((SECONDS + 10))
  until [ -s "$RUN/redis.pid" ]; do
    [ $SECONDS -lt $deadline ] || die "redis-server did not write its pid; see $LOGS/redis.log"
    sleep 0.1
  done
  log "redis starting (pid $(cat "$RUN/redis.pid"), port $REDIS_PORT)"
}

wait_ready() {
  local deadline=$((SECONDS + TIMEOUT_S))
  until [ "$(redis-cli -p "$REDIS_PORT" ping 2>/dev/null)" = "PONG" ]; do
    alive "$RUN/redis.pid" || die "redis-server exited; see $LOGS/redis.log"
    [ $SECONDS -lt $deadline ] || die "redis did not answer PING within ${TIMEOUT_S}s; see $LOGS/redis.log"
    sleep 0.2
  done
  # A metadata request answered by the broker is the readiness signal.
  until node "$ROOT/scripts/probe-kafka.js" "127.0.0.1:$KAFKA_PORT" >/dev/null 2>&1; do
    alive "$RUN/kafka.pid" || die "kafka exited; see $LOGS/kafka.log and $LOGS/kafka.out"
    [ $SECONDS -lt $deadline ] || die "kafka did not answer a metadata request within ${TIMEOUT_S}s; see $LOGS/kafka.log"
    sleep 0.5
  done
}

stop_pid() {
  local name="$1" file="$RUN/$1.pid"
  if ! alive "$file"; then rm -f "$file"; return; fi
  local pid
  pid="$(cat "$file")"
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + 30))
  while kill -0 "$pid" 2>/dev/null; do
    if [ $SECONDS -ge $deadline ]; then
      log "$name (pid $pid) did not stop in 30s; killing it"
      kill -KILL "$pid" 2>/dev/null || true
    fi
    sleep 0.2
  done
  rm -f "$file"
  log "$name stopped (pid $pid)"
}

write_env() {
  cat >"$LOCAL/infra.env" <<EOF
KAFKA_BROKERS=127.0.0.1:$KAFKA_PORT
REDIS_URL=redis://127.0.0.1:$REDIS_PORT
EOF
}

up() {
  require java "JDK 17 or newer"
  require mvn "Apache Maven"
  require redis-server "Redis 7"
  require redis-cli "Redis 7"
  require node "Node.js 20 or newer"
  [ -d "$ROOT/node_modules/kafkajs" ] || die "node_modules is missing; run 'npm ci' first"
  mkdir -p "$RUN" "$LOGS" "$KAFKA_HOME" "$KAFKA_DATA" "$REDIS_DATA"
  local t0=$SECONDS
  start_redis
  start_kafka
  wait_ready
  write_env
  log "ready in $((SECONDS - t0))s: kafka 127.0.0.1:$KAFKA_PORT, redis 127.0.0.1:$REDIS_PORT (settings in .local/infra.env)"
}

down() {
  stop_pid kafka
  stop_pid redis
  rm -f "$LOCAL/infra.env"
}

status() {
  local name
  for name in kafka redis; do
    if alive "$RUN/$name.pid"; then echo "$name: running (pid $(cat "$RUN/$name.pid"))"; else echo "$name: stopped"; fi
  done
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
