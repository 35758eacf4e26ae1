//! Redaction: every name, address, id and path in a finding's text replaced by a typed
//! placeholder (`<pod-1>`, `<ip-2>`), stable within one request and mapped back in the
//! reply; and a tripwire that refuses a payload in which anything known still shows.
//!
//! Names come first from the report itself (an [`Inventory`] of its hosts, nodes,
//! namespaces, pods, containers, workloads, units, cgroups, comms, pids and addresses),
//! which is more reliable than patterns; then detectors catch what the report does not
//! name as such: IPv4 and IPv6 addresses, MAC addresses, UUIDs and container ids, pids
//! in context (`pid 4121`, `/proc/4121/`, `kill 4121`), home paths, user ids, e-mail
//! addresses, FQDNs, kernel pointers and secrets (bearer tokens, AWS keys, JWTs,
//! `password=`, credentials in URLs).

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    net::{IpAddr, Ipv6Addr, SocketAddr},
    sync::OnceLock,
};

use regex::Regex;
use serde_json::Value;

/// What a placeholder stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// A host name (the machine's, or an FQDN in the text).
    Host,
    /// A Kubernetes node name.
    Node,
    /// A Kubernetes namespace.
    Namespace,
    /// A pod name.
    Pod,
    /// A container name.
    Container,
    /// A workload (Deployment, StatefulSet, ...) name.
    Workload,
    /// A pod uid, container id or other opaque id.
    Id,
    /// A process id.
    Pid,
    /// A process name.
    Comm,
    /// A user name or uid.
    User,
    /// A file path that names someone (a home directory).
    Path,
    /// A cgroup path.
    Cgroup,
    /// An IPv4 or IPv6 address.
    Ip,
    /// A MAC address.
    Mac,
    /// A systemd unit or slice.
    Unit,
    /// An e-mail address.
    Email,
    /// A secret (token, key, password).
    Secret,
    /// A kernel pointer (a KASLR leak).
    Pointer,
}

impl Kind {
    /// The placeholder's tag: `pod` in `<pod-1>`.
    pub fn tag(self) -> &'static str {
        match self {
            Kind::Host => "host",
            Kind::Node => "node",
            Kind::Namespace => "ns",
            Kind::Pod => "pod",
            Kind::Container => "container",
            Kind::Workload => "workload",
            Kind::Id => "id",
            Kind::Pid => "pid",
            Kind::Comm => "comm",
            Kind::User => "user",
            Kind::Path => "path",
            Kind::Cgroup => "cgroup",
            Kind::Ip => "ip",
            Kind::Mac => "mac",
            Kind::Unit => "unit",
            Kind::Email => "email",
            Kind::Secret => "secret",
            Kind::Pointer => "ptr",
        }
    }
}

/// The names a report knows, by kind: what must never leave the machine verbatim in the
/// `summary` and `redacted` modes.
#[derive(Clone, Debug, Default)]
pub struct Inventory {
    names: BTreeMap<String, Kind>,
    pids: BTreeSet<u32>,
}

impl Inventory {
    /// Every name in `report` (its findings and the signals behind them), found by the
    /// JSON keys that carry names.
    pub fn from_report(report: &kerno_core::Report) -> Inventory {
        let mut inv = Inventory::default();
        if let Ok(v) = serde_json::to_value(report) {
            inv.walk(&v, None);
        }
        inv
    }

    /// Every name in any JSON document, found by the same keys as in a report
    /// (`comm`, `pid`, `cgroup`, `pod`, ...).
    pub fn from_value(v: &Value) -> Inventory {
        let mut inv = Inventory::default();
        inv.walk(v, None);
        inv
    }

    /// Add a name of `kind`. Values shorter than two characters are ignored: they cannot
    /// be told from the text around them.
    pub fn add(&mut self, kind: Kind, value: &str) {
        let v = value.trim();
        if v.chars().count() >= 2 {
            self.names.entry(v.to_string()).or_insert(kind);
        }
    }

    /// Add a process id.
    pub fn add_pid(&mut self, pid: u32) {
        if pid > 0 {
            self.pids.insert(pid);
        }
    }

    /// How many names and pids it holds.
    pub fn len(&self) -> usize {
        self.names.len() + self.pids.len()
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The names, with their kinds.
    pub fn names(&self) -> impl Iterator<Item = (&str, Kind)> {
        self.names.iter().map(|(k, v)| (k.as_str(), *v))
    }

    /// The pids.
    pub fn pids(&self) -> impl Iterator<Item = u32> + '_ {
        self.pids.iter().copied()
    }

    fn walk(&mut self, v: &Value, parent: Option<&str>) {
        match v {
            Value::Object(map) => {
                for (k, child) in map {
                    match child {
                        Value::String(s) => self.classify(k, parent, s),
                        Value::Number(n) if is_pid_key(k) => {
                            if let Some(p) = n.as_u64().and_then(|p| u32::try_from(p).ok()) {
                                self.add_pid(p);
                            }
                        }
                        _ => self.walk(child, Some(k)),
                    }
                }
            }
            Value::Array(items) => {
                for i in items {
                    self.walk(i, parent);
                }
            }
            _ => {}
        }
    }

    fn classify(&mut self, key: &str, parent: Option<&str>, value: &str) {
        match key {
            "hostname" => self.add(Kind::Host, value),
            "node" => self.add(Kind::Node, value),
            "comm" => self.add(Kind::Comm, value),
            "namespace" => self.add(Kind::Namespace, value),
            "pod_name" => self.add(Kind::Pod, value),
            "pod" => match value.split_once('/') {
                Some((ns, name)) => {
                    self.add(Kind::Namespace, ns);
                    self.add(Kind::Pod, name);
                }
                None => self.add(Kind::Pod, value),
            },
            "pod_uid" | "container_id" => self.add(Kind::Id, value),
            // `POD` is every pod's sandbox: not a name.
            "container" if value != "POD" => {
                // A process's `container` is its container id.
                let kind = if value.len() >= 12 && value.bytes().all(|b| b.is_ascii_hexdigit()) {
                    Kind::Id
                } else {
                    Kind::Container
                };
                self.add(kind, value)
            }
            "name" if parent == Some("workload") => self.add(Kind::Workload, value),
            // A finding's `unit` is a measurement unit; a systemd unit has a suffix.
            "unit" | "slice" if is_systemd_unit(value) => self.add(Kind::Unit, value),
            "cgroup" => self.add(Kind::Cgroup, value),
            "path" if parent == Some("cgroups") => self.add(Kind::Cgroup, value),
            "path" => self.add(Kind::Path, value),
            "user" | "username" => self.add(Kind::User, value),
            "local" | "remote" | "addr" | "address" | "saddr" | "daddr" | "peer" => {
                if let Some(ip) = parse_ip(value) {
                    self.add(Kind::Ip, &ip.to_string());
                    // The text may spell it as written, e.g. with a zone or brackets.
                    if let Some(raw) = value.rsplit_once(':').map(|(a, _)| a) {
                        let raw = raw.trim_start_matches('[').trim_end_matches(']');
                        if raw.parse::<IpAddr>().is_ok() {
                            self.add(Kind::Ip, raw);
                        }
                    }
                }
            }
            _ => {}
        }
    }
}

fn is_pid_key(k: &str) -> bool {
    matches!(k, "pid" | "tgid" | "ppid" | "tid")
}

fn is_systemd_unit(v: &str) -> bool {
    [
        ".service", ".scope", ".slice", ".socket", ".mount", ".timer", ".path", ".target",
    ]
    .iter()
    .any(|s| v.ends_with(s) && v.len() > s.len())
}

/// `10.0.0.5:443`, `[fe80::1]:22`, `10.0.0.5`, `::1`.
fn parse_ip(s: &str) -> Option<IpAddr> {
    let s = s.trim();
    if let Ok(sa) = s.parse::<SocketAddr>() {
        return Some(sa.ip());
    }
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(ip);
    }
    let (a, _) = s.rsplit_once(':')?;
    a.trim_start_matches('[').trim_end_matches(']').parse().ok()
}

/// A span of the text to replace.
#[derive(Clone, Copy, Debug)]
struct Span {
    start: usize,
    end: usize,
    kind: Kind,
}

/// Typed placeholders for one request, and the way back.
#[derive(Clone, Debug)]
pub struct Redactor {
    /// Known names, longest first.
    known: Vec<(String, Kind)>,
    pids: BTreeSet<u32>,
    forward: HashMap<String, String>,
    back: Vec<(String, String)>,
    counts: HashMap<Kind, usize>,
}

impl Redactor {
    /// A redactor for the names in `inventory`.
    pub fn new(inventory: &Inventory) -> Redactor {
        let mut known: Vec<(String, Kind)> =
            inventory.names().map(|(n, k)| (n.to_string(), k)).collect();
        known.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then(a.0.cmp(&b.0)));
        Redactor {
            known,
            pids: inventory.pids.clone(),
            forward: HashMap::new(),
            back: Vec::new(),
            counts: HashMap::new(),
        }
    }

    /// `text` with every known name and everything a detector finds replaced by its
    /// placeholder. The same value always gets the same placeholder.
    pub fn redact(&mut self, text: &str) -> String {
        let mut spans = Vec::new();
        for (name, kind) in &self.known {
            for start in occurrences(text, name, *kind) {
                spans.push(Span {
                    start,
                    end: start + name.len(),
                    kind: *kind,
                });
            }
        }
        for (start, end) in number_tokens(text) {
            if text[start..end]
                .parse::<u32>()
                .is_ok_and(|p| self.pids.contains(&p))
            {
                spans.push(Span {
                    start,
                    end,
                    kind: Kind::Pid,
                });
            }
        }
        spans.extend(detect(text));
        // Earliest first, the longest of those that start together; no overlaps.
        spans.sort_by(|a, b| a.start.cmp(&b.start).then(b.end.cmp(&a.end)));
        let mut out = String::with_capacity(text.len());
        let mut at = 0;
        for s in spans {
            if s.start < at {
                continue;
            }
            out.push_str(&text[at..s.start]);
            let p = self.placeholder(s.kind, &text[s.start..s.end]);
            out.push_str(&p);
            at = s.end;
        }
        out.push_str(&text[at..]);
        out
    }

    fn placeholder(&mut self, kind: Kind, original: &str) -> String {
        if let Some(p) = self.forward.get(original) {
            return p.clone();
        }
        let n = self.counts.entry(kind).or_insert(0);
        *n += 1;
        let p = format!("<{}-{}>", kind.tag(), n);
        self.forward.insert(original.to_string(), p.clone());
        self.back.push((p.clone(), original.to_string()));
        p
    }

    /// The reply with each placeholder mapped back to what it stands for.
    pub fn unmask(&self, text: &str) -> String {
        let mut out = text.to_string();
        // `<pod-1>` cannot match inside `<pod-10>`: the `>` ends every placeholder.
        for (p, original) in &self.back {
            if out.contains(p.as_str()) {
                out = out.replace(p.as_str(), original);
            }
        }
        out
    }

    /// `(placeholder, original)` pairs, in the order they were made.
    pub fn mapping(&self) -> &[(String, String)] {
        &self.back
    }
}

/// Why a payload was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Leak {
    /// What kind of value would have left the machine.
    pub kind: Kind,
    /// Where: the detector's or inventory's name for it.
    pub how: &'static str,
    /// The value (shown only locally: the report holds it already).
    pub value: String,
}

impl std::fmt::Display for Leak {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "a {} ({}) would have left the machine verbatim: {:?}",
            self.kind.tag(),
            self.how,
            self.value
        )
    }
}

/// The tripwire: `Err` when any string in `payload` (a JSON document) still holds a
/// value the inventory knows, or anything a detector finds. Run on the exact text that is
/// about to be sent, after redaction.
pub fn check(payload: &str, inventory: &Inventory) -> Result<(), Leak> {
    let v: Value = serde_json::from_str(payload).map_err(|_| Leak {
        kind: Kind::Secret,
        how: "payload is not JSON",
        value: String::new(),
    })?;
    let mut strings = Vec::new();
    collect_strings(&v, &mut strings);
    let known: Vec<(&str, Kind)> = inventory.names().collect();
    static PLACEHOLDER: OnceLock<Regex> = OnceLock::new();
    let placeholder = PLACEHOLDER.get_or_init(|| Regex::new(r"<[a-z]+-\d+>").expect("regex"));
    for s in strings {
        // A placeholder's tag (`<node-1>`) is not the name `node`.
        let s = placeholder.replace_all(s, "\u{1}");
        let s = s.as_ref();
        for (name, kind) in &known {
            if occurrences(s, name, *kind).next().is_some() {
                return Err(Leak {
                    kind: *kind,
                    how: "named in the report",
                    value: name.to_string(),
                });
            }
        }
        // A detector that matched only around a placeholder (`comm="<comm-1>"`) found
        // nothing new.
        if let Some(sp) = detect(s)
            .into_iter()
            .find(|sp| !s[sp.start..sp.end].contains('\u{1}'))
        {
            return Err(Leak {
                kind: sp.kind,
                how: "found by a detector",
                value: s[sp.start..sp.end].to_string(),
            });
        }
    }
    Ok(())
}

fn collect_strings<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
    match v {
        Value::String(s) => out.push(s),
        Value::Array(a) => a.iter().for_each(|i| collect_strings(i, out)),
        Value::Object(m) => m.values().for_each(|i| collect_strings(i, out)),
        _ => {}
    }
}

fn word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Where `name` occurs in `text` as a name: long names anywhere, short ones (under six
/// characters) only as a whole word, addresses only where no digit or dot extends them.
fn occurrences<'a>(text: &'a str, name: &'a str, kind: Kind) -> impl Iterator<Item = usize> + 'a {
    text.match_indices(name).filter_map(move |(i, _)| {
        let before = text[..i].chars().next_back();
        let after_text = &text[i + name.len()..];
        let mut after = after_text.chars();
        let a0 = after.next();
        let a1 = after.next();
        let ok = if kind == Kind::Ip {
            let v6 = name.contains(':');
            before.is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '.' || c == ':'))
                && a0.is_none_or(|c| !c.is_ascii_alphanumeric())
                && !(a0 == Some('.') && a1.is_some_and(|c| c.is_ascii_digit()))
                && !(v6 && a0 == Some(':') && a1.is_some_and(|c| c.is_ascii_hexdigit()))
        } else if name.len() >= 6 {
            true
        } else {
            before.is_none_or(|c| !word_char(c)) && a0.is_none_or(|c| !word_char(c))
        };
        ok.then_some(i)
    })
}

/// Maximal runs of ASCII digits not part of a word or a decimal number.
fn number_tokens(text: &str) -> Vec<(usize, usize)> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_digit() {
            let start = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            let before_ok =
                start == 0 || !(b[start - 1].is_ascii_alphanumeric() || b[start - 1] == b'.');
            let after_ok = i == b.len()
                || !(b[i].is_ascii_alphanumeric()
                    || (b[i] == b'.' && i + 1 < b.len() && b[i + 1].is_ascii_digit()));
            if before_ok && after_ok {
                out.push((start, i));
            }
        } else {
            i += 1;
        }
    }
    out
}

struct Detector {
    re: Regex,
    kind: Kind,
    /// Replace capture group 1 only (the value), not the context around it.
    group: bool,
    /// A further check on the match (an IPv6 address must parse).
    valid: fn(&str) -> bool,
}

fn always(_: &str) -> bool {
    true
}

fn ipv6_ok(s: &str) -> bool {
    let bare = s.split('%').next().unwrap_or(s);
    bare.bytes().any(|b| b.is_ascii_hexdigit()) && bare.parse::<Ipv6Addr>().is_ok()
}

fn detectors() -> &'static [Detector] {
    static D: OnceLock<Vec<Detector>> = OnceLock::new();
    D.get_or_init(|| {
        let d = |re: &str, kind, group, valid: fn(&str) -> bool| Detector {
            re: Regex::new(re).expect("detector regex"),
            kind,
            group,
            valid,
        };
        vec![
            // Secrets first: a token may look like anything else.
            d(r"(?i)\bbearer\s+([A-Za-z0-9._~+/=-]{8,})", Kind::Secret, true, always),
            d(r"\b(AKIA[0-9A-Z]{16})\b", Kind::Secret, true, always),
            d(r"\b(eyJ[\w-]+\.[\w-]+\.[\w-]+)", Kind::Secret, true, always),
            d(
                r#"(?i)\b(?:password|passwd|pwd|secret|token|api_key|apikey)\s*[=:]\s*([^\s,;'"]+)"#,
                Kind::Secret,
                true,
                always,
            ),
            d(r"://([^/\s:@]+:[^/\s@]+)@", Kind::Secret, true, always),
            d(
                r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b",
                Kind::Email,
                false,
                always,
            ),
            // Home directories name their user.
            d(
                r#"(?:/home|/Users)/[^\s/'"]+(?:/[^\s'",;)]*[^\s'",;).])?"#,
                Kind::Path,
                false,
                always,
            ),
            // `user@host` (ssh, scp): the user part; the host is a name of its own.
            d(r"\b([a-z_][a-z0-9_-]{0,31})@[A-Za-z0-9<]", Kind::User, true, always),
            d(r"(?i)\buid[=:]\s*(\d+)", Kind::User, true, always),
            // Audit and kernel `key=value` names: `comm="sshd"`, `exe="/usr/bin/x"`.
            d(r#"\b(?:comm|exe|name)="([^"]+)""#, Kind::Comm, true, always),
            d(r"\bffff[0-9a-f]{12}\b", Kind::Pointer, false, always),
            d(
                r"(?i)\b[0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12}\b",
                Kind::Id,
                false,
                always,
            ),
            d(r"\b[0-9a-f]{64}\b", Kind::Id, false, always),
            d(r"\b[0-9a-f]{12}\b", Kind::Id, false, |s| {
                s.bytes().any(|b| b.is_ascii_digit()) && s.bytes().any(|b| b.is_ascii_alphabetic())
            }),
            d(
                r"\b(?:[0-9A-Fa-f]{2}:){5}[0-9A-Fa-f]{2}\b",
                Kind::Mac,
                false,
                always,
            ),
            d(
                r"\b(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\b",
                Kind::Ip,
                false,
                always,
            ),
            d(
                r"(?i)(?:[0-9a-f]{0,4}:){2,7}(?:[0-9a-f]{1,4}|(?:\d{1,3}\.){3}\d{1,3})?(?:%[A-Za-z0-9_.-]+)?",
                Kind::Ip,
                false,
                ipv6_ok,
            ),
            // Pids in the contexts the kernel and Kerno's own texts use.
            d(r"(?i)\bpids?[ =:#]+(\d+)", Kind::Pid, true, always),
            d(r"/proc/(\d+)(?:/|\b)", Kind::Pid, true, always),
            d(r"(?i)\bkilled process (\d+)", Kind::Pid, true, always),
            d(r"\bkill(?:\s+-[A-Z0-9]+)*\s+(\d+)", Kind::Pid, true, always),
            d(r"\s-[pt]\s*(\d+)\b", Kind::Pid, true, always),
            d(r"\[(\d+)\]", Kind::Pid, true, always),
            d(
                r"(?i)\b(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+(?:internal|local|localdomain|lan|corp|home|intra|svc|com|net|org|io|cloud|dev|ai|co|uk|de)\b",
                Kind::Host,
                false,
                always,
            ),
        ]
    })
}

fn detect(text: &str) -> Vec<Span> {
    let mut out = Vec::new();
    for d in detectors() {
        for c in d.re.captures_iter(text) {
            let m = if d.group { c.get(1) } else { c.get(0) };
            let Some(m) = m else { continue };
            if m.as_str().is_empty() || !(d.valid)(m.as_str()) {
                continue;
            }
            out.push(Span {
                start: m.start(),
                end: m.end(),
                kind: d.kind,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inv() -> Inventory {
        let mut i = Inventory::default();
        i.add(Kind::Pod, "checkout-api-7d9f8b6c5-x2k4q");
        i.add(Kind::Namespace, "payments");
        i.add(Kind::Comm, "api");
        i.add(Kind::Ip, "10.1.2.3");
        i.add_pid(4121);
        i
    }

    #[test]
    fn known_names_and_detectors() {
        let mut r = Redactor::new(&inv());
        let t = "api (pid 4121) in payments/checkout-api-7d9f8b6c5-x2k4q leaks; \
                 ls /proc/4121/fd; peer 10.1.2.3:443 and 10.1.2.30, fe80::1%eth0, \
                 aa:bb:cc:dd:ee:ff, /home/alice/x, db.prod.internal, Bearer abcdefghijk";
        let out = r.redact(t);
        for leak in [
            "4121",
            "payments",
            "checkout",
            "10.1.2.3",
            "fe80",
            "aa:bb",
            "alice",
            "prod",
            "abcdefghijk",
        ] {
            assert!(!out.contains(leak), "{leak} in {out}");
        }
        assert!(
            out.starts_with("<comm-1> (pid <pid-1>) in <ns-1>/<pod-1>"),
            "{out}"
        );
        assert!(out.contains("<ip-1>:443"), "port kept: {out}");
        assert_eq!(r.unmask(&out), t);
        check(&serde_json::to_string(&out).unwrap(), &inv()).unwrap();
        assert!(check(&serde_json::to_string(t).unwrap(), &inv()).is_err());
    }

    #[test]
    fn short_names_only_as_words() {
        let mut r = Redactor::new(&inv());
        assert_eq!(r.redact("rapid api calls"), "rapid <comm-1> calls");
        assert_eq!(r.redact("41210 calls, 4121.5 ms"), "41210 calls, 4121.5 ms");
        assert_eq!(
            r.redact("10.1.2.30"),
            "<ip-1>",
            "a different address, detected"
        );
    }

    #[test]
    fn placeholders_are_stable_and_do_not_collide() {
        let mut i = Inventory::default();
        for n in 0..12 {
            i.add(Kind::Pod, &format!("pod-name-{n:02}"));
        }
        let mut r = Redactor::new(&i);
        let t: Vec<String> = (0..12).map(|n| format!("pod-name-{n:02}")).collect();
        let out = r.redact(&t.join(" "));
        assert!(out.contains("<pod-10>") && out.contains("<pod-1>"));
        assert_eq!(r.redact("pod-name-00"), r.redact("pod-name-00"));
        assert_eq!(r.unmask(&out), t.join(" "));
    }

    #[test]
    fn inventory_from_report_json_keys() {
        let mut i = Inventory::default();
        let v = serde_json::json!({
            "findings": [{"unit": "ms", "subject": {"kind": "process", "pod": "ns1/pod1x",
                "unit": "nginx.service", "workload": {"kind": "Deployment", "name": "web"},
                "process": {"pid": 77, "comm": "nginx", "container": "POD"}}}],
            "signals": {"tcp": {"top_flows": [{"local": "[fe80::2]:22", "remote": "10.9.8.7:80"}]},
                        "memory": {"cgroups": [{"path": "/kubepods/x"}]}}
        });
        i.walk(&v, None);
        let names: BTreeMap<_, _> = i.names().collect();
        assert_eq!(names.get("ns1"), Some(&Kind::Namespace));
        assert_eq!(names.get("pod1x"), Some(&Kind::Pod));
        assert_eq!(names.get("nginx.service"), Some(&Kind::Unit));
        assert_eq!(names.get("web"), Some(&Kind::Workload));
        assert_eq!(names.get("nginx"), Some(&Kind::Comm));
        assert_eq!(names.get("fe80::2"), Some(&Kind::Ip));
        assert_eq!(names.get("10.9.8.7"), Some(&Kind::Ip));
        assert_eq!(names.get("/kubepods/x"), Some(&Kind::Cgroup));
        assert!(!names.contains_key("ms") && !names.contains_key("POD"));
        assert_eq!(i.pids().collect::<Vec<_>>(), vec![77]);
    }
}
