#!/usr/bin/env bash
# Glass to glass for WebRTC viewers, on loopback: from a frame's arrival at
# the origin (the abs-capture-time its RTP packets carry) to when headless
# Chromium expects to show it (requestVideoFrameCallback's
# expectedDisplayTime), p50 / p95 / max over the frames of HOLD seconds of
# the player page at ?engine=webrtc, joiner's burst excluded. Two sources,
# 1280x720 at 30 fps with AAC:
#   passthrough  H.264 without B-frames: the source's own frames, the clock
#                starting when the frame arrives by RTMP;
#   rung         x264 with B-frames: the viewer gets the 240p rung, whose
#                frames carry the arrival of the source frames they were
#                made from, so the rung encoder's delay is in the figure.
# The publisher's encoder and RTMP are not in either figure. Also printed:
# the same delay at the harness's str0m viewers (VIEWERS of them, no
# decoding), frames, freezes, and the page's audio packets.
# Needs ffmpeg, chromium, npm ci --prefix player, and a release build
# (cargo build --release --bin livecdn). Ports 19362, 18092, 18190/udp.
#
# Usage: bash bench/whep_glass.sh
#        HOLD=60 VIEWERS=20 SOURCES=passthrough bash bench/whep_glass.sh
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/livecdn"
HOLD=${HOLD:-30}
VIEWERS=${VIEWERS:-10}
SOURCES=${SOURCES:-"passthrough rung"}
SECRET=0123456789abcdef0123
W=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$W"' EXIT
[ -x "$BIN" ] || { echo "build first: cargo build --release --bin livecdn" >&2; exit 1; }
[ -e "$ROOT/player/node_modules/playwright-core" ] || { echo "run: npm ci --prefix player" >&2; exit 1; }

cat > "$W/origin.toml" <<EOF
[webrtc]
listen = "127.0.0.1:18190"
[[ladder.rungs]]
name = "source"
[[ladder.rungs]]
name = "240p"
height = 240
video_bitrate = "400k"
EOF

printf '%-12s %8s %8s %8s %8s %10s %10s %8s %8s %8s\n' \
  source frames p50_ms p95_ms max_ms harness_p50 harness_p95 freezes audio_pk stalls
for source in $SOURCES; do
  case "$source" in
    passthrough) bf=0 ;;
    rung) bf=3 ;;
    *) echo "unknown source $source" >&2; exit 1 ;;
  esac
  LIVECDN_LOG=warn LIVECDN_SECRET=$SECRET "$BIN" origin --config "$W/origin.toml" \
    --rtmp-listen 127.0.0.1:19362 --http-listen 127.0.0.1:18092 > "$W/origin.out" 2> "$W/origin.log" &
  OP=$!
  for _ in $(seq 1 50); do curl -sf -o /dev/null http://127.0.0.1:18092/healthz && break; sleep 0.2; done
  KEY=$(LIVECDN_SECRET=$SECRET "$BIN" key cam | tail -1)
  ffmpeg -hide_banner -loglevel error -nostdin -re -f lavfi -i testsrc2=size=1280x720:rate=30 \
    -f lavfi -i sine=frequency=440:sample_rate=48000 -t $((HOLD + 90)) -c:v libx264 -preset veryfast \
    -tune zerolatency -bf "$bf" -b:v 2500k -g 60 -pix_fmt yuv420p -c:a aac -b:a 96k \
    -f flv "rtmp://127.0.0.1:19362/live/$KEY" > /dev/null 2>&1 &
  FP=$!
  want=source
  [ "$source" = rung ] && want=240p
  for i in $(seq 1 150); do
    curl -sf http://127.0.0.1:18092/live/cam/master.m3u8 2>/dev/null | grep -q "$want/index.m3u8" \
      && curl -sf -o /dev/null "http://127.0.0.1:18092/live/cam/$want/index.m3u8" && break
    [ "$i" = 150 ] && { echo "the $want rendition did not come up" >&2; cat "$W/origin.log" >&2; exit 1; }
    sleep 0.4
  done
  "$BIN" loadtest whep "http://127.0.0.1:18092/live/cam/whep" --viewers "$VIEWERS" \
    --duration "$((HOLD + 15))s" --ramp 2s --json "$W/harness.json" > /dev/null &
  HP=$!
  node "$ROOT/player/test/play.mjs" "http://127.0.0.1:18092/?stream=cam&engine=webrtc" \
    --seconds 30 --min-frames 30 --hold "$HOLD" \
    --arg=--allow-loopback-in-peer-connection > "$W/page.out" 2> "$W/page.err" || true
  wait "$HP" || true
  tail -n 1 "$W/page.out" > "$W/page.json"
  node -e '
    const fs = require("fs");
    const page = JSON.parse(fs.readFileSync(process.argv[1], "utf8"));
    let h = {};
    try { h = JSON.parse(fs.readFileSync(process.argv[2], "utf8")); } catch (e) {}
    const rtc = page.webrtc || {}, g = rtc.glass || {}, a = rtc.audio || {};
    const f = (v) => (v === undefined || v === null ? "-" : String(v));
    console.log([process.argv[3].padEnd(12), f(g.frames).padStart(8), f(g.p50Ms).padStart(8),
      f(g.p95Ms).padStart(8), f(g.maxMs).padStart(8), f(h.deliveryMsP50).padStart(10),
      f(h.deliveryMsP95).padStart(10), f(rtc.freezes).padStart(8),
      f(a.packetsReceived).padStart(8), f(page.stalls).padStart(8)].join(" "));
  ' "$W/page.json" "$W/harness.json" "$source" \
    || { echo "no report for $source:" >&2; cat "$W/page.out" "$W/page.err" >&2; }
  kill "$FP" "$OP" 2>/dev/null || true
  wait "$FP" "$OP" 2>/dev/null || true
done
