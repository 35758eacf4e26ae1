//! The report as HTML: a fragment for notebooks ([`html`]) and a self-contained page for
//! people ([`html_page`]): the ranked findings, then charts of the window for every domain
//! that fired (per-second series, latency histograms), the top processes and pods, and
//! what was observed. Inline CSS and SVG only (the page adds a few lines of script that
//! unfold every finding for printing); nothing is fetched. Every text from the report is
//! escaped, and each chart carries the values it plots as `data-*` attributes.

use std::fmt::Write as _;

use super::svg::{Axis, Line, LineChart, histogram_chart};
use crate::{
    CgroupMemory, Domain, FdProcess, Finding, Histogram, Process, Report, Series, Severity,
    Signals, Status,
    finding::{human_bytes, human_ns, human_secs, thousands},
};

pub(crate) fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// A measured value for reading: whole numbers as such, others to two decimals.
pub(crate) fn num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v:.2}")
    }
}

fn sev_class(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "crit",
        Severity::Warning => "warn",
        Severity::Info => "info",
    }
}

/// The report's styles, scoped to `.kerno-report`: light and dark (prefers-color-scheme)
/// palettes, and a print layout (black on white, no shadows, cards kept whole).
const CSS: &str = concat!(
    ".kerno-report{--fg:#1f2328;--muted:#59636e;--bg:#fff;--card:#f6f8fa;--line:#d1d9e0;--grid:#e6e9ed;",
    "--crit:#c62828;--warn:#b45309;--info:#1565c0;--ok:#2e7d32;--gray:#616161;--s0:#0969da;--s1:#8250df;--eta:#c62828;",
    "color:var(--fg);background:var(--bg);font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;max-width:1040px;margin:0 auto;padding:16px 20px}",
    "@media (prefers-color-scheme:dark){.kerno-report{--fg:#e6edf3;--muted:#9198a1;--bg:#0d1117;--card:#161b22;--line:#30363d;--grid:#21262d;",
    "--crit:#f85149;--warn:#e3b341;--info:#58a6ff;--ok:#3fb950;--gray:#8b949e;--s0:#58a6ff;--s1:#bc8cff;--eta:#ff7b72}}",
    ".kerno-report h1{font-size:20px;margin:0 0 4px}.kerno-report h2{font-size:16px;margin:28px 0 10px;padding-bottom:4px;border-bottom:1px solid var(--line)}",
    ".kerno-report h3{font-size:14px;margin:16px 0 6px;color:var(--muted);text-transform:uppercase;letter-spacing:.04em}",
    ".kerno-report .muted{color:var(--muted);font-weight:normal}.kerno-report code{font:12.5px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}",
    ".kerno-report .head{display:flex;gap:16px;align-items:center;flex-wrap:wrap;padding:12px 16px;border-radius:8px;background:var(--card);border:1px solid var(--line)}",
    ".kerno-report .status{font:bold 18px ui-monospace,monospace;color:#fff;padding:6px 14px;border-radius:6px}",
    ".kerno-report .st-crit{background:var(--crit)}.kerno-report .st-warn{background:var(--warn)}.kerno-report .st-ok{background:var(--ok)}.kerno-report .st-gray{background:var(--gray)}",
    ".kerno-report .counts b{font-size:18px}.kerno-report .host{font-size:13px;color:var(--muted)}",
    ".kerno-report .badge{display:inline-block;min-width:64px;text-align:center;color:#fff;padding:1px 6px;border-radius:4px;font:bold 11px ui-monospace,monospace;vertical-align:2px}",
    ".kerno-report .b-crit{background:var(--crit)}.kerno-report .b-warn{background:var(--warn)}.kerno-report .b-info{background:var(--info)}",
    ".kerno-report ol.findings{list-style:none;padding:0;margin:0}",
    ".kerno-report ol.glance{margin:12px 0 0;padding-left:22px}.kerno-report ol.glance li{margin:3px 0}.kerno-report ol.glance a{color:var(--fg);text-decoration:none}.kerno-report ol.glance a:hover{text-decoration:underline}",
    ".kerno-report .finding{border:1px solid var(--line);border-left:6px solid var(--info);border-radius:6px;margin:10px 0;background:var(--bg)}",
    ".kerno-report .finding.crit{border-left-color:var(--crit)}.kerno-report .finding.warn{border-left-color:var(--warn)}",
    ".kerno-report summary{cursor:pointer;padding:10px 14px;list-style-position:outside}.kerno-report .rank{color:var(--muted);font-weight:bold;margin-right:6px}",
    ".kerno-report .ftitle{font-weight:600;font-size:15px}.kerno-report .finding.crit .ftitle{font-size:16px}.kerno-report .rule{color:var(--muted);margin-left:8px;white-space:nowrap}",
    ".kerno-report .fbody{padding:0 16px 12px 16px}.kerno-report .fvalue{margin:0 0 6px}.kerno-report .fvalue b{font-size:15px}",
    ".kerno-report dl{display:grid;grid-template-columns:80px 1fr;gap:4px 12px;margin:6px 0}.kerno-report dt{color:var(--muted);font-weight:600}.kerno-report dd{margin:0}",
    ".kerno-report dd ul,.kerno-report dd ol{margin:0;padding-left:18px}.kerno-report dd ol code{background:var(--card);padding:1px 4px;border-radius:3px}",
    ".kerno-report .charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(420px,1fr));gap:12px}.kerno-report .fbody figure.chart{max-width:620px}",
    ".kerno-report figure.chart{margin:8px 0;padding:8px 10px;border:1px solid var(--line);border-radius:6px;background:var(--card);break-inside:avoid}",
    ".kerno-report figcaption{font-weight:600;margin-bottom:4px}.kerno-report svg{width:100%;height:auto;display:block}",
    ".kerno-report svg .grid{stroke:var(--grid);stroke-width:1}.kerno-report svg .axis{fill:var(--muted);font-size:12px}",
    ".kerno-report svg .line{fill:none;stroke-width:2.2;stroke-linejoin:round}.kerno-report svg .line.s0,.kerno-report .key.s0{stroke:var(--s0);background:var(--s0)}",
    ".kerno-report svg .line.s1,.kerno-report .key.s1{stroke:var(--s1);background:var(--s1)}.kerno-report svg .line.bad,.kerno-report .key.bad{stroke:var(--crit);background:var(--crit)}",
    ".kerno-report svg .pt.s0{fill:var(--s0)}.kerno-report svg .pt.s1{fill:var(--s1)}.kerno-report svg .pt.bad{fill:var(--crit)}",
    ".kerno-report svg .limit{stroke:var(--crit);stroke-width:1.5}.kerno-report svg .limit-label,.kerno-report svg .eta-label{fill:var(--crit);font-size:12px;font-weight:600}",
    ".kerno-report svg .threshold{stroke:var(--warn);stroke-width:1.5;stroke-dasharray:2 3}.kerno-report svg .threshold-label{fill:var(--warn);font-size:12px;font-weight:600}",
    ".kerno-report svg .eta{stroke:var(--eta);stroke-width:2;stroke-dasharray:6 4}.kerno-report svg .eta-dot{fill:var(--eta)}",
    ".kerno-report svg .bar{fill:var(--s0);opacity:.8}.kerno-report svg .bar.p99{fill:var(--crit);opacity:1}",
    ".kerno-report .legend{font-size:12px;color:var(--muted);display:flex;gap:14px;flex-wrap:wrap}.kerno-report .key{display:inline-block;width:12px;height:3px;margin-right:5px;vertical-align:middle}",
    ".kerno-report table{border-collapse:collapse;width:100%;margin:4px 0 12px;font-size:13px}.kerno-report th,.kerno-report td{text-align:left;padding:4px 8px;border-bottom:1px solid var(--line);vertical-align:top}",
    ".kerno-report th{color:var(--muted);font-weight:600}.kerno-report td.n,.kerno-report th.n{text-align:right;font-variant-numeric:tabular-nums}",
    ".kerno-report .domains td.no{color:var(--warn);font-weight:600}",
    "@media print{.kerno-report{--fg:#000;--muted:#444;--bg:#fff;--card:#fff;--line:#bbb;--grid:#ddd;max-width:none;padding:0;font-size:11pt}",
    ".kerno-report .finding,.kerno-report figure.chart,.kerno-report tr{break-inside:avoid}.kerno-report .charts{grid-template-columns:1fr 1fr}",
    ".kerno-report ol.glance{display:none}.kerno-report .status,.kerno-report .badge,.kerno-report svg *{print-color-adjust:exact;-webkit-print-color-adjust:exact}.kerno-report summary{list-style:none}}"
);

/// Opens every finding before printing (closed `<details>` would print as their title).
const PRINT_JS: &str = "addEventListener('beforeprint',function(){document.querySelectorAll('.kerno-report details').forEach(function(d){d.open=true})});";

/// The domain a built-in rule reads, for the charts of the domains that fired; `None` for
/// other rules.
fn rule_domain(rule: &str) -> Option<Domain> {
    Some(match rule {
        "syscall-errors" | "syscall-latency" => Domain::Syscalls,
        "fd-leak" => Domain::Fds,
        "sched-contention" => Domain::Sched,
        "disk-io" => Domain::Disk,
        "tcp-retransmits" | "tcp-rtt" | "network-latency" => Domain::Tcp,
        "oom-kill" => Domain::Oom,
        "oom-imminent" | "memory-pressure" => Domain::Memory,
        _ => return None,
    })
}

fn who(p: &Process) -> String {
    let mut o = format!(
        "<b>{}</b> <span class=\"muted\">({})</span>",
        esc(&p.comm),
        p.pid
    );
    if let Some(w) = p.attribution.describe().or_else(|| p.pod.clone()) {
        let _ = write!(o, "<br><span class=\"muted\">{}</span>", esc(&w));
    }
    o
}

fn table(o: &mut String, kind: &str, head: &[&str], rows: &[Vec<String>]) {
    if rows.is_empty() {
        return;
    }
    let _ = write!(o, "<table class=\"top\" data-table=\"{kind}\"><tr>");
    for h in head {
        // A heading starting with '#' is a number column.
        match h.strip_prefix('#') {
            Some(h) => {
                let _ = write!(o, "<th class=\"n\">{}</th>", esc(h));
            }
            None => {
                let _ = write!(o, "<th>{}</th>", esc(h));
            }
        }
    }
    o.push_str("</tr>");
    for r in rows {
        o.push_str("<tr>");
        for (h, c) in head.iter().zip(r) {
            if h.starts_with('#') {
                let _ = write!(o, "<td class=\"n\">{c}</td>");
            } else {
                let _ = write!(o, "<td>{c}</td>");
            }
        }
        o.push_str("</tr>");
    }
    o.push_str("</table>");
}

/// A process's open descriptors over the window: its net opens since the start shifted so
/// the last point is the open count at the end (the finding's), or the net count when that
/// is unknown. Windows without the per-second series are rebuilt from the per-interval
/// growth, spread evenly.
fn fd_series(p: &FdProcess, window_ms: u64) -> Series {
    let net = if p.net_series.is_empty() && !p.net_per_interval.is_empty() {
        let n = p.net_per_interval.len() as u64;
        let mut acc = 0i64;
        let mut s = Series::from_points([(0, 0.0)]);
        for (i, d) in p.net_per_interval.iter().enumerate() {
            acc += d;
            s.push(window_ms * (i as u64 + 1) / n, acc as f64);
        }
        s
    } else {
        p.net_series.clone()
    };
    match (p.open_fds, net.last()) {
        (Some(open), Some(last)) => {
            let shift = open as f64 - last;
            Series::from_points(net.0.iter().map(|(t, v)| (*t, (v + shift).max(0.0))))
        }
        _ => net,
    }
}

/// The chart under a finding, when it has a subject with a series: a process's open
/// descriptors or a cgroup's or the host's memory, each with its limit and the ETA line.
fn finding_chart(f: &Finding, s: &Signals) -> Option<String> {
    let window_ms = s.window.duration_ms;
    match f.rule.as_str() {
        "fd-leak" => {
            let pid = f.subject.process.as_ref()?.pid;
            let p = s
                .fds
                .as_ref()?
                .processes
                .iter()
                .find(|p| p.process.pid == pid)?;
            let series = fd_series(p, window_ms);
            if series.is_empty() {
                return None;
            }
            let label = if p.open_fds.is_some() {
                "open descriptors"
            } else {
                "opened − closed since the start"
            };
            Some(
                LineChart {
                    kind: "fd-leak",
                    title: format!("{} ({}): open file descriptors", p.process.comm, pid),
                    lines: vec![Line {
                        label,
                        series: &series,
                        class: "s0",
                    }],
                    fmt: Axis::Count,
                    limit: p
                        .soft_limit
                        .filter(|_| p.open_fds.is_some())
                        .map(|l| (l as f64, format!("soft limit {}", thousands(l)))),
                    eta_secs: f.eta_secs,
                    threshold: None,
                    window_ms,
                    data: vec![("pid", pid.to_string())],
                }
                .render(),
            )
        }
        "oom-imminent" | "memory-pressure" => {
            let m = s.memory.as_ref()?;
            if f.subject.kind == "cgroup" {
                let path = f.subject.cgroup.as_deref()?;
                let c = m.cgroups.iter().find(|c| c.path == path)?;
                Some(cgroup_chart(f, c, window_ms))
            } else if !m.used_series.is_empty() {
                Some(
                    LineChart {
                        kind: "memory-host",
                        title: "host memory in use".into(),
                        lines: vec![Line {
                            label: "used",
                            series: &m.used_series,
                            class: "s0",
                        }],
                        fmt: Axis::Bytes,
                        limit: Some((
                            m.total_bytes as f64,
                            format!("total {}", human_bytes(m.total_bytes)),
                        )),
                        eta_secs: f.eta_secs,
                        threshold: None,
                        window_ms,
                        data: Vec::new(),
                    }
                    .render(),
                )
            } else {
                None
            }
        }
        _ => None,
    }
}

fn cgroup_chart(f: &Finding, c: &CgroupMemory, window_ms: u64) -> String {
    let ws_known = c.working_set_bytes.is_some();
    let ends = |a: u64, b: u64| Series::from_points([(0, a as f64), (window_ms, b as f64)]);
    let main = match c.working_set_or_usage_series() {
        s if !s.is_empty() => s.clone(),
        _ => ends(c.working_set_start(), c.working_set()),
    };
    let usage = match &c.usage_series {
        s if !s.is_empty() => s.clone(),
        _ => ends(c.usage_start_bytes, c.usage_bytes),
    };
    let mut lines = vec![Line {
        label: if ws_known { "working set" } else { "usage" },
        series: &main,
        class: "s0",
    }];
    if ws_known {
        lines.push(Line {
            label: "usage (with page cache)",
            series: &usage,
            class: "s1",
        });
    }
    let name = c
        .attribution
        .describe()
        .or_else(|| c.pod.clone())
        .unwrap_or_else(|| c.path.clone());
    LineChart {
        kind: "memory-cgroup",
        title: format!("{name}: memory"),
        lines,
        fmt: Axis::Bytes,
        limit: Some((
            c.limit_bytes as f64,
            format!("limit {}", human_bytes(c.limit_bytes)),
        )),
        eta_secs: f.eta_secs,
        threshold: None,
        window_ms,
        data: vec![("cgroup", c.path.clone())],
    }
    .render()
}

/// The threshold of the first finding of `rule` measured in ms, in ns with its label: the
/// line a p99 chart draws.
fn ms_threshold(findings: &[Finding], rule: &str) -> Option<(f64, String)> {
    findings
        .iter()
        .find(|f| f.rule == rule && f.unit == "ms")
        .map(|f| {
            (
                f.threshold * 1e6,
                format!("{rule} threshold {} ms", num(f.threshold)),
            )
        })
}

/// Per-second charts of the domains that fired.
fn series_charts(s: &Signals, fired: &[Domain], findings: &[Finding]) -> String {
    let window_ms = s.window.duration_ms;
    let mut o = String::new();
    let chart = |kind: &str, title: String, lines: Vec<Line>, fmt: Axis| {
        LineChart {
            kind,
            title,
            lines,
            fmt,
            limit: None,
            eta_secs: None,
            threshold: match kind {
                "syscall-p99" => ms_threshold(findings, "syscall-latency"),
                "runq-p99" => ms_threshold(findings, "sched-contention"),
                _ => None,
            },
            window_ms,
            data: Vec::new(),
        }
        .render()
    };
    if fired.contains(&Domain::Syscalls)
        && let Some(sys) = &s.syscalls
    {
        if !sys.errors_series.is_empty() {
            o += &chart(
                "syscall-errors",
                "failed syscalls per second".into(),
                vec![Line {
                    label: "errors/s",
                    series: &sys.errors_series,
                    class: "bad",
                }],
                Axis::Count,
            );
        }
        if !sys.calls_series.is_empty() {
            o += &chart(
                "syscall-calls",
                "syscalls per second".into(),
                vec![Line {
                    label: "calls/s",
                    series: &sys.calls_series,
                    class: "s0",
                }],
                Axis::Count,
            );
        }
        if !sys.p99_series.is_empty() {
            o += &chart(
                "syscall-p99",
                "syscall latency p99 (non-waiting syscalls)".into(),
                vec![Line {
                    label: "p99",
                    series: &sys.p99_series,
                    class: "s0",
                }],
                Axis::Ns,
            );
        }
    }
    if fired.contains(&Domain::Sched)
        && let Some(sc) = &s.sched
        && !sc.p99_series.is_empty()
    {
        o += &chart(
            "runq-p99",
            "run-queue delay p99".into(),
            vec![Line {
                label: "p99",
                series: &sc.p99_series,
                class: "s0",
            }],
            Axis::Ns,
        );
    }
    if fired.contains(&Domain::Disk)
        && let Some(d) = &s.disk
    {
        for dev in d
            .devices
            .iter()
            .filter(|d| !d.p99_series.is_empty())
            .take(4)
        {
            o += &LineChart {
                kind: "disk-p99",
                title: format!("disk latency p99: {}", dev.label()),
                lines: vec![Line {
                    label: "p99",
                    series: &dev.p99_series,
                    class: "s0",
                }],
                fmt: Axis::Ns,
                limit: None,
                eta_secs: None,
                threshold: ms_threshold(findings, "disk-io"),
                window_ms,
                data: vec![("dev", dev.dev.clone())],
            }
            .render();
        }
    }
    if fired.contains(&Domain::Tcp)
        && let Some(t) = &s.tcp
        && !t.retransmits_series.is_empty()
    {
        o += &chart(
            "tcp-retransmits",
            "TCP retransmits per second".into(),
            vec![Line {
                label: "retransmits/s",
                series: &t.retransmits_series,
                class: "bad",
            }],
            Axis::Count,
        );
    }
    if (fired.contains(&Domain::Memory) || fired.contains(&Domain::Oom))
        && let Some(m) = &s.memory
        && !m.used_series.is_empty()
    {
        o += &LineChart {
            kind: "memory-host",
            title: "host memory in use".into(),
            lines: vec![Line {
                label: "used",
                series: &m.used_series,
                class: "s0",
            }],
            fmt: Axis::Bytes,
            limit: Some((
                m.total_bytes as f64,
                format!("total {}", human_bytes(m.total_bytes)),
            )),
            eta_secs: None,
            threshold: None,
            window_ms,
            data: Vec::new(),
        }
        .render();
    }
    o
}

/// Latency histograms of the domains that fired.
fn histograms(s: &Signals, fired: &[Domain]) -> String {
    let mut o = String::new();
    if fired.contains(&Domain::Syscalls)
        && let Some(sys) = &s.syscalls
    {
        // The slowest non-waiting syscalls by p99.
        let mut v: Vec<(&str, &Histogram, u64)> = sys
            .syscalls
            .iter()
            .filter(|x| !x.wait)
            .filter_map(|x| Some((x.name.as_str(), &x.latency, x.latency.percentile(99.0)?)))
            .collect();
        v.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(b.0)));
        for (name, h, _) in v.into_iter().take(3) {
            o += &histogram_chart("syscall-latency", &format!("{name} latency"), h);
        }
    }
    if fired.contains(&Domain::Sched)
        && let Some(sc) = &s.sched
    {
        o += &histogram_chart("runq-delay", "run-queue delay", &sc.runq_delay);
    }
    if fired.contains(&Domain::Disk)
        && let Some(d) = &s.disk
    {
        let mut v: Vec<(String, &Histogram, u64)> = d
            .devices
            .iter()
            .flat_map(|dev| {
                dev.ops.iter().filter_map(move |op| {
                    Some((
                        format!("{} {}", dev.label(), op.op),
                        &op.latency,
                        op.latency.percentile(99.0)?,
                    ))
                })
            })
            .collect();
        v.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(&b.0)));
        for (name, h, _) in v.into_iter().take(4) {
            o += &histogram_chart("disk-latency", &format!("{name} latency"), h);
        }
    }
    if fired.contains(&Domain::Tcp)
        && let Some(t) = &s.tcp
    {
        if !t.rtt.is_empty() {
            o += &histogram_chart("tcp-rtt", "TCP smoothed RTT", &t.rtt);
        }
        if !t.connect_latency.is_empty() {
            o += &histogram_chart("tcp-connect", "TCP connect latency", &t.connect_latency);
        }
    }
    o
}

/// The top processes and pods of the domains that fired.
fn top_tables(s: &Signals, fired: &[Domain]) -> String {
    let mut o = String::new();
    let secs = s.window_secs();
    if fired.contains(&Domain::Syscalls)
        && let Some(sys) = &s.syscalls
    {
        let mut rows: Vec<(u64, Vec<String>)> = sys
            .syscalls
            .iter()
            .flat_map(|x| {
                x.top_errors.iter().map(move |e| {
                    (
                        e.count,
                        vec![
                            who(&e.process),
                            format!("<code>{}</code>", esc(&x.name)),
                            esc(&e.errno),
                            thousands(e.count),
                        ],
                    )
                })
            })
            .collect();
        rows.sort_by_key(|r| std::cmp::Reverse(r.0));
        let rows: Vec<Vec<String>> = rows.into_iter().take(10).map(|r| r.1).collect();
        if !rows.is_empty() {
            o.push_str("<h3>failed syscalls</h3>");
        }
        table(
            &mut o,
            "syscall-errors",
            &["process", "syscall", "errno", "#failed"],
            &rows,
        );
    }
    if fired.contains(&Domain::Fds)
        && let Some(f) = &s.fds
    {
        let rows: Vec<Vec<String>> = f
            .processes
            .iter()
            .take(10)
            .map(|p| {
                let opt = |v: Option<u64>| v.map(thousands).unwrap_or_else(|| "?".into());
                vec![
                    who(&p.process),
                    thousands(p.opens),
                    thousands(p.closes),
                    format!("{:+.1}", p.growth_per_sec(secs)),
                    opt(p.open_fds),
                    opt(p.soft_limit),
                ]
            })
            .collect();
        if !rows.is_empty() {
            o.push_str("<h3>descriptors</h3>");
        }
        table(
            &mut o,
            "fds",
            &["process", "#opened", "#closed", "#net/s", "#open", "#limit"],
            &rows,
        );
    }
    if fired.contains(&Domain::Sched)
        && let Some(sc) = &s.sched
    {
        let rows: Vec<Vec<String>> = sc
            .top_delayed
            .iter()
            .map(|d| {
                vec![
                    who(&d.process),
                    thousands(d.count),
                    human_ns(d.total_ns as f64),
                    human_ns(d.max_ns as f64),
                ]
            })
            .collect();
        if !rows.is_empty() {
            o.push_str("<h3>waiting for a CPU</h3>");
        }
        table(
            &mut o,
            "sched",
            &["process", "#slow waits", "#total", "#longest"],
            &rows,
        );
    }
    if fired.contains(&Domain::Disk)
        && let Some(d) = &s.disk
    {
        let rows: Vec<Vec<String>> = d
            .devices
            .iter()
            .flat_map(|dev| {
                dev.ops.iter().map(move |op| {
                    vec![
                        format!("<b>{}</b>", esc(&dev.label())),
                        esc(&op.op),
                        thousands(op.count),
                        human_bytes(op.bytes),
                        thousands(op.errors),
                        op.latency
                            .percentile(99.0)
                            .map(|p| human_ns(p as f64))
                            .unwrap_or_default(),
                    ]
                })
            })
            .collect();
        if !rows.is_empty() {
            o.push_str("<h3>block devices</h3>");
        }
        table(
            &mut o,
            "disk",
            &["device", "op", "#requests", "#bytes", "#errors", "#p99"],
            &rows,
        );
    }
    if fired.contains(&Domain::Tcp)
        && let Some(t) = &s.tcp
    {
        let rows: Vec<Vec<String>> = t
            .top_flows
            .iter()
            .map(|f| {
                vec![
                    f.process.as_ref().map(who).unwrap_or_else(|| "?".into()),
                    format!("<code>{}</code>", esc(&f.local)),
                    format!("<code>{}</code>", esc(&f.remote)),
                    thousands(f.retransmits),
                ]
            })
            .collect();
        if !rows.is_empty() {
            o.push_str("<h3>retransmitting flows</h3>");
        }
        table(
            &mut o,
            "tcp",
            &["process", "local", "remote", "#retransmits"],
            &rows,
        );
    }
    if fired.contains(&Domain::Oom)
        && let Some(k) = &s.oom
    {
        let rows: Vec<Vec<String>> = k
            .kills
            .iter()
            .map(|k| {
                vec![
                    who(&k.process),
                    esc(&super::utc(k.at_unix_ms)),
                    human_bytes(k.anon_rss_bytes + k.file_rss_bytes + k.shmem_rss_bytes),
                    k.cgroup_limit_bytes.map(human_bytes).unwrap_or_default(),
                ]
            })
            .collect();
        if !rows.is_empty() {
            o.push_str("<h3>OOM kills</h3>");
        }
        table(
            &mut o,
            "oom",
            &["victim", "at", "#RSS", "#cgroup limit"],
            &rows,
        );
    }
    if (fired.contains(&Domain::Memory) || fired.contains(&Domain::Oom))
        && let Some(m) = &s.memory
    {
        let rows: Vec<Vec<String>> = m
            .cgroups
            .iter()
            .take(10)
            .map(|c| {
                let name = c
                    .attribution
                    .describe()
                    .or_else(|| c.pod.clone())
                    .map(|w| {
                        format!(
                            "<b>{}</b><br><code class=\"muted\">{}</code>",
                            esc(&w),
                            esc(&c.path)
                        )
                    })
                    .unwrap_or_else(|| format!("<code>{}</code>", esc(&c.path)));
                vec![
                    name,
                    human_bytes(c.working_set()),
                    human_bytes(c.usage_bytes),
                    human_bytes(c.limit_bytes),
                    format!("{:.0}%", c.fill_pct()),
                    thousands(c.oom_kills),
                ]
            })
            .collect();
        if !rows.is_empty() {
            o.push_str("<h3>memory cgroups (pods)</h3>");
        }
        table(
            &mut o,
            "memory",
            &[
                "cgroup",
                "#working set",
                "#usage",
                "#limit",
                "#full",
                "#OOM kills",
            ],
            &rows,
        );
    }
    o
}

fn finding_html(o: &mut String, i: usize, f: &Finding, s: &Signals) {
    let open = if f.severity == Severity::Info {
        ""
    } else {
        " open"
    };
    let _ = write!(
        o,
        "<li class=\"finding {}\" id=\"finding-{}\" data-rule=\"{}\" data-severity=\"{}\" data-value=\"{}\">\
         <details{open}><summary><span class=\"rank\">{}</span><span class=\"badge b-{}\">{}</span> \
         <span class=\"ftitle\">{}</span><code class=\"rule\">{}</code></summary><div class=\"fbody\">",
        sev_class(f.severity),
        i + 1,
        esc(&f.rule),
        f.severity.label().to_lowercase(),
        num(f.value),
        i + 1,
        sev_class(f.severity),
        esc(f.severity.label()),
        esc(&f.title),
        esc(&f.rule)
    );
    let _ = write!(
        o,
        "<p class=\"fvalue\"><b>{} {}</b> <span class=\"muted\">(threshold {} {})</span>",
        esc(&num(f.value)),
        esc(&f.unit),
        esc(&num(f.threshold)),
        esc(&f.unit)
    );
    if let Some(eta) = f.eta_secs {
        let _ = write!(
            o,
            " · <b>{}</b>",
            esc(&format!("limit reached in about {}", human_secs(eta)))
        );
    }
    o.push_str("</p><dl>");
    let mut row = |k: &str, v: String| {
        let _ = write!(o, "<dt>{k}</dt><dd>{v}</dd>");
    };
    if let Some(w) = f.subject.whose() {
        row("in", esc(&w));
    }
    row("cause", esc(&f.cause));
    row("impact", esc(&f.impact));
    if !f.evidence.is_empty() {
        let items: String = f
            .evidence
            .iter()
            .map(|e| format!("<li>{}</li>", esc(e)))
            .collect();
        row("evidence", format!("<ul>{items}</ul>"));
    }
    if f.low_volume {
        row(
            "note",
            "few samples in this window: confirm with a longer window".into(),
        );
    }
    if !f.fix.is_empty() {
        let items: String = f
            .fix
            .iter()
            .map(|s| format!("<li><code>{}</code></li>", esc(s)))
            .collect();
        row("fix", format!("<ol>{items}</ol>"));
    }
    o.push_str("</dl>");
    if let Some(c) = finding_chart(f, s) {
        o.push_str(&c);
    }
    o.push_str("</div></details></li>");
}

/// The report as a self-contained HTML fragment (a `<div class="kerno-report">` with its
/// own `<style>`, no scripts), as notebooks show it and [`html_page`] wraps it: the
/// ranked findings (critical and warning ones unfolded, each fd or memory finding with its
/// chart and the dashed line to its limit), per-second charts and latency histograms of
/// every domain that fired, the top processes and pods, and the observed domains.
pub fn html(r: &Report) -> String {
    let mut o = String::new();
    let h = &r.host;
    let s = &r.signals;
    let _ = write!(o, "<div class=\"kerno-report\"><style>{CSS}</style>");
    let (label, class) = match r.status {
        Status::Healthy => ("HEALTHY", "st-ok"),
        Status::Degraded => ("DEGRADED", "st-gray"),
        Status::Warning => ("WARNING", "st-warn"),
        Status::Critical => ("CRITICAL", "st-crit"),
    };
    let _ = write!(
        o,
        "<header class=\"head\" data-status=\"{}\"><span class=\"status {class}\">{label}</span>\
         <div><h1>kerno doctor: {}</h1><div class=\"host\">kernel {} · {} CPUs · {} memory · {} · \
         window {:.1} s from {}</div></div>\
         <div class=\"counts\"><b>{}</b> critical · <b>{}</b> warning · <b>{}</b> info</div></header>",
        label.to_lowercase(),
        esc(if h.hostname.is_empty() {
            "?"
        } else {
            &h.hostname
        }),
        esc(&h.kernel),
        h.cpus,
        human_bytes(h.memory_bytes),
        esc(&h.environment),
        r.window.duration_ms as f64 / 1000.0,
        super::utc(r.window.start_unix_ms),
        r.summary.critical,
        r.summary.warning,
        r.summary.info
    );
    if let Some(scope) = &r.scope {
        let _ = write!(o, "<p class=\"muted\">only findings in {}</p>", esc(scope));
    }
    let mut fired: Vec<Domain> = r
        .findings
        .iter()
        .filter_map(|f| rule_domain(&f.rule))
        .collect();
    fired.sort_by_key(|d| Domain::ALL.iter().position(|x| x == d));
    fired.dedup();
    if r.findings.is_empty() {
        o.push_str("<p>No findings: every observed domain is within its thresholds.</p>");
    } else {
        // At a glance: one line per finding, linking to its card.
        o.push_str("<ol class=\"glance\">");
        for (i, f) in r.findings.iter().enumerate() {
            let _ = write!(
                o,
                "<li><a href=\"#finding-{}\"><span class=\"badge b-{}\">{}</span> {}</a></li>",
                i + 1,
                sev_class(f.severity),
                esc(f.severity.label()),
                esc(&f.title)
            );
        }
        o.push_str("</ol><h2>Findings, most urgent first</h2><ol class=\"findings\">");
        for (i, f) in r.findings.iter().enumerate() {
            finding_html(&mut o, i, f, s);
        }
        o.push_str("</ol>");
    }
    let charts = series_charts(s, &fired, &r.findings);
    if !charts.is_empty() {
        let _ = write!(
            o,
            "<h2>Over the window, second by second</h2><div class=\"charts\">{charts}</div>"
        );
    }
    let hists = histograms(s, &fired);
    if !hists.is_empty() {
        let _ = write!(
            o,
            "<h2>Latency distributions</h2><div class=\"charts\">{hists}</div>"
        );
    }
    let tables = top_tables(s, &fired);
    if !tables.is_empty() {
        let _ = write!(o, "<h2>Top processes and pods</h2>{tables}");
    }
    // The AI post-processor's advice, after the findings and marked as such; a failed
    // analysis adds nothing.
    if let Some(crate::Analysis::Ok {
        provider,
        model,
        privacy,
        text,
        cached,
    }) = &r.analysis
    {
        let _ = write!(
            o,
            "<h2>Analysis</h2><p class=\"muted\">AI: {} {}, privacy {}{}; advice, not a finding</p><div class=\"analysis\">",
            esc(provider),
            esc(model),
            esc(privacy),
            if *cached { ", cached" } else { "" }
        );
        for para in text.split("\n\n").filter(|p| !p.trim().is_empty()) {
            let _ = write!(o, "<p>{}</p>", esc(para.trim()).replace('\n', "<br>"));
        }
        o.push_str("</div>");
    }
    o.push_str("<h2>What was observed</h2><table class=\"domains\"><tr><th>domain</th><th>observed</th></tr>");
    for d in &r.domains {
        let detail = match (d.observed, &d.reason) {
            (true, _) => format!("<td>{}</td>", esc(&d.detail)),
            (false, Some(why)) => format!("<td class=\"no\">not observed: {}</td>", esc(why)),
            (false, None) => "<td class=\"no\">not observed</td>".into(),
        };
        let _ = write!(
            o,
            "<tr><td><code>{}</code></td>{detail}</tr>",
            esc(d.domain.as_str())
        );
    }
    let _ = write!(
        o,
        "</table><p class=\"muted\">{} · {}</p></div>",
        esc(&r.generator),
        super::utc(r.window.start_unix_ms.saturating_add(r.window.duration_ms))
    );
    o
}

/// The report as one self-contained HTML document (`kerno doctor -o html`): [`html`] in a
/// page with its title, colour-scheme hints and a few lines of script that unfold every
/// finding before printing. Nothing is fetched from anywhere.
pub fn html_page(r: &Report) -> String {
    let host = if r.host.hostname.is_empty() {
        "?"
    } else {
        &r.host.hostname
    };
    let status = match r.status {
        Status::Healthy => "healthy",
        Status::Degraded => "degraded",
        Status::Warning => "warning",
        Status::Critical => "critical",
    };
    format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <meta name=\"color-scheme\" content=\"light dark\">\
         <title>kerno doctor: {} ({status}, {} findings)</title>\
         <style>html,body{{margin:0}}@media (prefers-color-scheme:dark){{body{{background:#0d1117}}}}</style>\
         </head><body>{}<script>{PRINT_JS}</script></body></html>\n",
        esc(host),
        r.findings.len(),
        html(r)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Degraded, Finding, Signals, Subject};

    #[test]
    fn everything_from_the_report_is_escaped() {
        let evil = Finding {
            rule: "x<y".into(),
            severity: Severity::Critical,
            title: "<script>alert(1)</script>".into(),
            cause: "a & b".into(),
            impact: String::new(),
            evidence: vec!["\"quoted\"".into()],
            value: 6.796116,
            threshold: 5.0,
            unit: "%".into(),
            fix: vec!["kill -9 'pid'".into()],
            eta_secs: Some(30.0),
            subject: Subject::host("h"),
            low_volume: false,
        };
        let h = html(&Report::new(Signals::default(), vec![evil]));
        assert!(!h.contains("<script>"), "{h}");
        for want in [
            "&lt;script&gt;alert(1)&lt;/script&gt;",
            "<code class=\"rule\">x&lt;y</code>",
            "a &amp; b",
            "&quot;quoted&quot;",
            "kill -9 &#39;pid&#39;",
            "CRITICAL",
            "limit reached in about 30 s",
            "<b>6.80 %</b> <span class=\"muted\">(threshold 5 %)</span>",
        ] {
            assert!(h.contains(want), "{want} in {h}");
        }
        assert!(h.starts_with("<div class=\"kerno-report\"><style>") && h.ends_with("</div>"));
        let page = html_page(&Report::new(Signals::default(), Vec::new()));
        assert!(
            page.starts_with("<!DOCTYPE html>") && page.contains("<div class=\"kerno-report\">")
        );
        assert_eq!(
            page.matches("<script>").count(),
            1,
            "one script: unfold for print"
        );
        for fetch in ["http:", "https:", "src=", "@import", "url("] {
            assert!(!page.contains(fetch), "{fetch} in {page}");
        }
    }

    #[test]
    fn an_unobserved_domain_shows_its_reason() {
        let s = Signals {
            degraded: vec![Degraded {
                domain: "tcp".into(),
                reason: "probe & co failed".into(),
            }],
            ..Signals::default()
        };
        let h = html(&Report::new(s, Vec::new()));
        assert!(h.contains("DEGRADED"), "{h}");
        assert!(
            h.contains(
                "<td><code>tcp</code></td><td class=\"no\">not observed: probe &amp; co failed</td>"
            ),
            "{h}"
        );
        assert!(
            h.contains("<td><code>oom</code></td><td class=\"no\">not observed</td>"),
            "{h}"
        );
    }
}
