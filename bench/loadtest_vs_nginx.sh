#!/usr/bin/env bash
# The same load-test play scenario against the livecdn edge and against
# Debian's nginx (proxy_cache + proxy_cache_lock), both in front of the same
# livecdn origin on loopback, one after the other; prints both figures and
# their ratio (nginx / edge: above 1 means nginx is higher).
#
# Usage: bash bench/loadtest_vs_nginx.sh     (about 1.5 minutes; root for apt)
# Env:   VIEWERS=300, DURATION=20s, RAMP=5s, PROTOCOL=h1 (nginx here serves
#        cleartext HTTP/1.1 only), SERVER_CPU=1, CLIENT_CPU=0, KEEP=DIR (keep
#        the two JSON reports in DIR)
#
# The edge and nginx run on core SERVER_CPU (one at a time under load); the
# origin, its built-in publisher and the harness on core CLIENT_CPU.
set -euo pipefail

VIEWERS=${VIEWERS:-300}
DURATION=${DURATION:-20s}
RAMP=${RAMP:-5s}
PROTOCOL=${PROTOCOL:-h1}
KEEP=${KEEP:-}
NEED_TOOLS=()
# Tools, the release build, helpers, and origin + edge + nginx started.
source "$(dirname "${BASH_SOURCE[0]}")/servers.sh"

# A few complete segments first, bounded.
for i in $(seq 1 30); do
    n=$(curl -fsS "http://$ORIGIN/live/demo/source/index.m3u8" | grep -c '\.m4s$' || true)
    [ "$n" -ge 3 ] && break
    sleep 1
done

# play NAME HOST:PORT PIDS...: one run; server CPU seconds on stdout.
play() {
    local name=$1 host=$2; shift 2
    local before after
    before=$(cpu_ticks "$@")
    log "playing $VIEWERS viewers ($PROTOCOL, $DURATION, ramp $RAMP) through $name"
    taskset -c "$CLIENT_CPU" "$BIN" loadtest play "http://$host/live/demo/master.m3u8" \
        --viewers "$VIEWERS" --protocol "$PROTOCOL" --duration "$DURATION" --ramp "$RAMP" \
        --json "$WORK/$name.json" >"$WORK/$name.txt" 2>&1 \
        || { cat "$WORK/$name.txt" >&2; exit 1; }
    after=$(cpu_ticks "$@")
    echo "scale=3; ($after - $before) / $(getconf CLK_TCK)" | bc
}
command -v bc >/dev/null || { apt-get install -y bc >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y bc >/dev/null; }; }
EDGE_CPU=$(play edge "$EDGE" "$EDGE_PID")
NGINX_CPU=$(play nginx "$NGINX" "${NGINX_PIDS[@]}")
[ -n "$KEEP" ] && mkdir -p "$KEEP" && cp "$WORK/edge.json" "$WORK/nginx.json" "$KEEP/"

python3 - "$WORK/edge.json" "$WORK/nginx.json" "$EDGE_CPU" "$NGINX_CPU" "$("$NGINX_BIN" -v 2>&1 | sed 's/.*nginx\///')" <<'PY'
import json, sys
edge, nginx = (json.load(open(p)) for p in sys.argv[1:3])
cpu = {"edge": float(sys.argv[3]), "nginx": float(sys.argv[4])}
run = edge["run"]
print(f"{run['viewers']} viewers, {run['protocol']}, {run['duration_ms'] / 1000:.0f} s: "
      f"livecdn edge vs nginx {sys.argv[5]} proxy_cache, same origin, same scenario")

def get(report, *path):
    v = report
    for k in path:
        if not isinstance(v, dict) or v.get(k) is None:
            return None
        v = v[k]
    return v

rows = [
    ("latency behind live p50 (ms)", ("summary", "latency_behind_live", "p50")),
    ("latency behind live p90 (ms)", ("summary", "latency_behind_live", "p90")),
    ("time to first part p50 (ms)", ("summary", "time_to_first_part", "p50")),
    ("time to first part p99 (ms)", ("summary", "time_to_first_part", "p99")),
    ("blocking playlist p50 (ms)", ("summary", "requests_by_kind", "blocking_playlist", "total", "p50")),
    ("blocking playlist p99 (ms)", ("summary", "requests_by_kind", "blocking_playlist", "total", "p99")),
    ("hinted part first byte p50 (ms)", ("summary", "requests_by_kind", "hinted_part", "ttfb", "p50")),
    ("part p99 (ms)", ("summary", "requests_by_kind", "part", "total", "p99")),
    ("stalls", ("summary", "stalls")),
    ("requests", ("summary", "requests")),
    ("bytes", ("summary", "bytes")),
]
def fmt(v):
    return "-" if v is None else (f"{v:.1f}" if isinstance(v, float) else str(v))
def ratio(a, b):
    return "-" if not a or b is None else f"{b / a:.2f}"
print(f"{'':34} {'edge':>12} {'nginx':>12} {'nginx/edge':>11}")
for label, path in rows:
    a, b = get(edge, *path), get(nginx, *path)
    print(f"{label:34} {fmt(a):>12} {fmt(b):>12} {ratio(a, b):>11}")
errs = {n: sum((r["summary"].get("errors") or {}).values()) for n, r in (("edge", edge), ("nginx", nginx))}
print(f"{'errors':34} {errs['edge']:>12} {errs['nginx']:>12}")
per = {}
for n, r in (("edge", edge), ("nginx", nginx)):
    reqs = r["summary"]["requests"] or 1
    per[n] = cpu[n] / reqs * 1e6
print(f"{'server CPU (s)':34} {cpu['edge']:>12.2f} {cpu['nginx']:>12.2f} {ratio(cpu['edge'], cpu['nginx']):>11}")
print(f"{'server CPU per request (us)':34} {per['edge']:>12.1f} {per['nginx']:>12.1f} {ratio(per['edge'], per['nginx']):>11}")
for n, r in (("edge", edge), ("nginx", nginx)):
    h = r["harness"]
    if h.get("saturated"):
        print(f"note: the harness flagged itself saturated during the {n} run (its figures are a floor)")
PY
