//! Partition offsets seen from outside any group: ListOffsets for a log's ends or a time, a
//! group's lag built on it (what `kafka-consumer-groups --describe` shows), and DeleteRecords,
//! which moves a log's start forward. Each request goes to the partition's leader.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::messages::delete_records_request::{
    DeleteRecordsPartition, DeleteRecordsTopic,
};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};

use super::{Admin, PartitionOutcome};
use crate::cluster::{by_topic, topic_name, TopicPartition, EARLIEST, LATEST};
use crate::config::IsolationLevel;
use crate::error::Error;

/// Which offset of a partition [`Admin::list_offsets`] asks for (the Java client's
/// `OffsetSpec`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum OffsetSpec {
    /// The log start: the first offset still kept.
    Earliest,
    /// The log end: the offset the next record gets (under `read_committed`, the last stable
    /// offset instead).
    Latest,
    /// The first offset whose record's timestamp is at or after this time, in ms since the
    /// epoch.
    Timestamp(i64),
    /// The offset of the record with the largest timestamp (KIP-734; Kafka 3.0 and later).
    MaxTimestamp,
}

impl OffsetSpec {
    /// The ListOffsets timestamp that asks for it.
    fn timestamp(self) -> i64 {
        match self {
            OffsetSpec::Earliest => EARLIEST,
            OffsetSpec::Latest => LATEST,
            OffsetSpec::Timestamp(ms) => ms,
            OffsetSpec::MaxTimestamp => MAX_TIMESTAMP,
        }
    }

    /// The ListOffsets version a leader must speak to be asked, and what wants it.
    fn needs(self) -> Option<(i16, &'static str)> {
        match self {
            OffsetSpec::MaxTimestamp => Some((7, "the max timestamp")),
            _ => None,
        }
    }
}

/// ListOffsets timestamp for the record with the largest timestamp, from v7 on.
const MAX_TIMESTAMP: i64 = -3;

/// One partition's offset, as [`Admin::list_offsets`] finds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ListedOffset {
    /// The offset.
    pub offset: i64,
    /// The timestamp of the record at that offset, for [`OffsetSpec::Timestamp`] and
    /// [`OffsetSpec::MaxTimestamp`]; `None` for the log's ends.
    pub timestamp: Option<i64>,
    /// The leader epoch of that record, where the broker says (Kafka 2.1 and later).
    pub leader_epoch: Option<i32>,
}

/// One partition of a group, as [`Admin::group_lag`] finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PartitionLag {
    /// The offset the group committed: where it reads next. `None` where it committed none
    /// (a member is assigned the partition but has not committed yet).
    pub committed: Option<i64>,
    /// The partition's log end offset (its high watermark).
    pub log_end: i64,
    /// `log_end - committed`: the records the group has yet to read, where it committed an
    /// offset. Negative when the log was truncated below the committed offset.
    pub lag: Option<i64>,
    /// The member assigned the partition, if one is.
    pub member: Option<Assignee>,
}

/// The member of a group a partition is assigned to, in a [`PartitionLag`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Assignee {
    /// The member id the coordinator gave it.
    pub member_id: String,
    /// Its `client.id`.
    pub client_id: String,
    /// The host it connects from, as the broker sees it.
    pub client_host: String,
}

impl Admin {
    /// The offset `spec` names of each partition, asked of its leader: one outcome per
    /// `(topic, partition, spec)`, in the order asked. `Ok(None)` where no record matches: a
    /// timestamp after the last record's, or [`OffsetSpec::MaxTimestamp`] of an empty
    /// partition.
    ///
    /// `isolation` matters for [`OffsetSpec::Latest`]: under
    /// [`IsolationLevel::ReadCommitted`] it is the last stable offset, short of any open
    /// transaction (the Java client's `ListOffsetsOptions`). A leader moving or being elected
    /// is asked again, within `socket.timeout.ms`. A leader older than Kafka 3.0 answers
    /// [`OffsetSpec::MaxTimestamp`] with [`Error::UnsupportedApi`] for its partitions.
    ///
    /// Cancel-safe: it only reads.
    ///
    /// ```no_run
    /// # async fn demo(admin: purekafka::Admin) -> Result<(), purekafka::Error> {
    /// use purekafka::{IsolationLevel, OffsetSpec};
    /// let asked = [("test", 0, OffsetSpec::Earliest), ("test", 0, OffsetSpec::Latest)];
    /// for ((topic, partition), offset) in admin.list_offsets(&asked, IsolationLevel::ReadUncommitted).await? {
    ///     println!("{topic}[{partition}]: {:?}", offset?.map(|o| o.offset));
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn list_offsets(
        &self,
        partitions: &[(&str, i32, OffsetSpec)],
        isolation: IsolationLevel,
    ) -> Result<Vec<PartitionOutcome<Option<ListedOffset>>>, Error> {
        // One round of requests per spec asked: each ListOffsets carries one timestamp.
        // A partition asked twice is asked once: Kafka refuses a request naming it twice.
        let mut by_spec: BTreeMap<OffsetSpec, std::collections::BTreeSet<TopicPartition>> =
            BTreeMap::new();
        for &(topic, partition, spec) in partitions {
            by_spec
                .entry(spec)
                .or_default()
                .insert((Arc::from(topic), partition));
        }
        let mut found = BTreeMap::new();
        for (spec, tps) in by_spec {
            let tps: Vec<TopicPartition> = tps.into_iter().collect();
            let answers = self
                .cluster
                .list_offsets_each(&tps, spec.timestamp(), isolation.as_i8(), spec.needs())
                .await?;
            for (tp, answer) in answers {
                let listed = answer.map(|a| {
                    (a.offset >= 0).then_some(ListedOffset {
                        offset: a.offset,
                        timestamp: (a.timestamp >= 0).then_some(a.timestamp),
                        leader_epoch: (a.leader_epoch >= 0).then_some(a.leader_epoch),
                    })
                });
                found.insert((tp, spec), listed);
            }
        }
        Ok(partitions
            .iter()
            .map(|&(topic, partition, spec)| {
                let tp: TopicPartition = (Arc::from(topic), partition);
                let outcome = found
                    .get(&(tp, spec))
                    .cloned()
                    .unwrap_or_else(|| Err(no_answer(topic, partition)));
                ((topic.to_owned(), partition), outcome)
            })
            .collect())
    }

    /// How far `group` is behind, per partition, seen from outside the group as
    /// `kafka-consumer-groups --describe` sees it: every partition the group committed an
    /// offset for or a member is assigned, with the committed offset, the log end, the lag and
    /// the member. Sorted by topic and partition.
    ///
    /// The log end is the high watermark (read_uncommitted, as the Kafka tool reads it): for a
    /// `read_committed` group under open transactions, the lag counts records it cannot read
    /// yet. A group the coordinator does not know is the call's error.
    ///
    /// Cancel-safe: it only reads.
    pub async fn group_lag(
        &self,
        group: &str,
    ) -> Result<Vec<PartitionOutcome<PartitionLag>>, Error> {
        let description = self.describe_group(group).await?;
        let mut members: BTreeMap<(String, i32), Assignee> = BTreeMap::new();
        for m in description.members {
            let who = Assignee {
                member_id: m.member_id,
                client_id: m.client_id,
                client_host: m.client_host,
            };
            for (topic, partitions) in m.assignment {
                for p in partitions {
                    members.insert((topic.clone(), p), who.clone());
                }
            }
        }
        let mut committed: BTreeMap<(String, i32), Result<Option<i64>, Error>> = BTreeMap::new();
        for (tp, offset) in self.list_group_offsets(group).await? {
            committed.insert(tp, offset.map(|c| Some(c.offset)));
        }
        for tp in members.keys() {
            committed.entry(tp.clone()).or_insert(Ok(None));
        }
        let tps: Vec<TopicPartition> = committed
            .keys()
            .map(|(t, p)| (Arc::from(t.as_str()), *p))
            .collect();
        let ends: BTreeMap<TopicPartition, Result<i64, Error>> = self
            .cluster
            .list_offsets_each(&tps, LATEST, IsolationLevel::ReadUncommitted.as_i8(), None)
            .await?
            .into_iter()
            .map(|(tp, end)| (tp, end.map(|e| e.offset)))
            .collect();
        Ok(committed
            .into_iter()
            .map(|((topic, partition), committed)| {
                let end = answer_for(&ends, &topic, partition);
                let member = members.remove(&(topic.clone(), partition));
                let lag = committed.and_then(|committed| {
                    let log_end = end?;
                    Ok(PartitionLag {
                        committed,
                        log_end,
                        lag: committed.map(|c| log_end - c),
                        member,
                    })
                });
                ((topic, partition), lag)
            })
            .collect())
    }

    /// Deletes the records of each partition before the offset given (`kafka-delete-records`):
    /// the log start moves there, and readers find nothing below it. `-1` deletes up to the
    /// high watermark, every record the partition has. One outcome per partition, in the order
    /// asked: the new log start (low watermark). An offset beyond the high watermark is
    /// OFFSET_OUT_OF_RANGE.
    ///
    /// Cancel-safe for the client; dropped after its request went out, the records may still
    /// be deleted (see [`Admin`]).
    pub async fn delete_records(
        &self,
        before: &[(&str, i32, i64)],
    ) -> Result<Vec<PartitionOutcome<i64>>, Error> {
        let offsets: BTreeMap<TopicPartition, i64> = before
            .iter()
            .map(|&(topic, partition, offset)| ((Arc::from(topic), partition), offset))
            .collect();
        let timeout_ms = self.timeout_ms();
        let request = |tps: &[TopicPartition]| {
            let topics = by_topic(tps.iter().map(|tp| (tp, offsets[tp])))
                .into_iter()
                .map(|(topic, ps)| {
                    DeleteRecordsTopic::default()
                        .with_name(topic_name(topic))
                        .with_partitions(
                            ps.into_iter()
                                .map(|(p, offset)| {
                                    DeleteRecordsPartition::default()
                                        .with_partition_index(p)
                                        .with_offset(offset)
                                })
                                .collect(),
                        )
                })
                .collect();
            DeleteRecordsRequest::default()
                .with_topics(topics)
                .with_timeout_ms(timeout_ms)
        };
        let read = |response: &DeleteRecordsResponse, tp: &TopicPartition| {
            let p = response
                .topics
                .iter()
                .filter(|t| t.name.0.as_str() == &*tp.0)
                .flat_map(|t| &t.partitions)
                .find(|p| p.partition_index == tp.1)?;
            Some((p.error_code, p.low_watermark))
        };
        let tps: Vec<TopicPartition> = offsets.keys().cloned().collect();
        let answers: BTreeMap<TopicPartition, Result<i64, Error>> = self
            .cluster
            .on_leaders(&tps, None, &request, &read, false)
            .await?
            .into_iter()
            .collect();
        Ok(before
            .iter()
            .map(|&(topic, partition, _)| {
                let answer = answer_for(&answers, topic, partition);
                ((topic.to_owned(), partition), answer)
            })
            .collect())
    }
}

/// The answer about `topic[partition]` among `answers`: each partition asked gets one, so a
/// missing one is the client's own fault, reported rather than panicked on.
fn answer_for<T: Clone>(
    answers: &BTreeMap<TopicPartition, Result<T, Error>>,
    topic: &str,
    partition: i32,
) -> Result<T, Error> {
    answers
        .get(&(Arc::from(topic), partition))
        .cloned()
        .unwrap_or_else(|| Err(no_answer(topic, partition)))
}

fn no_answer(topic: &str, partition: i32) -> Error {
    Error::protocol("-", format!("no answer about {topic}[{partition}]"))
}
