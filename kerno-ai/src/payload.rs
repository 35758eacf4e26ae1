//! What is sent: the findings of a report (never its raw signals), in one of three
//! privacy modes. `docs/ai.md` lists the fields of each.

use kerno_core::{Report, config::AiPrivacy};
use serde_json::{Value, json};

use crate::redact::{Inventory, Redactor};

/// The instructions sent with every payload (the same in every mode).
pub const SYSTEM_PROMPT: &str = "You assist an on-call SRE. Kerno, a kernel-level diagnosis \
tool, examined one Linux node and produced the deterministic findings in the user's message \
(JSON). Names, addresses and ids may be replaced by placeholders such as <pod-1> or <ip-2>: \
use them exactly as written and never guess what they stand for. In at most 200 words of \
plain text, say: (1) the likely root cause, connecting findings that share one; (2) what to \
do first; (3) what to check to confirm it. Do not invent findings, names or numbers that are \
not in the input. If nothing is wrong, say so in one sentence.";

/// The payload of one request: the user message's text, and the way back from its
/// placeholders (`redacted` mode only).
#[derive(Clone, Debug)]
pub struct Payload {
    /// The mode it was built in.
    pub privacy: AiPrivacy,
    /// The JSON text sent as the user message.
    pub text: String,
    /// Maps placeholders back (`redacted` mode).
    pub redactor: Option<Redactor>,
}

/// The fields every mode sends: ids, severities, units and numbers.
pub const FIXED_FIELDS: [&str; 8] = [
    "rule",
    "severity",
    "value",
    "threshold",
    "unit",
    "eta_secs",
    "subject_kind",
    "low_volume",
];

/// Build the payload of `report` in `privacy` mode.
pub fn build(report: &Report, privacy: AiPrivacy, inventory: &Inventory) -> Payload {
    let mut redactor = (privacy == AiPrivacy::Redacted).then(|| Redactor::new(inventory));
    let mut text = |s: &str| -> Value {
        match &mut redactor {
            Some(r) => Value::String(r.redact(s)),
            None => Value::String(s.to_string()),
        }
    };
    let findings: Vec<Value> = report
        .findings
        .iter()
        .map(|f| {
            let mut o = json!({
                "rule": f.rule,
                "severity": f.severity,
                "value": round(f.value),
                "threshold": round(f.threshold),
                "unit": f.unit,
                "eta_secs": f.eta_secs.map(round),
                "subject_kind": f.subject.kind,
                "low_volume": f.low_volume,
            });
            if privacy != AiPrivacy::Summary {
                let m = o.as_object_mut().expect("an object");
                m.insert("title".into(), text(&f.title));
                m.insert("cause".into(), text(&f.cause));
                m.insert("impact".into(), text(&f.impact));
                m.insert(
                    "evidence".into(),
                    Value::Array(f.evidence.iter().map(|e| text(e)).collect()),
                );
                m.insert(
                    "fix".into(),
                    Value::Array(f.fix.iter().map(|e| text(e)).collect()),
                );
                let s = &f.subject;
                let mut subject = serde_json::Map::new();
                subject.insert("name".into(), text(&s.name));
                if let Some(pod) = &s.pod {
                    subject.insert("pod".into(), text(pod));
                }
                if let Some(c) = &s.attribution.container {
                    subject.insert("container".into(), text(c));
                }
                if let Some(w) = &s.attribution.workload {
                    subject.insert("workload".into(), text(&format!("{} {}", w.kind, w.name)));
                }
                if let Some(n) = &s.node {
                    subject.insert("node".into(), text(n));
                }
                m.insert("subject".into(), Value::Object(subject));
            }
            o
        })
        .collect();
    let domains: Vec<Value> = report
        .domains
        .iter()
        .map(|d| json!({"domain": d.domain, "observed": d.observed}))
        .collect();
    let h = &report.host;
    let mut doc = json!({
        "privacy": privacy.name(),
        "status": report.status,
        "window_secs": report.window.duration_ms as f64 / 1000.0,
        "host": {"cpus": h.cpus, "memory_bytes": h.memory_bytes},
        "findings": findings,
        "domains": domains,
        "lost": {
            "syscall_samples": report.lost.syscall_samples,
            "sched_samples": report.lost.sched_samples,
            "map_full": report.lost.map_full,
        },
    });
    if privacy != AiPrivacy::Summary {
        let host = doc["host"].as_object_mut().expect("an object");
        host.insert("kernel".into(), text(&h.kernel));
        host.insert("environment".into(), text(&h.environment));
    }
    Payload {
        privacy,
        text: serde_json::to_string_pretty(&doc).unwrap_or_default(),
        redactor,
    }
}

/// Numbers to four significant decimals: enough to reason with, and a stable cache key.
fn round(v: f64) -> f64 {
    if v.is_finite() {
        (v * 10_000.0).round() / 10_000.0
    } else {
        0.0
    }
}

/// The instructions sent with `kerno explain --ai`'s unknown lines.
pub const EXPLAIN_PROMPT: &str = "You assist an on-call SRE. These Linux kernel log messages \
(JSON, with how often each came) are not in the offline knowledge base of Kerno, a kernel \
diagnosis tool. Names, addresses and ids may be replaced by placeholders such as <pid-1> or \
<ip-2>: use them exactly as written. For each message, in at most three short sentences: what \
the kernel is saying, whether it is harmless or needs action, and what to check or do. Say \
so plainly when a message is too vague to tell. Plain text, at most 250 words in all.";

/// How many distinct unknown lines one request carries at most.
pub const UNKNOWN_LINES_SENT: usize = 40;

/// The payload of `kerno explain --ai`: the unknown lines (the first
/// [`UNKNOWN_LINES_SENT`]), each with its count, redacted in `redacted` mode.
pub fn build_unknown(
    e: &kerno_core::explain::Explanation,
    privacy: AiPrivacy,
    inventory: &Inventory,
) -> Payload {
    let mut redactor = (privacy == AiPrivacy::Redacted).then(|| Redactor::new(inventory));
    let lines: Vec<Value> = e
        .unknown
        .iter()
        .take(UNKNOWN_LINES_SENT)
        .map(|u| {
            let text = match &mut redactor {
                Some(r) => r.redact(&u.text),
                None => u.text.clone(),
            };
            json!({"message": text, "count": u.count})
        })
        .collect();
    let doc = json!({
        "privacy": privacy.name(),
        "unknown_kernel_messages": lines,
        "not_sent": e.unknown.len().saturating_sub(UNKNOWN_LINES_SENT),
    });
    Payload {
        privacy,
        text: serde_json::to_string_pretty(&doc).unwrap_or_default(),
        redactor,
    }
}
