//! Administration: topics (`topics.rs`), consumer groups and their offsets (`groups.rs`),
//! partition offsets, group lag and record deletion (`offsets.rs`), configurations
//! (`configs.rs`), log directories (`log_dirs.rs`), ACLs (`acls.rs`), and the cluster itself. Topic requests go to the controller (KRaft brokers forward them there
//! from any broker), group requests to each group's coordinator.
//!
//! A call about several items (topics, groups, partitions) answers for each one, in the order
//! asked, as [`Outcome`]s; its own `Err` is for the request as a whole, such as no broker
//! reachable.

mod acls;
mod configs;
mod groups;
mod log_dirs;
mod offsets;
mod share_groups;
#[cfg(test)]
mod tests;
mod topics;

use std::sync::Arc;
use std::time::{Duration, Instant};

use kafka_protocol::protocol::StrBytes;

pub use acls::{
    AclBinding, AclFilter, AclOperation, AclPatternType, AclPermission, AclResourceType,
};
pub use configs::{AlterConfig, ConfigEntry, ConfigOutcome, ConfigResource, ConfigSource};
pub use groups::{
    CommittedOffset, GroupDescription, GroupListing, MemberDescription, PartitionOutcome,
};
pub use log_dirs::{LogDir, ReplicaInfo};
pub use offsets::{Assignee, ListedOffset, OffsetSpec, PartitionLag};
pub use share_groups::{ShareGroupDescription, ShareGroupOffset, ShareMemberDescription};
pub use topics::{NewTopic, PartitionDescription, TopicDescription, TopicListing};

use crate::cluster::{ClientEvents, ClientKind, Cluster, TopicPartition, LATEST};
use crate::config::ClientConfig;
use crate::error::{Error, KafkaCode, Resource};

/// What became of one item of an admin call: its name, and its result.
pub type Outcome<T = ()> = (String, Result<T, Error>);

/// The brokers of the cluster, as [`Admin::describe_cluster`] finds them.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClusterDescription {
    /// The cluster id, where the broker sends one (Kafka 0.10.1 and later).
    pub cluster_id: Option<String>,
    /// The controller's broker id (in KRaft, the broker clients see as controller).
    pub controller: Option<i32>,
    /// Every broker, by id.
    pub brokers: Vec<BrokerDescription>,
}

/// One broker of a [`ClusterDescription`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BrokerDescription {
    /// Its node id.
    pub id: i32,
    /// The host it advertises to this listener.
    pub host: String,
    /// The port it advertises.
    pub port: i32,
    /// Its `broker.rack`, when set.
    pub rack: Option<String>,
}

/// The error of one item whose answer carries `code` (0: none).
fn item_error(
    api: &'static str,
    item: &Resource,
    code: i16,
    message: Option<&StrBytes>,
) -> Option<Error> {
    KafkaCode::from_code(code).map(|code| Error::Broker {
        api,
        resource: item.clone(),
        code,
        message: message.map(|m| m.to_string()),
    })
}

/// Whether one item succeeded, by the broker's answer about it: `(error code, message)`, or
/// `None` where the answer left the item out, which is a protocol error.
fn item_answer(
    api: &'static str,
    item: &Resource,
    answer: Option<(i16, Option<&StrBytes>)>,
) -> Result<(), Error> {
    let (code, message) = answer.ok_or_else(|| missing_answer(api, item))?;
    item_error(api, item, code, message).map_or(Ok(()), Err)
}

/// A broker's answer that leaves out an item it was asked about.
fn missing_answer(api: &'static str, item: &Resource) -> Error {
    Error::protocol("-", format!("the {api} answer says nothing of {item}"))
}

/// How often to look at the metadata while waiting for a topic to appear or go.
const POLL: Duration = Duration::from_millis(50);
/// The pause between asks for a group coordinator still being elected.
const RETRY: Duration = Duration::from_millis(100);

/// Builds an [`Admin`] client.
#[derive(Debug)]
pub struct AdminBuilder {
    config: ClientConfig,
}

impl AdminBuilder {
    /// Checks the configuration and connects to the cluster.
    ///
    /// Cancel-safe: dropped, nothing is kept (a connection being made is closed).
    pub async fn build(self) -> Result<Admin, Error> {
        Ok(Admin {
            cluster: Cluster::connect(&self.config, ClientKind::Admin).await?,
            timeout: self.config.common.request_timeout,
        })
    }
}

/// An admin client: topics, partitions, consumer groups and their offsets, the cluster.
///
/// Every method is cancel-safe as far as the client goes: dropping its future (in `select!`,
/// under a timeout) leaves the client as it was, ready for the next call. A request already
/// written may still take effect on the cluster: a topic may be created or deleted, offsets
/// altered. The methods that change something say so.
///
/// ```no_run
/// # async fn demo() -> Result<(), purekafka::Error> {
/// use purekafka::{Admin, ClientConfig, NewTopic};
/// let admin = Admin::builder(ClientConfig::new().bootstrap_servers(["127.0.0.1:9092"])).build().await?;
/// admin.create_topic("test", 1, 1).await?;
/// for (topic, result) in admin.create_topics(&[NewTopic::new("a", 3, 1), NewTopic::new("b", 1, 1)]).await? {
///     println!("{topic}: {result:?}");
/// }
/// for listing in admin.list_topics().await? {
///     println!("{} ({} partitions)", listing.name, listing.partitions);
/// }
/// admin.delete_topic("test").await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Admin {
    cluster: Cluster,
    timeout: Duration,
}

impl Admin {
    /// A builder for an admin client with this configuration.
    pub fn builder(config: ClientConfig) -> AdminBuilder {
        AdminBuilder { config }
    }

    /// The client's events from now on: when every broker is down, and when one answers again
    /// (librdkafka's `ERR__ALL_BROKERS_DOWN`). The first event is the current state when all
    /// brokers are down already, as when the client was built before them.
    pub fn events(&self) -> ClientEvents {
        self.cluster.events()
    }

    /// The cluster id, the controller and every broker, asked of the cluster afresh.
    ///
    /// Cancel-safe: it only reads.
    pub async fn describe_cluster(&self) -> Result<ClusterDescription, Error> {
        let response = self.cluster.metadata(Some(&[])).await?;
        let mut brokers: Vec<BrokerDescription> = response
            .brokers
            .iter()
            .map(|b| BrokerDescription {
                id: b.node_id.0,
                host: b.host.to_string(),
                port: b.port,
                rack: b.rack.as_ref().map(|r| r.to_string()),
            })
            .collect();
        brokers.sort_by_key(|b| b.id);
        Ok(ClusterDescription {
            cluster_id: response.cluster_id.map(|c| c.to_string()),
            controller: (response.controller_id.0 >= 0).then_some(response.controller_id.0),
            brokers,
        })
    }

    /// Waits until `topic` is usable with at least `partitions` partitions (`Some`: every
    /// partition has a leader that answers for it) or gone from the metadata (`None`). The
    /// metadata can name a leader a moment before that broker serves the partition, so readiness
    /// is checked by asking each leader for its log end.
    async fn wait_for(&self, topic: &str, partitions: Option<usize>) -> Result<(), Error> {
        let present = partitions.is_some();
        let at_least = partitions.unwrap_or(0);
        let deadline = Instant::now() + self.timeout;
        loop {
            self.cluster.invalidate_topic(topic);
            let state = match self.cluster.topic(topic).await {
                // Waiting for it to go: still there.
                Ok(_) if !present => Some(false),
                Ok(meta)
                    if meta.partitions.len() >= at_least
                        && meta.partitions.iter().all(|p| p.leader >= 0) =>
                {
                    let partitions: Vec<TopicPartition> = meta
                        .partitions
                        .iter()
                        .map(|p| (Arc::from(topic), p.id))
                        .collect();
                    match self.cluster.list_offsets(&partitions, LATEST, 0).await {
                        Ok(_) => Some(!partitions.is_empty()),
                        Err(e) if e.is_retriable() => Some(false),
                        Err(e) => return Err(e),
                    }
                }
                Ok(_) => Some(false),
                Err(Error::UnknownTopicOrPartition { .. }) => None,
                Err(e) if e.is_retriable() => Some(false),
                Err(e) => return Err(e),
            };
            let done = match state {
                Some(ready) => present && ready,
                None => !present,
            };
            if done {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(Error::Timeout {
                    what: match partitions {
                        Some(n) if n > 0 => {
                            format!("topic {topic} to be ready with {n} partitions")
                        }
                        Some(_) => format!("topic {topic} to be ready"),
                        None => format!("topic {topic} to be deleted"),
                    },
                    after_ms: self.timeout.as_millis() as u64,
                    outcome_unknown: false,
                });
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// The leader's broker id for each partition of `topic` (-1 where none is elected), asked of
    /// the cluster afresh rather than taken from the metadata cache.
    ///
    /// Cancel-safe: it only reads.
    pub async fn partition_leaders(&self, topic: &str) -> Result<Vec<(i32, i32)>, Error> {
        self.cluster.invalidate_topic(topic);
        let meta = self.cluster.topic(topic).await?;
        Ok(meta.partitions.iter().map(|p| (p.id, p.leader)).collect())
    }

    /// The version of each API purekafka uses that it negotiated with one broker of the cluster
    /// (`None` where they share none), in the order of [`crate::protocol::versions::OURS`].
    ///
    /// Cancel-safe: it only reads.
    pub async fn negotiated_versions(&self) -> Result<Vec<(&'static str, Option<i16>)>, Error> {
        Ok(self.cluster.any_broker().await?.versions().negotiated())
    }

    /// The finalized level of cluster feature `name` (KIP-584: `metadata.version`,
    /// `transaction.version`, `group.version`, ...) as one broker of the cluster reports it;
    /// `None` where it reports no level (every feature then stands at 0, and brokers before
    /// Kafka 2.7 report none).
    ///
    /// Cancel-safe: it only reads.
    pub async fn finalized_feature(&self, name: &str) -> Result<Option<i16>, Error> {
        Ok(self.cluster.any_broker().await?.versions().feature(name))
    }

    fn timeout_ms(&self) -> i32 {
        self.timeout.as_millis().min(i32::MAX as u128) as i32
    }
}
