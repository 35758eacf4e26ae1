//! A generated corpus of reports with random names, addresses, pods and paths, written
//! the way Kerno's rules write their findings, through the `summary` and `redacted`
//! modes: nothing the generator planted may reach the payload, and unmasking every
//! redacted text gives back the original.

use kerno_ai::{Inventory, payload, redact};
use kerno_core::{
    Attribution, Finding, Host, OomKill, OomSignals, Process, Report, Severity, Signals, Subject,
    TcpFlow, TcpSignals, Window, Workload, config::AiPrivacy,
};
use serde_json::Value;

/// xorshift64*: reproducible without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn word(&mut self, len: usize) -> String {
        const A: &[u8] = b"abcdefghijklmnopqrstuvwxyz";
        (0..len)
            .map(|_| A[self.below(26) as usize] as char)
            .collect()
    }
    fn hex(&mut self, len: usize) -> String {
        const H: &[u8] = b"0123456789abcdef";
        let mut s: String = (0..len)
            .map(|_| H[self.below(16) as usize] as char)
            .collect();
        // A hex id with no digit or no letter is just a word or a number.
        s.replace_range(0..1, "a");
        s.replace_range(1..2, "7");
        s
    }
    fn ip4(&mut self) -> String {
        format!(
            "{}.{}.{}.{}",
            1 + self.below(223),
            self.below(256),
            self.below(256),
            1 + self.below(254)
        )
    }
    fn ip6(&mut self) -> String {
        format!(
            "fd{:02x}:{:x}::{:x}:{:x}",
            self.below(256),
            self.below(65536),
            self.below(65536),
            1 + self.below(65535)
        )
    }
    fn pid(&mut self) -> u32 {
        1000 + self.below(4_000_000) as u32
    }
}

/// One generated report and everything in it that must not leave the machine.
struct Case {
    report: Report,
    secrets: Vec<String>,
    pids: Vec<u32>,
}

fn case(rng: &mut Rng) -> Case {
    let host = format!("ip-{}-{}", rng.word(5), rng.below(1000));
    let node = format!("node-{}-{}", rng.word(6), rng.below(100));
    let ns = format!("ns-{}", rng.word(7));
    let workload = format!("{}-{}", rng.word(6), rng.word(4));
    let pod = format!("{workload}-{}-{}", rng.hex(9), rng.word(5));
    let container = format!("ctr-{}", rng.word(6));
    let cid = rng.hex(64);
    let uid = format!(
        "{}-{}-{}-{}-{}",
        rng.hex(8),
        rng.hex(4),
        rng.hex(4),
        rng.hex(4),
        rng.hex(12)
    );
    let cgroup = format!("/kubepods/burstable/pod{}/{cid}", uid.replace('-', "_"));
    let comm = format!("{}d", rng.word(6));
    let unit = format!("{}.service", rng.word(7));
    let user = format!("u{}", rng.word(6));
    let pid = rng.pid();
    let pid2 = rng.pid();
    let (local, remote) = (rng.ip4(), rng.ip4());
    let v6 = rng.ip6();
    let extra_ip = rng.ip4();
    let mac = (0..6)
        .map(|_| format!("{:02x}", rng.below(256)))
        .collect::<Vec<_>>()
        .join(":");
    let fqdn = format!("{}.{}.svc.cluster.local", rng.word(6), rng.word(5));
    let email = format!("{}@{}.com", rng.word(6), rng.word(7));
    let home = format!("/home/{user}/{}/data.db", rng.word(5));
    let token = format!("{}{}", rng.word(10), rng.hex(20));
    let ptr = format!("ffff{}", rng.hex(12));
    let port = 1024 + rng.below(60000);

    let attribution = Attribution {
        namespace: Some(ns.clone()),
        pod_name: Some(pod.clone()),
        pod_uid: Some(uid.clone()),
        container: Some(container.clone()),
        container_id: Some(cid.clone()),
        runtime: Some("containerd".into()),
        qos: Some("burstable".into()),
        workload: Some(Workload {
            kind: "Deployment".into(),
            name: workload.clone(),
            inferred: true,
        }),
        unit: None,
        slice: None,
    };
    let process = Process {
        pid,
        comm: comm.clone(),
        cgroup: Some(cgroup.clone()),
        pod: Some(format!("{ns}/{pod}")),
        container: Some(cid.clone()),
        attribution: attribution.clone(),
    };
    let subject = Subject {
        node: Some(node.clone()),
        ..Subject::process(&process)
    };
    let mut findings = vec![
        Finding {
            rule: "fd-leak".into(),
            severity: Severity::Critical,
            title: format!(
                "process {comm} (pid {pid}) leaks file descriptors: +60/s, 900 of 1024 open, limit in about 2 s"
            ),
            cause: format!(
                "It created 1,800 descriptors and closed 0 in 30 s. In pod {ns}/{pod} (container {container}), workload Deployment {workload}; it writes {home}."
            ),
            impact: "At 1024 open descriptors every open() fails with EMFILE.".into(),
            evidence: vec![
                format!("runs in {cgroup}"),
                format!("peer {local}:{port} → {remote}:443, also [{v6}]:8443 and {extra_ip}"),
                format!(
                    "interface {mac}; owner {email}; uid={}",
                    1000 + rng.below(5000)
                ),
                format!("resolver asked {fqdn}; kernel pointer {ptr}"),
                format!("child [{pid2}] of {pid}"),
            ],
            value: 60.0,
            threshold: 10.0,
            unit: "fd/s".into(),
            fix: vec![
                format!("ls /proc/{pid}/fd | wc -l"),
                format!("kubectl -n {ns} describe pod {pod}"),
                format!("prlimit --pid {pid} --nofile=4096:4096"),
                format!("kill -9 {pid2}"),
                format!("curl -H 'Authorization: Bearer {token}' http://{host}:9090/metrics"),
                format!("systemctl restart {unit}"),
                format!("ssh {user}@{node} sudo crictl inspect {}", &cid[..12]),
            ],
            eta_secs: Some(2.0),
            subject,
            low_volume: false,
        },
        Finding {
            rule: "tcp-retransmits".into(),
            severity: Severity::Warning,
            title: format!("TCP retransmits 3.2% of segments sent; most to {remote}:443"),
            cause: format!(
                "Segments are lost on the way to {remote}. Most retransmits go to {remote}:443 from {comm} (pid {pid})."
            ),
            impact: "Requests to that peer stall for a retransmit timeout.".into(),
            evidence: vec![format!(
                "{local}:{port} → {remote}:443: 120 retransmits ({comm} (pid {pid}))"
            )],
            value: 3.2,
            threshold: 2.0,
            unit: "%".into(),
            fix: vec![
                format!("ss -tin dst {remote}"),
                format!("mtr -rwzc 50 {remote}"),
            ],
            eta_secs: None,
            subject: Subject::host(&host),
            low_volume: rng.below(2) == 0,
        },
    ];
    for f in &mut findings {
        if f.subject.node.is_none() {
            f.subject.node = Some(node.clone());
        }
    }
    let mut signals = Signals {
        host: Host {
            hostname: host.clone(),
            kernel: "6.18.0".into(),
            cpus: 2,
            memory_bytes: 8 << 30,
            environment: "kubernetes".into(),
            node: node.clone(),
        },
        window: Window {
            start_unix_ms: 1_796_000_000_000,
            duration_ms: 30_000,
        },
        ..Signals::default()
    };
    signals.tcp = Some(TcpSignals {
        top_flows: vec![TcpFlow {
            local: format!("{local}:{port}"),
            remote: format!("{remote}:443"),
            retransmits: 120,
            process: Some(process.clone()),
        }],
        ..TcpSignals::default()
    });
    signals.oom = Some(OomSignals {
        kills: vec![OomKill {
            process: Process {
                pid: pid2,
                comm: format!("{}x", rng.word(5)),
                ..process.clone()
            },
            ..OomKill::default()
        }],
        ..OomSignals::default()
    });
    let mut report = Report::new(signals, findings);
    report.findings[1].subject.attribution.unit = Some(unit.clone());
    let secrets = vec![
        host, node, ns, workload, pod, container, cid, uid, cgroup, comm, unit, user, local,
        remote, v6, extra_ip, mac, fqdn, email, home, token, ptr,
    ];
    Case {
        report,
        secrets,
        pids: vec![pid, pid2],
    }
}

/// The text fields of the payload's findings.
fn texts(v: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for f in v["findings"].as_array().unwrap() {
        for k in ["title", "cause", "impact"] {
            if let Some(s) = f[k].as_str() {
                out.push(s.to_string());
            }
        }
        for k in ["evidence", "fix"] {
            for s in f[k].as_array().into_iter().flatten() {
                out.push(s.as_str().unwrap().to_string());
            }
        }
        if let Some(m) = f["subject"].as_object() {
            out.extend(m.values().filter_map(|s| s.as_str().map(String::from)));
        }
    }
    out
}

fn originals(r: &Report) -> Vec<String> {
    let mut out = Vec::new();
    for f in &r.findings {
        out.push(f.title.clone());
        out.push(f.cause.clone());
        out.push(f.impact.clone());
        out.extend(f.evidence.iter().cloned());
        out.extend(f.fix.iter().cloned());
        out.push(f.subject.name.clone());
        out.extend(f.subject.pod.iter().cloned());
        out.extend(f.subject.attribution.container.iter().cloned());
        out.extend(
            f.subject
                .attribution
                .workload
                .iter()
                .map(|w| format!("{} {}", w.kind, w.name)),
        );
        out.extend(f.subject.node.iter().cloned());
    }
    out
}

fn leaks(payload: &str, c: &Case) -> Vec<String> {
    let mut found: Vec<String> = c
        .secrets
        .iter()
        .filter(|s| payload.contains(s.as_str()))
        .cloned()
        .collect();
    let v: Value = serde_json::from_str(payload).unwrap();
    for t in texts(&v) {
        for p in &c.pids {
            let p = p.to_string();
            let token = t.split(|ch: char| !ch.is_ascii_digit()).any(|tok| tok == p);
            if token {
                found.push(format!("pid {p} in {t:?}"));
            }
        }
    }
    found
}

#[test]
fn a_thousand_reports_leak_nothing_and_unmask_exactly() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let (mut placeholders, mut fields) = (0usize, 0usize);
    for i in 0..1000 {
        let c = case(&mut rng);
        let inv = Inventory::from_report(&c.report);

        let summary = payload::build(&c.report, AiPrivacy::Summary, &inv);
        assert_eq!(
            leaks(&summary.text, &c),
            Vec::<String>::new(),
            "summary, case {i}"
        );
        redact::check(&summary.text, &inv).unwrap_or_else(|l| panic!("case {i}: {l}"));
        let v: Value = serde_json::from_str(&summary.text).unwrap();
        assert!(texts(&v).is_empty(), "summary carries no text");

        let red = payload::build(&c.report, AiPrivacy::Redacted, &inv);
        let l = leaks(&red.text, &c);
        assert!(l.is_empty(), "redacted, case {i}: {l:?}\n{}", red.text);
        redact::check(&red.text, &inv).unwrap_or_else(|l| panic!("case {i}: {l}"));
        let r = red.redactor.as_ref().unwrap();
        placeholders += r.mapping().len();
        let v: Value = serde_json::from_str(&red.text).unwrap();
        let masked = texts(&v);
        let mut want = originals(&c.report);
        want.sort();
        let mut back: Vec<String> = masked.iter().map(|t| r.unmask(t)).collect();
        back.sort();
        assert_eq!(back, want, "case {i}: unmasking gives back the originals");
        fields += masked.len();

        // The tripwire refuses what was not redacted.
        let full = payload::build(&c.report, AiPrivacy::Full, &inv);
        assert!(redact::check(&full.text, &inv).is_err(), "case {i}");
    }
    eprintln!("1000 reports: {fields} text fields, {placeholders} placeholders, 0 leaks");
    assert!(placeholders > 20_000, "{placeholders}");
}
