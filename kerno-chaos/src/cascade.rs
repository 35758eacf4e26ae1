//! `cascade`: several incidents, one after another, piling up.

use super::{ChaosError, ChaosOptions, Running, Scenario, disk_sat, fd_leak, memory, tcp_loss};

pub(crate) const SCENARIO: Scenario = Scenario {
    name: "cascade",
    rules: &[
        "fd-leak",
        "memory-pressure",
        "oom-imminent",
        "disk-io",
        "tcp-retransmits",
    ],
    summary: "Four scenarios in sequence, each left running as the next starts, like a \
failure that spreads: fd-leak at once, then memory after a quarter of the duration, \
disk-sat after half, tcp-loss after three quarters. A window over the last quarter sees \
all four.",
    intensities: "the stages run at the chosen intensity.",
    induce: start,
};

/// The stages, in order.
const STAGES: [&Scenario; 4] = [
    &fd_leak::SCENARIO,
    &memory::SCENARIO,
    &disk_sat::SCENARIO,
    &tcp_loss::SCENARIO,
];

fn start(o: &ChaosOptions) -> Result<Running, ChaosError> {
    let mut r = Running::new(SCENARIO.name, o.intensity);
    let step = o.duration / STAGES.len() as u32;
    for (i, scenario) in STAGES.iter().enumerate() {
        let stage_opts = ChaosOptions {
            intensity: o.intensity,
            duration: o.duration.saturating_sub(step * i as u32),
            start_after: o.start_after + step * i as u32,
        };
        let stage = scenario.start(&stage_opts)?;
        r.note(format!(
            "stage {}: {} from {} s",
            i + 1,
            scenario.name,
            (stage_opts.start_after).as_secs()
        ));
        r.pids.extend(&stage.pids);
        r.helper_pids.extend(&stage.helper_pids);
        r.netns.extend(stage.netns.iter().cloned());
        r.devices.extend(stage.devices.iter().cloned());
        r.mounts.extend(stage.mounts.iter().cloned());
        r.stages.push(stage);
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stages_are_catalogued_and_the_cascade_targets_their_rules() {
        for stage in STAGES {
            assert!(
                crate::scenario(stage.name).is_some(),
                "{} is not in SCENARIOS",
                stage.name
            );
        }
        let rules: Vec<&str> = STAGES
            .iter()
            .flat_map(|s| s.rules.iter().copied())
            .collect();
        assert_eq!(SCENARIO.rules, rules.as_slice());
    }
}
