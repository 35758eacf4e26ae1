//! `tcp-churn`: a storm of short TCP connections.

use super::{
    ChaosError, ChaosOptions, Running, Scenario,
    net::{self, Path3, ServerMode},
    sys::spawn,
};

pub(crate) const SCENARIO: Scenario = Scenario {
    name: "tcp-churn",
    rules: &[],
    summary: "Many short connections (connect, the server closes, close) between two private \
network namespaces over a healthy link. No built-in rule fires at the default thresholds: \
a busy but healthy connection rate is not an incident. It shows up as TCP active/passive \
opens and closes in the report's signals, and checks that Kerno stays quiet.",
    intensities: "low: 200 connections/s, medium: 500/s, high: 1500/s (measured: no finding \
at any level).",
    induce: start,
};

/// Connections per second.
pub(crate) fn rate(o: &ChaosOptions) -> f64 {
    o.intensity.pick(200.0, 500.0, 1500.0)
}

fn start(o: &ChaosOptions) -> Result<Running, ChaosError> {
    let mut r = Running::new(SCENARIO.name, o.intensity);
    let path = Path3::new()?;
    let client = net::client_server(&mut r, path, "kchaos-churn", ServerMode::CloseAtOnce)?;
    let per_sec = rate(o);
    let start_after = o.start_after;
    r.workload(spawn(&client, move |ready| {
        net::churner(ready, start_after, per_sec)
    })?);
    r.note(format!(
        "{} opens and closes {per_sec} connections/s to {}:{} (the server closes first)",
        net::CLIENT,
        net::SERVER,
        net::PORT
    ));
    Ok(r)
}
