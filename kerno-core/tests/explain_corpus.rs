//! The explain corpus (tests/data/explain-corpus.txt): every kernel message pattern of the
//! knowledge base, under every prefix style, with the classification and the fields each
//! line must give. No root needed.

use kerno_core::explain::{ExplainOptions, PATTERNS, explain_text};

const CORPUS: &str = include_str!("data/explain-corpus.txt");
/// 2026-09-21: places the syslog stamps that carry no year.
const NOW: u64 = 1_790_000_000_000;

struct Case {
    line_no: usize,
    expect: String,
    fields: Vec<(String, String)>,
    line: String,
}

/// `> id key=value key="a b"`.
fn parse_expect(s: &str) -> (String, Vec<(String, String)>) {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in s.chars() {
        match c {
            '"' => quoted = !quoted,
            ' ' if !quoted => {
                if !cur.is_empty() {
                    words.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        words.push(cur);
    }
    let id = words.remove(0);
    let fields = words
        .into_iter()
        .map(|w| {
            let (k, v) = w
                .split_once('=')
                .unwrap_or_else(|| panic!("bad field {w:?}"));
            (k.to_string(), v.to_string())
        })
        .collect();
    (id, fields)
}

/// An expectation line: its number, the pattern id and the fields.
type Expect = (usize, String, Vec<(String, String)>);

fn cases() -> Vec<Case> {
    let mut out = Vec::new();
    let mut pending: Option<Expect> = None;
    for (i, l) in CORPUS.lines().enumerate() {
        if let Some(e) = l.strip_prefix("> ") {
            assert!(
                pending.is_none(),
                "line {}: two expectations in a row",
                i + 1
            );
            let (id, fields) = parse_expect(e);
            pending = Some((i + 1, id, fields));
        } else if l.starts_with('#') || l.trim().is_empty() {
            continue;
        } else {
            let (line_no, expect, fields) = pending
                .take()
                .unwrap_or_else(|| panic!("line {}: a log line without expectation", i + 1));
            out.push(Case {
                line_no,
                expect,
                fields,
                line: l.to_string(),
            });
        }
    }
    out
}

fn check(c: &Case) -> Result<(), String> {
    let e = explain_text(c.line.as_bytes(), "corpus", &ExplainOptions::offline(NOW));
    if c.expect == "unknown" {
        if !e.groups.is_empty() || e.unknown.len() != 1 {
            return Err(format!(
                "expected unknown, got {:?}",
                e.groups.iter().map(|g| &g.pattern).collect::<Vec<_>>()
            ));
        }
        return Ok(());
    }
    let [g] = &e.groups[..] else {
        return Err(format!(
            "expected one {}, got groups {:?}, unknown {:?}",
            c.expect,
            e.groups.iter().map(|g| &g.pattern).collect::<Vec<_>>(),
            e.unknown
        ));
    };
    if g.pattern != c.expect {
        return Err(format!("expected {}, got {}", c.expect, g.pattern));
    }
    let f = &g.events[0].fields;
    for (k, v) in &c.fields {
        let got = f.get(k);
        if got.as_deref() != Some(v.as_str()) {
            return Err(format!("{k}: expected {v:?}, got {got:?} (fields {f:?})"));
        }
    }
    if g.events[0].time.is_empty() {
        return Err("no time read from the prefix".into());
    }
    Ok(())
}

#[test]
fn every_corpus_line_is_classified_with_its_fields() {
    let cases = cases();
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|c| {
            check(c)
                .err()
                .map(|e| format!("corpus line {}: {}\n    {}", c.line_no, e, c.line))
        })
        .collect();
    let passed = cases.len() - failures.len();
    eprintln!(
        "explain corpus: {passed}/{} lines pass ({:.1}%), {} patterns in the knowledge base",
        cases.len(),
        100.0 * passed as f64 / cases.len() as f64,
        PATTERNS.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(cases.len() >= 80, "{} lines", cases.len());
}

#[test]
fn the_corpus_covers_every_pattern() {
    let cases = cases();
    let missing: Vec<&str> = PATTERNS
        .iter()
        .map(|p| p.id)
        .filter(|id| !cases.iter().any(|c| c.expect == *id))
        .collect();
    assert!(
        missing.is_empty(),
        "patterns without a corpus line: {missing:?}"
    );
    assert!(cases.iter().any(|c| c.expect == "unknown"));
}
