#!/usr/bin/env bash
# The server's Scale figures, basalt and etcd side by side on this machine: memory with 1 M keys
# loaded, and the time a restart after kill -9 takes to serve reads again.
#
# For each server in turn (never both at once, so neither disturbs the other): start it fresh
# with etcd's flags on loopback, load KEYS keys (8-byte keys, 256-byte values, sequential, by
# basalt-bench put), read its RSS (VmRSS) and peak RSS (VmHWM) from /proc, then RESTARTS times:
# kill -9 it, restart it under `basalt-bench first-read` (the clock starts at the spawn and stops
# when a linearizable read returns the last key loaded), read its RSS again. Writes a markdown
# table between the scale.sh markers in docs/benchmarks.md.
#
# Usage: bench/scale.sh                 # 1 M keys, 2 restarts each (a few minutes)
# Knobs (environment): KEYS (1000000), RESTARTS (2), ETCD_BIN (etcd), BASALT_BIN
#   (target/release/basalt), CLIENT_PORT (23793), PEER_PORT (23803), OUT (docs/benchmarks.md),
#   WORKDIR (a fresh temporary directory).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

KEYS=${KEYS:-1000000}
RESTARTS=${RESTARTS:-2}
ETCD_BIN=${ETCD_BIN:-etcd}
BASALT_BIN=${BASALT_BIN:-$repo/target/release/basalt}
CLIENT_PORT=${CLIENT_PORT:-23793}
PEER_PORT=${PEER_PORT:-23803}
OUT=${OUT:-$repo/docs/benchmarks.md}
WORKDIR=${WORKDIR:-$(mktemp -d /tmp/basalt-scale.XXXXXX)}
START_TIMEOUT_S=30

log() { echo "scale.sh: $*" >&2; }

if ! command -v "$ETCD_BIN" >/dev/null 2>&1; then
  log "installing etcd-server"
  apt-get update -qq
  # The packaged service must not start on install: this script runs its own servers.
  policy=/usr/sbin/policy-rc.d
  created_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && created_policy=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq etcd-server
  [ "$created_policy" = 1 ] && rm -f "$policy"
fi
cargo build --release -p basalt-bench -p basalt >&2
BENCH=$repo/target/release/basalt-bench
mkdir -p "$WORKDIR"
endpoint=127.0.0.1:$CLIENT_PORT
last_key=$(printf '%08d' $((KEYS - 1)))
results=$WORKDIR/results.txt
: >"$results"

server_pid=""
stop_server() {
  [ -n "$server_pid" ] || return 0
  kill -KILL "$server_pid" 2>/dev/null || true
  # The restarted servers are not this shell's children, and a killed process's leader thread
  # turns zombie before its other threads have closed its sockets: wait until nothing listens
  # on either port any more.
  for _ in $(seq 400); do
    [ -n "$(ss -Hltn "( sport = :$CLIENT_PORT or sport = :$PEER_PORT )")" ] || break
    sleep 0.05
  done
  server_pid=""
}
trap stop_server EXIT

# server_command NAME BINARY: etcd's flags for a one-member cluster with its data in WORKDIR.
server_command() {
  local name=$1 binary=$2
  echo "$binary" --name "$name" --data-dir "$WORKDIR/$name-data" \
    --listen-client-urls "http://$endpoint" --advertise-client-urls "http://$endpoint" \
    --listen-peer-urls "http://127.0.0.1:$PEER_PORT" \
    --initial-advertise-peer-urls "http://127.0.0.1:$PEER_PORT" \
    --initial-cluster "$name=http://127.0.0.1:$PEER_PORT" \
    --heartbeat-interval 100 --election-timeout 1000
}

status_kib() { awk -v field="$2:" '$1 == field {print $2}' "/proc/$1/status"; }

measure() {
  local name=$1 binary=$2 command
  command=$(server_command "$name" "$binary")
  rm -rf "$WORKDIR/$name-data"
  # shellcheck disable=SC2086  # the command is a word list without spaces in its words
  $command >>"$WORKDIR/$name.log" 2>&1 &
  server_pid=$!
  local deadline=$((SECONDS + START_TIMEOUT_S))
  until "$BENCH" put --endpoints "$endpoint" --total 1 --dial-timeout 1 >/dev/null 2>&1; do
    kill -0 "$server_pid" 2>/dev/null || { log "$name exited; see $WORKDIR/$name.log"; exit 1; }
    [ $SECONDS -lt $deadline ] || { log "$name did not answer"; exit 1; }
    sleep 0.2
  done
  log "$name: loading $KEYS keys"
  local load
  load=$("$BENCH" put --endpoints "$endpoint" --conns 10 --clients 100 --total "$KEYS" \
    --key-size 8 --val-size 256 --key-space-size "$KEYS" --sequential-keys --json | tail -n 1)
  echo "$name load $load" >>"$results"
  python3 -c 'import json,sys; d=json.loads(sys.argv[1]); sys.exit(d["errors"] != 0)' "$load" ||
    { log "$name: the load had errors: $load"; exit 1; }
  echo "$name loaded_rss_kib $(status_kib "$server_pid" VmRSS)" >>"$results"
  echo "$name loaded_hwm_kib $(status_kib "$server_pid" VmHWM)" >>"$results"
  echo "$name data_kib $(du -sk "$WORKDIR/$name-data" | cut -f1)" >>"$results"
  local round ready
  for ((round = 1; round <= RESTARTS; round++)); do
    stop_server
    log "$name: restart $round after kill -9"
    # shellcheck disable=SC2086
    ready=$("$BENCH" first-read --endpoint "$endpoint" --key "$last_key" --json \
      --server-log "$WORKDIR/$name-restart-$round.log" -- $command | tail -n 1)
    server_pid=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["pid"])' "$ready")
    echo "$name ready $ready" >>"$results"
    echo "$name restarted_rss_kib $(status_kib "$server_pid" VmRSS)" >>"$results"
    echo "$name restarted_hwm_kib $(status_kib "$server_pid" VmHWM)" >>"$results"
  done
  stop_server
}

measure etcd "$ETCD_BIN"
measure basalt "$BASALT_BIN"

python3 - "$results" "$OUT" "$KEYS" "$RESTARTS" "$("$ETCD_BIN" --version | head -1)" <<'PY'
import json, sys
results, out, keys, restarts, etcd_version = sys.argv[1:]
data = {}
for line in open(results):
    name, what, value = line.rstrip("\n").split(" ", 2)
    entry = data.setdefault(name, {"ready": [], "restarted_rss_kib": [], "restarted_hwm_kib": []})
    if what == "ready":
        entry["ready"].append(json.loads(value)["ready_ms"])
    elif what == "load":
        entry["load"] = json.loads(value)
    elif what.startswith("restarted"):
        entry[what].append(int(value))
    else:
        entry[what] = int(value)

def mib(kib): return f"{kib / 1024:.0f}"
def ratio(a, b): return f"{a / b:.2f}" if b else "–"
e, b = data["etcd"], data["basalt"]
rows = [
    ("load throughput (puts/s)", lambda d: f"{d['load'].get('qps', 0):.0f}", None),
    ("RSS after the load (MiB)", lambda d: mib(d["loaded_rss_kib"]), "loaded_rss_kib"),
    ("peak RSS during the load (MiB)", lambda d: mib(d["loaded_hwm_kib"]), "loaded_hwm_kib"),
    ("data dir after the load (MiB)", lambda d: mib(d["data_kib"]), "data_kib"),
    ("restart after kill -9 → first read (ms)", lambda d: " / ".join(f"{x:.0f}" for x in d["ready"]), None),
    ("RSS after the restart (MiB)", lambda d: " / ".join(mib(x) for x in d["restarted_rss_kib"]), None),
    ("peak RSS during the restart (MiB)", lambda d: " / ".join(mib(x) for x in d["restarted_hwm_kib"]), None),
]
lines = [
    f"<!-- scale.sh begin -->",
    f"{int(keys):,} keys (8-byte keys, 256-byte values), {restarts} restarts each; {etcd_version}.",
    "",
    "| | etcd | basalt | basalt / etcd |",
    "|---|---|---|---|",
]
for label, show, key in rows:
    if key:
        r = ratio(b[key], e[key])
    elif label.startswith("restart"):
        r = ratio(max(b["ready"]), max(e["ready"])) + " (slowest)"
    elif label.startswith("load"):
        r = ratio(b["load"].get("qps", 0), e["load"].get("qps", 0))
    else:
        k = "restarted_rss_kib" if label.startswith("RSS") else "restarted_hwm_kib"
        r = ratio(max(b[k]), max(e[k])) + " (largest)"
    lines.append(f"| {label} | {show(e)} | {show(b)} | {r} |")
lines.append("<!-- scale.sh end -->")
table = "\n".join(lines)
print(table)
text = open(out).read()
begin, end = "<!-- scale.sh begin -->", "<!-- scale.sh end -->"
if begin in text and end in text:
    text = text[: text.index(begin)] + table + text[text.index(end) + len(end):]
else:
    text = text.rstrip("\n") + "\n\n## Scale: 1 M keys, restart after kill -9\n\n" \
        "Command: `bench/scale.sh` (see its header for the knobs).\n\n" + table + "\n"
open(out, "w").write(text)
PY
