//! Errors: one public [`Error`] enum with the context a user needs to act on it (which broker,
//! which topic and partition, which setting), and [`KafkaCode`] for the error codes brokers send.
//!
//! kafka-protocol reports encode and decode failures as `anyhow` errors; they are turned into
//! [`Error::Protocol`] where they cross into this crate and never reach the public API.

use std::fmt;
use std::sync::Arc;

use kafka_protocol::error::ResponseError;

/// What went wrong. Every variant names what it concerns: the broker, topic, partition, or the
/// configuration key.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A configuration key, value or file was not acceptable.
    #[error(transparent)]
    Config(#[from] ConfigError),

    /// The broker refused our credentials or our mechanism, or the client and the broker's
    /// listener disagree on whether to authenticate at all (`security.protocol` PLAINTEXT against
    /// a SASL listener, or the reverse). Retrying with the same settings cannot help, so the
    /// client does not reconnect on its own.
    #[error("authentication with {broker} using SASL mechanism {mechanism} failed: {message}")]
    Authentication {
        /// The broker that refused us.
        broker: String,
        /// The SASL mechanism in use, or `none` when the client does not authenticate.
        mechanism: String,
        /// What the broker said.
        message: String,
    },

    /// The TLS session with a broker could not be set up: its certificate was refused (an
    /// unknown CA, another host's name, expired), or it ended the session with an alert (say,
    /// for want of a client certificate). Another attempt would fail the same way, so the
    /// client does not reconnect on its own.
    #[error("TLS with {broker} failed: {message}")]
    Tls {
        /// The broker address.
        broker: String,
        /// What was refused, and by whom.
        message: String,
    },

    /// A network error on the connection to a broker. Requests that were in flight on it may or
    /// may not have been processed by the broker: `outcome_unknown` says so.
    #[error("connection to {broker} failed: {message}")]
    Io {
        /// The broker address.
        broker: String,
        /// What failed.
        message: String,
        /// True when a request had been written and may have taken effect on the broker.
        outcome_unknown: bool,
    },

    /// The connection failed for a reason other than I/O (a protocol error, another request's
    /// timeout) while this request was queued or in flight on it.
    #[error("connection to {broker} closed: {cause}")]
    Disconnected {
        /// The broker address.
        broker: String,
        /// Why the connection was closed.
        cause: Arc<Error>,
        /// True when this request had been written and may have taken effect on the broker.
        outcome_unknown: bool,
    },

    /// The broker sent bytes that do not follow the Kafka protocol, or we could not encode one of
    /// our requests. The connection is closed.
    #[error("protocol error with {broker}: {message}")]
    Protocol {
        /// The broker address, or `-` when not tied to one.
        broker: String,
        /// What was wrong with the bytes.
        message: String,
    },

    /// A record batch could not be decoded.
    #[error("corrupt record batch in {topic}[{partition}]: {reason}")]
    CorruptBatch {
        /// Topic of the batch.
        topic: String,
        /// Partition of the batch.
        partition: i32,
        /// What was wrong.
        reason: String,
    },

    /// The broker and purekafka share no version of an API the operation needs.
    #[error("broker {broker} does not support {api} in any version purekafka speaks ({ours})")]
    UnsupportedApi {
        /// The broker address.
        broker: String,
        /// The API name, e.g. `Produce`.
        api: &'static str,
        /// The version range purekafka supports.
        ours: String,
    },

    /// The broker answered with an error code.
    #[error("{api} for {resource} failed: {code}{}", message.as_deref().map(|m| format!(" ({m})")).unwrap_or_default())]
    Broker {
        /// The API that failed, e.g. `Produce`.
        api: &'static str,
        /// What the request was about: a partition, a topic, a group, or a broker.
        resource: Resource,
        /// The Kafka error code.
        code: KafkaCode,
        /// The error message the broker sent, if any.
        message: Option<String>,
    },

    /// No answer within the configured time.
    #[error("timed out after {after_ms} ms: {what}")]
    Timeout {
        /// What we waited for.
        what: String,
        /// How long we waited.
        after_ms: u64,
        /// True when a request had been written, so it may have taken effect on the broker;
        /// false when the wait ended before anything was sent (connecting, finding a leader,
        /// a flush, a record that never left the queue).
        outcome_unknown: bool,
    },

    /// No broker of the bootstrap list could be reached.
    #[error("no broker reachable (tried {tried}): {last}")]
    NoBrokerReachable {
        /// The addresses tried.
        tried: String,
        /// The last error.
        last: Arc<Error>,
    },

    /// A record is larger than `message.max.bytes` allows; it was not sent.
    #[error("record of {size} bytes exceeds message.max.bytes ({max})")]
    RecordTooLarge {
        /// The record's size as a batch on the wire.
        size: usize,
        /// The configured limit.
        max: usize,
    },

    /// The producer's queue is full (`queue.buffering.max.messages` or
    /// `queue.buffering.max.kbytes`) and the caller asked not to wait.
    #[error("producer queue is full (queue.buffering.max.messages={messages}, queue.buffering.max.kbytes={kbytes})")]
    QueueFull {
        /// The message limit.
        messages: usize,
        /// The size limit in KiB.
        kbytes: usize,
    },

    /// The topic, or the partition of it, is not known to the cluster.
    #[error("unknown topic or partition: {}", Resource::of(topic, *partition))]
    UnknownTopicOrPartition {
        /// The topic.
        topic: String,
        /// The partition asked for, when the topic is known but this partition is not (or
        /// when a partition was named).
        partition: Option<i32>,
    },

    /// The partition is not one of those assigned to this consumer (seek, pause, a commit for
    /// it): it exists, but this consumer does not read it.
    #[error("{topic}[{partition}] is not assigned to this consumer")]
    NotAssigned {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
    },

    /// Not a failure: the consumer has read everything in the partition there is to read, up
    /// to `offset` (the next offset to be written, or under `read_committed` the first one of
    /// an open transaction). Reported once per offset reached, by `recv`, `poll` and the
    /// stream, only with `enable.partition.eof=true`, as librdkafka's `ERR__PARTITION_EOF`.
    /// The consumer reads on.
    #[error("{topic}[{partition}] reached its end at offset {offset}")]
    PartitionEof {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// The offset after the last record read.
        offset: i64,
    },

    /// The partition's log was truncated under the consumer: its new leader (after an unclean
    /// election) holds the records only up to `diverging`, short of the position `offset`,
    /// and records written since may stand at the offsets read already (KIP-320). With
    /// `auto.offset.reset` other than `error` the consumer goes back to `diverging` itself
    /// and says so in its log; with `error` it stops here until the application seeks.
    #[error("log truncation detected in {topic}[{partition}]: the consumer was at offset {offset}, the new leader's log diverges from offset {diverging}")]
    LogTruncated {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// The consumer's position.
        offset: i64,
        /// The first offset the log may hold other records at than those read.
        diverging: i64,
    },

    /// A group member was assigned a partition the group has no committed offset for, and
    /// `auto.offset.reset` is `error`.
    #[error("no committed offset for {0} and auto.offset.reset is error")]
    NoCommittedOffset(String),

    /// `recv()` was called on a consumer with no partitions assigned.
    #[error("the consumer has no partitions assigned")]
    NoAssignment,

    /// The client was closed.
    #[error("the client is closed")]
    Closed,

    /// The record was taken out of the producer's queue by
    /// [`Producer::purge`](crate::Producer::purge) before it was sent: it was not written (librdkafka's
    /// `ERR__PURGE_QUEUE`).
    #[error("the record was purged from the producer's queue before it was sent")]
    Purged,

    /// The cluster has no share groups (KIP-932): brokers before Kafka 4.1 lack the APIs, and
    /// 4.1 and later answer UNSUPPORTED_VERSION while the cluster's `share.version` feature
    /// is 0 (Kafka 4.2 turns it on in new clusters).
    #[error("share groups are not available from broker {broker}: {reason}")]
    ShareGroupsUnavailable {
        /// The broker address.
        broker: String,
        /// Why not, and what turns them on.
        reason: String,
    },

    /// A share consumer's acknowledgements could not be sent: the share session with the
    /// broker that handed the records out ended (its connection closed), and with it the
    /// member's hold on the records. The broker delivers them again, to this member or another.
    #[error("acknowledgements for broker {broker} were not sent: {reason}")]
    AcknowledgementsNotSent {
        /// The broker (its node id).
        broker: String,
        /// Why not.
        reason: String,
    },

    /// A call the client's state does not allow: a share consumer asked for records while
    /// some it handed out are unacknowledged in explicit mode, or told to acknowledge in
    /// implicit mode (librdkafka's `ERR__STATE`, Java's `IllegalStateException`, with Java's
    /// words). A mistake of the application's; nothing was sent, and nothing is lost.
    #[error("{call} is not allowed: {state}")]
    State {
        /// The call, e.g. `poll`.
        call: &'static str,
        /// Why not.
        state: String,
    },

    /// A call of the transactional producer failed. `kind` says what the application does
    /// next, as librdkafka's error classes do: call again, abort the transaction and go on, or
    /// close the producer. [`Error::is_retriable`], [`Error::txn_requires_abort`] and
    /// [`Error::is_fatal`] tell the same.
    #[error("{call} failed ({kind}): {cause}")]
    Transaction {
        /// The call, e.g. `commit_transaction`, or `produce` for a record refused because the
        /// transaction failed.
        call: &'static str,
        /// What to do about it.
        kind: TxnErrorKind,
        /// What went wrong.
        cause: Arc<Error>,
    },

    /// A transactional call was made when the producer's state does not allow it: a record
    /// sent outside a transaction, `begin_transaction` twice, a transactional call on a
    /// producer without `transactional.id` (librdkafka's `ERR__STATE`). A mistake of the
    /// application's; nothing was sent.
    #[error("{call} is not allowed: {state}")]
    TransactionState {
        /// The call.
        call: &'static str,
        /// Why not, from the producer's state.
        state: String,
    },
}

/// What the application does after a failed transactional call (librdkafka's
/// `rd_kafka_error_is_retriable`, `rd_kafka_error_txn_requires_abort`,
/// `rd_kafka_error_is_fatal`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TxnErrorKind {
    /// The call may be made again: it timed out, or the coordinator was busy. Whatever the
    /// earlier attempt started goes on, and the call takes it up.
    Retriable,
    /// The transaction cannot commit (a record failed, the group moved on, an authorization
    /// was refused): call `abort_transaction`, then begin the next one.
    Abortable,
    /// The producer cannot go on (another producer with the same `transactional.id` fenced
    /// it, or the cluster refuses the id): close it, and build a new one to continue.
    Fatal,
}

impl fmt::Display for TxnErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TxnErrorKind::Retriable => "retriable: call it again",
            TxnErrorKind::Abortable => "abort the transaction",
            TxnErrorKind::Fatal => "fatal: close the producer",
        })
    }
}

impl Error {
    /// Whether retrying the same operation later may succeed. A consumer that got a
    /// retriable error from `recv` carries on with the next call; so do kcat and pkcat.
    ///
    /// An unknown topic or partition is retriable, as in Kafka's own classification: topics
    /// and partitions are created while clients run, and reach every broker a little later.
    pub fn is_retriable(&self) -> bool {
        match self {
            Error::Io { .. }
            | Error::Disconnected { .. }
            | Error::Timeout { .. }
            | Error::NoBrokerReachable { .. }
            | Error::UnknownTopicOrPartition { .. }
            | Error::PartitionEof { .. } => true,
            Error::Broker { code, .. } => code.is_retriable(),
            Error::Transaction { kind, .. } => *kind == TxnErrorKind::Retriable,
            _ => false,
        }
    }

    /// True when the producer cannot go on and must be closed: a transactional producer was
    /// fenced by another with its `transactional.id`, or refused for good.
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            Error::Transaction {
                kind: TxnErrorKind::Fatal,
                ..
            }
        )
    }

    /// True when the current transaction cannot commit and must be aborted with
    /// [`Producer::abort_transaction`](crate::Producer::abort_transaction); the producer goes
    /// on with the next transaction.
    pub fn txn_requires_abort(&self) -> bool {
        matches!(
            self,
            Error::Transaction {
                kind: TxnErrorKind::Abortable,
                ..
            }
        )
    }

    /// True when a request may or may not have taken effect on the broker (its connection failed
    /// after it was written, or its answer did not come in time).
    pub fn is_outcome_unknown(&self) -> bool {
        match self {
            Error::Io {
                outcome_unknown, ..
            }
            | Error::Disconnected {
                outcome_unknown, ..
            }
            | Error::Timeout {
                outcome_unknown, ..
            } => *outcome_unknown,
            _ => false,
        }
    }

    /// The topic and partition the error is about, when it is about one: a broker's error
    /// for a partition, an unknown topic or partition, a corrupt batch, a truncated log.
    pub fn topic_partition(&self) -> Option<(&str, Option<i32>)> {
        match self {
            Error::Broker { resource, .. } => match resource {
                Resource::Partition { topic, partition } => Some((topic, Some(*partition))),
                Resource::Topic(topic) => Some((topic, None)),
                _ => None,
            },
            Error::UnknownTopicOrPartition { topic, partition } => Some((topic, *partition)),
            Error::NotAssigned { topic, partition }
            | Error::PartitionEof {
                topic, partition, ..
            }
            | Error::CorruptBatch {
                topic, partition, ..
            } => Some((topic, Some(*partition))),
            _ => None,
        }
    }

    /// The error for a topic the cluster does not know, or a partition beyond its count.
    pub(crate) fn unknown(topic: &str, partition: Option<i32>) -> Self {
        Error::UnknownTopicOrPartition {
            topic: topic.to_owned(),
            partition,
        }
    }

    /// The Kafka error code, when the broker sent one.
    pub fn kafka_code(&self) -> Option<KafkaCode> {
        match self {
            Error::Broker { code, .. } => Some(*code),
            Error::Transaction { cause, .. } => cause.kafka_code(),
            _ => None,
        }
    }

    pub(crate) fn protocol(broker: impl Into<String>, message: impl fmt::Display) -> Self {
        Error::Protocol {
            broker: broker.into(),
            message: message.to_string(),
        }
    }
}

/// What a broker's error is about, as data: a partition, a topic, a group or a broker. Its
/// `Display` is how messages name it (`test[0]`, `test`, `group g1`, `127.0.0.1:9092`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Resource {
    /// One partition of a topic.
    Partition {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
    },
    /// A topic.
    Topic(String),
    /// A consumer group.
    Group(String),
    /// A broker: its address, or `broker <node id>`.
    Broker(String),
    /// A transactional producer's `transactional.id`.
    TransactionalId(String),
    /// An ACL binding, or a filter of them, as text.
    Acl(String),
}

impl Resource {
    /// `topic[partition]`, or the topic when no partition is named.
    pub fn of(topic: &str, partition: Option<i32>) -> Resource {
        match partition {
            Some(partition) => Resource::partition(topic, partition),
            None => Resource::Topic(topic.to_owned()),
        }
    }

    /// `topic[partition]`.
    pub fn partition(topic: &str, partition: i32) -> Resource {
        Resource::Partition {
            topic: topic.to_owned(),
            partition,
        }
    }
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Resource::Partition { topic, partition } => write!(f, "{topic}[{partition}]"),
            Resource::Topic(topic) => f.write_str(topic),
            Resource::Group(group) => write!(f, "group {group}"),
            Resource::Broker(broker) => f.write_str(broker),
            Resource::TransactionalId(id) => write!(f, "transactional id {id}"),
            Resource::Acl(acl) => write!(f, "ACL {acl}"),
        }
    }
}

/// A Kafka error code, as sent by brokers in responses.
///
/// ```
/// use purekafka::KafkaCode;
/// let code = KafkaCode::from_code(6).unwrap();
/// assert_eq!(code.to_string(), "NotLeaderOrFollower (6)");
/// assert!(code.is_retriable());
/// // CONCURRENT_TRANSACTIONS: retriable, as the Java client takes it.
/// assert!(KafkaCode::from_code(51).unwrap().is_retriable());
/// assert!(KafkaCode::from_code(0).is_none());
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct KafkaCode(ResponseError);

impl KafkaCode {
    /// The code for `code`, or `None` for 0 (no error).
    pub fn from_code(code: i16) -> Option<KafkaCode> {
        ResponseError::try_from_code(code).map(KafkaCode)
    }

    /// The numeric code.
    pub fn code(&self) -> i16 {
        self.0.code()
    }

    /// Whether the error is retriable: as the protocol defines it, and CONCURRENT_TRANSACTIONS
    /// too (a transaction of the same producer still completing), which the Java client
    /// retries and the protocol's table does not mark.
    pub fn is_retriable(&self) -> bool {
        self.0.is_retriable() || self.code() == crate::protocol::codes::CONCURRENT_TRANSACTIONS
    }
}

impl fmt::Display for KafkaCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.0, self.code())
    }
}

impl fmt::Debug for KafkaCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KafkaCode({}, {})", self.0, self.code())
    }
}

/// A configuration key, value, or file that was not acceptable. It names the key or field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The property is not one purekafka knows.
    #[error("unknown configuration property `{key}`")]
    UnknownKey {
        /// The property name.
        key: String,
    },
    /// A property librdkafka or the Java client has, which purekafka knows but does not
    /// support (at this value): the reason says why, and what to use instead. The properties
    /// purekafka accepts without acting on them are listed in docs/CONFIGURATION.md.
    #[error("`{key}` is not supported by purekafka: {reason}")]
    Unsupported {
        /// The property name.
        key: String,
        /// Why, and what to use instead.
        reason: String,
    },
    /// The value does not parse or is out of range for the property.
    #[error("invalid value {value:?} for `{key}`: {reason}")]
    InvalidValue {
        /// The property name.
        key: String,
        /// The value given (never a secret: secrets are shown as `[redacted]`).
        value: String,
        /// What was expected.
        reason: String,
    },
    /// A required property was not set.
    #[error("missing required configuration property `{key}`")]
    Missing {
        /// The property name.
        key: String,
    },
    /// Two settings contradict each other.
    #[error("conflicting configuration: {0}")]
    Conflict(String),
    /// A config file could not be read or parsed.
    #[error("config file {path}: {reason}")]
    File {
        /// The file path.
        path: String,
        /// What went wrong, naming the field where one is at fault.
        reason: String,
    },
}

/// Result with purekafka's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
