#!/usr/bin/env bash
# Local infrastructure for task-cache: a single-node KRaft Apache Kafka broker on the JDK
# (assembled from Maven Central) and a redis-server of its own. State lives under .local/.
#
#   scripts/infra.sh up               start (or reuse) both, wait until ready, write .local/infra.env
#   scripts/infra.sh down [SERVICE…]  stop what `up` started (kafka, redis, or both), by pid
#   scripts/infra.sh status           say what is running
#
# Ports: TC_KAFKA_PORT (19092), TC_KAFKA_CONTROLLER_PORT (19093), TC_REDIS_PORT (16379). `up` fails at
# once, naming the port, the process holding it and the variable that moves it, when a port it needs
# is taken by anything but the services it started itself (another copy's stack, say).
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

# The process listening on TCP port $1, as "name (pid N)"; "unknown process" when neither ss
# (iproute2) nor lsof can tell, e.g. a process of another user seen without root. Empty when free.
listener() {
  local port="$1" line pid name
  if command -v ss >/dev/null 2>&1; then
    line="$(ss -H -ltnp "sport = :$port" 2>/dev/null | head -n 1)"
    [ -n "$line" ] || return 0
    pid="$(grep -o 'pid=[0-9]*' <<<"$line" | head -n 1 | cut -d= -f2)" || true
    name="$(sed -n 's/.*users:(("\([^"]*\)".*/\1/p' <<<"$line")"
  elif command -v lsof >/dev/null 2>&1; then
    line="$(lsof -nP -iTCP:"$port" -sTCP:LISTEN -Fpc 2>/dev/null)" || true
    pid="$(sed -n 's/^p//p' <<<"$line" | head -n 1)"
    name="$(sed -n 's/^c//p' <<<"$line" | head -n 1)"
    if [ -z "$pid" ]; then
      # lsof sees only this user's processes without root: ask the port itself.
      (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || return 0
    fi
  else
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || return 0
  fi
  if [ -n "$pid" ]; then
    echo "${name:-$(ps -o comm= -p "$pid" 2>/dev/null || echo process)} (pid $pid)"
  else
    echo "an unknown process (neither ss nor lsof could name it)"
  fi
}

# The pid listening on TCP port $1 when ss or lsof can tell, else empty.
listener_pid() {
  if command -v ss >/dev/null 2>&1; then
    ss -H -ltnp "sport = :$1" 2>/dev/null | grep -o 'pid=[0-9]*' | head -n 1 | cut -d= -f2 || true
  elif command -v lsof >/dev/null 2>&1; then
    lsof -nP -iTCP:"$1" -sTCP:LISTEN -Fp 2>/dev/null | sed -n 's/^p//p' | head -n 1 || true
  fi
}

# Fails at once when a port `up` is about to start a service on is taken: bind errors would
# otherwise surface late and vaguely (redis-server exits before writing its pid, the broker dies
# in its log), and readiness checks might even be answered by the foreign listener.
require_free_port() {
  local port="$1" variable="$2" service="$3" holder
  holder="$(listener "$port")"
  [ -z "$holder" ] && return 0
  die "port $port, which $service needs, is already in use by $holder; another copy's stack, perhaps." \
    "Stop that process, or move $service to a free port with $variable (e.g. $variable=$((port + 1000)) scripts/infra.sh up)." \
    "Use the same variables for every infra.sh command and for npm test."
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
    [ $SECONDS -lt $deadline ] || die "redis-server did not write its pid (port $REDIS_PORT, TC_REDIS_PORT); see $LOGS/redis.log"
    sleep 0.1
  done
  log "redis starting (pid $(cat "$RUN/redis.pid"), port $REDIS_PORT)"
}

# The cluster id this checkout's broker was formatted with (.local/data/kafka/meta.properties).
kafka_cluster_id() { sed -n 's/^cluster.id=//p' "$KAFKA_DATA/meta.properties" 2>/dev/null; }

# True when the redis-server answering on REDIS_PORT is the one in redis.pid: INFO names its pid.
redis_is_ours() {
  local pid
  pid="$(redis-cli -p "$REDIS_PORT" info server 2>/dev/null | tr -d '\r' | sed -n 's/^process_id://p')"
  [ -n "$pid" ] && [ "$pid" = "$(cat "$RUN/redis.pid" 2>/dev/null)" ]
}

# Fails at once when a process other than the one in $1.pid listens on the port: the port clash
# message, rather than waiting out the timeout for a service that cannot bind.
require_ours() {
  local name="$1" port="$2" variable="$3" pid
  pid="$(listener_pid "$port")"
  [ -z "$pid" ] || [ "$pid" = "$(cat "$RUN/$name.pid" 2>/dev/null)" ] || require_free_port "$port" "$variable" "$name"
}

# Readiness is answered by the processes this script started, never by another listener on the port.
wait_ready() {
  local deadline=$((SECONDS + TIMEOUT_S))
  # Redis: PING is not enough, any redis-server answers it; INFO must name the pid in redis.pid.
  until redis_is_ours; do
    require_ours redis "$REDIS_PORT" TC_REDIS_PORT
    alive "$RUN/redis.pid" || die "redis-server exited; see $LOGS/redis.log"
    [ $SECONDS -lt $deadline ] || die "redis (pid $(cat "$RUN/redis.pid")) did not answer on port $REDIS_PORT within ${TIMEOUT_S}s; see $LOGS/redis.log"
    sleep 0.2
  done
  # Kafka: scripts/probe-kafka.js asks for the cluster's metadata, which must carry the cluster id
  # this checkout formatted its storage with (another copy's broker has its own), then asks the
  # group coordinator to describe a group: a fresh broker answers metadata before it has created
  # and loaded __consumer_offsets, and consumers cannot join until the coordinator serves requests.
  local cluster_id
  cluster_id="$(kafka_cluster_id)"
  until node "$ROOT/scripts/probe-kafka.js" "127.0.0.1:$KAFKA_PORT" "$cluster_id" >/dev/null 2>&1; do
    require_ours kafka "$KAFKA_PORT" TC_KAFKA_PORT
    alive "$RUN/kafka.pid" || die "kafka exited; see $LOGS/kafka.log and $LOGS/kafka.out"
    [ $SECONDS -lt $deadline ] ||
      die "kafka (pid $(cat "$RUN/kafka.pid")) did not serve metadata and group-coordinator requests on port $KAFKA_PORT within ${TIMEOUT_S}s; see $LOGS/kafka.log"
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
  # Every port first, so that a clash starts nothing.
  alive "$RUN/redis.pid" || require_free_port "$REDIS_PORT" TC_REDIS_PORT redis
  if ! alive "$RUN/kafka.pid"; then
    require_free_port "$KAFKA_PORT" TC_KAFKA_PORT kafka
    require_free_port "$CONTROLLER_PORT" TC_KAFKA_CONTROLLER_PORT "kafka's controller"
  fi
  start_redis
  start_kafka
  wait_ready
  write_env
  log "ready in $((SECONDS - t0))s: kafka 127.0.0.1:$KAFKA_PORT, redis 127.0.0.1:$REDIS_PORT (settings in .local/infra.env)"
}

# Stops the named services (default: both). infra.env goes once neither is running.
down() {
  local name
  [ $# -gt 0 ] || set -- kafka redis
  for name in "$@"; do
    case "$name" in
      kafka | redis) stop_pid "$name" ;;
      *) die "unknown service '$name' (kafka or redis)" ;;
    esac
  done
  alive "$RUN/kafka.pid" || alive "$RUN/redis.pid" || rm -f "$LOCAL/infra.env"
}

status() {
  local name
  for name in kafka redis; do
    if alive "$RUN/$name.pid"; then echo "$name: running (pid $(cat "$RUN/$name.pid"))"; else echo "$name: stopped"; fi
  done
}

case "${1:-}" in
  up) up ;;
  down) shift; down "$@" ;;
  status) status ;;
  *) echo "usage: $0 up | down [kafka|redis]... | status" >&2; exit 2 ;;
esac
