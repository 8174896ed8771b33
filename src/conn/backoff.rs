//! Reconnect backoff: the first connection to a broker is made at once; every later one waits
//! `reconnect.backoff.ms` (after a connection ended as after a failed attempt), doubling on each
//! failure in a row up to `reconnect.backoff.max.ms`, with ±20% jitter so many clients do not
//! reconnect in step (as librdkafka and the Java client do). A broker that accepts connections
//! and then breaks each one therefore sees a reconnect per backoff, not a storm.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The backoff state of one broker.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    initial: Duration,
    max: Duration,
    /// How often the next wait doubles `initial`; `None` before the first attempt, which does not
    /// wait.
    doublings: Option<u32>,
    seed: u64,
}

impl Backoff {
    pub fn new(initial: Duration, max: Duration) -> Self {
        let seed = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos() as u64 | 1)
            .unwrap_or(0x9e37_79b9_7f4a_7c15);
        Backoff {
            initial,
            max,
            doublings: None,
            seed,
        }
    }

    /// The wait before the next attempt: none before the first. The slot asks only when it
    /// needs a new connection, so after a success this is a reconnect, and waits too.
    pub fn delay(&mut self) -> Duration {
        let Some(doublings) = self.doublings else {
            return Duration::ZERO;
        };
        let base = self
            .initial
            .saturating_mul(1u32 << doublings.min(20))
            .min(self.max);
        // xorshift64: jitter needs no cryptographic randomness.
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        let jitter = (self.seed % 41) as f64 / 100.0 + 0.8; // 0.80 ..= 1.20
        base.mul_f64(jitter).min(self.max)
    }

    /// An attempt failed: the next wait doubles (the first failure waits `initial`).
    pub fn failed(&mut self) {
        self.doublings = Some(self.doublings.map_or(0, |d| d.saturating_add(1)));
    }

    /// A connection was made: once it ends, the next attempt waits `initial`.
    pub fn succeeded(&mut self) {
        self.doublings = Some(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_max_with_jitter() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(1000));
        assert_eq!(b.delay(), Duration::ZERO);
        let mut expected = 100.0;
        for _ in 0..8 {
            b.failed();
            let d = b.delay().as_secs_f64() * 1000.0;
            assert!(
                d >= expected * 0.8 - 1.0 && d <= (expected * 1.2).min(1000.0) + 1.0,
                "{d} vs {expected}"
            );
            expected = (expected * 2.0_f64).min(1000.0);
        }
        // After a connection was made, the next attempt is a reconnect: it waits `initial`,
        // not nothing, and doubles from there.
        b.succeeded();
        let d = b.delay().as_secs_f64() * 1000.0;
        assert!((80.0 - 1.0..=120.0 + 1.0).contains(&d), "{d}");
        b.failed();
        let d = b.delay().as_secs_f64() * 1000.0;
        assert!((160.0 - 1.0..=240.0 + 1.0).contains(&d), "{d}");
    }
}
