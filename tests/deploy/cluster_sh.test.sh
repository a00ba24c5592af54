#!/usr/bin/env bash
# deploy/cluster.sh as a newcomer runs it: up 3 (one NATS, then a 3-server NATS cluster), a client through
# HAProxy with the printed token, `status` listing every node, down leaving nothing behind.
# Usage: cluster_sh.test.sh SB_BINARY
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
export SB_BIN=$1
export SB_CLUSTER_DIR
SB_CLUSTER_DIR=$(mktemp -d)/cluster
trap 'bash "$root/deploy/cluster.sh" down >/dev/null 2>&1 || true' EXIT

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# A base port with `count` free ports after it (and their NATS route ports, base+2000 on).
free_base() {
  local count=$1 base p ok
  for _ in $(seq 50); do
    # Below the kernel's ephemeral range (32768 on): no client socket of a test running alongside takes one.
    base=$((20000 + RANDOM % 10000))
    ok=1
    for p in $(seq "$base" $((base + count - 1))) $(seq $((base + 2000)) $((base + 2003))); do
      port_open "$p" && ok=0
    done
    ((ok)) && { echo "$base"; return; }
  done
  echo "no free ports" >&2
  exit 1
}

check_round() {
  local nats=$1 base
  base=$(free_base 10)
  export SB_PORT=$base SB_NODE_PORT=$((base + 1)) SB_NATS_PORT=$((base + 6))
  out=$(bash "$root/deploy/cluster.sh" up 3 --nats "$nats")
  echo "$out"
  grep -q "ws://127.0.0.1:$SB_PORT/ws" <<<"$out" || { echo "FAIL: no URL printed"; exit 1; }
  token=$(sed -n 's/^  token:  //p' <<<"$out")
  [ -n "$token" ] || { echo "FAIL: no token printed"; exit 1; }

  status=$(bash "$root/deploy/cluster.sh" status)
  for n in node-1 node-2 node-3; do
    grep -q "\"nodeId\": \"$n\"" <<<"$status" || { echo "FAIL: admin cluster does not list $n"; echo "$status"; exit 1; }
  done
  [ "$(grep -c ': running' <<<"$status")" -eq $((3 + nats + 1)) ] || { echo "FAIL: not every process runs"; echo "$status"; exit 1; }

  # A client through HAProxy authenticates with the printed token.
  NODE_PATH="$root/tests/interop/node_modules" node -e '
    const WebSocket = require("ws");
    const ws = new WebSocket(process.argv[1]);
    let node = "?";
    const fail = (why) => { console.error("FAIL: " + why); process.exit(1); };
    setTimeout(() => fail("no auth_success within 5 s"), 5000);
    ws.on("message", (data) => {
      const m = JSON.parse(data);
      if (m.type === "session_info") node = m.payload.nodeId, ws.send(JSON.stringify({type: "auth", id: "a1", payload: {token: process.argv[2]}}));
      else if (m.type === "auth_success") { console.log("client authenticated on " + node); process.exit(0); }
      else if (m.type === "error") fail(JSON.stringify(m));
    });
    ws.on("error", (e) => fail(e.message));
  ' "ws://127.0.0.1:$SB_PORT/ws" "$token"

  bash "$root/deploy/cluster.sh" down
  for p in "$SB_PORT" "$SB_NODE_PORT" "$SB_NATS_PORT"; do
    port_open "$p" && { echo "FAIL: port $p still open after down"; exit 1; }
  done
  [ ! -e "$SB_CLUSTER_DIR" ] || { echo "FAIL: $SB_CLUSTER_DIR left behind"; exit 1; }
}

check_round 1
check_round 3
echo "PASS"
