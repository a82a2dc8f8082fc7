#!/usr/bin/env bash
# What recording metrics costs the request path: put throughput against one basalt, with and
# without a scraper reading /metrics every SCRAPE_MS (default 100 ms, 150 times Prometheus'
# usual 15 s), alternating plain and scraped runs so drift on the machine hits both alike.
#
# Usage: bench/metrics-cost.sh
# Knobs (environment): SECONDS_PER_RUN (10), ROUNDS (3 per mode), CONNS (100), CLIENTS (1000),
#   SCRAPE_MS (100), PORT (23793), BASALT_BIN (target/release/basalt).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
SECONDS_PER_RUN=${SECONDS_PER_RUN:-10}
ROUNDS=${ROUNDS:-3}
CONNS=${CONNS:-100}
CLIENTS=${CLIENTS:-1000}
SCRAPE_MS=${SCRAPE_MS:-100}
PORT=${PORT:-23793}
BASALT_BIN=${BASALT_BIN:-$repo/target/release/basalt}

cargo build --release -q -p basalt-bench --bin basalt-bench
[ -x "$BASALT_BIN" ] || cargo build --release -q --bin basalt
workdir=$(mktemp -d /tmp/basalt-metrics-cost.XXXXXX)
url="http://127.0.0.1:$PORT"
"$BASALT_BIN" --data-dir "$workdir/data" --listen-client-urls "$url" \
  --advertise-client-urls "$url" --listen-peer-urls "http://127.0.0.1:$((PORT + 10))" \
  2>"$workdir/basalt.log" &
server=$!
scraper=
cleanup() {
  [ -n "$scraper" ] && kill "$scraper" 2>/dev/null || true
  kill "$server" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$workdir"
}
trap cleanup EXIT
for _ in $(seq 1 150); do
  curl -sf "$url/health" >/dev/null 2>&1 && break
  sleep 0.1
done

scrape_forever() {
  local scrapes=0
  while true; do
    curl -sf -o /dev/null "$url/metrics" || { echo "scrape failed" >&2; exit 1; }
    scrapes=$((scrapes + 1))
    sleep "$(awk "BEGIN { print $SCRAPE_MS / 1000 }")"
  done
}

run() {
  "$repo/target/release/basalt-bench" put --endpoints "127.0.0.1:$PORT" --conns "$CONNS" \
    --clients "$CLIENTS" --seconds "$SECONDS_PER_RUN" --json | tail -1 |
    python3 -c 'import json,sys; r=json.load(sys.stdin); print("%.0f req/s  p50 %.2f ms  p99 %.2f ms  errors %d" % (r["qps"], r["p50_ms"], r["p99_ms"], r["errors"]))'
}

for round in $(seq 1 "$ROUNDS"); do
  echo "round $round plain:   $(run)"
  scrape_forever &
  scraper=$!
  echo "round $round scraped: $(run)"
  kill "$scraper"; wait "$scraper" 2>/dev/null || true
  scraper=
done
