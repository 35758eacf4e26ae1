//! `cascade`: several incidents, one after another, piling up.

use super::{ChaosError, ChaosOptions, Running, Scenario, start as start_one};

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
};

/// The stages, in order.
pub(crate) const STAGES: [&str; 4] = ["fd-leak", "memory", "disk-sat", "tcp-loss"];

pub(crate) fn start(o: &ChaosOptions) -> Result<Running, ChaosError> {
    let mut r = Running::new(SCENARIO.name, o.intensity);
    let step = o.duration / STAGES.len() as u32;
    for (i, name) in STAGES.iter().enumerate() {
        let stage_opts = ChaosOptions {
            intensity: o.intensity,
            duration: o.duration.saturating_sub(step * i as u32),
            start_after: o.start_after + step * i as u32,
        };
        let stage = start_one(name, &stage_opts)?;
        r.note(format!(
            "stage {}: {name} from {} s",
            i + 1,
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
