#!/usr/bin/env bash
# What recording costs the origin: CPU per stream-second with recording
# off, on through io_uring (tokio-uring), and on through plain file I/O,
# for STREAMS publishers of a 720p clip at BITRATE (encoded once, then
# copied by each ffmpeg publisher: no encoding during the run). The origin
# is pinned to core 1, the publishers to core 0. Needs ffmpeg and a release
# build (cargo build --release --bin livecdn). Loopback only; ports 19360
# and 18090.
#
# Usage: bash bench/recording_cost.sh
#        STREAMS=40 DURATION=30 BITRATE=2600k bash bench/recording_cost.sh
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/livecdn"
N=${STREAMS:-40}
DUR=${DURATION:-30}
RATE=${BITRATE:-2600k}
SECRET=0123456789abcdef0123
export LIVECDN_ADMIN_TOKEN=admin-0123456789abcdef
W=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$W"' EXIT
CLK=$(getconf CLK_TCK)

# 2.6 Mbit/s video + 96 kbit/s audio: about 2.7 Mbit/s a stream.
ffmpeg -hide_banner -loglevel error -f lavfi -i testsrc2=size=1280x720:rate=30 \
  -f lavfi -i sine=frequency=440:sample_rate=48000 -t 20 -c:v libx264 -preset veryfast \
  -b:v "$RATE" -maxrate "$RATE" -bufsize 2M -g 60 -pix_fmt yuv420p -c:a aac -b:a 96k \
  -f flv "$W/clip.flv"
echo "clip: $(( $(stat -c %s "$W/clip.flv") * 8 / 20 / 1000 )) kbit/s"
printf '[recording]\nio = "std"\n' > "$W/std.toml"

cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }

run() { # label, origin args...
  local label=$1; shift
  rm -rf "$W/rec"
  LIVECDN_SECRET=$SECRET taskset -c 1 "$BIN" origin --rtmp-listen 127.0.0.1:19360 \
    --http-listen 127.0.0.1:18090 --ladder source --rtmp-max-connections-per-ip 0 \
    --recording-dir "$W/rec" "$@" \
    > "$W/origin.out" 2> "$W/origin.log" &
  local op=$!
  for _ in $(seq 1 50); do curl -sf -o /dev/null http://127.0.0.1:18090/healthz && break; sleep 0.2; done
  local pubs=()
  for i in $(seq 1 "$N"); do
    local key
    key=$(LIVECDN_SECRET=$SECRET "$BIN" key "s$i" | tail -1)
    taskset -c 0 ffmpeg -hide_banner -loglevel error -nostdin -re -stream_loop -1 \
      -i "$W/clip.flv" -c copy -t $((DUR + 15)) -f flv "rtmp://127.0.0.1:19360/live/$key" \
      > /dev/null 2>&1 &
    pubs+=($!)
  done
  # Every stream live, then 5 s to settle.
  for _ in $(seq 1 100); do
    [ "$(curl -sf -H "authorization: Bearer $LIVECDN_ADMIN_TOKEN" http://127.0.0.1:18090/api/streams | grep -o '"live":true' | wc -l)" -ge "$N" ] && break
    sleep 0.3
  done
  sleep 5
  local live
  live=$(curl -sf -H "authorization: Bearer $LIVECDN_ADMIN_TOKEN" http://127.0.0.1:18090/api/streams | grep -o '"live":true' | wc -l)
  local c0 c1 b0 b1
  c0=$(cpu $op); b0=$(du -sb "$W/rec" 2>/dev/null | cut -f1 || echo 0)
  sleep "$DUR"
  c1=$(cpu $op); b1=$(du -sb "$W/rec" 2>/dev/null | cut -f1 || echo 0)
  local io
  io=$(curl -sf -H "authorization: Bearer $LIVECDN_ADMIN_TOKEN" http://127.0.0.1:18090/metrics \
    | grep -o 'recording_io{backend="[a-z_]*"}' || true)
  awk -v l="$label" -v c=$((c1 - c0)) -v k="$CLK" -v d="$DUR" -v n="$N" -v b=$((b1 - b0)) -v io="$io" \
    -v live="$live" 'BEGIN { s = c / k; printf "%-10s %d/%d live, origin %.3f cores, %.1f us CPU per stream-second, recorded %.2f MB/s %s\n", l, live, n, s / d, s / (live * d) * 1e6, b / d / 1e6, io }'
  kill "${pubs[@]}" 2>/dev/null || true
  kill $op; wait $op 2>/dev/null || true
  wait 2>/dev/null || true
}

for round in $(seq 1 "${ROUNDS:-2}"); do
  echo "== round $round: $N streams, $DUR s"
  run off --record=none
  run io_uring --record
  run std --record --config "$W/std.toml"
done
