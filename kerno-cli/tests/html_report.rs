//! The HTML report in a real browser: `kerno doctor --from` a saved window where an fd leak,
//! an OOM on its way, failing syscalls, retransmits, run-queue delay and slow disk writes
//! all fire, written with `-o html` and `--save-html`, then opened by headless Chromium
//! (Debian's `chromium`, installed by scripts/setup.sh). The page must load without console
//! errors, hold every finding and chart, plot the report's own values (the fd chart ends at
//! the open count the finding names), and its screenshots are kept in target/ for people to
//! look at. Needs no root.

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
    time::Instant,
};

use kerno_core::{
    CgroupMemory, DiskDevice, DiskOp, DiskSignals, FdProcess, FdSignals, Histogram, Host,
    MemorySignals, Process, ProcessErrors, SchedSignals, Series, Signals, SyscallSignals,
    SyscallStat, TcpSignals, Window,
};

const MS: u64 = 1_000_000;
const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

fn series(f: impl Fn(u64) -> f64) -> Series {
    Series::from_points((0..=10).map(|i| (i * 1000, f(i))))
}

/// Rates and p99s have a point at the end of each interval.
fn per_interval(f: impl Fn(u64) -> f64) -> Series {
    Series::from_points((1..=10).map(|i| (i * 1000, f(i))))
}

fn hist(parts: &[(u64, u64)]) -> Histogram {
    let mut h = Histogram::new();
    for (v, n) in parts {
        h.record_n(*v, *n);
    }
    h
}

/// A 10 s window on a node in trouble, with the per-second series a collector fills.
fn window() -> Signals {
    let leaky = Process {
        pid: 4242,
        comm: "leaky-api".into(),
        ..Process::default()
    };
    let nr = kerno_probes::syscalls::number("openat").unwrap_or(257);
    Signals {
        schema: kerno_core::SCHEMA_VERSION,
        host: Host {
            hostname: "node-7".into(),
            kernel: "6.18.0".into(),
            cpus: 8,
            memory_bytes: 16 * GIB,
            environment: "kubernetes".into(),
            node: "node-7".into(),
        },
        window: Window {
            start_unix_ms: 1_796_000_000_000,
            duration_ms: 10_000,
        },
        collector_pid: 999,
        syscalls: Some(SyscallSignals {
            total_calls: 20_000,
            total_errors: 3_000,
            syscalls: vec![SyscallStat {
                nr,
                name: "openat".into(),
                wait: false,
                count: 20_000,
                errors: 3_000,
                errnos: [("EMFILE".to_string(), 3_000)].into(),
                latency: hist(&[(8_000, 19_000), (2 * MS, 1_000)]),
                top_errors: vec![ProcessErrors {
                    process: leaky.clone(),
                    errno: "EMFILE".into(),
                    count: 3_000,
                }],
                top_slow: Vec::new(),
            }],
            calls_series: per_interval(|_| 2_000.0),
            errors_series: per_interval(|i| if i > 4 { 500.0 } else { 0.0 }),
            p99_series: per_interval(|i| (1 + i) as f64 * 200_000.0),
        }),
        tcp: Some(TcpSignals {
            retransmits: 600,
            segments_out: 10_000,
            retrans_segs: 600,
            netns_count: 1,
            rtt: hist(&[(300_000, 5_000)]),
            retransmits_series: per_interval(|i| 40.0 + 4.0 * i as f64),
            ..TcpSignals::default()
        }),
        sched: Some(SchedSignals {
            runq_delay: hist(&[(40_000, 9_700), (30 * MS, 300)]),
            p99_series: per_interval(|i| (20 + i) as f64 * MS as f64),
            ..SchedSignals::default()
        }),
        disk: Some(DiskSignals {
            devices: vec![DiskDevice {
                dev: "8:0".into(),
                name: "sda".into(),
                ops: vec![DiskOp {
                    op: "write".into(),
                    count: 400,
                    bytes: 400 * 65_536,
                    errors: 0,
                    latency: hist(&[(2 * MS, 360), (450 * MS, 40)]),
                }],
                p99_series: per_interval(|i| (300 + 20 * i) as f64 * MS as f64),
            }],
        }),
        fds: Some(FdSignals {
            processes: vec![FdProcess {
                process: leaky.clone(),
                opens: 1_000,
                closes: 100,
                open_fds: Some(900),
                soft_limit: Some(1024),
                net_per_interval: vec![90; 10],
                net_series: series(|i| 90.0 * i as f64),
            }],
        }),
        memory: Some(MemorySignals {
            total_bytes: 16 * GIB,
            available_start_bytes: 9 * GIB,
            available_end_bytes: 9 * GIB - 30 * MIB,
            cgroups: vec![CgroupMemory {
                path: "/kubepods/burstable/pod1/cart".into(),
                version: 2,
                usage_start_bytes: 480 * MIB,
                usage_bytes: 510 * MIB,
                limit_bytes: 512 * MIB,
                working_set_start_bytes: Some(470 * MIB),
                working_set_bytes: Some(500 * MIB),
                pod: Some("shop/cart-7d9f".into()),
                usage_series: series(|i| (480 + 3 * i) as f64 * MIB as f64),
                working_set_series: series(|i| (470 + 3 * i) as f64 * MIB as f64),
                ..CgroupMemory::default()
            }],
            used_series: series(|i| (7 * GIB + 3 * i * MIB) as f64),
            ..MemorySignals::default()
        }),
        ..Signals::default()
    }
}

fn target_dir() -> PathBuf {
    // target/debug/kerno -> target
    Path::new(env!("CARGO_BIN_EXE_kerno"))
        .ancestors()
        .nth(2)
        .expect("the binary is in target/<profile>/")
        .to_path_buf()
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("run");
    assert!(
        out.status.success(),
        "{cmd:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn kerno(args: &[&str]) -> Output {
    run(Command::new(env!("CARGO_BIN_EXE_kerno"))
        .args(args)
        .env_remove("KERNO_OUTPUT")
        .env("KERNO_SOCKET", "/nonexistent/kerno.sock"))
}

/// Headless Chromium with a fresh profile and nothing that phones home; `args` are the
/// action (`--dump-dom`, `--screenshot=...`) and the page. Returns stdout and stderr.
fn chromium(profile: &Path, args: &[String]) -> (String, String) {
    let bin = ["chromium", "chromium-browser"]
        .into_iter()
        .find(|b| Command::new(b).arg("--version").output().is_ok())
        .expect("chromium is not installed: run scripts/setup.sh (Debian package chromium)");
    let out = run(Command::new(bin)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--disable-dev-shm-usage",
            "--hide-scrollbars",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=2000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args));
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The value of attribute `attr` of the first element with `marker` in its opening tag.
fn attr(dom: &str, marker: &str, attr: &str) -> Option<String> {
    let at = dom.find(marker)?;
    let start = dom[..at].rfind('<')?;
    let tag = &dom[start..start + dom[start..].find('>')?];
    let key = format!(" {attr}=\"");
    let v = tag.find(&key)? + key.len();
    Some(tag[v..v + tag[v..].find('"')?].to_string())
}

/// A chart's value (written to two decimals) is the report's.
fn assert_close(chart: Option<String>, report: f64) {
    let v: f64 = chart.expect("attribute").parse().expect("a number");
    assert!((v - report).abs() < 0.006, "chart {v}, report {report}");
}

/// What a person sees, as a list: headings, findings (rule and severity) and charts (kind),
/// in page order.
fn outline(dom: &str) -> String {
    let mut out = Vec::new();
    let mut rest = dom;
    while let Some(i) = rest.find('<') {
        rest = &rest[i + 1..];
        let end = rest.find('>').unwrap_or(rest.len());
        let tag = &rest[..end];
        let get = |a: &str| attr(&format!("<{tag}>"), tag, a);
        if tag == "h2" {
            let text = &rest[end + 1..rest.find("</h2>").unwrap_or(end + 1)];
            out.push(format!("## {text}"));
        } else if tag.starts_with("li class=\"finding") {
            out.push(format!(
                "finding {} {}",
                get("data-severity").unwrap_or_default(),
                get("data-rule").unwrap_or_default()
            ));
        } else if tag.starts_with("figure") {
            out.push(format!("  chart {}", get("data-chart").unwrap_or_default()));
        } else if tag.starts_with("table") {
            out.push(format!(
                "  table {}",
                get("data-table").unwrap_or_else(|| "domains".into())
            ));
        }
    }
    out.join("\n")
}

#[test]
fn the_html_report_renders_in_a_browser_with_the_reports_values() {
    let t0 = Instant::now();
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("html-report");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let saved = dir.join("window.json");
    std::fs::write(&saved, serde_json::to_string(&window()).unwrap()).unwrap();
    let saved = saved.to_str().unwrap();

    // The report as JSON: what the page must agree with.
    let report: serde_json::Value =
        serde_json::from_slice(&kerno(&["doctor", "--from", saved, "-o", "json"]).stdout).unwrap();
    let findings = report["findings"].as_array().unwrap();
    let rules: Vec<&str> = findings
        .iter()
        .map(|f| f["rule"].as_str().unwrap())
        .collect();
    for want in [
        "fd-leak",
        "oom-imminent",
        "syscall-errors",
        "tcp-retransmits",
        "sched-contention",
        "disk-io",
    ] {
        assert!(rules.contains(&want), "{want} in {rules:?}");
    }

    // -o html on stdout, and --save-html beside the terminal report: the same page.
    let page = String::from_utf8(kerno(&["doctor", "--from", saved, "-o", "html"]).stdout).unwrap();
    let file = dir.join("report.html");
    let pretty = kerno(&[
        "doctor",
        "--from",
        saved,
        "--save-html",
        file.to_str().unwrap(),
    ]);
    assert!(String::from_utf8_lossy(&pretty.stdout).contains("Findings (6 critical"));
    let saved_page = std::fs::read_to_string(&file).unwrap();
    assert_eq!(page.trim_end(), saved_page.trim_end());
    assert!(page.starts_with("<!DOCTYPE html>"));
    for fetch in ["http://", "https://", "src=", "@import", "url(", "<link"] {
        assert!(!page.contains(fetch), "the page fetches nothing: {fetch}");
    }

    // The browser: loads it without console errors and keeps every finding and chart.
    let url = format!("file://{}", file.display());
    let (dom, log) = chromium(
        &dir.join("profile-dom"),
        &["--dump-dom".into(), url.clone()],
    );
    let console: Vec<&str> = log.lines().filter(|l| l.contains("CONSOLE")).collect();
    assert!(console.is_empty(), "console messages: {console:#?}");
    assert!(dom.contains("class=\"kerno-report\""), "{dom}");
    assert_eq!(
        dom.matches("<li class=\"finding").count(),
        findings.len(),
        "every finding is on the page"
    );
    for f in findings {
        let title = f["title"].as_str().unwrap();
        let escaped = title
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;");
        assert!(dom.contains(&escaped), "{title}");
    }
    for chart in [
        "fd-leak",
        "memory-cgroup",
        "syscall-errors",
        "syscall-calls",
        "syscall-p99",
        "runq-p99",
        "disk-p99",
        "tcp-retransmits",
        "memory-host",
        "syscall-latency",
        "runq-delay",
        "disk-latency",
        "tcp-rtt",
    ] {
        let marker = format!("data-chart=\"{chart}\"");
        assert!(dom.contains(&marker), "chart {chart}");
        let at = dom.find(&marker).unwrap();
        let fig = &dom[at..at + dom[at..].find("</figure>").unwrap()];
        assert!(
            fig.contains("<svg") && (fig.contains("<polyline") || fig.contains("<rect")),
            "chart {chart} draws something: {fig}"
        );
    }

    // The plotted values are the report's.
    let fd = findings.iter().find(|f| f["rule"] == "fd-leak").unwrap();
    let proc_ = &report["signals"]["fds"]["processes"][0];
    let open = proc_["open_fds"].as_u64().unwrap();
    assert!(
        fd["title"]
            .as_str()
            .unwrap()
            .contains(&format!("{open} of 1,024 open"))
    );
    let m = "data-chart=\"fd-leak\"";
    assert_eq!(attr(&dom, m, "data-last"), Some(open.to_string()));
    assert_eq!(attr(&dom, m, "data-limit"), Some("1024".into()));
    assert_eq!(attr(&dom, m, "data-points"), Some("11".into()));
    let eta = fd["eta_secs"].as_f64().unwrap();
    assert_close(attr(&dom, m, "data-eta-secs"), eta);
    let oom = findings
        .iter()
        .find(|f| f["rule"] == "oom-imminent")
        .unwrap();
    let m = "data-chart=\"memory-cgroup\"";
    let cg = &report["signals"]["memory"]["cgroups"][0];
    assert_eq!(
        attr(&dom, m, "data-last"),
        Some(cg["working_set_bytes"].as_u64().unwrap().to_string())
    );
    assert_eq!(
        attr(&dom, m, "data-limit"),
        Some(cg["limit_bytes"].as_u64().unwrap().to_string())
    );
    assert_close(
        attr(&dom, m, "data-eta-secs"),
        oom["eta_secs"].as_f64().unwrap(),
    );
    let errs = report["signals"]["syscalls"]["errors_series"]
        .as_array()
        .unwrap();
    assert_eq!(
        attr(&dom, "data-chart=\"syscall-errors\"", "data-last"),
        Some(errs.last().unwrap()[1].as_f64().unwrap().to_string())
    );
    let runq = &report["signals"]["sched"]["runq_delay"];
    assert_eq!(
        attr(&dom, "data-chart=\"runq-delay\"", "data-count"),
        Some(runq["count"].as_u64().unwrap().to_string())
    );
    assert_eq!(
        attr(&dom, "data-chart=\"runq-delay\"", "data-p99-ns"),
        Some(runq["p99_ns"].as_u64().unwrap().to_string())
    );
    // A p99 chart draws its rule's threshold (run-queue p99 above 5 ms warns).
    let sched = findings
        .iter()
        .find(|f| f["rule"] == "sched-contention")
        .unwrap();
    assert_close(
        attr(&dom, "data-chart=\"runq-p99\"", "data-threshold"),
        sched["threshold"].as_f64().unwrap() * 1e6,
    );
    // The projection to the limit is drawn, dashed (the style the browser applied).
    assert!(dom.contains("class=\"eta\""));

    insta::assert_snapshot!("html_report_outline", outline(&dom));

    // Screenshots for people: light, and dark as prefers-color-scheme asks.
    let target = target_dir();
    for (name, extra) in [
        ("report-screenshot.png", None),
        ("report-screenshot-dark.png", Some("--force-dark-mode")),
    ] {
        let png = target.join(name);
        let _ = std::fs::remove_file(&png);
        let mut args = vec![
            format!("--screenshot={}", png.display()),
            "--window-size=1100,3000".into(),
        ];
        args.extend(extra.map(String::from));
        args.push(url.clone());
        let (_, log) = chromium(&dir.join(format!("profile-{name}")), &args);
        let console: Vec<&str> = log.lines().filter(|l| l.contains("CONSOLE")).collect();
        assert!(console.is_empty(), "console messages: {console:#?}");
        let bytes = std::fs::read(&png).unwrap_or_else(|e| panic!("{}: {e}", png.display()));
        assert!(
            bytes.starts_with(b"\x89PNG") && bytes.len() > 20_000,
            "{}",
            png.display()
        );
    }
    // Printed: every finding unfolded by the page's script, on A4/Letter pages.
    let pdf = dir.join("report.pdf");
    let (_, log) = chromium(
        &dir.join("profile-pdf"),
        &[
            format!("--print-to-pdf={}", pdf.display()),
            "--no-pdf-header-footer".into(),
            url.clone(),
        ],
    );
    assert!(
        !log.lines().any(|l| l.contains("CONSOLE")),
        "console messages printing: {log}"
    );
    let bytes = std::fs::read(&pdf).unwrap();
    assert!(bytes.starts_with(b"%PDF"), "{}", pdf.display());
    // Page objects (`/Type /Page`, not the `/Type /Pages` tree).
    let pages = bytes
        .windows(12)
        .filter(|w| w.starts_with(b"/Type /Page") && w[11] != b's')
        .count();
    assert!(pages >= 2, "the report prints on several pages: {pages}");
    eprintln!(
        "html report: {} bytes, screenshots in {} ({:.1} s)",
        page.len(),
        target.display(),
        t0.elapsed().as_secs_f64()
    );
}
