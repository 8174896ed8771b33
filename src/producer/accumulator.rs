//! The record accumulator: per partition, an open batch that records are written into as they
//! are sent, and the closed batches waiting for the sender.
//!
//! ```text
//!  append(record) ─► partition queue ─► open batch (BatchBuilder) ── full / linger.ms / flush ──┐
//!                                       ready: [closed batch, …] ◄─────────────────────────────┘
//!  sender: drain() ─► at most one batch per partition in flight ─► complete() or retry()
//! ```
//!
//! One batch per partition is in flight at a time, so a retried batch is never overtaken and
//! records keep their order. Queued and in-flight records count against
//! `queue.buffering.max.messages` and `queue.buffering.max.kbytes`; `append` refuses a record
//! when they are reached, and the caller waits on [`Accumulator::space`].

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, watch, Notify};
use tokio::time::Instant;

use super::BatchReports;
use crate::config::ProducerConfig;
use crate::error::Error;
use crate::protocol::records::{restamp, BatchBuilder, Header, ProducerFields, BATCH_HEADER_LEN};
use rustc_hash::FxHashMap;

/// The most bytes a varint (a record's timestamp or offset delta) takes.
const MAX_VARINT: usize = 10;

/// What the broker said about a batch.
#[derive(Debug, Clone)]
pub(crate) struct BatchAck {
    /// Offset of the batch's first record; `None` with acks=0.
    pub base_offset: Option<i64>,
    /// The broker's append time when the topic uses log-append time.
    pub log_append_time: Option<i64>,
}

/// The outcome of a batch, shared by the delivery futures of its records.
pub(crate) type Outcome = Option<Result<BatchAck, Error>>;

/// What the records of one batch share: where they go and the batch's outcome. Each record's
/// delivery future holds it, so appending a record costs one reference count, not a channel
/// subscription and a topic-name clone of its own.
pub(crate) struct BatchInfo {
    pub topic: Arc<str>,
    pub partition: i32,
    pub outcome: watch::Receiver<Outcome>,
}

/// Where a record went in the accumulator, for its delivery future.
pub(crate) struct Appended {
    pub batch: Arc<BatchInfo>,
    pub index: i64,
}

/// Which partition a record goes to.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Target {
    /// This partition (given, or chosen from the key).
    Partition(i32),
    /// Keyless: stick to one of `partitions` until about `batch.size` bytes went to it, then move
    /// on (KIP-480/794), so keyless records fill batches instead of spreading thin.
    Sticky { partitions: usize },
}

/// The sticky partition of a keyless topic.
#[derive(Default)]
struct Sticky {
    partition: i32,
    bytes: usize,
    started: bool,
}

/// Why a record was not appended.
pub(crate) enum Refused {
    /// The queue limits are reached: wait for space, or report QueueFull.
    Full,
    /// The producer is closing.
    Closed,
}

/// A closed batch on its way to the broker.
pub(crate) struct ReadyBatch {
    pub topic: Arc<str>,
    pub partition: i32,
    pub records: usize,
    record_bytes: usize,
    pub created: Instant,
    pub attempts: u32,
    retry_at: Option<Instant>,
    encoding: Encoding,
    stamp: Option<ProducerFields>,
    pub timestamps: Vec<i64>,
    pub outcome: watch::Sender<Outcome>,
}

enum Encoding {
    Open(BatchBuilder),
    Done(Bytes),
}

impl ReadyBatch {
    /// The batch bytes carrying `producer` fields. Encoded (and compressed) on first use,
    /// outside the accumulator's lock, and kept for retries; re-stamped only when the fields
    /// change (a new producer epoch).
    pub fn bytes(
        &mut self,
        config: &ProducerConfig,
        producer: ProducerFields,
    ) -> Result<Bytes, Error> {
        let bytes = match &mut self.encoding {
            Encoding::Open(builder) => {
                let builder = std::mem::replace(builder, BatchBuilder::with_capacity(0));
                builder
                    .finish(producer, config.compression)
                    .map_err(|e| Error::protocol("-", e))?
            }
            Encoding::Done(bytes) if self.stamp == Some(producer) => return Ok(bytes.clone()),
            Encoding::Done(bytes) => restamp(bytes, producer),
        };
        self.stamp = Some(producer);
        self.encoding = Encoding::Done(bytes.clone());
        Ok(bytes)
    }

    /// The producer fields the batch was last encoded with.
    pub fn stamp(&self) -> Option<ProducerFields> {
        self.stamp
    }

    /// The error of a batch that ran out of `delivery.timeout.ms`, naming the last failure.
    pub fn expired(&self, timeout: Duration, last: Option<&Error>) -> Error {
        let last = last
            .map(|e| format!("; last error: {e}"))
            .unwrap_or_default();
        Error::Timeout {
            what: format!(
                "delivery of {} records to {}[{}] (delivery.timeout.ms){last}",
                self.records, self.topic, self.partition
            ),
            after_ms: timeout.as_millis() as u64,
        }
    }

    /// Reports the outcome to every record of the batch.
    pub fn finish(&self, outcome: Result<BatchAck, Error>) {
        self.outcome.send_replace(Some(outcome));
    }
}

struct OpenBatch {
    builder: BatchBuilder,
    created: Instant,
    record_bytes: usize,
    timestamps: Vec<i64>,
    outcome: watch::Sender<Outcome>,
    info: Arc<BatchInfo>,
}

impl OpenBatch {
    fn new(capacity: usize, topic: &Arc<str>, partition: i32) -> OpenBatch {
        let (outcome, receiver) = watch::channel(None);
        OpenBatch {
            builder: BatchBuilder::with_capacity(capacity),
            created: Instant::now(),
            record_bytes: 0,
            timestamps: Vec::new(),
            outcome,
            info: Arc::new(BatchInfo {
                topic: topic.clone(),
                partition,
                outcome: receiver,
            }),
        }
    }

    fn close(self, topic: &Arc<str>, partition: i32) -> ReadyBatch {
        ReadyBatch {
            topic: topic.clone(),
            partition,
            records: self.builder.record_count() as usize,
            record_bytes: self.record_bytes,
            created: self.created,
            attempts: 0,
            retry_at: None,
            encoding: Encoding::Open(self.builder),
            stamp: None,
            timestamps: self.timestamps,
            outcome: self.outcome,
        }
    }
}

#[derive(Default)]
struct PartitionQueue {
    open: Option<OpenBatch>,
    ready: VecDeque<ReadyBatch>,
    in_flight: bool,
    /// Bytes of the last batch closed for being full.
    last_batch_bytes: usize,
}

/// The queues of one topic.
struct TopicQueues {
    name: Arc<str>,
    /// Where keyless records go now.
    sticky: Sticky,
    /// Partition → queue: a few small integers, searched without hashing.
    partitions: BTreeMap<i32, PartitionQueue>,
}

impl TopicQueues {
    fn new(name: Arc<str>) -> Self {
        TopicQueues {
            name,
            sticky: Sticky::default(),
            partitions: BTreeMap::new(),
        }
    }
}

#[derive(Default)]
struct State {
    /// Topic → its queues, found with one lookup per record. Keyed by `Arc<str>` so a lookup by
    /// `&str` allocates nothing.
    topics: FxHashMap<Arc<str>, TopicQueues>,
    messages: usize,
    bytes: usize,
    flushes: usize,
    closed: bool,
}

/// The accumulator shared by the producer handles and the sender task.
pub(crate) struct Accumulator {
    state: Mutex<State>,
    config: ProducerConfig,
    /// Wakes the sender: a batch opened or filled, a flush or close began, a batch came back.
    pub wake: Notify,
    /// Wakes `send` calls waiting for queue space.
    pub space: Notify,
    /// Wakes `flush` calls when the queue empties.
    pub drained: Notify,
    /// Where every record's delivery is reported, a batch at a time, if the application asked.
    reports: Option<mpsc::UnboundedSender<BatchReports>>,
}

impl Accumulator {
    pub fn new(
        config: ProducerConfig,
        reports: Option<mpsc::UnboundedSender<BatchReports>>,
    ) -> Self {
        Accumulator {
            state: Mutex::new(State::default()),
            config,
            wake: Notify::new(),
            space: Notify::new(),
            drained: Notify::new(),
            reports,
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("accumulator lock")
    }

    /// Writes a record into the open batch of its partition.
    #[allow(clippy::too_many_arguments)]
    pub fn append(
        &self,
        topic: &str,
        target: Target,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[Header],
        size: usize,
    ) -> Result<Appended, Refused> {
        let c = &self.config;
        let mut state = self.state();
        if state.closed {
            return Err(Refused::Closed);
        }
        // A record larger than the whole queue still goes when the queue is empty.
        let full = state.messages >= c.queue_max_messages
            || (state.bytes + size > c.queue_max_bytes && state.messages > 0);
        if full {
            return Err(Refused::Full);
        }
        state.messages += 1;
        state.bytes += size;
        let queues = match state.topics.get_mut(topic) {
            Some(queues) => queues,
            None => {
                let name: Arc<str> = Arc::from(topic);
                state
                    .topics
                    .entry(name.clone())
                    .or_insert_with(|| TopicQueues::new(name))
            }
        };
        let partition = match target {
            Target::Partition(p) => p,
            Target::Sticky { partitions } => {
                let sticky = &mut queues.sticky;
                if !sticky.started || sticky.bytes >= c.batch_size {
                    // Start somewhere that differs between producers, then move round.
                    let start = if sticky.started {
                        sticky.partition + 1
                    } else {
                        timestamp as i32
                    };
                    sticky.partition = start.rem_euclid(partitions.max(1) as i32);
                    sticky.bytes = 0;
                    sticky.started = true;
                }
                sticky.bytes += size;
                sticky.partition
            }
        };
        let queue = queues.partitions.entry(partition).or_default();
        let mut wake = false;
        if let Some(open) = &queue.open {
            // `size` (the record alone in a batch) bounds what the record adds to an open batch,
            // give or take its two deltas: the exact size is worked out only near the limit.
            let bound = open.builder.size() + size - BATCH_HEADER_LEN + 2 * MAX_VARINT;
            let full = bound > c.batch_size
                && open.builder.size() + open.builder.record_size(timestamp, key, value, headers)
                    > c.batch_size;
            if full || open.builder.record_count() as usize >= c.batch_num_messages {
                let open = queue.open.take().expect("checked above");
                queue.last_batch_bytes = open.builder.size();
                queue.ready.push_back(open.close(&queues.name, partition));
                wake = true;
            }
        }
        let last_batch_bytes = queue.last_batch_bytes;
        let open = queue.open.get_or_insert_with(|| {
            wake = true;
            // As large as the partition's last full batch, so that a busy partition's buffer
            // does not grow (and copy itself) several times over per batch.
            let capacity = last_batch_bytes.max(64 * 1024).min(c.batch_size).max(size);
            OpenBatch::new(capacity, &queues.name, partition)
        });
        let index = open.builder.record_count() as i64;
        open.builder.push(timestamp, key, value, headers);
        open.record_bytes += size;
        open.timestamps.push(timestamp);
        let batch = open.info.clone();
        drop(state);
        if wake {
            self.wake.notify_one();
        }
        Ok(Appended { batch, index })
    }

    /// Takes the batches that may go now: per partition with nothing in flight, the oldest
    /// closed batch whose retry backoff is over, or the open batch once `linger.ms` passed (at
    /// once while flushing or closing). Batches past `delivery.timeout.ms` fail here. Returns
    /// the batches and when to look again.
    pub fn drain(&self, now: Instant) -> (Vec<ReadyBatch>, Option<Instant>) {
        let linger = self.config.linger;
        let timeout = self.config.delivery_timeout;
        let mut state = self.state();
        let hurry = state.flushes > 0 || state.closed;
        let mut out = Vec::new();
        let mut expired = Vec::new();
        let mut next: Option<Instant> = None;
        let mut soonest = |at: Instant| next = Some(next.map_or(at, |n| n.min(at)));
        for TopicQueues {
            name: topic,
            partitions,
            ..
        } in state.topics.values_mut()
        {
            for (&partition, queue) in partitions.iter_mut() {
                expire(queue, topic, partition, now, timeout, &mut expired);
                if queue.in_flight {
                    continue;
                }
                if let Some(front) = queue.ready.front() {
                    match front.retry_at {
                        Some(at) if at > now => soonest(at),
                        _ => {
                            queue.in_flight = true;
                            out.push(queue.ready.pop_front().expect("front exists"));
                        }
                    }
                } else if let Some(open) = &queue.open {
                    let due = open.created + linger;
                    if hurry || due <= now {
                        queue.in_flight = true;
                        let open = queue.open.take().expect("checked above");
                        out.push(open.close(topic, partition));
                    } else {
                        soonest(due);
                    }
                }
            }
        }
        drop(state);
        for batch in expired {
            let error = batch.expired(timeout, None);
            self.settle(batch, Err(error), false);
        }
        (out, next)
    }

    /// Reports `outcome` to the batch's records and releases its place in the queue. `in_flight`
    /// says whether the batch came from the sender (and its partition may send again).
    pub fn settle(&self, mut batch: ReadyBatch, outcome: Result<BatchAck, Error>, in_flight: bool) {
        if let Some(reports) = &self.reports {
            // One message for the batch's records; the stream hands out a report per record.
            let _ = reports.send(BatchReports::new(
                batch.topic.clone(),
                batch.partition,
                std::mem::take(&mut batch.timestamps),
                outcome.clone(),
            ));
        }
        batch.finish(outcome);
        let mut state = self.state();
        state.messages -= batch.records;
        state.bytes -= batch.record_bytes;
        if in_flight {
            if let Some(q) = state
                .topics
                .get_mut(&*batch.topic)
                .and_then(|t| t.partitions.get_mut(&batch.partition))
            {
                q.in_flight = false;
            }
        }
        let empty = state.messages == 0;
        drop(state);
        self.space.notify_waiters();
        if empty {
            self.drained.notify_waiters();
        }
        self.wake.notify_one();
    }

    /// Puts an in-flight batch back at the front of its partition, to go again after `backoff`.
    pub fn retry(&self, mut batch: ReadyBatch, backoff: Duration) {
        batch.attempts += 1;
        batch.retry_at = Some(Instant::now() + backoff);
        let mut state = self.state();
        let queue = state
            .topics
            .entry(batch.topic.clone())
            .or_insert_with(|| TopicQueues::new(batch.topic.clone()))
            .partitions
            .entry(batch.partition)
            .or_default();
        queue.in_flight = false;
        queue.ready.push_front(batch);
        drop(state);
        self.wake.notify_one();
    }

    /// Records queued or in flight.
    pub fn pending(&self) -> usize {
        self.state().messages
    }

    /// Starts (or ends) a flush: while one runs, open batches go without waiting for linger.
    pub fn flushing(&self, on: bool) {
        let mut state = self.state();
        if on {
            state.flushes += 1;
        } else {
            state.flushes -= 1;
        }
        drop(state);
        self.wake.notify_one();
    }

    /// Refuses new records from now on; what is queued is still sent.
    pub fn close(&self) {
        self.state().closed = true;
        self.wake.notify_one();
        self.space.notify_waiters();
    }

    /// True once closed and nothing is left to send.
    pub fn is_finished(&self) -> bool {
        let state = self.state();
        state.closed && state.messages == 0
    }
}

/// Moves batches of `queue` that are past the delivery timeout (and not in flight) to `expired`.
fn expire(
    queue: &mut PartitionQueue,
    topic: &Arc<str>,
    partition: i32,
    now: Instant,
    timeout: Duration,
    expired: &mut Vec<ReadyBatch>,
) {
    if queue.in_flight {
        return;
    }
    while queue
        .ready
        .front()
        .is_some_and(|b| b.created + timeout <= now)
    {
        expired.extend(queue.ready.pop_front());
    }
    if queue.ready.is_empty()
        && queue
            .open
            .as_ref()
            .is_some_and(|o| o.created + timeout <= now)
    {
        let open = queue.open.take().expect("checked above");
        expired.push(open.close(topic, partition));
    }
}
