//! `kerno explain`: read the kernel's own words. Kernel log lines (pasted, piped from
//! `dmesg`/`journalctl -k`/`/var/log/kern.log`, or read from `/dev/kmsg`) are stripped of
//! their prefixes ([`prefix`]), matched against an offline knowledge base of kernel
//! messages ([`kb`]), grouped into reports (an OOM report or an Oops with its stack is one
//! event), their pid, comm, cgroup and pod pulled out, and repeated events counted ("3 OOM
//! kills in payments/checkout-api-7d9f8b6c5-x2k4q, last 4 min ago"). Lines nothing matches
//! are kept, honestly, as [`Explanation::unknown`].
//!
//! ```
//! use kerno_core::explain::{ExplainOptions, explain_text};
//!
//! let log = b"[ 5012.3] Memory cgroup out of memory: Killed process 4121 (java) total-vm:2097152kB, anon-rss:1048576kB, file-rss:0kB, shmem-rss:0kB, UID:1000 pgtables:2400kB oom_score_adj:0";
//! let e = explain_text(log, "stdin", &ExplainOptions::offline(0));
//! assert_eq!(e.groups[0].pattern, "oom-killed-memcg");
//! assert_eq!(e.groups[0].events[0].fields.pid, Some(4121));
//! ```

pub mod kb;
pub mod kmsg;
pub mod prefix;
mod render;
pub mod rule;

use std::collections::BTreeMap;
use std::sync::LazyLock;

use regex_lite::Regex;
use serde::{Deserialize, Serialize};

use crate::{Attribution, Severity, attribution};
pub use kb::{Block, Kind, PATTERNS, Pattern};
pub use kmsg::{KernelLog, read_kernel_log};
pub use prefix::LogTime;
pub use render::{pretty, pretty_rule};
pub use rule::{RuleExplanation, RuleThreshold, explain_rule};

/// Errors of `explain`.
#[derive(Debug, thiserror::Error)]
pub enum ExplainError {
    /// Neither `/dev/kmsg` nor the journal could be read.
    #[error(
        "cannot read the kernel log: /dev/kmsg: {kmsg}; journalctl -k: {journal} (pass lines as arguments or on stdin instead)"
    )]
    KernelLog {
        /// Why `/dev/kmsg` failed.
        kmsg: String,
        /// Why `journalctl -k` failed.
        journal: String,
    },
    /// No rule has this id.
    #[error("unknown rule {id:?}; the rules are: {known}")]
    UnknownRule {
        /// The id asked for.
        id: String,
        /// The valid ids, comma-separated.
        known: String,
    },
}

/// How to explain.
#[derive(Clone, Debug)]
pub struct ExplainOptions {
    /// Now, Unix milliseconds: places syslog stamps without a year and says how long ago
    /// the last event of a group was.
    pub now_unix_ms: u64,
    /// Look pod and container names up in this node's files (`/var/log/pods`, the
    /// runtime's records, under the host root), as `kerno doctor` does; without it a pod
    /// is named by its uid, from the cgroup path alone.
    pub resolve_names: bool,
}

impl ExplainOptions {
    /// From the cgroup paths alone, no file read; `now_unix_ms` as given (tests, replays).
    pub fn offline(now_unix_ms: u64) -> ExplainOptions {
        ExplainOptions {
            now_unix_ms,
            resolve_names: false,
        }
    }

    /// Now, with names looked up on this node.
    pub fn live() -> ExplainOptions {
        ExplainOptions {
            now_unix_ms: crate::unix_ms_now(),
            resolve_names: true,
        }
    }
}

/// The fields pulled out of an event's lines.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Fields {
    /// The process the event is about (the victim of an OOM kill, the crashed process).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// Its command name (`comm`, at most 15 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comm: Option<String>,
    /// Its cgroup path, as the kernel printed it (`task_memcg`, the pids cgroup).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroup: Option<String>,
    /// Whose the cgroup is (pod, container, unit), from the cgroup path (and, with
    /// [`ExplainOptions::resolve_names`], this node's files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attribution: Option<Attribution>,
    /// One line naming the pod, container or unit (`payments/checkout-api-... (container
    /// api)`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub whose: Option<String>,
    /// The block device, filesystem device or network interface.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// Every other field the message carries (`usage_kb`, `limit_kb`, `address`, `port`,
    /// `function`, `module`, ...), by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub other: BTreeMap<String, String>,
}

impl Fields {
    /// A field by name (`pid`, `comm`, `cgroup`, `device`, `pod`, `namespace`,
    /// `pod_name`, `unit`, or one of [`Fields::other`]).
    pub fn get(&self, name: &str) -> Option<String> {
        match name {
            "pid" => self.pid.map(|p| p.to_string()),
            "comm" => self.comm.clone(),
            "cgroup" => self.cgroup.clone(),
            "device" => self.device.clone(),
            "pod" => self.attribution.as_ref().and_then(Attribution::pod),
            "unit" => self.attribution.as_ref().and_then(|a| a.unit.clone()),
            "namespace" => self.attribution.as_ref().and_then(|a| a.namespace.clone()),
            "pod_name" => self.attribution.as_ref().and_then(|a| a.pod_name.clone()),
            _ => self.other.get(name).cloned(),
        }
    }
}

/// One occurrence: a single message, or a multi-line report read as one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// The knowledge-base entry that explains it (the most telling of its lines).
    pub pattern: String,
    /// The entries each of its recognised lines matched, in order.
    pub parts: Vec<String>,
    /// When its first line was logged.
    #[serde(default, skip_serializing_if = "LogTime::is_empty")]
    pub time: LogTime,
    /// The line the explanation comes from (prefixes removed).
    pub headline: String,
    /// What its lines say.
    pub fields: Fields,
    /// How many more times the kernel said it was printed but suppressed
    /// (`callbacks suppressed`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub suppressed: u64,
    /// Its lines, prefixes removed (the first [`MAX_EVENT_LINES`]).
    pub lines: Vec<String>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Lines kept per event; a report's remaining lines are counted, not kept.
pub const MAX_EVENT_LINES: usize = 120;

/// Events explained by the same entry about the same thing, counted together.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Group {
    /// The knowledge-base entry.
    pub pattern: String,
    /// Its title.
    pub title: String,
    /// How bad it usually is.
    pub severity: Severity,
    /// Occurrences: events, plus the ones the kernel suppressed.
    pub count: u64,
    /// What the events are about (`pod payments/checkout-api-...`, `device sda`), when
    /// they name it: the field and its value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<(String, String)>,
    /// One line: `3 OOM kills in payments/checkout-api-7d9f8b6c5-x2k4q, last 4 min ago`.
    pub summary: String,
    /// When the first and the last were logged.
    #[serde(default, skip_serializing_if = "LogTime::is_empty")]
    pub first: LogTime,
    /// See `first`.
    #[serde(default, skip_serializing_if = "LogTime::is_empty")]
    pub last: LogTime,
    /// What it means.
    pub meaning: String,
    /// Likely causes.
    pub causes: Vec<String>,
    /// What to check next: commands, filled with the last event's fields.
    pub check: Vec<String>,
    /// The fix.
    pub fix: Vec<String>,
    /// The message's format as the kernel prints it.
    pub kernel_format: String,
    /// The kernel source that prints it.
    pub kernel_source: String,
    /// The events, oldest first.
    pub events: Vec<Event>,
}

/// A line the knowledge base does not know, with how often it came.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Unknown {
    /// The message, prefixes removed.
    pub text: String,
    /// How many times it came.
    pub count: u64,
}

/// What `kerno explain` found in some kernel log lines.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Explanation {
    /// Where the lines came from (`arguments`, `stdin`, `/dev/kmsg since 1h`, ...).
    pub source: String,
    /// Non-empty text lines read.
    pub lines: usize,
    /// Lines recognised (a known message, or a line of a known report).
    pub explained_lines: usize,
    /// Lines that were not text (binary data), skipped.
    pub binary_lines: usize,
    /// What was recognised, most severe and most recent first.
    pub groups: Vec<Group>,
    /// Lines nothing matched, in first-seen order, each once with its count: for a
    /// person, or an AI post-processor, to look at.
    pub unknown: Vec<Unknown>,
    /// The AI post-processor's reading of the unknown lines (`kerno explain --ai`), when
    /// one was asked for; the known lines are always explained offline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis: Option<crate::Analysis>,
}

/// Lines that continue an open report: stack frames, registers, the memory summary, the
/// OOM task table, the Oops trailer.
static CONTINUATION: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r"^(?:",
        r"CPU: \d+ |Hardware name: |Call Trace:|Call trace:|Workqueue: |Stack:|",
        r"<(?:/?TASK|/?IRQ|/?NMI|/?SOFTIRQ|EOI)>|",
        r"(?:\? )?[\w.$]+(?:\.[\w.]+)*\+0x[0-9a-f]+/0x[0-9a-f]+|",
        r"RIP: |RSP: |R[A-Z0-9]{2}: |FS: |CS: |CR2: |DR[0-9]: |Code: |PKRU: |",
        r"pc : |lr : |sp : |x\d+ ?: |pstate: |Internal error|Modules linked in:|",
        r"#PF: |PGD |---\[ end |Tainted: |Not tainted|\(detected by |\(t=\d+ jiffies|",
        r"rcu: |Sending NMI from CPU|NMI backtrace for cpu|task:\S+ +state:|",
        r#""echo 0 > /proc/sys/kernel/hung_task_timeout_secs"|INFO: task .* is blocked on|"#,
        r"Showing all locks held|\d+ locks? held by|#\d+: [0-9a-f]+ |irq event stamp|",
        r"hardirqs last|softirqs last|Kernel Offset:|Mem-Info:|active_anon:|",
        r"Node \d+ |lowmem_reserve\[\]|\d+ total pagecache pages|\d+ pages |Free swap|",
        r"Total swap|Tasks state|\[ +pid +\]|\[ *\d+\] +\d+ +\d+ |Memory cgroup stats for|",
        r"memory\+swap: usage|kmem: usage|swap: usage|[a-z_]+ \d+$|",
        r"warn_alloc: |cpuset=|oom_kill_process|dump_stack|DMA|Normal|Movable|HighMem|",
        r"Swap cache stats|Unreclaimable slab info:|Name +Used +Total|",
        r"cache: \S+, object size|node \d+: slabs:|",
        r"EFLAGS|ORIG_RAX|RBP: |RDX: |\S+ \S+ Mems_allowed",
        r")",
    ))
    .expect("continuation regex")
});

static CUT_HERE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^-+\[ cut here \]-+$").expect("cut-here regex"));

static CPU_LINE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^CPU: (?P<cpu>\d+) (?:UID: \d+ )?PID: (?P<pid>\d+) Comm: (?P<comm>\S+)")
        .expect("cpu line")
});

static RIP_LINE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?:RIP: [0-9a-f]{4}:|pc : )(?P<function>[\w.]+)\+0x[0-9a-f]+/0x[0-9a-f]+(?: \[(?P<module>\w+)\])?")
        .expect("rip line")
});

/// Whether a line is binary data rather than text: a NUL, or many control characters or
/// invalid UTF-8 sequences.
fn is_binary(line: &[u8]) -> bool {
    if line.contains(&0) {
        return true;
    }
    let text = String::from_utf8_lossy(line);
    let total = text.chars().count().max(1);
    let bad = text
        .chars()
        .filter(|c| *c == char::REPLACEMENT_CHARACTER || (c.is_control() && *c != '\t'))
        .count();
    bad * 10 > total
}

/// A line longer than this is cut (with an ellipsis) before it is kept.
const MAX_LINE: usize = 2000;

fn cut(s: &str) -> String {
    if s.len() <= MAX_LINE {
        return s.to_string();
    }
    let mut end = MAX_LINE;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// An event being assembled.
struct Building {
    kind: Option<Kind>,
    best: &'static Pattern,
    headline: String,
    parts: Vec<String>,
    time: LogTime,
    fields: BTreeMap<String, String>,
    suppressed: u64,
    lines: Vec<String>,
    more_lines: usize,
}

impl Building {
    fn new(p: &'static Pattern, fields: Vec<(String, String)>, time: LogTime) -> Building {
        let kind = match p.block {
            Block::Alone => None,
            Block::Starts(k) | Block::Joins(k) => Some(k),
        };
        let mut b = Building {
            kind,
            best: p,
            headline: String::new(),
            parts: vec![p.id.to_string()],
            time,
            fields: BTreeMap::new(),
            suppressed: 0,
            lines: Vec::new(),
            more_lines: 0,
        };
        b.merge(fields);
        b
    }

    fn push_line(&mut self, line: &str) {
        if self.lines.len() < MAX_EVENT_LINES {
            self.lines.push(cut(line));
        } else {
            self.more_lines += 1;
        }
    }

    fn merge(&mut self, fields: Vec<(String, String)>) {
        for (k, v) in fields {
            self.fields.entry(k).or_insert(v);
        }
    }

    /// Whether a line's fields agree with this event's: a different pid, cgroup or device
    /// is another event.
    fn agrees(&self, fields: &[(String, String)]) -> bool {
        fields.iter().all(|(k, v)| {
            !matches!(k.as_str(), "pid" | "cgroup" | "device")
                || self.fields.get(k).is_none_or(|mine| mine == v)
        })
    }

    fn join(&mut self, p: &'static Pattern, fields: Vec<(String, String)>, msg: &str) {
        if p.rank > self.best.rank {
            self.best = p;
            self.headline = cut(msg);
        }
        self.parts.push(p.id.to_string());
        self.merge(fields);
    }

    /// Fields a continuation line carries: the task and the faulting function of a stack
    /// dump. In an OOM report the `CPU:` line names the trigger, not the victim.
    fn continuation(&mut self, msg: &str) {
        if let Some(c) = CPU_LINE.captures(msg) {
            let oom = self.kind == Some(Kind::Oom);
            for (name, key) in [
                ("pid", if oom { "trigger_pid" } else { "pid" }),
                ("comm", if oom { "trigger" } else { "comm" }),
                ("cpu", "cpu"),
            ] {
                if let Some(v) = c.name(name) {
                    self.fields
                        .entry(key.to_string())
                        .or_insert_with(|| v.as_str().to_string());
                }
            }
        }
        if let Some(c) = RIP_LINE.captures(msg) {
            for name in ["function", "module"] {
                if let Some(v) = c.name(name) {
                    self.fields
                        .entry(name.to_string())
                        .or_insert_with(|| v.as_str().to_string());
                }
            }
        }
    }

    fn finish(self, opts: &ExplainOptions) -> Event {
        let mut other = self.fields;
        let pid = other.remove("pid").and_then(|p| p.parse().ok());
        let comm = other.remove("comm");
        let cgroup = other.remove("cgroup");
        let device = other.remove("device");
        let attribution = cgroup.as_deref().and_then(|cg| {
            let a = if opts.resolve_names {
                attribution::with_resolver(|r| r.attribute_path(cg))
            } else {
                from_path(cg)
            };
            (!a.is_empty()).then_some(a)
        });
        let whose = attribution.as_ref().and_then(Attribution::describe);
        let mut lines = self.lines;
        if self.more_lines > 0 {
            lines.push(format!("… {} more lines", self.more_lines));
        }
        Event {
            pattern: self.best.id.to_string(),
            parts: self.parts,
            time: self.time,
            headline: self.headline,
            fields: Fields {
                pid,
                comm,
                cgroup,
                attribution,
                whose,
                device,
                other,
            },
            suppressed: self.suppressed,
            lines,
        }
    }
}

/// What a cgroup path alone says (no file read).
fn from_path(path: &str) -> Attribution {
    let info = attribution::cgroup_path::parse(path);
    Attribution {
        pod_uid: info.pod_uid,
        qos: info.qos.map(str::to_string),
        container_id: info.container_id,
        runtime: info.runtime.map(str::to_string),
        unit: info.unit,
        slice: info.slice,
        ..Attribution::default()
    }
}

/// One line of input with what is already known of its time (from `/dev/kmsg` or the
/// journal; text lines carry theirs in their prefixes).
#[derive(Clone, Debug)]
pub struct Entry {
    /// The line's bytes.
    pub text: Vec<u8>,
    /// Its time, when the source knows it.
    pub time: LogTime,
}

/// Explain log text (lines separated by newlines; any bytes, binary data is counted and
/// skipped). `source` says where it came from.
pub fn explain_text(input: &[u8], source: &str, opts: &ExplainOptions) -> Explanation {
    let entries = input.split(|b| *b == b'\n').map(|l| Entry {
        text: l.to_vec(),
        time: LogTime::default(),
    });
    explain_entries(entries, source, opts)
}

/// Explain lines with known times (what [`read_kernel_log`] returns).
pub fn explain_entries(
    entries: impl IntoIterator<Item = Entry>,
    source: &str,
    opts: &ExplainOptions,
) -> Explanation {
    let mut events: Vec<Event> = Vec::new();
    let mut open: Option<Building> = None;
    let mut pending_cut: Option<String> = None;
    // A `callbacks suppressed` notice is printed just before the next message of its kind
    // gets through: its count goes to the next event.
    let mut pending_suppressed: Option<Building> = None;
    let mut unknown: Vec<Unknown> = Vec::new();
    let mut unknown_at: BTreeMap<String, usize> = BTreeMap::new();
    let (mut lines, mut explained, mut binary) = (0usize, 0usize, 0usize);

    let close = |open: &mut Option<Building>, events: &mut Vec<Event>| {
        if let Some(b) = open.take() {
            events.push(b.finish(opts));
        }
    };

    for entry in entries {
        let raw = entry.text.strip_suffix(b"\r").unwrap_or(&entry.text);
        if raw.iter().all(|b| b.is_ascii_whitespace()) {
            continue;
        }
        if is_binary(raw) {
            binary += 1;
            close(&mut open, &mut events);
            continue;
        }
        let text = String::from_utf8_lossy(raw);
        let s = prefix::strip(&text, opts.now_unix_ms);
        if s.metadata {
            continue;
        }
        let mut msg = s.message.trim();
        if msg.is_empty() {
            continue;
        }
        // No kernel message is this long (a record is at most 1 KiB of text); matching
        // the whole of a huge line would only cost time.
        if msg.len() > MAX_LINE {
            let mut end = MAX_LINE;
            while !msg.is_char_boundary(end) {
                end -= 1;
            }
            msg = &msg[..end];
        }
        lines += 1;
        let mut time = s.time;
        if time.boot_secs.is_none() {
            time.boot_secs = entry.time.boot_secs;
        }
        if time.unix_ms.is_none() {
            time.unix_ms = entry.time.unix_ms;
        }

        if CUT_HERE.is_match(msg) {
            close(&mut open, &mut events);
            pending_cut = Some(msg.to_string());
            explained += 1;
            continue;
        }
        match kb::classify(msg) {
            Some((p, fields)) if p.id == "callbacks-suppressed" => {
                explained += 1;
                close(&mut open, &mut events);
                if let Some(b) = pending_suppressed.take() {
                    events.push(b.finish(opts));
                }
                let mut b = Building::new(p, fields, time);
                b.headline = cut(msg);
                b.push_line(msg);
                pending_suppressed = Some(b);
            }
            Some((p, fields)) => {
                explained += 1;
                let joins = match (p.block, &open) {
                    (Block::Joins(k), Some(b)) => b.kind == Some(k) && b.agrees(&fields),
                    _ => false,
                };
                if joins {
                    let b = open.as_mut().expect("checked above");
                    b.join(p, fields, msg);
                    b.push_line(msg);
                } else {
                    close(&mut open, &mut events);
                    let mut b = Building::new(p, fields, time);
                    b.headline = cut(msg);
                    if let Some(s) = pending_suppressed.take() {
                        b.suppressed += s
                            .fields
                            .get("count")
                            .and_then(|c| c.parse().ok())
                            .unwrap_or(0);
                        b.parts.insert(0, s.best.id.to_string());
                        b.lines.extend(s.lines);
                    }
                    if let Some(c) = pending_cut.take() {
                        b.push_line(&c);
                    }
                    b.push_line(msg);
                    if p.block == Block::Alone {
                        events.push(b.finish(opts));
                    } else {
                        open = Some(b);
                    }
                }
            }
            None => {
                if let Some(b) = open.as_mut().filter(|_| CONTINUATION.is_match(msg)) {
                    explained += 1;
                    b.continuation(msg);
                    b.push_line(s.message.trim_end());
                    if msg.starts_with("---[ end ") {
                        close(&mut open, &mut events);
                    }
                    continue;
                }
                close(&mut open, &mut events);
                if let Some(b) = pending_suppressed.take() {
                    events.push(b.finish(opts));
                }
                pending_cut = None;
                let key = cut(msg);
                match unknown_at.get(&key) {
                    Some(i) => unknown[*i].count += 1,
                    None => {
                        unknown_at.insert(key.clone(), unknown.len());
                        unknown.push(Unknown {
                            text: key,
                            count: 1,
                        });
                    }
                }
            }
        }
    }
    close(&mut open, &mut events);
    if let Some(b) = pending_suppressed.take() {
        events.push(b.finish(opts));
    }
    Explanation {
        source: source.to_string(),
        lines,
        explained_lines: explained,
        binary_lines: binary,
        groups: group(events, opts),
        unknown,
        analysis: None,
    }
}

/// The field that names what an event is about, for its pattern: `(field, value)`.
fn subject_of(p: &Pattern, f: &Fields) -> Option<(String, String)> {
    p.group_by
        .iter()
        .find_map(|k| f.get(k).map(|v| (k.to_string(), v)))
}

fn phrase(field: &str, value: &str) -> String {
    match field {
        "pod" | "comm" | "trigger" => format!("in {value}"),
        "cgroup" => format!("in cgroup {value}"),
        "device" => format!("on {value}"),
        "server" => format!("for server {value}"),
        "port" => format!("on port {value}"),
        "cpu" => format!("on CPU {value}"),
        "module" => format!("in module {value}"),
        "function" => format!("in {value}()"),
        "netns" => format!("in network namespace {value}"),
        _ => format!("({field} {value})"),
    }
}

/// `--since`: how far back to read the kernel log: `30m`, `1h`, `2d` (or any
/// [`crate::config::parse_duration`] form), more than zero.
pub fn parse_since(s: &str) -> Result<std::time::Duration, String> {
    let d = match s.trim().strip_suffix('d') {
        Some(days) => {
            let n: f64 = days
                .parse()
                .map_err(|_| format!("{s:?} is not a duration (examples: 30m, 1h, 2d)"))?;
            std::time::Duration::try_from_secs_f64(n * 86_400.0)
                .map_err(|_| format!("{s:?} is not a valid duration"))?
        }
        None => crate::config::parse_duration(s)?,
    };
    if d.is_zero() {
        return Err(format!(
            "{s:?}: use a duration above zero (examples: 30m, 1h, 2d)"
        ));
    }
    Ok(d)
}

/// `4 min ago`, `2 h ago`, `just now`.
pub fn ago(now_ms: u64, then_ms: u64) -> String {
    let s = now_ms.saturating_sub(then_ms) / 1000;
    match s {
        0..60 => "just now".to_string(),
        60..3600 => format!("{} min ago", s / 60),
        3600..86_400 => format!("{} h ago", s / 3600),
        _ => format!("{} days ago", s / 86_400),
    }
}

fn when(t: &LogTime, now_ms: u64) -> Option<String> {
    match (t.unix_ms, t.boot_secs) {
        (Some(ms), _) => Some(ago(now_ms, ms)),
        (None, Some(b)) => Some(format!("at {b:.1} s after boot")),
        _ => None,
    }
}

/// Replace `{field}` in a command with the event's value, or `<field>` when unknown.
fn fill(template: &str, f: &Fields) -> String {
    let mut out = String::new();
    let mut rest = template;
    while let Some(i) = rest.find('{') {
        let Some(j) = rest[i..].find('}') else { break };
        let name = &rest[i + 1..i + j];
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
            out.push_str(&rest[..i + j + 1]);
        } else {
            out.push_str(&rest[..i]);
            match f.get(name) {
                Some(v) => out.push_str(&v),
                None => out.push_str(&format!("<{name}>")),
            }
        }
        rest = &rest[i + j + 1..];
    }
    out.push_str(rest);
    out
}

fn group(events: Vec<Event>, opts: &ExplainOptions) -> Vec<Group> {
    let mut groups: Vec<Group> = Vec::new();
    let mut at: BTreeMap<(String, Option<(String, String)>), usize> = BTreeMap::new();
    for e in events {
        let p = kb::pattern(&e.pattern).expect("events name known patterns");
        let subject = subject_of(p, &e.fields);
        let key = (e.pattern.clone(), subject.clone());
        let i = *at.entry(key).or_insert_with(|| {
            groups.push(Group {
                pattern: p.id.to_string(),
                title: p.title.to_string(),
                severity: p.severity,
                count: 0,
                subject,
                summary: String::new(),
                first: e.time.clone(),
                last: LogTime::default(),
                meaning: p.meaning.to_string(),
                causes: p.causes.iter().map(|s| s.to_string()).collect(),
                check: Vec::new(),
                fix: p.fix.iter().map(|s| s.to_string()).collect(),
                kernel_format: p.format.to_string(),
                kernel_source: p.source.to_string(),
                events: Vec::new(),
            });
            groups.len() - 1
        });
        let g = &mut groups[i];
        g.count += 1 + e.suppressed;
        g.last = e.time.clone();
        g.events.push(e);
    }
    for g in &mut groups {
        let p = kb::pattern(&g.pattern).expect("known");
        let last = g.events.last().expect("a group has an event");
        // A Kubernetes command is for pods only.
        let is_pod = last
            .fields
            .attribution
            .as_ref()
            .is_some_and(|a| a.pod_uid.is_some());
        g.check = p
            .check
            .iter()
            .filter(|c| is_pod || !(c.contains("{pod_name}") || c.contains("{namespace}")))
            .map(|c| fill(c, &last.fields))
            .collect();
        let (one, many) = p.noun;
        let mut s = format!("{} {}", g.count, if g.count == 1 { one } else { many });
        if let Some((k, v)) = &g.subject {
            let shown = match k.as_str() {
                "pod" => last.fields.whose.clone().unwrap_or_else(|| v.clone()),
                _ => v.clone(),
            };
            s.push(' ');
            s.push_str(&phrase(k, &shown));
        }
        if let Some(w) = when(&g.last, opts.now_unix_ms) {
            s.push_str(if g.count > 1 { ", last " } else { ", " });
            s.push_str(&w);
        }
        g.summary = s;
    }
    groups.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then(b.last.unix_ms.cmp(&a.last.unix_ms))
            .then(
                b.last
                    .boot_secs
                    .partial_cmp(&a.last.boot_secs)
                    .unwrap_or(std::cmp::Ordering::Equal),
            )
            .then(b.count.cmp(&a.count))
    });
    groups
}

#[cfg(test)]
mod tests;
