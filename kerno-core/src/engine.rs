//! The engine: run collectors over a window, then the rules over the result.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use kerno_probes::{Domain as ProbeDomain, LoadOptions, Probes};

use crate::{
    Collector, CollectorError, CoreError, Degraded, Domain, Finding, Report, Rule, Sample, Signals,
    Thresholds,
    collectors::{
        ConntrackCollector, DiskCollector, FdCollector, FdCountCollector, FilesystemCollector,
        LostCollector, MemoryCollector, OomCollector, PidsCollector, SaturationCollector,
        SchedCollector, SyscallCollector, TcpCollector,
    },
    finding::rank,
    host::detect_host,
};

/// Which kernel probes to load, and their in-kernel thresholds.
#[derive(Clone, Debug)]
pub struct KernelOptions {
    /// Domains to observe; all when empty.
    pub domains: Vec<Domain>,
    /// A successful syscall at least this slow (ms) is attributed to its process.
    pub slow_syscall_ms: f64,
    /// A run-queue delay at least this long (ms) is attributed to its process.
    pub slow_runq_ms: f64,
    /// Where the host's filesystems are (`--host-root`, `KERNO_HOST_ROOT`; `None`: `/`).
    pub host_root: Option<std::path::PathBuf>,
    /// The node name (`--node-name`, `KERNO_NODE_NAME`, `NODE_NAME`; `None`: the host's
    /// name).
    pub node_name: Option<String>,
    /// Domains that fail on purpose, to exercise degradation (`KERNO_FAIL_PROBES`). A
    /// domain with probes of its own (syscalls, sched, disk, tcp, oom) has them attached to
    /// a tracepoint that does not exist, so the kernel refuses them (failing `syscalls`
    /// also leaves `fds` unobserved: it reads the syscall probes); the others (fds, memory,
    /// filesystem, pids, conntrack) have every reading of their collector fail.
    pub fail_on_purpose: Vec<Domain>,
    /// When this process may not load the probes (no `CAP_BPF` and `CAP_PERFMON`, nor
    /// `CAP_SYS_ADMIN`): build an engine of the procfs, cgroupfs and PSI collectors alone,
    /// with every probe domain reported as not observed and the capabilities it needs,
    /// instead of failing with [`CoreError::NotPermitted`] (what `kerno doctor` does for a
    /// plain user).
    pub without_probes_if_not_permitted: bool,
}

impl Default for KernelOptions {
    fn default() -> Self {
        KernelOptions {
            domains: Vec::new(),
            slow_syscall_ms: 1.0,
            slow_runq_ms: 1.0,
            host_root: None,
            node_name: None,
            fail_on_purpose: Vec::new(),
            without_probes_if_not_permitted: false,
        }
    }
}

/// Runs collectors for a window and rules over the result.
///
/// ```no_run
/// use std::time::Duration;
/// use kerno_core::{Engine, KernelOptions};
///
/// # fn main() -> Result<(), kerno_core::CoreError> {
/// let mut engine = Engine::kernel(&KernelOptions::default())?; // needs root
/// let signals = engine.collect(Duration::from_secs(5), None, &mut |_, _| {})?;
/// let report = engine.evaluate(&signals);
/// println!("{} findings", report.findings.len());
/// # Ok(()) }
/// ```
pub struct Engine {
    collectors: Vec<Box<dyn Collector>>,
    rules: Vec<Box<dyn Rule>>,
    thresholds: Thresholds,
    degraded: Vec<Degraded>,
    probe_status: Vec<kerno_probes::ProbeStatus>,
    not_permitted: Option<String>,
}

impl Default for Engine {
    fn default() -> Self {
        Engine::new()
    }
}

impl Engine {
    /// An engine with no collectors and no rules.
    pub fn new() -> Self {
        Engine {
            collectors: Vec::new(),
            rules: Vec::new(),
            thresholds: Thresholds::default(),
            degraded: Vec::new(),
            probe_status: Vec::new(),
            not_permitted: None,
        }
    }

    /// An engine with the kernel probes loaded and the built-in collectors for the
    /// requested domains. Domains whose probes fail are recorded as degraded.
    pub fn kernel(opts: &KernelOptions) -> Result<Engine, CoreError> {
        match check_privileges() {
            Ok(()) => {}
            Err(CoreError::NotPermitted { detail, .. }) if opts.without_probes_if_not_permitted => {
                return Ok(Engine::without_probes(opts, &detail));
            }
            Err(e) => return Err(e),
        }
        crate::host::configure(
            crate::host::HostRoot::new(opts.host_root.clone().unwrap_or_default()),
            opts.node_name.clone(),
        );
        let wanted = |d: Domain| opts.domains.is_empty() || opts.domains.contains(&d);
        let mut probe_domains: Vec<ProbeDomain> = Vec::new();
        for d in Domain::ALL.into_iter().filter(|d| wanted(*d)) {
            if let Some(p) = d.probe().filter(|p| !probe_domains.contains(p)) {
                probe_domains.push(p);
            }
        }
        // `fds` shares the syscall probes: failing it fails its collector only.
        let collector_fails = |d: Domain| d.probe().is_none() || d == Domain::Fds;
        let mut fail: Vec<ProbeDomain> = Vec::new();
        for d in opts
            .fail_on_purpose
            .iter()
            .filter(|d| !collector_fails(**d))
        {
            if let Some(p) = d.probe().filter(|p| !fail.contains(p)) {
                fail.push(p);
            }
        }
        let ms = |v: f64| (v.max(0.0) * 1e6) as u64;
        let mut probes = Probes::load(&LoadOptions {
            domains: probe_domains,
            slow_syscall_ns: ms(opts.slow_syscall_ms),
            slow_runq_ns: ms(opts.slow_runq_ms),
            fail_on_purpose: fail,
            ..LoadOptions::default()
        })?;
        let mut engine = Engine::new();
        engine.probe_status = probes.status().to_vec();
        for s in probes.status() {
            if let Some(err) = &s.error {
                let reason = not_attached(s.domain, err);
                if s.domain == ProbeDomain::Syscalls {
                    for d in [Domain::Syscalls, Domain::Fds] {
                        if wanted(d) {
                            engine.degraded.push(Degraded {
                                domain: d.to_string(),
                                reason: reason.clone(),
                            });
                        }
                    }
                } else {
                    engine.degraded.push(Degraded {
                        domain: s.domain.name().into(),
                        reason,
                    });
                }
            }
        }
        if let Some(r) = probes.take_syscalls() {
            let r = Arc::new(r);
            if wanted(Domain::Syscalls) {
                engine.add_collector(Box::new(SyscallCollector::new(r.clone())));
            }
            if wanted(Domain::Fds) {
                engine.add_collector(Box::new(FdCollector::new(r)));
            }
        }
        if let Some(r) = probes.take_sched() {
            engine.add_collector(Box::new(SchedCollector::new(r)));
        }
        if let Some(r) = probes.take_disk() {
            engine.add_collector(Box::new(DiskCollector::new(r)));
        }
        if let Some(r) = probes.take_tcp() {
            engine.add_collector(Box::new(TcpCollector::new(r)));
        }
        if let Some(r) = probes.take_oom() {
            engine.add_collector(Box::new(OomCollector::new(r)));
        }
        if let Some(r) = probes.take_lost() {
            engine.add_collector(Box::new(LostCollector::new(r)));
        }
        engine.add_procfs_collectors(wanted);
        for c in &mut engine.collectors {
            let failing = opts
                .fail_on_purpose
                .iter()
                .any(|d| collector_fails(*d) && d.as_str() == c.name());
            if failing {
                let name = c.name().to_string();
                *c = Box::new(FailOnPurpose(name));
            }
        }
        Ok(engine)
    }

    /// The engine of a process that may not load the probes: the procfs, cgroupfs and PSI
    /// collectors of the requested domains (memory, filesystems, pids, conntrack, pressure,
    /// CPU quotas, listen queues, and descriptor counts from `/proc/<pid>/fd`), with each
    /// probe domain degraded by [`not_permitted`]. `missing` is the capability check's
    /// finding (`not permitted to load eBPF probes: missing CAP_BPF and CAP_PERFMON`).
    fn without_probes(opts: &KernelOptions, missing: &str) -> Engine {
        crate::host::configure(
            crate::host::HostRoot::new(opts.host_root.clone().unwrap_or_default()),
            opts.node_name.clone(),
        );
        let wanted = |d: Domain| opts.domains.is_empty() || opts.domains.contains(&d);
        let mut engine = Engine::new();
        engine.not_permitted = Some(missing.to_string());
        for d in Domain::ALL.into_iter().filter(|d| wanted(*d)) {
            if d.probe().is_some() {
                engine.degraded.push(Degraded {
                    domain: d.to_string(),
                    reason: not_permitted(d, missing),
                });
            }
        }
        if wanted(Domain::Fds) {
            engine.add_collector(Box::new(FdCountCollector::new()));
        }
        engine.add_procfs_collectors(wanted);
        engine
    }

    /// The collectors that read procfs, cgroupfs and PSI (no probe), of the `wanted`
    /// domains: memory, filesystems, pids, conntrack, and saturation.
    fn add_procfs_collectors(&mut self, wanted: impl Fn(Domain) -> bool) {
        if wanted(Domain::Memory) {
            self.add_collector(Box::new(MemoryCollector::new()));
        }
        if wanted(Domain::Filesystem) {
            self.add_collector(Box::new(FilesystemCollector::new()));
        }
        if wanted(Domain::Pids) {
            self.add_collector(Box::new(PidsCollector::new()));
        }
        if wanted(Domain::Conntrack) {
            self.add_collector(Box::new(ConntrackCollector::new()));
        }
        // PSI, CPU quotas and listen queues speak of CPU, memory, disk and TCP alike.
        if [Domain::Sched, Domain::Memory, Domain::Disk, Domain::Tcp]
            .into_iter()
            .any(&wanted)
        {
            self.add_collector(Box::new(SaturationCollector::new()));
        }
    }

    /// Add a collector.
    pub fn add_collector(&mut self, c: Box<dyn Collector>) -> &mut Self {
        self.collectors.push(c);
        self
    }

    /// Add a rule.
    pub fn add_rule(&mut self, r: Box<dyn Rule>) -> &mut Self {
        self.rules.push(r);
        self
    }

    /// Add rules.
    pub fn add_rules(&mut self, rules: impl IntoIterator<Item = Box<dyn Rule>>) -> &mut Self {
        self.rules.extend(rules);
        self
    }

    /// Set the thresholds.
    pub fn set_thresholds(&mut self, t: Thresholds) -> &mut Self {
        self.thresholds = t;
        self
    }

    /// The thresholds in use.
    pub fn thresholds(&self) -> &Thresholds {
        &self.thresholds
    }

    /// The rules in use.
    pub fn rules(&self) -> &[Box<dyn Rule>] {
        &self.rules
    }

    /// Domains that could not be observed, and why.
    pub fn degraded(&self) -> &[Degraded] {
        &self.degraded
    }

    /// Why the probes were not loaded at all, for an engine built without them by
    /// [`KernelOptions::without_probes_if_not_permitted`] (`not permitted to load eBPF
    /// probes: missing CAP_BPF and CAP_PERFMON`); `None` otherwise.
    pub fn not_permitted(&self) -> Option<&str> {
        self.not_permitted.as_deref()
    }

    /// Each probe domain's load status (empty for an engine without kernel probes).
    pub fn probe_status(&self) -> &[kerno_probes::ProbeStatus] {
        &self.probe_status
    }

    /// Take one sample from every collector. A collector that fails is reported in the
    /// returned list and its sample is `None`.
    pub fn sample_all(&mut self) -> Vec<Option<Sample>> {
        self.try_sample_all().into_iter().map(Result::ok).collect()
    }

    /// Take one sample from every collector, in collector order, keeping each failure's
    /// reason (a daemon counts and logs them, and keeps going).
    pub fn try_sample_all(&mut self) -> Vec<Result<Sample, CollectorError>> {
        self.collectors.iter_mut().map(|c| c.sample()).collect()
    }

    /// The collectors' names, in collector order (the order of [`Engine::try_sample_all`]
    /// and of the series [`Engine::signals_from`] takes).
    pub fn collector_names(&self) -> Vec<&str> {
        self.collectors.iter().map(|c| c.name()).collect()
    }

    /// Build the window's [`Signals`] from per-collector sample series (one series per
    /// collector, in collector order, oldest first), as a daemon keeps them.
    pub fn signals_from(
        &self,
        series: &[Vec<&Sample>],
        start_unix_ms: u64,
        duration: Duration,
    ) -> Signals {
        let mut signals = self.blank_signals(start_unix_ms, duration);
        for (c, samples) in self.collectors.iter().zip(series) {
            if samples.len() < 2 {
                signals.degraded.push(Degraded {
                    domain: c.name().into(),
                    reason: "not enough samples in the window".into(),
                });
                continue;
            }
            if let Err(e) = c.fill(samples, &mut signals) {
                signals.degraded.push(Degraded {
                    domain: c.name().into(),
                    reason: format!("collector failed: {e}"),
                });
            }
        }
        signals
    }

    /// Let every collector drop, from the samples a daemon keeps (one series per collector,
    /// oldest first, as for [`Engine::signals_from`]), what no window ending at the newest
    /// sample can need; see [`Collector::compact`].
    pub fn compact(&self, series: &[Vec<&Sample>]) {
        for (c, samples) in self.collectors.iter().zip(series) {
            c.compact(samples);
        }
    }

    fn blank_signals(&self, start_unix_ms: u64, duration: Duration) -> Signals {
        Signals {
            schema: crate::SCHEMA_VERSION,
            host: detect_host(),
            window: crate::Window {
                start_unix_ms,
                duration_ms: duration.as_millis() as u64,
            },
            collector_pid: crate::procfs::self_pid(),
            degraded: self.degraded.clone(),
            ..Signals::default()
        }
    }

    /// Collect one window of `duration`, sampling every collector at the start, once a
    /// second, and at the end. `progress(elapsed, total)` is called about ten times a
    /// second; setting `cancel` stops collection with [`CoreError::Interrupted`].
    pub fn collect(
        &mut self,
        duration: Duration,
        cancel: Option<&AtomicBool>,
        progress: &mut dyn FnMut(Duration, Duration),
    ) -> Result<Signals, CoreError> {
        if duration < Duration::from_secs(1) || duration > Duration::from_secs(300) {
            return Err(CoreError::Window(duration));
        }
        let start_unix_ms = crate::unix_ms_now();
        let start = Instant::now();
        let n = self.collectors.len();
        let mut series: Vec<Vec<Sample>> = (0..n).map(|_| Vec::new()).collect();
        let mut failed: Vec<Option<String>> = vec![None; n];
        let mut take = |collectors: &mut Vec<Box<dyn Collector>>, series: &mut Vec<Vec<Sample>>| {
            for (i, c) in collectors.iter_mut().enumerate() {
                if failed[i].is_some() {
                    continue;
                }
                match c.sample() {
                    Ok(s) => series[i].push(s),
                    Err(e) => failed[i] = Some(e.to_string()),
                }
            }
        };
        take(&mut self.collectors, &mut series);
        let mut next_tick = start + Duration::from_secs(1);
        loop {
            let elapsed = start.elapsed();
            progress(elapsed.min(duration), duration);
            if elapsed >= duration {
                break;
            }
            if cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
                return Err(CoreError::Interrupted);
            }
            let now = Instant::now();
            if now >= next_tick && start + duration > now + Duration::from_millis(500) {
                take(&mut self.collectors, &mut series);
                next_tick += Duration::from_secs(1);
            }
            std::thread::sleep(Duration::from_millis(100).min(duration - elapsed));
        }
        take(&mut self.collectors, &mut series);
        let elapsed = start.elapsed();
        let refs: Vec<Vec<&Sample>> = series.iter().map(|s| s.iter().collect()).collect();
        let mut signals = self.signals_from(&refs, start_unix_ms, elapsed);
        for (i, f) in failed.into_iter().enumerate() {
            if let Some(reason) = f {
                let name = self.collectors[i].name().to_string();
                signals.degraded.retain(|d| d.domain != name);
                signals.degraded.push(Degraded {
                    domain: name,
                    reason: format!("collector failed: {reason}"),
                });
            }
        }
        Ok(signals)
    }

    /// Run the rules over a window and build the report.
    pub fn evaluate(&self, signals: &Signals) -> Report {
        evaluate(signals, &self.rules, &self.thresholds)
    }
}

/// A collector whose every reading fails, standing in for one named in
/// [`KernelOptions::fail_on_purpose`]: the window, the agent and `/readyz` see what a
/// collector whose files became unreadable looks like.
struct FailOnPurpose(String);

impl Collector for FailOnPurpose {
    fn name(&self) -> &str {
        &self.0
    }
    fn sample(&mut self) -> Result<Sample, CollectorError> {
        Err(CollectorError::Source {
            source_name: "KERNO_FAIL_PROBES".into(),
            reason: format!("the {} collector fails on purpose", self.0),
        })
    }
    fn fill(&self, _: &[&Sample], _: &mut Signals) -> Result<(), CollectorError> {
        Ok(())
    }
}

/// Why a probe domain is not observed, as reports and `/readyz` say it.
pub(crate) fn not_attached(domain: ProbeDomain, error: &str) -> String {
    format!("{domain} probe not attached: {error}")
}

/// Why a probe domain is not observed by a process that may not load the probes: the
/// capabilities it needs, what this process misses (`missing`, the capability check's
/// detail), and what is read instead, as reports and `kerno doctor` say it.
pub(crate) fn not_permitted(domain: Domain, missing: &str) -> String {
    let missing = missing
        .split_once("missing ")
        .map(|(_, m)| m)
        .unwrap_or(missing);
    let needs = "needs CAP_BPF and CAP_PERFMON";
    match domain {
        Domain::Syscalls => format!("not permitted: the syscall probe {needs} (missing {missing})"),
        // tp_btf with offsets from BTF: no tracefs to read.
        Domain::Sched | Domain::Disk => {
            format!("not permitted: the {domain} probe {needs} (missing {missing})")
        }
        Domain::Fds => format!(
            "not permitted: descriptor opens and closes come from the syscall probe, which {needs} (missing {missing}); open descriptors are counted in /proc/<pid>/fd instead (other users' processes need CAP_DAC_READ_SEARCH)"
        ),
        _ => format!(
            "not permitted: the {domain} probe {needs} (missing {missing}), and CAP_DAC_READ_SEARCH to read its tracepoints' formats in tracefs when not uid 0"
        ),
    }
}

/// Check that this process may load the kernel probes (`CAP_BPF` and `CAP_PERFMON`, or
/// `CAP_SYS_ADMIN`), before doing anything else: the error names what is missing.
pub fn check_privileges() -> Result<(), CoreError> {
    crate::preflight::check_capabilities().map_err(|c| CoreError::NotPermitted {
        detail: c.detail,
        fix: c.fix.unwrap_or_default(),
    })
}

/// Run `rules` over `signals` with `thresholds` and build the ranked report. Pure: no
/// kernel, no root, no clock.
pub fn evaluate(signals: &Signals, rules: &[Box<dyn Rule>], thresholds: &Thresholds) -> Report {
    let mut findings: Vec<Finding> = rules
        .iter()
        .flat_map(|r| findings_of(r.as_ref(), signals, thresholds))
        .collect();
    rank(&mut findings);
    Report::new(signals.clone(), findings)
}

/// `rule`'s findings over `signals`, each subject completed from them.
fn findings_of(rule: &dyn Rule, signals: &Signals, thresholds: &Thresholds) -> Vec<Finding> {
    let mut found = rule.evaluate(signals, thresholds);
    for f in &mut found {
        f.subject.complete(signals);
    }
    found
}

/// The windows the agent evaluates `rule` over, shortest first: its
/// [`Rule::min_window`] when it declares one, and the findings window (never shorter than
/// that minimum). A rule without a minimum has the findings window alone.
pub fn findings_windows(
    rule: &dyn Rule,
    thresholds: &Thresholds,
    findings_window: Duration,
) -> Vec<Duration> {
    match rule.min_window(thresholds) {
        Some(min) if min < findings_window => vec![min, findings_window],
        Some(min) => vec![min],
        None => vec![findings_window],
    }
}

/// Evaluate every rule over each of its [`findings_windows`] and build one report, as the
/// agent's `kerno_findings_firing` gauges do.
///
/// `window(length)` builds the window of the last `length` (it is asked once per distinct
/// length); `None` when it cannot. Per rule, the findings of the window with the worst
/// severity count, the shorter window on a tie: so a rule fires as soon as its short window
/// supports it, keeps firing while its findings window still holds the incident (an OOM
/// kill stays reported for the whole findings window), and is never counted twice. The
/// report's signals are the findings window's; `None` when that window cannot be built.
pub fn evaluate_windows(
    rules: &[Box<dyn Rule>],
    thresholds: &Thresholds,
    findings_window: Duration,
    mut window: impl FnMut(Duration) -> Option<Signals>,
) -> Option<Report> {
    let mut windows: std::collections::BTreeMap<Duration, Option<Signals>> =
        std::collections::BTreeMap::new();
    let base = window(findings_window)?;
    let mut findings: Vec<Finding> = Vec::new();
    for r in rules {
        let mut best: Option<(crate::Severity, Vec<Finding>)> = None;
        for w in findings_windows(r.as_ref(), thresholds, findings_window) {
            let signals = if w == findings_window {
                Some(&base)
            } else {
                windows.entry(w).or_insert_with(|| window(w)).as_ref()
            };
            let Some(signals) = signals else {
                continue;
            };
            let found = findings_of(r.as_ref(), signals, thresholds);
            let Some(worst) = found.iter().map(|f| f.severity).max() else {
                continue;
            };
            if best.as_ref().is_none_or(|(b, _)| worst > *b) {
                best = Some((worst, found));
            }
        }
        findings.extend(best.map(|(_, f)| f).unwrap_or_default());
    }
    rank(&mut findings);
    Some(Report::new(base, findings))
}

#[cfg(test)]
mod tests {
    use std::sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    };

    use super::*;

    /// Counts up by one on every sample; fills `custom[name]` with last − first and the
    /// number of samples it saw. Fails its sample when `fail_after` samples were taken.
    struct Counter {
        name: &'static str,
        n: Arc<AtomicU64>,
        fail_after: Option<u64>,
    }

    impl Collector for Counter {
        fn name(&self) -> &str {
            self.name
        }
        fn sample(&mut self) -> Result<Sample, CollectorError> {
            let n = self.n.fetch_add(1, Ordering::SeqCst);
            if self.fail_after.is_some_and(|k| n >= k) {
                return Err(CollectorError::Source {
                    source_name: "/proc/test".into(),
                    reason: "gone".into(),
                });
            }
            Ok(Sample::now(n))
        }
        fn fill(&self, samples: &[&Sample], s: &mut Signals) -> Result<(), CollectorError> {
            let first = *samples[0].get::<u64>().unwrap();
            let last = *samples[samples.len() - 1].get::<u64>().unwrap();
            s.custom.insert(
                self.name.into(),
                serde_json::json!({"delta": last - first, "samples": samples.len()}),
            );
            Ok(())
        }
    }

    fn engine_with(fail_after: Option<u64>) -> (Engine, Arc<AtomicU64>, Arc<AtomicU64>) {
        let (a, b) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let mut e = Engine::new();
        e.add_collector(Box::new(Counter {
            name: "steady",
            n: a.clone(),
            fail_after: None,
        }))
        .add_collector(Box::new(Counter {
            name: "flaky",
            n: b.clone(),
            fail_after,
        }));
        (e, a, b)
    }

    #[test]
    fn without_probes_the_procfs_collectors_run_and_each_probe_domain_names_its_capabilities() {
        let e = Engine::without_probes(
            &KernelOptions::default(),
            "not permitted to load eBPF probes: missing CAP_BPF and CAP_PERFMON",
        );
        assert_eq!(
            e.not_permitted(),
            Some("not permitted to load eBPF probes: missing CAP_BPF and CAP_PERFMON")
        );
        assert!(e.probe_status().is_empty());
        let domains: Vec<&str> = e.degraded().iter().map(|d| d.domain.as_str()).collect();
        assert_eq!(domains, ["syscalls", "fds", "sched", "disk", "tcp", "oom"]);
        for d in e.degraded() {
            assert!(
                d.reason.starts_with("not permitted: ")
                    && d.reason.contains(
                        "needs CAP_BPF and CAP_PERFMON (missing CAP_BPF and CAP_PERFMON)"
                    ),
                "{d:?}"
            );
        }
        assert!(e.degraded()[1].reason.contains("/proc/<pid>/fd"));
        // sched (tp_btf, offsets from BTF) reads no tracefs; tcp (classic) does.
        assert!(!e.degraded()[2].reason.contains("CAP_DAC_READ_SEARCH"));
        assert!(e.degraded()[4].reason.contains("CAP_DAC_READ_SEARCH"));
        assert_eq!(
            e.collector_names(),
            [
                "fd_counts",
                "memory",
                "filesystem",
                "pids",
                "conntrack",
                "saturation"
            ]
        );
        // Only the domains asked for.
        let e = Engine::without_probes(
            &KernelOptions {
                domains: vec![Domain::Tcp, Domain::Memory],
                ..KernelOptions::default()
            },
            "missing CAP_BPF",
        );
        let domains: Vec<&str> = e.degraded().iter().map(|d| d.domain.as_str()).collect();
        assert_eq!(domains, ["tcp"]);
        assert!(e.degraded()[0].reason.contains("(missing CAP_BPF)"));
        assert_eq!(e.collector_names(), ["memory", "saturation"]);
    }

    #[test]
    fn collect_samples_at_start_each_second_and_end_and_fills_every_collector() {
        let (mut e, steady, _) = engine_with(None);
        let mut ticks = 0;
        let s = e
            .collect(Duration::from_secs(2), None, &mut |_, _| ticks += 1)
            .unwrap();
        // Start, once a second while at least half a second is left, and the end.
        assert_eq!(steady.load(Ordering::SeqCst), 3);
        assert_eq!(
            s.custom["steady"],
            serde_json::json!({"delta": 2, "samples": 3})
        );
        assert_eq!(s.custom["flaky"]["samples"], 3);
        assert!(s.degraded.is_empty(), "{:?}", s.degraded);
        assert!(
            (2000..2500).contains(&s.window.duration_ms),
            "{}",
            s.window.duration_ms
        );
        assert!(
            ticks >= 15,
            "progress about ten times a second, got {ticks}"
        );
        assert_eq!(s.collector_pid, std::process::id());
        assert_eq!(s.schema, crate::SCHEMA_VERSION);
    }

    #[test]
    fn a_failing_collector_degrades_its_domain_only_and_says_why() {
        let (mut e, _, flaky) = engine_with(Some(1));
        let s = e
            .collect(Duration::from_secs(1), None, &mut |_, _| {})
            .unwrap();
        assert!(s.custom.contains_key("steady"));
        assert!(!s.custom.contains_key("flaky"));
        assert_eq!(s.degraded.len(), 1, "{:?}", s.degraded);
        assert_eq!(s.degraded[0].domain, "flaky");
        assert_eq!(s.degraded[0].reason, "collector failed: /proc/test: gone");
        // Once failed, it is not asked again in the same window.
        assert_eq!(flaky.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn a_collector_failing_on_purpose_degrades_its_domain_with_the_knob_named() {
        let mut e = Engine::new();
        e.add_collector(Box::new(FailOnPurpose("memory".into())));
        let s = e
            .collect(Duration::from_secs(1), None, &mut |_, _| {})
            .unwrap();
        assert_eq!(s.degraded.len(), 1, "{:?}", s.degraded);
        assert_eq!(s.degraded[0].domain, "memory");
        assert_eq!(
            s.degraded[0].reason,
            "collector failed: KERNO_FAIL_PROBES: the memory collector fails on purpose"
        );
        assert!(s.memory.is_none());
    }

    #[test]
    fn too_few_samples_is_degraded_not_empty() {
        let (e, _, _) = engine_with(None);
        let one = Sample::now(0u64);
        let s = e.signals_from(&[vec![&one], vec![]], 0, Duration::from_secs(1));
        assert_eq!(s.degraded.len(), 2);
        assert!(
            s.degraded
                .iter()
                .all(|d| d.reason == "not enough samples in the window")
        );
    }

    #[test]
    fn collect_refuses_bad_windows_and_stops_when_cancelled() {
        let (mut e, _, _) = engine_with(None);
        for d in [Duration::from_millis(999), Duration::from_secs(301)] {
            assert!(matches!(
                e.collect(d, None, &mut |_, _| {}),
                Err(CoreError::Window(_))
            ));
        }
        let cancel = AtomicBool::new(false);
        let started = Instant::now();
        let r = e.collect(Duration::from_secs(30), Some(&cancel), &mut |elapsed, _| {
            if elapsed >= Duration::from_millis(200) {
                cancel.store(true, Ordering::Relaxed);
            }
        });
        assert!(matches!(r, Err(CoreError::Interrupted)));
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    /// Fires with the severity the window's `custom["<id>"]` names (0 info, 1 warning,
    /// 2 critical, absent: quiet), titled with the window's length.
    struct ByWindow {
        id: &'static str,
        min: Option<Duration>,
    }

    impl Rule for ByWindow {
        fn id(&self) -> &str {
            self.id
        }
        fn description(&self) -> &str {
            "test"
        }
        fn min_window(&self, _t: &Thresholds) -> Option<Duration> {
            self.min
        }
        fn evaluate(&self, s: &Signals, _t: &Thresholds) -> Vec<Finding> {
            let Some(v) = s.custom.get(self.id).and_then(|v| v.as_u64()) else {
                return Vec::new();
            };
            let severity = [
                crate::Severity::Info,
                crate::Severity::Warning,
                crate::Severity::Critical,
            ][v as usize];
            vec![Finding {
                rule: self.id.into(),
                severity,
                title: format!("over {} s", s.window_secs()),
                cause: String::new(),
                impact: String::new(),
                evidence: Vec::new(),
                value: 0.0,
                threshold: 0.0,
                unit: String::new(),
                fix: Vec::new(),
                eta_secs: None,
                subject: crate::Subject::host("h"),
                low_volume: false,
            }]
        }
    }

    #[test]
    fn a_rule_is_evaluated_over_its_short_window_and_the_findings_window() {
        let secs = Duration::from_secs;
        let rules: Vec<Box<dyn Rule>> = vec![
            // Critical over 5 s, warning over 30 s: the short window's finding.
            Box::new(ByWindow {
                id: "fast",
                min: Some(secs(5)),
            }),
            // Quiet over 5 s (the incident ended), still in the 30 s window: held.
            Box::new(ByWindow {
                id: "held",
                min: Some(secs(5)),
            }),
            // Warning in both: counted once, from the shorter window.
            Box::new(ByWindow {
                id: "both",
                min: Some(secs(8)),
            }),
            // No minimum: the findings window only.
            Box::new(ByWindow {
                id: "long",
                min: None,
            }),
            // A minimum longer than the findings window: that minimum only.
            Box::new(ByWindow {
                id: "longer",
                min: Some(secs(60)),
            }),
        ];
        let t = Thresholds::default();
        assert_eq!(
            findings_windows(rules[0].as_ref(), &t, secs(30)),
            [secs(5), secs(30)]
        );
        assert_eq!(
            findings_windows(rules[3].as_ref(), &t, secs(30)),
            [secs(30)]
        );
        assert_eq!(
            findings_windows(rules[4].as_ref(), &t, secs(30)),
            [secs(60)]
        );
        let mut asked = Vec::new();
        let report = evaluate_windows(&rules, &t, secs(30), |w| {
            asked.push(w.as_secs());
            let mut s = Signals {
                window: crate::Window {
                    duration_ms: w.as_millis() as u64,
                    ..Default::default()
                },
                ..Signals::default()
            };
            let c = &mut s.custom;
            match w.as_secs() {
                5 => {
                    c.insert("fast".into(), 2.into());
                }
                8 => {
                    c.insert("both".into(), 1.into());
                }
                30 => {
                    for k in ["held", "both", "long"] {
                        c.insert(k.into(), 1.into());
                    }
                    c.insert("fast".into(), 1.into());
                    c.insert("longer".into(), 2.into());
                }
                60 => {
                    c.insert("longer".into(), 0.into());
                }
                _ => {}
            }
            Some(s)
        })
        .unwrap();
        asked.sort_unstable();
        assert_eq!(asked, [5, 8, 30, 60], "each length built once");
        let got: Vec<(String, crate::Severity, String)> = report
            .findings
            .iter()
            .map(|f| (f.rule.clone(), f.severity, f.title.clone()))
            .collect();
        use crate::Severity::*;
        let want = [
            ("fast", Critical, "over 5 s"),
            ("both", Warning, "over 8 s"),
            ("held", Warning, "over 30 s"),
            ("long", Warning, "over 30 s"),
            ("longer", Info, "over 60 s"),
        ];
        for w in want {
            assert!(
                got.iter().any(|g| (g.0.as_str(), g.1, g.2.as_str()) == w),
                "{w:?} not in {got:?}"
            );
        }
        assert_eq!(got.len(), want.len(), "{got:?}");
        assert_eq!(report.signals.window.duration_ms, 30_000);
        // Without the findings window there is no report.
        assert!(evaluate_windows(&rules, &t, secs(30), |_| None).is_none());
    }
}
