//! Requests addressed per partition leader: grouping partitions by leader and by topic, and
//! ListOffsets, which the consumer uses to find where to start and admin uses to see that a new
//! topic's leaders are serving.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::{BrokerId, ListOffsetsRequest, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::Cluster;
use crate::error::{Error, KafkaCode, Resource};
use crate::protocol::codes;

/// ListOffsets timestamp for the log start.
pub(crate) const EARLIEST: i64 = -2;
/// ListOffsets timestamp for the log end.
pub(crate) const LATEST: i64 = -1;

/// A topic and partition.
pub(crate) type TopicPartition = (Arc<str>, i32);

/// Partitions grouped by the node id of their leader, each with its leader's epoch (-1 where
/// the broker sends none), and those whose leader is not known for now (being elected, or the
/// cluster out of reach), with why.
pub(crate) struct ByLeader {
    pub groups: BTreeMap<i32, Vec<(TopicPartition, i32)>>,
    pub unknown: Vec<(TopicPartition, Error)>,
}

/// Groups partitions by their leader. A partition whose leader cannot be found for now does not
/// hold up the others: it is set aside (and its topic asked for again soon); an error no
/// retry can cure (the topic refused to us, say) is returned.
pub(crate) async fn by_leader(
    cluster: &Cluster,
    partitions: impl IntoIterator<Item = TopicPartition>,
) -> Result<ByLeader, Error> {
    let mut out = ByLeader {
        groups: BTreeMap::new(),
        unknown: Vec::new(),
    };
    for tp in partitions {
        match cluster.leader(&tp.0, tp.1).await {
            Ok((leader, epoch)) => out.groups.entry(leader).or_default().push((tp, epoch)),
            Err(e) if e.is_retriable() => {
                cluster.refresh_soon(&tp.0);
                out.unknown.push((tp, e));
            }
            Err(e) => return Err(e),
        }
    }
    Ok(out)
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

/// Errors of a partition whose leader moved, is being elected, or cannot be reached: asking
/// again, where the metadata then says, may well succeed.
pub(crate) fn leader_moving(error: &Error) -> bool {
    match error {
        Error::Io { .. }
        | Error::Disconnected { .. }
        | Error::Timeout { .. }
        | Error::NoBrokerReachable { .. } => true,
        Error::Broker { code, .. } => matches!(
            code.code(),
            codes::LEADER_NOT_AVAILABLE
                | codes::NOT_LEADER_OR_FOLLOWER
                | codes::REPLICA_NOT_AVAILABLE
                | codes::FENCED_LEADER_EPOCH
                | codes::UNKNOWN_LEADER_EPOCH
                | codes::OFFSET_NOT_AVAILABLE
        ),
        _ => false,
    }
}

impl Cluster {
    /// The offset at `timestamp` (`EARLIEST`, `LATEST`, or a time in ms) of each partition,
    /// asking each leader once. With `isolation_level` 1 (read_committed), `LATEST` is the last
    /// stable offset: the end of the log short of any open transaction.
    ///
    /// A partition whose leader moved, is being elected or cannot be reached is asked again,
    /// its metadata refreshed, every `topic.metadata.refresh.fast.interval.ms` (doubling) for
    /// up to `socket.timeout.ms`; then the last such error is returned. Any other error (an
    /// unknown topic among them: it may be being deleted) is returned at once.
    pub(crate) async fn list_offsets(
        &self,
        partitions: &[TopicPartition],
        timestamp: i64,
        isolation_level: i8,
    ) -> Result<Vec<(TopicPartition, i64)>, Error> {
        let mut patience = self.patience(self.inner.settings.socket_timeout);
        let mut offsets = Vec::with_capacity(partitions.len());
        let mut left = partitions.to_vec();
        loop {
            let failed = self
                .list_offsets_once(&left, timestamp, isolation_level, &mut offsets)
                .await?;
            if let Some((_, e)) = failed.iter().find(|(_, e)| !leader_moving(e)) {
                return Err(e.clone());
            }
            let Some((_, last)) = failed.last() else {
                return Ok(offsets);
            };
            tracing::debug!(error = %last, partitions = failed.len(), "ListOffsets again");
            if !patience.wait().await {
                return Err(last.clone());
            }
            left = failed.into_iter().map(|(tp, _)| tp).collect();
        }
    }

    /// One ListOffsets per leader of `partitions`, their answers added to `offsets`. Returns
    /// the partitions to ask about again (with why); a failure no retry can cure is an `Err`.
    async fn list_offsets_once(
        &self,
        partitions: &[TopicPartition],
        timestamp: i64,
        isolation_level: i8,
        offsets: &mut Vec<(TopicPartition, i64)>,
    ) -> Result<Vec<(TopicPartition, Error)>, Error> {
        let ByLeader {
            groups,
            mut unknown,
        } = by_leader(self, partitions.iter().cloned()).await?;
        for (leader, tps) in groups {
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
            let answer = match self.broker(leader).await {
                Ok(conn) => conn.request(&request).await.map(|(response, _)| response),
                Err(e) => Err(e),
            };
            let response = match answer {
                Ok(response) => response,
                Err(e) if e.is_retriable() => {
                    for (tp, _) in tps {
                        self.refresh_soon(&tp.0);
                        unknown.push((tp, e.clone()));
                    }
                    continue;
                }
                Err(e) => return Err(e),
            };
            for (tp, _) in &tps {
                let answer = response
                    .topics
                    .iter()
                    .filter(|t| t.name.0.as_str() == &*tp.0)
                    .flat_map(|t| &t.partitions)
                    .find(|p| p.partition_index == tp.1);
                let Some(p) = answer else {
                    let broker = format!("broker {leader}");
                    let what = format!("the ListOffsets answer lacks {}[{}]", tp.0, tp.1);
                    return Err(Error::protocol(broker, what));
                };
                let tp = tp.clone();
                let Some(code) = KafkaCode::from_code(p.error_code) else {
                    offsets.push((tp, p.offset));
                    continue;
                };
                let error = Error::Broker {
                    api: "ListOffsets",
                    resource: Resource::partition(&tp.0, tp.1),
                    code,
                    message: None,
                };
                if !code.is_retriable() {
                    return Err(error);
                }
                self.refresh_soon(&tp.0);
                unknown.push((tp, error));
            }
        }
        Ok(unknown)
    }
}
