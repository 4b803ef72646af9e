#!/usr/bin/env bash
# Local infrastructure for task-cache: a single-node KRaft Apache Kafka broker on the JDK
# (assembled from Maven Central), a redis-server of its own and, on request, a Redis Cluster of six
# redis-servers (3 masters, 3 replicas). State lives under .local/.
#
#   scripts/infra.sh up [SERVICE…]    start (or reuse) kafka and redis, or the services named
#                                     (kafka, redis, redis-cluster), wait until ready, write .local/infra.env
#   scripts/infra.sh down [SERVICE…]  stop what `up` started (default: all of it), by pid
#   scripts/infra.sh status           say what is running
#
# Ports: TC_KAFKA_PORT (19092), TC_KAFKA_CONTROLLER_PORT (19093), TC_REDIS_PORT (16379),
# TC_REDIS_CLUSTER_PORT (17000: the cluster's nodes take it and the five ports after it, and their
# cluster bus the same ports + 10000). `up` fails at once, naming the port, the process holding it
# and the variable that moves it, when a port it needs is taken by anything but the services it
# started itself (another copy's stack, say). Readiness timeout: TC_INFRA_TIMEOUT_S (120).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LOCAL="$ROOT/.local"
RUN="$LOCAL/run"
LOGS="$LOCAL/logs"
KAFKA_HOME="$LOCAL/kafka"
KAFKA_DATA="$LOCAL/data/kafka"
REDIS_DATA="$LOCAL/data/redis"
CLUSTER_DATA="$LOCAL/data/redis-cluster"
KAFKA_PORT="${TC_KAFKA_PORT:-19092}"
CONTROLLER_PORT="${TC_KAFKA_CONTROLLER_PORT:-19093}"
REDIS_PORT="${TC_REDIS_PORT:-16379}"
CLUSTER_PORT="${TC_REDIS_CLUSTER_PORT:-17000}"
[[ "$CLUSTER_PORT" =~ ^[0-9]{1,5}$ ]] || { echo "[infra] error: TC_REDIS_CLUSTER_PORT must be a port number" >&2; exit 1; }
CLUSTER_PORTS=()
for ((node = 0; node < 6; node++)); do CLUSTER_PORTS+=($((CLUSTER_PORT + node))); done
# A node unreachable this long is failed over to its replica. Redis's default is 15 s; docker-compose.yml uses the same.
CLUSTER_NODE_TIMEOUT_MS=3000
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
    redis-cluster-*.pid) local port="${file##*-}"; port="${port%.pid}"; [[ "$args" == *redis-server*":$port "*"[cluster]"* ]] ;;
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

# Starts redis-server as NAME on PORT (a pid file NAME.pid, a log NAME.log) with the given extra
# settings, unless it runs already; the persistence settings are the same for every Redis.
start_redis_server() {
  local name="$1" port="$2" variable="$3" dir="$4"
  shift 4
  if alive "$RUN/$name.pid"; then log "$name already running (pid $(cat "$RUN/$name.pid"))"; return; fi
  rm -f "$RUN/$name.pid"
  mkdir -p "$dir"
  redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" \
    --appendonly yes --appendfsync everysec --save "" "$@" \
    --daemonize yes --pidfile "$RUN/$name.pid" --logfile "$LOGS/$name.log" >/dev/null
  local deadline=$((SECONDS + 10))
  until [ -s "$RUN/$name.pid" ]; do
    [ $SECONDS -lt $deadline ] || die "redis-server did not write its pid (port $port, $variable); see $LOGS/$name.log"
    sleep 0.1
  done
  log "$name starting (pid $(cat "$RUN/$name.pid"), port $port)"
}

start_redis() { start_redis_server redis "$REDIS_PORT" TC_REDIS_PORT "$REDIS_DATA"; }

# Six cluster-enabled nodes, one directory each (its nodes.conf remembers the cluster across restarts).
# A replica's first sync starts at once, not after Redis's default 5 s wait for more replicas.
start_redis_cluster() {
  local port
  for port in "${CLUSTER_PORTS[@]}"; do
    start_redis_server "redis-cluster-$port" "$port" TC_REDIS_CLUSTER_PORT "$CLUSTER_DATA/$port" \
      --cluster-enabled yes --cluster-config-file nodes.conf --cluster-node-timeout "$CLUSTER_NODE_TIMEOUT_MS" \
      --repl-diskless-sync-delay 0
  done
}

# The cluster id this checkout's broker was formatted with (.local/data/kafka/meta.properties).
kafka_cluster_id() { sed -n 's/^cluster.id=//p' "$KAFKA_DATA/meta.properties" 2>/dev/null; }

# One field of a redis-server's INFO or CLUSTER INFO: redis_field PORT FIELD COMMAND…
redis_field() {
  local port="$1" field="$2"
  shift 2
  redis-cli -p "$port" "$@" 2>/dev/null | tr -d '\r' | sed -n "s/^$field://p"
}

# True when the redis-server answering on PORT is the one in NAME.pid: INFO names its pid.
redis_is_ours() {
  local name="$1" port="$2" pid
  pid="$(redis_field "$port" process_id info server)"
  [ -n "$pid" ] && [ "$pid" = "$(cat "$RUN/$name.pid" 2>/dev/null)" ]
}

# Fails at once when a process other than the one in $1.pid listens on the port: the port clash
# message, rather than waiting out the timeout for a service that cannot bind.
require_ours() {
  local name="$1" port="$2" variable="$3" pid
  pid="$(listener_pid "$port")"
  [ -z "$pid" ] || [ "$pid" = "$(cat "$RUN/$name.pid" 2>/dev/null)" ] || require_free_port "$port" "$variable" "$name"
}

# Readiness is answered by the processes this script started, never by another listener on the port.
# Redis: PING is not enough, any redis-server answers it; INFO must name the pid in NAME.pid.
wait_redis_server() {
  local name="$1" port="$2" variable="$3" deadline=$((SECONDS + TIMEOUT_S))
  until redis_is_ours "$name" "$port"; do
    require_ours "$name" "$port" "$variable"
    alive "$RUN/$name.pid" || die "redis-server $name exited; see $LOGS/$name.log"
    [ $SECONDS -lt $deadline ] || die "$name (pid $(cat "$RUN/$name.pid")) did not answer on port $port within ${TIMEOUT_S}s; see $LOGS/$name.log"
    sleep 0.2
  done
}

wait_redis() { wait_redis_server redis "$REDIS_PORT" TC_REDIS_PORT; }

# The cluster is ready when every node is ours, every node sees all six nodes and all 16384 slots
# served (cluster_state:ok), and every replica is in sync with its master (so a master may fail).
# A cluster that was never formed is formed here: redis-cli --cluster create, one replica per master.
wait_redis_cluster() {
  local port deadline=$((SECONDS + TIMEOUT_S))
  for port in "${CLUSTER_PORTS[@]}"; do wait_redis_server "redis-cluster-$port" "$port" TC_REDIS_CLUSTER_PORT; done
  if [ "$(redis_field "$CLUSTER_PORT" cluster_slots_assigned cluster info)" = 0 ]; then
    for port in "${CLUSTER_PORTS[@]}"; do
      [ "$(redis_field "$port" cluster_known_nodes cluster info)" = 1 ] ||
        die "the cluster under $CLUSTER_DATA is half-formed (node $port knows other nodes but no slot is assigned); stop it with 'scripts/infra.sh down redis-cluster' and remove $CLUSTER_DATA to start over"
    done
    local nodes=()
    for port in "${CLUSTER_PORTS[@]}"; do nodes+=("127.0.0.1:$port"); done
    redis-cli --cluster create "${nodes[@]}" --cluster-replicas 1 --cluster-yes >"$LOGS/redis-cluster-create.log" 2>&1 ||
      die "redis-cli --cluster create failed; see $LOGS/redis-cluster-create.log"
    log "redis-cluster formed: 3 masters, 3 replicas (ports ${CLUSTER_PORTS[0]}-${CLUSTER_PORTS[5]})"
  fi
  until cluster_is_ready; do
    for port in "${CLUSTER_PORTS[@]}"; do
      alive "$RUN/redis-cluster-$port.pid" || die "redis-server redis-cluster-$port exited; see $LOGS/redis-cluster-$port.log"
    done
    [ $SECONDS -lt $deadline ] || die "the redis cluster on ports ${CLUSTER_PORTS[0]}-${CLUSTER_PORTS[5]} was not ready (cluster_state:ok on every node, replicas in sync) within ${TIMEOUT_S}s; see $LOGS/redis-cluster-*.log"
    sleep 0.2
  done
}

cluster_is_ready() {
  local port masters=0
  for port in "${CLUSTER_PORTS[@]}"; do
    [ "$(redis_field "$port" cluster_state cluster info)" = ok ] || return 1
    [ "$(redis_field "$port" cluster_known_nodes cluster info)" = 6 ] || return 1
    case "$(redis_field "$port" role info replication)" in
      master) masters=$((masters + 1)) ;;
      slave) [ "$(redis_field "$port" master_link_status info replication)" = up ] || return 1 ;;
      *) return 1 ;;
    esac
  done
  [ "$masters" = 3 ]
}

wait_kafka() {
  local deadline=$((SECONDS + TIMEOUT_S))
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

# Stops the named services (their NAME.pid) together: all are signalled, then each is awaited
# (a cluster's masters would otherwise wait for replicas still being stopped one by one).
stop_pids() {
  local name pid pids=() names=()
  for name in "$@"; do
    if alive "$RUN/$name.pid"; then
      pid="$(cat "$RUN/$name.pid")"
      kill -TERM "$pid" 2>/dev/null || true
      pids+=("$pid")
      names+=("$name")
    else
      rm -f "$RUN/$name.pid"
    fi
  done
  local deadline=$((SECONDS + 30)) index
  for index in "${!pids[@]}"; do
    name="${names[$index]}"
    pid="${pids[$index]}"
    while kill -0 "$pid" 2>/dev/null; do
      if [ $SECONDS -ge $deadline ]; then
        log "$name (pid $pid) did not stop in 30s; killing it"
        kill -KILL "$pid" 2>/dev/null || true
      fi
      sleep 0.1
    done
    rm -f "$RUN/$name.pid"
    log "$name stopped (pid $pid)"
  done
}

# The settings of what is running; no file once nothing is.
write_env() {
  local lines=() nodes
  alive "$RUN/kafka.pid" && lines+=("KAFKA_BROKERS=127.0.0.1:$KAFKA_PORT")
  alive "$RUN/redis.pid" && lines+=("REDIS_URL=redis://127.0.0.1:$REDIS_PORT")
  if cluster_alive; then
    nodes="$(printf '127.0.0.1:%s,' "${CLUSTER_PORTS[@]}")"
    lines+=("REDIS_CLUSTER_NODES=${nodes%,}")
  fi
  if [ ${#lines[@]} -eq 0 ]; then rm -f "$LOCAL/infra.env"; else printf '%s\n' "${lines[@]}" >"$LOCAL/infra.env"; fi
}

# True when every node of the cluster runs.
cluster_alive() {
  local port
  for port in "${CLUSTER_PORTS[@]}"; do alive "$RUN/redis-cluster-$port.pid" || return 1; done
}

SERVICES="kafka, redis or redis-cluster"
wants() { [[ " $WANTED " == *" $1 "* ]]; }

# Starts the named services (default: kafka and redis) and waits until each is ready.
up() {
  local name port
  [ $# -gt 0 ] || set -- kafka redis
  for name in "$@"; do
    case "$name" in kafka | redis | redis-cluster) ;; *) die "unknown service '$name' ($SERVICES)" ;; esac
  done
  WANTED="$*"
  if wants kafka; then
    require java "JDK 17 or newer"
    require mvn "Apache Maven"
  fi
  require redis-server "Redis 7"
  require redis-cli "Redis 7"
  require node "Node.js 20 or newer"
  [ -d "$ROOT/node_modules/kafkajs" ] || die "node_modules is missing; run 'npm ci' first"
  mkdir -p "$RUN" "$LOGS" "$KAFKA_HOME" "$KAFKA_DATA" "$REDIS_DATA"
  local t0=$SECONDS
  # Every port first, so that a clash starts nothing.
  if wants redis; then alive "$RUN/redis.pid" || require_free_port "$REDIS_PORT" TC_REDIS_PORT redis; fi
  if wants redis-cluster; then
    [[ "$CLUSTER_PORT" =~ ^[0-9]+$ ]] && [ "$CLUSTER_PORT" -ge 1024 ] && [ "$CLUSTER_PORT" -le 55530 ] ||
      die "TC_REDIS_CLUSTER_PORT must be a port from 1024 to 55530 (six ports from it, and each + 10000 for the cluster bus)"
    for port in "${CLUSTER_PORTS[@]}"; do
      alive "$RUN/redis-cluster-$port.pid" && continue
      require_free_port "$port" TC_REDIS_CLUSTER_PORT redis-cluster
      require_free_port $((port + 10000)) TC_REDIS_CLUSTER_PORT "redis-cluster's bus"
    done
  fi
  if wants kafka && ! alive "$RUN/kafka.pid"; then
    require_free_port "$KAFKA_PORT" TC_KAFKA_PORT kafka
    require_free_port "$CONTROLLER_PORT" TC_KAFKA_CONTROLLER_PORT "kafka's controller"
  fi
  local ready=() joined
  if wants redis; then start_redis; fi
  if wants redis-cluster; then start_redis_cluster; fi
  if wants kafka; then start_kafka; fi
  if wants redis; then wait_redis; ready+=("redis 127.0.0.1:$REDIS_PORT"); fi
  if wants redis-cluster; then wait_redis_cluster; ready+=("redis-cluster 127.0.0.1:${CLUSTER_PORTS[0]}-${CLUSTER_PORTS[5]}"); fi
  if wants kafka; then wait_kafka; ready+=("kafka 127.0.0.1:$KAFKA_PORT"); fi
  write_env
  joined="$(printf '%s, ' "${ready[@]}")"
  log "ready in $((SECONDS - t0))s: ${joined%, } (settings in .local/infra.env)"
}

# Stops the named services (default: all of them). infra.env keeps the settings of what still runs.
down() {
  local name port
  [ $# -gt 0 ] || set -- kafka redis redis-cluster
  for name in "$@"; do
    case "$name" in
      kafka | redis) stop_pids "$name" ;;
      redis-cluster) stop_pids "${CLUSTER_PORTS[@]/#/redis-cluster-}" ;;
      *) die "unknown service '$name' ($SERVICES)" ;;
    esac
  done
  if [ -d "$LOCAL" ]; then write_env; fi
}

status() {
  local name port pids=()
  for name in kafka redis; do
    if alive "$RUN/$name.pid"; then echo "$name: running (pid $(cat "$RUN/$name.pid"))"; else echo "$name: stopped"; fi
  done
  for port in "${CLUSTER_PORTS[@]}"; do
    if alive "$RUN/redis-cluster-$port.pid"; then pids+=("$(cat "$RUN/redis-cluster-$port.pid")"); fi
  done
  case ${#pids[@]} in
    0) echo "redis-cluster: stopped" ;;
    6) echo "redis-cluster: running (pids ${pids[*]})" ;;
    *) echo "redis-cluster: partly running (pids ${pids[*]}); 'up redis-cluster' starts the rest" ;;
  esac
}

case "${1:-}" in
  up) shift; up "$@" ;;
  down) shift; down "$@" ;;
  status) status ;;
  *) echo "usage: $0 up [kafka|redis|redis-cluster]... | down [kafka|redis|redis-cluster]... | status" >&2; exit 2 ;;
esac
