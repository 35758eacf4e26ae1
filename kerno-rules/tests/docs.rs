//! docs/rules.md lists every rule and threshold from the rules' own declarations: this test
//! fails when the table there is stale, and rewrites it with KERNO_WRITE_DOCS=1.

const BEGIN: &str = "<!-- thresholds: generated from the rules (kerno-rules/tests/docs.rs) -->\n";
const END: &str = "<!-- end of thresholds -->\n";

fn table() -> String {
    let reg = kerno_rules::thresholds();
    let mut out = String::new();
    for r in kerno_rules::builtin() {
        out += &format!("\n### `{}`\n\n{}.\n\n", r.id(), r.description());
        let mine: Vec<_> = reg.iter().filter(|(id, _)| *id == r.id()).collect();
        if mine.is_empty() {
            out += "No thresholds.\n";
            continue;
        }
        out += "| key | default | valid | what it does |\n|---|---|---|---|\n";
        for (_, s) in mine {
            let unit = if s.unit.is_empty() || s.unit == "ratio" {
                String::new()
            } else {
                format!(" {}", s.unit)
            };
            let default = match s.default_value() {
                kerno_core::ThresholdValue::List(l) => l.join(", "),
                v => format!("{v}{unit}"),
            };
            out += &format!(
                "| `{}` | {} | {} | {} |\n",
                s.key,
                default,
                if s.range().is_empty() {
                    "a list".into()
                } else {
                    s.range()
                },
                s.doc
            );
        }
    }
    out
}

#[test]
fn rules_md_lists_every_threshold_as_declared() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/rules.md");
    let doc = std::fs::read_to_string(path).expect("docs/rules.md");
    let (Some(b), Some(e)) = (doc.find(BEGIN), doc.find(END)) else {
        panic!("docs/rules.md lacks the generated-section markers");
    };
    let fresh = format!("{}{BEGIN}{}\n{}", &doc[..b], table(), &doc[e..]);
    if std::env::var_os("KERNO_WRITE_DOCS").is_some_and(|v| v == "1") {
        std::fs::write(path, &fresh).unwrap();
        return;
    }
    assert!(
        fresh == doc,
        "docs/rules.md is stale: run `KERNO_WRITE_DOCS=1 cargo test -p kerno-rules --test docs`"
    );
}
