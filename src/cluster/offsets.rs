//! Requests addressed per partition leader: grouping partitions by leader and by topic, and
//! ListOffsets, which the consumer uses to find where to start and admin uses to see that a new
//! topic's leaders are serving.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::{BrokerId, ListOffsetsRequest, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::Cluster;
use crate::error::{Error, KafkaCode};

/// ListOffsets timestamp for the log start.
pub(crate) const EARLIEST: i64 = -2;
/// ListOffsets timestamp for the log end.
pub(crate) const LATEST: i64 = -1;

/// A topic and partition.
pub(crate) type TopicPartition = (Arc<str>, i32);

/// Groups partitions by the node id of their leader, each with its leader's epoch (-1 where
/// the broker sends none).
pub(crate) async fn by_leader(
    cluster: &Cluster,
    partitions: impl IntoIterator<Item = TopicPartition>,
) -> Result<BTreeMap<i32, Vec<(TopicPartition, i32)>>, Error> {
    let mut groups: BTreeMap<i32, Vec<(TopicPartition, i32)>> = BTreeMap::new();
    for tp in partitions {
        let (leader, epoch) = cluster.leader(&tp.0, tp.1).await?;
        groups.entry(leader).or_default().push((tp, epoch));
    }
    Ok(groups)
}

/// Groups `(topic, partition)` pairs by topic, keeping their order; the topics are borrowed.
pub(crate) fn by_topic<'a, T>(
    items: impl IntoIterator<Item = (&'a TopicPartition, T)>,
) -> Vec<(&'a str, Vec<(i32, T)>)> {
    per_topic(items.into_iter().map(|((t, p), v)| (&**t, *p, v)))
}

/// Groups `(topic, partition, value)` triples by topic, keeping their order: the shape of every
/// request that lists partitions under their topic.
pub(crate) fn per_topic<K: PartialEq, T>(
    items: impl IntoIterator<Item = (K, i32, T)>,
) -> Vec<(K, Vec<(i32, T)>)> {
    let mut topics: Vec<(K, Vec<(i32, T)>)> = Vec::new();
    for (topic, partition, value) in items {
        match topics.iter_mut().find(|(t, _)| *t == topic) {
            Some((_, ps)) => ps.push((partition, value)),
            None => topics.push((topic, vec![(partition, value)])),
        }
    }
    topics
}

/// A topic name for a request.
pub(crate) fn topic_name(topic: &str) -> TopicName {
    TopicName(StrBytes::from_string(topic.to_owned()))
}

impl Cluster {
    /// The offset at `timestamp` (`EARLIEST`, `LATEST`, or a time in ms) of each partition,
    /// asking each leader once. With `isolation_level` 1 (read_committed), `LATEST` is the last
    /// stable offset: the end of the log short of any open transaction.
    pub(crate) async fn list_offsets(
        &self,
        partitions: &[TopicPartition],
        timestamp: i64,
        isolation_level: i8,
    ) -> Result<Vec<(TopicPartition, i64)>, Error> {
        let mut offsets = Vec::with_capacity(partitions.len());
        for (leader, tps) in by_leader(self, partitions.iter().cloned()).await? {
            let conn = self.broker(leader).await?;
            let topics = by_topic(tps.iter().map(|(tp, _)| (tp, ())))
                .into_iter()
                .map(|(topic, ps)| {
                    ListOffsetsTopic::default()
                        .with_name(topic_name(topic))
                        .with_partitions(
                            ps.iter()
                                .map(|(p, ())| {
                                    ListOffsetsPartition::default()
                                        .with_partition_index(*p)
                                        .with_current_leader_epoch(-1)
                                        .with_timestamp(timestamp)
                                })
                                .collect(),
                        )
                })
                .collect();
            let request = ListOffsetsRequest::default()
                .with_replica_id(BrokerId(-1))
                .with_isolation_level(isolation_level)
                .with_topics(topics);
            let (response, _) = conn.request(&request).await?;
            for t in &response.topics {
                for p in &t.partitions {
                    let tp: TopicPartition = (Arc::from(t.name.0.as_str()), p.partition_index);
                    if let Some(code) = KafkaCode::from_code(p.error_code) {
                        return Err(Error::Broker {
                            api: "ListOffsets",
                            resource: format!("{}[{}]", tp.0, tp.1),
                            code,
                            message: None,
                        });
                    }
                    offsets.push((tp, p.offset));
                }
            }
        }
        Ok(offsets)
    }
}
