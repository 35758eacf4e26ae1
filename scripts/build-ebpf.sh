#!/usr/bin/env bash
# Rebuild the committed eBPF object kerno-probes/ebpf/prebuilt/kerno.bpf.o with the pinned
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
BUILT="$TARGET_DIR/bpfel-unknown-none/release/kerno"
if [ "${1:-}" = "--check" ]; then
    if cmp -s "$BUILT" "$ROOT/$OBJ"; then
        echo "ebpf: committed $OBJ is up to date ($(sha256sum < "$BUILT" | cut -c1-16))"
    else
        echo "ebpf: committed $OBJ is STALE: the eBPF sources no longer build to it." >&2
        echo "ebpf: refresh it with 'scripts/build-ebpf.sh' and commit the result." >&2
        exit 1
    fi
else
    cp "$BUILT" "$ROOT/$OBJ"
    echo "ebpf: wrote $OBJ ($(stat -c %s "$ROOT/$OBJ") bytes, sha256 $(sha256sum < "$ROOT/$OBJ" | cut -c1-16))"
fi
