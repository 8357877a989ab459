#!/usr/bin/env bash
# What chat costs the edges: CLIENTS chat clients (the harness's `loadtest
# chat`) split over two edges that share one room through a real
# redis-server, MESSAGES load messages at RATE a second; reports the
# harness's delivery latency and loss, and the two edges' CPU per thousand
# messages delivered (from /proc and livecdn_edge_chat_delivered_total).
# Both edges are pinned to core 1, Redis and the harness to core 0.
# Needs redis-server and a release build (cargo build --release --bin
# livecdn). Loopback only; ports 18381, 18382 and 16390.
#
# Usage: bash bench/chat_cost.sh
#        CLIENTS=10000 MESSAGES=600 RATE=20 bash bench/chat_cost.sh
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/livecdn"
N=${CLIENTS:-2000}
M=${MESSAGES:-400}
RATE=${RATE:-20}
export LIVECDN_SECRET=0123456789abcdef0123
export LIVECDN_ADMIN_TOKEN=admin-0123456789abcdef
W=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$W"' EXIT
CLK=$(getconf CLK_TCK)
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
delivered() {
  curl -sf -H "Authorization: Bearer $LIVECDN_ADMIN_TOKEN" "http://127.0.0.1:$1/metrics" \
    | awk '$1 == "livecdn_edge_chat_delivered_total" {print $2}'
}

taskset -c 0 redis-server --port 16390 --bind 127.0.0.1 --save "" --appendonly no \
  > "$W/redis.log" 2>&1 &
for _ in $(seq 1 50); do (exec 3<>/dev/tcp/127.0.0.1/16390) 2>/dev/null && break; sleep 0.1; done
printf '[chat]\nredis = "redis://127.0.0.1:16390"\nmax_per_ip = 0\nmax_per_room = 0\n' > "$W/edge.toml"
PIDS=()
for port in 18381 18382; do
  taskset -c 1 "$BIN" edge --config "$W/edge.toml" --origin http://127.0.0.1:9 \
    --http-listen "127.0.0.1:$port" --https-listen 127.0.0.1:0 --no-h3 \
    > "$W/edge-$port.out" 2> "$W/edge-$port.log" &
  PIDS+=($!)
done
for port in 18381 18382; do
  for _ in $(seq 1 50); do curl -sf -o /dev/null "http://127.0.0.1:$port/healthz" && break; sleep 0.2; done
done

c0=$(( $(cpu "${PIDS[0]}") + $(cpu "${PIDS[1]}") ))
d0=$(( $(delivered 18381) + $(delivered 18382) ))
taskset -c 0 "$BIN" loadtest chat ws://127.0.0.1:18381/live/bench/chat ws://127.0.0.1:18382/live/bench/chat \
  --clients "$N" --messages "$M" --rate "$RATE" --drain 20s --json "$W/chat.json" | tee "$W/chat.txt"
c1=$(( $(cpu "${PIDS[0]}") + $(cpu "${PIDS[1]}") ))
d1=$(( $(delivered 18381) + $(delivered 18382) ))
awk -v c=$(( c1 - c0 )) -v d=$(( d1 - d0 )) -v clk="$CLK" 'BEGIN {
  ms = c * 1000 / clk
  printf "edges: %d events delivered, %.0f ms CPU in all, %.2f ms CPU per 1000 deliveries (joins and pings included)\n", d, ms, (d > 0 ? ms * 1000 / d : 0)
}'
