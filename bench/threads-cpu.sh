#!/usr/bin/env bash
# Where one member's time goes under put load, per thread: starts a fresh one-member basalt on
# loopback, drives `basalt-bench put` (compare.sh's put: 8-byte keys over 100,000 sequential
# keys, 256-byte values) against it, and prints the put rate, the load generator's CPU and each
# server thread's CPU (utime+stime from /proc/PID/task/*/stat over the run). A thread near 1.0
# CPU is the bottleneck; all threads well below it means the load is latency-bound.
#
# With WAL_CYCLE=1 it also traces one second of the run's io_uring submissions and completions
# (perf tracepoints) and prints, for the WAL's durable writes (WRITE_FIXED), the disk's time
# (submission to completion) and the gap from one write's completion to the next one's
# submission (what the executor takes to notice the completion, answer, and start the next).
#
# With PUT_CYCLE=1 (meant for CONNS=1 CLIENTS=1) it traces one second of the server's
# request reads, WAL writes and response sends and prints the medians of one put's four legs:
# request read to WAL write submitted, the WAL write (submit to complete), its completion to
# the response's send, and the send to the next request's read (the client and loopback).
#
# Usage: bench/threads-cpu.sh
# Knobs: CONNS (10), CLIENTS (100), SECONDS_RUN (8), PORT (24790), EXTRA_FLAGS (more basalt
#   flags, e.g. "--cores 3"), WAL_CYCLE (0), PUT_CYCLE (0), BASALT_BIN / BENCH_BIN
#   (target/release/...).
# Needs: python3; perf (Debian's linux-perf) for WAL_CYCLE=1 or PUT_CYCLE=1.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
CONNS=${CONNS:-10}
CLIENTS=${CLIENTS:-100}
SECONDS_RUN=${SECONDS_RUN:-8}
PORT=${PORT:-24790}
EXTRA_FLAGS=${EXTRA_FLAGS:-}
WAL_CYCLE=${WAL_CYCLE:-0}
PUT_CYCLE=${PUT_CYCLE:-0}
BASALT_BIN=${BASALT_BIN:-$repo/target/release/basalt}
BENCH_BIN=${BENCH_BIN:-$repo/target/release/basalt-bench}
[ "$SECONDS_RUN" -ge 4 ] || { echo "threads-cpu.sh: SECONDS_RUN must be at least 4" >&2; exit 1; }
if [ "$WAL_CYCLE" = 1 ] || [ "$PUT_CYCLE" = 1 ]; then
  command -v perf >/dev/null || { echo "threads-cpu.sh: perf is missing" >&2; exit 1; }
fi

work=$(mktemp -d /tmp/basalt-threads.XXXXXX)
server=""
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

peer=$((PORT + 10))
# shellcheck disable=SC2086 # EXTRA_FLAGS is a list of flags
"$BASALT_BIN" --data-dir "$work/data" --listen-client-urls "http://127.0.0.1:$PORT" \
  --advertise-client-urls "http://127.0.0.1:$PORT" --listen-peer-urls "http://127.0.0.1:$peer" \
  --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
  --initial-cluster "default=http://127.0.0.1:$peer" --log-level error $EXTRA_FLAGS &
server=$!
deadline=$((SECONDS + 20))
until curl -sf -o /dev/null "http://127.0.0.1:$PORT/health"; do
  [ $SECONDS -lt $deadline ] || { echo "threads-cpu.sh: basalt does not serve" >&2; exit 1; }
  sleep 0.1
done

thread_ticks() {
  for task in /proc/"$server"/task/*; do
    # A thread that ended between the glob and the read is skipped.
    name=$(cat "$task/comm" 2>/dev/null) || continue
    ticks=$(awk '{print $14 + $15}' "$task/stat" 2>/dev/null) || continue
    echo "$(basename "$task") ${name// /_} $ticks"
  done | sort
}
thread_ticks >"$work/before"
"$BENCH_BIN" put --endpoints "127.0.0.1:$PORT" --conns "$CONNS" --clients "$CLIENTS" \
  --key-size 8 --val-size 256 --key-space-size 100000 --sequential-keys \
  --seconds "$SECONDS_RUN" --json >"$work/bench.out" &
bench=$!
# The generator's CPU over the middle of the run (its start and end are connection work).
sleep 1
bench_before=$(awk '{print $14 + $15}' "/proc/$bench/stat")
if [ "$WAL_CYCLE" = 1 ] || [ "$PUT_CYCLE" = 1 ]; then
  perf record -q -e 'io_uring:io_uring_submit_req' -e 'io_uring:io_uring_complete' \
    -e 'syscalls:sys_exit_recvfrom' -e 'syscalls:sys_enter_sendto' \
    -o "$work/perf.data" -p "$server" -- sleep 1 2>/dev/null
  sleep $((SECONDS_RUN - 4))
else
  sleep $((SECONDS_RUN - 3))
fi
bench_after=$(awk '{print $14 + $15}' "/proc/$bench/stat")
bench_seconds=$((SECONDS_RUN - 3))
wait "$bench"
thread_ticks >"$work/after"
hz=$(getconf CLK_TCK)

python3 - "$work" "$hz" "$SECONDS_RUN" "$bench_seconds" "$((bench_after - bench_before))" <<'PY'
import json, sys
work, hz, run_s, bench_s, bench_ticks = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
report = json.loads(open(f"{work}/bench.out").read().strip().splitlines()[-1])
print(f"put {report['qps']:.0f}/s, p50 {report['p50_ms']} ms, p99 {report['p99_ms']} ms, "
      f"{report['errors']} errors")
print(f"load generator: {bench_ticks / hz / bench_s:.2f} CPU")
def load(path):
    rows = {}
    for line in open(path):
        tid, name, ticks = line.split()
        rows[tid] = (name, int(ticks))
    return rows
before, after = load(f"{work}/before"), load(f"{work}/after")
for tid, (name, ticks) in sorted(after.items()):
    used = ticks - before.get(tid, (name, 0))[1]
    if used > 0:
        print(f"{name} (thread {tid}): {used / hz / run_s:.2f} CPU")
PY

if [ "$WAL_CYCLE" = 1 ]; then
  perf script -i "$work/perf.data" -F time,event,trace 2>/dev/null | python3 -c '
import re, statistics, sys
submitted, disk, gaps, last_done = {}, [], [], None
for line in sys.stdin:
    m = re.match(r"\s*([\d.]+):\s+io_uring:(\S+): ring \S+, req (\S+),", line)
    if not m:
        continue
    at, event, request = float(m.group(1)), m.group(2), m.group(3)
    if event == "io_uring_submit_req" and "WRITE_FIXED" in line:
        submitted[request] = at
        if last_done is not None:
            gaps.append((at - last_done) * 1e6)
    elif event == "io_uring_complete" and request in submitted:
        disk.append((at - submitted.pop(request)) * 1e6)
        last_done = at
if not disk:
    sys.exit("no WAL writes traced")
def q(values, p):
    values = sorted(values)
    return values[int(p * (len(values) - 1))]
print(f"WAL writes in 1 s: {len(disk)}; disk (submit to complete) p50 {q(disk, .5):.0f} us, "
      f"mean {statistics.mean(disk):.0f} us; completion to next submission p50 "
      f"{q(gaps, .5):.0f} us, mean {statistics.mean(gaps):.0f} us")
'
fi

if [ "$PUT_CYCLE" = 1 ]; then
  perf script -i "$work/perf.data" -F time,event,trace 2>/dev/null | python3 -c '
import re, sys
# Each leg starts at the last event of its kind and ends at the next event of the next kind.
legs = {"request read -> WAL write submitted": [], "WAL write (submit -> complete)": [],
        "WAL write complete -> response sent": [], "response sent -> next request read": []}
names = list(legs)
last = {}
write_request = None
for line in sys.stdin:
    m = re.match(r"\s*([\d.]+):\s+(\S+):", line)
    if not m:
        continue
    at, event = float(m.group(1)) * 1e6, m.group(2)
    if event == "io_uring:io_uring_submit_req" and "WRITE_FIXED" in line:
        kind = "submitted"
        write_request = re.search(r"req (\S+),", line).group(1)
    elif event == "io_uring:io_uring_complete" and write_request and f"req {write_request}," in line:
        kind = "completed"
        write_request = None
    elif event == "syscalls:sys_enter_sendto":
        kind = "sent"
    elif event == "syscalls:sys_exit_recvfrom":
        kind = "read"
    else:
        continue
    previous = {"submitted": "read", "completed": "submitted", "sent": "completed", "read": "sent"}[kind]
    leg = names[["submitted", "completed", "sent", "read"].index(kind)]
    # A leg counts only if its start is newer than its own last end (one per put).
    if previous in last and last[previous] > last.get(kind, 0):
        legs[leg].append(at - last[previous])
    last[kind] = at
for leg, values in legs.items():
    if not values:
        sys.exit(f"no complete put cycle traced ({leg})")
    values.sort()
    print(f"{leg}: p50 {values[len(values) // 2]:.0f} us ({len(values)} puts)")
'
fi
