#!/usr/bin/env bash
# The whole test suite: unit tests, snapshot tests, root tests that load the real probes and
# induce real incidents, the examples, and the Python package's tests. Run as root.
#
# Tests that load probes or induce incidents share one kernel: every test binary runs its
# tests one at a time (--test-threads=1), and cargo runs the binaries one after another.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --no-ebpf

echo "== cargo test (workspace, serial)"
cargo test --workspace --quiet -- --test-threads=1

echo "== examples"
for ex in $(sed -n 's/^name = "\(.*\)"$/\1/p' examples/Cargo.toml | grep -v '^kerno-examples$'); do
    echo "-- example $ex"
    cargo run --quiet -p kerno-examples --example "$ex"
done

echo "== deployment: chart, raw manifests, policy, seccomp profile, systemd unit, install script"
cargo build --release --quiet -p kerno-cli
scripts/deploy-check.sh

echo "== kernel matrix: one guest kernel (Debian 12's 6.1) under qemu; scripts/vmtest.sh runs all"
python3 scripts/vmtest/test_check.py 2>&1 | tail -1
scripts/vmtest.sh 6.1

echo "== container image: built and run least-privileged under podman"
scripts/image.sh test

if [ -x bindings/python/run-tests.sh ]; then
    echo "== python"
    bindings/python/run-tests.sh
fi
echo "== all tests passed"
