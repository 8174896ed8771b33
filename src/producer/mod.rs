//! The producer: records are written into their partition's open batch as they are sent
//! ([`accumulator`]); one sink per broker ([`sink`]) ships the batches of the partitions that
//! broker leads, and each record's delivery future ([`delivery`]) and the optional report
//! stream learn where it landed, from the connection's reader task as the answer arrives.
//!
//! ```text
//!  produce(record) ─► partition (explicit │ hash(key) │ sticky) ────► Accumulator::append
//!        │                                                                 │ linger / full / flush
//!        ▼                                                                 ▼
//!  DeliveryFuture ◄── batch outcome ◄── completion (reader task) ◄── sink(leader): Produce
//! ```
//!
//! The tasks, who owns what and which locks exist are described in [`sink`].

mod accumulator;
mod delivery;
mod idempotence;
mod partitioner;
mod sink;
mod statistics;
#[cfg(test)]
mod tests;
mod transaction;

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

pub use delivery::DeliveryFuture;
pub use partitioner::{fnv1a, murmur2, partition_for_key, KeyPartitioner, Partitioner};

use crate::cluster::{ClientEvents, ClientKind, Cluster};
use crate::config::{ClientConfig, ProducerConfig};
use crate::error::Error;
use crate::group::ConsumerGroupMetadata;
use crate::protocol::records::{BatchBuilder, Header};
use crate::stats::{Emitter, StatisticsStream};
use accumulator::{Accumulator, Appended, Refused, Target};
use delivery::BatchAck;
use partitioner::Choice;
use sink::Pipeline;
use transaction::{Call, Transactions};

/// A record to send.
///
/// ```
/// use purekafka::ProducerRecord;
/// let record = ProducerRecord::new("test")
///     .key("user-1")
///     .value("Confluent-Kafka")
///     .header("trace", "abc");
/// assert_eq!(record.topic, "test");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProducerRecord {
    /// The topic.
    pub topic: String,
    /// The partition; `None` lets the partitioner choose.
    pub partition: Option<i32>,
    /// The key, or `None`.
    pub key: Option<Bytes>,
    /// The value, or `None` (a tombstone).
    pub value: Option<Bytes>,
    /// Headers, in order.
    pub headers: Vec<Header>,
    /// Create time in milliseconds since the Unix epoch; `None` means now.
    pub timestamp: Option<i64>,
    /// The application's own value, handed back with the record's delivery report (see
    /// [`ProducerBuilder::delivery_reports`]); never sent.
    pub opaque: Option<Opaque>,
}

/// A value of the application's that travels with a record to its delivery report, so that
/// a report can be matched to what was sent (librdkafka's `msg_opaque`, confluent-kafka-go's
/// `Opaque`). Cheap to clone; compared by identity.
///
/// ```
/// use purekafka::{Opaque, ProducerRecord};
/// let record = ProducerRecord::new("orders").value("…").opaque(42_u64);
/// assert_eq!(record.opaque.unwrap().downcast_ref::<u64>(), Some(&42));
/// ```
#[derive(Clone)]
pub struct Opaque(Arc<dyn std::any::Any + Send + Sync>);

impl Opaque {
    /// Wraps `value`.
    pub fn new(value: impl std::any::Any + Send + Sync) -> Self {
        Opaque(Arc::new(value))
    }

    /// The value, if it is a `T`.
    pub fn downcast_ref<T: std::any::Any>(&self) -> Option<&T> {
        self.0.downcast_ref()
    }
}

impl fmt::Debug for Opaque {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Opaque(..)")
    }
}

impl PartialEq for Opaque {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for Opaque {}

impl ProducerRecord {
    /// A record for `topic` with no key, value or headers yet.
    pub fn new(topic: impl Into<String>) -> Self {
        ProducerRecord {
            topic: topic.into(),
            partition: None,
            key: None,
            value: None,
            headers: Vec::new(),
            timestamp: None,
            opaque: None,
        }
    }

    /// Attaches a value of the application's, handed back with the delivery report.
    pub fn opaque(mut self, value: impl std::any::Any + Send + Sync) -> Self {
        self.opaque = Some(Opaque::new(value));
        self
    }

    /// Sets the key.
    pub fn key(mut self, key: impl Into<Bytes>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// Sets the value.
    pub fn value(mut self, value: impl Into<Bytes>) -> Self {
        self.value = Some(value.into());
        self
    }

    /// Adds a header.
    pub fn header(mut self, key: impl Into<Bytes>, value: impl Into<Bytes>) -> Self {
        self.headers.push(Header::new(key, value));
        self
    }

    /// Sends to this partition instead of letting the partitioner choose.
    pub fn partition(mut self, partition: i32) -> Self {
        self.partition = Some(partition);
        self
    }

    /// Sets the create time (milliseconds since the Unix epoch).
    pub fn timestamp(mut self, timestamp: i64) -> Self {
        self.timestamp = Some(timestamp);
        self
    }
}

/// Where a record landed. Its `Display` is the seed's `test[0]@628`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecordMetadata {
    /// The topic.
    pub topic: Arc<str>,
    /// The partition.
    pub partition: i32,
    /// The record's offset; `None` with `acks=0`, when the broker does not say.
    pub offset: Option<i64>,
    /// The record's timestamp: its create time, or the broker's log-append time when the topic
    /// uses that.
    pub timestamp: i64,
}

impl fmt::Display for RecordMetadata {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}[{}]", self.topic, self.partition)?;
        match self.offset {
            Some(offset) => write!(f, "@{offset}"),
            None => Ok(()),
        }
    }
}

impl RecordMetadata {
    /// Where record `index` of a batch landed, from the batch's outcome.
    fn of(topic: &Arc<str>, partition: i32, index: i64, timestamp: i64, ack: &BatchAck) -> Self {
        RecordMetadata {
            topic: topic.clone(),
            partition,
            offset: ack.base_offset.map(|base| base + index),
            timestamp: ack.log_append_time.unwrap_or(timestamp),
        }
    }
}

/// One record's delivery, as the report stream tells it (the Go client's `Events()`, rdkafka's
/// delivery callback), with the record: a failure can be matched to its input and sent again.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct DeliveryReport {
    /// Where the record went; the offset is `None` when it failed (or with `acks=0`).
    pub metadata: RecordMetadata,
    /// Why the record was not delivered, if it was not.
    pub error: Option<Error>,
    /// The record's key.
    pub key: Option<Bytes>,
    /// The record's value.
    pub value: Option<Bytes>,
    /// The record's headers.
    pub headers: Vec<Header>,
    /// What the application attached with [`ProducerRecord::opaque`].
    pub opaque: Option<Opaque>,
}

/// What a delivery report hands back of one record, kept with its batch while reports are on.
#[derive(Debug)]
pub(crate) struct Reported {
    timestamp: i64,
    key: Option<Bytes>,
    value: Option<Bytes>,
    headers: Vec<Header>,
    opaque: Option<Opaque>,
}

impl Reported {
    pub(crate) fn of(record: &ProducerRecord, timestamp: i64) -> Self {
        Reported {
            timestamp,
            key: record.key.clone(),
            value: record.value.clone(),
            headers: record.headers.clone(),
            opaque: record.opaque.clone(),
        }
    }
}

/// The delivery reports of one batch's records, as the pipeline passes them to the report stream:
/// one message per batch rather than one per record.
#[derive(Debug)]
pub(crate) struct BatchReports {
    topic: Arc<str>,
    partition: i32,
    /// The records, in batch order.
    records: std::vec::IntoIter<Reported>,
    outcome: Result<BatchAck, Error>,
    /// Reports handed out so far.
    next: usize,
}

impl BatchReports {
    pub(crate) fn new(
        topic: Arc<str>,
        partition: i32,
        records: Vec<Reported>,
        outcome: Result<BatchAck, Error>,
    ) -> Self {
        BatchReports {
            topic,
            partition,
            records: records.into_iter(),
            outcome,
            next: 0,
        }
    }
}

impl Iterator for BatchReports {
    type Item = DeliveryReport;

    fn next(&mut self) -> Option<DeliveryReport> {
        let index = self.next;
        let record = self.records.next()?;
        self.next += 1;
        let (ack, error) = match &self.outcome {
            Ok(ack) => (ack, None),
            Err(e) => (&BatchAck::UNKNOWN, Some(e.clone())),
        };
        let (topic, partition, timestamp) = (&self.topic, self.partition, record.timestamp);
        Some(DeliveryReport {
            metadata: RecordMetadata::of(topic, partition, index as i64, timestamp, ack),
            error,
            key: record.key,
            value: record.value,
            headers: record.headers,
            opaque: record.opaque,
        })
    }
}

/// The stream of delivery reports of a producer built with
/// [`ProducerBuilder::delivery_reports`].
#[derive(Debug)]
pub struct DeliveryReports {
    batches: mpsc::UnboundedReceiver<BatchReports>,
    /// The batch whose reports are being handed out.
    current: Option<BatchReports>,
}

impl DeliveryReports {
    /// The next report; `None` once the producer is closed and every report was read.
    ///
    /// Cancel-safe: a report is taken only when this returns it.
    pub async fn recv(&mut self) -> Option<DeliveryReport> {
        loop {
            if let Some(report) = self.current.as_mut().and_then(Iterator::next) {
                return Some(report);
            }
            // Cancel safe: a batch is taken from the channel only when this returns.
            self.current = Some(self.batches.recv().await?);
        }
    }
}

/// Builds a [`Producer`].
#[derive(Debug)]
pub struct ProducerBuilder {
    config: ClientConfig,
    reports: bool,
    partitioner: Option<Arc<dyn Partitioner>>,
}

impl fmt::Debug for dyn Partitioner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Partitioner")
    }
}

impl ProducerBuilder {
    /// Chooses partitions with `partitioner` for records sent without one.
    pub fn partitioner(mut self, partitioner: impl Partitioner + 'static) -> Self {
        self.partitioner = Some(Arc::new(partitioner));
        self
    }

    /// Also report every delivery on a stream, taken with [`Producer::delivery_reports`].
    pub fn delivery_reports(mut self) -> Self {
        self.reports = true;
        self
    }

    /// Checks the configuration, connects to the cluster and starts the producer's tasks.
    ///
    /// Cancel-safe: dropped, nothing is kept (a connection being made is closed).
    pub async fn build(self) -> Result<Producer, Error> {
        self.config.producer.idempotent()?;
        let cluster = Cluster::connect(&self.config, ClientKind::Producer).await?;
        let (reports_tx, reports_rx) = match self.reports {
            true => {
                let (tx, rx) = mpsc::unbounded_channel();
                let reports = DeliveryReports {
                    batches: rx,
                    current: None,
                };
                (Some(tx), Some(reports))
            }
            false => (None, None),
        };
        let config = self.config.producer.clone();
        let leaders = cluster.clone();
        let route = Box::new(move |topic: &str, partition| leaders.cached_leader(topic, partition));
        let emitter = Arc::new(Emitter::new(
            self.config.common.statistics_interval,
            &self.config.common.client_id,
            "producer",
        ));
        let acc = Arc::new(Accumulator::new(
            config.clone(),
            route,
            reports_tx,
            emitter.enabled(),
        ));
        let txn = config
            .transactional_id
            .clone()
            .map(|id| Transactions::new(cluster.clone(), &config, id));
        let identity = match txn {
            Some(_) => Some(idempotence::Identity::transactional()),
            None => config.idempotent().unwrap_or(false).then(Default::default),
        };
        let pipeline = Arc::new(Pipeline {
            acc: acc.clone(),
            cluster: cluster.clone(),
            config: config.clone(),
            request_timeout: self.config.common.request_timeout,
            identity,
            txn,
            runtime: tokio::runtime::Handle::current(),
        });
        let router = tokio::spawn(sink::run(pipeline.clone()));
        if emitter.enabled() {
            tokio::spawn(statistics::run(Arc::downgrade(&pipeline), emitter.clone()));
        }
        Ok(Producer {
            inner: Arc::new(Inner {
                cluster,
                acc,
                pipeline,
                config,
                router: Mutex::new(Some(router)),
                reports: Mutex::new(reports_rx),
                partitioner: self.partitioner,
                emitter,
            }),
        })
    }
}

/// A Kafka producer. Cheap to clone; clones share the queue and the connections.
///
/// ```no_run
/// # async fn demo() -> Result<(), purekafka::Error> {
/// use purekafka::{ClientConfig, Producer, ProducerRecord};
/// let config = ClientConfig::new().bootstrap_servers(["127.0.0.1:9092"]);
/// let producer = Producer::builder(config).build().await?;
/// // Wait for one record:
/// let delivered = producer.send(ProducerRecord::new("test").value("hello")).await?;
/// println!("Delivered message to {delivered}");
/// // Or queue many and collect their deliveries later:
/// let mut pending = Vec::new();
/// for i in 0..1000 {
///     pending.push(producer.produce(ProducerRecord::new("test").value(format!("m{i}"))).await?);
/// }
/// for delivery in pending {
///     delivery.await?;
/// }
/// producer.close().await;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Producer {
    inner: Arc<Inner>,
}

impl fmt::Debug for Producer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Producer")
            .field("in_flight", &self.in_flight_count())
            .finish_non_exhaustive()
    }
}

struct Inner {
    cluster: Cluster,
    acc: Arc<Accumulator>,
    pipeline: Arc<Pipeline>,
    config: ProducerConfig,
    router: Mutex<Option<JoinHandle<()>>>,
    reports: Mutex<Option<DeliveryReports>>,
    partitioner: Option<Arc<dyn Partitioner>>,
    /// Where the statistics go, when `statistics.interval.ms` is set.
    emitter: Arc<Emitter>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The router and the sinks still deliver (or time out) what is queued, then end.
        self.acc.close();
        if let Some(txn) = &self.pipeline.txn {
            txn.stop();
        }
    }
}

impl Producer {
    /// A builder for a producer with this configuration.
    pub fn builder(config: ClientConfig) -> ProducerBuilder {
        ProducerBuilder {
            config,
            reports: false,
            partitioner: None,
        }
    }

    /// Sends one record and waits until the broker acknowledged it (per `acks`). Retriable
    /// errors are retried up to `retries` times, `retry.backoff.ms` apart, within
    /// `delivery.timeout.ms`.
    ///
    /// Cancel-safe in two halves: dropped before the record is queued, it is not sent; dropped
    /// after, the record is still delivered (or fails) as if its [`DeliveryFuture`] had been
    /// dropped, and the delivery report stream, if any, tells its outcome.
    pub async fn send(&self, record: ProducerRecord) -> Result<RecordMetadata, Error> {
        self.produce(record).await?.await
    }

    /// Queues one record, waiting while the queue is full, and returns its delivery future.
    /// Records queued for a partition are delivered in the order they were queued.
    ///
    /// A topic not known yet (or a partition beyond the count known) is waited for, up to
    /// `topic.metadata.propagation.max.ms`, as the Java client's `send` waits for metadata;
    /// then the record fails with [`Error::UnknownTopicOrPartition`] naming it.
    ///
    /// Cancel-safe: the record is queued only when this returns `Ok`.
    pub async fn produce(&self, record: ProducerRecord) -> Result<DeliveryFuture, Error> {
        self.enqueue(record, true).await
    }

    /// Queues one record like [`Producer::produce`], but fails with [`Error::QueueFull`] instead
    /// of waiting when the queue is full. A topic not known yet is still waited for.
    ///
    /// Cancel-safe, as [`Producer::produce`].
    pub async fn try_send(&self, record: ProducerRecord) -> Result<DeliveryFuture, Error> {
        self.enqueue(record, false).await
    }

    async fn enqueue(&self, record: ProducerRecord, wait: bool) -> Result<DeliveryFuture, Error> {
        let inner = &*self.inner;
        if let Some(txn) = &inner.pipeline.txn {
            txn.check_produce()?;
        }
        let c = &inner.config;
        let (key, value) = (record.key.as_deref(), record.value.as_deref());
        let alone = BatchBuilder::size_alone(key, value, &record.headers);
        if alone > c.message_max_bytes {
            return Err(Error::RecordTooLarge {
                size: alone,
                max: c.message_max_bytes,
            });
        }
        // The topic (and the partition asked for) must be known: waited for up to
        // topic.metadata.propagation.max.ms when not cached yet.
        let partitions = inner
            .cluster
            .producing_to(&record.topic, record.partition)
            .await?;
        let target = match (record.partition, key) {
            (Some(p), _) => Target::Partition(p),
            (None, key) => {
                let chosen = inner
                    .partitioner
                    .as_ref()
                    .and_then(|p| p.partition(&record.topic, key, partitions));
                match chosen {
                    Some(p) if (0..partitions as i32).contains(&p) => Target::Partition(p),
                    Some(p) => return Err(Error::unknown(&record.topic, Some(p))),
                    None => match inner.config.partitioner.choose(key, partitions) {
                        Choice::Hashed(p) => Target::Partition(p),
                        Choice::Spread { sticky } => Target::Random { partitions, sticky },
                    },
                }
            }
        };
        let timestamp = record.timestamp.unwrap_or_else(now_ms);
        let append = || {
            let headers = &record.headers;
            let appended = inner.acc.append(
                &record.topic,
                target,
                timestamp,
                key,
                value,
                headers,
                alone,
                Some(&record),
            );
            appended.map(|Appended { batch, index, kick }| {
                if let Some(sink) = kick {
                    inner.pipeline.kick(&sink);
                }
                DeliveryFuture::new(batch, index, timestamp)
            })
        };
        let mut attempt = append();
        loop {
            match attempt {
                Ok(delivery) => return Ok(delivery),
                Err(Refused::Closed) => return Err(Error::Closed),
                Err(Refused::NotInTransaction) => {
                    let txn = inner.pipeline.txn.as_ref().expect("only transactional");
                    return Err(txn.refused_record(&inner.acc));
                }
                Err(Refused::Full) if !wait => {
                    return Err(Error::QueueFull {
                        messages: c.queue_max_messages,
                        kbytes: c.queue_max_bytes / 1024,
                    })
                }
                Err(Refused::Full) => {}
            }
            // The queue is full. Register for space before trying again, so that a release in
            // between is not missed; only then wait. (Registering costs a lock, so the first
            // attempt, which nearly always succeeds, goes without.)
            let space = inner.acc.space.notified();
            tokio::pin!(space);
            space.as_mut().enable();
            attempt = append();
            if matches!(attempt, Err(Refused::Full)) {
                space.await;
                attempt = append();
            }
        }
    }

    /// The producer's transaction state, or the error for `call` on a producer without
    /// `transactional.id`.
    fn transactions(&self, call: &'static str) -> Result<(&Transactions, &Arc<Pipeline>), Error> {
        let pipeline = &self.inner.pipeline;
        match &pipeline.txn {
            Some(txn) => Ok((txn, pipeline)),
            None => Err(Error::TransactionState {
                call,
                state: "the producer is not transactional (transactional.id is not set)".into(),
            }),
        }
    }

    /// Readies a producer with `transactional.id` for transactions: finds its transaction
    /// coordinator and takes a producer id and epoch from it. That fences any earlier producer
    /// with the same `transactional.id` (its next transactional call fails as fatal), and the
    /// coordinator aborts, or finishes committing, the transaction that producer left open.
    /// Call it once, before the first [`Producer::begin_transaction`].
    ///
    /// Cancel-safe, and resumable as librdkafka's: the work goes on as a task when this is
    /// dropped or times out ([`TxnErrorKind::Retriable`](crate::TxnErrorKind)); calling it
    /// again waits for the same work. A cluster without transactions (or a Kafka-compatible
    /// service that lacks them) fails it as fatal, naming the API it lacks.
    pub async fn init_transactions(&self, timeout: Duration) -> Result<(), Error> {
        let (txn, pipeline) = self.transactions("init_transactions")?;
        txn.run(&pipeline.runtime, Call::Init, timeout, || {
            txn.start_init(pipeline)
        })
        .await
    }

    /// Opens a transaction: the records sent from now on, and the offsets sent with
    /// [`Producer::send_offsets_to_transaction`], are committed or aborted together. Nothing
    /// is sent to the cluster until the first record or offsets.
    pub fn begin_transaction(&self) -> Result<(), Error> {
        let (txn, pipeline) = self.transactions("begin_transaction")?;
        txn.begin(&pipeline.acc)
    }

    /// Adds a consumer's offsets to the transaction: for each `(topic, partition, offset)`,
    /// the offset of the next record to read (the consumer's position, one past the last
    /// record processed). They are committed for `group` if, and only if, the transaction
    /// commits: consume-transform-produce exactly once.
    ///
    /// `group` is [`Consumer::group_metadata`](crate::Consumer::group_metadata), taken after
    /// the records were read: where the cluster knows generations (Kafka 2.5 and later), a
    /// member the group has moved on from (rebalanced away, or fenced) cannot commit, and the
    /// call fails as abortable.
    ///
    /// Cancel-safe: dropped or timed out, the offsets are still sent in the background; a
    /// retriable failure may be retried with the same offsets.
    pub async fn send_offsets_to_transaction<T: AsRef<str>>(
        &self,
        offsets: &[(T, i32, i64)],
        group: &ConsumerGroupMetadata,
        timeout: Duration,
    ) -> Result<(), Error> {
        let (txn, pipeline) = self.transactions("send_offsets_to_transaction")?;
        let offsets: Vec<(Arc<str>, i32, i64)> = offsets
            .iter()
            .map(|(t, p, o)| (Arc::from(t.as_ref()), *p, *o))
            .collect();
        txn.run(&pipeline.runtime, Call::SendOffsets, timeout, || {
            txn.start_send_offsets(pipeline, offsets, group.clone())
        })
        .await
    }

    /// Commits the transaction: sends every record still queued, waits until all are
    /// delivered, then asks the coordinator to commit. When a record of the transaction
    /// failed, nothing is committed and the call fails as abortable
    /// ([`Error::txn_requires_abort`]): call [`Producer::abort_transaction`].
    ///
    /// Cancel-safe and resumable: dropped or timed out (a retriable error), the commit goes on
    /// in the background, and the next call waits for its outcome. Send no records while it
    /// runs.
    pub async fn commit_transaction(&self, timeout: Duration) -> Result<(), Error> {
        let (txn, pipeline) = self.transactions("commit_transaction")?;
        txn.run(&pipeline.runtime, Call::Commit, timeout, || {
            txn.start_commit(pipeline)
        })
        .await
    }

    /// Aborts the transaction: records not sent yet fail with [`Error::Purged`], those in
    /// flight are waited for, and the coordinator writes the abort markers, so that
    /// `read_committed` consumers skip every record of it. Also the way on after an abortable
    /// error; when the error left a record's sequence unknown, the producer takes a new epoch
    /// here (KIP-360, Kafka 2.5 and later; on older clusters that is fatal).
    ///
    /// Cancel-safe and resumable, as [`Producer::commit_transaction`].
    pub async fn abort_transaction(&self, timeout: Duration) -> Result<(), Error> {
        let (txn, pipeline) = self.transactions("abort_transaction")?;
        txn.run(&pipeline.runtime, Call::Abort, timeout, || {
            txn.start_abort(pipeline)
        })
        .await
    }

    /// The delivery report stream, when the producer was built with
    /// [`ProducerBuilder::delivery_reports`]; it can be taken once.
    pub fn delivery_reports(&self) -> Option<DeliveryReports> {
        self.inner.reports.lock().expect("reports lock").take()
    }

    /// The client's events from now on: when every broker is down, and when one answers again
    /// (librdkafka's `ERR__ALL_BROKERS_DOWN`). The first event is the current state when all
    /// brokers are down already, as when the client was built before them.
    pub fn events(&self) -> ClientEvents {
        self.inner.cluster.events()
    }

    /// The producer's statistics, every `statistics.interval.ms`, from now on: librdkafka's
    /// statistics JSON (STATISTICS.md) as a [`Statistics`](crate::Statistics), for its
    /// `stats_cb`. Ends at once when the interval is 0, the default.
    pub fn statistics(&self) -> StatisticsStream {
        self.inner.emitter.subscribe()
    }

    /// Fails every record not sent yet with [`Error::Purged`] and drops it from the queue
    /// (librdkafka's `purge` with `RD_KAFKA_PURGE_F_QUEUE`): their futures and delivery
    /// reports say so at once. Records in flight, or waiting to be sent again after a failed
    /// attempt, are left to finish: they may have been written already. Returns how many
    /// records were purged.
    pub fn purge(&self) -> usize {
        self.inner.acc.purge()
    }

    /// Records queued or in flight.
    pub fn in_flight_count(&self) -> usize {
        self.inner.acc.pending()
    }

    /// Sends every queued record now, without waiting for `linger.ms`, and waits until all are
    /// delivered or failed, for at most `timeout`.
    ///
    /// Cancel-safe: dropped before it returns, the flush ends there, and linger applies again.
    pub async fn flush(&self, timeout: Duration) -> Result<(), Error> {
        let acc = &*self.inner.acc;
        tokio::time::timeout(timeout, acc.wait_drained())
            .await
            .map_err(|_| Error::Timeout {
                what: format!("flush ({} records still queued)", acc.pending()),
                after_ms: timeout.as_millis() as u64,
                outcome_unknown: false,
            })
    }

    /// Closes the producer: no new records are taken, and every queued record is delivered or
    /// fails (at the latest after `delivery.timeout.ms`) before this returns. Clones of this
    /// producer are closed too.
    ///
    /// Cancel-safe: dropped, the producer is closed all the same (no new records are taken), and
    /// what is queued is still delivered in the background.
    pub async fn close(self) {
        self.inner.acc.close();
        let router = self.inner.router.lock().expect("router lock").take();
        if let Some(router) = router {
            let _ = router.await;
        }
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
