#!/usr/bin/env bash
# Time for a member to catch up by snapshot over a database of about DB_MB megabytes.
#
# Starts three basalt members on loopback (--snapshot-count SNAPSHOT_COUNT, an 8 GiB
# --quota-backend-bytes so a 1 GiB load fits), kills one follower with kill -9, loads VALUES
# values of 4 KiB (distinct keys, random bytes: incompressible) through the leader with
# basalt-bench put, writes a marker key last, then restarts the follower and measures the time
# from its spawn until a serializable read on it returns the marker (the leader's log is
# compacted past the follower, so it must install a snapshot: the script checks the follower
# logged "installed a raft snapshot"). Prints the database size and the time.
#
# Usage: bench/snapshot-catch-up.sh                # basalt
#        SERVER=etcd bench/snapshot-catch-up.sh     # Debian's etcd, same steps and flags
# Knobs (environment): VALUES (12500: ~100 MB), SNAPSHOT_COUNT (1000), SERVER (basalt | etcd),
#   BASALT_BIN (target/release/basalt), ETCD_BIN (etcd),
#   BENCH_BIN (target/release/basalt-bench), BASE_PORT (24300), WORKDIR (fresh temp dir).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

VALUES=${VALUES:-12500}
SNAPSHOT_COUNT=${SNAPSHOT_COUNT:-1000}
SERVER=${SERVER:-basalt}
BASALT_BIN=${BASALT_BIN:-$repo/target/release/basalt}
ETCD_BIN=${ETCD_BIN:-etcd}
case "$SERVER" in
  basalt) server_bin=$BASALT_BIN ;;
  etcd) server_bin=$ETCD_BIN ;;
  *) echo "SERVER is basalt or etcd" >&2; exit 2 ;;
esac
BENCH_BIN=${BENCH_BIN:-$repo/target/release/basalt-bench}
BASE_PORT=${BASE_PORT:-24300}
if [ -z "${WORKDIR:-}" ]; then
  WORKDIR=$(mktemp -d /tmp/basalt-snapshot-catch-up.XXXXXX)
  remove_workdir=1
else
  remove_workdir=0
fi
export ETCDCTL_API=3

log() { echo "snapshot-catch-up.sh: $*" >&2; }

cluster=""
for i in 0 1 2; do
  cluster+="m$i=http://127.0.0.1:$((BASE_PORT + 10 + i)),"
done
cluster=${cluster%,}
pids=(0 0 0)

start_member() {
  local i=$1
  "$server_bin" --name "m$i" --data-dir "$WORKDIR/m$i" \
    --listen-client-urls "http://127.0.0.1:$((BASE_PORT + i))" \
    --advertise-client-urls "http://127.0.0.1:$((BASE_PORT + i))" \
    --listen-peer-urls "http://127.0.0.1:$((BASE_PORT + 10 + i))" \
    --initial-advertise-peer-urls "http://127.0.0.1:$((BASE_PORT + 10 + i))" \
    --initial-cluster "$cluster" --initial-cluster-token catch-up \
    --snapshot-count "$SNAPSHOT_COUNT" --quota-backend-bytes 8589934592 >>"$WORKDIR/m$i.log" 2>&1 &
  pids[$i]=$!
}

stop_all() {
  for pid in "${pids[@]}"; do
    [ "$pid" != 0 ] && kill -9 "$pid" 2>/dev/null || true
  done
  wait 2>/dev/null || true
  if [ "$remove_workdir" = 1 ]; then rm -rf "$WORKDIR"; fi
}
trap stop_all EXIT

endpoint() { echo "127.0.0.1:$((BASE_PORT + $1))"; }

wait_serving() {
  local i=$1
  for _ in $(seq 1 600); do
    etcdctl --endpoints "$(endpoint "$i")" --command-timeout 2s put probe "$i" >/dev/null 2>&1 && return
    sleep 0.1
  done
  log "member $i did not serve"
  exit 1
}

start_member 0
start_member 1
start_member 2
for i in 0 1 2; do wait_serving "$i"; done

# The leader, by its member ID in endpoint status.
status=$(etcdctl --endpoints "$(endpoint 0)" endpoint status -w json)
leader_id=$(echo "$status" | sed -n 's/.*"leader":\([0-9]*\).*/\1/p')
leader=""
for i in 0 1 2; do
  id=$(etcdctl --endpoints "$(endpoint "$i")" endpoint status -w json | sed -n 's/.*"member_id":\([0-9]*\).*/\1/p')
  [ "$id" = "$leader_id" ] && leader=$i
done
follower=$(((leader + 1) % 3))
log "leader m$leader, killing follower m$follower"
kill -9 "${pids[$follower]}"
wait "${pids[$follower]}" 2>/dev/null || true
pids[$follower]=0

log "loading $VALUES values of 4 KiB through m$leader"
"$BENCH_BIN" put --endpoints "$(endpoint "$leader")" --conns 4 --clients 64 --total "$VALUES" \
  --key-size 16 --val-size 4096 --key-space-size "$VALUES" --sequential-keys --random-values \
  >"$WORKDIR/load.txt"
etcdctl --endpoints "$(endpoint "$leader")" put catch-up-marker done >/dev/null
db_bytes=$(stat -c %s "$WORKDIR/m$leader/member/snap/db")
in_use=$(etcdctl --endpoints "$(endpoint "$leader")" endpoint status -w json | sed -n 's/.*"dbSizeInUse":\([0-9]*\).*/\1/p')

log "restarting m$follower"
started=$(date +%s.%N)
start_member "$follower"
until [ "$(etcdctl --endpoints "$(endpoint "$follower")" --command-timeout 2s get catch-up-marker \
  --consistency=s --print-value-only 2>/dev/null)" = "done" ]; do
  sleep 0.02
done
ended=$(date +%s.%N)
# What each server logs when a follower installs a snapshot from its leader.
if [ "$SERVER" = basalt ]; then installed="installed a raft snapshot"; else installed="applied incoming snapshot"; fi
grep -q "$installed" "$WORKDIR/m$follower.log" || {
  log "the follower did not install a snapshot"
  exit 1
}
sent=$(grep -o '"sent a raft snapshot".*\|sent database snapshot.*' "$WORKDIR/m$leader.log" | tail -1 || true)
# basalt's follower logs where its time went (receive, disk, check) before it restarts.
stored=$(grep -o '"stored a raft snapshot".*\|saved database snapshot.*' "$WORKDIR/m$follower.log" | tail -1 || true)
printf 'db file %d bytes (in use %s), catch-up %.2f s\nleader: %s\nfollower: %s\n' "$db_bytes" \
  "${in_use:-?}" "$(echo "$ended - $started" | bc -l)" "$sent" "$stored"
