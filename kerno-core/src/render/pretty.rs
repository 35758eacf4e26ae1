use std::fmt::Write as _;

use crate::{
    Report, Severity, Status,
    finding::{human_bytes, human_secs},
};

/// How to render the pretty report.
#[derive(Clone, Copy, Debug, Default)]
pub struct PrettyOptions {
    /// ANSI colours.
    pub color: bool,
}

struct Paint {
    on: bool,
}

impl Paint {
    fn wrap(&self, code: &str, s: &str) -> String {
        if self.on {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }
    fn bold(&self, s: &str) -> String {
        self.wrap("1", s)
    }
    fn dim(&self, s: &str) -> String {
        self.wrap("2", s)
    }
    fn sev(&self, s: Severity) -> String {
        let code = match s {
            Severity::Critical => "1;31",
            Severity::Warning => "1;33",
            Severity::Info => "1;36",
        };
        self.wrap(code, s.label())
    }
    fn ok(&self, s: &str) -> String {
        self.wrap("32", s)
    }
    fn bad(&self, s: &str) -> String {
        self.wrap("31", s)
    }
}

/// The report as text for a terminal: ranked findings with cause, impact, evidence, fix
/// and ETA; what each domain showed; what could not be observed and why; a summary.
pub fn pretty(report: &Report, opts: PrettyOptions) -> String {
    let p = Paint { on: opts.color };
    let mut o = String::new();
    let h = &report.host;
    let _ = writeln!(
        o,
        "{} {} — kernel {}, {} CPUs, {} memory, {}",
        p.bold("kerno doctor:"),
        if h.hostname.is_empty() {
            "?"
        } else {
            &h.hostname
        },
        h.kernel,
        h.cpus,
        human_bytes(h.memory_bytes),
        h.environment
    );
    let _ = writeln!(
        o,
        "window: {:.1} s from {}",
        report.window.duration_ms as f64 / 1000.0,
        super::utc(report.window.start_unix_ms)
    );
    let _ = writeln!(o);

    if report.findings.is_empty() {
        let _ = writeln!(o, "{}", p.bold("Findings: none"));
    } else {
        let _ = writeln!(
            o,
            "{} ({} critical, {} warning, {} info)",
            p.bold("Findings"),
            report.summary.critical,
            report.summary.warning,
            report.summary.info
        );
    }
    for (i, f) in report.findings.iter().enumerate() {
        let _ = writeln!(o);
        let _ = writeln!(
            o,
            "{:>2}. {}  {}",
            i + 1,
            p.sev(f.severity),
            p.bold(&f.title)
        );
        let _ = writeln!(o, "    {} {}", p.dim("rule:    "), f.rule);
        let _ = writeln!(o, "    {} {}", p.dim("cause:   "), f.cause);
        let _ = writeln!(o, "    {} {}", p.dim("impact:  "), f.impact);
        let _ = writeln!(
            o,
            "    {} {} {} (threshold {} {})",
            p.dim("value:   "),
            fmt_num(f.value),
            f.unit,
            fmt_num(f.threshold),
            f.unit
        );
        if let Some(eta) = f.eta_secs {
            let _ = writeln!(
                o,
                "    {} limit reached in about {}",
                p.dim("ETA:     "),
                human_secs(eta)
            );
        }
        for (j, e) in f.evidence.iter().enumerate() {
            let label = if j == 0 { "evidence:" } else { "         " };
            let _ = writeln!(o, "    {} - {}", p.dim(label), e);
        }
        if f.low_volume {
            let _ = writeln!(
                o,
                "    {} few samples in this window: confirm with a longer --duration",
                p.dim("note:    ")
            );
        }
        for (j, step) in f.fix.iter().enumerate() {
            let label = if j == 0 { "fix:     " } else { "         " };
            let _ = writeln!(o, "    {} {}", p.dim(label), step);
        }
    }
    let _ = writeln!(o);
    let _ = writeln!(o, "{}", p.bold("Observed"));
    for d in &report.domains {
        let mark = if d.observed {
            p.ok("ok ")
        } else {
            p.bad("-- ")
        };
        let _ = writeln!(o, "  {mark} {:<9} {}", d.domain, d.detail);
    }
    let lost = &report.lost;
    let lost_total = lost.syscall_samples + lost.sched_samples + lost.map_full + lost.oom_kills;
    if lost_total > 0 {
        let _ = writeln!(
            o,
            "  {} samples not recorded: {} syscall, {} run-queue, {} map full, {} OOM kills",
            p.dim("lost:"),
            lost.syscall_samples,
            lost.sched_samples,
            lost.map_full,
            lost.oom_kills
        );
    }
    if !report.degraded.is_empty() {
        let _ = writeln!(o);
        let _ = writeln!(o, "{}", p.bold("Degraded (not observed)"));
        for d in &report.degraded {
            let _ = writeln!(o, "  {:<9} {}", d.domain, d.reason);
        }
    }
    let _ = writeln!(o);
    let observed = report.domains.iter().filter(|d| d.observed).count();
    let line = match report.status {
        Status::Healthy => p.ok(&format!(
            "HEALTHY: no warning or critical finding; all {observed} domains observed."
        )),
        Status::Degraded => format!(
            "{}: no warning or critical finding in the {observed} observed domains; {} not observed, so not known to be healthy.",
            p.bold("DEGRADED"),
            report.domains.len() - observed
        ),
        Status::Warning => format!(
            "{}: {} warning(s) to look at.",
            p.sev(Severity::Warning),
            report.summary.warning
        ),
        Status::Critical => format!(
            "{}: {} critical finding(s); start with #1.",
            p.sev(Severity::Critical),
            report.summary.critical
        ),
    };
    let _ = writeln!(o, "{line}");
    o
}

fn fmt_num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}
