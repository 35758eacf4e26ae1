use std::collections::HashMap;

use kerno_probes::{
    DiskReader, DiskTotals,
    common::{BlkStatKey, blk_op},
};

use super::{ends, p99_series};
use crate::{
    Collector, CollectorError, DiskDevice, DiskOp, DiskSignals, Histogram, Sample, Series, Signals,
    procfs,
};

/// Block I/O per device and operation from the block probe.
pub struct DiskCollector {
    reader: DiskReader,
}

impl DiskCollector {
    /// A collector over the block probe's maps.
    pub fn new(reader: DiskReader) -> Self {
        DiskCollector { reader }
    }
}

struct DiskSample(HashMap<(u32, u32), (DiskTotals, Histogram)>);

fn op_name(op: u32) -> &'static str {
    match op {
        blk_op::READ => "read",
        blk_op::WRITE => "write",
        blk_op::FLUSH => "flush",
        blk_op::DISCARD => "discard",
        _ => "other",
    }
}

impl Collector for DiskCollector {
    fn name(&self) -> &str {
        "disk"
    }

    fn sample(&mut self) -> Result<Sample, CollectorError> {
        let rows = self.reader.totals()?;
        Ok(Sample::now(DiskSample(
            rows.into_iter()
                .map(|mut t| {
                    let h = Histogram::from_dense(&t.hist);
                    // The sparse copy is all a window needs; a daemon keeps hundreds of these.
                    t.hist = Vec::new();
                    ((t.key.dev, t.key.op), (t, h))
                })
                .collect(),
        )))
    }

    fn fill(&self, samples: &[&Sample], signals: &mut Signals) -> Result<(), CollectorError> {
        let Some((first, last)) = ends::<DiskSample>(samples) else {
            return Ok(());
        };
        let mut devices: HashMap<u32, DiskDevice> = HashMap::new();
        let mut keys: Vec<&(u32, u32)> = last.0.keys().collect();
        keys.sort();
        for key in keys {
            let (t, h) = &last.0[key];
            let (c0, b0, e0, h0) = match first.0.get(key) {
                Some((f, fh)) => (f.count, f.bytes, f.errors, fh.clone()),
                None => (0, 0, 0, Histogram::new()),
            };
            let count = t.count.saturating_sub(c0);
            if count == 0 {
                continue;
            }
            let BlkStatKey { dev, op } = t.key;
            let (major, minor) = (dev >> 20, dev & ((1 << 20) - 1));
            let d = devices.entry(dev).or_insert_with(|| DiskDevice {
                dev: format!("{major}:{minor}"),
                name: procfs::block_device_name(major, minor).unwrap_or_default(),
                ops: Vec::new(),
                p99_series: Series::default(),
            });
            d.ops.push(DiskOp {
                op: op_name(op).into(),
                count,
                bytes: t.bytes.saturating_sub(b0),
                errors: t.errors.saturating_sub(e0),
                latency: h.delta(&h0),
            });
        }
        // Each device's latency, every operation together, at each sample.
        let readings: Vec<&DiskSample> = samples.iter().filter_map(|s| s.get()).collect();
        if readings.len() == samples.len() {
            for (dev, d) in devices.iter_mut() {
                let per_sample: Vec<Histogram> = readings
                    .iter()
                    .map(|r| {
                        let mut h = Histogram::new();
                        for ((k, _), (_, oh)) in &r.0 {
                            if k == dev {
                                h.merge(oh);
                            }
                        }
                        h
                    })
                    .collect();
                d.p99_series = p99_series(samples, &per_sample);
            }
        }
        let mut devices: Vec<DiskDevice> = devices.into_values().collect();
        devices.sort_by(|a, b| a.dev.cmp(&b.dev));
        signals.disk = Some(DiskSignals { devices });
        Ok(())
    }
}
