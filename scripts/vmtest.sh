#!/usr/bin/env bash
# The kernel matrix: boot Debian's own kernel packages under qemu and run Kerno's checks in
# each guest (preflight, the doctor against a known workload, the agent's /readyz, every
# program attached while it runs and nothing left after it stops). Prints a table of kernel
# x check and kernel x program; exits 1 on any failure, 2 on bad usage. Run as root.
#
#   scripts/vmtest.sh                    6.1 and 6.12 (Debian 12's kernel and its 6.12)
#   scripts/vmtest.sh 6.1                one kernel (what scripts/test.sh runs in CI)
#   scripts/vmtest.sh linux-image-6.1.0-57-amd64   an exact Debian package
#   scripts/vmtest.sh --markdown 6.1 6.12          also print the docs/probes.md tables
#
# Kernels come from the configured apt sources only (`apt-get download`), cached under
# target/vmtest/debs: once cached, a run needs no network (an alias resolves to the newest
# cached package of its series when apt has nothing newer or cannot be asked).
#
# Emulation is TCG (`-accel tcg -cpu max`), not KVM: on this CI machine /dev/kvm exists but
# `-cpu host` fails on an MSR and the default CPU hangs after decompressing the kernel. TCG
# boots a Debian kernel to the guest's shell in about 8 s; the whole guest run takes about
# a minute on a quiet machine and several under load, hence the generous timeout
# (KERNO_VMTEST_TIMEOUT, seconds per kernel, default 900).
#
# KERNO_VMTEST_APPEND adds to the guest kernel's command line; NAME=VALUE words there become
# the guest's environment: KERNO_VMTEST_DURATION=5s (the doctor's window, default 3s), or
# KERNO_FAIL_PROBES=tcp to see the checks fail on a domain the kernel does not lack.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
CACHE=$ROOT/target/vmtest
TIMEOUT=${KERNO_VMTEST_TIMEOUT:-900}
MARKDOWN=()
KERNELS=()
usage() { sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
for a in "$@"; do
    case "$a" in
        --markdown) MARKDOWN=(--markdown) ;;
        -h|--help) usage ;;
        -*) echo "vmtest: unknown option $a" >&2; usage ;;
        *) KERNELS+=("$a") ;;
    esac
done
[ ${#KERNELS[@]} -gt 0 ] || KERNELS=(6.1 6.12)
[ "$(id -u)" -eq 0 ] || { echo "vmtest: run as root (apt-get download, qemu)" >&2; exit 1; }
for t in qemu-system-x86_64 busybox cpio gcc objcopy xz bpftool dpkg-deb python3; do
    command -v "$t" >/dev/null || { echo "vmtest: $t missing: run scripts/setup.sh" >&2; exit 1; }
done
say() { printf '[vmtest] %s\n' "$*" >&2; }
mkdir -p "$CACHE/debs" "$CACHE/kernels" "$CACHE/runs"

# The Debian package for an alias (6.1, 6.12) or a package name; the newest cached one of
# the series when apt knows none.
resolve() {
    local want=$1 pkg="" pat
    case "$want" in
        linux-image-*) echo "$want"; return ;;
        6.1) pat='linux-image-6\.1\.0-[0-9]+-amd64'
             pkg=$(apt-cache depends linux-image-amd64 2>/dev/null \
                   | sed -n 's/^ *Depends: \(linux-image-6\.1\.0-[0-9]*-amd64\)$/\1/p' | head -1) ;;
        6.12) pat='linux-image-6\.12\.[0-9]+\+deb12-amd64-unsigned'
              pkg=$(apt-cache pkgnames linux-image-6.12. 2>/dev/null | grep -E "^$pat\$" \
                    | sort -V | tail -1) ;;
        *) echo "vmtest: unknown kernel '$want' (6.1, 6.12 or a linux-image-* package)" >&2
           exit 2 ;;
    esac
    local cached
    cached=$(find "$CACHE/debs" -name '*.deb' -printf '%f\n' | sed 's/_.*//' \
             | grep -E "^$pat\$" | sort -V | tail -1 || true)
    if [ -n "$cached" ] && { [ -z "$pkg" ] || [ "$(printf '%s\n%s\n' "$pkg" "$cached" | sort -V | tail -1)" = "$cached" ]; }; then
        pkg=$cached
    fi
    [ -n "$pkg" ] || { echo "vmtest: no package for $want (apt-get update?)" >&2; exit 1; }
    echo "$pkg"
}

# vmlinuz of a package, downloaded and extracted once.
kernel_image() {
    local pkg=$1 deb dir=$CACHE/kernels/$1
    if [ ! -s "$dir/vmlinuz" ]; then
        deb=$(find "$CACHE/debs" -name "${pkg}_*.deb" | sort -V | tail -1)
        if [ -z "$deb" ]; then
            say "downloading $pkg (apt-get download)"
            (cd "$CACHE/debs" && apt-get download -q "$pkg" 2>&1 | grep -v '^W: Download is performed unsandboxed' >&2) || true
            deb=$(find "$CACHE/debs" -name "${pkg}_*.deb" | sort -V | tail -1)
            [ -n "$deb" ] || { echo "vmtest: apt-get download $pkg failed" >&2; exit 1; }
        fi
        rm -rf "$dir.tmp" && mkdir -p "$dir.tmp"
        dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$dir.tmp" --wildcards './boot/vmlinuz-*' \
            './lib/modules/*/kernel/net/*netfilter/*' './lib/modules/*/kernel/lib/*' \
            './lib/modules/*/kernel/crypto/*'
        mv "$dir.tmp"/boot/vmlinuz-* "$dir.tmp/vmlinuz" && rm -rf "$dir.tmp/boot"
        guest_modules "$dir.tmp" nf_conntrack
        rm -rf "$dir" && mv "$dir.tmp" "$dir"
    fi
    echo "$dir/vmlinuz"
}

# A second initramfs archive (the kernel unpacks both) with MODULE and what it depends on
# (the depends= and softdep=pre: of its .modinfo, recursively), uncompressed, and /lib/modules/load, the order to
# insmod them: the conntrack domain needs nf_conntrack, a module in Debian's kernels.
guest_modules() {
    local dir=$1 want=$2 m r=$1/modroot order=()
    mkdir -p "$r/lib/modules"
    add() {
        local name=$1 f dep
        for m in "${order[@]}"; do [ "$m" = "$name" ] && return; done
        # A soft dependency names a crypto algorithm (crc32c), which its _generic module
        # provides (no modules.alias here: depmod never ran on this tree).
        f=$(find "$dir/lib/modules" -name "$name.ko" -o -name "$name.ko.xz" \
                 -o -name "${name}_generic.ko" -o -name "${name}_generic.ko.xz" | head -1)
        [ -n "$f" ] || { echo "vmtest: module $name not in the package" >&2; exit 1; }
        case "$f" in *.xz) xz -dc "$f" > "$r/lib/modules/$name.ko" ;; *) cp "$f" "$r/lib/modules/$name.ko" ;; esac
        for dep in $(objcopy -O binary --only-section=.modinfo "$r/lib/modules/$name.ko" /dev/stdout \
                     | tr '\0' '\n' | sed -n 's/^depends=//p; s/^softdep=pre: *//p' | tr ', ' '  '); do
            add "$dep"
        done
        order+=("$name")
    }
    add "$want"
    printf '/lib/modules/%s.ko\n' "${order[@]}" > "$r/lib/modules/load"
    (cd "$r" && find . | cpio -o -H newc --quiet) | gzip -1 > "$dir/modules.cpio.gz"
    rm -rf "$r" "$dir/lib"
}

# The initramfs: busybox (static), the release kerno and bpftool with the shared libraries
# they load, the static workload, and the guest's /init.
build_initramfs() {
    local r=$CACHE/initramfs
    say "building the release kerno and the initramfs"
    cargo build --release --quiet -p kerno-cli
    rm -rf "$r" && mkdir -p "$r"/{bin,sbin,etc,proc,sys,dev,tmp,run}
    if ldd /bin/busybox >/dev/null 2>&1; then
        echo "vmtest: /bin/busybox is not static: install busybox-static" >&2; exit 1
    fi
    cp /bin/busybox "$r/bin/busybox"
    cp target/release/kerno "$r/kerno"
    cp "$(command -v bpftool)" "$r/bin/bpftool"
    for bin in target/release/kerno "$(command -v bpftool)"; do
        ldd "$bin" | grep -o '/[^ ]*' | while read -r lib; do
            mkdir -p "$r$(dirname "$lib")" && cp -L "$lib" "$r$lib"
        done
    done
    gcc -static -O2 -o "$r/workload" scripts/vmtest/workload.c
    install -m 0755 scripts/vmtest/init.sh "$r/init"
    echo 'root:x:0:0:root:/:/bin/sh' > "$r/etc/passwd"
    (cd "$r" && find . | cpio -o -H newc --quiet) | gzip -1 > "$CACHE/initramfs.gz"
}

# Boot one kernel; the guest's results go to the second serial port's file.
boot() {
    local pkg=$1 image=$2 out=$CACHE/runs/$1 start rc=0
    rm -rf "$out" && mkdir -p "$out"
    cat "$CACHE/initramfs.gz" "$(dirname "$image")/modules.cpio.gz" > "$out/initramfs.gz"
    start=$(date +%s)
    say "booting $pkg (TCG; timeout ${TIMEOUT} s)"
    timeout "$TIMEOUT" qemu-system-x86_64 -accel tcg -cpu max -m 1G -smp 2 \
        -display none -monitor none -no-reboot -nic none \
        -serial "file:$out/console.log" -serial "file:$out/results.log" \
        -kernel "$image" -initrd "$out/initramfs.gz" \
        -append "console=ttyS0 panic=-1 quiet ${KERNO_VMTEST_APPEND:-}" || rc=$?
    echo "$(( $(date +%s) - start ))" > "$out/seconds"
    [ $rc -eq 0 ] || say "$pkg: qemu exited $rc (124: timeout after ${TIMEOUT} s)"
    say "$pkg: $(cat "$out/seconds") s"
}

PKGS=()
for k in "${KERNELS[@]}"; do PKGS+=("$(resolve "$k")"); done
IMAGES=()
for p in "${PKGS[@]}"; do IMAGES+=("$(kernel_image "$p")"); done
build_initramfs
RUNS=()
for i in "${!PKGS[@]}"; do
    boot "${PKGS[$i]}" "${IMAGES[$i]}"
    RUNS+=("$CACHE/runs/${PKGS[$i]}")
done
python3 scripts/vmtest/check.py "${MARKDOWN[@]}" "${RUNS[@]}"
