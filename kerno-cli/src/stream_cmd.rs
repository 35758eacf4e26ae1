//! `kerno trace ...` and `kerno watch ...`: open a stream from kerno-core, print its events
//! (aligned columns, or one JSON object per line), end on --duration, --count, Ctrl-C or
//! SIGTERM with the summary, and warn on stderr while events are lost.

use std::{
    io::{IsTerminal, Write},
    time::Duration,
};

use anyhow::{Context as _, anyhow};
use kerno_core::{
    config::parse_duration,
    stream::{
        StreamError, Summary,
        disk::{DiskEvent, DiskFilter, DiskStream},
        fd::{FdTable, FdWatch},
        oom::{OomEvent, OomStream},
        parse_threshold,
        sched::{SchedEvent, SchedFilter, SchedStream},
        syscall::{SyscallEvent, SyscallFilter, SyscallStream},
        tcp::{TcpEvent, TcpFilter, TcpStream},
    },
    thousands,
};
use serde::Serialize;
use tokio::signal::unix::{SignalKind, signal};

use crate::cli::{TraceDiskArgs, TraceSchedArgs, WatchTcpArgs};
use crate::{
    Failure,
    cli::{
        GlobalArgs, Output, StreamArgs, StreamOutput, TraceArgs, TraceCommand, TraceSyscallArgs,
        WatchArgs, WatchCommand, WatchFdArgs, WatchOomArgs,
    },
    exit,
};

/// How long the last drain waits for records still in flight when a stream ends.
const LAST_DRAIN: Duration = Duration::from_millis(150);

fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the event loop")?)
}

fn stream_error(e: StreamError) -> Failure {
    match e {
        StreamError::Filter(_) => Failure::usage(e),
        StreamError::Probes(kerno_core::stream::ProbeError::BadOption(_)) => Failure::usage(e),
        other => Failure::from(other),
    }
}

/// `kerno trace ...`.
pub fn trace(args: TraceArgs, g: &GlobalArgs) -> Result<u8, Failure> {
    let output = stream_output(g, "trace")?;
    match args.what {
        TraceCommand::Syscall(mut a) => {
            a.stream.output = output;
            trace_syscall(a)
        }
        TraceCommand::Sched(mut a) => {
            a.stream.output = output;
            trace_sched(a)
        }
        TraceCommand::Disk(mut a) => {
            a.stream.output = output;
            trace_disk(a)
        }
    }
}

/// The global `--output` as a stream's format: pretty or json, anything else a usage error.
fn stream_output(g: &GlobalArgs, command: &str) -> Result<StreamOutput, Failure> {
    Ok(
        match g.output_for(command, &[Output::Pretty, Output::Json], None)? {
            Output::Json => StreamOutput::Json,
            _ => StreamOutput::Pretty,
        },
    )
}

/// `kerno watch ...`.
pub fn watch(args: WatchArgs, g: &GlobalArgs) -> Result<u8, Failure> {
    let output = stream_output(g, "watch")?;
    match args.what {
        WatchCommand::Oom(mut a) => {
            a.stream.output = output;
            watch_oom(a)
        }
        WatchCommand::Fd(mut a) => {
            a.stream.output = output;
            watch_fd(a)
        }
        WatchCommand::Tcp(mut a) => {
            a.stream.output = output;
            watch_tcp(a)
        }
    }
}

/// `64K`, `1M`, `4096`: a ring size in bytes.
fn parse_size(s: &str) -> Result<u32, Failure> {
    let t = s.trim();
    let (num, mult) = match t.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        None => (t, 1u64),
        Some((i, _)) => {
            let mult = match t[i..].trim().to_ascii_lowercase().as_str() {
                "k" | "kb" | "kib" => 1024,
                "m" | "mb" | "mib" => 1024 * 1024,
                _ => 0,
            };
            (&t[..i], mult)
        }
    };
    let n: u64 = num.parse().unwrap_or(0);
    let bytes = n.saturating_mul(mult);
    if bytes == 0 || bytes > 1 << 30 {
        return Err(Failure::usage(anyhow!(
            "--ring-size {s:?}: expected a size such as 4096, 64K or 1M (at most 1G)"
        )));
    }
    Ok(bytes as u32)
}

fn parse_stream_args(a: &StreamArgs) -> Result<Option<Duration>, Failure> {
    if a.count == Some(0) {
        return Err(Failure::usage(anyhow!("--count must be at least 1")));
    }
    a.duration
        .as_deref()
        .map(|d| parse_duration(d).map_err(|e| Failure::usage(anyhow!("--duration: {e}"))))
        .transpose()
}

fn process_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised comm: a zombie has exited.
        Ok(s) => s
            .rsplit_once(')')
            .map(|(_, rest)| !rest.trim_start().starts_with(['Z', 'X']))
            .unwrap_or(false),
        Err(_) => false,
    }
}

/// A stream the driver below prints.
trait Source {
    type Event: Serialize;
    async fn next_event(&mut self) -> Option<Result<Self::Event, StreamError>>;
    fn header(&self) -> Option<String>;
    fn pretty(&self, e: &Self::Event) -> String;
    fn summary(&self) -> Result<Summary, StreamError>;
    fn lost(&self) -> Result<u64, StreamError>;
    /// What the ready line on stderr says is running.
    fn what(&self) -> String;
}

impl Source for SyscallStream {
    type Event = SyscallEvent;
    async fn next_event(&mut self) -> Option<Result<SyscallEvent, StreamError>> {
        self.next().await
    }
    fn header(&self) -> Option<String> {
        Some(SyscallEvent::header())
    }
    fn pretty(&self, e: &SyscallEvent) -> String {
        e.row()
    }
    fn summary(&self) -> Result<Summary, StreamError> {
        SyscallStream::summary(self)
    }
    fn lost(&self) -> Result<u64, StreamError> {
        SyscallStream::lost(self)
    }
    fn what(&self) -> String {
        "tracing syscalls".into()
    }
}

impl Source for OomStream {
    type Event = OomEvent;
    async fn next_event(&mut self) -> Option<Result<OomEvent, StreamError>> {
        self.next().await
    }
    fn header(&self) -> Option<String> {
        Some(OomEvent::header())
    }
    fn pretty(&self, e: &OomEvent) -> String {
        e.row()
    }
    fn summary(&self) -> Result<Summary, StreamError> {
        OomStream::summary(self)
    }
    fn lost(&self) -> Result<u64, StreamError> {
        OomStream::lost(self)
    }
    fn what(&self) -> String {
        "watching OOM kills".into()
    }
}

/// A kernel stream's `Source` impl: its header, row, summary and loss come from kerno-core.
macro_rules! ring_source {
    ($t:ty, $e:ty, $what:expr) => {
        impl Source for $t {
            type Event = $e;
            async fn next_event(&mut self) -> Option<Result<$e, StreamError>> {
                self.next().await
            }
            fn header(&self) -> Option<String> {
                Some(<$e>::header())
            }
            fn pretty(&self, e: &$e) -> String {
                e.row()
            }
            fn summary(&self) -> Result<Summary, StreamError> {
                <$t>::summary(self)
            }
            fn lost(&self) -> Result<u64, StreamError> {
                <$t>::lost(self)
            }
            fn what(&self) -> String {
                $what.into()
            }
        }
    };
}
ring_source!(SchedStream, SchedEvent, "tracing run-queue waits");
ring_source!(TcpStream, TcpEvent, "watching TCP");
ring_source!(DiskStream, DiskEvent, "tracing block I/O");

/// The descriptor watch as a source: one table per refresh; its summary counts the rows
/// shown and the processes sampled that did not grow fast enough.
struct FdSource {
    watch: FdWatch,
    min_rate: f64,
    rows: u64,
    terminal: bool,
}

impl Source for FdSource {
    type Event = FdTable;
    async fn next_event(&mut self) -> Option<Result<FdTable, StreamError>> {
        let t = self.watch.next().await;
        self.rows += t.processes.len() as u64;
        Some(Ok(t))
    }
    fn header(&self) -> Option<String> {
        None
    }
    fn pretty(&self, t: &FdTable) -> String {
        let table = t.render(self.min_rate);
        let table = table.trim_end();
        if self.terminal {
            // Redraw in place.
            format!("\x1b[2J\x1b[H{table}")
        } else {
            format!(
                "{}\n{table}\n",
                kerno_core::stream::format_utc_time(t.time_unix_ms * 1_000_000)
            )
        }
    }
    fn summary(&self) -> Result<Summary, StreamError> {
        Ok(Summary {
            shown: self.rows,
            filtered: 0,
            lost: 0,
        })
    }
    fn lost(&self) -> Result<u64, StreamError> {
        Ok(0)
    }
    fn what(&self) -> String {
        format!("watching descriptor growth of {}/s or more", self.min_rate)
    }
}

fn print_event<S: Source>(s: &S, e: &S::Event, output: StreamOutput) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    match output {
        StreamOutput::Json => {
            serde_json::to_writer(&mut out, e).context("writing an event")?;
            writeln!(out)?;
        }
        StreamOutput::Pretty => writeln!(out, "{}", s.pretty(e))?,
    }
    Ok(())
}

struct Ending {
    /// Stop after the first event, with this exit code.
    alert: Option<u8>,
    /// End when this process exits.
    pid: Option<u32>,
}

/// Prints `s` until it ends; returns the exit code.
async fn drive<S: Source>(mut s: S, a: &StreamArgs, end: Ending) -> Result<u8, Failure> {
    let duration = parse_stream_args(a)?;
    let mut sigint = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let mut sigterm = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let deadline = duration.map(|d| tokio::time::Instant::now() + d);
    eprintln!("kerno: {} (Ctrl-C to stop)", s.what());
    match s.header() {
        Some(h) if a.output == StreamOutput::Pretty => println!("{h}"),
        _ => {}
    }
    let mut check = tokio::time::interval(Duration::from_millis(250));
    let mut last_lost = 0u64;
    let mut shown = 0u64;
    let mut code = exit::OK;
    let reached = |shown: u64| a.count.is_some_and(|n| shown >= n);
    let mut done = false;
    loop {
        tokio::select! {
            ev = s.next_event() => match ev {
                Some(Ok(e)) => {
                    print_event(&s, &e, a.output)?;
                    shown += 1;
                    if let Some(c) = end.alert {
                        code = c;
                        done = true;
                    }
                    if reached(shown) {
                        done = true;
                    }
                    if done {
                        break;
                    }
                }
                Some(Err(e)) => return Err(stream_error(e)),
                None => break,
            },
            _ = sigint.recv() => break,
            _ = sigterm.recv() => break,
            _ = async { tokio::time::sleep_until(deadline.unwrap()).await }, if deadline.is_some() => break,
            _ = check.tick() => {
                let lost = s.lost().map_err(stream_error)?;
                if lost > last_lost {
                    eprintln!(
                        "kerno: warning: {} events lost (the ring buffer was full; {} in all): narrow the filters or raise --ring-size",
                        thousands(lost - last_lost),
                        thousands(lost)
                    );
                    last_lost = lost;
                }
                if end.pid.is_some_and(|p| !process_alive(p)) {
                    break;
                }
            }
        }
    }
    // What is already in the ring belongs to the window the user asked for.
    if !done {
        // One deadline for the whole drain: a busy stream never runs dry.
        let until = tokio::time::Instant::now() + LAST_DRAIN;
        while let Ok(Some(Ok(e))) = tokio::time::timeout_at(until, s.next_event()).await {
            print_event(&s, &e, a.output)?;
            shown += 1;
            if reached(shown) {
                break;
            }
        }
    }
    let sum = s.summary().map_err(stream_error)?;
    if sum.lost > last_lost {
        eprintln!(
            "kerno: warning: {} events lost (the ring buffer was full)",
            thousands(sum.lost - last_lost)
        );
    }
    match a.output {
        StreamOutput::Json => {
            #[derive(Serialize)]
            struct Last {
                summary: Summary,
            }
            let line = serde_json::to_string(&Last { summary: sum }).context("the summary")?;
            println!("{line}");
        }
        StreamOutput::Pretty => println!(
            "-- {} shown, {} filtered, {} lost",
            thousands(sum.shown),
            thousands(sum.filtered),
            thousands(sum.lost)
        ),
    }
    std::io::stdout().flush().ok();
    Ok(code)
}

fn trace_syscall(a: TraceSyscallArgs) -> Result<u8, Failure> {
    let min_latency = match &a.min_latency {
        Some(t) => parse_threshold(t).map_err(|e| Failure::usage(anyhow!("--min-latency: {e}")))?,
        None => Duration::ZERO,
    };
    if let Some(p) = a.pid.filter(|p| *p == 0 || !process_alive(*p)) {
        return Err(Failure::usage(anyhow!("--pid {p}: no such process")));
    }
    let pod = a
        .pod
        .as_deref()
        .map(kerno_core::stream::syscall::pod_cgroup)
        .transpose()
        .map_err(stream_error)?;
    if let Some(p) = &pod {
        eprintln!(
            "kerno: pod {} is cgroup {} (id {}); only its tasks are traced",
            a.pod.as_deref().unwrap_or_default(),
            p.path,
            p.id
        );
    }
    let filter = SyscallFilter {
        pid: a.pid,
        comm: a.comm.clone(),
        cgroup_id: pod.as_ref().map(|p| p.id),
        cgroup_level: pod.as_ref().map(|p| p.level).unwrap_or(0),
        syscalls: a.syscalls.clone(),
        min_latency,
        errors_only: a.errors,
        ring_bytes: a.ring_size.as_deref().map(parse_size).transpose()?,
    };
    // Bad names are usage errors before anything loads.
    filter.numbers().map_err(stream_error)?;
    parse_stream_args(&a.stream)?;
    runtime()?.block_on(async {
        let s = SyscallStream::open(&filter).map_err(stream_error)?;
        drive(
            s,
            &a.stream,
            Ending {
                alert: None,
                pid: a.pid,
            },
        )
        .await
    })
}

fn watch_oom(a: WatchOomArgs) -> Result<u8, Failure> {
    parse_stream_args(&a.stream)?;
    runtime()?.block_on(async {
        let s = OomStream::open().map_err(stream_error)?;
        let alert = a.alert.then_some(exit::CRITICAL);
        drive(s, &a.stream, Ending { alert, pid: None }).await
    })
}

fn watch_fd(a: WatchFdArgs) -> Result<u8, Failure> {
    let min_rate: f64 = a
        .min_rate
        .trim()
        .parse()
        .ok()
        .filter(|r: &f64| r.is_finite() && *r >= 0.0)
        .ok_or_else(|| {
            Failure::usage(anyhow!(
                "--min-rate {:?}: expected a non-negative number of descriptors a second",
                a.min_rate
            ))
        })?;
    let interval = parse_duration(&a.interval)
        .ok()
        .filter(|d| *d >= Duration::from_millis(100))
        .ok_or_else(|| {
            Failure::usage(anyhow!(
                "--interval {:?}: expected a duration of at least 100ms (e.g. 1s, 5s)",
                a.interval
            ))
        })?;
    parse_stream_args(&a.stream)?;
    let terminal = a.stream.output == StreamOutput::Pretty && std::io::stdout().is_terminal();
    runtime()?.block_on(async {
        let s = FdSource {
            watch: FdWatch::new(min_rate, interval),
            min_rate,
            rows: 0,
            terminal,
        };
        drive(
            s,
            &a.stream,
            Ending {
                alert: None,
                pid: None,
            },
        )
        .await
    })
}

fn threshold(flag: &str, v: &str) -> Result<Duration, Failure> {
    parse_threshold(v).map_err(|e| Failure::usage(anyhow!("{flag}: {e}")))
}

fn trace_sched(a: TraceSchedArgs) -> Result<u8, Failure> {
    let filter = SchedFilter {
        min_delay: threshold("--min-latency", &a.min_latency)?,
        pid: a.pid,
        ring_bytes: a.ring_size.as_deref().map(parse_size).transpose()?,
    };
    if let Some(p) = a.pid.filter(|p| *p == 0 || !process_alive(*p)) {
        return Err(Failure::usage(anyhow!("--pid {p}: no such process")));
    }
    parse_stream_args(&a.stream)?;
    runtime()?.block_on(async {
        let s = SchedStream::open(&filter).map_err(stream_error)?;
        drive(
            s,
            &a.stream,
            Ending {
                alert: None,
                pid: a.pid,
            },
        )
        .await
    })
}

fn watch_tcp(a: WatchTcpArgs) -> Result<u8, Failure> {
    let filter = TcpFilter {
        retransmits: a.retransmits || a.rtt_above.is_some(),
        rtt_above: match &a.rtt_above {
            Some(v) => threshold("--rtt-above", v)?,
            None => Duration::ZERO,
        },
        state_changes: a.state_changes,
        ring_bytes: a.ring_size.as_deref().map(parse_size).transpose()?,
    };
    parse_stream_args(&a.stream)?;
    runtime()?.block_on(async {
        let s = TcpStream::open(&filter).map_err(stream_error)?;
        drive(
            s,
            &a.stream,
            Ending {
                alert: None,
                pid: None,
            },
        )
        .await
    })
}

fn trace_disk(a: TraceDiskArgs) -> Result<u8, Failure> {
    let filter = DiskFilter {
        device: a.device.clone(),
        comm: a.process.clone(),
        ops: a.op.clone(),
        min_latency: match &a.min_latency {
            Some(v) => threshold("--min-latency", v)?,
            None => Duration::ZERO,
        },
        ring_bytes: a.ring_size.as_deref().map(parse_size).transpose()?,
    };
    if let Some(d) = &filter.device {
        kerno_core::stream::disk::device_numbers(d).map_err(stream_error)?;
    }
    parse_stream_args(&a.stream)?;
    runtime()?.block_on(async {
        let s = DiskStream::open(&filter).map_err(stream_error)?;
        drive(
            s,
            &a.stream,
            Ending {
                alert: None,
                pid: None,
            },
        )
        .await
    })
}
