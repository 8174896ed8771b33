//! Reconnect backoff: starts at `reconnect.backoff.ms`, doubles on each failure up to
//! `reconnect.backoff.max.ms`, with ±20% jitter so many clients do not reconnect in step
//! (as librdkafka and the Java client do).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The backoff state of one broker.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    initial: Duration,
    max: Duration,
    failures: u32,
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
            failures: 0,
            seed,
        }
    }

    /// The wait before the next attempt; zero when the last attempt succeeded.
    pub fn delay(&mut self) -> Duration {
        if self.failures == 0 {
            return Duration::ZERO;
        }
        let exp = self.failures.saturating_sub(1).min(31);
        let base = self
            .initial
            .saturating_mul(1u32 << exp.min(20))
            .min(self.max);
        // xorshift64: jitter needs no cryptographic randomness.
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        let jitter = (self.seed % 41) as f64 / 100.0 + 0.8; // 0.80 ..= 1.20
        base.mul_f64(jitter).min(self.max)
    }

    pub fn failed(&mut self) {
        self.failures = self.failures.saturating_add(1);
    }

    pub fn succeeded(&mut self) {
        self.failures = 0;
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
        b.succeeded();
        assert_eq!(b.delay(), Duration::ZERO);
    }
}
