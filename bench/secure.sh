#!/usr/bin/env bash
# Basalt vs etcd with security on, side by side in one run: mutual TLS (put and range) and auth
# (put as root with simple tokens), the benchmark rows of the security issue.
#
# Makes a throwaway PKI (CA, server certificate for 127.0.0.1, client certificate), then for
# each mode starts a fresh single-member etcd and a fresh basalt with the same flags and runs
# basalt-bench against both (basalt = A, etcd = B, alternating A B A B). Prints each run's JSON
# line; docs/benchmarks.md quotes them with the load average.
#
# Usage: bench/secure.sh     Knobs: DURATION (s per run, default 10), ROUNDS (2),
#   CONNS (10), CLIENTS (100), BASALT_BIN (target/release/basalt), ETCD_BIN (etcd).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-2}
CONNS=${CONNS:-10}
CLIENTS=${CLIENTS:-100}
BASALT_BIN=${BASALT_BIN:-$repo/target/release/basalt}
ETCD_BIN=${ETCD_BIN:-etcd}
BENCH=$repo/target/release/basalt-bench
work=$(mktemp -d /tmp/basalt-secure.XXXXXX)
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
log() { echo "secure.sh: $*" >&2; }

cargo build --release -q -p basalt-bench --bin basalt-bench
[ -x "$BASALT_BIN" ] || cargo build --release -q -p basalt --bin basalt

# The PKI: a CA, a server certificate for 127.0.0.1, a client certificate (CN root).
pki=$work/pki && mkdir -p "$pki"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=bench-ca \
  -keyout "$pki/ca.key" -out "$pki/ca.crt" 2>/dev/null
for who in server client; do
  cn=$([ $who = server ] && echo 127.0.0.1 || echo root)
  openssl req -newkey rsa:2048 -nodes -subj "/CN=$cn" \
    -keyout "$pki/$who.key" -out "$pki/$who.csr" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n' \
    >"$pki/$who.ext"
  openssl x509 -req -in "$pki/$who.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" \
    -CAcreateserial -days 2 -extfile "$pki/$who.ext" -out "$pki/$who.crt" 2>/dev/null
done
tls_server=(--cert-file "$pki/server.crt" --key-file "$pki/server.key"
  --client-cert-auth --trusted-ca-file "$pki/ca.crt")
tls_client=(--cacert "$pki/ca.crt" --cert "$pki/client.crt" --key "$pki/client.key")

# start NAME BIN CLIENT_PORT PEER_PORT SCHEME [flags...]: a fresh member, waited for.
start() {
  local name=$1 bin=$2 port=$3 peer=$4 scheme=$5; shift 5
  "$bin" --name "$name" --data-dir "$work/$name.$RANDOM" \
    --listen-client-urls "$scheme://127.0.0.1:$port" \
    --advertise-client-urls "$scheme://127.0.0.1:$port" \
    --listen-peer-urls "http://127.0.0.1:$peer" \
    --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
    --initial-cluster "$name=http://127.0.0.1:$peer" \
    --heartbeat-interval 100 --election-timeout 1000 "$@" >"$work/$name.log" 2>&1 &
  pids+=($!)
  local ctl=(etcdctl --endpoints "$scheme://127.0.0.1:$port")
  [ "$scheme" = https ] && ctl+=(--cacert "$pki/ca.crt" --cert "$pki/client.crt" --key "$pki/client.key")
  for _ in $(seq 150); do
    ETCDCTL_API=3 "${ctl[@]}" endpoint health >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  log "$name did not start:"; tail -5 "$work/$name.log" >&2; return 1
}
stop_all() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done; pids=(); }

run() { # LABEL BENCH-ARGS...
  local label=$1; shift
  log "$label (load average: $(cut -d' ' -f1-3 /proc/loadavg))"
  echo "$label: $("$BENCH" "$@" --conns "$CONNS" --clients "$CLIENTS" --seconds "$DURATION" \
    --vs-rounds "$ROUNDS" --json | tail -1)"
}

# Mutual TLS.
start basalt-tls "$BASALT_BIN" 23792 23802 https "${tls_server[@]}"
start etcd-tls "$ETCD_BIN" 23791 23801 https "${tls_server[@]}"
A=https://127.0.0.1:23792 B=https://127.0.0.1:23791
run "tls put" put --endpoints $A --vs $B "${tls_client[@]}" --key-size 8 --val-size 256 \
  --key-space-size 100000 --sequential-keys
"$BENCH" put --endpoints $A "${tls_client[@]}" --total 1 >/dev/null
"$BENCH" put --endpoints $B "${tls_client[@]}" --total 1 >/dev/null
run "tls range (linearizable, one key)" range foo --endpoints $A --vs $B "${tls_client[@]}" \
  --consistency l
stop_all

# Auth on (plaintext, simple tokens): root puts.
for side in "basalt-auth $BASALT_BIN 23792 23802" "etcd-auth $ETCD_BIN 23791 23801"; do
  set -- $side
  start "$1" "$2" "$3" "$4" http
  ctl=(etcdctl --endpoints "http://127.0.0.1:$3")
  ETCDCTL_API=3 "${ctl[@]}" user add root:bench-pw >/dev/null
  ETCDCTL_API=3 "${ctl[@]}" role add root >/dev/null 2>&1 || true   # built in on some versions
  ETCDCTL_API=3 "${ctl[@]}" user grant-role root root >/dev/null
  ETCDCTL_API=3 "${ctl[@]}" auth enable >/dev/null
  # Proof that auth is on: an anonymous write is refused.
  if ETCDCTL_API=3 "${ctl[@]}" put bench-probe x >/dev/null 2>&1; then
    log "$1: auth did not turn on"; exit 1
  fi
done
run "auth put (root)" put --endpoints 127.0.0.1:23792 --vs 127.0.0.1:23791 \
  --user root:bench-pw --key-size 8 --val-size 256 --key-space-size 100000 --sequential-keys
stop_all
