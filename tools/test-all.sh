#!/usr/bin/env bash
# The whole test suite, runnable on a fresh Debian machine: installs what the tests need, then
# runs every crate's tests. `.ci/run` calls exactly this; so does the README.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the tests use (real clients, a real etcd to compare against). Installed only
# when missing, so a developer's second run costs nothing.
apt_packages=()
missing=()
for package in "${apt_packages[@]}"; do
  dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi

# Release mode: the property and crash tests run many iterations and are CPU-bound.
cargo test --workspace --release
