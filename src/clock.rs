//! Time as mmrelay uses it: the wall clock in Unix seconds (the radio's `rx_time`, node
//! `last_heard`) and milliseconds (Matrix `origin_server_ts`), where a clock before 1970 reads
//! as 0; and the delays between retries (radio reconnects, Matrix syncs and sends).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn since_epoch() -> std::time::Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u32 {
    since_epoch().as_secs() as u32
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    since_epoch().as_millis() as u64
}

/// The delay before retry `n` (0-based): doubling from `min` to `max`, with up to a quarter
/// added at random so that many relays do not retry in step.
pub fn backoff_delay(n: u32, min: Duration, max: Duration) -> Duration {
    let base = min.saturating_mul(1u32 << n.min(16)).min(max);
    base + base.mul_f64(fastrand::f64() * 0.25)
}
