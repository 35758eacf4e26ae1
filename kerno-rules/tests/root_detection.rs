//! Detection proofs (root): for each built-in rule, induce the real incident with
//! `kerno_chaos`, run the engine at the DEFAULT thresholds, and check that the rule
//! fires naming the inducing process, cgroup or device, with the numbers in the evidence;
//! also that a quiet machine produces no warning, and which other rules fire meanwhile.
//!
//! The test prints the detection matrix on every run. It rewrites the tracked
//! docs/detection-matrix.md only on request, since the pids in it change each run (as root):
//!
//! ```text
//! KERNO_WRITE_DETECTION_MATRIX=1 cargo test -p kerno-rules --test root_detection
//! ```
//!
//! One test, so the cases run one after another on one kernel and the matrix is made
//! once, with every row, before any failure is reported.

use std::{
    fmt::Write as _,
    time::{Duration, Instant},
};

use kerno_chaos::{self as chaos, ChaosOptions, Intensity, Running};
use kerno_core::{Engine, Finding, KernelOptions, Report, Sample, Severity};

/// A rule, the scenario that induces its incident, and the other rules that may fire with
/// it, each with the reason (the "justified exceptions" of the matrix).
struct Case {
    rule: &'static str,
    scenario: &'static str,
    allowed: &'static [(&'static str, &'static str)],
}

const CONTENTION: (&str, &str) = (
    "sched-contention",
    "the workload keeps both CPUs of this 2-CPU machine busy, so runnable tasks really wait",
);

const CASES: &[Case] = &[
    Case {
        rule: "disk-io",
        scenario: "disk-sat",
        allowed: &[
            (
                "io-pressure",
                "the fsync writers wait on the slow device together: their cgroup's I/O stall (PSI io full)",
            ),
            (
                "syscall-latency",
                "writes to the slow device are slow syscalls too",
            ),
        ],
    },
    Case {
        rule: "oom-kill",
        scenario: "oom",
        allowed: &[
            (
                "memory-pressure",
                "the cgroup is at its limit before and at the kill",
            ),
            (
                "oom-imminent",
                "the cgroup grows toward its limit before the kill",
            ),
        ],
    },
    Case {
        rule: "tcp-retransmits",
        scenario: "tcp-loss",
        allowed: &[
            (
                "tcp-rtt",
                "retransmission timeouts inflate the smoothed RTT",
            ),
            ("network-latency", "lost SYNs are resent after 1 s"),
            (
                "syscall-latency",
                "the sender's sendto blocks while its send buffer waits for retransmitted segments to be acknowledged",
            ),
            CONTENTION,
        ],
    },
    Case {
        rule: "tcp-rtt",
        scenario: "tcp-rtt",
        allowed: &[
            (
                "network-latency",
                "the same queueing delay slows the handshake",
            ),
            ("tcp-retransmits", "a full queue drops segments"),
        ],
    },
    Case {
        rule: "sched-contention",
        scenario: "cpu",
        allowed: &[(
            "syscall-latency",
            "a syscall that waits for a CPU is a slow syscall",
        )],
    },
    Case {
        rule: "fd-leak",
        scenario: "fd-leak",
        allowed: &[],
    },
    Case {
        rule: "syscall-latency",
        scenario: "slow-syscalls",
        allowed: &[("disk-io", "the slow calls go to a slow device")],
    },
    Case {
        rule: "oom-imminent",
        scenario: "memory",
        allowed: &[
            (
                "memory-reclaim-stall",
                "the scenario touches ~470 MiB at once on a host whose free memory is page cache: the host reclaims that cache in the allocation path, a real (brief) stall of every task, PSI memory full",
            ),
            (
                "memory-pressure",
                "a cgroup past 90% of its limit is also under pressure",
            ),
        ],
    },
    Case {
        rule: "syscall-errors",
        scenario: "syscall-errors",
        allowed: &[CONTENTION],
    },
    Case {
        rule: "memory-pressure",
        scenario: "memory",
        allowed: &[
            (
                "memory-reclaim-stall",
                "the scenario touches ~470 MiB at once on a host whose free memory is page cache: the host reclaims that cache in the allocation path, a real (brief) stall of every task, PSI memory full",
            ),
            (
                "oom-imminent",
                "the cgroup is also growing toward its limit",
            ),
        ],
    },
    Case {
        rule: "network-latency",
        scenario: "network-latency",
        allowed: &[
            (
                "tcp-retransmits",
                "the dropped SYNs are retransmitted segments",
            ),
            ("tcp-rtt", "the same path delay shows in the smoothed RTT"),
        ],
    },
    Case {
        rule: "filesystem-full",
        scenario: "filesystem-full",
        allowed: &[],
    },
    Case {
        rule: "conntrack-full",
        scenario: "conntrack-full",
        allowed: &[(
            "syscall-errors",
            "a packet the full table has no room for is dropped in the output path, so its sendto fails with EPERM",
        )],
    },
    Case {
        rule: "pid-exhaustion",
        scenario: "pid-exhaustion",
        allowed: &[(
            "syscall-errors",
            "each fork refused at the limit is a clone call failing with EAGAIN",
        )],
    },
    Case {
        rule: "cpu-throttling",
        scenario: "cpu-throttle",
        allowed: &[],
    },
    Case {
        rule: "memory-reclaim-stall",
        scenario: "memory-reclaim",
        allowed: &[
            (
                "syscall-latency",
                "its writes stall in reclaim, waiting for writeback: slow syscalls",
            ),
            (
                "io-pressure",
                "reclaim waits for its dirty pages to be written back, which is I/O wait too",
            ),
        ],
    },
    Case {
        rule: "io-pressure",
        scenario: "io-throttle",
        allowed: &[(
            "syscall-latency",
            "a read that waits in the I/O throttle is a slow syscall too (the throttle releases reads in bursts, up to ~150 ms apart)",
        )],
    },
    Case {
        rule: "listen-overflow",
        scenario: "listen-overflow",
        allowed: &[],
    },
];

/// Set to a comma-separated list of rule ids to run only their cases (the matrix is then
/// not written).
const ONLY_ENV: &str = "KERNO_DETECTION_ONLY";

/// Set to `1` to rewrite docs/detection-matrix.md with this run's matrix.
const WRITE_ENV: &str = "KERNO_WRITE_DETECTION_MATRIX";

/// The longest a case may take to detect (the issue's bound for the window).
const MAX_WINDOW: Duration = Duration::from_secs(10);

struct Row {
    rule: &'static str,
    scenario: &'static str,
    detected: Option<Duration>,
    finding: Option<Finding>,
    others: Vec<String>,
    unexpected: Vec<String>,
    error: Option<String>,
}

fn engine() -> Engine {
    let mut e = Engine::kernel(&KernelOptions::default()).expect("load probes (needs root)");
    assert!(
        e.degraded().is_empty(),
        "every probe attaches here: {:?}",
        e.degraded()
    );
    e.add_rules(kerno_rules::builtin());
    e
}

/// The window from the first sample to the last, evaluated at the default thresholds.
fn evaluate(e: &Engine, series: &[Vec<Sample>], start_ms: u64, since: Instant) -> Report {
    let refs: Vec<Vec<&Sample>> = series.iter().map(|s| s.iter().collect()).collect();
    let signals = e.signals_from(&refs, start_ms, since.elapsed());
    e.evaluate(&signals)
}

/// A finding in one line that says whose it is: the rule, the subject (with the process and
/// cgroup behind it) and the title, so a failure caused by another job on the machine names
/// that job.
fn describe(f: &Finding) -> String {
    let mut whose = format!("{} {}", f.subject.kind, f.subject.name);
    if let Some(p) = &f.subject.process {
        whose += &format!(", pid {} `{}`", p.pid, p.comm);
    }
    if let Some(c) = f.subject.cgroup.as_deref().or(f
        .subject
        .process
        .as_ref()
        .and_then(|p| p.cgroup.as_deref()))
    {
        whose += &format!(", cgroup {c}");
    }
    format!("{} {} [{whose}]: {}", f.severity, f.rule, f.title)
}

fn push(series: &mut [Vec<Sample>], samples: Vec<Option<Sample>>) {
    for (s, x) in series.iter_mut().zip(samples) {
        if let Some(x) = x {
            s.push(x);
        }
    }
}

/// Does the finding name what the scenario made: a workload pid, its cgroup, its device?
fn names_the_inducer(f: &Finding, r: &Running) -> bool {
    let pids: Vec<u32> = r
        .pids
        .iter()
        .chain(r.stages.iter().flat_map(|s| &s.pids))
        .copied()
        .collect();
    if f.subject
        .process
        .as_ref()
        .is_some_and(|p| pids.contains(&p.pid))
    {
        return true;
    }
    if let (Some(cg), Some(mine)) = (&f.subject.cgroup, &r.cgroup)
        && cg.ends_with(mine.as_str())
    {
        return true;
    }
    if r.devices
        .iter()
        .any(|d| f.subject.name.contains(d.as_str()))
    {
        return true;
    }
    // Network findings name flows; the owning process appears in the evidence.
    pids.iter()
        .any(|p| f.evidence.iter().any(|e| e.contains(&format!("(pid {p})"))))
}

fn run_case(e: &mut Engine, case: &Case) -> Row {
    let mut row = Row {
        rule: case.rule,
        scenario: case.scenario,
        detected: None,
        finding: None,
        others: Vec::new(),
        unexpected: Vec::new(),
        error: None,
    };
    let opts = ChaosOptions::new(Intensity::Medium, MAX_WINDOW + Duration::from_secs(5));
    let mut running = match chaos::start(case.scenario, &opts) {
        Ok(r) => r,
        Err(err) => {
            row.error = Some(format!("scenario did not start: {err}"));
            return row;
        }
    };
    let start = Instant::now();
    let start_ms = kerno_core::unix_ms_now();
    let n = e.collector_names().len();
    let mut series: Vec<Vec<Sample>> = (0..n).map(|_| Vec::new()).collect();
    push(&mut series, e.sample_all());
    let mut last = None;
    while start.elapsed() < MAX_WINDOW {
        std::thread::sleep(Duration::from_secs(1));
        if let Err(err) = running.check() {
            row.error = Some(err.to_string());
            break;
        }
        push(&mut series, e.sample_all());
        let report = evaluate(e, &series, start_ms, start);
        let hit = report
            .findings
            .iter()
            .find(|f| {
                f.rule == case.rule
                    && f.severity >= Severity::Warning
                    && names_the_inducer(f, &running)
            })
            .cloned();
        last = Some(report);
        if let Some(f) = hit {
            row.detected = Some(start.elapsed());
            row.finding = Some(f);
            break;
        }
    }
    if let Some(report) = &last {
        for f in report
            .findings
            .iter()
            .filter(|f| f.severity >= Severity::Warning && f.rule != case.rule)
        {
            // A finding about a process that has nothing to do with the scenario (another job
            // on the machine) is background, not the scenario tripping a second rule.
            let about_us = names_the_inducer(f, &running) || f.subject.kind == "host";
            let tag = if about_us {
                format!("{} ({})", f.rule, f.severity)
            } else {
                format!(
                    "{} ({}, background: {})",
                    f.rule, f.severity, f.subject.name
                )
            };
            if !row.others.contains(&tag) {
                row.others.push(tag);
            }
            if about_us
                && !case.allowed.iter().any(|(r, _)| *r == f.rule)
                && !row
                    .unexpected
                    .iter()
                    .any(|u| u.starts_with(f.rule.as_str()))
            {
                row.unexpected.push(format!(
                    "{}: {} [{}]",
                    f.rule,
                    f.title,
                    f.evidence.join("; ")
                ));
            }
        }
        if row.detected.is_none() && row.error.is_none() {
            let seen: Vec<String> = report
                .findings
                .iter()
                .map(|f| format!("{} {} [{}]", f.severity, f.rule, f.subject.name))
                .collect();
            row.error = Some(format!(
                "not detected in {MAX_WINDOW:?}; findings: {seen:?}; workload pids {:?}",
                running.pids
            ));
        }
    }
    let owner = std::process::id();
    if let Err(err) = running.stop() {
        row.error.get_or_insert(format!("teardown: {err}"));
    }
    let left = chaos::leftovers(owner);
    if !left.is_empty() {
        row.error.get_or_insert(format!("left behind: {left:?}"));
    }
    row
}

fn matrix(rows: &[Row], baseline: &[String], baseline_secs: u64) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "# Detection matrix\n");
    let _ = writeln!(
        o,
        "Written by `kerno-rules/tests/root_detection.rs` when run with `{WRITE_ENV}=1` (otherwise the test, \
         part of `scripts/test.sh`, only prints the matrix), on {} ({} CPUs, kernel {}). \
         Each rule's incident is induced for real with `kerno chaos` at intensity `medium`; the engine runs at the \
         **default thresholds**, sampling every second, and the time to detection is from the moment the \
         scenario's workers started to the first window in which the rule fired at WARN or CRIT naming the \
         inducing process, cgroup or device. Windows are at most {} s. Other rules firing about the \
         scenario's own processes (or the host) must be justified below; findings about unrelated \
         processes are marked background.\n",
        kerno_core::host::detect_host().hostname,
        kerno_core::host::detect_host().cpus,
        kerno_core::host::detect_host().kernel,
        MAX_WINDOW.as_secs(),
    );
    let _ = writeln!(
        o,
        "| rule | scenario | fired | time to detection | severity | subject | value (threshold) | other rules firing |"
    );
    let _ = writeln!(o, "|---|---|---|---|---|---|---|---|");
    for r in rows {
        let (sev, subject, value) = match &r.finding {
            Some(f) => (
                f.severity.label().to_string(),
                f.subject.name.replace('|', "\\|"),
                format!("{:.1} {} ({} {})", f.value, f.unit, f.threshold, f.unit),
            ),
            None => ("-".into(), "-".into(), "-".into()),
        };
        let _ = writeln!(
            o,
            "| `{}` | `{}` | {} | {} | {} | {} | {} | {} |",
            r.rule,
            r.scenario,
            if r.detected.is_some() {
                "yes"
            } else {
                "**NO**"
            },
            r.detected
                .map(|d| format!("{:.1} s", d.as_secs_f64()))
                .unwrap_or("-".into()),
            sev,
            subject,
            value,
            if r.others.is_empty() {
                "none".into()
            } else {
                r.others.join(", ")
            },
        );
    }
    let _ = writeln!(
        o,
        "\nQuiet-machine baseline ({baseline_secs} s, no incident): {}.\n",
        if baseline.is_empty() {
            "no WARN or CRIT finding".to_string()
        } else {
            format!("**{}**", baseline.join("; "))
        }
    );
    let _ = writeln!(
        o,
        "Justified co-firing (other rules allowed to fire during an incident, and why):\n"
    );
    for c in CASES {
        for (rule, why) in c.allowed {
            let _ = writeln!(o, "- `{}` during `{}`: {why}", rule, c.scenario);
        }
    }
    let failures: Vec<String> = rows
        .iter()
        .filter_map(|r| {
            let mut why = r.error.clone();
            if !r.unexpected.is_empty() {
                why = Some(format!(
                    "{}unexpected rules fired: {:?}",
                    why.map(|w| w + "; ").unwrap_or_default(),
                    r.unexpected
                ));
            }
            why.map(|w| format!("- `{}` / `{}`: {w}", r.rule, r.scenario))
        })
        .collect();
    if !failures.is_empty() {
        let _ = writeln!(o, "\nProblems in this run:\n\n{}", failures.join("\n"));
    }
    o
}

#[test]
fn root_every_rule_fires_on_its_real_incident_at_default_thresholds() {
    let mut e = engine();

    // A quiet machine first: nothing induced, no warning.
    let baseline_secs = 5;
    let start = Instant::now();
    let start_ms = kerno_core::unix_ms_now();
    let mut series: Vec<Vec<Sample>> = (0..e.collector_names().len()).map(|_| Vec::new()).collect();
    push(&mut series, e.sample_all());
    std::thread::sleep(Duration::from_secs(baseline_secs));
    push(&mut series, e.sample_all());
    let quiet = evaluate(&e, &series, start_ms, start);
    let baseline: Vec<String> = quiet
        .findings
        .iter()
        .filter(|f| f.severity >= Severity::Warning)
        .map(describe)
        .collect();

    let only: Vec<String> = std::env::var(ONLY_ENV)
        .unwrap_or_default()
        .split(',')
        .filter(|r| !r.is_empty())
        .map(str::to_string)
        .collect();
    let rows: Vec<Row> = CASES
        .iter()
        .filter(|c| only.is_empty() || only.iter().any(|r| r == c.rule))
        .map(|c| run_case(&mut e, c))
        .collect();
    let doc = matrix(&rows, &baseline, baseline_secs);
    eprintln!("{doc}");
    if only.is_empty() && std::env::var_os(WRITE_ENV).is_some_and(|v| v == "1") {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/detection-matrix.md");
        std::fs::write(path, &doc).expect("write docs/detection-matrix.md");
        eprintln!("wrote {path}");
    }

    assert!(baseline.is_empty(), "quiet machine warned: {baseline:?}");
    for r in &rows {
        assert!(
            r.error.is_none() && r.detected.is_some(),
            "{} / {}: {:?}",
            r.rule,
            r.scenario,
            r.error
        );
        let f = r.finding.as_ref().unwrap();
        assert!(!f.evidence.is_empty(), "{}: evidence", r.rule);
        assert!(
            r.unexpected.is_empty(),
            "{} / {}: unexpected rules fired: {:?}",
            r.rule,
            r.scenario,
            r.unexpected
        );
    }
}

/// A spinner in a cgroup with a 20% CPU quota on an otherwise idle machine: its run-queue
/// waits are the quota's. The throttling finding must rank first, and sched-contention
/// must not report those waits as contention.
#[test]
fn root_throttling_ranks_first_and_is_not_called_contention() {
    let mut e = engine();
    let opts = ChaosOptions::new(Intensity::Medium, Duration::from_secs(15));
    let mut running = chaos::start("cpu-throttle", &opts).expect("start cpu-throttle");
    let cgroup = running.cgroup.clone().expect("the scenario's cgroup");
    let running_pids = running.pids.clone();
    let start = Instant::now();
    let start_ms = kerno_core::unix_ms_now();
    let mut series: Vec<Vec<Sample>> = (0..e.collector_names().len()).map(|_| Vec::new()).collect();
    push(&mut series, e.sample_all());
    for _ in 0..6 {
        std::thread::sleep(Duration::from_secs(1));
        push(&mut series, e.sample_all());
    }
    running.check().expect("the spinner ran through the window");
    let refs: Vec<Vec<&Sample>> = series.iter().map(|s| s.iter().collect()).collect();
    let mut signals = e.signals_from(&refs, start_ms, start.elapsed());
    let report = e.evaluate(&signals);
    let lines: Vec<String> = report.findings.iter().map(describe).collect();
    eprintln!("findings: {lines:#?}");
    // What sched-contention says without the throttling signals, for the record.
    let sat = signals.saturation.take();
    let blind = e.evaluate(&signals);
    let blind_sched: Vec<String> = blind
        .findings
        .iter()
        .filter(|f| f.rule == "sched-contention")
        .map(describe)
        .collect();
    eprintln!("without the throttling signals sched-contention says: {blind_sched:?}");
    signals.saturation = sat;
    let owner = std::process::id();
    running.stop().expect("teardown");
    assert!(chaos::leftovers(owner).is_empty(), "left behind");

    // On a machine shared with other jobs (CI, builds), their own run-queue waits are real
    // contention and may be reported beside it: the first finding about the scenario's
    // cgroup or processes must be the throttling one, and on an idle machine that is the
    // first finding of all.
    let about_us = |f: &Finding| {
        f.subject
            .cgroup
            .as_deref()
            .is_some_and(|c| c.ends_with(&cgroup))
            || f.subject
                .process
                .as_ref()
                .is_some_and(|p| running_pids.contains(&p.pid))
    };
    let first = report
        .findings
        .iter()
        .find(|f| about_us(f))
        .expect("a finding about the throttled cgroup");
    assert_eq!(first.rule, "cpu-throttling", "ranked first: {lines:#?}");
    assert_eq!(first.severity, Severity::Critical, "{lines:#?}");
    assert!(first.title.contains("0.20 CPU"), "{}", first.title);
    let sched = signals
        .saturation
        .as_ref()
        .and_then(|s| s.cpu_limited.iter().find(|c| c.path.ends_with(&cgroup)));
    let sched = sched.expect("the cgroup is in the throttling signals");
    assert!(sched.throttled_pct() > 75.0, "{sched:?}");
    // Contention from other jobs on the machine may still be reported; the spinner's waits
    // may not: it is neither the subject nor among the waiters listed, and the waits taken
    // out are said.
    for f in report
        .findings
        .iter()
        .filter(|f| f.rule == "sched-contention")
    {
        let blamed = f
            .subject
            .process
            .as_ref()
            .is_some_and(|p| running_pids.contains(&p.pid))
            || running_pids.iter().any(|p| {
                f.evidence
                    .iter()
                    .any(|e| e.contains(&format!("(pid {p}):")))
            });
        assert!(
            !blamed,
            "sched-contention blames contention for the quota's waits: {} {:?}",
            describe(f),
            f.evidence
        );
        assert!(
            f.evidence.iter().any(|e| e.starts_with("not counted: ")),
            "{:?}",
            f.evidence
        );
    }
}
