//! The forecast as text for a terminal (the JSON is the [`Forecast`] itself, serialised).

use std::fmt::Write as _;

use super::{Forecast, Prediction, Unit};
use crate::{
    config::format_duration,
    finding::{human_bytes, human_secs, thousands},
};

/// How to render the pretty forecast.
#[derive(Clone, Copy, Debug, Default)]
pub struct PredictRenderOptions {
    /// ANSI colours.
    pub color: bool,
}

fn amount(unit: Unit, v: f64) -> String {
    match unit {
        Unit::Bytes => human_bytes(v.max(0.0) as u64),
        Unit::Count => thousands(v.max(0.0).round() as u64),
    }
}

fn rate(unit: Unit, per_sec: f64) -> String {
    match unit {
        Unit::Bytes => {
            if per_sec >= 1024.0 {
                format!("{}/s", human_bytes(per_sec as u64))
            } else {
                format!("{}/min", human_bytes((per_sec * 60.0) as u64))
            }
        }
        Unit::Count if per_sec >= 1.0 => format!("{per_sec:.1}/s"),
        Unit::Count if per_sec * 60.0 >= 1.0 => format!("{:.1}/min", per_sec * 60.0),
        Unit::Count => format!("{:.1}/h", per_sec * 3600.0),
    }
}

/// `24h`, `4h`, `7 days`, or [`human_secs`] for the rest.
fn whole(secs: f64) -> String {
    let s = secs.round() as u64;
    if s > 2 * 86400 && s.is_multiple_of(86400) {
        format!("{} days", s / 86400)
    } else if s > 0 && s.is_multiple_of(3600) {
        format!("{}h", s / 3600)
    } else {
        human_secs(secs)
    }
}

/// Why a level was not predicted, in words.
fn reason_words(reason: &str) -> &str {
    match reason {
        "steady" => "steady or shrinking",
        "noise" => "up and down with no clear line",
        "sawtooth" => "filling and being reclaimed (a sawtooth, not a leak)",
        "levelling_off" => "grew but levelled off",
        "too_little_growth" => "growing too little to matter",
        "beyond_horizon" => "growing but not running out within the horizon",
        "too_few_points" => "too few points",
        "no_limit" => "no limit",
        other => other,
    }
}

fn heading(p: &Prediction) -> String {
    let who = match (&p.pod, p.resource) {
        (Some(pod), _) => format!("{} (pod {pod})", p.what),
        (None, _) => p.what.clone(),
    };
    match p.resource {
        super::Resource::HostMemory => "host memory".to_string(),
        super::Resource::CgroupMemory => format!("memory of cgroup {who}"),
        super::Resource::CgroupPids => format!("pids of cgroup {who}"),
        super::Resource::HostPids => "host pids (tasks)".to_string(),
        _ => format!("{} of {who}", p.resource.noun()),
    }
}

/// The forecast for a terminal: what runs out, soonest first, with trend, ETA and
/// confidence; then what was watched and why the rest was not predicted.
pub fn pretty(f: &Forecast, opts: PredictRenderOptions) -> String {
    let paint = |code: &str, s: &str| {
        if opts.color {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    };
    let mut o = String::new();
    let host = if f.host.node.is_empty() {
        &f.host.hostname
    } else {
        &f.host.node
    };
    let span = std::time::Duration::from_millis(f.window.duration_ms);
    let source = match f.source.kind.as_str() {
        "snapshots" => format!(
            "{} snapshots every {} over {}",
            f.source.snapshots,
            format_duration(std::time::Duration::from_millis(f.source.interval_ms)),
            human_secs(span.as_secs_f64())
        ),
        "agent" => format!(
            "the agent's history, {} points over {}",
            f.source.snapshots,
            human_secs(span.as_secs_f64())
        ),
        _ => format!("a saved window of {}", human_secs(span.as_secs_f64())),
    };
    let horizon = whole(f.horizon_secs);
    let _ = writeln!(
        o,
        "{} {} — {source}; horizon {horizon}",
        paint("1", "kerno predict:"),
        if host.is_empty() { "?" } else { host },
    );
    let _ = writeln!(o);
    if f.predictions.is_empty() {
        let _ = writeln!(
            o,
            "{} nothing watched runs out within {horizon}.",
            paint("32", "OK:")
        );
    } else {
        let n = f.predictions.len();
        let _ = writeln!(
            o,
            "{} within {horizon}, soonest first:",
            if n == 1 {
                "1 thing runs out".to_string()
            } else {
                format!("{n} things run out")
            }
        );
        for (i, p) in f.predictions.iter().enumerate() {
            let _ = writeln!(o);
            let verb = if p.resource.plural() {
                "run out"
            } else {
                "runs out"
            };
            let (eta, low, high) = (
                human_secs(p.eta_secs),
                human_secs(p.eta_low_secs),
                human_secs(p.eta_high_secs),
            );
            let eta = if p.eta_secs <= 0.0 {
                format!(
                    "{} now",
                    if p.resource.plural() {
                        "have run out"
                    } else {
                        "has run out"
                    }
                )
            } else if low == eta && high == eta {
                format!("{verb} in {eta}")
            } else {
                format!("{verb} in {eta} ({low} – {high})")
            };
            let mark = if p.warn {
                paint("1;31", "WARNING")
            } else {
                paint("1;33", "watch")
            };
            let _ = writeln!(o, "  {}. {mark} {} {eta}", i + 1, paint("1", &heading(p)));
            let _ = writeln!(
                o,
                "     now {} of {} ({:.0}%), growing {}; confidence {} (R² {:.2}, {} points over {})",
                amount(p.unit, p.current),
                amount(p.unit, p.limit),
                p.fill_pct(),
                rate(p.unit, p.per_sec),
                p.confidence.label(),
                p.fit,
                p.points,
                human_secs(p.span_secs)
            );
            let _ = writeln!(o, "     then {}", p.consequence);
        }
    }
    let _ = writeln!(o);
    let rest: Vec<String> = f
        .not_predicted
        .iter()
        .map(|(r, n)| format!("{n} {}", reason_words(r)))
        .collect();
    let _ = writeln!(
        o,
        "Watched {} levels{}{}.",
        thousands(f.watched as u64),
        if rest.is_empty() {
            ""
        } else {
            "; not predicted: "
        },
        rest.join(", ")
    );
    for d in &f.degraded {
        let _ = writeln!(
            o,
            "{} {}: {}",
            paint("33", "not observed:"),
            d.domain,
            d.reason
        );
    }
    o
}
