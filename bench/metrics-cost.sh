#!/usr/bin/env bash
# Put throughput with and without /metrics scraped (docs/benchmarks.md, "Put throughput while
# /metrics is scraped"): ROUNDS rounds, each a "quiet" and a "scraped" run of basalt-bench put
# (CONNS connections, CLIENTS clients, 256-byte values, RUN_SECONDS s) against a fresh member; in
# scraped runs a loop fetches /metrics every 0.1 s throughout. Prints one line per run with the
# load average before it and basalt-bench's JSON summary.
# Knobs (environment): ROUNDS (3), RUN_SECONDS (10), CONNS (10), CLIENTS (100), PORT (23809),
#   BIN (target/release).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
BIN=${BIN:-$repo/target/release}
ROUNDS=${ROUNDS:-3} RUN_SECONDS=${RUN_SECONDS:-10} CONNS=${CONNS:-10} CLIENTS=${CLIENTS:-100}
PORT=${PORT:-23809}
[ -x "$BIN/basalt" ] && [ -x "$BIN/basalt-bench" ] ||
  cargo build --release -q -p basalt --bin basalt -p basalt-bench
for round in $(seq "$ROUNDS"); do
  for mode in quiet scraped; do
    dir=$(mktemp -d)
    "$BIN/basalt" --data-dir "$dir/data" --listen-client-urls "http://127.0.0.1:$PORT" \
      --advertise-client-urls "http://127.0.0.1:$PORT" --log-level warn >/dev/null 2>&1 &
    server=$!
    for _ in $(seq 100); do curl -sf "127.0.0.1:$PORT/health" >/dev/null && break; sleep 0.1; done
    scraper=
    if [ "$mode" = scraped ]; then
      (while :; do curl -s -o /dev/null "127.0.0.1:$PORT/metrics"; sleep 0.1; done) &
      scraper=$!
    fi
    load=$(cut -d' ' -f1-3 /proc/loadavg)
    summary=$("$BIN/basalt-bench" put --endpoints "127.0.0.1:$PORT" --conns "$CONNS" \
      --clients "$CLIENTS" --val-size 256 --seconds "$RUN_SECONDS" --json 2>/dev/null | tail -1)
    [ -n "$scraper" ] && kill "$scraper"
    kill "$server"; wait "$server" 2>/dev/null || true
    rm -rf "$dir"
    echo "round $round $mode (load average $load): $summary"
  done
done
