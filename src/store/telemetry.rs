//! Device-metrics samples for the telemetry commands: one row per node and 10-minute slot,
//! written with other relay state (never on their own per packet), pruned to the last 12 hours
//! and [`MAX_SAMPLES`] rows at each write.

use rusqlite::params;

use super::Store;

/// Seconds per slot: a node has at most one sample per slot.
pub const SLOT_SECS: u32 = 600;
/// Slots kept per node: 12 hours.
pub const SLOTS: u32 = 12 * 3600 / SLOT_SECS;
/// Samples kept in all.
pub const MAX_SAMPLES: usize = 4096;

/// One node's device metrics in one slot.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    pub node: u32,
    /// Unix seconds / [`SLOT_SECS`].
    pub slot: u32,
    pub battery: Option<f32>,
    pub voltage: Option<f32>,
    pub air_util_tx: Option<f32>,
}

impl Store {
    /// The samples of slots from `since` on, oldest first.
    pub fn telemetry_since(&self, since: u32) -> Vec<Sample> {
        let read = || -> rusqlite::Result<Vec<Sample>> {
            let mut st = self.conn.prepare(
                "SELECT node, slot, battery, voltage, air_util_tx FROM mmrelay_telemetry
                 WHERE slot >= ?1 ORDER BY slot, node",
            )?;
            let rows = st.query_map([since], |r| {
                Ok(Sample {
                    node: r.get::<_, i64>(0)? as u32,
                    slot: r.get::<_, i64>(1)? as u32,
                    battery: r.get::<_, Option<f64>>(2)?.map(|v| v as f32),
                    voltage: r.get::<_, Option<f64>>(3)?.map(|v| v as f32),
                    air_util_tx: r.get::<_, Option<f64>>(4)?.map(|v| v as f32),
                })
            })?;
            rows.collect()
        };
        read().unwrap_or_else(|e| {
            log::warn!("reading the telemetry history failed: {e}");
            Vec::new()
        })
    }

    pub fn telemetry_len(&self) -> usize {
        self.conn
            .query_row("SELECT COUNT(*) FROM mmrelay_telemetry", [], |r| {
                r.get::<_, i64>(0)
            })
            .unwrap_or(0) as usize
    }

    /// Inside [`Store::save`]'s transaction: writes `samples`, then prunes.
    pub(super) fn save_telemetry(&mut self, samples: &[Sample]) -> Result<(), String> {
        let Some(newest) = samples.iter().map(|s| s.slot).max() else {
            return Ok(());
        };
        for s in samples {
            self.exec(
                "INSERT OR REPLACE INTO mmrelay_telemetry (node, slot, battery, voltage, air_util_tx)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![s.node, s.slot, s.battery, s.voltage, s.air_util_tx],
            )?;
        }
        self.exec(
            "DELETE FROM mmrelay_telemetry WHERE slot < ?1",
            [newest.saturating_sub(SLOTS)],
        )?;
        self.exec(
            "DELETE FROM mmrelay_telemetry WHERE rowid IN
             (SELECT rowid FROM mmrelay_telemetry ORDER BY slot DESC LIMIT -1 OFFSET ?1)",
            [MAX_SAMPLES as i64],
        )?;
        Ok(())
    }
}
