#!/usr/bin/env bash
# The container image, built and run for real with podman (runc), as root.
#
#   scripts/image.sh base    make the runtime base image with mmdebstrap (Debian 12 from this
#                            machine's apt sources: glibc and libgcc, nothing else) and import
#                            it into podman as the name the Dockerfile uses; cached in
#                            target/image/base.tar
#   scripts/image.sh build   base, then the Dockerfile's runtime stage from the release binary
#                            (KERNO_BINARY=prebuilt; builds it with cargo when missing)
#   scripts/image.sh test    build, then run the image the way the DaemonSet runs it and check
#                            doctor and the agent inside (holds $KERNEL_LOCK, default /tmp/kerno-kernel.lock)
#
# No image registry is reachable from CI, and Debian 12's rustc is older than Kerno's minimum,
# hence the local base and the prebuilt binary; a user's `docker build .` builds both stages.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
say() { printf '[image] %s\n' "$*"; }
die() { printf '[image] FAIL: %s\n' "$*" >&2; exit 1; }

# The Dockerfile's default base (ARG BASE_IMAGE): the local one stands in for it.
BASE_IMAGE=$(sed -n 's/^ARG BASE_IMAGE=//p' Dockerfile)
IMAGE=localhost/kerno:ci
NAME=kerno-ci-$$
WL_NAME=kerno-ci-wl-$$   # a plain podman container whose workload the host's doctor attributes
PODMAN=(podman --runtime runc)   # crun refuses this machine's hybrid cgroup mode
WORK=target/image
# Root tests share one kernel: hold the lock they use while containers run.
KERNEL_LOCK=${KERNEL_LOCK:-/tmp/kerno-kernel.lock}
# The capability set (docs/deploy.md, "Capabilities"): found by dropping each in turn.
CAPS=(CAP_BPF CAP_PERFMON CAP_SYS_PTRACE CAP_DAC_READ_SEARCH)
CAP_BITS=(39 38 19 2)

base() {
    command -v mmdebstrap >/dev/null || die "mmdebstrap is missing (scripts/setup.sh installs it)"
    mkdir -p "$WORK"
    # The cache key: this script and the apt sources the packages come from.
    local key
    key=$(cat "$0" $(ls /etc/apt/sources.list /etc/apt/sources.list.d/* 2>/dev/null) | sha256sum | cut -c1-16)
    if [ -s "$WORK/base.tar" ] && [ "$(cat "$WORK/base.key" 2>/dev/null)" = "$key" ]; then
        :
    else
        say "making the base image with mmdebstrap (about 5 s)"
        local rootfs="$WORK/rootfs"
        rm -rf "$rootfs"
        mmdebstrap --quiet --variant=extract --include=libc6,libgcc-s1,base-files,netbase \
            bookworm "$rootfs"
        # What a statically-linked-but-for-glibc binary does not need: package manager state,
        # docs, iconv modules, awk (base-files pulls it in).
        rm -rf "$rootfs"/var/lib/apt "$rootfs"/var/cache/apt "$rootfs"/etc/apt \
            "$rootfs"/var/lib/dpkg "$rootfs"/etc/dpkg "$rootfs"/usr/share/doc \
            "$rootfs"/usr/share/man "$rootfs"/usr/share/lintian "$rootfs"/usr/share/locale \
            "$rootfs"/usr/share/info "$rootfs"/usr/share/perl5 "$rootfs"/var/log/* \
            "$rootfs"/usr/lib/x86_64-linux-gnu/gconv "$rootfs"/usr/bin/mawk \
            "$rootfs"/usr/bin/awk "$rootfs"/etc/alternatives/awk*
        printf 'root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n' \
            > "$rootfs/etc/passwd"
        printf 'root:x:0:\nnogroup:x:65534:\n' > "$rootfs/etc/group"
        tar --numeric-owner --sort=name --mtime=@0 -C "$rootfs" -cf "$WORK/base.tar.new" .
        mv "$WORK/base.tar.new" "$WORK/base.tar"
        rm -rf "$rootfs"
        echo "$key" > "$WORK/base.key"
        "${PODMAN[@]}" rmi -f "$BASE_IMAGE" >/dev/null 2>&1 || true
    fi
    if ! "${PODMAN[@]}" image exists "$BASE_IMAGE"; then
        "${PODMAN[@]}" import --quiet "$WORK/base.tar" "$BASE_IMAGE" >/dev/null
        say "imported $BASE_IMAGE ($(du -h "$WORK/base.tar" | cut -f1) tar)"
    fi
}

build() {
    base
    # The binary the Dockerfile's prebuilt stage copies (cargo does nothing when it is fresh).
    cargo build --release --quiet -p kerno-cli
    IMAGES_BEFORE=$("${PODMAN[@]}" images -a -q --no-trunc | sort -u)
    "${PODMAN[@]}" build --quiet --build-arg KERNO_BINARY=prebuilt -t "$IMAGE" . >/dev/null
    local size
    size=$("${PODMAN[@]}" image inspect "$IMAGE" --format '{{.Size}}')
    say "built $IMAGE: $((size / 1024 / 1024)) MiB ($(( $(stat -c %s target/release/kerno) / 1024 / 1024 )) MiB of it the binary)"
}

cleanup() {
    "${PODMAN[@]}" rm -f -t 0 "$NAME" >/dev/null 2>&1 || true
    "${PODMAN[@]}" rm -f -t 0 "$WL_NAME" >/dev/null 2>&1 || true
    [ -n "${WL:-}" ] && kill "$WL" 2>/dev/null || true
    "${PODMAN[@]}" rmi -f "$IMAGE" >/dev/null 2>&1 || true
    # The build's intermediate stages (the prebuilt binary's scratch stage stays otherwise).
    if [ -n "${IMAGES_BEFORE+x}" ]; then
        local id
        for id in $(comm -13 <(echo "$IMAGES_BEFORE") <("${PODMAN[@]}" images -a -q --no-trunc | sort -u)); do
            "${PODMAN[@]}" rmi -f "$id" >/dev/null 2>&1 || true
        done
    fi
}

# `podman run` options: exactly what deploy/helm/kerno gives the pod.
run_opts() {
    local -n out=$1
    local seccomp=$2
    shift 2
    out=(--name "$NAME" --cap-drop ALL)
    local c
    for c in "$@"; do out+=(--cap-add "$c"); done
    [ "$seccomp" = default ] || out+=(--security-opt "seccomp=$seccomp")
    # allowPrivilegeEscalation: false in the pod.
    out+=(--read-only --pid host --security-opt no-new-privileges
        # podman's default limits are above this machine's hard limits (runc then fails to
        # set them); nproc above 32768 was refused here too.
        --ulimit "nofile=$(ulimit -Hn):$(ulimit -Hn)"
        --ulimit "nproc=$(( $(ulimit -Hu) < 32768 ? $(ulimit -Hu) : 32768 )):$(( $(ulimit -Hu) < 32768 ? $(ulimit -Hu) : 32768 ))"
        # The agent's socket: the only writable path.
        --tmpfs /run/kerno:rw,mode=0700,size=1m
        # The host under /host, read-only (the pod's hostPath mounts).
        -v /proc:/host/proc:ro -v /sys/fs/cgroup:/host/sys/fs/cgroup:ro
        # Tracepoint formats: the probe loader reads them here (it cannot mount tracefs
        # without CAP_SYS_ADMIN, and does not look under a prefix).
        -v /sys/kernel/tracing:/sys/kernel/tracing:ro
        -e "NODE_NAME=$(hostname)" -e KERNO_HOST_ROOT=/host)
}

prog_ids() { bpftool prog list -j | python3 -c 'import json,sys; print(" ".join(str(p["id"]) for p in json.load(sys.stdin)))'; }

checks() {
    local opts
    # 1. kerno doctor inside sees a workload on the host, by its host pid and comm.
    python3 -c '
import os, time
open("/proc/self/comm", "w").write("kerno-ci-wl")
end = time.time() + 60
while time.time() < end:
    try: os.open("/nonexistent/kerno-ci", 0)
    except OSError: pass
    time.sleep(0.001)
' &
    WL=$!
    sleep 0.5
    run_opts opts "$ROOT/deploy/seccomp/kerno.json" "${CAPS[@]}"
    "${PODMAN[@]}" run --rm "${opts[@]}" "$IMAGE" doctor -d 3s -o json > "$WORK/doctor.json" \
        2> "$WORK/doctor.err" || { cat "$WORK/doctor.err" >&2; die "kerno doctor failed in the container"; }
    kill "$WL" 2>/dev/null || true
    python3 - "$WORK/doctor.json" "$WL" "$(hostname)" <<'EOF' || die "doctor in the container: see above"
import json, sys
d = json.load(open(sys.argv[1])); wl = int(sys.argv[2]); node = sys.argv[3]
missing = [x["domain"] for x in d["domains"] if not x["observed"]]
assert not missing, f"domains not observed: {missing} ({d['degraded']})"
seen = [e["process"] for s in d["signals"]["syscalls"]["syscalls"] for e in s.get("top_errors", [])
        if e["process"]["pid"] == wl]
assert seen, f"the host workload (pid {wl}) is not among the syscall errors' processes"
assert seen[0]["comm"] == "kerno-ci-wl", f"pid {wl} named {seen[0]['comm']!r}"
h = d["host"]
# The node, not the container: its name from NODE_NAME, its environment from the host's files.
assert h.get("node") == node, f"node {h.get('node')!r}, want {node!r}"
assert h["environment"] != "container", f"the report calls the node a container: {h}"
print(f"[image] doctor in the container: {len(d['domains'])} domains observed; host pid {wl} seen as "
      f"{seen[0]['comm']!r}; node {h['node']!r}, environment {h['environment']!r}")
EOF
    # 1b. The chart's init container: `kerno preflight` passes with the pod's capabilities,
    #     profile and mounts, and names bpf() refused under podman's default profile.
    "${PODMAN[@]}" run --rm "${opts[@]}" "$IMAGE" preflight --no-color > "$WORK/preflight.out" 2>&1 \
        || { cat "$WORK/preflight.out" >&2; die "kerno preflight failed in the container"; }
    local pfdef
    run_opts pfdef default "${CAPS[@]}"
    if "${PODMAN[@]}" run --rm "${pfdef[@]}" "$IMAGE" preflight --no-color > "$WORK/preflight-default.out" 2>&1; then
        die "kerno preflight passed under podman's default seccomp profile"
    fi
    grep -q '^FAIL  bpf syscall' "$WORK/preflight-default.out" \
        || { cat "$WORK/preflight-default.out" >&2; die "preflight under the default profile does not FAIL bpf syscall"; }
    say "preflight in the container: $(tail -1 "$WORK/preflight.out"); under podman's default profile: FAIL bpf syscall"

    # 2. Without the shipped profile (podman's default seccomp) bpf() is refused: the profile
    #    is what makes it work without CAP_SYS_ADMIN.
    local defopts
    run_opts defopts default "${CAPS[@]}"
    if "${PODMAN[@]}" run --rm "${defopts[@]}" "$IMAGE" doctor -d 1s -q > /dev/null 2> "$WORK/default-seccomp.err"; then
        die "doctor ran under podman's default seccomp profile: is bpf() allowed there now?"
    fi
    grep -q -i 'not permitted\|EPERM' "$WORK/default-seccomp.err" \
        || { cat "$WORK/default-seccomp.err" >&2; die "unexpected failure under the default profile"; }
    say "default seccomp profile: refused ($(grep -o -i -m1 'operation not permitted[^)]*)' "$WORK/default-seccomp.err" || head -c 80 "$WORK/default-seccomp.err"))"

    # 3. kerno start serves /readyz and /metrics to the host; doctor inside asks the agent.
    local before port
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    before=$(prog_ids)
    "${PODMAN[@]}" run -d "${opts[@]}" -p "127.0.0.1:$port:9090" "$IMAGE" start --window 10s > /dev/null \
        || die "podman run (agent) failed"
    local pid code=000 i
    pid=$("${PODMAN[@]}" inspect "$NAME" --format '{{.State.Pid}}')
    for i in $(seq 1 100); do
        code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/readyz" || true)
        [ "$code" = 200 ] && break
        sleep 0.2
    done
    [ "$code" = 200 ] || { "${PODMAN[@]}" logs "$NAME" >&2; die "/readyz answered $code"; }
    [ "$(curl -s "http://127.0.0.1:$port/healthz")" = ok ] || die "/healthz is not ok"
    curl -s "http://127.0.0.1:$port/metrics" | grep -q '^kerno_bpf_programs_loaded' \
        || die "/metrics has no kerno_bpf_programs_loaded"
    # The agent holds exactly the set, under a seccomp filter, with no_new_privs.
    local want=0 c eff
    for c in "${CAP_BITS[@]}"; do want=$(( want | (1 << c) )); done
    eff=$(awk '/^CapEff:/ {print $2}' "/proc/$pid/status")
    [ $(( 16#$eff )) -eq "$want" ] || die "agent CapEff $eff, want $(printf '%016x' "$want")"
    grep -q '^Seccomp:[[:space:]]*2' "/proc/$pid/status" || die "agent is not under a seccomp filter"
    grep -q '^NoNewPrivs:[[:space:]]*1' "/proc/$pid/status" || die "agent has no no_new_privs"
    "${PODMAN[@]}" exec "$NAME" kerno doctor -d 2s -q > /dev/null 2> "$WORK/exec.err" || true
    sleep 2
    "${PODMAN[@]}" exec "$NAME" kerno doctor -d 2s --no-color > "$WORK/exec.out" 2> "$WORK/exec.err" \
        || { cat "$WORK/exec.err" >&2; die "kerno doctor via podman exec failed"; }
    grep -q 'running agent' "$WORK/exec.err" || { cat "$WORK/exec.err" >&2; die "doctor did not answer from the agent"; }
    say "agent: /readyz 200 after $(( i * 200 )) ms or less, /healthz ok, /metrics served to the host; CapEff $eff; seccomp filter; doctor via exec answered from the agent"

    # 4. Stopping the container leaves no BPF program behind.
    "${PODMAN[@]}" stop -t 10 "$NAME" > /dev/null
    local after left=()
    after=$(prog_ids)
    for i in $after; do [[ " $before " == *" $i "* ]] || left+=("$i"); done
    [ ${#left[@]} -eq 0 ] || die "BPF programs left after stop: ${left[*]}"
    say "stopped: no BPF program left ($(wc -w <<< "$after") loaded, as before)"

    # 5. A workload in a plain podman container (outside Kubernetes) that leaks descriptors:
    #    the host's doctor names the runtime, the container id and the container's name.
    cc -O2 -o "$WORK/leak" -x c - <<'EOF'
#include <fcntl.h>
#include <unistd.h>
int main(void) {
    for (int i = 0; i < 3000; i++) { open("/dev/null", O_RDONLY); usleep(10000); }
    pause();
}
EOF
    "${PODMAN[@]}" run -d --name "$WL_NAME" --network none --read-only \
        --ulimit "nofile=$(ulimit -Hn):$(ulimit -Hn)" --ulimit "nproc=1024:1024" \
        -v "$ROOT/$WORK/leak:/leak:ro" "$BASE_IMAGE" /leak > /dev/null || die "podman run (workload) failed"
    local cid
    cid=$("${PODMAN[@]}" inspect "$WL_NAME" --format '{{.Id}}')
    sleep 1
    "$ROOT/target/release/kerno" doctor -d 4s -o json --standalone > "$WORK/attr.json" 2> "$WORK/attr.err" \
        || { cat "$WORK/attr.err" >&2; die "kerno doctor on the host failed"; }
    "${PODMAN[@]}" rm -f -t 0 "$WL_NAME" > /dev/null
    python3 - "$WORK/attr.json" "$cid" "$WL_NAME" <<'EOF' || die "podman workload attribution: see above"
import json, sys
d, cid, name = json.load(open(sys.argv[1])), sys.argv[2], sys.argv[3]
mine = [f for f in d["findings"] if f["rule"] == "fd-leak" and f["subject"].get("container_id") == cid]
assert mine, "no fd-leak finding names container " + cid + ": " + repr(
    [(f["rule"], f["subject"]) for f in d["findings"]])
s = mine[0]["subject"]
assert s.get("runtime") == "podman", s
assert s.get("container") == name, s
assert not s.get("pod") and not s.get("namespace"), s
print(f"[image] podman workload: fd-leak names runtime {s['runtime']!r}, container {s['container']!r}, "
      f"id {cid[:12]}..., pid {s['process']['pid']} {s['process']['comm']!r}")
EOF
}

case "${1:-}" in
    base) base ;;
    build) build ;;
    test)
        [ "$(id -u)" -eq 0 ] || die "run as root"
        t0=$(date +%s)
        trap cleanup EXIT
        build
        exec 9> "$KERNEL_LOCK"
        flock 9
        checks
        flock -u 9
        say "image checks passed ($(( $(date +%s) - t0 )) s)"
        ;;
    *) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
