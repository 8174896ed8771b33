//! The consumer: fetches assigned partitions from their leaders and hands out records whose key,
//! value and headers are slices of the fetch response, without a copy.
//!
//! ```text
//!  assign(partitions, start) ─► ListOffsets (earliest / latest) ─► positions
//!  recv() ─► buffered message? ─► else one Fetch per leader ─► BatchDecoder ─► messages
//! ```
//!
//! This first consumer is assigned partitions explicitly; group membership, committed offsets
//! and pipelined fetches build on it.

mod assignor;
mod fetch;

pub use assignor::Assignor;

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::sync::Arc;

use bytes::Bytes;

use crate::cluster::{Cluster, EARLIEST, LATEST};
use crate::config::{ClientConfig, ConsumerConfig};
use crate::error::Error;
use crate::protocol::records::Header;

/// Where to start reading a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offset {
    /// The oldest record still in the log.
    Earliest,
    /// The next record written after the assignment.
    Latest,
    /// This offset.
    At(i64),
}

/// A consumed record. Its `Display` is the seed's `test[0]@628`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Message {
    /// The topic.
    pub topic: Arc<str>,
    /// The partition.
    pub partition: i32,
    /// The offset.
    pub offset: i64,
    /// Milliseconds since the Unix epoch.
    pub timestamp: i64,
    /// The key, or `None`.
    pub key: Option<Bytes>,
    /// The value, or `None`.
    pub value: Option<Bytes>,
    /// The headers.
    pub headers: Vec<Header>,
}

impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}[{}]@{}", self.topic, self.partition, self.offset)
    }
}

/// Builds a [`Consumer`].
#[derive(Debug)]
pub struct ConsumerBuilder {
    config: ClientConfig,
}

impl ConsumerBuilder {
    /// Checks the configuration and connects to the cluster.
    pub async fn build(self) -> Result<Consumer, Error> {
        let cluster = Cluster::connect(&self.config).await?;
        Ok(Consumer {
            cluster,
            config: self.config.consumer.clone(),
            decompression_limit: self.config.common.receive_message_max_bytes,
            positions: BTreeMap::new(),
            buffered: VecDeque::new(),
        })
    }
}

/// A Kafka consumer reading explicitly assigned partitions.
///
/// ```no_run
/// # async fn demo() -> Result<(), purekafka::Error> {
/// use purekafka::{ClientConfig, Consumer, Offset};
/// let config = ClientConfig::new().bootstrap_servers(["127.0.0.1:9092"]);
/// let mut consumer = Consumer::builder(config).build().await?;
/// let partitions = consumer.partitions("test").await?;
/// consumer.assign(partitions.iter().map(|&p| ("test", p)), Offset::Earliest).await?;
/// let msg = consumer.recv().await?;
/// println!("Message on {msg}: {:?}", msg.value);
/// # Ok(()) }
/// ```
pub struct Consumer {
    cluster: Cluster,
    config: ConsumerConfig,
    /// The most bytes one compressed batch may inflate to (`receive.message.max.bytes`).
    decompression_limit: usize,
    /// Next offset to fetch, per assigned partition.
    positions: BTreeMap<(Arc<str>, i32), i64>,
    buffered: VecDeque<Message>,
}

impl Consumer {
    /// A builder for a consumer with this configuration.
    pub fn builder(config: ClientConfig) -> ConsumerBuilder {
        ConsumerBuilder { config }
    }

    /// The partition ids of `topic`.
    pub async fn partitions(&self, topic: &str) -> Result<Vec<i32>, Error> {
        Ok(self
            .cluster
            .topic(topic)
            .await?
            .partitions
            .iter()
            .map(|p| p.id)
            .collect())
    }

    /// Adds partitions to the assignment, starting at `start`.
    pub async fn assign<T: AsRef<str>>(
        &mut self,
        partitions: impl IntoIterator<Item = (T, i32)>,
        start: Offset,
    ) -> Result<(), Error> {
        let partitions: Vec<(Arc<str>, i32)> = partitions
            .into_iter()
            .map(|(t, p)| (Arc::from(t.as_ref()), p))
            .collect();
        let offsets = match start {
            Offset::At(offset) => partitions.iter().map(|tp| (tp.clone(), offset)).collect(),
            Offset::Earliest => self.cluster.list_offsets(&partitions, EARLIEST).await?,
            Offset::Latest => self.cluster.list_offsets(&partitions, LATEST).await?,
        };
        self.positions.extend(offsets);
        Ok(())
    }

    /// The next offset to be read from each assigned partition.
    pub fn positions(&self) -> impl Iterator<Item = (&str, i32, i64)> {
        self.positions.iter().map(|((t, p), o)| (&**t, *p, *o))
    }

    /// The next message, fetching when none is buffered. Waits until one arrives.
    pub async fn recv(&mut self) -> Result<Message, Error> {
        loop {
            if let Some(msg) = self.buffered.pop_front() {
                return Ok(msg);
            }
            if self.positions.is_empty() {
                return Err(Error::NoAssignment);
            }
            let back_off = fetch::fetch_once(
                &self.cluster,
                &self.config,
                self.decompression_limit,
                &mut self.positions,
                &mut self.buffered,
            )
            .await?;
            if back_off && self.buffered.is_empty() {
                tokio::time::sleep(self.config.fetch_error_backoff).await;
            }
        }
    }
}
