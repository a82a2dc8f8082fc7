#!/usr/bin/env bash
# Builds and starts a basalt member with the given etcd flags (none: a single member on
# 127.0.0.1:2379 with its data in ./default.basalt). On a fresh Debian machine it first installs
# protoc, which raft-rs's message code generation needs at build time.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
if ! command -v protoc >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq protobuf-compiler
  else
    echo "run-basalt: protoc is missing; install Debian's protobuf-compiler package" >&2
    exit 1
  fi
fi
cargo build --release --quiet --manifest-path "$here/Cargo.toml" --bin basalt
exec "$here/target/release/basalt" "$@"
