#!/usr/bin/env bash
# Install Kerno on a host without Kubernetes, as root.
#
#   scripts/install.sh [--daemon] [--prefix DIR] [TARBALL]
#       the binary (from TARBALL, a .tar.gz with a file named `kerno` in it, else from this
#       checkout's target/release/kerno), /etc/kerno/config.yaml (kept when it exists) and,
#       with --daemon, the systemd unit kerno.service (enabled and started when systemd runs)
#   scripts/install.sh --uninstall [--prefix DIR]
#       stop and remove the unit and the binary; the config file goes only when unchanged
#
# Running it again installs the same files again and changes nothing else. DESTDIR=DIR
# installs into a scratch root (no systemctl then). The prefix defaults to /usr/local.
# Refuses, before touching anything, on an architecture other than x86-64 or a kernel without
# BTF (/sys/kernel/btf/vmlinux) or older than 5.8 (CAP_BPF).
# For tests: INSTALL_ARCH, INSTALL_BTF and INSTALL_KERNEL stand in for `uname -m`, the BTF
# path and `uname -r`.
set -euo pipefail
HERE=$(cd "$(dirname "$0")/.." && pwd)
say() { printf '[install] %s\n' "$*"; }
die() { printf '[install] %s\n' "$*" >&2; exit 1; }

DAEMON=0
UNINSTALL=0
PREFIX=/usr/local
TARBALL=
while [ $# -gt 0 ]; do
    case "$1" in
        --daemon) DAEMON=1 ;;
        --uninstall) UNINSTALL=1 ;;
        --prefix) PREFIX=${2:?--prefix needs a directory}; shift ;;
        --prefix=*) PREFIX=${1#--prefix=} ;;
        -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        -*) die "unknown option $1 (see --help)" ;;
        *) [ -z "$TARBALL" ] || die "one tarball at most"; TARBALL=$1 ;;
    esac
    shift
done
DESTDIR=${DESTDIR:-}
BIN=$PREFIX/bin/kerno
UNIT=/etc/systemd/system/kerno.service
CONFIG=/etc/kerno/config.yaml
SHIPPED_UNIT=$HERE/deploy/systemd/kerno.service
SHIPPED_CONFIG=$HERE/deploy/systemd/config.yaml
[ -n "$DESTDIR" ] || [ "$(id -u)" -eq 0 ] || die "run as root (or set DESTDIR to install into a scratch root)"
systemd_runs() { [ -z "$DESTDIR" ] && [ -d /run/systemd/system ]; }

if [ "$UNINSTALL" = 1 ]; then
    if systemd_runs && systemctl list-unit-files kerno.service > /dev/null 2>&1; then
        systemctl disable --now kerno.service 2>/dev/null || true
    fi
    removed=()
    for f in "$UNIT" "$BIN"; do
        if [ -e "$DESTDIR$f" ]; then rm -f "$DESTDIR$f"; removed+=("$f"); fi
    done
    systemd_runs && systemctl daemon-reload
    if [ -e "$DESTDIR$CONFIG" ]; then
        if cmp -s "$DESTDIR$CONFIG" "$SHIPPED_CONFIG"; then
            rm -f "$DESTDIR$CONFIG"
            rmdir "$DESTDIR/etc/kerno" 2>/dev/null || true
            removed+=("$CONFIG")
        else
            say "kept $CONFIG (changed since it was installed)"
        fi
    fi
    if [ ${#removed[@]} -eq 0 ]; then say "nothing to remove: Kerno is not installed"; else say "removed ${removed[*]}"; fi
    exit 0
fi

# What the probes need, checked before anything is written.
arch=${INSTALL_ARCH:-$(uname -m)}
[ "$arch" = x86_64 ] || die "unsupported architecture $arch: Kerno's eBPF object is built for x86-64 only (docs/deploy.md, \"Multi-arch\")"
btf=${INSTALL_BTF:-/sys/kernel/btf/vmlinux}
[ -r "$btf" ] || die "unsupported kernel: no BTF at $btf (Kerno needs a kernel built with CONFIG_DEBUG_INFO_BTF=y, 5.8 or later)"
kernel=${INSTALL_KERNEL:-$(uname -r)}
IFS=.- read -r kmaj kmin _ <<< "$kernel"
[ "$kmaj" -gt 5 ] || { [ "$kmaj" -eq 5 ] && [ "$kmin" -ge 8 ]; } \
    || die "unsupported kernel $kernel: Kerno needs 5.8 or later (CAP_BPF, CAP_PERFMON)"

# The binary.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if [ -n "$TARBALL" ]; then
    [ -r "$TARBALL" ] || die "cannot read $TARBALL"
    tar -xzf "$TARBALL" -C "$tmp" || die "$TARBALL is not a .tar.gz"
    mapfile -t found < <(find "$tmp" -type f -name kerno)
    [ ${#found[@]} -eq 1 ] || die "$TARBALL must hold exactly one file named kerno (found ${#found[@]})"
    src=${found[0]}
    # A tarball may carry its own unit and config.
    u=$(find "$tmp" -type f -name kerno.service | head -1); [ -z "$u" ] || SHIPPED_UNIT=$u
    c=$(find "$tmp" -type f -name config.yaml | head -1); [ -z "$c" ] || SHIPPED_CONFIG=$c
else
    src=$HERE/target/release/kerno
    [ -x "$src" ] || die "no $src: build it (cargo build --release -p kerno-cli) or give a release tarball"
fi
version=$("$src" --version 2>/dev/null) || die "$src does not run here"

changed=()
put() { # put MODE SRC DEST: install when different
    if ! cmp -s "$2" "$DESTDIR$3"; then
        install -D -m "$1" "$2" "$DESTDIR$3"
        changed+=("$3")
    fi
}
put 0755 "$src" "$BIN"
# The config: the shipped one when there is none; an existing one is the admin's.
if [ ! -e "$DESTDIR$CONFIG" ]; then
    install -D -m 0644 "$SHIPPED_CONFIG" "$DESTDIR$CONFIG"
    changed+=("$CONFIG")
fi
if [ "$DAEMON" = 1 ]; then
    sed "s|/usr/local/bin/kerno|$BIN|" "$SHIPPED_UNIT" > "$tmp/kerno.service"
    put 0644 "$tmp/kerno.service" "$UNIT"
fi
if [ ${#changed[@]} -eq 0 ]; then
    say "$version already installed; nothing changed"
else
    say "installed $version: ${changed[*]}"
fi
if [ "$DAEMON" = 1 ]; then
    if systemd_runs; then
        systemctl daemon-reload
        systemctl enable kerno.service
        if [[ " ${changed[*]} " == *" $BIN "* || " ${changed[*]} " == *" $UNIT "* ]]; then
            systemctl restart kerno.service
        else
            systemctl start kerno.service
        fi
        say "kerno.service is $(systemctl is-active kerno.service)"
    elif [ -z "$DESTDIR" ]; then
        say "systemd is not running here: the unit is installed; start it with: systemctl enable --now kerno"
    fi
fi
