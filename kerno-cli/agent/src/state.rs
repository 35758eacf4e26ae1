//! The agent's shared state and its sampling loop.

use std::{
    panic::AssertUnwindSafe,
    sync::{
        Arc, Mutex, MutexGuard,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use kerno_core::{
    Degraded, Engine, Host, Report, Rule, Sample, Signals, Thresholds, config::AiConfig,
    readiness::ProbeDomain,
};

use crate::{
    history::{History, Tick},
    metrics::{CollectorStat, ProbeState, Recent, TOP_CGROUPS, TOP_PROCESSES, View},
    otlp::OtlpStats,
    totals::Totals,
};

/// Lock, ignoring poisoning: a panic elsewhere must not take the agent down with it.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Where the agent is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Loading and attaching the probes.
    Loading,
    /// Sampling.
    Running,
    /// Shutting down.
    Stopping,
}

pub(crate) struct Status {
    pub phase: Phase,
    /// `/metrics` has the counters of a first interval and the gauges of a first window:
    /// until then `/readyz` says `warming_up`.
    pub published: bool,
    pub probes: Vec<ProbeDomain>,
    pub degraded: Vec<Degraded>,
    pub collectors: Vec<CollectorStat>,
    pub started: Instant,
}

/// Everything the server, the sampler and the shutdown path share.
pub(crate) struct Shared {
    pub keep: Duration,
    pub findings_window: Duration,
    pub update_every: Duration,
    pub rules: Vec<Box<dyn Rule>>,
    pub thresholds: Thresholds,
    pub host: Host,
    pub engine: Mutex<Option<Engine>>,
    pub history: Mutex<History>,
    pub status: Mutex<Status>,
    pub totals: Mutex<Arc<Totals>>,
    pub recent: Mutex<Option<Arc<Recent>>>,
    /// The findings window as last built at an update, for the ticks in between (see
    /// [`update_findings`]).
    pub findings_base: Mutex<Option<Signals>>,
    pub stop: AtomicBool,
    /// When the sampling loop last completed a step (or the engine was installed):
    /// `/healthz` fails when it is older than [`STUCK_AFTER`].
    pub heartbeat: Mutex<Instant>,
    /// The AI post-processor's settings, for `/doctor?ai=1`.
    pub ai: AiConfig,
    /// The bearer token `/doctor` on the TCP address asks for; `None`: it is not served
    /// there.
    pub doctor_token: Option<Vec<u8>>,
    /// The collectors of the levels `kerno predict` projects (procfs and cgroupfs only).
    pub levels_engine: Mutex<Engine>,
    /// Their samples, every `levels_every`, for [`LEVELS_KEEP`].
    pub levels: Mutex<History>,
    /// When the agent started, Unix ns: where its counters start.
    pub started_unix_ns: u64,
    /// The OTLP exporter's counts, when it runs.
    pub otlp: Option<Arc<OtlpStats>>,
}

/// A running agent whose sampling loop has not completed a step (a tick a second) for this
/// long is stuck: `/healthz` fails, so a liveness probe restarts it.
pub(crate) const STUCK_AFTER: Duration = Duration::from_secs(10);

/// How much level history the agent keeps for `kerno predict`.
pub(crate) const LEVELS_KEEP: Duration = Duration::from_secs(3600);

impl Shared {
    pub fn new(
        keep: Duration,
        findings_window: Duration,
        update_every: Duration,
        rules: Vec<Box<dyn Rule>>,
        thresholds: Thresholds,
    ) -> Shared {
        Shared {
            keep,
            findings_window,
            update_every,
            rules,
            thresholds,
            host: kerno_core::host::detect_host(),
            engine: Mutex::new(None),
            history: Mutex::new(History::new(keep)),
            status: Mutex::new(Status {
                phase: Phase::Loading,
                published: false,
                probes: Vec::new(),
                degraded: Vec::new(),
                collectors: Vec::new(),
                started: Instant::now(),
            }),
            totals: Mutex::new(Arc::new(Totals::default())),
            recent: Mutex::new(None),
            findings_base: Mutex::new(None),
            stop: AtomicBool::new(false),
            heartbeat: Mutex::new(Instant::now()),
            ai: AiConfig::default(),
            doctor_token: None,
            levels_engine: Mutex::new(kerno_core::predict::engine()),
            levels: Mutex::new(History::new(LEVELS_KEEP)),
            started_unix_ns: crate::otlp::unix_ns_now(),
            otlp: None,
        }
    }

    /// With the OTLP exporter's counts in `/metrics`.
    pub fn with_otlp(mut self, stats: Arc<OtlpStats>) -> Shared {
        self.otlp = Some(stats);
        self
    }

    /// With the AI post-processor's settings.
    pub fn with_ai(mut self, ai: AiConfig) -> Shared {
        self.ai = ai;
        self
    }

    /// Serve `/doctor` on the TCP address to requests bearing `token`.
    pub fn with_doctor_token(mut self, token: Option<String>) -> Shared {
        self.doctor_token = token.map(String::into_bytes);
        self
    }

    /// Hand over the loaded engine and start answering.
    pub fn install(&self, engine: Engine) {
        {
            let mut st = lock(&self.status);
            st.probes = engine
                .probe_status()
                .iter()
                .map(ProbeDomain::from)
                .collect();
            st.degraded = engine.degraded().to_vec();
            st.collectors = engine
                .collector_names()
                .iter()
                .map(|n| CollectorStat {
                    name: n.to_string(),
                    ..CollectorStat::default()
                })
                .collect();
            st.phase = Phase::Running;
        }
        *lock(&self.heartbeat) = Instant::now();
        *lock(&self.engine) = Some(engine);
    }

    /// The window of the last `length` (or all the history there is, if shorter), built
    /// by the engine from the kept samples exactly as a doctor run builds its own.
    pub fn window_signals(&self, length: Duration) -> Option<Signals> {
        // The engine first: compaction runs under it, so the window's newest tick is never
        // older than the one a compaction kept exact.
        let engine = lock(&self.engine);
        let engine = engine.as_ref()?;
        let w = lock(&self.history).window(length)?;
        let refs: Vec<Vec<&Sample>> = w
            .series
            .iter()
            .map(|s| s.iter().map(|a| a.as_ref()).collect())
            .collect();
        let mut signals = engine.signals_from(&refs, w.start_unix_ms, w.duration);
        // A collector left without samples by read errors: say why, as a doctor run would.
        let st = lock(&self.status);
        for (i, name) in engine.collector_names().iter().enumerate() {
            if w.series[i].len() >= 2 {
                continue;
            }
            if let Some(err) = st.collectors.get(i).and_then(|c| c.last_error.as_ref()) {
                for d in signals.degraded.iter_mut().filter(|d| d.domain == *name) {
                    d.reason = format!("collector failed: {err}");
                }
            }
        }
        Some(signals)
    }

    /// The levels of the last `length` (or all there are), as the predict engine builds
    /// them; `None` until two samples are in.
    pub fn levels_signals(&self, length: Duration) -> Option<Signals> {
        let engine = lock(&self.levels_engine);
        let w = lock(&self.levels).window(length)?;
        let refs: Vec<Vec<&Sample>> = w
            .series
            .iter()
            .map(|s| s.iter().map(|a| a.as_ref()).collect())
            .collect();
        Some(engine.signals_from(&refs, w.start_unix_ms, w.duration))
    }

    /// Run the agent's rules over a window.
    pub fn evaluate(&self, signals: &Signals) -> Report {
        kerno_core::evaluate(signals, &self.rules, &self.thresholds)
    }

    /// What a scrape renders.
    pub fn view(&self) -> View {
        let st = lock(&self.status);
        let h = &self.host;
        View {
            info: vec![
                ("version", env!("CARGO_PKG_VERSION").to_string()),
                ("kernel", h.kernel.clone()),
                (
                    "node",
                    if h.node.is_empty() {
                        h.hostname.clone()
                    } else {
                        h.node.clone()
                    },
                ),
                ("environment", h.environment.clone()),
            ],
            probes: st
                .probes
                .iter()
                .map(|p| ProbeState {
                    domain: p.domain.clone(),
                    attached: p.attached(),
                    programs: p.programs.len(),
                })
                .collect(),
            collectors: st.collectors.clone(),
            rules: self.rules.iter().map(|r| r.id().to_string()).collect(),
            totals: lock(&self.totals).clone(),
            recent: lock(&self.recent).clone(),
            history_secs: lock(&self.history).span().as_secs_f64(),
            otlp: self.otlp.as_ref().map(|s| s.counts()),
        }
    }
}

/// The sampling loop: a tick a second until `stop`. Runs on its own thread.
pub(crate) fn sampler(shared: Arc<Shared>) {
    let mut accounted: Vec<Option<Arc<Sample>>> = Vec::new();
    let mut last_update: Option<Instant> = None;
    let mut published_early = false;
    let mut last_log: Vec<Option<Instant>> = Vec::new();
    let mut next = Instant::now();
    #[cfg(debug_assertions)]
    let (stall_after, mut ticks) = (stall_after(), 0u64);
    while !shared.stop.load(Ordering::SeqCst) {
        #[cfg(debug_assertions)]
        if stall_after.is_some_and(|n| ticks >= n) {
            stall(&shared);
            break;
        }
        let step = std::panic::catch_unwind(AssertUnwindSafe(|| {
            let newest = tick(&shared, &mut last_log);
            let now = Instant::now();
            // Every `update_every` from the first tick (where the counters start), and once
            // more a tick after it, to publish a first interval at once (readiness waits for
            // it). That extra one keeps the schedule and does not compact.
            let mut added = false;
            if last_update.is_none_or(|t| now.duration_since(t) >= shared.update_every) {
                added = update(&shared, &mut accounted, &newest, true);
                last_update = Some(now);
            } else if !published_early {
                added = update(&shared, &mut accounted, &newest, false);
                published_early = true;
            }
            // Every tick: a finding's short window is a few seconds, so waiting for the
            // next update would add up to `update_every` to the time to detection (an update
            // that added an interval has just evaluated them).
            if !added {
                update_findings(&shared, false);
            }
        }));
        #[cfg(debug_assertions)]
        {
            ticks += 1;
        }
        match step {
            Ok(()) => *lock(&shared.heartbeat) = Instant::now(),
            Err(_) => tracing::error!("the sampling step panicked; the agent keeps going"),
        }
        next += Duration::from_secs(1);
        let now = Instant::now();
        if next < now {
            // Fell behind (a slow read, a suspended VM): skip the missed ticks.
            next = now + Duration::from_secs(1);
        }
        while !shared.stop.load(Ordering::SeqCst) {
            let now = Instant::now();
            if now >= next {
                break;
            }
            std::thread::sleep((next - now).min(Duration::from_millis(100)));
        }
    }
}

/// The test-only fault `KERNO_FAIL_SAMPLER=N`: the sampling loop stops after N ticks, as
/// one stuck in a read would, so a test sees `/healthz` fail. Read only in debug builds
/// (what `cargo test` runs); a release binary has no such code and ignores the variable.
#[cfg(debug_assertions)]
fn stall_after() -> Option<u64> {
    let v = std::env::var("KERNO_FAIL_SAMPLER").ok()?;
    match v.trim().parse() {
        Ok(n) => Some(n),
        Err(_) => {
            tracing::warn!("KERNO_FAIL_SAMPLER={v:?} is not a number of ticks; ignored");
            None
        }
    }
}

/// Block like a stuck loop until the agent stops.
#[cfg(debug_assertions)]
fn stall(shared: &Shared) {
    tracing::warn!("KERNO_FAIL_SAMPLER: the sampling loop stalls on purpose");
    while !shared.stop.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Record the levels every `every` until `stop`. Runs on its own thread; a failing
/// collector leaves a gap in its series, the others go on.
pub(crate) fn level_sampler(shared: Arc<Shared>, every: Duration) {
    let mut next = Instant::now();
    while !shared.stop.load(Ordering::SeqCst) {
        let step = std::panic::catch_unwind(AssertUnwindSafe(|| {
            let samples: Vec<Option<Arc<Sample>>> = lock(&shared.levels_engine)
                .try_sample_all()
                .into_iter()
                .map(|r| r.ok().map(Arc::new))
                .collect();
            lock(&shared.levels).push(Tick {
                at: Instant::now(),
                unix_ms: kerno_core::unix_ms_now(),
                samples,
            });
        }));
        if step.is_err() {
            eprintln!("kerno: recording the levels panicked; the agent keeps going");
        }
        next += every;
        let now = Instant::now();
        if next < now {
            next = now + every;
        }
        while !shared.stop.load(Ordering::SeqCst) {
            let now = Instant::now();
            if now >= next {
                break;
            }
            std::thread::sleep((next - now).min(Duration::from_millis(100)));
        }
    }
}

/// Take one sample from every collector and keep it; count and log failures.
pub(crate) fn tick(
    shared: &Shared,
    last_log: &mut Vec<Option<Instant>>,
) -> Vec<Option<Arc<Sample>>> {
    let results = match lock(&shared.engine).as_mut() {
        Some(e) => e.try_sample_all(),
        None => return Vec::new(),
    };
    let at = Instant::now();
    let unix_ms = kerno_core::unix_ms_now();
    let mut samples = Vec::with_capacity(results.len());
    {
        let mut st = lock(&shared.status);
        last_log.resize(results.len(), None);
        for (i, r) in results.into_iter().enumerate() {
            let Some(c) = st.collectors.get_mut(i) else {
                continue;
            };
            match r {
                Ok(s) => {
                    c.samples += 1;
                    c.failing = false;
                    samples.push(Some(Arc::new(s)));
                }
                Err(e) => {
                    c.errors += 1;
                    c.failing = true;
                    let msg = e.to_string();
                    // Log a new reason at once, a repeated one at most once a minute.
                    let repeat = c.last_error.as_deref() == Some(msg.as_str());
                    if !repeat
                        || last_log[i]
                            .is_none_or(|t| at.duration_since(t) >= Duration::from_secs(60))
                    {
                        tracing::warn!(
                            collector = %c.name,
                            errors = c.errors,
                            "collector {}: {msg} ({} errors so far; the agent keeps going)",
                            c.name,
                            c.errors
                        );
                        last_log[i] = Some(at);
                    }
                    c.last_error = Some(msg);
                    samples.push(None);
                }
            }
        }
    }
    lock(&shared.history).push(Tick {
        at,
        unix_ms,
        samples: samples.clone(),
    });
    samples
}

/// Add the interval since the last update to the totals, evaluate the findings gauges
/// with them, and compact the kept samples when `compact_history`. True when an interval
/// was added (the first call only starts the counters).
pub(crate) fn update(
    shared: &Shared,
    accounted: &mut Vec<Option<Arc<Sample>>>,
    newest: &[Option<Arc<Sample>>],
    compact_history: bool,
) -> bool {
    let mut added = false;
    if accounted.len() != newest.len() {
        // The first tick is where the counters start.
        *accounted = newest.to_vec();
    } else {
        let series: Vec<Vec<&Sample>> = accounted
            .iter()
            .zip(newest)
            .map(|(a, b)| match (a, b) {
                (Some(a), Some(b)) => vec![a.as_ref(), b.as_ref()],
                _ => Vec::new(),
            })
            .collect();
        let interval = {
            let engine = lock(&shared.engine);
            engine
                .as_ref()
                .map(|e| e.signals_from(&series, 0, Duration::from_secs(1)))
        };
        if let Some(interval) = interval {
            let mut totals = Totals::clone(&lock(&shared.totals));
            totals.add(&interval);
            *lock(&shared.totals) = Arc::new(totals);
            added = true;
        }
        for (a, b) in accounted.iter_mut().zip(newest) {
            if b.is_some() {
                *a = b.clone();
            }
        }
    }
    if added {
        // The gauges with the new totals; ready once /metrics has an interval of totals and
        // the findings gauges.
        update_findings(shared, true);
        if lock(&shared.recent).is_some() {
            lock(&shared.status).published = true;
        }
    }
    if compact_history {
        compact(shared);
    }
    added
}

/// Evaluate every rule over its short window and the findings window
/// ([`kerno_core::evaluate_windows`]) for the gauges.
///
/// The short windows are built anew at every tick: they are what detects an incident within
/// seconds. The findings window (30 s by default, longer than every short window) keeps a
/// finding firing after its short window has let go, and is where the level rules (a table
/// or a disk filling, minutes away) look; it is built anew at each update (`refresh`, every
/// 5 s) and reused in between, so those gauges move every 5 s. It was most of the agent's
/// work in a storm of short-lived processes, whose per-process rows move in every one of
/// its seconds. When a rule's short window is not shorter than it, it is built every tick.
fn update_findings(shared: &Shared, refresh: bool) {
    let fw = shared.findings_window;
    let reusable = !refresh
        && shared
            .rules
            .iter()
            .all(|r| r.min_window(&shared.thresholds).is_none_or(|m| m < fw));
    let mut base = lock(&shared.findings_base);
    let report = kerno_core::evaluate_windows(&shared.rules, &shared.thresholds, fw, |w| {
        if w == fw {
            if reusable && let Some(b) = base.as_ref() {
                return Some(b.clone());
            }
            let fresh = shared.window_signals(w);
            base.clone_from(&fresh);
            return fresh;
        }
        shared.window_signals(w)
    });
    if let Some(report) = report {
        *lock(&shared.recent) = Some(Arc::new(recent(&report.signals, &report)));
    }
}

/// Drop from the kept samples what no window ending now can need (entries of processes
/// gone from the kernel maps), so a storm of short-lived processes costs memory for seconds,
/// not for the whole window.
fn compact(shared: &Shared) {
    let engine = lock(&shared.engine);
    let Some(engine) = engine.as_ref() else {
        return;
    };
    let Some(all) = lock(&shared.history).window(Duration::MAX) else {
        return;
    };
    let refs: Vec<Vec<&Sample>> = all
        .series
        .iter()
        .map(|s| s.iter().map(|a| a.as_ref()).collect())
        .collect();
    engine.compact(&refs);
}

/// The gauges' view of one findings window.
fn recent(s: &Signals, report: &Report) -> Recent {
    let mut r = Recent::default();
    for f in &report.findings {
        *r.findings.entry((f.rule.clone(), f.severity)).or_insert(0) += 1;
    }
    r.list = report.findings.clone();
    if let Some(m) = &s.memory {
        r.cgroups = m
            .cgroups
            .iter()
            .take(TOP_CGROUPS)
            .map(|c| (c.path.clone(), c.workload_labels(), c.fill_pct()))
            .collect();
        if let Some(v) = m.psi_some_avg10 {
            r.psi.push(("memory", "some", v));
        }
        if let Some(v) = m.psi_full_avg10 {
            r.psi.push(("memory", "full", v));
        }
    }
    if let Some(v) = s.sched.as_ref().and_then(|x| x.psi_cpu_some_avg10) {
        r.psi.push(("cpu", "some", v));
    }
    if let Some(fds) = &s.fds {
        r.fd_growth = fds.growth_by_comm(s.window_secs());
        r.fd_growth.truncate(TOP_PROCESSES);
    }
    r
}

#[cfg(test)]
mod tests {
    use kerno_core::{Collector, CollectorError};

    use super::*;

    /// Counts up; every third reading fails, as a map read might.
    struct Flaky(u64);

    impl Collector for Flaky {
        fn name(&self) -> &str {
            "flaky"
        }
        fn sample(&mut self) -> Result<Sample, CollectorError> {
            self.0 += 1;
            if self.0.is_multiple_of(3) {
                return Err(CollectorError::Source {
                    source_name: "test map".into(),
                    reason: "read failed".into(),
                });
            }
            Ok(Sample::now(self.0))
        }
        fn fill(&self, samples: &[&Sample], s: &mut Signals) -> Result<(), CollectorError> {
            let n = samples.iter().filter_map(|x| x.get::<u64>()).count();
            s.custom.insert("flaky".into(), n.into());
            Ok(())
        }
    }

    #[test]
    fn failed_readings_are_counted_and_the_window_goes_on() {
        let shared = Shared::new(
            Duration::from_secs(60),
            Duration::from_secs(30),
            Duration::from_secs(5),
            Vec::new(),
            Thresholds::default(),
        );
        let mut engine = Engine::new();
        engine.add_collector(Box::new(Flaky(0)));
        shared.install(engine);
        let mut last_log = Vec::new();
        let mut accounted = Vec::new();
        for _ in 0..6 {
            let newest = tick(&shared, &mut last_log);
            update(&shared, &mut accounted, &newest, true);
        }
        let st = lock(&shared.status);
        assert_eq!((st.collectors[0].samples, st.collectors[0].errors), (4, 2));
        assert!(
            st.collectors[0]
                .last_error
                .as_deref()
                .unwrap()
                .contains("read failed")
        );
        drop(st);
        let w = shared.window_signals(Duration::from_secs(60)).unwrap();
        assert_eq!(w.custom["flaky"], 4, "the good readings make the window");
        assert!(shared.view().collectors[0].errors == 2);
    }
}
