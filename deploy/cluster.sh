#!/usr/bin/env bash
# A Switchboard cluster on this machine, on 127.0.0.1 only: NATS (one server, or a 3-server NATS cluster),
# N gateway nodes and HAProxy in front of them.
#   bash deploy/cluster.sh up N [--nats 1|3]   start everything; prints the URL and the token
#   bash deploy/cluster.sh status              each process, and the members as the first node sees them
#   bash deploy/cluster.sh down                SIGTERM everything (the nodes drain), wait, clean up
# Environment: SB_PORT (HAProxy, default 8080), SB_NODE_PORT (first node, 8081; the others follow),
# SB_NATS_PORT (4222; cluster routes from SB_NATS_PORT+2000), SB_CLUSTER_NAME (sb),
# SB_CLUSTER_DIR (state: pids, logs, admin sockets; default /tmp/switchboard-cluster),
# SB_BIN (default build/switchboard; without SB_BIN, `up` first runs `deploy/dev.sh build` when the binary,
# nats-server or haproxy is missing).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
dir=${SB_CLUSTER_DIR:-/tmp/switchboard-cluster}
bin=${SB_BIN:-$root/build/switchboard}
lb_port=${SB_PORT:-8080}
node_port=${SB_NODE_PORT:-8081}
nats_port=${SB_NATS_PORT:-4222}
name=${SB_CLUSTER_NAME:-sb}

starting=0  # set while `up` runs: a failure stops what it started

die() {
  echo "cluster.sh: $*" >&2
  if ((starting)); then
    echo "cluster.sh: logs in $dir" >&2
    stop_all
  fi
  exit 1
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() {
  local i
  for i in $(seq 300); do
    port_open "$1" && return 0
    sleep 0.1
  done
  return 1
}

# launch NAME CMD...: runs CMD in the background, its output in NAME.log, its pid in NAME.pid.
launch() {
  local what=$1
  shift
  "$@" >"$dir/$what.log" 2>&1 &
  echo $! >"$dir/$what.pid"
}

# not_started NAME: the start of NAME failed; shows the end of its log, then stops everything.
not_started() {
  echo "cluster.sh: $1 did not start; the end of $dir/$1.log:" >&2
  tail -n 20 "$dir/$1.log" >&2 2>/dev/null || true
  die "$1 did not start"
}

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

members() { "$bin" admin --socket "$dir/node-1.sock" cluster 2>/dev/null | grep -o '"nodeId"' | wc -l; }

# stop_all: HAProxy first (no new clients), then the nodes (they drain and say goodbye), then NATS.
stop_all() {
  local group pid f
  for group in haproxy node- nats-; do
    for f in "$dir"/$group*.pid; do
      [ -f "$f" ] || continue
      alive "$f" && kill -TERM "$(cat "$f")" 2>/dev/null || true
    done
    for f in "$dir"/$group*.pid; do
      [ -f "$f" ] || continue
      pid=$(cat "$f")
      for _ in $(seq 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -KILL "$pid" 2>/dev/null || true
      rm -f "$f"
    done
  done
}

up() {
  local nodes=${1:-}
  shift || true
  local nats=1
  while (($#)); do
    case $1 in
      --nats) nats=${2:-}; shift 2 ;;
      *) die "unknown option $1" ;;
    esac
  done
  [[ $nodes =~ ^[0-9]+$ ]] && ((nodes >= 1 && nodes <= 64)) || die "up N: N is 1 to 64 gateway nodes"
  [[ $nats == 1 || $nats == 3 ]] || die "--nats is 1 or 3"
  export PATH=$PATH:/usr/sbin
  if [ -z "${SB_BIN:-}" ] && { [ ! -x "$bin" ] || ! command -v nats-server >/dev/null || ! command -v haproxy >/dev/null; }; then
    echo "installing what is missing and building switchboard (deploy/dev.sh build) ..."
    bash "$root/deploy/dev.sh" build >/dev/null
  fi
  command -v nats-server >/dev/null || die "nats-server is missing (apt-get install nats-server)"
  command -v haproxy >/dev/null || die "haproxy is missing (apt-get install haproxy)"
  [ -x "$bin" ] || die "no switchboard binary at $bin"
  for f in "$dir"/*.pid; do
    [ -f "$f" ] && alive "$f" && die "a cluster is up in $dir already: run 'down' first"
  done
  local p i
  for p in "$lb_port" $(seq "$node_port" $((node_port + nodes - 1))) $(seq "$nats_port" $((nats_port + nats - 1))); do
    port_open "$p" && die "port $p is taken (set SB_PORT, SB_NODE_PORT or SB_NATS_PORT)"
  done
  rm -rf "$dir"
  mkdir -p "$dir"
  starting=1
  trap 'die "a start step failed"' ERR

  local urls=() routes=()
  for ((i = 1; i <= nats; i++)); do
    urls+=("nats://127.0.0.1:$((nats_port + i - 1))")
    routes+=("nats://127.0.0.1:$((nats_port + 2000 + i - 1))")
  done
  for ((i = 1; i <= nats; i++)); do
    local args=(-a 127.0.0.1 -p $((nats_port + i - 1)) -js -sd "$dir/nats-$i" -n "nats-$i")
    if ((nats > 1)); then
      args+=(--cluster "${routes[$((i - 1))]}" --cluster_name "$name-nats" --routes "$(IFS=,; echo "${routes[*]}")")
    fi
    launch "nats-$i" nats-server "${args[@]}"
  done
  for ((i = 1; i <= nats; i++)); do wait_port $((nats_port + i - 1)) || not_started "nats-$i"; done

  local token
  token=$(openssl rand -hex 16)
  for ((i = 1; i <= nodes; i++)); do
    launch "node-$i" "$bin" serve --port $((node_port + i - 1)) --bind loopback --node-id "node-$i" \
      --auth-tokens "$token" --admin-socket "$dir/node-$i.sock" --trusted-proxies 127.0.0.1/32 \
      --cluster-nats "$(IFS=,; echo "${urls[*]}")" --cluster-name "$name" --cluster-kv-replicas "$nats"
  done
  for ((i = 1; i <= nodes; i++)); do wait_port $((node_port + i - 1)) || not_started "node-$i"; done

  {
    cat "$root/deploy/haproxy.cfg"
    for ((i = 1; i <= nodes; i++)); do echo "    server node-$i 127.0.0.1:$((node_port + i - 1))"; done
  } >"$dir/haproxy.cfg"
  SB_BIND="127.0.0.1:$lb_port" launch haproxy haproxy -db -f "$dir/haproxy.cfg"
  wait_port "$lb_port" || not_started haproxy

  # A NATS cluster elects its JetStream leader first; the nodes retry until their buckets open.
  for _ in $(seq 300); do
    (($(members) == nodes)) && break
    sleep 0.1
  done
  (($(members) == nodes)) || die "the nodes did not all see each other within 30 s: logs in $dir"
  trap - ERR
  starting=0
  echo "$token" >"$dir/token"
  echo "cluster up: $nodes gateway nodes, $nats NATS server(s)"
  echo "  url:    ws://127.0.0.1:$lb_port/ws"
  echo "  token:  $token"
  echo "  admin:  $bin admin --socket $dir/node-1.sock cluster"
  echo "  stop:   bash deploy/cluster.sh down"
}

status() {
  local f any=0
  for f in "$dir"/*.pid; do
    [ -f "$f" ] || continue
    any=1
    if alive "$f"; then echo "$(basename "$f" .pid): running (pid $(cat "$f"))"; else echo "$(basename "$f" .pid): not running"; fi
  done
  ((any)) || { echo "no cluster in $dir"; return 1; }
  [ -S "$dir/node-1.sock" ] && "$bin" admin --socket "$dir/node-1.sock" cluster
}

case ${1:-} in
  up) shift; up "$@" ;;
  down) stop_all; rm -rf "$dir"; echo "cluster down" ;;
  status) status ;;
  *) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
