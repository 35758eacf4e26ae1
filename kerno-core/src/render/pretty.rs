use std::fmt::Write as _;

use crate::{
    Analysis, Finding, Report, Severity, Status,
    cluster::ClusterReport,
    finding::{counted, human_bytes, human_secs, thousands},
};

/// How to render the pretty report.
#[derive(Clone, Copy, Debug, Default)]
pub struct PrettyOptions {
    /// ANSI colours.
    pub color: bool,
}

pub(crate) struct Paint {
    pub(crate) on: bool,
}

impl Paint {
    pub(crate) fn wrap(&self, code: &str, s: &str) -> String {
        if self.on {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }
    pub(crate) fn bold(&self, s: &str) -> String {
        self.wrap("1", s)
    }
    pub(crate) fn dim(&self, s: &str) -> String {
        self.wrap("2", s)
    }
    pub(crate) fn sev(&self, s: Severity) -> String {
        let code = match s {
            Severity::Critical => "1;31",
            Severity::Warning => "1;33",
            Severity::Info => "1;36",
        };
        self.wrap(code, s.label())
    }
    pub(crate) fn ok(&self, s: &str) -> String {
        self.wrap("32", s)
    }
    pub(crate) fn bad(&self, s: &str) -> String {
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
    if !h.node.is_empty() && h.node != h.hostname {
        let _ = writeln!(o, "node: {}", h.node);
    }
    let _ = writeln!(
        o,
        "window: {:.1} s from {}",
        report.window.duration_ms as f64 / 1000.0,
        super::utc(report.window.start_unix_ms)
    );
    if let Some(scope) = &report.scope {
        let _ = writeln!(
            o,
            "scope: findings about {scope} only (what each domain observed is host-wide)"
        );
    }
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
        finding(&mut o, &p, i, f, None);
    }
    let _ = writeln!(o);
    let _ = writeln!(o, "{}", p.bold("Observed"));
    for d in &report.domains {
        let mark = if d.observed {
            p.ok("ok ")
        } else {
            p.bad("-- ")
        };
        // An unobserved domain's reason is listed once, under "Degraded" below.
        let detail = if !d.observed && report.degraded.iter().any(|g| g.domain == d.domain) {
            "not observed (see Degraded below)"
        } else {
            &d.detail
        };
        let _ = writeln!(o, "  {mark} {:<10} {detail}", d.domain);
    }
    let lost_parts: Vec<String> = report
        .lost
        .entries()
        .iter()
        .filter(|e| e.count > 0)
        .map(|e| lost_what(e.collector, e.reason, e.count))
        .collect();
    if !lost_parts.is_empty() {
        let _ = writeln!(
            o,
            "  {} {} events not recorded: {}",
            p.dim("lost:"),
            thousands(report.lost.total()),
            lost_parts.join(", ")
        );
    }
    if !report.degraded.is_empty() {
        let _ = writeln!(o);
        let _ = writeln!(o, "{}", p.bold("Degraded (not observed)"));
        for d in &report.degraded {
            let _ = writeln!(o, "  {:<10} {}", d.domain, d.reason);
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
    // The deterministic report above is complete on its own; a failed analysis adds
    // nothing here (the frontend says why on stderr).
    if let Some(Analysis::Ok {
        provider,
        model,
        privacy,
        text,
        cached,
    }) = &report.analysis
    {
        let _ = writeln!(o);
        let _ = writeln!(
            o,
            "{} {}",
            p.bold("Analysis"),
            p.dim(&format!(
                "(AI: {provider} {model}, privacy {privacy}{}; advice, not a finding)",
                if *cached { ", cached" } else { "" }
            ))
        );
        for para in text.trim().lines() {
            if para.trim().is_empty() {
                let _ = writeln!(o);
                continue;
            }
            let lead = para.len() - para.trim_start().len();
            let width = WIDTH.saturating_sub(2 + lead);
            for line in wrap(para.trim_start(), width) {
                let _ = writeln!(o, "  {:lead$}{line}", "");
            }
        }
    }
    o
}

/// A cluster report as text: the nodes (each with its status, or why it was not
/// observed), the findings of every node ranked together with the node of each, and a
/// summary that says how many nodes it covers.
pub fn cluster_pretty(report: &ClusterReport, opts: PrettyOptions) -> String {
    let p = Paint { on: opts.color };
    let mut o = String::new();
    let asked = report.nodes.len();
    let answered = report.answered();
    let longest = report
        .nodes
        .iter()
        .filter_map(|n| n.window.as_ref())
        .map(|w| w.duration_ms)
        .max();
    let _ = writeln!(
        o,
        "{} {} of {} answered{}",
        p.bold("kerno doctor --cluster:"),
        counted(answered as u64, "node", "nodes"),
        asked,
        match longest {
            Some(ms) => format!(", windows of up to {:.1} s", ms as f64 / 1000.0),
            None => String::new(),
        }
    );
    if let Some(scope) = &report.scope {
        let _ = writeln!(o, "scope: findings about {scope} only");
    }
    let _ = writeln!(o);
    let _ = writeln!(o, "{}", p.bold("Nodes"));
    let width = report
        .nodes
        .iter()
        .map(|n| n.node.chars().count())
        .max()
        .unwrap_or(0);
    for n in &report.nodes {
        if !n.observed {
            let _ = writeln!(
                o,
                "  {} {:<width$}  not observed: {}",
                p.bad("--"),
                n.node,
                n.reason.as_deref().unwrap_or("no answer")
            );
            continue;
        }
        let status = n.status.map(status_word).unwrap_or("?");
        let mut line = format!("{status} ({})", n.address);
        if let Some(s) = &n.summary {
            let total = s.critical + s.warning + s.info;
            if total > 0 {
                line += &format!(
                    "; {} critical, {} warning, {} info",
                    s.critical, s.warning, s.info
                );
            }
        }
        let off = n.unobserved_domains();
        if !off.is_empty() {
            line += &format!("; not observed: {}", off.join(", "));
        }
        let _ = writeln!(o, "  {} {:<width$}  {line}", p.ok("ok"), n.node);
    }
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
        finding(&mut o, &p, i, &f.finding, Some(&f.node));
    }
    let _ = writeln!(o);
    let missing = asked - answered;
    let nodes_note = if missing > 0 {
        format!(
            " {} of {asked} not observed, so not covered.",
            counted(missing as u64, "node", "nodes")
        )
    } else {
        String::new()
    };
    let line = match report.status {
        _ if answered == 0 => format!(
            "{}: no node answered, so nothing is known about any.",
            p.bad("NOT OBSERVED")
        ),
        Status::Healthy => p.ok(&format!(
            "HEALTHY: no warning or critical finding on {}; every domain observed.",
            counted(answered as u64, "node", "nodes")
        )),
        Status::Degraded => format!(
            "{}: no warning or critical finding on the {} that answered; some nodes or domains not observed, so not known to be healthy.{nodes_note}",
            p.bold("DEGRADED"),
            counted(answered as u64, "node", "nodes")
        ),
        Status::Warning => format!(
            "{}: {} warning(s) to look at.{nodes_note}",
            p.sev(Severity::Warning),
            report.summary.warning
        ),
        Status::Critical => format!(
            "{}: {} critical finding(s); start with #1.{nodes_note}",
            p.sev(Severity::Critical),
            report.summary.critical
        ),
    };
    let _ = writeln!(o, "{line}");
    o
}

fn status_word(s: Status) -> &'static str {
    match s {
        Status::Healthy => "healthy",
        Status::Degraded => "degraded",
        Status::Warning => "warning",
        Status::Critical => "critical",
    }
}

/// One finding: its number, severity and title, then its fields; `node` (a cluster
/// report's) first among them when given.
pub(crate) fn finding(o: &mut String, p: &Paint, i: usize, f: &Finding, node: Option<&str>) {
    let _ = writeln!(o);
    let _ = writeln!(
        o,
        "{:>2}. {}  {}",
        i + 1,
        p.sev(f.severity),
        p.bold(&f.title)
    );
    if let Some(node) = node {
        let _ = writeln!(o, "    {} {node}", p.dim("node:    "));
    }
    if let Some(w) = f.subject.whose() {
        let _ = writeln!(o, "    {} {w}", p.dim("in:      "));
    }
    let _ = writeln!(o, "    {} {}", p.dim("rule:    "), f.rule);
    field(o, p, "cause:   ", "", &f.cause);
    field(o, p, "impact:  ", "", &f.impact);
    let threshold = if f.threshold == 0.0 {
        "threshold: any".to_string()
    } else {
        format!("threshold {}", with_unit(f.threshold, &f.unit))
    };
    let _ = writeln!(
        o,
        "    {} {} ({threshold})",
        p.dim("value:   "),
        with_unit(f.value, &f.unit),
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
        field(o, p, label, "- ", e);
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

/// Width the prose fields are wrapped to, so a report reads the same in any terminal
/// that is at least this wide. Titles and fix steps are never wrapped: a fix step is a
/// command to copy whole.
const WIDTH: usize = 100;

/// A labelled field, its text wrapped at [`WIDTH`] under itself (after `bullet`).
/// What one lost counter counts, in words (its collector and reason as `/metrics` label it).
fn lost_what(collector: &str, reason: &str, n: u64) -> String {
    let n = thousands(n);
    match reason {
        "thread_slot_taken" => format!("{collector} {n} samples (thread slot taken)"),
        "map_full" => format!("{collector} {n} records (map full)"),
        "evicted" => format!("{collector} {n} records evicted (map full)"),
        "unmatched_completion" => format!("{collector} {n} completions whose issue was not seen"),
        "unmatched_connect" => format!("{collector} {n} connects whose start was not seen"),
        "read_failed" => format!("{collector} {n} tracepoint records unreadable"),
        "recursion_miss" => format!("{collector} {n} program runs skipped by the kernel"),
        "ring_overwritten" => format!("{collector} {n} kill events (ring overwritten)"),
        other => format!("{collector} {n} {other}"),
    }
}

fn field(o: &mut String, p: &Paint, label: &str, bullet: &str, text: &str) {
    let indent = 4 + label.chars().count() + 1 + bullet.chars().count();
    for (i, line) in wrap(text, WIDTH.saturating_sub(indent)).iter().enumerate() {
        if i == 0 {
            let _ = writeln!(o, "    {} {bullet}{line}", p.dim(label));
        } else {
            let _ = writeln!(o, "{:indent$}{line}", "");
        }
    }
}

/// `text` in lines of at most `width` characters, broken at spaces; a word longer than
/// the width (a path, a command) keeps a line of its own and is never cut.
fn wrap(text: &str, width: usize) -> Vec<String> {
    // A number keeps its unit on its line: `60.82 ms`, not `60.82` and `ms` apart.
    let mut words: Vec<String> = Vec::new();
    for word in text.split(' ').filter(|w| !w.is_empty()) {
        let bare = word.trim_end_matches([',', ';', '.', ')', ':']);
        let unit = bare.strip_suffix("/s").unwrap_or(bare);
        let is_unit = matches!(
            unit,
            "ns" | "µs" | "ms" | "s" | "min" | "h" | "B" | "KiB" | "MiB" | "GiB" | "TiB" | "%"
        );
        match words.last_mut() {
            Some(prev) if is_unit && prev.ends_with(|c: char| c.is_ascii_digit()) => {
                prev.push(' ');
                prev.push_str(word);
            }
            _ => words.push(word.to_string()),
        }
    }
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in &words {
        let len = line.chars().count();
        if len > 0 && len + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() || lines.is_empty() {
        lines.push(line);
    }
    lines
}

/// `12.5 ms`, `4.80%`, `1 kill`.
fn with_unit(v: f64, unit: &str) -> String {
    match unit {
        "" => fmt_num(v),
        "%" => format!("{}%", fmt_num(v)),
        _ => format!("{} {unit}", fmt_num(v)),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_at_spaces_and_keeps_units_and_long_words_whole() {
        let lines = wrap("p99 of 60.82 ms over 400 calls", 13);
        assert_eq!(lines, ["p99 of", "60.82 ms over", "400 calls"]);
        assert_eq!(wrap("growing 6.0 MiB/s)", 10), ["growing", "6.0 MiB/s)"]);
        let lines = wrap("see /a/very/long/path/that/does/not/fit now", 10);
        assert_eq!(lines, ["see", "/a/very/long/path/that/does/not/fit", "now"]);
        assert_eq!(wrap("", 10), [""]);
    }

    #[test]
    fn values_read_naturally() {
        assert_eq!(with_unit(92.8, "%"), "92.8%");
        assert_eq!(with_unit(121.45, "ms"), "121 ms");
        assert_eq!(with_unit(1.0, "kill"), "1 kill");
    }
}
