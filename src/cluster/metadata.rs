//! The metadata cache: brokers, topics, partitions and their leaders.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use kafka_protocol::messages::MetadataResponse;

use crate::error::KafkaCode;
use rustc_hash::FxHashMap;

/// What the cluster told us about itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metadata {
    /// Broker node id → `host:port`.
    pub brokers: HashMap<i32, String>,
    /// The controller's node id, when the broker named one.
    pub controller_id: Option<i32>,
    /// Topic name → its partitions. Looked up on every record a producer sends (the partition
    /// count), hence the fast hasher.
    pub topics: FxHashMap<String, TopicMetadata>,
}

/// One topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicMetadata {
    /// The topic-level error, e.g. UNKNOWN_TOPIC_OR_PARTITION.
    pub error: Option<KafkaCode>,
    /// Partitions sorted by id.
    pub partitions: Vec<PartitionMetadata>,
    /// The topic id (Metadata v10 and later), or 0 when the broker sent none.
    pub id: u128,
    /// When the cluster told us this.
    pub fetched_at: Instant,
    /// Known to be out of date (a leader moved): ask again before trusting the leaders.
    pub invalidated: bool,
}

impl TopicMetadata {
    /// True when this is older than `max_age` (`metadata.max.age.ms`) and must be asked again.
    pub fn is_stale(&self, max_age: Duration) -> bool {
        self.invalidated || self.fetched_at.elapsed() >= max_age
    }
}

/// One partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionMetadata {
    /// Partition id.
    pub id: i32,
    /// Leader node id, or -1 while there is none.
    pub leader: i32,
    /// Leader epoch, or -1 when the broker does not send it.
    pub leader_epoch: i32,
}

impl Metadata {
    pub(crate) fn from_response(response: &MetadataResponse) -> Metadata {
        let fetched_at = Instant::now();
        let brokers = response
            .brokers
            .iter()
            .map(|b| (b.node_id.0, format!("{}:{}", b.host.as_str(), b.port)))
            .collect();
        let topics = response
            .topics
            .iter()
            .filter_map(|t| {
                let name = t.name.as_ref()?.0.to_string();
                let mut partitions: Vec<PartitionMetadata> = t
                    .partitions
                    .iter()
                    .map(|p| PartitionMetadata {
                        id: p.partition_index,
                        leader: p.leader_id.0,
                        leader_epoch: p.leader_epoch,
                    })
                    .collect();
                partitions.sort_by_key(|p| p.id);
                let error = KafkaCode::from_code(t.error_code);
                let id = t.topic_id.as_u128();
                Some((
                    name,
                    TopicMetadata {
                        error,
                        partitions,
                        id,
                        fetched_at,
                        invalidated: false,
                    },
                ))
            })
            .collect();
        Metadata {
            brokers,
            controller_id: (response.controller_id.0 >= 0).then_some(response.controller_id.0),
            topics,
        }
    }

    /// Takes in a fresher answer: brokers and controller are replaced, topics it names too.
    pub(crate) fn merge(&mut self, fresh: Metadata) {
        if !fresh.brokers.is_empty() {
            self.brokers = fresh.brokers;
        }
        self.controller_id = fresh.controller_id.or(self.controller_id);
        self.topics.extend(fresh.topics);
    }
}
