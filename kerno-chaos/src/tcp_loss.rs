//! `tcp-loss`: a TCP stream over a link that drops packets at random.

use super::{
    ChaosError, ChaosOptions, Running, Scenario,
    net::{self, Path3, ServerMode},
    sys::spawn,
};

pub(crate) const SCENARIO: Scenario = Scenario {
    name: "tcp-loss",
    rules: &["tcp-retransmits"],
    summary: "A TCP stream of 1 MB/s between two private network namespaces through a third \
(a router) that drops a share of the data packets at random (nftables numgen): the sender \
really retransmits.",
    intensities: "low: 4% of packets dropped (measured: 3.5-5% of segments retransmitted), \
medium: 8% (6-9%), high: 15% (17-24%); all past the 2% threshold, which is critical.",
    induce: start,
};

/// Packets dropped per thousand.
pub(crate) fn drop_permille(o: &ChaosOptions) -> u32 {
    o.intensity.pick(40, 80, 150)
}

fn start(o: &ChaosOptions) -> Result<Running, ChaosError> {
    let mut r = Running::new(SCENARIO.name, o.intensity);
    let path = Path3::new()?;
    let permille = drop_permille(o);
    path.drop_to_server(permille)?;
    let client = net::client_server(&mut r, path, "kchaos-tcp-tx", ServerMode::Sink)?;
    let start_after = o.start_after;
    r.workload(spawn(&client, move |ready| {
        net::bulk_sender(ready, start_after, Some(1_000_000), None)
    })?);
    r.note(format!(
        "{} -> {}:{} at 1 MB/s; the router drops {:.1}% of the packets to the server",
        net::CLIENT,
        net::SERVER,
        net::PORT,
        permille as f64 / 10.0
    ));
    Ok(r)
}
