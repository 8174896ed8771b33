//! What the accumulator counts for the statistics, and its snapshot: per partition the records
//! appended, queued, in flight and acknowledged; per topic the windows of batch sizes.

use std::sync::Arc;

use tokio::time::Instant;

use super::{Accumulator, ReadyBatch};
use crate::stats::{Window, WindowStatistics};

/// The bytes window's ceiling: a gigabyte. The records window's: a million.
const MAX_BATCH_BYTES: u64 = 1 << 30;
const MAX_BATCH_RECORDS: u64 = 1_000_000;

/// One partition's counts.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Counts {
    pub appended: u64,
    pub acked: u64,
    pub acked_bytes: u64,
    /// Records of the batch in flight.
    pub in_flight: usize,
}

impl Counts {
    /// `batch` is settled: `acked` by the broker or failed; it was the one `in_flight`.
    pub fn settled(&mut self, batch: &ReadyBatch, acked: bool, in_flight: bool) {
        if acked {
            self.acked += batch.records as u64;
            self.acked_bytes += batch.record_bytes as u64;
        }
        if in_flight {
            self.in_flight = 0;
        }
    }
}

/// One topic's: when it was first used, and its batches' windows, when statistics are kept.
pub(crate) struct TopicCounts {
    pub created: Instant,
    windows: Option<Box<(Window, Window)>>,
}

impl TopicCounts {
    pub fn new(statistics: bool) -> TopicCounts {
        TopicCounts {
            created: Instant::now(),
            windows: statistics
                .then(|| Box::new((Window::new(MAX_BATCH_BYTES), Window::new(MAX_BATCH_RECORDS)))),
        }
    }

    /// An acknowledged batch is one sample of each window.
    pub fn settled(&self, batch: &ReadyBatch, acked: bool) {
        if let (true, Some(windows)) = (acked, &self.windows) {
            windows.0.record(batch.record_bytes as i64);
            windows.1.record(batch.records as i64);
        }
    }
}

/// One partition, as the statistics see it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PartitionCounts {
    pub partition: i32,
    /// The broker its sink sends to (-1: none).
    pub sink: i32,
    pub queued: usize,
    pub queued_bytes: usize,
    pub counts: Counts,
}

/// One topic, as the statistics see it.
pub(crate) struct TopicStatistics {
    pub name: Arc<str>,
    pub created: Instant,
    pub batchsize: WindowStatistics,
    pub batchcnt: WindowStatistics,
    pub partitions: Vec<PartitionCounts>,
}

/// The accumulator's share of the statistics.
pub(crate) struct AccumulatorStatistics {
    /// Records held (queued and in flight), and their bytes.
    pub messages: usize,
    pub bytes: usize,
    pub topics: Vec<TopicStatistics>,
}

impl Accumulator {
    /// What it holds and has done, its windows taken (they start afresh).
    pub fn statistics(&self) -> AccumulatorStatistics {
        let state = self.state();
        let topics = state
            .topics
            .values()
            .map(|t| {
                let (batchsize, batchcnt) = match &t.stats.windows {
                    Some(w) => (w.0.take(), w.1.take()),
                    None => Default::default(),
                };
                let partitions = t
                    .partitions
                    .iter()
                    .map(|(&partition, q)| {
                        let open = q.open.as_ref();
                        PartitionCounts {
                            partition,
                            sink: q.sink.broker,
                            queued: q.ready.iter().map(|b| b.records).sum::<usize>()
                                + open.map_or(0, |o| o.builder.record_count() as usize),
                            queued_bytes: q.ready.iter().map(|b| b.record_bytes).sum::<usize>()
                                + open.map_or(0, |o| o.record_bytes),
                            counts: q.counts,
                        }
                    })
                    .collect();
                TopicStatistics {
                    name: t.name.clone(),
                    created: t.stats.created,
                    batchsize,
                    batchcnt,
                    partitions,
                }
            })
            .collect();
        AccumulatorStatistics {
            messages: state.messages,
            bytes: state.bytes,
            topics,
        }
    }
}
