#!/usr/bin/env python3
"""Judge scripts/vmtest.sh guest runs: read each run's results.log (sections written by
scripts/vmtest/init.sh on the guest's second serial port), check them, print a table of
kernel x check and kernel x program, exit 1 if any check failed.

    check.py [--markdown] RUN_DIR...

A domain or program that did not attach passes only where the kernel truly lacks what it
needs: on 6.1 and later every probe domain must attach; on an older kernel the reason must
name a tracepoint that the guest's own tracepoint list (available_events) or BTF
(btf_trace_* types) lacks. The exact counts are those of kerno-core/tests/root_signals.rs:
the workload's failing openat calls, its opens and closes, and /proc/<pid>/fd.
"""

import json
import re
import sys
from pathlib import Path

MARK = "@@kerno-vmtest"
PROBE_DOMAINS = {"syscalls", "fds", "sched", "disk", "tcp", "oom"}
PROCFS_DOMAINS = {"memory", "filesystem", "pids"}


def sections(text):
    """NAME -> (rc, body) of every complete section; plus the guest markers seen."""
    out, markers, cur, body = {}, set(), None, []
    for line in text.replace("\r", "").split("\n"):
        if line.startswith(MARK + " begin "):
            cur, body = line[len(MARK) + 7 :], []
        elif line.startswith(MARK + " end ") and cur is not None:
            m = re.search(r"rc=(\d+)$", line)
            out[cur] = (int(m.group(1)) if m else -1, "\n".join(body))
            cur = None
        elif line.startswith(MARK + " guest "):
            markers.add(line[len(MARK) + 7 :].strip())
        elif cur is not None:
            body.append(line)
    return out, markers


def as_json(sec, name):
    rc, body = sec.get(name, (None, ""))
    if rc is None:
        return None, f"no {name} section"
    try:
        return json.loads(body), None
    except ValueError as e:
        return None, f"{name}: not JSON ({e}): {body[:200]!r}"


def version(release):
    m = re.match(r"(\d+)\.(\d+)", release)
    return (int(m.group(1)), int(m.group(2))) if m else (0, 0)


class Run:
    def __init__(self, d):
        self.dir = Path(d)
        self.name = self.dir.name
        log = self.dir / "results.log"
        self.sec, self.markers = sections(log.read_text(errors="replace") if log.exists() else "")
        self.release = self.sec.get("uname", (0, self.name))[1].strip() or self.name
        secs = self.dir / "seconds"
        self.seconds = secs.read_text().strip() if secs.exists() else "?"
        self.checks = []  # (check, ok, detail)
        self.programs = {}  # program -> (ok, text)
        ev = self.sec.get("events", (0, ""))[1].split()
        self.events = set(ev)
        self.btf_trace = set(self.sec.get("btf_trace", (0, ""))[1].split())
        self.features = dict(
            reversed(line.split(" ", 1)) for line in self.sec.get("features", (0, ""))[1].splitlines() if " " in line
        )

    def check(self, name, ok, detail):
        self.checks.append((name, bool(ok), detail))

    def lacks(self, tracepoint):
        """Whether this kernel lacks a tracepoint named `cat:name` or `tp_btf/name`."""
        if tracepoint.startswith("tp_btf/"):
            return tracepoint[len("tp_btf/") :] not in self.btf_trace
        return tracepoint.replace("/", ":") not in self.events

    def justified(self, domain, reason):
        """Why a domain may be missing here, or None when it may not."""
        reason = reason or ""
        if domain in PROBE_DOMAINS:
            if version(self.release) >= (6, 1):
                return None
            named = re.findall(r"\b(tp_btf/\w+|\w+[:/]\w+)", reason)
            missing = [t for t in named if self.lacks(t)]
            return f"kernel lacks {', '.join(missing)}" if missing else None
        if domain == "conntrack":
            if "nf_conntrack" in reason and self.features.get("/proc/net/stat/nf_conntrack") == "absent":
                return "nf_conntrack not loaded in the guest (/proc/net/stat/nf_conntrack absent)"
        return None

    def judge(self):
        s = self.sec
        self.check("boot", "done" in self.markers,
                   f"{self.seconds} s" if "done" in self.markers
                   else f"guest did not finish ({self.seconds} s): see {self.dir}/console.log")
        if "up" not in self.markers:
            return
        self.check("btf", s.get("btf", (1,))[0] == 0, s.get("btf", (1, "missing"))[1].strip()[-60:])

        pf, err = as_json(s, "preflight")
        if pf is None:
            self.check("preflight", False, err)
        else:
            bad = [c["name"] for c in pf.get("checks", []) if c.get("verdict") == "fail"]
            self.check("preflight", s["preflight"][0] == 0 and pf.get("ok") is True,
                       f"{pf.get('passed')} passed, {pf.get('warnings')} warnings"
                       + (f", failed: {', '.join(bad)}" if bad else ""))
        tracepoints = [c["name"][len("tracepoint ") :] for c in (pf or {}).get("checks", [])
                       if c.get("name", "").startswith("tracepoint ")]

        doc, err = as_json(s, "doctor")
        wl = dict(line.split("=", 1) for line in s.get("workload", (0, ""))[1].splitlines() if "=" in line and " " not in line)
        m = re.search(r"failing=(\d+) succeeding=(\d+) leaked=(\d+)", s.get("workload", (0, ""))[1])
        if doc is None:
            self.check("doctor", False, err + " " + s.get("doctor-stderr", (0, ""))[1][:300])
        else:
            self.check("doctor", s["doctor"][0] == 0, f"exit {s['doctor'][0]}, status {doc.get('status')}")
            missing = []
            for d in doc.get("domains", []):
                if d.get("observed"):
                    continue
                why = self.justified(d["domain"], d.get("reason"))
                missing.append((d["domain"], why, d.get("reason")))
            bad = [f"{dom}: {r}" for dom, why, r in missing if why is None]
            okd = [f"{dom} ({why})" for dom, why, _ in missing if why is not None]
            n = len(doc.get("domains", []))
            self.check("domains", n >= 10 and not bad,
                       f"{n - len(missing)}/{n} observed" + (f"; degraded as the kernel says: {'; '.join(okd)}" if okd else "")
                       + (f"; NOT JUSTIFIED: {'; '.join(bad)}" if bad else ""))
            sig = doc.get("signals") or {}
            pid = int(wl.get("pid", "-1"))
            if not m:
                self.check("openat-errors", False, "the workload did not report its numbers")
            else:
                failing, succeeding, leaked = map(int, m.groups())
                sc = [x for x in ((sig.get("syscalls") or {}).get("syscalls") or []) if x["name"] == "openat"]
                mine = [e for e in (sc[0]["top_errors"] if sc else []) if e["process"]["pid"] == pid]
                got = [(e["errno"], e["count"]) for e in mine]
                self.check("openat-errors", got == [("ENOENT", failing)] and sc[0]["errors"] >= failing
                           and sc[0]["count"] >= failing + succeeding,
                           f"pid {pid}: {got} (workload made {failing} ENOENT)")
                fp = [p for p in ((sig.get("fds") or {}).get("processes") or []) if p["process"]["pid"] == pid]
                truth = int(wl.get("fds", "-1"))
                if not fp:
                    self.check("fd-counts", False, f"pid {pid} not in fds.processes")
                else:
                    p = fp[0]
                    want = (succeeding + leaked, succeeding, truth, int(wl.get("soft_limit", "-1")))
                    have = (p["opens"], p["closes"], p.get("open_fds"), p.get("soft_limit"))
                    self.check("fd-counts", have == want and sum(p.get("net_per_interval") or []) == leaked,
                               f"opens/closes/open_fds/limit {have}, expected {want} (/proc/{pid}/fd)")

        rz = s.get("readyz", (0, ""))[1]
        status = rz.split("\n", 1)[0]
        try:
            ready = json.loads(rz.split("\n", 1)[1])
        except (ValueError, IndexError):
            ready = {}
        self.check("readyz", status.startswith("status=200") and ready.get("ready") is True,
                   f"{status.split(' ')[0]}, ready={ready.get('ready')}, status {ready.get('status')}")
        self.check("agent-stop", s.get("start", (1,))[0] == 0, f"exit {s.get('start', (None,))[0]} on SIGTERM")

        progs, e1 = as_json(s, "running-prog")
        links, e2 = as_json(s, "running-link")
        perf, e3 = as_json(s, "running-perf")
        kerno_view = {}
        for d in ready.get("domains", []):
            for p in d.get("programs", []):
                kerno_view[p] = (d["domain"], d.get("state"))
        degraded = {d["domain"]: d.get("reason") for d in ready.get("degraded", [])}
        attached = {}
        for l in links or []:
            attached.setdefault(l["prog_id"], l["type"])
        for p in perf or []:
            attached.setdefault(p["prog_id"], f"perf event {p.get('tracepoint', '')}".strip())
        all_ok = progs is not None and links is not None
        for tp in tracepoints:
            prog = tp.split(":")[-1].split("/")[-1]  # the loader names each program after its tracepoint
            loaded = [p for p in progs or [] if prog.startswith(p.get("name", "\0")) and len(p.get("name", "")) >= min(15, len(prog))]
            ids = [p["id"] for p in loaded if p["id"] in attached]
            dom, state = kerno_view.get(prog, (None, None))
            if ids and state == "attached":
                self.programs[tp] = (True, f"attached ({attached[ids[0]]} link)")
            else:
                why = None
                for d, r in degraded.items():
                    if self.lacks(tp) and (tp in (r or "") or tp.replace(":", "/") in (r or "")):
                        why = self.justified(d, r)
                said = "; ".join(f"{d}: {r}" for d, r in degraded.items()) or "no reason given"
                self.programs[tp] = (why is not None, f"not attached ({why or 'NOT JUSTIFIED'}): {said}")
                all_ok = all_ok and why is not None
        self.check("programs", all_ok and tracepoints,
                   f"{sum(ok for ok, t in self.programs.values() if t.startswith('attached'))}/{len(tracepoints)} attached"
                   + (f" ({e1 or e2 or e3})" if (e1 or e2 or e3) else ""))

        left = []
        for kind in ("prog", "link", "perf", "map"):
            v, e = as_json(s, f"stopped-{kind}")
            if v is None or v:
                left.append(f"{kind}: {e or len(v)}")
        self.check("detached", not left, "no program, link, perf attachment or map left" if not left else "; ".join(left))


def table(rows, header):
    w = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    line = lambda r: "  ".join(str(c).ljust(w[i]) for i, c in enumerate(r)).rstrip()
    return "\n".join([line(header), line(["-" * x for x in w])] + [line(r) for r in rows])


def main(argv):
    md = "--markdown" in argv
    dirs = [a for a in argv if a != "--markdown"]
    if not dirs:
        print(__doc__, file=sys.stderr)
        return 2
    runs = [Run(d) for d in dirs]
    for r in runs:
        r.judge()
    failed = False
    for r in runs:
        print(f"\n== {r.release} ({r.name})")
        print(table([[n, "PASS" if ok else "FAIL", d] for n, ok, d in r.checks], ["check", "result", "detail"]))
        failed |= not r.checks or not all(ok for _, ok, _ in r.checks)
    names = [r.release for r in runs]
    tps = []
    for r in runs:
        tps += [t for t in r.programs if t not in tps]
    print("\n== programs")
    print(table([[t] + [r.programs.get(t, (False, "-"))[1] for r in runs] for t in tps], ["program"] + names))
    if md:
        print("\n| program | " + " | ".join(names) + " |")
        print("|---|" + "---|" * len(names))
        for t in tps:
            print(f"| `{t}` | " + " | ".join(r.programs.get(t, (False, "-"))[1] for r in runs) + " |")
        checks = [c for c, _, _ in runs[0].checks]
        print("\n| check | " + " | ".join(names) + " |")
        print("|---|" + "---|" * len(names))
        for c in checks:
            cells = []
            for r in runs:
                hit = [(ok, d) for n, ok, d in r.checks if n == c]
                cells.append(("pass: " if hit and hit[0][0] else "FAIL: ") + (hit[0][1] if hit else "-"))
            print(f"| {c} | " + " | ".join(x.replace("|", "/") for x in cells) + " |")
    print("\nvmtest: " + ("FAILED" if failed else f"all checks passed on {', '.join(names)}"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
