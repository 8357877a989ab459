# Shared by the bench scripts (sourced, not run): installs what is missing,
# builds livecdn (release), and starts on loopback the origin with its
# built-in publisher (`livecdn up --demo`, core CLIENT_CPU), a livecdn edge
# and Debian's nginx with proxy_cache + proxy_cache_lock (both on core
# SERVER_CPU), all in front of that origin. Sets ORIGIN, EDGE, NGINX
# (host:port), EDGE_PID, NGINX_PIDS (the worker), WORK (a temporary
# directory removed on exit) and the helper functions below.
# The caller sets NEED_TOOLS (extra Debian packages it needs) first.
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SERVER_CPU=${SERVER_CPU:-1}
CLIENT_CPU=${CLIENT_CPU:-0}
BIN="$ROOT/target/release/livecdn"

WORK=$(mktemp -d /tmp/livecdn-bench.XXXXXX)
PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        # bounded: the children exit on SIGTERM within a second or two
        timeout 10 tail --pid="$pid" -f /dev/null 2>/dev/null || kill -9 "$pid" 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { printf '%s\n' "$*" >&2; }

# --- tools ------------------------------------------------------------------
need=()
for t in "${NEED_TOOLS[@]}"; do command -v "$t" >/dev/null || need+=("$t"); done
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx-light)
command -v taskset >/dev/null || need+=(util-linux)
if [ ${#need[@]} -gt 0 ]; then
    log "installing ${need[*]} with apt"
    apt-get install -y "${need[@]}" >/dev/null 2>&1 \
        || { apt-get update >/dev/null && apt-get install -y "${need[@]}" >/dev/null; }
fi
NGINX_BIN=$(command -v nginx || echo /usr/sbin/nginx)
command -v python3 >/dev/null || { log "python3 is required (herd client)"; exit 1; }
[ "$(nproc)" -ge 2 ] || { log "needs at least 2 cores"; exit 1; }

log "building livecdn (release)"
(cd "$ROOT" && cargo build --release --bin livecdn >/dev/null 2>"$WORK/build.log") \
    || { cat "$WORK/build.log" >&2; exit 1; }

hard=$(ulimit -Hn); if [ "$hard" = unlimited ] || [ "$hard" -ge 65536 ]; then ulimit -n 65536; else ulimit -n "$hard"; fi
[ "$(ulimit -n)" -ge 4096 ] || { log "ulimit -n is $(ulimit -n); 1000 connections need more"; exit 1; }

# --- helpers ----------------------------------------------------------------
# wait_for FILE REGEX: the first stdout line of a child that matches (15 s max).
wait_line() {
    local file=$1 re=$2 i
    for i in $(seq 1 150); do
        if grep -m1 -E "$re" "$file" 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    log "timed out waiting for /$re/ in $file"; return 1
}
field() { tr ' ' '\n' | sed -n "s/^$1=//p" | head -1; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# cpu_ticks PID...: utime+stime of the processes, in clock ticks.
cpu_ticks() { local t=0 p; for p in "$@"; do t=$((t + $(awk '{print $14+$15}' "/proc/$p/stat" 2>/dev/null || echo 0))); done; echo $t; }
# core_busy CPU: busy jiffies of one core so far (from /proc/stat).
core_busy() { awk -v c="cpu$1" '$1 == c { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat; }
rss_kib() { local t=0 p; for p in "$@"; do t=$((t + $(awk '/^VmRSS/{print $2}' "/proc/$p/status"))); done; echo $t; }
metric_sum() { # URL METRIC [label regex]: sum of a Prometheus counter family
    curl -fsS --max-time 5 "$1" | awk -v m="$2" -v f="${3:-}" \
        'index($0, m) == 1 && (f == "" || $0 ~ f) { s += $NF } END { printf "%d\n", s }'
}
curl_ok() { curl -fsS --max-time 5 -o /dev/null "$1"; }

# --- processes --------------------------------------------------------------
export LIVECDN_LOG=warn
log "starting livecdn up --demo (origin + publisher) on core $CLIENT_CPU"
taskset -c "$CLIENT_CPU" "$BIN" up --demo --rtmp-listen 127.0.0.1:0 --http-listen 127.0.0.1:0 \
    >"$WORK/up.out" 2>"$WORK/up.log" &
PIDS+=($!)
ORIGIN=$(wait_line "$WORK/up.out" '^listening ' | field http)

log "starting livecdn edge (h1/h2c, no h3) on core $SERVER_CPU"
taskset -c "$SERVER_CPU" "$BIN" edge --origin "http://$ORIGIN" --no-h3 \
    --http-listen 127.0.0.1:0 --https-listen 127.0.0.1:0 \
    >"$WORK/edge.out" 2>"$WORK/edge.log" &
EDGE_PID=$!
PIDS+=("$EDGE_PID")
EDGE=$(wait_line "$WORK/edge.out" '^edge ' | field edge_http)

NGINX_PORT=$(free_port)
sed -e "s#@WORK@#$WORK#g" -e "s#@PORT@#$NGINX_PORT#g" -e "s#@ORIGIN@#$ORIGIN#g" \
    "$ROOT/bench/nginx.conf.tmpl" >"$WORK/nginx.conf"
log "starting nginx $("$NGINX_BIN" -v 2>&1 | sed 's/.*nginx\///') (worker_processes 1) on core $SERVER_CPU"
taskset -c "$SERVER_CPU" "$NGINX_BIN" -p "$WORK" -c "$WORK/nginx.conf" -e "$WORK/nginx-error.log" &
NGINX_MASTER=$!
PIDS+=("$NGINX_MASTER")
NGINX="127.0.0.1:$NGINX_PORT"

for i in $(seq 1 100); do
    curl_ok "http://$ORIGIN/live/demo/master.m3u8" 2>/dev/null \
        && curl_ok "http://$EDGE/healthz" 2>/dev/null \
        && curl_ok "http://$NGINX/live/demo/master.m3u8" 2>/dev/null && break
    [ "$i" = 100 ] && { log "servers not up in 20 s"; cat "$WORK"/*.log >&2; exit 1; }
    sleep 0.2
done
# The worker only: the master idles, and the cache loader exits after a minute.
NGINX_PIDS=($(ps -o pid=,args= --ppid "$NGINX_MASTER" | awk '/worker process/ { print $1 }'))
[ ${#NGINX_PIDS[@]} -eq 1 ] || { log "expected one nginx worker, got: ${NGINX_PIDS[*]}"; exit 1; }
log "origin http://$ORIGIN  edge http://$EDGE  nginx http://$NGINX"
