use kerno_probes::LostCounters;

use super::ends;
use crate::{Collector, CollectorError, Sample, Signals};

/// Samples the probes could not record, so none is lost silently.
pub struct LostCollector {
    reader: LostCounters,
}

impl LostCollector {
    /// A collector over the probes' lost-sample counters.
    pub fn new(reader: LostCounters) -> Self {
        LostCollector { reader }
    }
}

impl Collector for LostCollector {
    fn name(&self) -> &str {
        "lost"
    }

    fn sample(&mut self) -> Result<Sample, CollectorError> {
        Ok(Sample::now(self.reader.all()?))
    }

    fn fill(&self, samples: &[&Sample], signals: &mut Signals) -> Result<(), CollectorError> {
        let Some((a, b)) = ends::<[u64; 4]>(samples) else {
            return Ok(());
        };
        let d = |i: usize| b[i].saturating_sub(a[i]);
        signals.lost.syscall_samples += d(0);
        signals.lost.sched_samples += d(1);
        signals.lost.map_full += d(2);
        signals.lost.block_unmatched += d(3);
        Ok(())
    }
}
