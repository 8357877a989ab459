#!/usr/bin/env bash
# What WebRTC viewers cost the origin: CPU per viewer-second for VIEWERS
# WHEP viewers (the harness's str0m sessions, which count frames from the
# RTP without decoding) of one 720p stream without B-frames (passed
# through: no transcoding), against the same run with no viewer; and,
# before that, the stream with WebRTC off, whose difference to the run
# with no viewer is the AAC-to-Opus transcoder's cost per stream. The
# origin is pinned to core 1, the publisher and the harness to core 0.
# Needs ffmpeg and a release build (cargo build --release --bin livecdn).
# Loopback only; ports 19361, 18091 and 18189/udp.
#
# With LADDER=source,360p the stream gets a 360p rung (its encoder moved
# to core 0), so each viewer's bandwidth is estimated (str0m's congestion
# control over its TWCC feedback, the price of moving viewers on the
# ladder); the default, LADDER=source, has nothing to move between and
# estimates nothing.
#
# Usage: bash bench/whep_cost.sh
#        VIEWERS=200 DURATION=30 bash bench/whep_cost.sh
#        LADDER=source,360p VIEWERS=50 DURATION=20 bash bench/whep_cost.sh
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/livecdn"
N=${VIEWERS:-100}
DUR=${DURATION:-30}
LADDER=${LADDER:-source}
SECRET=0123456789abcdef0123
export LIVECDN_ADMIN_TOKEN=admin-0123456789abcdef
W=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$W"' EXIT
CLK=$(getconf CLK_TCK)

# 2.5 Mbit/s, 30 fps, a keyframe every 2 s, no B-frames.
ffmpeg -hide_banner -loglevel error -f lavfi -i testsrc2=size=1280x720:rate=30 \
  -f lavfi -i sine=frequency=440:sample_rate=48000 -t 20 -c:v libx264 -preset veryfast \
  -bf 0 -b:v 2500k -maxrate 2500k -bufsize 2M -g 60 -pix_fmt yuv420p -c:a aac -b:a 96k \
  -f flv "$W/clip.flv"
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# An origin with WebRTC on (ENABLED=true) or off, on core 1, and the clip
# published to it on core 0; sets OP and FP once its playlist is up.
start() {
  printf '[webrtc]\nenabled = %s\nlisten = "127.0.0.1:18189"\nmax_sessions = 20000\n' "$1" \
    > "$W/origin.toml"
  LIVECDN_SECRET=$SECRET taskset -c 1 "$BIN" origin --config "$W/origin.toml" \
    --rtmp-listen 127.0.0.1:19361 --http-listen 127.0.0.1:18091 --ladder "$LADDER" \
    > "$W/origin.out" 2> "$W/origin.log" &
  OP=$!
  for _ in $(seq 1 50); do curl -sf -o /dev/null http://127.0.0.1:18091/healthz && break; sleep 0.2; done
  KEY=$(LIVECDN_SECRET=$SECRET "$BIN" key cam | tail -1)
  taskset -c 0 ffmpeg -hide_banner -loglevel error -nostdin -re -stream_loop -1 -i "$W/clip.flv" \
    -c copy -t $((2 * DUR + 30)) -f flv "rtmp://127.0.0.1:19361/live/$KEY" > /dev/null 2>&1 &
  FP=$!
  for _ in $(seq 1 100); do
    curl -sf -o /dev/null http://127.0.0.1:18091/live/cam/source/index.m3u8 && break
    sleep 0.3
  done
  if [ "$LADDER" != source ]; then
    # The rung's encoder: off the origin's core, and measured before the
    # viewers come (the ladder is read from the measured renditions).
    for _ in $(seq 1 100); do
      curl -sf -o /dev/null "http://127.0.0.1:18091/live/cam/${LADDER##*,}/index.m3u8" && break
      sleep 0.3
    done
    for p in $(pgrep -P "$OP" ffmpeg || true); do taskset -a -p -c 0 "$p" > /dev/null; done
  fi
  sleep 3
}

# WebRTC off: the stream's cost without the Opus rendition, so the
# transcoder's share of the next phase shows.
start false
c0=$(cpu $OP); sleep "$DUR"; c1=$(cpu $OP)
off=$(( c1 - c0 ))
kill "$FP" "$OP" 2>/dev/null || true
wait "$FP" "$OP" 2>/dev/null || true
start true

# The stream alone, then the same span with the viewers.
c0=$(cpu $OP); sleep "$DUR"; c1=$(cpu $OP)
idle=$(( c1 - c0 ))
c0=$(cpu $OP)
taskset -c 0 "$BIN" loadtest whep "http://127.0.0.1:18091/live/cam/whep" --viewers "$N" \
  --duration "${DUR}s" --ramp 5s --json "$W/whep.json" | tee "$W/whep.txt"
c1=$(cpu $OP)
busy=$(( c1 - c0 ))
awk -v off="$off" -v idle="$idle" -v busy="$busy" -v clk="$CLK" -v n="$N" -v d="$DUR" 'BEGIN {
  extra = (busy - idle) / clk
  printf "origin CPU over %d s: %.2f s with webrtc off, %.2f s on (the Opus rendition: %.1f%% of a core), %.2f s with %d viewers\n", d, off / clk, idle / clk, (idle - off) / clk / d * 100, busy / clk, n
  printf "per viewer-second: %.1f us (%.3f%% of a core per viewer)\n", extra / (n * d) * 1e6, extra / (n * d) * 100
  printf "viewers per core at this rate: %d\n", (n * d) / extra
}'
grep -E '^livecdn_origin_webrtc_[a-z_]+ [0-9]+$' <(curl -sf -H "authorization: Bearer $LIVECDN_ADMIN_TOKEN" http://127.0.0.1:18091/metrics) | grep -v " 0$" || true
