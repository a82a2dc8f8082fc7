#!/usr/bin/env bash
# CPU per replicated put in a 3-member basalt cluster, per member (leader and followers).
#
# Starts MEMBERS members on loopback the way bench/compare.sh does (member i on the ports
# + 100*i, same heartbeat and election flags), waits until every member serves a put, runs
# `basalt-bench put` against all client URLs, and reads each member's utime+stime from
# /proc/PID/stat before and after the run. Prints µs of CPU per put for each member (marking the
# leader) and the sum. CPU per op stays meaningful on a shared machine; throughput does not.
#
# Usage: bench/cpu-per-put.sh
# Knobs (environment): MEMBERS (3), CONNS (100), CLIENTS (1000), VAL_SIZE (256), SECONDS_RUN (10),
#   CLIENT_PORT (24792), PEER_PORT (24802), BASALT_BIN (target/release/basalt),
#   WORKDIR (a fresh temporary directory), PERF_LEADER / PERF_FOLLOWER (a file: record a perf
#   profile of that member during the run), COUNT_EVENTS (perf events to count per member during
#   the run, printed per put; e.g. "raw_syscalls:sys_enter,context-switches" or uprobes added
#   with `perf probe -x BINARY --add NAME=SYMBOL`; counting uprobes inflates the CPU figures, so
#   take those from a run without them), KEEP=1 (leave the work dir).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

MEMBERS=${MEMBERS:-3}
CONNS=${CONNS:-100}
CLIENTS=${CLIENTS:-1000}
VAL_SIZE=${VAL_SIZE:-256}
SECONDS_RUN=${SECONDS_RUN:-10}
CLIENT_PORT=${CLIENT_PORT:-24792}
PEER_PORT=${PEER_PORT:-24802}
BASALT_BIN=${BASALT_BIN:-$repo/target/release/basalt}
BENCH=${BENCH:-$repo/target/release/basalt-bench}
WORKDIR=${WORKDIR:-$(mktemp -d /tmp/basalt-cpu.XXXXXX)}
PERF_LEADER=${PERF_LEADER:-}
PERF_FOLLOWER=${PERF_FOLLOWER:-}

log() { echo "cpu-per-put.sh: $*" >&2; }

pids=()
stop_all() {
  local pid
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  [ "${KEEP:-0}" = 1 ] || rm -rf "$WORKDIR"
}
trap stop_all EXIT

cluster="" endpoints=""
for ((i = 0; i < MEMBERS; i++)); do
  cluster+="${cluster:+,}m$i=http://127.0.0.1:$((PEER_PORT + 100 * i))"
  endpoints+="${endpoints:+,}127.0.0.1:$((CLIENT_PORT + 100 * i))"
done
for ((i = 0; i < MEMBERS; i++)); do
  client="http://127.0.0.1:$((CLIENT_PORT + 100 * i))"
  peer="http://127.0.0.1:$((PEER_PORT + 100 * i))"
  "$BASALT_BIN" --name "m$i" --data-dir "$WORKDIR/member-$i" \
    --listen-client-urls "$client" --advertise-client-urls "$client" \
    --listen-peer-urls "$peer" --initial-advertise-peer-urls "$peer" \
    --initial-cluster "$cluster" --heartbeat-interval 100 --election-timeout 1000 \
    >>"$WORKDIR/m$i.log" 2>&1 &
  pids+=($!)
done

# Every member serves a put (a leader exists and each member has caught up).
deadline=$((SECONDS + 20))
for endpoint in ${endpoints//,/ }; do
  until "$BENCH" put --endpoints "$endpoint" --total 1 --dial-timeout 1 >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || { log "member $endpoint does not serve"; exit 1; }
    sleep 0.2
  done
done

# The leader: the member whose endpoint status names itself (its member id equals the leader).
leader_index=-1
for ((i = 0; i < MEMBERS; i++)); do
  metrics=$(curl -s "http://127.0.0.1:$((CLIENT_PORT + 100 * i))/metrics" || true)
  if grep -Eq '^etcd_server_is_leader 1' <<<"$metrics"; then leader_index=$i; fi
done

# utime + stime of a process, in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)

declare -a before after
for ((i = 0; i < MEMBERS; i++)); do before[i]=$(cpu_ticks "${pids[i]}"); done

perf_pids=()
if [ -n "$PERF_LEADER" ] && [ "$leader_index" -ge 0 ]; then
  perf record -q -F 499 -e cpu-clock --call-graph dwarf,16384 -o "$PERF_LEADER" \
    -p "${pids[leader_index]}" -- sleep $((SECONDS_RUN - 3)) >/dev/null 2>&1 &
  perf_pids+=($!)
fi
if [ -n "$PERF_FOLLOWER" ] && [ "$leader_index" -ge 0 ]; then
  follower_index=$(((leader_index + 1) % MEMBERS))
  perf record -q -F 499 -e cpu-clock --call-graph dwarf,16384 -o "$PERF_FOLLOWER" \
    -p "${pids[follower_index]}" -- sleep $((SECONDS_RUN - 3)) >/dev/null 2>&1 &
  perf_pids+=($!)
fi

count_pids=()
if [ -n "${COUNT_EVENTS:-}" ]; then
  for ((i = 0; i < MEMBERS; i++)); do
    perf stat -x, -e "$COUNT_EVENTS" -o "$WORKDIR/count-$i.csv" -p "${pids[i]}" \
      -- sleep "$SECONDS_RUN" >/dev/null 2>&1 &
    count_pids+=($!)
  done
fi

out=$("$BENCH" put --endpoints "$endpoints" --conns "$CONNS" --clients "$CLIENTS" \
  --val-size "$VAL_SIZE" --seconds "$SECONDS_RUN" --json)
for ((i = 0; i < MEMBERS; i++)); do after[i]=$(cpu_ticks "${pids[i]}"); done
for pid in "${perf_pids[@]}" "${count_pids[@]}"; do wait "$pid" || true; done

json=$(tail -1 <<<"$out")
puts=$(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(int(d["ops"]))' "$json")
grep -v '^{' <<<"$out" >&2 || true
[ "$puts" -gt 0 ] || { log "no successful puts: $json"; exit 1; }

total=0
for ((i = 0; i < MEMBERS; i++)); do
  ticks=$((after[i] - before[i]))
  total=$((total + ticks))
  role=follower
  [ "$i" = "$leader_index" ] && role=leader
  awk -v t="$ticks" -v hz="$hz" -v n="$puts" -v i="$i" -v r="$role" \
    'BEGIN { printf "member %d (%s): %.1f µs CPU/put (%.2f s CPU)\n", i, r, t / hz * 1e6 / n, t / hz }'
done
if [ -n "${COUNT_EVENTS:-}" ]; then
  for ((i = 0; i < MEMBERS; i++)); do
    role=follower
    [ "$i" = "$leader_index" ] && role=leader
    awk -F, -v n="$puts" -v i="$i" -v r="$role" \
      '/^[0-9]/ { printf "member %d (%s): %.3f %s per put\n", i, r, $1 / n, $3 }' \
      "$WORKDIR/count-$i.csv"
  done
fi
awk -v t="$total" -v hz="$hz" -v n="$puts" \
  'BEGIN { printf "total: %.1f µs CPU/put over %d puts (%.2f s CPU); load avg %s\n", t / hz * 1e6 / n, n, t / hz, "'"$(cut -d' ' -f1-3 /proc/loadavg)"'" }'
