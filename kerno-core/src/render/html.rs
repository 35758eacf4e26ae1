use std::fmt::Write as _;

use crate::{
    Report, Severity, Status,
    finding::{human_bytes, human_secs},
};

fn esc(s: &str) -> String {
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
fn num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v:.2}")
    }
}

fn colour(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "#c62828",
        Severity::Warning => "#ef6c00",
        Severity::Info => "#1565c0",
    }
}

fn badge(label: &str, colour: &str) -> String {
    format!(
        "<span style=\"background:{colour};color:#fff;padding:1px 6px;border-radius:3px;\
         font-weight:bold;font-family:monospace\">{}</span>",
        esc(label)
    )
}

/// The report as a self-contained HTML fragment for notebooks (inline styles only, no
/// scripts): the content of the pretty report, each finding's details folded under its
/// title. Every text from the report is escaped.
pub fn html(r: &Report) -> String {
    let mut o = String::new();
    let h = &r.host;
    let _ = write!(
        o,
        "<div class=\"kerno-report\"><p><b>kerno doctor: {}</b> — kernel {}, {} CPUs, {} memory, \
         {}<br>window: {:.1} s from {}</p>",
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
        super::utc(r.window.start_unix_ms)
    );
    let (label, col) = match r.status {
        Status::Healthy => ("HEALTHY", "#2e7d32"),
        Status::Degraded => ("DEGRADED", "#616161"),
        Status::Warning => ("WARNING", colour(Severity::Warning)),
        Status::Critical => ("CRITICAL", colour(Severity::Critical)),
    };
    let _ = write!(
        o,
        "<p>{} {} critical, {} warning, {} info</p>",
        badge(label, col),
        r.summary.critical,
        r.summary.warning,
        r.summary.info
    );
    if !r.findings.is_empty() {
        o.push_str("<ol>");
        for f in &r.findings {
            let _ = write!(
                o,
                "<li><details><summary>{} <b>{}</b> <code>{}</code></summary><dl>",
                badge(f.severity.label(), colour(f.severity)),
                esc(&f.title),
                esc(&f.rule)
            );
            let mut row = |k: &str, v: String| {
                let _ = write!(o, "<dt>{k}</dt><dd>{v}</dd>");
            };
            if let Some(w) = f.subject.whose() {
                row("in", esc(&w));
            }
            row("cause", esc(&f.cause));
            row("impact", esc(&f.impact));
            row(
                "value",
                esc(&format!(
                    "{} {} (threshold {} {})",
                    num(f.value),
                    f.unit,
                    num(f.threshold),
                    f.unit
                )),
            );
            if let Some(eta) = f.eta_secs {
                row(
                    "ETA",
                    esc(&format!("limit reached in about {}", human_secs(eta))),
                );
            }
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
            o.push_str("</dl></details></li>");
        }
        o.push_str("</ol>");
    }
    o.push_str("<table><tr><th style=\"text-align:left\">domain</th><th style=\"text-align:left\">observed</th></tr>");
    for d in &r.domains {
        let detail = match (d.observed, &d.reason) {
            (true, _) => esc(&d.detail),
            (false, Some(why)) => format!("<b>not observed</b>: {}", esc(why)),
            (false, None) => "<b>not observed</b>".into(),
        };
        let _ = write!(
            o,
            "<tr><td><code>{}</code></td><td style=\"text-align:left\">{detail}</td></tr>",
            esc(d.domain.as_str())
        );
    }
    o.push_str("</table></div>");
    o
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
            "<code>x&lt;y</code>",
            "a &amp; b",
            "&quot;quoted&quot;",
            "kill -9 &#39;pid&#39;",
            "CRITICAL",
            "limit reached in about 30 s",
            "6.80 % (threshold 5 %)",
        ] {
            assert!(h.contains(want), "{want} in {h}");
        }
        assert!(h.starts_with("<div class=\"kerno-report\">") && h.ends_with("</div>"));
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
            h.contains("<td><code>tcp</code></td><td style=\"text-align:left\"><b>not observed</b>: probe &amp; co failed</td>"),
            "{h}"
        );
        assert!(
            h.contains(
                "<td><code>oom</code></td><td style=\"text-align:left\"><b>not observed</b></td>"
            ),
            "{h}"
        );
    }
}
