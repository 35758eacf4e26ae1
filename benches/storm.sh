#!/usr/bin/env bash
# The storm, long: `kerno start` under > 1 M syscalls/s (getppid on two threads), a stream of
# short-lived processes (each one failing chdir and one open+close, so the agent's
# per-process maps overflow and evict) and descriptor churn. Checks what the CI test
# (kerno-cli/tests/root_storm.rs, 44 s) checks, for longer: /healthz and /readyz 200
# throughout, agent RSS growth after the warm-up (the first half) < 10%, and every evicted
# row counted (at least what the children lost, at most what the kernel maps allow).
# Prints the figures (docs/reliability.md, "Load and loss"). Root and bpftool needed; hold
# the kernel to yourself while it runs.
#
#   benches/storm.sh                     10 minutes, 100,000 processes
#   SECS=120 PROCS=30000 benches/storm.sh   shorter
#   RELEASE=1 benches/storm.sh           an optimised agent (the default is the test profile)
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${SECS:-600}
PROCS=${PROCS:-100000}
PROFILE=()
[ "${RELEASE:-0}" = 1 ] && PROFILE=(--release)
STORM_SECS=$SECS STORM_PROCS=$PROCS cargo test "${PROFILE[@]}" -p kerno-cli --test root_storm \
    -- --test-threads=1 --nocapture 2>&1 | grep -v '^\s*\(Compiling\|Finished\|Running\)'
