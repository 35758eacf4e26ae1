#!/usr/bin/env python3
"""Write deploy/seccomp/kerno.json: the container runtime's default seccomp profile, plus
bpf() and perf_event_open() allowed without CAP_SYS_ADMIN (Kerno holds CAP_BPF and
CAP_PERFMON instead; the default allows both syscalls only to CAP_SYS_ADMIN).

The default is the one Debian 12's podman applies: /usr/share/containers/seccomp.json from
golang-github-containers-common 0.50.1+ds1-4 (containers/common v0.50.1, Apache-2.0), the
same rules as Docker's and containerd's default (moby/profiles/seccomp). Nothing else is
changed, so a pod with this profile may do exactly what a RuntimeDefault pod may, plus
those two calls.

    scripts/gen-seccomp.py            write the profile
    scripts/gen-seccomp.py --check    fail when the committed profile differs
"""
import hashlib
import json
import os
import sys

SOURCE = "/usr/share/containers/seccomp.json"
SOURCE_SHA256 = "cc374cf23846ce1f62f4dc807a8e2b8673c783c6f56cb475467621035d281e6c"
ADDED = ["bpf", "perf_event_open"]
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "deploy", "seccomp", "kerno.json")


def generate(raw: bytes) -> str:
    profile = json.loads(raw)
    syscalls = []
    for rule in profile["syscalls"]:
        # The default's CAP_SYS_ADMIN-gated pair of rules (allow with, EPERM without) name
        # bpf and perf_event_open among others: take the two out of both, keep the rest.
        names = [n for n in rule["names"] if n not in ADDED]
        if not names:
            continue
        syscalls.append(dict(rule, names=names))
    syscalls.append({
        "names": ADDED,
        "action": "SCMP_ACT_ALLOW",
        "args": [],
        "comment": "Kerno: load and read eBPF programs and maps (CAP_BPF) and open perf "
                   "events for them (CAP_PERFMON) without CAP_SYS_ADMIN",
        "includes": {},
        "excludes": {},
    })
    profile["syscalls"] = syscalls
    return json.dumps(profile, indent=2) + "\n"


def main() -> int:
    check = sys.argv[1:] == ["--check"]
    try:
        raw = open(SOURCE, "rb").read()
    except FileNotFoundError:
        print(f"seccomp: {SOURCE} is missing (install podman: scripts/setup.sh)", file=sys.stderr)
        return 1
    digest = hashlib.sha256(raw).hexdigest()
    if digest != SOURCE_SHA256:
        print(f"seccomp: {SOURCE} is not the reviewed version (sha256 {digest}); review the "
              "new default, then update SOURCE_SHA256 and regenerate", file=sys.stderr)
        return 1
    text = generate(raw)
    if check:
        if open(OUT).read() != text:
            print(f"seccomp: {OUT} is STALE: run scripts/gen-seccomp.py", file=sys.stderr)
            return 1
        print("seccomp: deploy/seccomp/kerno.json is up to date")
        return 0
    open(OUT, "w").write(text)
    print(f"seccomp: wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
