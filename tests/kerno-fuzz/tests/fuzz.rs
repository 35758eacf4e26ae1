//! Fuzz targets for every input that crosses a trust boundary, on the stable toolchain:
//! a seeded mutator of valid corpora (`kerno_fuzz`). Each target asserts zero panics and
//! prints its figures (inputs, panics, slowest input). Bounded for CI; a longer run:
//! `KERNO_FUZZ_CASES=1000000 KERNO_FUZZ_SECS=600 cargo test --release -p kerno-fuzz`
//! (docs/reliability.md).

use std::path::Path;

use kerno_core::{
    Config, Report, Signals, ThresholdRegistry,
    config::{parse_bool, parse_domains, parse_duration},
    explain::{ExplainOptions, explain_text, parse_since},
    render::{self, PrettyOptions},
};
use kerno_fuzz::{Budget, assert_no_panics, run};

fn text(b: &[u8]) -> &str {
    std::str::from_utf8(b).unwrap_or("\u{fffd}")
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The target must have gone past the parser on some inputs, or it tested nothing deep.
fn accepted_some(f: &kerno_fuzz::Figures, accepted: u64) {
    eprintln!("fuzz {}: {accepted} inputs accepted by the parser", f.name);
    assert!(accepted > 0, "{}: no input was accepted", f.line());
}

fn registry() -> ThresholdRegistry {
    ThresholdRegistry::of(&kerno_rules::builtin())
}

fn root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// Durations, sizes, thresholds, counts, percentages and booleans: every text parser a flag,
/// a `KERNO_*` variable, the config file, the agent's query string and chaos share.
#[test]
fn fuzz_durations_and_thresholds() {
    let corpus: Vec<Vec<u8>> = [
        "30s",
        "500ms",
        "2m",
        "1h",
        "10",
        "1.5s",
        "0s",
        "5min",
        "2d",
        "250",
        "10ms",
        "500us",
        "100ns",
        " 7s ",
        "true",
        "off",
        "syscalls,tcp",
        "EAGAIN,EINTR",
        "99.5",
        "1e3",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    let reg = registry();
    let keys: Vec<String> = reg.keys().iter().map(|k| k.to_string()).collect();
    let f = run(
        "durations-thresholds",
        &corpus,
        &["ms", "s", "m", "h", "d", "e", "-", ".", ",", "%", " "],
        Budget::from_env(200_000, 6.0),
        |b| {
            let s = text(b);
            if let Ok(d) = parse_duration(s) {
                let _ = kerno_core::config::format_duration(d);
                let _ = kerno_core::config::check_window("duration", d);
            }
            let _ = parse_since(s);
            let _ = kerno_core::stream::parse_threshold(s);
            let _ = parse_bool(s);
            let _ = parse_domains(s);
            let mut t = kerno_core::Thresholds::default();
            let key = &keys[b.len() % keys.len()];
            let _ = reg.set_text(&mut t, key, s);
            let mut c = Config::default();
            for var in [
                "KERNO_DURATION",
                "KERNO_WINDOW",
                "KERNO_AI_TIMEOUT",
                "KERNO_AI_MAX_TOKENS",
            ] {
                let _ = c.apply_env(&[(var.to_string(), s.to_string())], &reg);
            }
        },
    );
    assert_no_panics(&f);
}

/// The YAML config file (`--config`, `/etc/kerno/config.yaml`).
#[test]
fn fuzz_yaml_config() {
    let doc = read("docs/configuration.md");
    let example = doc
        .split("```yaml\n")
        .nth(1)
        .and_then(|s| s.split("```").next())
        .expect("docs/configuration.md has a yaml example")
        .to_string();
    let corpus: Vec<Vec<u8>> = [
        example.as_str(),
        &read("deploy/systemd/config.yaml"),
        "duration: 20s\noutput: json\nthresholds:\n  syscall_p99_ms: 250\n  runq_p99_ms: 7\n",
        "agent:\n  window: 5m\n  levels_every: 15s\nprobes:\n  domains: [syscalls, tcp]\n",
        "ai:\n  enabled: true\n  provider: ollama\n  timeout: 45s\n  cache_ttl: 0s\n",
        "thresholds:\n  benign_errnos: [EAGAIN]\n  custom:\n    x: 1.5\n",
        "a: &a [1, 2]\nb: [*a, *a]\n",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    let reg = registry();
    let mut accepted = 0u64;
    let f = run(
        "yaml-config",
        &corpus,
        &[
            ": ", "\n  ", "- ", "&a ", "*a", "!!str ", "[", "]", "{", "}", "'", "\"", "? ",
            "<<: *a", "---\n", "|\n", "#",
        ],
        Budget::from_env(50_000, 8.0),
        |b| {
            accepted += u64::from(Config::from_yaml(&lossy(b), "fuzz.yaml", &reg).is_ok());
        },
    );
    assert_no_panics(&f);
    accepted_some(&f, accepted);
}

/// A saved window or JSON report (`kerno doctor --from`, `kerno.load_signals`): parsed,
/// then every built-in rule runs over it and every renderer prints it, as `--from` does.
#[test]
fn fuzz_snapshots_and_reports() {
    let window = read("examples/python/incident.json");
    let rules = kerno_rules::builtin();
    let thresholds = kerno_core::Thresholds::default();
    let signals = kerno_core::parse_signals(&window).expect("the example window parses");
    let report_json = render::json(&kerno_core::evaluate(&signals, &rules, &thresholds));
    let corpus = vec![window.into_bytes(), report_json.into_bytes()];
    let mut accepted = 0u64;
    let f = run(
        "snapshots-reports",
        &corpus,
        &[
            "null",
            "[]",
            "{}",
            "\"\"",
            "-1",
            "1e400",
            "true",
            ",",
            "\"schema\":1",
        ],
        Budget::from_env(20_000, 15.0),
        |b| {
            if let Ok(s) = kerno_core::parse_signals(&lossy(b)) {
                accepted += 1;
                let report: Report = kerno_core::evaluate(&s, &rules, &thresholds);
                let _ = render::pretty(&report, PrettyOptions { color: false });
                let _ = render::json(&report);
                let _ = render::html_page(&report);
                let _ = serde_json::to_string(&s as &Signals);
            }
        },
    );
    assert_no_panics(&f);
    accepted_some(&f, accepted);
}

/// `kerno explain`'s input lines (stdin, a MESSAGE, the kernel log).
#[test]
fn fuzz_explain_lines() {
    let corpus_text = read("kerno-core/tests/data/explain-corpus.txt");
    let corpus: Vec<Vec<u8>> = corpus_text
        .split("\n> ")
        .skip(1)
        .filter_map(|block| {
            block
                .split_once('\n')
                .map(|(_, line)| line.as_bytes().to_vec())
        })
        .chain([corpus_text.as_bytes().to_vec()])
        .collect();
    assert!(corpus.len() > 20, "the explain corpus has lines");
    let opts = ExplainOptions::offline(1_767_000_000_000);
    let f = run(
        "explain-lines",
        &corpus,
        &[
            "[",
            "]",
            "pid=",
            "Killed process ",
            "oom-kill:",
            "\x1b[",
            "\r",
            "\t",
            "<6>",
            "6,1234,5678,-;",
            "kernel: ",
        ],
        Budget::from_env(50_000, 8.0),
        |b| {
            let e = explain_text(b, "stdin", &opts);
            let _ = kerno_core::explain::pretty(&e);
            let _ = serde_json::to_string(&e);
            let _ = kerno_core::explain::kmsg::parse_record(b);
            let _ = kerno_core::explain::kmsg::parse_journal_line(&lossy(b));
        },
    );
    assert_no_panics(&f);
}

/// The AI providers' replies (each body under the three providers, with 200 and another
/// HTTP status), then the reply mapped back through
/// the redactor and rendered in the report, as `--ai` does.
#[test]
fn fuzz_ai_replies() {
    use kerno_core::config::AiProvider;
    let corpus: Vec<Vec<u8>> = [
        r#"{"id":"msg_1","type":"message","role":"assistant","content":[{"type":"text","text":"The disk <dev-1> is slow: <comm-1> (pid <pid-1>) waits 250 ms."}],"stop_reason":"end_turn"}"#,
        r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
        r#"{"choices":[{"index":0,"message":{"role":"assistant","content":"Restart <pod-1> in <ns-1>.","refusal":null},"finish_reason":"stop"}]}"#,
        r#"{"error":{"message":"You exceeded your quota","type":"insufficient_quota","code":"insufficient_quota"}}"#,
        r#"{"model":"llama3.1","message":{"role":"assistant","content":"<ip-1> retransmits 4%."},"done":true}"#,
        r#"{"error":"model not found"}"#,
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    let window = read("examples/python/incident.json");
    let signals = kerno_core::parse_signals(&window).unwrap();
    let mut report = kerno_core::evaluate(&signals, &kerno_rules::builtin(), &Default::default());
    let inventory = kerno_ai::Inventory::from_report(&report);
    let mut redactor = kerno_ai::Redactor::new(&inventory);
    let _ = redactor.redact(&render::json(&report));
    let providers = [
        AiProvider::Anthropic,
        AiProvider::Openai,
        AiProvider::Ollama,
    ];
    let statuses = [429u16, 500, 529, 404, 400, 401, 0, 999, 200];
    let mut accepted = 0u64;
    let f = run(
        "ai-replies",
        &corpus,
        &[
            "\\u0000",
            "\\ud800",
            "<pod-",
            "<ip-99>",
            ">",
            "null",
            "[]",
            "\"text\"",
            "\"content\":",
        ],
        Budget::from_env(50_000, 8.0),
        |b| {
            let body = lossy(b);
            let odd = statuses[b.len() % statuses.len()];
            for p in providers {
                let _ = kerno_ai::provider::parse(p, odd, &body);
                let Ok(t) = kerno_ai::provider::parse(p, 200, &body) else {
                    continue;
                };
                accepted += 1;
                let text = redactor.unmask(&t);
                report.analysis = Some(kerno_core::Analysis::Ok {
                    provider: p.name().into(),
                    model: "m".into(),
                    privacy: "redacted".into(),
                    text,
                    cached: false,
                });
                let _ = render::pretty(&report, PrettyOptions { color: false });
                let _ = render::html_page(&report);
            }
        },
    );
    assert_no_panics(&f);
    accepted_some(&f, accepted);
}

/// Every number leaf of `v`, as JSON pointers.
fn number_pointers(v: &serde_json::Value, at: String, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Number(_) => out.push(at),
        serde_json::Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                number_pointers(x, format!("{at}/{i}"), out);
            }
        }
        serde_json::Value::Object(o) => {
            for (k, x) in o {
                number_pointers(
                    x,
                    format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")),
                    out,
                );
            }
        }
        _ => {}
    }
}

/// A saved window whose structure stays valid and whose numbers are set to edge values
/// (zero, negative, `u64::MAX`, `1e300`, ...): what a hand-edited or corrupted snapshot
/// holds. Every rule and renderer runs over each.
#[test]
fn fuzz_snapshot_values() {
    use serde_json::{Value, json};
    let window: Value = serde_json::from_str(&read("examples/python/incident.json")).unwrap();
    let mut pointers = Vec::new();
    number_pointers(&window, String::new(), &mut pointers);
    // Edge values of the leaf's own kind, so that most windows still parse and reach the
    // rules; now and then one of another kind (a negative count, a float for a count).
    let unsigned = [
        json!(0),
        json!(1),
        json!(u64::MAX),
        json!(u64::MAX - 1),
        json!(u32::MAX as u64 + 1),
        json!(9007199254740993u64),
    ];
    let floats = [
        json!(0.0),
        json!(-1.0),
        json!(1e300),
        json!(-1e300),
        json!(5e-324),
        json!(0.5),
    ];
    let other = [json!(-1), json!(i64::MIN), json!(1.5)];
    let rules = kerno_rules::builtin();
    let thresholds = kerno_core::Thresholds::default();
    let mut rng = kerno_fuzz::Rng::new(Budget::from_env(0, 1.0).seed);
    // The inputs are the number of leaves to change and a seed for which; the target
    // builds the window itself.
    let corpus: Vec<Vec<u8>> = (1u8..=8).map(|n| vec![n]).collect();
    let mut accepted = 0u64;
    let f = run(
        "snapshot-values",
        &corpus,
        &[],
        Budget::from_env(20_000, 12.0),
        |b| {
            let mut v = window.clone();
            let n = 1 + b.iter().map(|x| *x as usize).sum::<usize>() % 24;
            for _ in 0..n {
                let p = rng.pick(&pointers);
                if let Some(x) = v.pointer_mut(p) {
                    *x = if rng.below(10) == 0 {
                        rng.pick(&other).clone()
                    } else if x.is_u64() {
                        rng.pick(&unsigned).clone()
                    } else {
                        rng.pick(&floats).clone()
                    };
                }
            }
            if let Ok(s) = kerno_core::parse_signals(&v.to_string()) {
                accepted += 1;
                let report = kerno_core::evaluate(&s, &rules, &thresholds);
                let _ = render::pretty(&report, PrettyOptions { color: false });
                let _ = render::json(&report);
                let _ = render::html_page(&report);
            }
        },
    );
    assert_no_panics(&f);
    accepted_some(&f, accepted);
}
