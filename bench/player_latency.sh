#!/usr/bin/env bash
# How far behind live each browser player plays with the page's default
# settings: `livecdn up --demo` (release build, 0.333 s parts, 2 s
# segments) on loopback, headless Chromium through the edge over HTTP/2,
# one player at a time: hls.js (LL-HLS), Shaka Player (LL-HLS), Shaka
# Player (LL-DASH) and dash.js (LL-DASH). Each plays for HOLD seconds after
# it starts; the distance behind live (wall clock minus the playhead's
# PROGRAM-DATE-TIME, or for DASH its presentation time, which is wall-clock
# time since availabilityStartTime is the epoch) is sampled every 250 ms.
# Prints one line a player: median over the hold, median over its last
# 10 s, the player's own target, stalls.
#
# Usage: bash bench/player_latency.sh      (about 5 minutes)
# Env:   HOLD=60 (seconds each player plays), ENGINES="hls shaka shaka-dash
#        dashjs" (also hls-rate1 and hls-rate1.5: hls.js with
#        maxLiveSyncPlaybackRate 1, hls.js's own default, or 1.5, the
#        page's), KEEP=DIR (keep the JSON
#        reports), PROFILE=release|debug (which build of livecdn)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HOLD=${HOLD:-60}
ENGINES=${ENGINES:-"hls shaka shaka-dash dashjs"}
KEEP=${KEEP:-}
PROFILE=${PROFILE:-release}
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/$PROFILE/livecdn"
WORK=$(mktemp -d)
UP_PID=
cleanup() {
    [ -n "$UP_PID" ] && kill "$UP_PID" 2>/dev/null && wait "$UP_PID" 2>/dev/null || true
    [ -n "$KEEP" ] && mkdir -p "$KEEP" && cp "$WORK"/*.json "$KEEP"/ 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
log() { printf '%s\n' "$*" >&2; }

[ -e "$ROOT/player/node_modules/dashjs" ] || { log "run: npm ci --prefix player"; exit 1; }
log "building livecdn ($PROFILE)"
PROFILE_FLAG=$([ "$PROFILE" = release ] && echo --release || true)
(cd "$ROOT" && cargo build $PROFILE_FLAG --bin livecdn >/dev/null 2>"$WORK/build.log") \
    || { cat "$WORK/build.log" >&2; exit 1; }

export LIVECDN_LOG=warn
"$BIN" up --demo --rtmp-listen 127.0.0.1:0 --http-listen 127.0.0.1:0 \
    >"$WORK/up.out" 2>"$WORK/up.log" &
UP_PID=$!
for i in $(seq 1 150); do
    grep -q '^edge ' "$WORK/up.out" 2>/dev/null && break
    [ "$i" = 150 ] && { log "livecdn up printed no addresses"; cat "$WORK/up.log" >&2; exit 1; }
    sleep 0.1
done
word() { grep -m1 "^$1 " "$WORK/up.out" | tr ' ' '\n' | sed -n "s/^$2=//p"; }
EDGE_HTTP=$(word edge edge_http)
EDGE_HTTPS=$(word edge edge_https)
SPKI=$(word edge spki)
# Every rendition in the MPD (complete segments) first (bounded).
for i in $(seq 1 60); do
    reps=$(curl -fsS --max-time 5 "http://$EDGE_HTTP/live/demo/manifest.mpd" 2>/dev/null | grep -c '<Representation ' || true)
    [ "$reps" -ge 4 ] && break
    [ "$i" = 60 ] && { log "the demo stream did not come up"; cat "$WORK/up.log" >&2; exit 1; }
    sleep 1
done
PORT=${EDGE_HTTPS##*:}
log "edge https://localhost:$PORT (h2), each player for ${HOLD}s"

printf '%-12s %14s %14s %10s %7s\n' player median_s last10s_median target_s stalls
for engine in $ENGINES; do
    case "$engine" in
        hls) query="" ;;
        hls-rate1) query="&maxLiveSyncPlaybackRate=1" ;;
        hls-rate1.5) query="&maxLiveSyncPlaybackRate=1.5" ;;
        shaka) query="&engine=shaka" ;;
        shaka-dash) query="&engine=shaka&format=dash" ;;
        dashjs) query="&engine=dashjs" ;;
        *) log "unknown engine $engine"; exit 1 ;;
    esac
    node "$ROOT/player/test/play.mjs" "https://localhost:$PORT/?stream=demo$query" \
        --seconds 30 --hold "$HOLD" --max-stalls 1000 \
        "--arg=--ignore-certificate-errors-spki-list=$SPKI" --arg=--disable-quic \
        >"$WORK/$engine.json" 2>"$WORK/$engine.log" || true
    python3 - "$engine" "$WORK/$engine.json" <<'EOF'
import json, sys
engine, path = sys.argv[1], sys.argv[2]
try:
    r = json.loads(open(path).read().strip().splitlines()[-1])
except Exception as e:
    print(f"{engine:<12} no report ({e})")
    sys.exit(0)
f = lambda x: "-" if x is None else f"{x:.2f}"
print(f"{engine:<12} {f(r.get('hold_behind_live_median_s')):>14} {f(r.get('hold_behind_live_end_median_s')):>14} "
      f"{f(r.get('target_latency_s')):>10} {r.get('hold_stalls', '-'):>7}"
      + ("" if r.get("ok") else f"  ({r.get('error')})"))
EOF
done
