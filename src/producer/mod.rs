//! The producer: picks a partition, writes the record into a v2 batch, sends it to the
//! partition's leader and reports where it landed.
//!
//! ```text
//!  send(record) ─► partition (explicit │ murmur2(key) │ round robin)
//!               ─► BatchBuilder ─► Produce to the leader ─► RecordMetadata {topic, partition, offset}
//!                                      ▲  retriable error: refresh metadata, back off, retry
//! ```
//!
//! This first producer sends one batch per record and waits for each; the accumulator with
//! linger, batching per partition and in-flight limits replaces that path without changing the
//! API.

mod partitioner;

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

use bytes::Bytes;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ProduceRequest, TopicName};
use kafka_protocol::protocol::StrBytes;

pub use partitioner::{murmur2, partition_for_key};

use crate::cluster::Cluster;
use crate::config::{Acks, ClientConfig, ProducerConfig};
use crate::error::{Error, KafkaCode};
use crate::protocol::records::{BatchBuilder, Header, ProducerFields};
use partitioner::RoundRobin;

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
}

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
        }
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
    pub topic: String,
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

/// Builds a [`Producer`].
#[derive(Debug)]
pub struct ProducerBuilder {
    config: ClientConfig,
}

impl ProducerBuilder {
    /// Checks the configuration and connects to the cluster.
    pub async fn build(self) -> Result<Producer, Error> {
        let cluster = Cluster::connect(&self.config).await?;
        Ok(Producer {
            inner: std::sync::Arc::new(Inner {
                cluster,
                config: self.config.producer.clone(),
                request_timeout: self.config.common.request_timeout,
                round_robin: RoundRobin::default(),
            }),
        })
    }
}

/// A Kafka producer. Cheap to clone; clones share connections.
///
/// ```no_run
/// # async fn demo() -> Result<(), purekafka::Error> {
/// use purekafka::{ClientConfig, Producer, ProducerRecord};
/// let config = ClientConfig::new().bootstrap_servers(["127.0.0.1:9092"]);
/// let producer = Producer::builder(config).build().await?;
/// let delivered = producer.send(ProducerRecord::new("test").value("hello")).await?;
/// println!("Delivered message to {delivered}");
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Producer {
    inner: std::sync::Arc<Inner>,
}

struct Inner {
    cluster: Cluster,
    config: ProducerConfig,
    request_timeout: Duration,
    round_robin: RoundRobin,
}

impl Producer {
    /// A builder for a producer with this configuration.
    pub fn builder(config: ClientConfig) -> ProducerBuilder {
        ProducerBuilder { config }
    }

    /// Sends one record and waits until the broker acknowledged it (per `acks`), retrying
    /// retriable errors up to `retries` times, `retry.backoff.ms` apart, for at most
    /// `delivery.timeout.ms`. A record larger than `message.max.bytes` fails at once.
    ///
    /// Records are ordered by when their `send` completes: to keep two records of a partition
    /// in order, await the first before sending the second.
    pub async fn send(&self, record: ProducerRecord) -> Result<RecordMetadata, Error> {
        let inner = &*self.inner;
        let timestamp = record.timestamp.unwrap_or_else(now_ms);
        let mut builder = BatchBuilder::with_capacity(
            record.key.as_ref().map_or(0, Bytes::len)
                + record.value.as_ref().map_or(0, Bytes::len)
                + 32,
        );
        builder.push(
            timestamp,
            record.key.as_deref(),
            record.value.as_deref(),
            &record.headers,
        );
        let batch = builder
            .finish(ProducerFields::NONE, inner.config.compression)
            .map_err(|e| Error::protocol("-", e))?;
        if batch.len() > inner.config.message_max_bytes {
            return Err(Error::RecordTooLarge {
                size: batch.len(),
                max: inner.config.message_max_bytes,
            });
        }
        let deadline = Instant::now() + inner.config.delivery_timeout;
        let mut attempt = 0;
        loop {
            let result =
                tokio::time::timeout_at(deadline, self.try_send(&record, batch.clone(), timestamp))
                    .await
                    .unwrap_or_else(|_| {
                        Err(Error::Timeout {
                            what: format!(
                                "delivery of a record to {} (delivery.timeout.ms)",
                                record.topic
                            ),
                            after_ms: inner.config.delivery_timeout.as_millis() as u64,
                        })
                    });
            match result {
                Err(e)
                    if e.is_retriable()
                        && attempt < inner.config.retries
                        && Instant::now() + inner.config.retry_backoff < deadline =>
                {
                    attempt += 1;
                    tracing::debug!(topic = %record.topic, error = %e, attempt, "retrying produce");
                    inner.cluster.invalidate_topic(&record.topic);
                    tokio::time::sleep(inner.config.retry_backoff).await;
                }
                result => return result,
            }
        }
    }

    async fn try_send(
        &self,
        record: &ProducerRecord,
        batch: Bytes,
        timestamp: i64,
    ) -> Result<RecordMetadata, Error> {
        let inner = &*self.inner;
        let partition = self.choose_partition(record).await?;
        let leader = inner.cluster.leader_id(&record.topic, partition).await?;
        let conn = inner.cluster.broker(leader).await?;
        let request = ProduceRequest::default()
            .with_acks(inner.config.acks.as_i16())
            .with_timeout_ms(inner.request_timeout.as_millis().min(i32::MAX as u128) as i32)
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(TopicName(StrBytes::from_string(record.topic.clone())))
                .with_partition_data(vec![PartitionProduceData::default()
                    .with_index(partition)
                    .with_records(Some(batch))])]);
        let delivered = |offset| RecordMetadata {
            topic: record.topic.clone(),
            partition,
            offset,
            timestamp,
        };
        if inner.config.acks == Acks::None {
            let version = conn.version_of::<ProduceRequest>()?;
            conn.send_only(&request, version).await?;
            return Ok(delivered(None));
        }
        let (response, _) = conn.request(&request).await?;
        let p = response
            .responses
            .iter()
            .flat_map(|t| &t.partition_responses)
            .find(|p| p.index == partition)
            .ok_or_else(|| {
                Error::protocol(
                    conn.broker(),
                    format!("Produce response lacks {}[{partition}]", record.topic),
                )
            })?;
        if let Some(code) = KafkaCode::from_code(p.error_code) {
            return Err(Error::Broker {
                api: "Produce",
                resource: format!("{}[{partition}]", record.topic),
                code,
                message: p.error_message.as_ref().map(|m| m.to_string()),
            });
        }
        let mut metadata = delivered(Some(p.base_offset));
        if p.log_append_time_ms >= 0 {
            metadata.timestamp = p.log_append_time_ms;
        }
        Ok(metadata)
    }

    async fn choose_partition(&self, record: &ProducerRecord) -> Result<i32, Error> {
        let inner = &*self.inner;
        if let Some(p) = record.partition {
            return Ok(p);
        }
        let count = inner.cluster.topic(&record.topic).await?.partitions.len();
        if count == 0 {
            return Err(Error::UnknownTopicOrPartition(record.topic.clone()));
        }
        Ok(match &record.key {
            Some(key) => partition_for_key(key, count),
            None => inner.round_robin.next(count),
        })
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
