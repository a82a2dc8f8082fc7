#!/usr/bin/env bash
# Where a put's CPU goes: starts a fresh one-member basalt on loopback, drives
# `basalt-bench put` against it, samples the server with perf (cpu-clock, DWARF call graphs),
# and writes a flamegraph (SVG) and a table of CPU shares by layer (bench/cpu_categories.py).
#
# Usage: bench/profile-put.sh                       # 10 conns / 100 clients
#        CONNS=1 CLIENTS=1 NAME=put-1x1 bench/profile-put.sh
# Knobs: CONNS (10), CLIENTS (100), LOAD_SECONDS (12: the load's length; perf samples 6 s of it,
#   from 3 s in), NAME (put-<conns>x<clients>), OUT (docs/profiles), PORT (24790),
#   BASALT_BIN / BENCH_BIN (target/release/...), PERF_HZ (499), KEY_ARGS (the key shape:
#   compare.sh's put workloads by default, 100,000 sequential 8-byte keys and 256-byte values,
#   so that a profile sees the same tree as the figures it explains).
# Needs: perf (Debian's linux-perf), inferno (`cargo install inferno`); installs neither.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
CONNS=${CONNS:-10}
CLIENTS=${CLIENTS:-100}
LOAD_SECONDS=${LOAD_SECONDS:-12}
NAME=${NAME:-put-${CONNS}x${CLIENTS}}
OUT=${OUT:-$repo/docs/profiles}
PORT=${PORT:-24790}
BASALT_BIN=${BASALT_BIN:-$repo/target/release/basalt}
BENCH_BIN=${BENCH_BIN:-$repo/target/release/basalt-bench}
PERF_HZ=${PERF_HZ:-499}
KEY_ARGS=${KEY_ARGS:---key-size 8 --val-size 256 --key-space-size 100000 --sequential-keys}
for tool in perf inferno-collapse-perf inferno-flamegraph; do
  command -v "$tool" >/dev/null || { echo "profile-put.sh: $tool is missing" >&2; exit 1; }
done
mkdir -p "$OUT"
work=$(mktemp -d /tmp/basalt-profile.XXXXXX)
server=""
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
peer=$((PORT + 1))
"$BASALT_BIN" --data-dir "$work/data" --listen-client-urls "http://127.0.0.1:$PORT" \
  --advertise-client-urls "http://127.0.0.1:$PORT" --listen-peer-urls "http://127.0.0.1:$peer" \
  --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
  --initial-cluster "default=http://127.0.0.1:$peer" --log-level error &
server=$!
for _ in $(seq 100); do
  curl -s -o /dev/null "http://127.0.0.1:$PORT/health" && break
  sleep 0.1
done
"$BENCH_BIN" put --endpoints "127.0.0.1:$PORT" --conns "$CONNS" --clients "$CLIENTS" \
  $KEY_ARGS --seconds "$LOAD_SECONDS" --json >"$work/bench.json" &
bench=$!
sleep 3
cpu() { awk '{print $14 + $15}' "/proc/$server/stat"; }
before=$(cpu)
perf record -q -F "$PERF_HZ" -e cpu-clock --call-graph dwarf,16384 -p "$server" \
  -o "$work/perf.data" -- sleep 6 2>/dev/null
after=$(cpu)
wait "$bench"
perf script -i "$work/perf.data" 2>/dev/null | inferno-collapse-perf >"$work/folded"
inferno-flamegraph --title "basalt $NAME (one member, cpu-clock)" --minwidth 0.5 \
  <"$work/folded" >"$OUT/$NAME.svg"
{
  echo "basalt-bench: $(tail -1 "$work/bench.json")"
  echo "server CPU in the 6 s sampled: $(( (after - before) * 1000 / $(getconf CLK_TCK) )) ms"
  echo
  python3 bench/cpu_categories.py <"$work/folded"
} | tee "$OUT/$NAME.md"
echo "profile-put.sh: wrote $OUT/$NAME.svg and $OUT/$NAME.md" >&2
