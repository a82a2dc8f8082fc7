#!/usr/bin/env bash
# The whole test suite, runnable on a fresh Debian machine: installs what the tests need, then
# runs every crate's tests. `.ci/run` calls exactly this; so does the README.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the tests use, installed only when missing so a second run costs nothing:
# - etcd-client: Debian's etcdctl 3.4, the real client the end-to-end tests drive;
# - protobuf-compiler: protoc, which the etcd-client crate (a test dependency) runs at build time;
# - openssl and curl: the TLS tests read a generated certificate's dates and fetch /health over
#   TLS with them;
# - python3-etcd3gw: Python's etcd3gw, which the JSON gateway test drives unchanged.
apt_packages=(etcd-client etcd-server protobuf-compiler openssl curl python3-etcd3gw)
missing=()
for package in "${apt_packages[@]}"; do
  dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi

# Release mode: the property and crash tests run many iterations and are CPU-bound.
cargo test --workspace --release --no-fail-fast
