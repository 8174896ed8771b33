//! The record accumulator: per partition, an open batch that records are written into as they
//! are sent, and the closed batches waiting for the broker; and which broker's sink takes each
//! partition's batches.
//!
//! ```text
//!  append(record) ─► partition queue ─► open batch (BatchBuilder) ── full / linger.ms / flush ──┐
//!                        │               ready: [closed batch, …] ◄──────────────────────────────┘
//!                        └ routed to its leader's sink: sinks[broker] = [partitions], wake
//!  sink(broker): drain(broker) ─► at most one batch per partition in flight ─► settle() or retry()
//! ```
//!
//! One batch per partition is in flight at a time, so a retried batch is never overtaken and
//! records keep their order. Queued and in-flight records count against
//! `queue.buffering.max.messages` and `queue.buffering.max.kbytes`; `append` refuses a record
//! when they are reached, and the caller waits on [`Accumulator::space`].
//!
//! A partition is routed to the sink of its leader when its queue is made, and again whenever
//! the router calls [`Accumulator::reroute`] after the metadata changed. A partition whose
//! leader is not known waits under [`UNROUTED`], where only the router looks.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, Notify, Semaphore};
use tokio::time::Instant;

use super::delivery::{BatchAck, BatchInfo, Settle};
use super::{BatchReports, ProducerRecord, Reported};
use crate::config::ProducerConfig;
use crate::error::Error;
use crate::protocol::records::{restamp, BatchBuilder, Header, ProducerFields, BATCH_HEADER_LEN};
use rustc_hash::FxHashMap;

mod stats;

/// The most bytes a varint (a record's timestamp or offset delta) takes.
const MAX_VARINT: usize = 10;

/// The sink id of partitions whose leader is not known.
pub(crate) const UNROUTED: i32 = -1;

/// Where a partition's batches go: the node id of its leader, `None` when none is known.
pub(crate) type Route = dyn Fn(&str, i32) -> Option<i32> + Send + Sync;

/// Where a record went in the accumulator, for its delivery future.
pub(crate) struct Appended {
    pub batch: Arc<BatchInfo>,
    pub index: i64,
    /// The sink that has a batch to look at now (a batch opened or filled): the caller sends
    /// it or wakes the sink ([`super::sink::Pipeline::kick`]).
    pub kick: Option<Arc<SinkHandle>>,
}

/// One broker's sink as the partitions routed to it know it: its wake-up and its request
/// slots (`max.in.flight.requests.per.connection`), which its task and the callers that send
/// for it share.
pub(crate) struct SinkHandle {
    pub broker: i32,
    pub wake: Notify,
    pub slots: Arc<Semaphore>,
}

/// Which partition a record goes to.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Target {
    /// This partition (given, or chosen from the key).
    Partition(i32),
    /// A random one of `partitions`. When `sticky`, the topic's sticky partition: one drawn at
    /// random and kept for `sticky.partitioning.linger.ms`, as librdkafka does, or until it
    /// fills a batch, as the Java client's does (KIP-480), then the next partition's turn,
    /// so that such records fill batches instead of spreading thin, and a fast producer still
    /// keeps every partition busy.
    Random { partitions: usize, sticky: bool },
}

/// The sticky partition of a topic, and when it was drawn.
#[derive(Default)]
struct Sticky {
    partition: i32,
    drawn: Option<Instant>,
}

/// Why a record was not appended.
pub(crate) enum Refused {
    /// A transactional producer has no transaction open that takes records (none begun, it is
    /// completing, or it failed): the transaction state says why.
    NotInTransaction,
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
    /// An attempt failed after its request was written: the broker may hold the batch.
    pub maybe_written: bool,
    encoding: Encoding,
    stamp: Option<ProducerFields>,
    /// What the delivery reports hand back, per record, when the producer has them.
    pub reported: Vec<Reported>,
    outcome: Settle,
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
    /// Its outcome is unknown when an attempt may have been written.
    pub fn expired(&self, timeout: Duration, last: Option<&Error>) -> Error {
        let outcome_unknown = self.maybe_written || last.is_some_and(Error::is_outcome_unknown);
        let last = last
            .map(|e| format!("; last error: {e}"))
            .unwrap_or_default();
        Error::Timeout {
            what: format!(
                "delivery of {} records to {}[{}] (delivery.timeout.ms){last}",
                self.records, self.topic, self.partition
            ),
            after_ms: timeout.as_millis() as u64,
            outcome_unknown,
        }
    }
}

struct OpenBatch {
    builder: BatchBuilder,
    created: Instant,
    record_bytes: usize,
    reported: Vec<Reported>,
    outcome: Settle,
}

impl OpenBatch {
    fn new(capacity: usize, topic: &Arc<str>, partition: i32) -> OpenBatch {
        OpenBatch {
            builder: BatchBuilder::with_capacity(capacity),
            created: Instant::now(),
            record_bytes: 0,
            reported: Vec::new(),
            outcome: Settle::new(topic.clone(), partition),
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
            maybe_written: false,
            encoding: Encoding::Open(self.builder),
            stamp: None,
            reported: self.reported,
            outcome: self.outcome,
        }
    }
}

/// Where a partition stands in the current transaction (transactional producers only).
#[derive(Clone, Copy, PartialEq, Eq)]
enum InTxn {
    /// Not part of it yet.
    No,
    /// Has records for it; waiting to be added (AddPartitionsToTxn) before any batch goes.
    Pending,
    /// Added: its batches may go.
    Added,
}

struct PartitionQueue {
    open: Option<OpenBatch>,
    ready: VecDeque<ReadyBatch>,
    in_flight: bool,
    /// Bytes of the last batch closed for being full.
    last_batch_bytes: usize,
    /// The sink this partition is routed to.
    sink: Arc<SinkHandle>,
    txn: InTxn,
    /// What it has done, for the statistics.
    counts: stats::Counts,
}

impl PartitionQueue {
    /// True when the partition has a batch for its sink, now or once linger or a backoff ends.
    fn has_work(&self) -> bool {
        !self.in_flight && (!self.ready.is_empty() || self.open.is_some())
    }
}

/// The queues of one topic.
struct TopicQueues {
    name: Arc<str>,
    /// When its first record came, and its batches' windows when statistics are kept.
    stats: stats::TopicCounts,
    /// Where keyless records go now.
    sticky: Sticky,
    /// Partition → queue: a few small integers, searched without hashing.
    partitions: BTreeMap<i32, PartitionQueue>,
}

impl TopicQueues {
    fn new(name: Arc<str>, statistics: bool) -> Self {
        TopicQueues {
            name,
            stats: stats::TopicCounts::new(statistics),
            sticky: Sticky::default(),
            partitions: BTreeMap::new(),
        }
    }
}

/// One sink's partitions.
struct SinkQueues {
    partitions: Vec<(Arc<str>, i32)>,
    handle: Arc<SinkHandle>,
    /// Its task was started (see [`Accumulator::new_sinks`]).
    started: bool,
}

#[derive(Default)]
struct State {
    /// Topic → its queues, found with one lookup per record. Keyed by `Arc<str>` so a lookup by
    /// `&str` allocates nothing.
    topics: FxHashMap<Arc<str>, TopicQueues>,
    /// Broker id (or [`UNROUTED`]) → the partitions routed to its sink.
    sinks: FxHashMap<i32, SinkQueues>,
    messages: usize,
    bytes: usize,
    flushes: usize,
    closed: bool,
    /// A transaction is open and takes records (transactional producers only).
    txn_open: bool,
    /// Partitions with records in the current transaction that are yet to be added to it.
    txn_pending: Vec<(Arc<str>, i32)>,
    /// The first error a record of the current transaction failed with.
    txn_failure: Option<Error>,
}

/// Adds `topic[partition]` to sink `sink`'s list, making the sink's entry (with `slots`
/// request slots) when it is new. Returns its handle, and `true` when its task is yet to start
/// (the router starts it).
fn join(
    sinks: &mut FxHashMap<i32, SinkQueues>,
    sink: i32,
    slots: usize,
    topic: &Arc<str>,
    partition: i32,
) -> (Arc<SinkHandle>, bool) {
    let entry = sinks.entry(sink).or_insert_with(|| SinkQueues {
        partitions: Vec::new(),
        handle: Arc::new(SinkHandle {
            broker: sink,
            wake: Notify::new(),
            slots: Arc::new(Semaphore::new(slots.max(1))),
        }),
        started: false,
    });
    entry.partitions.push((topic.clone(), partition));
    (entry.handle.clone(), !entry.started && sink != UNROUTED)
}

impl State {
    fn leave(&mut self, sink: i32, topic: &str, partition: i32) {
        if let Some(entry) = self.sinks.get_mut(&sink) {
            if let Some(i) = entry
                .partitions
                .iter()
                .position(|(t, p)| *p == partition && &**t == topic)
            {
                entry.partitions.swap_remove(i);
            }
        }
    }

    fn queue(&mut self, topic: &str, partition: i32) -> Option<&mut PartitionQueue> {
        self.topics.get_mut(topic)?.partitions.get_mut(&partition)
    }

    /// Wakes every sink: the producer is closing or flushing (the router is woken apart).
    fn wake_all(&self) {
        self.sinks.values().for_each(|s| s.handle.wake.notify_one());
    }
}

/// The accumulator shared by the producer handles, the router and the sinks.
pub(crate) struct Accumulator {
    state: Mutex<State>,
    config: ProducerConfig,
    route: Box<Route>,
    /// Wakes the router: a sink to start, a partition without a leader, the queue finished.
    pub router: Notify,
    /// Wakes `send` calls waiting for queue space.
    pub space: Notify,
    /// Wakes `flush` calls when the queue empties.
    pub drained: Notify,
    /// Where every record's delivery is reported, a batch at a time, if the application asked.
    reports: Option<mpsc::UnboundedSender<BatchReports>>,
    /// The producer is transactional: a partition's batches go only once it is added to the
    /// transaction.
    transactional: bool,
    /// Statistics are kept (`statistics.interval.ms`): the topics keep their batches' windows.
    statistics: bool,
}

impl Accumulator {
    pub fn new(
        config: ProducerConfig,
        route: Box<Route>,
        reports: Option<mpsc::UnboundedSender<BatchReports>>,
        statistics: bool,
    ) -> Self {
        Accumulator {
            state: Mutex::new(State::default()),
            route,
            router: Notify::new(),
            space: Notify::new(),
            drained: Notify::new(),
            transactional: config.transactional_id.is_some(),
            config,
            reports,
            statistics,
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
        record: Option<&ProducerRecord>,
    ) -> Result<Appended, Refused> {
        let c = &self.config;
        let mut guard = self.state();
        let state = &mut *guard;
        if state.closed {
            return Err(Refused::Closed);
        }
        if self.transactional && (!state.txn_open || state.txn_failure.is_some()) {
            // Checked under the lock that appends: a record cannot slip in after a commit or
            // an abort began, nor into a transaction a record of which failed already.
            return Err(Refused::NotInTransaction);
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
                    .or_insert_with(|| TopicQueues::new(name, self.statistics))
            }
        };
        let partition = match target {
            Target::Partition(p) => p,
            Target::Random { partitions, sticky } => {
                let draw = || {
                    // As librdkafka: a partition without a leader is drawn again, once.
                    let first = fastrand::i32(0..partitions.max(1) as i32);
                    match (self.route)(topic, first) {
                        Some(_) => first,
                        None => fastrand::i32(0..partitions.max(1) as i32),
                    }
                };
                let linger = c.sticky_linger();
                if !sticky || linger.is_zero() {
                    draw()
                } else {
                    let sticky = &mut queues.sticky;
                    let now = Instant::now();
                    let stale = sticky
                        .drawn
                        .is_none_or(|drawn| now.duration_since(drawn) >= linger);
                    // The partition count may have grown or (in a test) shrunk since.
                    if stale || sticky.partition as usize >= partitions {
                        sticky.partition = draw();
                        sticky.drawn = Some(now);
                    }
                    sticky.partition
                }
            }
        };
        let mut filled = false;
        let mut new_sink = false;
        let queue = match queues.partitions.get_mut(&partition) {
            Some(queue) => queue,
            None => {
                // A partition's first record: route it to its leader's sink.
                let sink = (self.route)(topic, partition).unwrap_or(UNROUTED);
                let name = queues.name.clone();
                let slots = c.max_in_flight;
                let (handle, new) = join(&mut state.sinks, sink, slots, &name, partition);
                new_sink = new || sink == UNROUTED;
                queues
                    .partitions
                    .entry(partition)
                    .or_insert_with(|| PartitionQueue {
                        open: None,
                        ready: VecDeque::new(),
                        in_flight: false,
                        last_batch_bytes: 0,
                        sink: handle,
                        txn: InTxn::No,
                        counts: stats::Counts::default(),
                    })
            }
        };
        if self.transactional && queue.txn == InTxn::No {
            queue.txn = InTxn::Pending;
            state.txn_pending.push((queues.name.clone(), partition));
        }
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
                wake = !queue.in_flight;
                filled = true;
            }
        }
        let last_batch_bytes = queue.last_batch_bytes;
        let open = queue.open.get_or_insert_with(|| {
            wake |= !queue.in_flight;
            // As large as the partition's last full batch, so that a busy partition's buffer
            // does not grow (and copy itself) several times over per batch.
            let capacity = last_batch_bytes.max(64 * 1024).min(c.batch_size).max(size);
            OpenBatch::new(capacity, &queues.name, partition)
        });
        let index = open.builder.record_count() as i64;
        queue.counts.appended += 1;
        open.builder.push(timestamp, key, value, headers);
        open.record_bytes += size;
        if let (Some(_), Some(record)) = (&self.reports, record) {
            open.reported.push(Reported::of(record, timestamp));
        }
        let batch = open.outcome.info().clone();
        let kick = (wake && queue.sink.broker != UNROUTED).then(|| queue.sink.clone());
        if let (
            true,
            Target::Random {
                partitions,
                sticky: true,
            },
        ) = (filled, target)
        {
            // The sticky partition filled a batch: the next records go to the next partition,
            // so that a fast producer keeps every partition's pipeline busy rather than
            // queueing batches behind one partition's request in flight (a new draw could
            // land on the same one).
            queues.sticky.partition = (partition + 1) % partitions.max(1) as i32;
            queues.sticky.drawn = Some(Instant::now());
        }
        drop(guard);
        if new_sink {
            self.router.notify_one();
        }
        Ok(Appended { batch, index, kick })
    }

    /// Takes the batches sink `sink` may send now: per partition routed to it with nothing in
    /// flight, the oldest closed batch whose retry backoff is over, or the open batch once
    /// `linger.ms` passed (at once while flushing or closing). Batches past
    /// `delivery.timeout.ms` fail here. Returns the batches and when to look again.
    pub fn drain(&self, sink: i32, now: Instant) -> (Vec<ReadyBatch>, Option<Instant>) {
        let linger = self.config.linger;
        let timeout = self.config.delivery_timeout;
        let mut guard = self.state();
        let state = &mut *guard;
        let hurry = state.flushes > 0 || state.closed;
        let mut out = Vec::new();
        let mut expired = Vec::new();
        let mut next: Option<Instant> = None;
        let mut soonest = |at: Instant| next = Some(next.map_or(at, |n| n.min(at)));
        let Some(entry) = state.sinks.get(&sink) else {
            return (out, None);
        };
        for (topic, partition) in &entry.partitions {
            let Some(queue) = state
                .topics
                .get_mut(&**topic)
                .and_then(|t| t.partitions.get_mut(partition))
            else {
                continue;
            };
            expire(queue, topic, *partition, now, timeout, &mut expired);
            if sink == UNROUTED {
                // Nothing goes from here: the router looks again when the oldest would expire.
                let oldest = queue.ready.front().map(|b| b.created);
                if let Some(created) = oldest.or(queue.open.as_ref().map(|o| o.created)) {
                    soonest(created + timeout);
                }
                continue;
            }
            if queue.in_flight {
                continue;
            }
            if queue.txn != InTxn::Added && self.transactional {
                // Not in the transaction yet: nothing goes until it is added. Only expiry is
                // timed here (the sink is woken when the partition is added).
                let oldest = queue.ready.front().map(|b| b.created);
                if let Some(created) = oldest.or(queue.open.as_ref().map(|o| o.created)) {
                    soonest(created + timeout);
                }
                continue;
            }
            if let Some(front) = queue.ready.front() {
                match front.retry_at {
                    Some(at) if at > now => soonest(at),
                    _ => {
                        queue.in_flight = true;
                        let batch = queue.ready.pop_front().expect("front exists");
                        queue.counts.in_flight = batch.records;
                        out.push(batch);
                    }
                }
            } else if let Some(open) = &queue.open {
                let due = open.created + linger;
                if hurry || due <= now {
                    queue.in_flight = true;
                    let open = queue.open.take().expect("checked above");
                    let batch = open.close(topic, *partition);
                    queue.counts.in_flight = batch.records;
                    out.push(batch);
                } else {
                    soonest(due);
                }
            }
        }
        drop(guard);
        for batch in expired {
            let error = batch.expired(timeout, None);
            self.settle(batch, Err(error), false);
        }
        (out, next)
    }

    /// Routes every partition again with the current metadata: partitions whose leader moved
    /// go to the new leader's sink, which is woken when it has work. Returns the topics of the
    /// partitions that have no leader.
    pub fn reroute(&self) -> Vec<Arc<str>> {
        let mut guard = self.state();
        let state = &mut *guard;
        let mut moves = Vec::new();
        for (name, queues) in &state.topics {
            for (&partition, queue) in &queues.partitions {
                let sink = (self.route)(name, partition).unwrap_or(UNROUTED);
                if sink != queue.sink.broker {
                    moves.push((name.clone(), partition, queue.sink.broker, sink));
                }
            }
        }
        let mut new_sink = false;
        for (topic, partition, from, to) in moves {
            state.leave(from, &topic, partition);
            let slots = self.config.max_in_flight;
            let (handle, new) = join(&mut state.sinks, to, slots, &topic, partition);
            new_sink |= new;
            let queue = state.queue(&topic, partition).expect("listed above");
            queue.sink = handle;
            if queue.has_work() {
                queue.sink.wake.notify_one();
            }
        }
        let unrouted = state
            .sinks
            .get(&UNROUTED)
            .map(|s| s.partitions.iter().map(|(t, _)| t.clone()).collect())
            .unwrap_or_default();
        drop(guard);
        if new_sink {
            self.router.notify_one();
        }
        unrouted
    }

    /// The sinks that have partitions but no task yet; each is marked started.
    pub fn new_sinks(&self) -> Vec<Arc<SinkHandle>> {
        let mut state = self.state();
        state
            .sinks
            .iter_mut()
            .filter(|(&id, s)| id != UNROUTED && !s.started)
            .map(|(_, s)| {
                s.started = true;
                s.handle.clone()
            })
            .collect()
    }

    /// Reports `outcome` to the batch's records and releases its place in the queue. `in_flight`
    /// says whether the batch came from a sink (and its partition may send again).
    pub fn settle(&self, mut batch: ReadyBatch, outcome: Result<BatchAck, Error>, in_flight: bool) {
        if let Some(reports) = &self.reports {
            // One message for the batch's records; the stream hands out a report per record.
            if !(self.config.delivery_report_only_error && outcome.is_ok()) {
                let _ = reports.send(BatchReports::new(
                    batch.topic.clone(),
                    batch.partition,
                    std::mem::take(&mut batch.reported),
                    outcome.clone(),
                ));
            }
        }
        let failure = match (&outcome, self.transactional) {
            (Err(e), true) => Some(e.clone()),
            _ => None,
        };
        let acked = outcome.is_ok();
        batch.outcome.set(outcome);
        let mut guard = self.state();
        let state = &mut *guard;
        if let Some(e) = failure {
            state.txn_failure.get_or_insert(e);
        }
        state.messages -= batch.records;
        state.bytes -= batch.record_bytes;
        // Only the statistics read these counts: without them, no lookup more per batch.
        if self.statistics {
            if let Some(topic) = state.topics.get_mut(&batch.topic) {
                topic.stats.settled(&batch, acked);
                if let Some(q) = topic.partitions.get_mut(&batch.partition) {
                    q.counts.settled(&batch, acked, in_flight);
                }
            }
        }
        let mut wake = None;
        if in_flight {
            if let Some(q) = state.queue(&batch.topic, batch.partition) {
                q.in_flight = false;
                // Its sink looks again only if the partition has more to send.
                wake = q.has_work().then(|| q.sink.clone());
            }
        }
        let empty = state.messages == 0;
        let finished = empty && state.closed;
        if finished {
            state.wake_all();
        }
        drop(guard);
        self.space.notify_waiters();
        if empty {
            self.drained.notify_waiters();
        }
        if let Some(sink) = wake {
            sink.wake.notify_one();
        }
        if finished {
            self.router.notify_one();
        }
    }

    /// Puts an in-flight batch back at the front of its partition, to go again after `backoff`.
    pub fn retry(&self, mut batch: ReadyBatch, backoff: Duration) {
        batch.attempts += 1;
        batch.retry_at = Some(Instant::now() + backoff);
        let mut state = self.state();
        let Some(queue) = state.queue(&batch.topic, batch.partition) else {
            // Queues are never removed: a batch comes from one.
            drop(state);
            return self.settle(batch, Err(Error::Closed), false);
        };
        queue.in_flight = false;
        queue.counts.in_flight = 0;
        queue.ready.push_front(batch);
        let sink = queue.sink.clone();
        drop(state);
        sink.wake.notify_one();
    }

    /// Takes every batch not sent yet out of the queues (those a retry holds, having been
    /// sent, stay: their sequence numbers are spoken for), and fails their records with
    /// [`Error::Purged`]. Returns how many records were purged.
    pub fn purge(&self) -> usize {
        let mut purged = Vec::new();
        {
            let mut state = self.state();
            for queues in state.topics.values_mut() {
                let name = queues.name.clone();
                for (&partition, queue) in queues.partitions.iter_mut() {
                    let sent = queue.ready.iter().take_while(|b| b.stamp.is_some()).count();
                    purged.extend(queue.ready.drain(sent..));
                    if let Some(open) = queue.open.take() {
                        purged.push(open.close(&name, partition));
                    }
                }
            }
        }
        let records = purged.iter().map(|b| b.records).sum();
        for batch in purged {
            self.settle(batch, Err(Error::Purged), false);
        }
        records
    }

    /// True when partitions with records in the transaction wait to be added to it.
    pub fn has_partitions_to_add(&self) -> bool {
        !self.state().txn_pending.is_empty()
    }

    /// The partitions waiting to be added to the transaction, taken: the caller adds them and
    /// reports with [`Accumulator::added`], or puts them back with [`Accumulator::not_added`].
    pub fn partitions_to_add(&self) -> Vec<(Arc<str>, i32)> {
        std::mem::take(&mut self.state().txn_pending)
    }

    /// `partitions` are in the transaction now: their batches may go, and their sinks look.
    pub fn added(&self, partitions: &[(Arc<str>, i32)]) {
        let mut state = self.state();
        let mut wake = Vec::new();
        for (topic, partition) in partitions {
            if let Some(queue) = state.queue(topic, *partition) {
                queue.txn = InTxn::Added;
                if queue.has_work() {
                    wake.push(queue.sink.clone());
                }
            }
        }
        drop(state);
        wake.iter().for_each(|sink| sink.wake.notify_one());
    }

    /// `partitions` could not be added yet: they wait for the next attempt.
    pub fn not_added(&self, partitions: Vec<(Arc<str>, i32)>) {
        self.state().txn_pending.extend(partitions);
    }

    /// The first error a record of the current transaction failed with, if one did.
    pub fn txn_failure(&self) -> Option<Error> {
        self.state().txn_failure.clone()
    }

    /// A transaction begins: records are taken for it.
    pub fn open_transaction(&self) {
        self.state().txn_open = true;
    }

    /// The transaction takes no more records: it is being committed or aborted, or failed.
    pub fn close_transaction(&self) {
        self.state().txn_open = false;
    }

    /// The transaction ended: no partition is in the next one yet, and no record has failed
    /// in it.
    pub fn end_transaction(&self) {
        let mut state = self.state();
        state.txn_open = false;
        for queues in state.topics.values_mut() {
            for queue in queues.partitions.values_mut() {
                queue.txn = InTxn::No;
            }
        }
        state.txn_pending.clear();
        state.txn_failure = None;
    }

    /// Records queued or in flight.
    pub fn pending(&self) -> usize {
        self.state().messages
    }

    /// Sends every queued record now, without waiting for `linger.ms`, and waits until none
    /// is queued or in flight (each delivered or failed): `Producer::flush`, and a
    /// transaction's commit and abort.
    ///
    /// Cancel-safe: dropped before it returns, the flush ends there, and linger applies again.
    pub async fn wait_drained(&self) {
        /// Ends the flush however the wait ends.
        struct Flushing<'a>(&'a Accumulator);
        impl Drop for Flushing<'_> {
            fn drop(&mut self) {
                self.0.flushing(false);
            }
        }
        self.flushing(true);
        let _flushing = Flushing(self);
        loop {
            let drained = self.drained.notified();
            tokio::pin!(drained);
            drained.as_mut().enable();
            if self.pending() == 0 {
                return;
            }
            drained.await;
        }
    }

    /// Starts (or ends) a flush: while one runs, open batches go without waiting for linger.
    fn flushing(&self, on: bool) {
        let mut state = self.state();
        if on {
            state.flushes += 1;
            state.wake_all();
        } else {
            state.flushes -= 1;
        }
    }

    /// Refuses new records from now on; what is queued is still sent, at once.
    pub fn close(&self) {
        let mut state = self.state();
        state.closed = true;
        state.wake_all();
        drop(state);
        self.router.notify_one();
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

#[cfg(test)]
mod tests;
