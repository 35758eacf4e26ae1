//! `network-latency`: new connections over a path with a long delay: the SYN is delayed,
//! so connect() takes that long.

use std::time::Duration;

use super::{
    ChaosError, ChaosOptions, Running, Scenario, net,
    sys::{WorkerSpec, spawn},
    tcp_rtt::delayed_path,
};

pub(crate) const SCENARIO: Scenario = Scenario {
    name: "network-latency",
    rules: &["network-latency"],
    summary: "A client connects 10 times a second to a server in another private network \
namespace, through a router that holds every packet towards the server for a fixed time \
(a user-space delay line on a TUN device): each SYN waits, so connect() takes the delay. \
(tcp-rtt may fire too: the same delay is the connections' RTT.)",
    intensities: "low: 150 ms (measured connect p99 157 ms), medium: 300 ms (316 ms), high: \
800 ms (822 ms).",
    induce: start,
};

/// The one-way delay added on the router.
pub(crate) fn delay(o: &ChaosOptions) -> Duration {
    Duration::from_millis(o.intensity.pick(150, 300, 800))
}

fn start(o: &ChaosOptions) -> Result<Running, ChaosError> {
    let mut r = Running::new(SCENARIO.name, o.intensity);
    let client = delayed_path(&mut r, delay(o))?;
    let prober = WorkerSpec {
        comm: "kchaos-connect".into(),
        ..client
    };
    let start_after = o.start_after;
    r.workload(spawn(&prober, move |ready| {
        net::prober(ready, start_after, 10.0)
    })?);
    r.note(format!(
        "a client connects to {}:{} 10 times a second",
        net::SERVER,
        net::PORT
    ));
    Ok(r)
}
