#!/usr/bin/env bash
# CPU per request of the load generator itself, lean client against etcd-client.
#
# Runs `basalt-bench $WORKLOAD` under /usr/bin/time -v against ENDPOINT (a running basalt or etcd)
# for each --conns/--clients shape, alternating the clients (A B A B) so drift on a shared
# machine hits both alike, and prints the bench process's user+system CPU per successful put.
#
# Usage: bench/client-cpu.sh ENDPOINT
# Knobs (environment): SHAPES ("1/1 10/100 100/1000": conns/clients), CLIENTS_TRIED
#   ("etcd-client lean"), ROUNDS (2), SECONDS_RUN (5), WORKLOAD ("put --val-size 256"; also
#   e.g. "range 00000000 --consistency s" or "txn-put --txn-ops 4 --key-space-size 1000"), BENCH
#   (target/release/basalt-bench), EXTRA (more flags for every run, e.g. "--threads 1").
set -euo pipefail
cd "$(dirname "$0")/.."
ENDPOINT=${1:?usage: bench/client-cpu.sh ENDPOINT}
SHAPES=${SHAPES:-"1/1 10/100 100/1000"}
CLIENTS_TRIED=${CLIENTS_TRIED:-"etcd-client lean"}
ROUNDS=${ROUNDS:-2}
SECONDS_RUN=${SECONDS_RUN:-5}
WORKLOAD=${WORKLOAD:-"put --val-size 256"}
BENCH=${BENCH:-target/release/basalt-bench}
EXTRA=${EXTRA:-}

printf '%-10s %-12s %10s %8s %8s %10s %8s\n' shape client ops user_s sys_s 'µs/op' 'ops/s'
for shape in $SHAPES; do
  conns=${shape%/*} clients=${shape#*/}
  for ((round = 1; round <= ROUNDS; round++)); do
    for client in $CLIENTS_TRIED; do
      timing=$(mktemp)
      # shellcheck disable=SC2086 # WORKLOAD and EXTRA are lists of words
      out=$(/usr/bin/time -v -o "$timing" "$BENCH" $WORKLOAD --endpoints "$ENDPOINT" \
        --conns "$conns" --clients "$clients" \
        --seconds "$SECONDS_RUN" --client "$client" --json $EXTRA)
      json=$(tail -1 <<<"$out")
      user=$(awk -F': ' '/User time/ {print $2}' "$timing")
      sys=$(awk -F': ' '/System time/ {print $2}' "$timing")
      rm -f "$timing"
      python3 - "$json" "$shape" "$client" "$user" "$sys" <<'PY'
import json, sys
report, shape, client, user, system = sys.argv[1:]
d = json.loads(report)
ops, errors = int(d["ops"]), int(d["errors"])
cpu = float(user) + float(system)
rate = d["qps"]
print(f"{shape:<10} {client:<12} {ops:>10} {float(user):>8.2f} {float(system):>8.2f} "
      f"{cpu * 1e6 / max(ops, 1):>10.2f} {float(rate):>8.0f}" + (f"  errors={errors}" if errors else ""))
PY
    done
  done
done
