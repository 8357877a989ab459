#!/usr/bin/env bash
# Builds every cargo-fuzz target on this machine's stable toolchain and runs
# each from its committed seeds (fuzz/seeds/TARGET) for a bounded time, then
# prints executions (total and per second) and crashes per target.
#
#   bash fuzz/run.sh [SECONDS_PER_TARGET=60] [TARGET...]
#
# Stable rustc takes cargo-fuzz's -Z flags with RUSTC_BOOTSTRAP=1; no
# sanitizer (`--sanitizer none`): a panic is what the bodies assert on. A
# crash input lands in fuzz/artifacts/TARGET/: add it to that body's unit
# test seeds so `cargo test` replays it.
set -euo pipefail
cd "$(dirname "$0")"
SECS="${1:-60}"
shift || true
export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || mapfile -t TARGETS < <(cargo fuzz list)
cargo fuzz build --sanitizer none -O
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
printf '%-18s %12s %10s %8s\n' target executions exec/s crashes
status=0
for t in "${TARGETS[@]}"; do
    corpus="$WORK/$t"
    mkdir -p "$corpus"
    [ -d "seeds/$t" ] && cp "seeds/$t"/* "$corpus/"
    log="$WORK/$t.log"
    set +e
    timeout $((SECS + 120)) cargo fuzz run --sanitizer none -O "$t" "$corpus" -- \
        -max_total_time="$SECS" -print_final_stats=1 -max_len=65536 >"$log" 2>&1
    rc=$?
    set -e
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo 0)
    rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo 0)
    crashes=$(ls "artifacts/$t" 2>/dev/null | grep -c '^crash-' || true)
    printf '%-18s %12s %10s %8s\n' "$t" "${execs:-0}" "${rate:-0}" "$crashes"
    if [ "$rc" -ne 0 ]; then
        status=1
        tail -30 "$log" >&2
    fi
done
exit $status
