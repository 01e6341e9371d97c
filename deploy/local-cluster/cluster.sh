#!/usr/bin/env bash
# A whole kiln cluster on loopback, its state under one directory:
# 3 nats-servers (a JetStream cluster), 2 cores (log and consoles with 3
# replicas), 3 gateways behind HAProxy and 2 workers (which talk to the gateways
# directly).
#
#   cluster.sh start DIR          last line: KILN_URL=http://127.0.0.1:PORT (the load
#                                 balancer); the admin token is in DIR/admin.token
#   cluster.sh status DIR         every process, and each gateway's /readyz
#   cluster.sh roll-gateways DIR  SIGTERM each gateway in turn, start it again, wait for it
#   cluster.sh balance DIR        the log's, consoles' and events' streams led by different
#                                 nats-servers (start does it; after a restart-nats, again)
#   cluster.sh leader DIR         N of the core that leads (runs the process managers
#                                 and the scheduler); exits 1 while none does
#   cluster.sh kill-core DIR N    SIGKILL core N (1 or 2)
#   cluster.sh restart-core DIR N
#   cluster.sh kill-nats DIR N    SIGKILL nats-server N (1 to 3)
#   cluster.sh restart-nats DIR N
#   cluster.sh stop DIR           SIGTERM everything, wait, SIGKILL what is left
#
# KILN (default: kiln on PATH) is the binary; KILN_EXECUTOR (default host) the workers';
# KILN_LOG_REPLICAS (default 3) the copies JetStream keeps of the log and consoles;
# KILN_WORKER_CONCURRENCY (default 2) the runs each worker takes at once; KILN_NATS_GOMAXPROCS
# (default 1) the threads each nats-server runs Go code on (three servers share this machine).
# `start` on a DIR that was stopped starts the same cluster again, state and ports kept.
#
set -euo pipefail

cmd=${1:-}
dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { sed -n '2,24p' "$0"; exit 2; }
KILN=${KILN:-kiln}
EXECUTOR=${KILN_EXECUTOR:-host}
REPLICAS=${KILN_LOG_REPLICAS:-3}
CONCURRENCY=${KILN_WORKER_CONCURRENCY:-2}
NATS_SERVER=${NATS_SERVER:-/usr/sbin/nats-server}
HAPROXY=${HAPROXY:-/usr/sbin/haproxy}
NATS_GOMAXPROCS=${KILN_NATS_GOMAXPROCS:-1}

pids=$dir/pids
logs=$dir/logs

die() { echo "cluster.sh: $*" >&2; exit 1; }

# A free loopback port, remembered under DIR/ports so that restarts reuse it.
port_of() {
  local name=$1 file=$dir/ports/$1
  if [ -f "$file" ]; then cat "$file"; return; fi
  mkdir -p "$dir/ports"
  local p
  for _ in $(seq 1 200); do
    p=$((20000 + RANDOM % 12000))  # below the ephemeral range
    if ! grep -qx "$p" "$dir"/ports/* 2>/dev/null && ! ss -Hltn "sport = :$p" | grep -q .; then
      echo "$p" > "$file"; echo "$p"; return
    fi
  done
  die "no free port for $name"
}

alive() { [ -f "$pids/$1" ] && kill -0 "$(cat "$pids/$1")" 2>/dev/null; }

# Whether core N leads: the last word on it in its log (a fresh log each start).
leads() {
  alive "core-$1" && grep -o "core leading=[a-z]*" "$logs/core-$1.log" 2>/dev/null | tail -n 1 | grep -q "=true"
}

# Starts `name` in the background with its output in logs/name.log.
spawn() {
  local name=$1; shift
  mkdir -p "$pids" "$logs"
  "$@" >> "$logs/$name.log" 2>&1 &
  echo $! > "$pids/$name"
}

# wait_up NAME SECONDS COMMAND...: until COMMAND succeeds; a process that
# exits meanwhile is told at once, with the end of its log.
wait_up() {
  local name=$1 seconds=$2; shift 2
  for _ in $(seq 1 $((seconds * 10))); do
    if "$@" > /dev/null 2>&1; then return 0; fi
    alive "$name" || die "$name exited: $(tail -n 3 "$logs/$name.log" 2>/dev/null | tr '\n' ' ')"
    sleep 0.1
  done
  die "$name did not come up in ${seconds}s (see $logs)"
}

# The log, the consoles and the events led by three different servers:
# JetStream elects at random, and two led by one server queue behind each
# other there (kiln balance; docs/performance.md). Not fatal: a cluster
# that cannot spread them still works.
balance() {
  "$KILN" balance --nats "$(nats_urls)" > "$logs/balance.log" 2>&1 \
    || echo "cluster.sh: kiln balance failed (see $logs/balance.log)" >&2
}

nats_urls() {
  local urls=()
  for n in 1 2 3; do urls+=("nats://127.0.0.1:$(port_of nats-$n)"); done
  local IFS=,; echo "${urls[*]}"
}

# Clustered JetStream listens for clients only once its routes are up:
# spawn the servers first (spawn_nats), then wait for each (wait_nats).
spawn_nats() {
  local n=$1 routes=()
  for m in 1 2 3; do [ "$m" = "$n" ] || routes+=("nats://127.0.0.1:$(port_of route-$m)"); done
  local IFS=,
  spawn "nats-$n" env GOMAXPROCS="$NATS_GOMAXPROCS" "$NATS_SERVER" -a 127.0.0.1 -p "$(port_of nats-$n)" -n "nats-$n" -js \
    -sd "$dir/nats-$n" --cluster_name kiln --cluster "nats://127.0.0.1:$(port_of route-$n)" \
    --routes "${routes[*]}"
}

wait_nats() {
  wait_up "nats-$1" 30 bash -c "exec 3<>/dev/tcp/127.0.0.1/$(port_of nats-$1)"
}

# A core's log starts afresh at each start, so that "ready" is this start's.
start_core() {
  local n=$1
  mkdir -p "$logs"
  [ -f "$logs/core-$n.log" ] && mv "$logs/core-$n.log" "$logs/core-$n.log.$(date +%s%N)"
  spawn "core-$n" "$KILN" core --nats "$(nats_urls)" --data "$dir/core-$n" --log-replicas "$REPLICAS"
  wait_up "core-$n" 120 grep -q "kiln core: ready" "$logs/core-$n.log"
}

start_gateway() {
  local n=$1
  spawn "gateway-$n" "$KILN" gateway --nats "$(nats_urls)" --listen "127.0.0.1:$(port_of gateway-$n)" \
    --data "$dir/gateway-$n"
  wait_up "gateway-$n" 30 curl -fsS "http://127.0.0.1:$(port_of gateway-$n)/readyz"
}

start_haproxy() {
  cat > "$dir/haproxy.cfg" <<EOF
global
  maxconn 4096
defaults
  mode http
  timeout connect 2s
  timeout client 120s
  timeout server 120s
  retries 3
  option redispatch
frontend kiln
  bind 127.0.0.1:$(port_of lb)
  default_backend gateways
backend gateways
  balance roundrobin
  option httpchk GET /readyz
  default-server inter 500ms fall 1 rise 1
$(for n in 1 2 3; do echo "  server gw$n 127.0.0.1:$(port_of gateway-$n) check"; done)
EOF
  spawn haproxy "$HAPROXY" -f "$dir/haproxy.cfg" -db
  wait_up haproxy 20 curl -fsS "http://127.0.0.1:$(port_of lb)/readyz"
}

start_worker() {
  local n=$1
  # Workers get the gateways' URLs, each starting at another (a worker tries the next when
  # one drains or is down); clients get HAProxy. Through HAProxy too, workers cost each
  # run four more hops: 1,000 runs, alternated, 115-130 runs/s direct against 100-116.
  local urls="" k
  for k in 0 1 2; do urls+="${urls:+,}http://127.0.0.1:$(port_of gateway-$(( (n - 1 + k) % 3 + 1 )))"; done
  spawn "worker-$n" "$KILN" worker --server "$urls" --name "worker-$n" \
    --tags "local,$(hostname)" --concurrency "$CONCURRENCY" --workdir "$dir/worker-$n" --executor "$EXECUTOR" \
    --poll-wait 5
  local admin; admin=$(cat "$dir/admin.token")
  wait_up "worker-$n" 60 curl -fsS -X POST -H "Authorization: Bearer $admin" \
    "http://127.0.0.1:$(port_of lb)/v1/workers/worker-$n/enlist"
}

stop_one() {  # stop_one NAME SIGNAL
  local name=$1 sig=${2:-TERM}
  alive "$name" || return 0
  local pid; pid=$(cat "$pids/$name")
  kill "-$sig" "$pid" 2>/dev/null || true
  for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || { rm -f "$pids/$name"; return 0; }; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$pids/$name"
}

case "$cmd" in
  start)
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd); pids=$dir/pids; logs=$dir/logs
    command -v "$KILN" > /dev/null || die "no kiln binary (set KILN=/path/to/kiln)"
    [ -x "$HAPROXY" ] || die "haproxy is not installed (apt-get install haproxy)"
    for n in 1 2 3; do spawn_nats "$n"; done
    for n in 1 2 3; do wait_nats "$n"; done
    # The first core makes the cluster's keys; the second gets copies.
    mkdir -p "$dir/core-2"
    start_core 1
    cp "$dir/core-1/secret.key" "$dir/core-1/admin.token" "$dir/core-2/"
    cp "$dir/core-1/admin.token" "$dir/admin.token"
    start_core 2
    balance
    for n in 1 2 3; do start_gateway "$n"; done
    start_haproxy
    for n in 1 2; do start_worker "$n"; done
    echo "KILN_URL=http://127.0.0.1:$(port_of lb)"
    ;;
  status)
    for name in nats-1 nats-2 nats-3 core-1 core-2 gateway-1 gateway-2 gateway-3 haproxy worker-1 worker-2; do
      if alive "$name"; then state="running pid $(cat "$pids/$name")"; else state="down"; fi
      extra=""
      case "$name" in
        gateway-*) extra=" readyz=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$(port_of "$name")/readyz" || true)" ;;
        haproxy) extra=" url=http://127.0.0.1:$(port_of lb)" ;;
        core-*) if leads "${name#core-}"; then extra=" leads"; fi ;;
      esac
      echo "$name: $state$extra"
    done
    ;;
  roll-gateways)
    for n in 1 2 3; do
      stop_one "gateway-$n" TERM
      start_gateway "$n"
    done
    ;;
  leader)
    for n in 1 2; do
      if leads "$n"; then echo "$n"; exit 0; fi
    done
    exit 1
    ;;
  kill-core) stop_one "core-${3:?N}" KILL ;;
  restart-core)
    n=${3:?N}
    stop_one "core-$n" TERM
    start_core "$n"
    ;;
  balance) balance; cat "$logs/balance.log" ;;
  kill-nats) stop_one "nats-${3:?N}" KILL ;;
  restart-nats) n=${3:?N}; stop_one "nats-$n" TERM; spawn_nats "$n"; wait_nats "$n" ;;
  stop)
    for name in worker-1 worker-2 haproxy gateway-1 gateway-2 gateway-3 core-1 core-2 nats-1 nats-2 nats-3; do
      stop_one "$name" TERM
    done
    ;;
  *) die "unknown command '$cmd' (start, status, balance, roll-gateways, kill-core, restart-core, kill-nats, restart-nats, stop)" ;;
esac
