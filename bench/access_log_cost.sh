#!/usr/bin/env bash
# What the access log costs the edge: wrk (-t1 -c64, 10 s) on one cached
# segment, the edge pinned to core 1 (its runtime and the log writer thread
# share it), wrk, the origin and ffmpeg on core 0; the edge with
# --access-log FILE and without, alternating, two rounds of three runs.
# Needs wrk and a release build (cargo build --release --bin livecdn).
# Loopback only; ports 19350, 18080, 18081, 18443.
#
# Usage: bash bench/access_log_cost.sh
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/livecdn"
command -v wrk >/dev/null || { echo "needs wrk (apt-get install wrk)" >&2; exit 1; }
W=$(mktemp -d)
LIVECDN_SECRET=0123456789abcdef0123 LIVECDN_ADMIN_TOKEN=admin-0123456789abcdef \
  taskset -c 0 $BIN origin --rtmp-listen 127.0.0.1:19350 --http-listen 127.0.0.1:18080 --ladder source > $W/origin.out 2> $W/origin.log &
OP=$!
sleep 1
KEY=$(LIVECDN_SECRET=0123456789abcdef0123 $BIN key bench | tail -1)
taskset -c 0 ffmpeg -hide_banner -loglevel error -re -f lavfi -i testsrc2=size=640x360:rate=30 -f lavfi -i sine=frequency=440:sample_rate=48000 -t 120 -c:v libx264 -preset veryfast -g 60 -pix_fmt yuv420p -c:a aac -f flv rtmp://127.0.0.1:19350/live/$KEY > /dev/null 2>&1 &
FP=$!
for i in $(seq 1 60); do [ $(curl -sf http://127.0.0.1:18080/live/bench/source/index.m3u8 | grep -c '^[0-9]*\.m4s') -ge 2 ] && break; sleep 0.5; done
SEG=$(curl -sf http://127.0.0.1:18080/live/bench/source/index.m3u8 | grep "^[0-9]*\.m4s" | tail -1)
echo "segment $SEG"
run() { # label extra-args
  CRED=$(LIVECDN_SECRET=0123456789abcdef0123 $BIN cluster-key bench-edge | tail -1)
  taskset -c 1 $BIN edge --origin http://127.0.0.1:18080 --http-listen 127.0.0.1:18081 --https-listen 127.0.0.1:18443 --no-h3 --cluster-credential "$CRED" "$@" > $W/edge.out 2> $W/edge.log &
  EP=$!
  for i in $(seq 1 50); do curl -sf -o /dev/null http://127.0.0.1:18081/live/bench/source/$SEG && break; sleep 0.2; done
  for r in 1 2 3; do
    taskset -c 0 wrk -t1 -c64 -d10s --latency http://127.0.0.1:18081/live/bench/source/$SEG | grep -E "Requests/sec|  50%|  99%" | tr -s ' ' | tr '\n' ' '; echo
  done
  kill $EP; wait $EP 2>/dev/null || true
}
for round in 1 2; do
echo "== access log to a file"; run --access-log $W/access.log
echo "== no access log"; run
done
wc -l $W/access.log
kill $FP $OP 2>/dev/null; wait 2>/dev/null || true
rm -rf $W
