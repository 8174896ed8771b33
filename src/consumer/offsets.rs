//! Where the consumer is and what is stored for it: positions, the offsets stored for the next
//! commit and commits of single messages, the assignment's increments, and the questions asked
//! of the cluster on demand (committed offsets, offsets by time, watermarks), as librdkafka's
//! consumer API has them.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use super::membership::group_by_topic;
use super::{Consumer, Message};
use crate::cluster::{TopicPartition, EARLIEST, LATEST};
use crate::config::IsolationLevel;
use crate::error::{ConfigError, Error};
use crate::group::coordinator::{Coordinator, Identity};
use crate::protocol::consumer_protocol::TopicPartitions;
use crate::Offset;

/// The pause between attempts while a group coordinator is being found.
const COORDINATOR_RETRY: Duration = Duration::from_millis(100);

impl Consumer {
    /// The offset of the next message `recv` hands out of an assigned partition: the one after
    /// the last handed out, or where reading starts. `None` for a partition not assigned.
    pub fn position(&self, topic: &str, partition: i32) -> Option<i64> {
        let key = (Arc::from(topic), partition);
        self.consumed
            .get(&key)
            .or_else(|| self.state.positions.get(&key).copied())
    }

    /// Stores the offset after `message` for the next commit (librdkafka's
    /// `rd_kafka_offset_store`, confluent-kafka-go's `StoreMessage`): with
    /// `enable.auto.offset.store=false`, commits store only what the application stored, so
    /// that a message counts as consumed once it is processed, not once it is handed out.
    pub fn store_offset(&mut self, message: &Message) -> Result<(), Error> {
        self.store_offsets(&[(&*message.topic, message.partition, message.offset + 1)])
    }

    /// Stores, for the next commit, the offset of the next message to read of each
    /// `(topic, partition, offset)` (librdkafka's `rd_kafka_offsets_store`). Each partition
    /// must be assigned; none is stored if one is not.
    pub fn store_offsets<T: AsRef<str>>(&mut self, offsets: &[(T, i32, i64)]) -> Result<(), Error> {
        let keys = offsets
            .iter()
            .map(|(t, p, _)| self.assigned(t.as_ref(), *p))
            .collect::<Result<Vec<_>, _>>()?;
        for (key, (_, _, offset)) in keys.iter().zip(offsets) {
            self.consumed.store(key, *offset);
        }
        Ok(())
    }

    /// Commits the offset after `message` for its partition, and waits for the coordinator's
    /// answer (confluent-kafka-go's `CommitMessage`).
    ///
    /// Dropped before it returns, the commit may or may not have been made; nothing else
    /// changes.
    pub async fn commit_message(&mut self, message: &Message) -> Result<(), Error> {
        let offsets = [(&*message.topic, message.partition, message.offset + 1)];
        self.commit_offsets(&offsets).await
    }

    /// The assignment becomes `partitions`, each starting at its offset: the others are
    /// dropped (see [`Consumer::assign`]).
    pub(super) async fn replace_assignment<T: AsRef<str>>(
        &mut self,
        partitions: &[(T, i32, Offset)],
    ) -> Result<(), Error> {
        let starts = self.starts(partitions).await?;
        let kept: Vec<TopicPartition> = self.state.positions.keys().cloned().collect();
        for tp in kept.iter().filter(|tp| !starts.contains_key(*tp)) {
            self.forget(tp);
        }
        self.start_reading(starts);
        Ok(())
    }

    /// Adds `partitions` to the assignment, each starting at its offset; those assigned
    /// already move there (librdkafka's `incremental_assign`). For a consumer that has not
    /// subscribed.
    ///
    /// Cancel-safe: nothing changes unless this returns `Ok`.
    pub async fn incremental_assign<T: AsRef<str>>(
        &mut self,
        partitions: &[(T, i32, Offset)],
    ) -> Result<(), Error> {
        let adding = self.starts(partitions).await?;
        self.start_reading(adding);
        Ok(())
    }

    /// Removes `partitions` from the assignment (librdkafka's `incremental_unassign`):
    /// nothing more is read of them, and what was fetched of them and not handed out is
    /// dropped. A partition not assigned is an [`Error::NotAssigned`], and then nothing is
    /// removed.
    pub fn incremental_unassign<T: AsRef<str>>(
        &mut self,
        partitions: &[(T, i32)],
    ) -> Result<(), Error> {
        self.not_subscribed()?;
        let keys = partitions
            .iter()
            .map(|(t, p)| self.assigned(t.as_ref(), *p))
            .collect::<Result<Vec<_>, _>>()?;
        for tp in &keys {
            self.forget(tp);
        }
        Ok(())
    }

    /// Removes every partition from the assignment (librdkafka's `unassign`).
    pub fn unassign(&mut self) -> Result<(), Error> {
        self.not_subscribed()?;
        let all: Vec<TopicPartition> = self.state.positions.keys().cloned().collect();
        for tp in &all {
            self.forget(tp);
        }
        Ok(())
    }

    /// The offsets the group (`group.id`) has committed for `partitions`: `None` where it has
    /// none. Asked of the group's coordinator, whether or not this consumer is a member.
    ///
    /// Cancel-safe: it only reads.
    pub async fn committed<T: AsRef<str>>(
        &self,
        partitions: &[(T, i32)],
        timeout: Duration,
    ) -> Result<Vec<(String, i32, Option<i64>)>, Error> {
        let group = self.group_id()?;
        let asked = by_topic(partitions.iter().map(|(t, p)| (t.as_ref(), *p)));
        let committed = within(
            timeout,
            "committed offsets",
            self.group_committed(group, &asked, timeout),
        )
        .await?;
        Ok(partitions
            .iter()
            .map(|(t, p)| {
                let (t, p) = (t.as_ref().to_owned(), *p);
                let offset = committed.get(&(t.clone(), p)).copied().flatten();
                (t, p, offset)
            })
            .collect())
    }

    /// For each `(topic, partition, timestamp)` (milliseconds since the Unix epoch), the
    /// offset of the first message at or after that time; `None` where there is none yet
    /// (librdkafka's `offsets_for_times`).
    ///
    /// Cancel-safe: it only reads.
    pub async fn offsets_for_times<T: AsRef<str>>(
        &self,
        times: &[(T, i32, i64)],
        timeout: Duration,
    ) -> Result<Vec<(String, i32, Option<i64>)>, Error> {
        let isolation = self.config.isolation_level.as_i8();
        let mut by_time: BTreeMap<i64, Vec<TopicPartition>> = BTreeMap::new();
        for (t, p, time) in times {
            if *time < 0 {
                return Err(Error::Config(ConfigError::InvalidValue {
                    key: "offsets_for_times".into(),
                    value: time.to_string(),
                    reason: "a timestamp is milliseconds since the Unix epoch, 0 or more".into(),
                }));
            }
            by_time
                .entry(*time)
                .or_default()
                .push((Arc::from(t.as_ref()), *p));
        }
        let found = within(timeout, "offsets for times", async {
            let mut found = BTreeMap::new();
            for (time, partitions) in &by_time {
                for (tp, offset) in self
                    .cluster
                    .list_offsets(partitions, *time, isolation)
                    .await?
                {
                    found.insert((tp, *time), offset);
                }
            }
            Ok(found)
        })
        .await?;
        Ok(times
            .iter()
            .map(|(t, p, time)| {
                let key = ((Arc::from(t.as_ref()), *p), *time);
                let offset = found.get(&key).copied().filter(|&o| o >= 0);
                (t.as_ref().to_owned(), *p, offset)
            })
            .collect())
    }

    /// The low and high watermarks of any partition, asked of its leader now (librdkafka's
    /// `query_watermark_offsets`): the first offset still in the log, and the offset after the
    /// last (under `read_committed`, the first offset of the oldest open transaction, as the
    /// Java client's `endOffsets`).
    ///
    /// Cancel-safe: it only reads.
    pub async fn fetch_watermarks(
        &self,
        topic: &str,
        partition: i32,
        timeout: Duration,
    ) -> Result<(i64, i64), Error> {
        let isolation = self.config.isolation_level.as_i8();
        let tp = [(Arc::from(topic), partition)];
        within(timeout, "watermarks", async {
            let low = self.cluster.list_offsets(&tp, EARLIEST, isolation).await?;
            let high = self.cluster.list_offsets(&tp, LATEST, isolation).await?;
            match (low.first(), high.first()) {
                (Some((_, low)), Some((_, high))) => Ok((*low, *high)),
                _ => Err(Error::unknown(topic, Some(partition))),
            }
        })
        .await
    }

    /// What commits for a consumer that is no member of its group (`group.id` set, and
    /// partitions assigned by the application).
    pub(super) fn standalone_committer(&self) -> Result<Standalone, Error> {
        Ok(Standalone {
            cluster: self.cluster.clone(),
            group: self.group_id()?,
        })
    }

    /// The group's committed offsets of `asked`, asked again while its coordinator is found,
    /// moves or loads (a group's first request after the broker starts meets that), for up to
    /// `patience`.
    async fn group_committed(
        &self,
        group: String,
        asked: &[(String, Vec<i32>)],
        patience: Duration,
    ) -> Result<std::collections::HashMap<(String, i32), Option<i64>>, Error> {
        let deadline = tokio::time::Instant::now() + patience;
        let stable = self.config.isolation_level == IsolationLevel::ReadCommitted;
        let mut coordinator =
            Coordinator::new(self.cluster.clone(), group, patience, COORDINATOR_RETRY)
                .stable(stable);
        loop {
            match coordinator.committed(&asked.to_vec()).await {
                Err(e)
                    if e.is_retriable()
                        && tokio::time::Instant::now() + COORDINATOR_RETRY < deadline =>
                {
                    tokio::time::sleep(COORDINATOR_RETRY).await
                }
                outcome => return outcome,
            }
        }
    }

    fn group_id(&self) -> Result<String, Error> {
        self.config.group_id.clone().ok_or_else(|| {
            Error::Config(ConfigError::Missing {
                key: "group.id".into(),
            })
        })
    }

    /// Fails for a subscribed consumer, whose partitions the group assigns.
    fn not_subscribed(&self) -> Result<(), Error> {
        match self.group.is_some() || self.subscription.is_some() {
            true => Err(Error::Config(ConfigError::Conflict(
                "the group assigns a subscribed consumer's partitions; assign and unassign \
                 are for a consumer that has not subscribed"
                    .into(),
            ))),
            false => Ok(()),
        }
    }

    /// Where each of `partitions` starts, asking the cluster for earliest and latest.
    async fn starts<T: AsRef<str>>(
        &mut self,
        partitions: &[(T, i32, Offset)],
    ) -> Result<BTreeMap<TopicPartition, i64>, Error> {
        self.not_subscribed()?;
        let mut starts = BTreeMap::new();
        let mut asked: BTreeMap<Offset, Vec<TopicPartition>> = BTreeMap::new();
        for (t, p, start) in partitions {
            let tp = (Arc::from(t.as_ref()), *p);
            match start {
                Offset::At(offset) => {
                    starts.insert(tp, *offset);
                }
                other => asked.entry(*other).or_default().push(tp),
            }
        }
        let topics: Vec<&str> = {
            let mut topics: Vec<&str> = partitions.iter().map(|(t, _, _)| t.as_ref()).collect();
            topics.sort_unstable();
            topics.dedup();
            topics
        };
        self.cluster.create_if_allowed(&topics).await?;
        let isolation = self.config.isolation_level.as_i8();
        for (start, tps) in asked {
            let at = match start {
                Offset::Earliest => EARLIEST,
                Offset::Latest => LATEST,
                Offset::Stored => {
                    starts.extend(self.stored_starts(&tps).await?);
                    continue;
                }
                // Placed in `starts` above; never asked for.
                Offset::At(_) => continue,
            };
            starts.extend(self.cluster.list_offsets(&tps, at, isolation).await?);
        }
        Ok(starts)
    }

    /// Where `partitions` start for [`Offset::Stored`]: the group's committed offsets, the
    /// others as `auto.offset.reset` says, as a group member's partitions start.
    async fn stored_starts(
        &self,
        partitions: &[TopicPartition],
    ) -> Result<Vec<(TopicPartition, i64)>, Error> {
        let group = self.group_id()?;
        let asked = by_topic(partitions.iter().map(|(t, p)| (&**t, *p)));
        let timeout = self.cluster.socket_timeout();
        let committed = self.group_committed(group, &asked, timeout).await?;
        let (reset, isolation) = (self.config.auto_offset_reset, self.config.isolation_level);
        super::membership::start_positions(&self.cluster, &asked, &committed, reset, isolation)
            .await
    }

    /// Reads `starts` from now on: a partition assigned already moves there, dropping what
    /// was fetched of it.
    fn start_reading(&mut self, starts: BTreeMap<TopicPartition, i64>) {
        for (tp, offset) in starts {
            self.cluster.use_topic(&tp.0);
            if self.state.positions.contains_key(&tp) {
                self.forget(&tp);
            }
            self.state.positions.insert(tp, offset);
        }
    }

    /// Stops reading `tp`, forgetting what was fetched, handed out and stored of it.
    fn forget(&mut self, tp: &TopicPartition) {
        // A fetch round in flight drops what it brings of `tp`: it is no longer at the offset
        // the round asked for.
        self.state.remove(tp);
        self.consumed.remove(tp);
        self.eof_at.remove(tp);
    }
}

/// Commits for a consumer that is no member of its group, as librdkafka and the Java client
/// commit for an assigned consumer: as no member, generation -1. Owns what it needs, so that
/// its commit can run as a task of its own.
pub(super) struct Standalone {
    cluster: crate::cluster::Cluster,
    group: String,
}

impl Standalone {
    pub async fn commit(self, offsets: Vec<(Arc<str>, i32, i64)>) -> Result<(), Error> {
        let patience = self.cluster.socket_timeout();
        let deadline = tokio::time::Instant::now() + patience;
        let mut coordinator =
            Coordinator::new(self.cluster, self.group, patience, COORDINATOR_RETRY);
        let no_member = Identity {
            member_id: String::new(),
            generation: -1,
        };
        let offsets: Vec<(&str, i32, i64)> =
            offsets.iter().map(|(t, p, o)| (&**t, *p, *o)).collect();
        loop {
            // Asked again while the coordinator is found, moves or loads.
            match coordinator
                .commit(&no_member, None, &offsets)
                .await
                .map_err(Error::from)
            {
                Err(e)
                    if e.is_retriable()
                        && tokio::time::Instant::now() + COORDINATOR_RETRY < deadline =>
                {
                    tokio::time::sleep(COORDINATOR_RETRY).await
                }
                outcome => return outcome,
            }
        }
    }
}

/// `partitions` as per-topic lists, sorted, as the group's requests take them.
fn by_topic<'a>(partitions: impl Iterator<Item = (&'a str, i32)>) -> TopicPartitions {
    let mut sorted: Vec<(String, i32)> = partitions.map(|(t, p)| (t.to_owned(), p)).collect();
    sorted.sort_unstable();
    sorted.dedup();
    group_by_topic(sorted)
}

/// `work`, given up with an [`Error::Timeout`] naming `what` after `timeout`.
async fn within<R>(
    timeout: Duration,
    what: &str,
    work: impl std::future::Future<Output = Result<R, Error>>,
) -> Result<R, Error> {
    tokio::time::timeout(timeout, work)
        .await
        .unwrap_or_else(|_| {
            Err(Error::Timeout {
                what: what.to_owned(),
                after_ms: timeout.as_millis() as u64,
                outcome_unknown: false,
            })
        })
}
