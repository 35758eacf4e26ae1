#!/usr/bin/env bash
# Checks of the systemd unit and scripts/install.sh (with target/release/kerno), into scratch
# roots (DESTDIR): no root needed, nothing outside a temporary directory is written. Called by
# scripts/deploy-check.sh.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
say() { printf '[install-check] %s\n' "$*"; }
die() { printf '[install-check] FAIL: %s\n' "$*" >&2; exit 1; }
# The exposure score `systemd-analyze security` gives the unit (docs/deploy.md); a change that
# raises it fails here.
MAX_EXPOSURE=2.7
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
[ -x target/release/kerno ] || die "target/release/kerno is missing (cargo build --release -p kerno-cli)"

# The unit verifies, with the binary path pointing at a real binary.
mkdir -p "$TMP/unit"
sed "s|/usr/local/bin/kerno|$ROOT/target/release/kerno|" deploy/systemd/kerno.service > "$TMP/unit/kerno.service"
systemd-analyze verify "$TMP/unit/kerno.service" > "$TMP/verify.txt" 2>&1 || { cat "$TMP/verify.txt"; die "systemd-analyze verify"; }
[ ! -s "$TMP/verify.txt" ] || { cat "$TMP/verify.txt"; die "systemd-analyze verify printed warnings"; }
score=$(systemd-analyze security --offline=yes "$TMP/unit/kerno.service" 2>/dev/null \
    | sed -n 's/.*Overall exposure level for kerno.service: \([0-9.]*\).*/\1/p')
[ -n "$score" ] || die "no exposure score from systemd-analyze security --offline=yes"
awk -v s="$score" -v m="$MAX_EXPOSURE" 'BEGIN { exit !(s <= m) }' || die "exposure $score > $MAX_EXPOSURE"
say "kerno.service: systemd-analyze verify clean; security --offline exposure $score (at most $MAX_EXPOSURE)"
# Exactly the capability set of docs/reliability.md ("Least privilege"), bounding and ambient.
CAPS='CAP_BPF CAP_PERFMON CAP_SYS_PTRACE CAP_DAC_READ_SEARCH'
for key in CapabilityBoundingSet AmbientCapabilities; do
    got=$(sed -n "s/^$key=//p" deploy/systemd/kerno.service | tr ' ' '\n' | sort | xargs)
    [ "$got" = "$(echo "$CAPS" | tr ' ' '\n' | sort | xargs)" ] || die "$key=$got, want $CAPS"
done
say "kerno.service: bounding and ambient capabilities are exactly $CAPS"

# The preflight passes here as root; unprivileged, it would refuse (checked below).
SKIP=()
[ "$(id -u)" = 0 ] || SKIP=(--skip-preflight)

# Install from the local build, with the unit.
R=$TMP/root
DESTDIR=$R scripts/install.sh --daemon "${SKIP[@]}" > "$TMP/out.txt"
for f in usr/local/bin/kerno etc/kerno/config.yaml etc/systemd/system/kerno.service; do
    [ -e "$R/$f" ] || die "install did not write /$f"
done
"$R/usr/local/bin/kerno" --version > /dev/null || die "the installed binary does not run"
grep -q '^ExecStart=/usr/local/bin/kerno start' "$R/etc/systemd/system/kerno.service" || die "ExecStart"
# Again: nothing changes.
before=$(find "$R" -type f -printf '%p %T@ %s\n' | sort)
DESTDIR=$R scripts/install.sh --daemon "${SKIP[@]}" > "$TMP/out2.txt"
grep -q 'nothing changed' "$TMP/out2.txt" || { cat "$TMP/out2.txt"; die "second install changed something"; }
[ "$before" = "$(find "$R" -type f -printf '%p %T@ %s\n' | sort)" ] || die "second install touched files"
# An admin's config survives a reinstall and the uninstall.
echo '# mine' >> "$R/etc/kerno/config.yaml"
DESTDIR=$R scripts/install.sh --daemon "${SKIP[@]}" > /dev/null
grep -q '# mine' "$R/etc/kerno/config.yaml" || die "reinstall replaced a changed config"
DESTDIR=$R scripts/install.sh --uninstall > "$TMP/un.txt"
[ ! -e "$R/usr/local/bin/kerno" ] && [ ! -e "$R/etc/systemd/system/kerno.service" ] || die "uninstall left files"
grep -q 'kept /etc/kerno/config.yaml' "$TMP/un.txt" && [ -e "$R/etc/kerno/config.yaml" ] || die "uninstall removed a changed config"
say "local build: installed, reinstalled (nothing changed), changed config kept, uninstalled"

# From a release tarball, under another prefix; uninstall removes everything it installed.
mkdir -p "$TMP/tar/kerno-x"
cp target/release/kerno "$TMP/tar/kerno-x/"
tar -czf "$TMP/kerno.tar.gz" -C "$TMP/tar" kerno-x
R2=$TMP/root2
DESTDIR=$R2 scripts/install.sh --daemon "${SKIP[@]}" --prefix /opt/kerno "$TMP/kerno.tar.gz" > /dev/null
"$R2/opt/kerno/bin/kerno" --version > /dev/null || die "tarball install: binary"
grep -q '^ExecStart=/opt/kerno/bin/kerno start' "$R2/etc/systemd/system/kerno.service" || die "tarball install: ExecStart"
DESTDIR=$R2 scripts/install.sh --uninstall --prefix /opt/kerno > /dev/null
left=$(find "$R2" -type f)
[ -z "$left" ] || die "uninstall left: $left"
DESTDIR=$R2 scripts/install.sh --uninstall --prefix /opt/kerno | grep -q 'nothing to remove' || die "second uninstall"
say "tarball, --prefix /opt/kerno: installed and uninstalled, nothing left"

# Refusals, before anything is written.
refuse() { # refuse WHAT ENV...: install must fail with a message naming WHAT, writing nothing
    local what=$1 r=$TMP/refused
    shift
    rm -rf "$r"
    if env "$@" DESTDIR="$r" scripts/install.sh --daemon > /dev/null 2> "$TMP/err.txt"; then
        die "install did not refuse ($*)"
    fi
    grep -q "$what" "$TMP/err.txt" || { cat "$TMP/err.txt"; die "refusal does not say '$what'"; }
    [ ! -e "$r" ] || die "a refused install wrote files ($*)"
    printf '    %s\n' "$(cat "$TMP/err.txt")"
}
say "refusals:"
refuse 'unsupported architecture aarch64' INSTALL_ARCH=aarch64
# A host that cannot run Kerno, for real: the preflight of an unprivileged user (nobody, no
# capabilities, when this runs as root) fails, and the install refuses with its report.
r=$TMP/refused-preflight
if [ "$(id -u)" = 0 ]; then
    as=(setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all)
else
    as=()
fi
if "${as[@]}" env DESTDIR="$r" scripts/install.sh > /dev/null 2> "$TMP/err.txt"; then
    die "install did not refuse a host whose preflight fails"
fi
grep -q 'FAIL  capabilities .*missing CAP_BPF and CAP_PERFMON' "$TMP/err.txt" || { cat "$TMP/err.txt"; die "the refusal does not show the preflight's FAIL"; }
grep -q 'this host cannot run Kerno' "$TMP/err.txt" || { cat "$TMP/err.txt"; die "the refusal does not say what to do"; }
[ ! -e "$r" ] || die "a refused install wrote files"
printf '    %s\n' "$(tail -1 "$TMP/err.txt")"
if DESTDIR=$TMP/r3 scripts/install.sh "$TMP/nonexistent.tar.gz" 2> /dev/null; then die "a missing tarball was accepted"; fi
say "install checks passed"
