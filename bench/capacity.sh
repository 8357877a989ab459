#!/usr/bin/env bash
# How many viewers one edge carries with zero stalls on this machine, per
# protocol: `livecdn up --demo` (origin, edge and the built-in publisher in
# one process, release build) on loopback, and one `livecdn loadtest play`
# process stepping up the viewer count for h1, h2 and h3. A protocol's steps
# stop at the first step with stalls or errors. Prints one table per
# protocol: viewers, stalls, errors, latency behind live p50/p99, the
# harness's own CPU and event-loop lag, and the server's CPU.
#
# Usage: bash bench/capacity.sh          (about 9 minutes at most)
# Env:   STEPS="1000 1500 2000 5000 10000", PROTOCOLS="h1 h2 h3", DURATION=20
#        (seconds per step, ramp included), RAMP=10 (seconds), KEEP=DIR (keep
#        the JSON reports), ALL_STEPS=1 (run every step, stalls or not),
#        PIN=SERVER_CPUS:HARNESS_CPUS (e.g. PIN=1:0: `up` and its encoders on
#        CPU 1, the harness on CPU 0 with one worker per CPU it has, so each
#        side's CPU shows which one is the bottleneck)
#
#   PIN=1:0 STEPS=10000 ALL_STEPS=1 bash bench/capacity.sh   # 10,000 viewers
#
# An edge of its own, given N cores (how operators size edges):
#        EDGE_CORES=N runs `livecdn edge` as a separate process on CPUs
#        0..N-1, pulling from `livecdn up --demo` on the next ORIGIN_CORES
#        CPUs (default 2), with the harness on the next HARNESS_CORES CPUs
#        (default: all the rest). Where the machine has too few CPUs, the
#        origin and the harness share what is left (said in the output).
#        The "server CPU" column is then the edge's alone.
#
#   EDGE_CORES=1 STEPS="500 1000 1500" bash bench/capacity.sh        # this machine
#   EDGE_CORES=4 HARNESS_CORES=10 STEPS="2500 5000 10000" DURATION=40 RAMP=20 \
#       bash bench/capacity.sh                                        # 16 cores
#
# h1 viewers open up to six connections each; above about 20,000
# connections the harness spreads them over several source addresses in
# 127.0.0.0/8 (`--source-addrs`), since one address pair has only the
# ephemeral port range (about 28,000) to offer.
#
# Viewers play the lowest rendition (`--no-abr`: the 144p rung plus the audio
# rendition, about 0.3 Mbit/s a viewer), so a step measures requests more
# than bytes. The ladder's two ffmpeg encoders run beside the server; their
# CPU is shown apart.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STEPS=${STEPS:-"1000 1500 2000 5000 10000"}
PROTOCOLS=${PROTOCOLS:-"h1 h2 h3"}
DURATION=${DURATION:-20}
RAMP=${RAMP:-10}
KEEP=${KEEP:-}
ALL_STEPS=${ALL_STEPS:-0}
PIN=${PIN:-}
EDGE_CORES=${EDGE_CORES:-}
ORIGIN_CORES=${ORIGIN_CORES:-2}
HARNESS_CORES=${HARNESS_CORES:-}
if [ -n "$EDGE_CORES" ]; then
    [ -n "$PIN" ] && { echo "PIN and EDGE_CORES exclude each other" >&2; exit 1; }
    command -v taskset >/dev/null || { echo "EDGE_CORES needs taskset (util-linux)" >&2; exit 1; }
    total=$(nproc)
    [ "$EDGE_CORES" -lt "$total" ] || { echo "EDGE_CORES=$EDGE_CORES leaves no CPU of $total for the rest" >&2; exit 1; }
    EDGE_CPUS="0-$((EDGE_CORES - 1))"
    rest=$((total - EDGE_CORES))
    if [ "$rest" -gt "$ORIGIN_CORES" ]; then
        ORIGIN_CPUS="$EDGE_CORES-$((EDGE_CORES + ORIGIN_CORES - 1))"
        first=$((EDGE_CORES + ORIGIN_CORES))
    else
        # Too few CPUs: the origin shares the harness's.
        ORIGIN_CPUS="$EDGE_CORES-$((total - 1))"
        first=$EDGE_CORES
    fi
    left=$((total - first))
    if [ -z "$HARNESS_CORES" ] || [ "$HARNESS_CORES" -gt "$left" ]; then HARNESS_CORES=$left; fi
    HARNESS_CPUS="$first-$((first + HARNESS_CORES - 1))"
    PIN="$ORIGIN_CPUS:$HARNESS_CPUS"
fi
SERVER_CPUS=${PIN%%:*}
HARNESS_CPUS=${PIN#*:}
HARNESS=()
HARNESS_THREADS=()
if [ -n "$PIN" ]; then
    command -v taskset >/dev/null || { echo "PIN needs taskset (util-linux)" >&2; exit 1; }
    # One runtime worker per CPU the harness may use.
    HARNESS=(taskset -c "$HARNESS_CPUS")
    HARNESS_THREADS=(--threads "$(taskset -c "$HARNESS_CPUS" nproc)")
fi
BIN="$ROOT/target/release/livecdn"
[ -n "${CARGO_TARGET_DIR:-}" ] && BIN="$CARGO_TARGET_DIR/release/livecdn"
TCK=$(getconf CLK_TCK)

WORK=$(mktemp -d /tmp/livecdn-capacity.XXXXXX)
UP_PID=
EDGE_PID=
cleanup() {
    local p
    for p in $EDGE_PID $UP_PID; do
        kill "$p" 2>/dev/null || true
        # bounded: it exits on SIGTERM within a second or two
        timeout 10 tail --pid="$p" -f /dev/null 2>/dev/null || kill -9 "$p" 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
log() { printf '%s\n' "$*" >&2; }

command -v python3 >/dev/null || { log "python3 is required"; exit 1; }
log "building livecdn (release)"
(cd "$ROOT" && cargo build --release --bin livecdn >/dev/null 2>"$WORK/build.log") \
    || { cat "$WORK/build.log" >&2; exit 1; }

# Every h1 connection and every server-side socket is a file descriptor.
hard=$(ulimit -Hn)
if [ "$hard" = unlimited ] || [ "$hard" -ge 1048576 ]; then ulimit -n 1048576; else ulimit -n "$hard"; fi
NOFILE=$(ulimit -n)
log "open files: $NOFILE per process"

# --- the server ---------------------------------------------------------------
export LIVECDN_LOG=warn
"$BIN" up --demo --rtmp-listen 127.0.0.1:0 --http-listen 127.0.0.1:0 \
    >"$WORK/up.out" 2>"$WORK/up.log" &
UP_PID=$!
# await_announce NAME: waits (15 s at most) for NAME.out's "edge ..." line.
await_announce() {
    for i in $(seq 1 150); do
        grep -q '^edge ' "$WORK/$1.out" 2>/dev/null && return 0
        sleep 0.1
    done
    log "livecdn $1 printed no addresses"; cat "$WORK/$1.log" >&2; exit 1
}
await_announce up
word() { grep -m1 "^$1 " "$WORK/up.out" | tr ' ' '\n' | sed -n "s/^$2=//p"; }
EDGE_HTTP=$(word edge edge_http)
EDGE_HTTPS=$(word edge edge_https)
# The ladder's rungs and a few complete segments first (bounded).
for i in $(seq 1 60); do
    m=$(curl -fsS --max-time 5 "http://$EDGE_HTTP/live/demo/master.m3u8" 2>/dev/null || true)
    n=$(curl -fsS --max-time 5 "http://$EDGE_HTTP/live/demo/source/index.m3u8" 2>/dev/null | grep -c '\.m4s$' || true)
    [ "$(grep -c STREAM-INF <<<"$m")" -ge 3 ] && [ "$n" -ge 3 ] && break
    [ "$i" = 60 ] && { log "the demo stream did not come up"; cat "$WORK/up.log" >&2; exit 1; }
    sleep 1
done
if [ -n "$EDGE_CORES" ]; then
    # The edge under test: a process of its own on its own CPUs, pulling
    # from the origin of `up` (whose built-in edge stays idle).
    ORIGIN_HTTP=$(word listening http)
    printf '[listen]\nmax_connections = 1000000\n' >"$WORK/edge.toml"
    taskset -c "$EDGE_CPUS" "$BIN" edge --config "$WORK/edge.toml" --origin "http://$ORIGIN_HTTP" \
        --http-listen 127.0.0.1:0 --https-listen 127.0.0.1:0 >"$WORK/edge.out" 2>"$WORK/edge.log" &
    EDGE_PID=$!
    await_announce edge
    EDGE_HTTP=$(grep -m1 '^edge ' "$WORK/edge.out" | tr ' ' '\n' | sed -n 's/^edge_http=//p')
    EDGE_HTTPS=$(grep -m1 '^edge ' "$WORK/edge.out" | tr ' ' '\n' | sed -n 's/^edge_https=//p')
    log "edge on CPUs $EDGE_CPUS ($EDGE_CORES), origin on CPUs $ORIGIN_CPUS, harness on CPUs $HARNESS_CPUS"
fi
SERVER_PID=${EDGE_PID:-$UP_PID}
log "edge http://$EDGE_HTTP https://$EDGE_HTTPS (h3 on the same port)"
if [ -n "$PIN" ]; then
    # Every thread of `up`, and its encoders (restarted ones inherit it).
    for p in "$UP_PID" $(pgrep -P "$UP_PID" || true); do
        taskset -a -p -c "$SERVER_CPUS" "$p" >/dev/null
    done
    log "server on CPUs $SERVER_CPUS, harness on CPUs $HARNESS_CPUS (${HARNESS_THREADS[*]})"
fi

ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
ffmpeg_ticks() {
    local t=0 p
    for p in $(pgrep -P "$UP_PID" ffmpeg || true); do t=$((t + $(ticks "$p"))); done
    echo "$t"
}

# --- the steps ----------------------------------------------------------------
# step PROTOCOL VIEWERS: one run; writes $WORK/PROTOCOL-VIEWERS.{json,txt,cpu}.
step() {
    local proto=$1 n=$2 url extra=() name="$1-$2"
    case $proto in
        h1)
            url="http://$EDGE_HTTP/live/demo/master.m3u8"
            # Up to six connections a viewer, as a browser; fewer when the
            # descriptor limit (shared with the server's side) says so.
            local pool=$(( (NOFILE - 1000) / n ))
            [ "$pool" -gt 6 ] && pool=6
            [ "$pool" -lt 1 ] && pool=1
            extra=(--h1-pool "$pool")
            # One source address per 20,000 connections (port range).
            local addrs=$(( (n * pool + 19999) / 20000 ))
            [ "$addrs" -gt 1 ] && extra+=(--source-addrs "127.0.0.1-127.0.0.$addrs")
            ;;
        h2 | h3)
            url="https://$EDGE_HTTPS/live/demo/master.m3u8"
            # Four requests in flight a viewer, at most 100 streams a
            # connection (the edge allows 128).
            extra=(--insecure --connections $(( (n * 4 + 99) / 100 )))
            ;;
    esac
    local up0 ff0 t0 up1 ff1 t1
    up0=$(ticks "$SERVER_PID"); ff0=$(ffmpeg_ticks); t0=$(date +%s.%N)
    timeout $((DURATION + 60)) "${HARNESS[@]}" "$BIN" loadtest play "$url" --viewers "$n" \
        --protocol "$proto" --duration "${DURATION}s" --ramp "${RAMP}s" --no-abr "${extra[@]}" \
        "${HARNESS_THREADS[@]}" \
        --json "$WORK/$name.json" >"$WORK/$name.txt" 2>&1 || true
    up1=$(ticks "$SERVER_PID"); ff1=$(ffmpeg_ticks); t1=$(date +%s.%N)
    echo "$(( up1 - up0 )) $(( ff1 - ff0 )) $t0 $t1 ${extra[*]}" >"$WORK/$name.cpu"
}

for proto in $PROTOCOLS; do
    for n in $STEPS; do
        log "$proto: $n viewers, ${DURATION} s (ramp ${RAMP} s)"
        step "$proto" "$n"
        [ "$ALL_STEPS" = 1 ] && continue
        python3 - "$WORK/$proto-$n.json" <<'PY' || break
import json, sys
try:
    s = json.load(open(sys.argv[1]))["summary"]
except (OSError, ValueError):
    sys.exit(1)
sys.exit(1 if s["stalls"] or s["errors"] else 0)
PY
    done
done
[ -n "$KEEP" ] && mkdir -p "$KEEP" && cp "$WORK"/*.json "$WORK"/*.txt "$KEEP/"

# --- the tables ---------------------------------------------------------------
python3 - "$WORK" "$TCK" "$(nproc)" "$NOFILE" "$PROTOCOLS" "$STEPS" "$PIN" "$EDGE_CORES" "${EDGE_CPUS:-}" <<'PY'
import json, os, sys
work, tck, cores, nofile = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
protocols, steps = sys.argv[5].split(), [int(x) for x in sys.argv[6].split()]
pin, edge_cores, edge_cpus = sys.argv[7], sys.argv[8], sys.argv[9]
placed = (f"server on CPUs {pin.split(':')[0]}, harness on CPUs {pin.split(':')[1]}" if pin
          else "nothing pinned")
if edge_cores:
    print(f"livecdn edge alone on {edge_cores} core(s) (CPUs {edge_cpus}), pulling from livecdn up "
          f"--demo (origin + publisher; {placed}); one loadtest process; loopback, {cores} cores, "
          f"{nofile} open files; viewers on the lowest rendition + audio, ramped; "
          f"server CPU = the edge's, in % of one core")
else:
    print(f"livecdn up --demo (origin + edge + publisher, one process) and one loadtest process on "
          f"loopback, {cores} cores ({placed}), {nofile} open files; viewers on the lowest "
          f"rendition + audio, ramped; CPU in % of one core")
for proto in protocols:
    print(f"\n{proto}")
    print("| viewers | played | stalls | errors | latency p50 / p99 ms | harness CPU % mean / max "
          "| loop lag p50 / p99 ms | saturated | server CPU % | ffmpeg CPU % | req/s | Mbit/s | client options |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for n in steps:
        path = os.path.join(work, f"{proto}-{n}.json")
        if not os.path.exists(path):
            if os.path.exists(os.path.join(work, f"{proto}-{n}.txt")):
                tail = open(os.path.join(work, f"{proto}-{n}.txt")).read().strip().splitlines()[-1:]
                print(f"| {n} | no report: {' '.join(tail)[:80]} |")
            continue
        r = json.load(open(path))
        s, h = r["summary"], r["harness"]
        up, ff, t0, t1, *opts = open(os.path.join(work, f"{proto}-{n}.cpu")).read().split()
        wall = float(t1) - float(t0)
        lat = s.get("latency_behind_live") or {}
        lag = h.get("loop_lag") or {}
        errors = sum((s.get("errors") or {}).values())
        played = (s.get("time_to_first_part") or {}).get("count", 0)
        secs = max(r["run"]["elapsed_ms"] / 1000, 1e-3)
        print(f"| {n} | {played} | {s['stalls']} | {errors} | "
              f"{lat.get('p50', 0):.0f} / {lat.get('p99', 0):.0f} | "
              f"{h['cpu_percent_mean']:.0f} / {h['cpu_percent_max']:.0f} | "
              f"{lag.get('p50', 0):.1f} / {lag.get('p99', 0):.1f} | {'yes' if h['saturated'] else 'no'} | "
              f"{100 * int(up) / tck / wall:.0f} | {100 * int(ff) / tck / wall:.0f} | "
              f"{s['requests'] / secs:.0f} | {s['bytes'] * 8 / secs / 1e6:.0f} | {' '.join(opts)} |")
        if errors:
            print(f"|  | errors: {json.dumps(s['errors'])} |")
PY
