//! When the application last asked for records, shared with the member tasks that act on
//! `max.poll.interval.ms`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// When the application last asked for records, against `max.poll.interval.ms`: a member
/// whose application stopped reading leaves the group, so its partitions are read elsewhere.
#[derive(Clone, Debug)]
pub(crate) struct PollClock {
    start: std::time::Instant,
    /// Milliseconds from `start` to the last poll.
    last: Arc<AtomicU64>,
}

impl PollClock {
    pub fn new() -> Self {
        PollClock {
            start: std::time::Instant::now(),
            last: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Milliseconds since the clock started.
    pub fn now_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    /// The application asked for records now; returns [`PollClock::now_ms`], so that the caller
    /// reads the clock once per record.
    pub fn polled(&self) -> u64 {
        let now = self.now_ms();
        self.last.store(now, Ordering::Relaxed);
        now
    }

    /// True when the last poll is more than `limit` ago.
    pub fn overdue(&self, limit: std::time::Duration) -> bool {
        let now = self.start.elapsed().as_millis() as u64;
        let since = now.saturating_sub(self.last.load(Ordering::Relaxed));
        since > limit.as_millis() as u64
    }
}
