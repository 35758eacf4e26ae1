#!/usr/bin/env bash
# Install Kerno on a host without Kubernetes, as root.
#
#   scripts/install.sh [--daemon] [--prefix DIR] [--skip-preflight] [TARBALL]
#       the binary (from TARBALL, a .tar.gz with a file named `kerno` in it, else from this
#       checkout's target/release/kerno), /etc/kerno/config.yaml (kept when it exists) and,
#       with --daemon, the systemd unit kerno.service (enabled and started when systemd runs)
#   scripts/install.sh --uninstall [--prefix DIR]
#       stop and remove the unit and the binary; the config file goes only when unchanged
#
# Running it again installs the same files again and changes nothing else. DESTDIR=DIR
# installs into a scratch root (no systemctl then). The prefix defaults to /usr/local.
# Refuses, before touching anything, on an architecture other than x86-64, or when the
# binary's `kerno preflight` (the chart's init container runs the same checks: kernel, BTF,
# tracepoints, capabilities, bpf(), cgroups, the agent's port with --daemon) has a FAIL;
# --skip-preflight installs anyway. For tests: INSTALL_ARCH stands in for `uname -m`.
set -euo pipefail
HERE=$(cd "$(dirname "$0")/.." && pwd)
say() { printf '[install] %s\n' "$*"; }
die() { printf '[install] %s\n' "$*" >&2; exit 1; }

DAEMON=0
UNINSTALL=0
SKIP_PREFLIGHT=0
PREFIX=/usr/local
TARBALL=
while [ $# -gt 0 ]; do
    case "$1" in
        --daemon) DAEMON=1 ;;
        --uninstall) UNINSTALL=1 ;;
        --prefix) PREFIX=${2:?--prefix needs a directory}; shift ;;
        --prefix=*) PREFIX=${1#--prefix=} ;;
        --skip-preflight) SKIP_PREFLIGHT=1 ;;
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
version=$("$src" -V 2>/dev/null) || die "$src does not run here"
# Everything else the probes need, by the binary itself (kerno-core's preflight).
if [ "$SKIP_PREFLIGHT" = 0 ]; then
    pf=(preflight --no-color)
    [ "$DAEMON" = 1 ] || pf+=(--no-agent)
    if ! report=$("$src" "${pf[@]}" 2>&1); then
        printf '%s\n' "$report" >&2
        die "this host cannot run Kerno: fix each FAIL above (kerno preflight checks again), or --skip-preflight to install anyway"
    fi
    say "preflight: $(tail -1 <<< "$report")"
fi

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
