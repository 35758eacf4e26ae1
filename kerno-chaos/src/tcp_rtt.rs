//! `tcp-rtt`: a TCP stream over a path with a long delay, so its smoothed RTT is high.

use std::time::Duration;

use super::{
    ChaosError, ChaosOptions, Running, Scenario,
    net::{self, Path3, ServerMode},
    sys::{WorkerSpec, spawn},
};

pub(crate) const SCENARIO: Scenario = Scenario {
    name: "tcp-rtt",
    rules: &["tcp-rtt"],
    summary: "A 1 MB/s TCP stream between two private network namespaces through a router \
that holds every packet towards the server for a fixed time (a user-space delay line on a \
TUN device; this kernel has no netem): the stream's smoothed RTT is that delay.",
    intensities: "low: 20 ms (measured smoothed RTT p99 21 ms), medium: 50 ms (54 ms), \
high: 150 ms (159 ms).",
    induce: start,
};

/// The one-way delay added on the router.
pub(crate) fn delay(o: &ChaosOptions) -> Duration {
    Duration::from_millis(o.intensity.pick(20, 50, 150))
}

/// A client/router/server path whose router delays traffic to the server by `delay`, with
/// a receiver in the server namespace. Returns the spec for workers in the client
/// namespace (in the scenario's cgroup).
pub(crate) fn delayed_path(r: &mut Running, delay: Duration) -> Result<WorkerSpec, ChaosError> {
    let path = Path3::new()?;
    let line = path.delay_to_server(delay);
    let client = net::client_server(r, path, "kchaos-tcp-tx", ServerMode::Sink)?;
    r.helper(line?);
    r.note(format!(
        "the router delays every packet from {} to {} by {} ms (TUN delay line)",
        net::CLIENT,
        net::SERVER,
        delay.as_millis()
    ));
    Ok(client)
}

fn start(o: &ChaosOptions) -> Result<Running, ChaosError> {
    let mut r = Running::new(SCENARIO.name, o.intensity);
    let client = delayed_path(&mut r, delay(o))?;
    let start_after = o.start_after;
    r.workload(spawn(&client, move |ready| {
        net::bulk_sender(ready, start_after, Some(1_000_000), None)
    })?);
    r.note(format!(
        "{} sends 1 MB/s to {}:{}",
        net::CLIENT,
        net::SERVER,
        net::PORT
    ));
    Ok(r)
}
