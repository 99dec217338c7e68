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

/// The retry schedule of one loop (radio reconnects, Matrix syncs, sends): each failure's
/// delay is [`backoff_delay`] of the failures so far; a success resets it.
#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    failures: u32,
}

impl Backoff {
    pub fn new(min: Duration, max: Duration) -> Backoff {
        Backoff {
            min,
            max,
            failures: 0,
        }
    }

    /// Counts a failure and returns how long to wait before the next attempt.
    pub fn failed(&mut self) -> Duration {
        let d = backoff_delay(self.failures, self.min, self.max);
        self.failures = self.failures.saturating_add(1);
        d
    }

    /// Failures since the last success.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    pub fn reset(&mut self) {
        self.failures = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_its_ceiling_with_jitter_and_resets() {
        let (min, max) = (Duration::from_secs(1), Duration::from_secs(60));
        let mut b = Backoff::new(min, max);
        let mut bases = Vec::new();
        for _ in 0..10 {
            let d = b.failed();
            // The base is the largest of 1, 2, 4, ... 60 s not above d; at most a quarter more.
            let base = [1u64, 2, 4, 8, 16, 32, 60]
                .into_iter()
                .map(Duration::from_secs)
                .filter(|x| *x <= d)
                .max()
                .unwrap();
            assert!(d <= base + base / 4, "{d:?}");
            bases.push(base.as_secs());
        }
        assert_eq!(bases, [1, 2, 4, 8, 16, 32, 60, 60, 60, 60]);
        assert_eq!(b.failures(), 10);
        b.reset();
        assert_eq!(b.failures(), 0);
        assert!(b.failed() < Duration::from_millis(1250));
    }
}
