#!/usr/bin/env bash
# livecdn edge vs nginx proxy_cache, both in front of the same livecdn origin,
# on loopback. See bench/README.md for what each scenario means and for the
# numbers of one run.
#
# Usage: bash bench/edge_vs_nginx.sh        (about 3 minutes; root for apt)
# Env:   DURATION=10 (seconds per wrk run), HERD=500, ROUNDS=3,
#        SERVER_CPU=1, CLIENT_CPU=0 (cores for taskset)
#
# Pinning: the livecdn edge and nginx (worker_processes 1) each run on core
# SERVER_CPU, one at a time under load; wrk, the herd client and the origin
# with its built-in publisher (`livecdn up --demo`) run on core CLIENT_CPU.
# That is a per-core comparison, not a machine-capacity one.
set -euo pipefail

DURATION=${DURATION:-10}
HERD=${HERD:-500}
ROUNDS=${ROUNDS:-3}
NEED_TOOLS=(wrk)
# Tools, the release build, helpers, and origin + edge + nginx started.
source "$(dirname "${BASH_SOURCE[0]}")/servers.sh"

# Let the live window fill (10 segments of about 2 s), bounded.
for i in $(seq 1 40); do
    n=$(curl -fsS "http://$ORIGIN/live/demo/source/index.m3u8" | grep -c '\.m4s$' || true)
    [ "$n" -ge 8 ] && break
    sleep 1
done

# Objects listed in the video and audio playlists, oldest first.
list_objects() {
    local r
    for r in source audio; do
        echo "/live/demo/$r/init.mp4"
        curl -fsS "http://$ORIGIN/live/demo/$r/index.m3u8" \
            | sed -n -e 's#^\([0-9][0-9]*\.m4s\)$#\1#p' -e 's#.*EXT-X-PART:.*URI="\([^"]*\)".*#\1#p' \
            | sed "s#^#/live/demo/$r/#"
    done
}
warm() { # PATH...: fetch through both servers; print those that both served
    local p
    for p in "$@"; do
        curl_ok "http://$EDGE$p" 2>/dev/null && curl_ok "http://$NGINX$p" 2>/dev/null && echo "$p"
    done
}

# wrk NAME SERVER CONNS TARGET [LUA] -> one result line in $WORK/results
run_wrk() {
    local name=$1 server=$2 conns=$3 target=$4 lua=${5:-} pids addr out t0 t1 u0 u1 c0 c1
    if [ "$server" = livecdn ]; then pids=("$EDGE_PID"); addr=$EDGE; else pids=("${NGINX_PIDS[@]}"); addr=$NGINX; fi
    out="$WORK/wrk-$name-$server-$conns.txt"
    t0=$(cpu_ticks "${pids[@]}"); u0=$(upstream_count "$server"); c0=$(core_busy "$CLIENT_CPU")
    taskset -c "$CLIENT_CPU" wrk -t1 -c"$conns" -d"${DURATION}s" --timeout 5s --latency \
        ${lua:+-s "$lua"} "http://$addr$target" >"$out" 2>&1 || true
    t1=$(cpu_ticks "${pids[@]}"); u1=$(upstream_count "$server"); c1=$(core_busy "$CLIENT_CPU")
    awk -v name="$name" -v server="$server" -v conns="$conns" -v cpu="$(( (t1 - t0) ))" \
        -v hz="$(getconf CLK_TCK)" -v dur="$DURATION" -v client="$((c1 - c0))" -v up="$((u1 - u0))" -v rss="$(rss_kib "${pids[@]}")" '
        function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0;
                         if (v ~ /m$/) return v * 60000; if (v ~ /s$/) return v * 1000; return v }
        /Requests\/sec/ { rps = $2 }
        /^ +50%/ { p50 = ms($2) } /^ +99%/ { p99 = ms($2) }
        /Non-2xx/ { bad = $NF } /Socket errors/ { serr = $0; sub(/.*Socket errors: /, "", serr); gsub(/ /, "", serr) }
        END { printf "%s %s %s %.0f %.2f %.2f %d %s %.0f %d %d %.1f %.0f\n", name, server, conns, rps, p50, p99,
              bad + 0, (serr == "" ? "-" : serr), 100 * cpu / hz / dur, up, rss / 1024,
              (rps > 0 ? 1e6 * cpu / hz / dur / rps : 0), 100 * client / hz / dur }' "$out" >>"$WORK/results"
    tail -1 "$WORK/results" >&2
}
# Requests each server made to the origin so far.
upstream_count() {
    if [ "$1" = livecdn ]; then
        metric_sum "http://$EDGE/metrics" livecdn_edge_upstream_fetches_total
    else
        wc -l <"$WORK/nginx-upstream.log" 2>/dev/null || echo 0
    fi
}

: >"$WORK/results"
echo "livecdn edge vs nginx $("$NGINX_BIN" -v 2>&1 | sed 's/.*nginx\///'): each server pinned to core $SERVER_CPU" \
     "(nginx worker_processes 1; the edge's tokio runtime sees 1 core), wrk -t1 on core $CLIENT_CPU," \
     "origin + publisher on core $CLIENT_CPU; loopback; ${DURATION} s per run."

# --- (i) one hot object -------------------------------------------------------
hot_run() { # CONNS
    local seg
    # A complete segment, picked fresh per run so that the object is well
    # inside the origin's window for the whole run.
    seg=$(list_objects | grep -E '/source/[0-9]+\.m4s$' | tail -2 | head -1)
    warm "$seg" >/dev/null
    warm "$seg" >/dev/null
    [ -n "${HOT_SIZE:-}" ] || HOT_SIZE=$(curl -fsS -o /dev/null -w '%{size_download}' "http://$ORIGIN$seg")
    run_wrk hot livecdn "$1" "$seg"
    run_wrk hot nginx "$1" "$seg"
}
log "(i) hot object"
hot_run 64
hot_run 1000

# --- (ii) 100 rotating objects -----------------------------------------------
log "(ii) 100 rotating objects: collecting and warming"
: >"$WORK/paths"
for round in 1 2 3; do
    warm $(list_objects | grep -v -x -F -f "$WORK/paths" || true) >>"$WORK/paths"
    [ "$(wc -l <"$WORK/paths")" -ge 100 ] && break
    sleep 7
done
head -100 "$WORK/paths" >"$WORK/paths100"
NOBJ=$(wc -l <"$WORK/paths100")
ROT_BYTES=$(while read -r p; do curl -fsS -o /dev/null -w '%{size_download}\n' "http://$EDGE$p"; done <"$WORK/paths100" \
    | awk '{ s += $1 } END { printf "%.0f", s / NR / 1024 }')
cat >"$WORK/rotate.lua" <<EOF
local paths = {}
for line in io.lines("$WORK/paths100") do paths[#paths + 1] = line end
local i = 0
request = function()
  i = i % #paths + 1
  return wrk.format("GET", paths[i])
end
EOF
log "(ii) $NOBJ objects, mean $ROT_BYTES KiB"
for c in 64 1000; do
    run_wrk rotate livecdn "$c" / "$WORK/rotate.lua"
    run_wrk rotate nginx "$c" / "$WORK/rotate.lua"
done

# --- (iii) cold herd ------------------------------------------------------------
cat >"$WORK/herd.py" <<'EOF'
# HERD clients open their connections, wait for the origin to publish a part
# (a blocking reload straight to the origin), then all ask the server at once
# for an object the origin will only have about one part (0.33 s) later:
# the next blocking playlist (kind=playlist) or the preload-hinted part
# (kind=part). Prints one JSON line.
import asyncio, http.client, json, re, sys, time
origin, target, kind, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
HINT = re.compile(r'#EXT-X-PRELOAD-HINT:TYPE=PART,URI="(\d+)\.(\d+)\.m4s"')

def get(path):
    h, p = origin.split(':')
    c = http.client.HTTPConnection(h, int(p), timeout=10)
    c.request('GET', path)
    body = c.getresponse().read().decode()
    c.close()
    return body

async def main():
    host, port = target.split(':')
    conns = await asyncio.gather(*[asyncio.open_connection(host, int(port)) for _ in range(n)])
    m, p = HINT.search(get('/live/demo/source/index.m3u8')).groups()
    # Returns as soon as part m.p exists; the new hint is the part in production.
    m, p = HINT.search(get(f'/live/demo/source/index.m3u8?_HLS_msn={m}&_HLS_part={p}')).groups()
    path = (f'/live/demo/source/index.m3u8?_HLS_msn={m}&_HLS_part={p}' if kind == 'playlist'
            else f'/live/demo/source/{m}.{p}.m4s')
    req = f'GET {path} HTTP/1.1\r\nHost: {target}\r\nConnection: close\r\n\r\n'.encode()
    async def one(r, w):
        t0 = time.perf_counter()
        w.write(req)
        try:
            data = await asyncio.wait_for(r.read(), 15)
            status = int(data[9:12]) if data[:5] == b'HTTP/' else 0
        except Exception:
            status = -1
        w.close()
        return status, (time.perf_counter() - t0) * 1000
    res = await asyncio.gather(*[one(r, w) for r, w in conns])
    print(json.dumps({'path': path, 'status': [s for s, _ in res], 'ms': [t for _, t in res]}))

asyncio.run(main())
EOF

herd() { # SERVER KIND -> appends to results: herd-KIND SERVER N p50 p99 bad - cpu upstream rss
    local server=$1 kind=$2 addr pids u0 u1 all r
    if [ "$server" = livecdn ]; then addr=$EDGE; pids=("$EDGE_PID"); else addr=$NGINX; pids=("${NGINX_PIDS[@]}"); fi
    : >"$WORK/herd-$server-$kind.json"
    u0=$(upstream_count "$server")
    for r in $(seq 1 "$ROUNDS"); do
        taskset -c "$CLIENT_CPU" timeout 60 python3 "$WORK/herd.py" "$ORIGIN" "$addr" "$kind" "$HERD" \
            >>"$WORK/herd-$server-$kind.json"
    done
    u1=$(upstream_count "$server")
    python3 - "$WORK/herd-$server-$kind.json" "$server" "$kind" "$((u1 - u0))" "$ROUNDS" "$(rss_kib "${pids[@]}")" \
        >>"$WORK/results" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
ms = sorted(t for r in rows for t in r['ms'])
bad = sum(1 for r in rows for s in r['status'] if s != 200)
q = lambda f: ms[min(len(ms) - 1, int(f * len(ms)))]
print(f"herd-{sys.argv[3]} {sys.argv[2]} {len(rows[0]['ms'])} 0 {q(.5):.2f} {q(.99):.2f} {bad} - - "
      f"{int(sys.argv[4]) / int(sys.argv[5]):.1f} {int(sys.argv[6]) // 1024} - -")
EOF
    tail -1 "$WORK/results" >&2
}
log "(iii) cold herd: $HERD clients x $ROUNDS rounds"
for kind in playlist part; do
    herd livecdn "$kind"
    herd nginx "$kind"
done

# --- (iv) h3 vs h2 -----------------------------------------------------------------
# wrk speaks HTTP/1.1 only and Debian's curl has no HTTP/3: the h3 against h2
# figures come from the harness's own clients instead.
H3_NOTE="(iv) h3 vs h2: see cargo bench --bench edge_protocols (the load-test harness's h1/h2/h3 clients)."

# --- report -------------------------------------------------------------------------
ERRS_EDGE=$(grep -c -E ' (ERROR|WARN) ' "$WORK/edge.log" || true)
ERRS_NGINX=$(grep -c -E '\[(error|crit|alert|emerg)\]' "$WORK/nginx-error.log" 2>/dev/null || true)
echo
echo "hot object: ${HOT_SIZE:-?} bytes (one complete /live/demo/source/N.m4s); rotating: $NOBJ objects" \
     "(init, segments and parts of video and audio), mean $ROT_BYTES KiB; herd: $HERD clients at once, $ROUNDS rounds."
python3 - "$WORK/results" <<'EOF'
import sys
rows = {}
for line in open(sys.argv[1]):
    name, server, conns, rps, p50, p99, bad, serr, cpu, up, rss, us, client = line.split()
    rows.setdefault((name, conns), {})[server] = dict(rps=float(rps), p50=float(p50), p99=float(p99),
        bad=int(bad), serr=serr, cpu=cpu, up=float(up), rss=rss, us=us, client=client)
ratio = lambda a, b: f"{a / b:.2f}" if b else "-"
print()
print("| scenario | conns | livecdn req/s | nginx req/s | ratio | livecdn p50 / p99 ms | nginx p50 / p99 ms | p99 ratio | upstream fetches l / n | non-2xx l / n | server CPU % l / n | server CPU µs/req l / n | client core busy % l / n | RSS MiB l / n |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
for (name, conns), s in rows.items():
    l, n = s.get('livecdn'), s.get('nginx')
    if not l or not n:
        continue
    herd = name.startswith('herd')
    lr = '-' if herd else '%.0f' % l['rps']
    nr = '-' if herd else '%.0f' % n['rps']
    rr = '-' if herd else ratio(l['rps'], n['rps'])
    print(f"| {name} | {conns} | {lr} | {nr} | {rr} | {l['p50']:.2f} / {l['p99']:.2f} | {n['p50']:.2f} / {n['p99']:.2f} | "
          f"{ratio(l['p99'], n['p99'])} | {l['up']:g} / {n['up']:g} | {l['bad']} / {n['bad']} | {l['cpu']} / {n['cpu']} | {l['us']} / {n['us']} | {l['client']} / {n['client']} | {l['rss']} / {n['rss']} |")
print()
errs = [f"{k[0]}/{k[1]} {srv}: socket errors {v['serr']}" for k, s in rows.items() for srv, v in s.items() if v['serr'] != '-']
print("socket errors: " + ("; ".join(errs) if errs else "none"))
EOF
echo "herd upstream fetches are per round (edge: livecdn_edge_upstream_fetches_total delta; nginx: access-log lines with \$upstream_addr)."
echo "edge log warnings/errors: $ERRS_EDGE; nginx error-log errors: $ERRS_NGINX"
echo "$H3_NOTE"
