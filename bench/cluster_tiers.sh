#!/usr/bin/env bash
# Latency behind live for each tier depth (origin only, edge, shield +
# edge), all behind one impaired link from the origin (20 ms each way, 1 %
# loss), in network namespaces on this machine. Needs root, iproute2,
# nftables, ffmpeg and redis-server.
#   LIVECDN_BENCH_SECONDS (default 30), LIVECDN_BENCH_VIEWERS (default 4 per depth),
#   LIVECDN_BENCH_DELAY_MS (one-way delay, default 20)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --release --test e2e_cluster_netns -- --ignored --nocapture bench_latency_by_tier_depth
