//! Wall-clock time as mmrelay uses it: Unix seconds (the radio's `rx_time`, node `last_heard`)
//! and Unix milliseconds (Matrix `origin_server_ts`). A clock before 1970 reads as 0.

use std::time::{SystemTime, UNIX_EPOCH};

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
