#!/usr/bin/env python3
"""Kerno's deployment policy, checked on rendered manifests (YAML, multi-document).

    scripts/policy.py [--allow-host-network] FILE...
        exit 1 and one line per fault when any workload breaks the policy

    scripts/policy.py --fixtures DIR
        every DIR/*.yaml declares `# expect: RULE[,RULE]` (or `# expect: pass`) and must
        fail with exactly those rules (or pass): the policy's own test

Rules (ids as printed):
  privileged          securityContext.privileged: true anywhere
  host-network        hostNetwork: true (allowed with --allow-host-network: chart value
                      hostNetwork=true)
  host-ipc            hostIPC: true
  no-limits           a container without resources.limits.cpu and .memory
  writable-rootfs     a container without readOnlyRootFilesystem: true
  privilege-escalation a container without allowPrivilegeEscalation: false
  capabilities        capabilities.add outside Kerno's set, or drop without ALL
  token-mounted       a pod without automountServiceAccountToken: false, or a ServiceAccount
                      that mounts its token
  writable-hostpath   a hostPath volume mounted without readOnly: true
  seccomp-unconfined  seccompProfile type Unconfined (or none set at all)
"""
import glob
import os
import sys

import yaml

# The capability set (docs/deploy.md, "Capabilities"; owned by the hardening issue).
ALLOWED_CAPS = {"BPF", "PERFMON", "SYS_PTRACE", "DAC_READ_SEARCH"}
WORKLOADS = {"Pod", "DaemonSet", "Deployment", "StatefulSet", "ReplicaSet", "Job"}


def pod_spec(doc):
    if doc.get("kind") == "Pod":
        return doc.get("spec") or {}
    return ((doc.get("spec") or {}).get("template") or {}).get("spec") or {}


def check_doc(doc, allow_host_network):
    kind = doc.get("kind")
    name = f"{kind}/{(doc.get('metadata') or {}).get('name', '?')}"
    faults = []

    def fault(rule, what):
        faults.append((rule, f"{name}: {what}"))

    if kind == "ServiceAccount":
        if doc.get("automountServiceAccountToken") is not False:
            fault("token-mounted", "automountServiceAccountToken is not false")
        return faults
    if kind not in WORKLOADS:
        return faults
    spec = pod_spec(doc)
    if spec.get("hostNetwork") is True and not allow_host_network:
        fault("host-network", "hostNetwork: true (not configured)")
    if spec.get("hostIPC") is True:
        fault("host-ipc", "hostIPC: true")
    if spec.get("automountServiceAccountToken") is not False:
        fault("token-mounted", "automountServiceAccountToken is not false")
    pod_sc = spec.get("securityContext") or {}
    if (pod_sc.get("seccompProfile") or {}).get("type") == "Unconfined":
        fault("seccomp-unconfined", "pod seccompProfile is Unconfined")
    host_volumes = {v["name"] for v in spec.get("volumes") or [] if "hostPath" in v}
    containers = (spec.get("initContainers") or []) + (spec.get("containers") or [])
    for c in containers:
        cn = c.get("name", "?")
        sc = c.get("securityContext") or {}
        if sc.get("privileged") is True:
            fault("privileged", f"container {cn} is privileged")
        limits = (c.get("resources") or {}).get("limits") or {}
        missing = [r for r in ("cpu", "memory") if r not in limits]
        if missing:
            fault("no-limits", f"container {cn} has no {' or '.join(missing)} limit")
        if sc.get("readOnlyRootFilesystem") is not True:
            fault("writable-rootfs", f"container {cn} root filesystem is writable")
        if sc.get("allowPrivilegeEscalation") is not False:
            fault("privilege-escalation", f"container {cn} may gain privileges")
        caps = sc.get("capabilities") or {}
        added = {a.upper().removeprefix("CAP_") for a in caps.get("add") or []}
        extra = sorted(added - ALLOWED_CAPS)
        if extra:
            fault("capabilities", f"container {cn} adds {', '.join(extra)} (outside {sorted(ALLOWED_CAPS)})")
        if "ALL" not in {d.upper() for d in caps.get("drop") or []}:
            fault("capabilities", f"container {cn} does not drop ALL")
        seccomp = (sc.get("seccompProfile") or pod_sc.get("seccompProfile") or {}).get("type")
        if seccomp in (None, "Unconfined"):
            fault("seccomp-unconfined", f"container {cn} seccomp profile is {seccomp or 'unset'}")
        for m in c.get("volumeMounts") or []:
            if m.get("name") in host_volumes and m.get("readOnly") is not True:
                fault("writable-hostpath", f"container {cn} mounts hostPath {m['name']} writable")
    return faults


def check_file(path, allow_host_network):
    faults = []
    with open(path) as f:
        for doc in yaml.safe_load_all(f):
            if isinstance(doc, dict):
                faults += check_doc(doc, allow_host_network)
    return faults


def fixtures(directory):
    files = sorted(glob.glob(os.path.join(directory, "*.yaml")))
    if not files:
        print(f"policy: no fixtures in {directory}", file=sys.stderr)
        return 1
    bad = 0
    for path in files:
        expect = None
        allow = False
        for line in open(path):
            if line.startswith("# expect:"):
                expect = line.split(":", 1)[1].strip()
            if line.startswith("# allow-host-network"):
                allow = True
        if expect is None:
            print(f"policy: {path} has no '# expect:' line", file=sys.stderr)
            bad += 1
            continue
        want = set() if expect == "pass" else set(expect.split(","))
        got = {rule for rule, _ in check_file(path, allow)}
        ok = got == want
        bad += not ok
        print(f"policy fixture {os.path.basename(path)}: expect {expect}, got "
              f"{','.join(sorted(got)) or 'pass'}: {'ok' if ok else 'WRONG'}")
    print(f"policy fixtures: {len(files) - bad} passed, {bad} failed")
    return 1 if bad else 0


def main(argv):
    if argv[:1] == ["--fixtures"] and len(argv) == 2:
        return fixtures(argv[1])
    allow = "--allow-host-network" in argv
    files = [a for a in argv if a != "--allow-host-network"]
    if not files:
        print(__doc__, file=sys.stderr)
        return 2
    faults = []
    for path in files:
        faults += check_file(path, allow)
    for rule, what in faults:
        print(f"policy: {rule}: {what}", file=sys.stderr)
    if faults:
        return 1
    print(f"policy: {', '.join(files)}: no fault")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
