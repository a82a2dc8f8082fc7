#!/usr/bin/env bash
# Basalt vs etcd, side by side, on this machine: the suite of the bench-harness issue.
#
# Installs Debian's etcd-server when missing, builds basalt-bench, then for each workload starts
# a fresh single-member etcd (and a fresh basalt, when target/release/basalt exists and stays
# up) on loopback with the same flags, runs basalt-bench against both (basalt = A, etcd = B,
# alternating A B A B), records each server's peak RSS (VmHWM from /proc) and its data dir size,
# stops both, and writes a markdown table into the "Server workloads" section of
# docs/benchmarks.md (between the compare.sh markers; the rest of the file is left alone).
#
# Usage: bench/compare.sh            # the full suite (about 4 min with etcd alone)
#        DURATION=3 K8S_SECONDS=10 bench/compare.sh   # a quick pass while developing
# Knobs (environment): DURATION (s per measured run, default 10), K8S_SECONDS (60),
#   ROUNDS (runs per server with basalt present, default 2), ETCD_CLIENT_PORT (23791),
#   ETCD_PEER_PORT (23801), BASALT_CLIENT_PORT (23792), BASALT_PEER_PORT (23802),
#   BASALT_BIN (target/release/basalt), BENCH_BIN (target/release/basalt-bench), ETCD_BIN (etcd),
#   OUT (docs/benchmarks.md),
#   WORKDIR (a fresh temporary directory), ONLY (space-separated workload names to run),
#   MEMBERS (members per server, default 1; member i uses the ports + 100*i).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

DURATION=${DURATION:-10}
K8S_SECONDS=${K8S_SECONDS:-60}
ROUNDS=${ROUNDS:-2}
ETCD_CLIENT_PORT=${ETCD_CLIENT_PORT:-23791}
ETCD_PEER_PORT=${ETCD_PEER_PORT:-23801}
BASALT_CLIENT_PORT=${BASALT_CLIENT_PORT:-23792}
BASALT_PEER_PORT=${BASALT_PEER_PORT:-23802}
BASALT_BIN=${BASALT_BIN:-$repo/target/release/basalt}
ETCD_BIN=${ETCD_BIN:-etcd}
OUT=${OUT:-$repo/docs/benchmarks.md}
WORKDIR=${WORKDIR:-$(mktemp -d /tmp/basalt-compare.XXXXXX)}
ONLY=${ONLY:-}
# Members per server: 1 (the issue's suite), or 3 / 5 once basalt has clustering.
MEMBERS=${MEMBERS:-1}
# Heartbeat and election timeout of both servers (the design's dedicated-host settings).
HEARTBEAT_MS=100
ELECTION_MS=1000
# How long a server gets to answer its first request.
START_TIMEOUT_S=15

log() { echo "compare.sh: $*" >&2; }

install_debian_packages() {
  local missing=()
  command -v "$ETCD_BIN" >/dev/null 2>&1 || missing+=(etcd-server)
  command -v protoc >/dev/null 2>&1 || missing+=(protobuf-compiler)   # etcd-client's build
  command -v python3 >/dev/null 2>&1 || missing+=(python3)            # the table renderer
  [ ${#missing[@]} -eq 0 ] && return
  log "installing ${missing[*]}"
  apt-get update -qq
  # Packaged services must not start on install: this script runs its own servers.
  local policy=/usr/sbin/policy-rc.d created_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && created_policy=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
  [ "$created_policy" = 1 ] && rm -f "$policy"
  return 0
}

install_debian_packages
cargo build --release -p basalt-bench >&2
BENCH=${BENCH_BIN:-$repo/target/release/basalt-bench}
mkdir -p "$WORKDIR"
results=$WORKDIR/results.jsonl
: >"$results"
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
log "work dir $WORKDIR; etcd $("$ETCD_BIN" --version | head -1)"

# --- servers ---------------------------------------------------------------------------------
# A "server" is MEMBERS processes: member i listens on CLIENT_PORT + 100*i and PEER_PORT + 100*i,
# with its data in $WORKDIR/NAME-data/member-i. Peak RSS and data size are reported per member
# (the largest member), which is what an operator sizes one host by.

declare -A server_pids=()
declare -A server_endpoints=()

member_port() { echo $(($1 + 100 * $2)); }

stop_server() {
  local name=$1 pid
  for pid in ${server_pids[$name]:-}; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in ${server_pids[$name]:-}; do
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  unset "server_pids[$name]"
}

stop_all() { for name in "${!server_pids[@]}"; do stop_server "$name"; done; }
trap stop_all EXIT

# start_server NAME BINARY CLIENT_PORT PEER_PORT: starts a fresh cluster of MEMBERS members with
# etcd's flags; returns non-zero when a member exits or the cluster does not answer within
# START_TIMEOUT_S.
start_server() {
  local name=$1 binary=$2 client_base=$3 peer_base=$4 i cluster="" endpoints=""
  rm -rf "$WORKDIR/$name-data"
  for ((i = 0; i < MEMBERS; i++)); do
    cluster+="${cluster:+,}$name-$i=http://127.0.0.1:$(member_port "$peer_base" $i)"
    endpoints+="${endpoints:+,}127.0.0.1:$(member_port "$client_base" $i)"
  done
  server_endpoints[$name]=$endpoints
  server_pids[$name]=""
  for ((i = 0; i < MEMBERS; i++)); do
    local client="http://127.0.0.1:$(member_port "$client_base" $i)"
    local peer="http://127.0.0.1:$(member_port "$peer_base" $i)"
    "$binary" --name "$name-$i" --data-dir "$WORKDIR/$name-data/member-$i" \
      --listen-client-urls "$client" --advertise-client-urls "$client" \
      --listen-peer-urls "$peer" --initial-advertise-peer-urls "$peer" \
      --initial-cluster "$cluster" \
      --heartbeat-interval "$HEARTBEAT_MS" --election-timeout "$ELECTION_MS" \
      >>"$WORKDIR/$name-$i.log" 2>&1 &
    server_pids[$name]+=" $!"
  done
  local deadline=$((SECONDS + START_TIMEOUT_S)) pid
  while [ $SECONDS -lt $deadline ]; do
    for pid in ${server_pids[$name]}; do
      kill -0 "$pid" 2>/dev/null || { stop_server "$name"; return 1; }
    done
    # A put goes through raft: the cluster has a leader and a quorum. Through every member,
    # since the load dials every endpoint (a member serves clients only once it has caught up).
    local serving=1 endpoint
    for endpoint in ${endpoints//,/ }; do
      "$BENCH" put --endpoints "$endpoint" --total 1 --dial-timeout 1 >/dev/null 2>&1 || {
        serving=0
        break
      }
    done
    [ "$serving" = 1 ] && return 0
    sleep 0.2
  done
  stop_server "$name"
  return 1
}

# The largest VmHWM (KiB) among a server's members.
peak_rss_kib() {
  local pid max=0 kib
  for pid in ${server_pids[$1]}; do
    kib=$(awk '/^VmHWM:/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
    [ "${kib:-0}" -gt "$max" ] && max=$kib
  done
  echo "$max"
}

# The largest member data directory (KiB) of a server.
data_dir_kib() {
  local dir max=0 kib
  for dir in "$WORKDIR/$1-data"/member-*; do
    kib=$(du -sk "$dir" 2>/dev/null | cut -f1)
    [ "${kib:-0}" -gt "$max" ] && max=$kib
  done
  echo "$max"
}

# --- the suite -------------------------------------------------------------------------------

basalt_available=unknown
basalt_reason=""

# run_workload LABEL SHAPE ARGS...: fresh servers, one basalt-bench run, one results line.
run_workload() {
  local label=$1 shape=$2
  shift 2
  if [ -n "$ONLY" ] && ! [[ " $ONLY " == *" $label "* ]]; then return 0; fi
  log "$label ($shape)"
  start_server etcd "$ETCD_BIN" "$ETCD_CLIENT_PORT" "$ETCD_PEER_PORT" ||
    { log "etcd did not start; see $WORKDIR/etcd.log"; exit 1; }
  local with_basalt=0
  if [ "$basalt_available" != no ]; then
    if [ ! -x "$BASALT_BIN" ]; then
      basalt_available=no basalt_reason="$BASALT_BIN does not exist"
    elif start_server basalt "$BASALT_BIN" "$BASALT_CLIENT_PORT" "$BASALT_PEER_PORT"; then
      basalt_available=yes with_basalt=1
    else
      basalt_available=no
      basalt_reason="$BASALT_BIN exited or did not answer within ${START_TIMEOUT_S}s"
    fi
    [ "$basalt_available" = no ] && log "basalt not available: $basalt_reason"
  fi

  local output=$WORKDIR/$label.out line status=0
  if [ "$with_basalt" = 1 ]; then
    "$BENCH" "$@" --endpoints "${server_endpoints[basalt]}" \
      --vs "${server_endpoints[etcd]}" --vs-rounds "$ROUNDS" --json >"$output" || status=$?
  else
    "$BENCH" "$@" --endpoints "${server_endpoints[etcd]}" --json >"$output" || status=$?
  fi
  line=$(tail -n 1 "$output")
  local etcd_rss basalt_rss=0 etcd_disk basalt_disk=0
  etcd_rss=$(peak_rss_kib etcd)
  etcd_disk=$(data_dir_kib etcd)
  if [ "$with_basalt" = 1 ]; then
    basalt_rss=$(peak_rss_kib basalt)
    basalt_disk=$(data_dir_kib basalt)
  fi
  stop_all
  python3 - "$label" "$shape" "$with_basalt" "$status" "$etcd_rss" "$etcd_disk" \
    "$basalt_rss" "$basalt_disk" "$line" >>"$results" <<'PY'
import json, sys
label, shape, with_basalt, status, etcd_rss, etcd_disk, basalt_rss, basalt_disk, line = sys.argv[1:]
try:
    run = json.loads(line)
except ValueError:
    run = {"error_samples": [line[:200]]}
record = {"label": label, "shape": shape, "exit": int(status),
          "etcd": {"rss_kib": int(etcd_rss), "disk_kib": int(etcd_disk)}}
if with_basalt == "1":
    record["basalt"] = {"rss_kib": int(basalt_rss), "disk_kib": int(basalt_disk)}
    record["basalt"].update({k: v for k, v in run.items() if k not in ("vs", "ratio")})
    record["etcd"].update(run.get("vs", {}))
else:
    record["etcd"].update(run)
print(json.dumps(record))
PY
}

put_args=(put --key-size 8 --val-size 256 --key-space-size 100000 --sequential-keys
  --seconds "$DURATION")
run_workload put-1x1 "1 conn, 1 client" "${put_args[@]}" --conns 1 --clients 1
run_workload put-10x100 "10 conns, 100 clients" "${put_args[@]}" --conns 10 --clients 100
run_workload put-100x1000 "100 conns, 1000 clients" "${put_args[@]}" --conns 100 --clients 1000
run_workload range-l "1 key, linearizable, 100/1000" range bench-key --seed-val-size 256 \
  --consistency l --conns 100 --clients 1000 --seconds "$DURATION"
run_workload range-s "1 key, serializable, 100/1000" range bench-key --seed-val-size 256 \
  --consistency s --conns 100 --clients 1000 --seconds "$DURATION"
run_workload txn-put "1 put per txn, 100/1000" txn-put --key-size 8 --val-size 256 \
  --key-space-size 100000 --conns 100 --clients 1000 --seconds "$DURATION"
run_workload watch-latency "1000 watchers on 10 streams, 100 puts/s" watch-latency \
  --conns 10 --clients 10 --streams 10 --watchers-per-stream 100 --put-rate 100 \
  --put-total $((DURATION * 100)) --val-size 256
run_workload k8s-events "${K8S_SECONDS}s, 10 conns, 100 writers" k8s-events --conns 10 \
  --clients 100 --seconds "$K8S_SECONDS" --list-interval 10 \
  --compaction-interval $((K8S_SECONDS / 3 > 0 ? K8S_SECONDS / 3 : 1))

# --- the table -------------------------------------------------------------------------------

command_line="DURATION=$DURATION K8S_SECONDS=$K8S_SECONDS ROUNDS=$ROUNDS"
[ "$MEMBERS" != 1 ] && command_line+=" MEMBERS=$MEMBERS"
command_line+=" bench/compare.sh"
load_end=$(cut -d' ' -f1-3 /proc/loadavg)
python3 - "$results" "$OUT" "$command_line" "$basalt_available" "$basalt_reason" \
  "$("$ETCD_BIN" --version | head -1)" "$MEMBERS" "$load_start" "$load_end" <<'PY'
import datetime, json, os, sys
(results_path, out_path, command, basalt_available, basalt_reason, etcd_version, members,
 load_start, load_end) = sys.argv[1:]
records = [json.loads(line) for line in open(results_path) if line.strip()]
MIB = 1024.0

def fig(value, digits=1):
    return "-" if value is None else f"{value:,.{digits}f}"

def row(name, record, server):
    r = record.get(server)
    if r is None:
        return None
    return (f"| {record['label']} | {record['shape']} | {name} | {fig(r.get('qps'), 0)} | "
            f"{fig(r.get('p50_ms'), 2)} | {fig(r.get('p99_ms'), 2)} | {fig(r.get('p999_ms'), 2)} | "
            f"{fig(r.get('max_ms'), 1)} | {r.get('errors', '-')} | {r.get('violations', '-')} | "
            f"{fig(r['rss_kib'] / MIB)} | {fig(r['disk_kib'] / MIB)} |")

lines = []
now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
lines.append(f"Produced by `{command}` on {now}; {etcd_version}; {members} member(s) per "
             f"server; {os.cpu_count()} cores shared by servers and load generator; load "
             f"average {load_start} before the suite, {load_end} after.")
lines.append("")
if basalt_available != "yes":
    lines.append(f"**basalt: not available** ({basalt_reason or 'not started'}); etcd alone.")
    lines.append("")
lines.append("| workload | shape | server | ops/s | p50 ms | p99 ms | p99.9 ms | max ms | errors "
             "| violations | peak RSS MiB | data dir MiB |")
lines.append("|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
for record in records:
    for name, server in (("basalt", "basalt"), ("etcd 3.4", "etcd")):
        text = row(name, record, server)
        if text:
            lines.append(text)
ratios = [r for r in records if "basalt" in r and r["etcd"].get("qps")]
if ratios:
    lines.append("")
    lines.append("| workload | throughput basalt/etcd | p99 basalt/etcd | peak RSS basalt/etcd |")
    lines.append("|---|--:|--:|--:|")
    for r in ratios:
        b, e = r["basalt"], r["etcd"]
        def ratio(key):
            return "-" if not e.get(key) else f"{b.get(key, 0) / e[key]:.2f}"
        lines.append(f"| {r['label']} | {ratio('qps')} | {ratio('p99_ms')} | {ratio('rss_kib')} |")
lines.append("")
lines.append("ops/s is requests per second, except watch-latency: events delivered per second "
             "(1000 watchers × 100 puts/s), with latency from a put's send to each watcher's "
             "event. k8s-events counts its guarded create/update Txns; violations are the "
             "verifier's. Peak RSS is VmHWM of a fresh server over that one workload (the largest "
             "member's); data dir is `du -sk` of the largest member's right after it (etcd "
             "preallocates 64 MB WAL segments).")
failed = [r["label"] for r in records if r["exit"] != 0]
if failed:
    lines.append("")
    lines.append("basalt-bench exited non-zero for: " + ", ".join(failed) +
                 " (errors or violations; see the table).")

BEGIN, END = "<!-- compare.sh results begin -->", "<!-- compare.sh results end -->"
SECTION = "## Server workloads (basalt vs etcd)"
block = BEGIN + "\n" + "\n".join(lines) + "\n" + END
text = open(out_path).read() if os.path.exists(out_path) else "# Benchmarks\n"
if BEGIN in text and END in text:
    head, rest = text.split(BEGIN, 1)
    text = head + block + rest.split(END, 1)[1]
elif SECTION in text:
    head, rest = text.split(SECTION, 1)
    # Put the block at the end of the section (before the next "## " heading).
    cut = rest.find("\n## ")
    body, tail = (rest, "") if cut < 0 else (rest[:cut], rest[cut:])
    text = head + SECTION + body.rstrip("\n") + "\n\n" + block + "\n" + tail
else:
    text = text.rstrip("\n") + "\n\n" + SECTION + "\n\n" + block + "\n"
os.makedirs(os.path.dirname(out_path) or ".", exist_ok=True)
open(out_path, "w").write(text)
print("\n".join(lines))
PY
log "results in $OUT (raw: $results)"
