//! The Grafana dashboard and the Prometheus alert rules under `deploy/` (no root): the
//! dashboard has the fields Grafana requires and names only metrics the agent exports
//! (docs/metrics.md); the rules pass `promtool check rules` and their unit tests
//! (`promtool test rules`). `root_alerting.rs` evaluates both against a real Prometheus
//! scraping a real agent.

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
    process::Command,
};

use serde_json::Value;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn dashboard() -> Value {
    let path = repo().join("deploy/grafana/kerno-node.json");
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The `kerno_*` metric names docs/metrics.md documents, with the series a histogram adds.
fn documented_metrics() -> BTreeSet<String> {
    let text = std::fs::read_to_string(repo().join("docs/metrics.md")).unwrap();
    let mut out = BTreeSet::new();
    for l in text.lines().filter(|l| l.starts_with("| `kerno_")) {
        let name = l.trim_start_matches("| `").split('`').next().unwrap();
        out.insert(name.to_string());
        if l.contains("| histogram |") {
            for s in ["_bucket", "_sum", "_count"] {
                out.insert(format!("{name}{s}"));
            }
        }
    }
    out
}

/// The `kerno_*` names an expression uses.
fn metrics_in(expr: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = expr;
    while let Some(i) = rest.find("kerno_") {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        out.push(tail[..end].to_string());
        rest = &tail[end..];
    }
    out
}

#[test]
fn the_dashboard_has_what_grafana_requires() {
    let d = dashboard();
    for key in ["uid", "title"] {
        assert!(d[key].as_str().is_some_and(|s| !s.is_empty()), "no {key}");
    }
    assert!(
        d["uid"].as_str().unwrap().len() <= 40,
        "Grafana uids are at most 40 characters"
    );
    assert!(
        d["schemaVersion"].as_u64().is_some_and(|v| v >= 30),
        "schemaVersion: {}",
        d["schemaVersion"]
    );

    // Variables: the data source, then node and namespace queried from it.
    let vars = d["templating"]["list"].as_array().expect("templating.list");
    let var = |name: &str| {
        vars.iter()
            .find(|v| v["name"] == name)
            .unwrap_or_else(|| panic!("no ${name} variable"))
    };
    let ds = var("datasource");
    assert_eq!(ds["type"], "datasource");
    assert_eq!(ds["query"], "prometheus");
    for name in ["node", "namespace"] {
        let v = var(name);
        assert_eq!(v["type"], "query", "{name}");
        assert_eq!(v["datasource"]["uid"], "${datasource}", "{name}");
        let q = v["query"]["query"].as_str().unwrap();
        assert!(q.starts_with("label_values(kerno_"), "{name}: {q}");
        assert_eq!(v["includeAll"], true, "{name}");
        assert_eq!(
            v["allValue"], ".*",
            "{name}: All must match series without the label"
        );
    }

    // Panels: unique ids, a type, a place on the 24-column grid without overlaps; every
    // panel but a row has the data source variable and targets with a refId and an
    // expression that names documented metrics only and uses the node variable.
    let documented = documented_metrics();
    assert!(
        documented.contains("kerno_findings_firing"),
        "{documented:?}"
    );
    let panels = d["panels"].as_array().expect("panels");
    assert!(panels.len() >= 10);
    let mut ids = BTreeSet::new();
    let mut cells: BTreeSet<(u64, u64)> = BTreeSet::new();
    let mut seen_metrics = BTreeSet::new();
    for p in panels {
        let title = p["title"].as_str().expect("a panel without a title");
        let id = p["id"].as_u64().unwrap_or_else(|| panic!("{title}: no id"));
        assert!(ids.insert(id), "{title}: id {id} twice");
        assert!(
            p["type"].as_str().is_some_and(|t| !t.is_empty()),
            "{title}: no type"
        );
        let g = &p["gridPos"];
        let [h, w, x, y] = ["h", "w", "x", "y"].map(|k| {
            g[k].as_u64()
                .unwrap_or_else(|| panic!("{title}: gridPos.{k}"))
        });
        assert!(h > 0 && w > 0 && x + w <= 24, "{title}: gridPos {g}");
        for cx in x..x + w {
            for cy in y..y + h {
                assert!(
                    cells.insert((cx, cy)),
                    "{title}: overlaps another panel at {cx},{cy}"
                );
            }
        }
        if p["type"] == "row" {
            continue;
        }
        assert_eq!(p["datasource"]["uid"], "${datasource}", "{title}");
        assert_eq!(p["datasource"]["type"], "prometheus", "{title}");
        let targets = p["targets"]
            .as_array()
            .unwrap_or_else(|| panic!("{title}: no targets"));
        assert!(!targets.is_empty(), "{title}: no targets");
        for t in targets {
            assert!(
                t["refId"].as_str().is_some(),
                "{title}: a target without refId"
            );
            assert_eq!(t["datasource"]["uid"], "${datasource}", "{title}");
            let e = t["expr"]
                .as_str()
                .unwrap_or_else(|| panic!("{title}: no expr"));
            assert!(e.contains("$node"), "{title}: not filtered by $node: {e}");
            let names = metrics_in(e);
            assert!(!names.is_empty(), "{title}: no Kerno metric in {e}");
            for m in names {
                assert!(
                    documented.contains(&m),
                    "{title}: {m} is not in docs/metrics.md"
                );
                seen_metrics.insert(m);
            }
        }
    }
    // What the issue lists, each on some panel.
    for m in [
        "kerno_findings_firing",
        "kerno_syscall_errors_total",
        "kerno_syscall_duration_seconds_bucket",
        "kerno_sched_delay_seconds_bucket",
        "kerno_disk_io_duration_seconds_bucket",
        "kerno_tcp_retransmits_total",
        "kerno_tcp_rtt_seconds_bucket",
        "kerno_oom_kills_total",
        "kerno_process_fd_growth_per_second",
        "kerno_cgroup_memory_pressure_pct",
        "kerno_psi_avg10_pct",
        "kerno_events_lost_total",
    ] {
        assert!(seen_metrics.contains(m), "no panel shows {m}");
    }
    assert!(
        panels
            .iter()
            .any(|p| p["type"] != "row" && p["targets"].to_string().contains("$namespace")),
        "no panel uses $namespace"
    );
}

fn promtool(args: &[&str], dir: &Path) -> String {
    let o = Command::new("promtool")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("promtool (Debian package prometheus; scripts/setup.sh installs it)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(o.status.success(), "promtool {args:?}:\n{text}");
    text
}

#[test]
fn the_alert_rules_pass_promtool_and_their_unit_tests() {
    let dir = repo().join("deploy/prometheus");
    let out = promtool(&["check", "rules", "kerno-rules.yaml"], &dir);
    assert!(out.contains("SUCCESS: 6 rules found"), "{out}");
    let out = promtool(&["test", "rules", "kerno-rules.test.yaml"], &dir);
    assert!(out.contains("SUCCESS"), "{out}");
    // Every alert has a unit test.
    let rules = std::fs::read_to_string(dir.join("kerno-rules.yaml")).unwrap();
    let tests = std::fs::read_to_string(dir.join("kerno-rules.test.yaml")).unwrap();
    for l in rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert: "))
    {
        assert!(
            tests.contains(&format!("alertname: {l}")),
            "{l} has no unit test"
        );
    }
    // The rules name documented metrics only.
    let documented = documented_metrics();
    for m in metrics_in(&rules) {
        assert!(documented.contains(&m), "{m} is not in docs/metrics.md");
    }
}
