#!/usr/bin/env bash
# Rebuild the committed eBPF objects kerno-probes/ebpf/prebuilt/kerno.bpf.o and
# kerno-streams.bpf.o with the pinned
# nightly + bpf-linker (scripts/setup-ebpf.sh installs them). Paths are remapped, so the
# output is byte-identical from any checkout path, CARGO_HOME or rustup home.
#
#   scripts/build-ebpf.sh           write the object
#   scripts/build-ebpf.sh --check   rebuild into target/ and fail if the committed one differs
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OBJ=kerno-probes/ebpf/prebuilt/kerno.bpf.o
TOOLCHAIN=${EBPF_TOOLCHAIN:-$(cat "$ROOT/target/.ebpf-toolchain" 2>/dev/null || echo nightly)}
SYSROOT=$(rustc +"$TOOLCHAIN" --print sysroot)
CH=${CARGO_HOME:-$HOME/.cargo}
TARGET_DIR="$ROOT/target/ebpf-prebuilt"
cd "$ROOT/kerno-probes/ebpf"
export CARGO_ENCODED_RUSTFLAGS=
export RUSTFLAGS="--cfg=bpf_target_arch=\"x86_64\" -Cdebuginfo=2 -Clink-arg=--btf --remap-path-prefix=$ROOT=/kerno --remap-path-prefix=$CH=/cargo --remap-path-prefix=$SYSROOT=/rustc"
cargo +"$TOOLCHAIN" build -Z build-std=core --release --target bpfel-unknown-none --bins \
    --target-dir "$TARGET_DIR" --quiet
# Two objects: the aggregating programs (kerno.bpf.o) and the stream programs
# (kerno-streams.bpf.o), which only `kerno trace`/`kerno watch` load.
STALE=0
for pair in "kerno:$OBJ" "kerno-streams:kerno-probes/ebpf/prebuilt/kerno-streams.bpf.o"; do
    BIN=${pair%%:*}
    DEST=${pair#*:}
    BUILT="$TARGET_DIR/bpfel-unknown-none/release/$BIN"
    if [ "${1:-}" = "--check" ]; then
        if cmp -s "$BUILT" "$ROOT/$DEST"; then
            echo "ebpf: committed $DEST is up to date ($(sha256sum < "$BUILT" | cut -c1-16))"
        else
            echo "ebpf: committed $DEST is STALE: the eBPF sources no longer build to it." >&2
            STALE=1
        fi
    else
        cp "$BUILT" "$ROOT/$DEST"
        echo "ebpf: wrote $DEST ($(stat -c %s "$ROOT/$DEST") bytes, sha256 $(sha256sum < "$ROOT/$DEST" | cut -c1-16))"
    fi
done
if [ "$STALE" = 1 ]; then
    echo "ebpf: refresh it with 'scripts/build-ebpf.sh' and commit the result." >&2
    exit 1
fi
