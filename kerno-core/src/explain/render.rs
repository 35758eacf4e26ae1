//! The pretty (plain text) rendering of an [`Explanation`] and a [`RuleExplanation`].

use std::fmt::Write;

use super::{Explanation, Group, RuleExplanation};
use crate::ThresholdValue;

/// Unknown lines shown in the pretty output; the JSON keeps them all.
const UNKNOWN_SHOWN: usize = 20;

fn event_facts(g: &Group) -> Vec<String> {
    let e = g.events.last().expect("a group has an event");
    let f = &e.fields;
    let mut facts = Vec::new();
    match (f.pid, &f.comm) {
        (Some(p), Some(c)) => facts.push(format!("process {c} (pid {p})")),
        (Some(p), None) => facts.push(format!("pid {p}")),
        (None, Some(c)) => facts.push(format!("process {c}")),
        _ => {}
    }
    if let Some(w) = &f.whose {
        facts.push(format!("in {w}"));
    }
    if let Some(c) = &f.cgroup {
        facts.push(format!("cgroup {c}"));
    }
    if let Some(d) = &f.device {
        facts.push(format!("device {d}"));
    }
    let o = &f.other;
    if let (Some(u), Some(l)) = (o.get("usage_kb"), o.get("limit_kb")) {
        facts.push(format!("memory usage {u} kB of limit {l} kB"));
    }
    if let Some(a) = o.get("anon_rss_kb") {
        facts.push(format!("anon-rss {a} kB"));
    }
    for (k, label) in [
        ("constraint", "constraint"),
        ("trigger", "triggered by"),
        ("address", "address"),
        ("object", "in"),
        ("function", "function"),
        ("module", "module"),
        ("location", "at"),
        ("server", "server"),
        ("port", "port"),
        ("sector", "sector"),
        ("secs", "seconds"),
        ("reason", "reason"),
        ("detail", "detail"),
    ] {
        if let Some(v) = o.get(k) {
            facts.push(format!("{label} {v}"));
        }
    }
    if e.suppressed > 0 {
        facts.push(format!("{} more suppressed by the kernel", e.suppressed));
    }
    facts
}

/// The explanation as text for a terminal (no colours).
pub fn pretty(e: &Explanation) -> String {
    let mut out = String::new();
    let known: usize = e.unknown.iter().map(|u| u.count as usize).sum();
    let _ = write!(
        out,
        "Kernel log ({}): {} line{} read, {} explained",
        e.source,
        e.lines,
        if e.lines == 1 { "" } else { "s" },
        e.explained_lines
    );
    if known > 0 {
        let _ = write!(out, ", {known} unknown");
    }
    if e.binary_lines > 0 {
        let _ = write!(out, ", {} not text (binary data, skipped)", e.binary_lines);
    }
    out.push_str(".\n");
    if e.groups.is_empty() {
        out.push_str(if e.lines == 0 {
            "\nNothing to explain: no kernel messages in the input.\n"
        } else {
            "\nNo known kernel message among these lines.\n"
        });
    }
    let mut explained: Vec<&str> = Vec::new();
    for g in &e.groups {
        let _ = writeln!(
            out,
            "\n{:<4}  {}  [{}]",
            g.severity.label(),
            g.summary,
            g.pattern
        );
        let _ = writeln!(out, "      {}", g.title);
        let last = g.events.last().expect("a group has an event");
        let _ = writeln!(out, "      > {}", last.headline);
        let facts = event_facts(g);
        if !facts.is_empty() {
            let _ = writeln!(out, "      {}", facts.join(", "));
        }
        // A pattern is explained once; its later groups (other cgroups, devices...) get
        // their own commands only.
        let first = !explained.contains(&g.pattern.as_str());
        if first {
            explained.push(&g.pattern);
            let _ = writeln!(out, "  What it means: {}", g.meaning);
            out.push_str("  Likely causes:\n");
            for c in &g.causes {
                let _ = writeln!(out, "    - {c}");
            }
        }
        out.push_str("  Check next:\n");
        for c in &g.check {
            let _ = writeln!(out, "    $ {c}");
        }
        if !first {
            let _ = writeln!(
                out,
                "  (meaning, causes and fix: see [{}] above)",
                g.pattern
            );
            continue;
        }
        out.push_str("  Fix:\n");
        for f in &g.fix {
            let _ = writeln!(out, "    - {f}");
        }
        let _ = writeln!(out, "  Kernel source: {}", g.kernel_source);
    }
    if !e.unknown.is_empty() {
        let _ = writeln!(
            out,
            "\nUnknown ({} distinct line{} the knowledge base does not explain):",
            e.unknown.len(),
            if e.unknown.len() == 1 { "" } else { "s" }
        );
        for u in e.unknown.iter().take(UNKNOWN_SHOWN) {
            let text: String = u.text.chars().take(160).collect();
            let more = if text.len() < u.text.len() { "…" } else { "" };
            if u.count > 1 {
                let _ = writeln!(out, "  {:>4}x {text}{more}", u.count);
            } else {
                let _ = writeln!(out, "        {text}{more}");
            }
        }
        if e.unknown.len() > UNKNOWN_SHOWN {
            let _ = writeln!(
                out,
                "        ... and {} more (all of them in -o json)",
                e.unknown.len() - UNKNOWN_SHOWN
            );
        }
    }
    if let Some(crate::Analysis::Ok {
        provider,
        model,
        privacy,
        text,
        cached,
    }) = &e.analysis
    {
        let _ = writeln!(
            out,
            "\nAnalysis of the unknown lines (AI: {provider} {model}, privacy {privacy}{}; advice, not a finding):",
            if *cached { ", cached" } else { "" }
        );
        for line in text.trim().lines() {
            let _ = writeln!(out, "  {line}");
        }
    }
    out
}

/// A rule's explanation as text.
pub fn pretty_rule(r: &RuleExplanation) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}: {}", r.id, r.description);
    let _ = writeln!(out, "\nWhat it checks:\n  {}", r.checks);
    out.push_str("\nThresholds (set with --threshold KEY=VALUE, KERNO_THRESHOLD_<KEY>, or `thresholds:` in the config file):\n");
    if r.thresholds.is_empty() {
        out.push_str("  (none)\n");
    }
    for t in &r.thresholds {
        let shown = match &t.value {
            ThresholdValue::List(_) => t.value.to_string(),
            _ if t.unit.is_empty() || t.unit == "ratio" => t.value.to_string(),
            v => format!("{v} {}", t.unit),
        };
        let changed = if t.value == t.default {
            String::new()
        } else {
            format!(" [default {}]", t.default)
        };
        let range = if t.range.is_empty() {
            String::new()
        } else {
            format!(" ({})", t.range)
        };
        let _ = writeln!(out, "  {:<28} {shown}{changed}", t.key);
        let _ = writeln!(out, "  {:<28} {}{range}", "", t.doc);
    }
    out.push_str("\nWhen it fires:\n");
    if r.when_it_fires.is_empty() {
        out.push_str("  (the finding's fix list says what to do)\n");
    }
    for (i, s) in r.when_it_fires.iter().enumerate() {
        let _ = writeln!(out, "  {}. {s}", i + 1);
    }
    out
}
