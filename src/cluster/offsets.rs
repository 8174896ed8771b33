//! Requests addressed per partition leader: grouping partitions by leader and by topic, and
//! ListOffsets, which the consumer uses to find where to start and admin uses to see that a new
//! topic's leaders are serving.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::{BrokerId, ListOffsetsRequest, ListOffsetsResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::Cluster;
use crate::error::{Error, KafkaCode, Resource};
use crate::protocol::api::ApiRequest;
use crate::protocol::codes;

/// ListOffsets timestamp for the log start.
pub(crate) const EARLIEST: i64 = -2;
/// ListOffsets timestamp for the log end.
pub(crate) const LATEST: i64 = -1;

/// A topic and partition.
pub(crate) type TopicPartition = (Arc<str>, i32);

/// Partitions grouped by the node id of their leader, each with its leader's epoch (-1 where
/// the broker sends none); those whose leader is not known for now (being elected, or the
/// cluster out of reach), with why; and those no retry can place (their topic refused to us,
/// say), with why.
pub(crate) struct ByLeader {
    pub groups: BTreeMap<i32, Vec<(TopicPartition, i32)>>,
    pub unknown: Vec<(TopicPartition, Error)>,
    pub failed: Vec<(TopicPartition, Error)>,
}

/// Groups partitions by their leader. A partition whose leader cannot be found for now does not
/// hold up the others: it is set aside (and its topic asked for again soon), and so is one that
/// no retry can place.
pub(crate) async fn by_leader(
    cluster: &Cluster,
    partitions: impl IntoIterator<Item = TopicPartition>,
) -> ByLeader {
    let mut out = ByLeader {
        groups: BTreeMap::new(),
        unknown: Vec::new(),
        failed: Vec::new(),
    };
    // A topic refused for good (not authorized, say) is looked up once, not per partition:
    // each lookup of a topic in error asks the cluster again.
    let mut refused: Vec<(Arc<str>, Error)> = Vec::new();
    for tp in partitions {
        if let Some((_, e)) = refused.iter().find(|(topic, _)| *topic == tp.0) {
            out.failed.push((tp, e.clone()));
            continue;
        }
        match cluster.leader(&tp.0, tp.1).await {
            Ok((leader, epoch)) => out.groups.entry(leader).or_default().push((tp, epoch)),
            Err(e) if e.is_retriable() => {
                cluster.refresh_soon(&tp.0);
                out.unknown.push((tp, e));
            }
            Err(e) => {
                refused.push((tp.0.clone(), e.clone()));
                out.failed.push((tp, e));
            }
        }
    }
    out
}

/// One partition's answer to ListOffsets: the offset (-1 where no record matches the
/// timestamp asked), the timestamp of its record (-1 for the log's ends), and the leader epoch
/// of that record (-1 where the broker sends none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OffsetAnswer {
    pub offset: i64,
    pub timestamp: i64,
    pub leader_epoch: i32,
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

/// What a leader's answer says of one partition: its error code and what it found, or `None`
/// where the answer leaves the partition out.
type Read<'a, R, T> =
    &'a (dyn Fn(&<R as ApiRequest>::Response, &TopicPartition) -> Option<(i16, T)> + Sync);

impl Cluster {
    /// The offset at `timestamp` (`EARLIEST`, `LATEST`, or a time in ms) of each partition,
    /// asking each leader once. With `isolation_level` 1 (read_committed), `LATEST` is the last
    /// stable offset: the end of the log short of any open transaction.
    ///
    /// A partition whose leader moved, is being elected or cannot be reached is asked again,
    /// its metadata refreshed, every `topic.metadata.refresh.fast.interval.ms` (doubling) for
    /// up to `socket.timeout.ms`; then the last such error is returned. Any other error (an
    /// unknown topic among them: it may be being deleted) is returned once every leader has
    /// answered.
    pub(crate) async fn list_offsets(
        &self,
        partitions: &[TopicPartition],
        timestamp: i64,
        isolation_level: i8,
    ) -> Result<Vec<(TopicPartition, i64)>, Error> {
        let request =
            |tps: &[TopicPartition]| list_offsets_request(tps, timestamp, isolation_level);
        let answers = self
            .on_leaders(partitions, None, &request, &read_offset, true)
            .await?;
        answers
            .into_iter()
            .map(|(tp, answer)| Ok((tp, answer?.offset)))
            .collect()
    }

    /// [`Cluster::list_offsets`] with an answer for each partition, in no particular order: a
    /// partition's error, retried as there, is its own and does not fail the others. Only a
    /// failure of a whole request (credentials refused, say) is the call's `Err`. With
    /// `needs`, a leader that negotiated ListOffsets below its version is not asked: its
    /// partitions get [`Error::UnsupportedApi`], saying what wants that version.
    pub(crate) async fn list_offsets_each(
        &self,
        partitions: &[TopicPartition],
        timestamp: i64,
        isolation_level: i8,
        needs: Option<(i16, &str)>,
    ) -> Result<Vec<(TopicPartition, Result<OffsetAnswer, Error>)>, Error> {
        let request =
            |tps: &[TopicPartition]| list_offsets_request(tps, timestamp, isolation_level);
        self.on_leaders(partitions, needs, &request, &read_offset, false)
            .await
    }

    /// Sends each leader of `partitions` the request `request` makes for its share, and reads
    /// each partition's answer with `read`, until every partition has one: the per-leader
    /// requests of ListOffsets and DeleteRecords.
    ///
    /// A partition whose leader moved, is being elected or cannot be reached is asked again,
    /// its metadata refreshed, every `topic.metadata.refresh.fast.interval.ms` (doubling) for
    /// up to `socket.timeout.ms`. Its answer is then that last error; any other error is its
    /// answer at once. With `fail_fast`, the first such answer is the call's `Err` instead. A
    /// leader that negotiated `R` below `needs.0` is not asked: its partitions get
    /// [`Error::UnsupportedApi`], saying that `needs.1` wants that version.
    pub(crate) async fn on_leaders<R: ApiRequest, T>(
        &self,
        partitions: &[TopicPartition],
        needs: Option<(i16, &str)>,
        request: &(dyn Fn(&[TopicPartition]) -> R + Sync),
        read: Read<'_, R, T>,
        fail_fast: bool,
    ) -> Result<Vec<(TopicPartition, Result<T, Error>)>, Error> {
        let mut patience = self.patience(self.inner.settings.socket_timeout);
        let mut answers = Vec::with_capacity(partitions.len());
        let mut left = partitions.to_vec();
        loop {
            let failed = self
                .on_leaders_once(&left, (needs, fail_fast), request, read, &mut answers)
                .await?;
            let (again, settled): (Vec<_>, Vec<_>) =
                failed.into_iter().partition(|(_, e)| leader_moving(e));
            if let (true, Some((_, e))) = (fail_fast, settled.first()) {
                return Err(e.clone());
            }
            answers.extend(settled.into_iter().map(|(tp, e)| (tp, Err(e))));
            let Some((_, last)) = again.last() else {
                return Ok(answers);
            };
            tracing::debug!(error = %last, partitions = again.len(), api = R::NAME, "asking again");
            if !patience.wait().await {
                if fail_fast {
                    return Err(last.clone());
                }
                answers.extend(again.into_iter().map(|(tp, e)| (tp, Err(e))));
                return Ok(answers);
            }
            left = again.into_iter().map(|(tp, _)| tp).collect();
        }
    }

    /// One request per leader of `partitions`, their answers added to `answers`. Returns the
    /// partitions that failed, with why (some to ask about again). With `fail_fast`, a failure
    /// of a whole request that no retry can cure is an `Err`; without, it is the answer of
    /// that request's partitions, and the others go on.
    async fn on_leaders_once<R: ApiRequest, T>(
        &self,
        partitions: &[TopicPartition],
        (needs, fail_fast): (Option<(i16, &str)>, bool),
        request: &(dyn Fn(&[TopicPartition]) -> R + Sync),
        read: Read<'_, R, T>,
        answers: &mut Vec<(TopicPartition, Result<T, Error>)>,
    ) -> Result<Vec<(TopicPartition, Error)>, Error> {
        let ByLeader {
            groups,
            mut unknown,
            failed,
        } = by_leader(self, partitions.iter().cloned()).await;
        unknown.extend(failed);
        for (leader, tps) in groups {
            let tps: Vec<TopicPartition> = tps.into_iter().map(|(tp, _)| tp).collect();
            let answer = match self.broker(leader).await {
                Ok(conn) => match (conn.version_of::<R>(), needs) {
                    // Too old: its answer would mean something else (a broker before
                    // ListOffsets v7 takes the max-timestamp marker for a time).
                    (Ok(v), Some((min, what))) if v < min => Err(Error::UnsupportedApi {
                        broker: conn.broker().to_owned(),
                        api: R::NAME,
                        ours: format!("v{min} and later, for {what}"),
                    }),
                    _ => conn
                        .request(&request(&tps))
                        .await
                        .map(|(response, _)| response),
                },
                Err(e) => Err(e),
            };
            let response = match answer {
                Ok(response) => response,
                // One leader too old fails its own partitions only.
                Err(e @ Error::UnsupportedApi { .. }) if needs.is_some() => {
                    unknown.extend(tps.into_iter().map(|tp| (tp, e.clone())));
                    continue;
                }
                Err(e) if e.is_retriable() => {
                    for tp in tps {
                        self.refresh_soon(&tp.0);
                        unknown.push((tp, e.clone()));
                    }
                    continue;
                }
                Err(e) if fail_fast => return Err(e),
                Err(e) => {
                    unknown.extend(tps.into_iter().map(|tp| (tp, e.clone())));
                    continue;
                }
            };
            for tp in tps {
                let Some((code, value)) = read(&response, &tp) else {
                    let broker = format!("broker {leader}");
                    let what = format!("the {} answer lacks {}[{}]", R::NAME, tp.0, tp.1);
                    let error = Error::protocol(broker, what);
                    if fail_fast {
                        return Err(error);
                    }
                    unknown.push((tp, error));
                    continue;
                };
                let Some(code) = KafkaCode::from_code(code) else {
                    answers.push((tp, Ok(value)));
                    continue;
                };
                if code.is_retriable() {
                    self.refresh_soon(&tp.0);
                }
                let error = Error::Broker {
                    api: R::NAME,
                    resource: Resource::partition(&tp.0, tp.1),
                    code,
                    message: None,
                };
                unknown.push((tp, error));
            }
        }
        Ok(unknown)
    }
}

/// A ListOffsets request for `partitions`, each at `timestamp`.
fn list_offsets_request(
    partitions: &[TopicPartition],
    timestamp: i64,
    isolation_level: i8,
) -> ListOffsetsRequest {
    let topics = by_topic(partitions.iter().map(|tp| (tp, ())))
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
    ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_isolation_level(isolation_level)
        .with_topics(topics)
}

fn read_offset(response: &ListOffsetsResponse, tp: &TopicPartition) -> Option<(i16, OffsetAnswer)> {
    let p = response
        .topics
        .iter()
        .filter(|t| t.name.0.as_str() == &*tp.0)
        .flat_map(|t| &t.partitions)
        .find(|p| p.partition_index == tp.1)?;
    let answer = OffsetAnswer {
        offset: p.offset,
        timestamp: p.timestamp,
        leader_epoch: p.leader_epoch,
    };
    Some((p.error_code, answer))
}
