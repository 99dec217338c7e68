//! Device-metrics history for the telemetry commands, sans-IO: the last 12 hours, one sample
//! per node and 10-minute slot (a later one in the same slot replaces it), bounded per node and
//! in total. New samples wait in `pending` until the relay writes them with other state.

use std::collections::{HashMap, VecDeque};

use crate::mesh::proto::DeviceMetrics;

pub use crate::store::telemetry::{Sample, MAX_SAMPLES, SLOT_SECS};

/// Slots per node (the whole window).
pub const PER_NODE: usize = crate::store::telemetry::SLOTS as usize;

/// The metric a command asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    BatteryLevel,
    Voltage,
    AirUtilTx,
}

impl Metric {
    pub fn of(self, s: &Sample) -> Option<f32> {
        match self {
            Metric::BatteryLevel => s.battery,
            Metric::Voltage => s.voltage,
            Metric::AirUtilTx => s.air_util_tx,
        }
    }
}

#[derive(Debug, Default)]
pub struct History {
    by_node: HashMap<u32, VecDeque<Sample>>,
    total: usize,
    /// Samples not written yet, in order (a slot's newer sample follows its older one).
    pub pending: Vec<Sample>,
}

impl History {
    /// Samples read back from the store at start.
    pub fn load(&mut self, samples: Vec<Sample>) {
        for s in samples {
            self.insert(s);
        }
    }

    pub fn len(&self) -> usize {
        self.total
    }

    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// Adds `s` (or replaces its slot's sample); false when it is older than what is kept.
    fn insert(&mut self, s: Sample) -> bool {
        let q = self.by_node.entry(s.node).or_default();
        match q.back_mut() {
            Some(last) if last.slot == s.slot => {
                *last = s;
                return true;
            }
            Some(last) if last.slot > s.slot => return false,
            _ => {}
        }
        q.push_back(s);
        self.total += 1;
        while q
            .front()
            .is_some_and(|f| f.slot + PER_NODE as u32 <= s.slot)
            || q.len() > PER_NODE
        {
            q.pop_front();
            self.total -= 1;
        }
        if self.total > MAX_SAMPLES {
            self.drop_oldest();
        }
        true
    }

    fn drop_oldest(&mut self) {
        let oldest = self
            .by_node
            .iter()
            .filter_map(|(n, q)| q.front().map(|s| (s.slot, *n)))
            .min();
        if let Some((_, node)) = oldest {
            let q = self.by_node.get_mut(&node).expect("found");
            q.pop_front();
            self.total -= 1;
            if q.is_empty() {
                self.by_node.remove(&node);
            }
        }
    }

    /// Records a node's metrics heard at `time` (Unix seconds); returns the sample to write.
    pub fn record(&mut self, node: u32, time: u32, m: &DeviceMetrics) -> Option<Sample> {
        if m.battery_level.is_none() && m.voltage.is_none() && m.air_util_tx.is_none() {
            return None;
        }
        let s = Sample {
            node,
            slot: time / SLOT_SECS,
            // 101 is "powered": not a level.
            battery: m.battery_level.filter(|b| *b <= 100).map(|b| b as f32),
            voltage: m.voltage.filter(|v| *v > 0.0),
            air_util_tx: m.air_util_tx,
        };
        if !self.insert(s) {
            return None;
        }
        self.pending.push(s);
        Some(s)
    }

    /// The hourly averages of `metric` over the last 12 hours before `now`, oldest first, for
    /// one node or (`None`) every node; `None` for an hour without samples.
    pub fn hourly(&self, metric: Metric, node: Option<u32>, now: u32) -> [Option<f32>; 12] {
        let end = now / SLOT_SECS + 1;
        let start = end.saturating_sub(PER_NODE as u32);
        let per_hour = 3600 / SLOT_SECS;
        let mut sums = [(0.0f64, 0u32); 12];
        let nodes: Vec<&VecDeque<Sample>> = match node {
            Some(n) => self.by_node.get(&n).into_iter().collect(),
            None => self.by_node.values().collect(),
        };
        for s in nodes.into_iter().flatten() {
            if s.slot < start || s.slot >= end {
                continue;
            }
            if let Some(v) = metric.of(s) {
                let h = ((s.slot - start) / per_hour) as usize;
                sums[h].0 += f64::from(v);
                sums[h].1 += 1;
            }
        }
        sums.map(|(sum, n)| (n > 0).then(|| (sum / f64::from(n)) as f32))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metrics(battery: u32, voltage: f32) -> DeviceMetrics {
        DeviceMetrics {
            battery_level: Some(battery),
            voltage: Some(voltage),
            channel_utilization: None,
            air_util_tx: Some(2.0),
            uptime_seconds: None,
        }
    }

    #[test]
    fn one_sample_per_slot_and_window_bounds() {
        let mut h = History::default();
        let t0 = 1_700_000_000 / SLOT_SECS * SLOT_SECS;
        h.record(1, t0, &metrics(50, 3.7)).unwrap();
        h.record(1, t0 + 60, &metrics(52, 3.8)).unwrap();
        assert_eq!(
            h.len(),
            1,
            "a later sample in the same slot replaces the first"
        );
        assert_eq!(h.pending.len(), 2);
        // Three samples per hour over a day: only the last 12 hours stay.
        for i in 0..(24 * 6) {
            h.record(1, t0 + SLOT_SECS * (i + 1), &metrics(60, 3.9));
        }
        assert_eq!(h.len(), PER_NODE);
        // "powered" (101) is no level.
        let s = h.record(2, t0, &metrics(101, 5.0)).unwrap();
        assert_eq!(s.battery, None);
        assert!(h.record(2, t0, &DeviceMetrics::default()).is_none());
    }

    #[test]
    fn total_bound_drops_the_oldest_samples() {
        let mut h = History::default();
        let t0 = 1_700_000_000;
        for node in 0..(MAX_SAMPLES / PER_NODE + 3) as u32 {
            for i in 0..PER_NODE as u32 {
                h.record(node, t0 + node + i * SLOT_SECS, &metrics(50, 3.7));
            }
        }
        assert_eq!(h.len(), MAX_SAMPLES);
    }

    #[test]
    fn hourly_averages_per_node_and_for_all() {
        let mut h = History::default();
        let now = 1_700_000_000 / 3600 * 3600 + 3599;
        // Node 1: 80 % an hour ago (twice in that hour: 70 and 90), node 2: 40 % now.
        h.record(1, now - 3600 - 1000, &metrics(90, 4.2));
        h.record(1, now - 3600 - 100, &metrics(70, 4.0));
        // A sample older than the node's newest is late and not kept.
        assert!(h.record(1, now - 3 * 3600, &metrics(1, 1.0)).is_none());
        h.record(2, now - 10, &metrics(40, 3.6));
        // Too old to show.
        h.record(3, now - 13 * 3600, &metrics(5, 3.0));
        let one = h.hourly(Metric::BatteryLevel, Some(1), now);
        assert_eq!(one[10], Some(80.0));
        assert_eq!(one[11], None);
        assert_eq!(one.iter().flatten().count(), 1);
        let all = h.hourly(Metric::BatteryLevel, None, now);
        assert_eq!((all[10], all[11]), (Some(80.0), Some(40.0)));
        assert_eq!(all.iter().flatten().count(), 2);
        let v = h.hourly(Metric::Voltage, Some(2), now);
        assert_eq!(v[11], Some(3.6));
    }
}
