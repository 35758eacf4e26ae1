#!/usr/bin/env bash
# The long fuzz run (docs/reliability.md, "Bad input"): every kerno-fuzz target and the
# agent's unit targets for up to SECS seconds each (default 600), with another seed, in the
# debug build on purpose (it checks integer overflow; a release build would wrap silently).
# With --root, the garbage-request test against a running agent too (root, kernel lock).
# Figures are appended to $KERNO_FUZZ_REPORT (default target/fuzz-figures.txt).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${SECS:-600}
export KERNO_FUZZ_SECS=$secs
export KERNO_FUZZ_CASES=${KERNO_FUZZ_CASES:-100000000}
export KERNO_FUZZ_SEED=${KERNO_FUZZ_SEED:-$(date +%s)}
export KERNO_FUZZ_REPORT=${KERNO_FUZZ_REPORT:-$PWD/target/fuzz-figures.txt}
echo "fuzz: up to ${secs} s per target, seed $KERNO_FUZZ_SEED, figures in $KERNO_FUZZ_REPORT"
cargo test -p kerno-fuzz -p kerno-agent -- --test-threads=1 fuzz
if [ "${1:-}" = "--root" ]; then
    # One kernel: hold $KERNEL_LOCK (a flock file) when other root tests may run.
    ${KERNEL_LOCK:+flock "$KERNEL_LOCK"} cargo test -p kerno-cli --test root_agent_garbage -- --nocapture
fi
cat "$KERNO_FUZZ_REPORT"
