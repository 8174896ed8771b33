//! purekafka: a pure-Rust Apache Kafka client. No librdkafka, no C: it speaks the Kafka protocol
//! itself over tokio TCP and builds as a static binary.
//!
//! ```text
//!  producer / consumer / share     the public clients (and admin)
//!          │
//!  cluster                         metadata cache, broker pool, leader lookup
//!          │
//!  conn                            one broker connection: handshake, SASL, pipelined requests
//!          │
//!  protocol                        bytes in, bytes out: framing, versions, record batches, SASL
//! ```
//!
//! ```no_run
//! use purekafka::{CKafkaConfig, Producer, ProducerRecord};
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let ckafka = CKafkaConfig::load("fixtures/ckafka.json")?;
//! let producer = Producer::builder(ckafka.client_config()?).build().await?;
//! let delivered = producer.send(ProducerRecord::new("test").value("Confluent-Kafka")).await?;
//! println!("Delivered message to {delivered}");
//! # Ok(()) }
//! ```
//!
//! # Features
//!
//! The default build compiles no C and links statically against musl. Optional:
//!
//! - `tls`: `security.protocol` `SSL` and `SASL_SSL`, through rustls. Its crypto provider, ring,
//!   compiles C and assembly, which is why the feature is off by default. Without it, those
//!   protocols are refused with an error that names the feature.
//! - `cli`: the `pkcat` binary, a kcat-style command-line tool (`cargo install purekafka
//!   --features cli`).
//! - `metrics`: each statistics object (`statistics.interval.ms`, [`Statistics`]) also goes to
//!   the [`metrics`](https://docs.rs/metrics) facade as counters, gauges and histograms named
//!   after librdkafka's fields, for the application's recorder to export.
#![forbid(unsafe_code)]
// docs.rs (`[package.metadata.docs.rs]`): each item says which feature it needs.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs)]

mod admin;
mod cluster;
pub mod config;
mod conn;
mod consumer;
mod error;
mod group;
/// A guide for users coming from librdkafka: what its programs do, done here, in examples.
pub mod guide;
pub mod oauth;
mod producer;
pub mod protocol;
mod share;
mod stats;
#[cfg(test)]
mod testing;

pub use admin::{
    AclBinding, AclFilter, AclOperation, AclPatternType, AclPermission, AclResourceType, Admin,
    AdminBuilder, AlterConfig, Assignee, BrokerDescription, ClusterDescription, CommittedOffset,
    ConfigEntry, ConfigOutcome, ConfigResource, ConfigSource, GroupDescription, GroupListing,
    ListedOffset, LogDir, MemberDescription, NewTopic, OffsetSpec, Outcome, PartitionDescription,
    PartitionLag, PartitionOutcome, ReplicaInfo, ShareGroupDescription, ShareGroupOffset,
    ShareMemberDescription, TopicDescription, TopicListing,
};
pub use cluster::{ClientEvent, ClientEvents};
pub use config::{
    Acks, Assignor, AutoOffsetReset, CKafkaConfig, ClientConfig, GroupProtocol, IsolationLevel,
    SaslMechanism, Secret, SecurityProtocol, ShareAcknowledgementMode,
};
pub use consumer::{
    Assigned, CommitHandle, Consumer, ConsumerBuilder, ListenerFuture, Message, MessageStream,
    Offset, RebalanceEvent, RebalanceEvents, RebalanceListener, RecordStream, Revoking,
    TimestampType,
};
pub use error::{ConfigError, Error, KafkaCode, Resource, Result, TxnErrorKind};
pub use group::ConsumerGroupMetadata;
pub use producer::{
    fnv1a, murmur2, partition_for_key, DeliveryFuture, DeliveryReport, DeliveryReports,
    KeyPartitioner, Opaque, Partitioner, Producer, ProducerBuilder, ProducerRecord, RecordMetadata,
};
pub use protocol::compression::Compression;
pub use protocol::records::Header;
pub use share::{
    AcknowledgeType, AcknowledgementCommit, ShareCommitHandle, ShareConsumer, ShareConsumerBuilder,
    ShareMessageStream,
};
pub use stats::{
    BrokerStatistics, EosStatistics, GroupStatistics, PartitionStatistics, Statistics,
    StatisticsStream, TopicStatistics, TopparStatistics, WindowStatistics, OFFSET_INVALID,
};
