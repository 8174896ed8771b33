//! The consumer's statistics: counted as records are handed out, commits land and the
//! partitions change, and assembled into librdkafka's statistics object from within `recv`
//! (as librdkafka serves its `stats_cb` from the application's poll), once per
//! `statistics.interval.ms`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use tokio::time::Instant;

use super::{Consumer, Message};
use crate::cluster::TopicPartition;
use crate::config::IsolationLevel;
use crate::stats::{Emitter, GroupStatistics, PartitionStatistics, TopicStatistics};

/// What a consumer keeps for its statistics.
pub(super) struct Counting {
    pub emitter: Emitter,
    /// Records and bytes handed out, per partition.
    handed: BTreeMap<TopicPartition, (u64, u64)>,
    /// The offsets committed for the group, as commits landed; shared with commit tasks.
    committed: Arc<Mutex<BTreeMap<TopicPartition, i64>>>,
    /// When each topic was first read.
    topics: BTreeMap<Arc<str>, Instant>,
    rebalances: u64,
    /// When the last rebalance happened, and why.
    last_rebalance: Option<(Instant, &'static str)>,
}

impl Counting {
    pub fn new(emitter: Emitter) -> Counting {
        Counting {
            emitter,
            handed: BTreeMap::new(),
            committed: Arc::default(),
            topics: BTreeMap::new(),
            rebalances: 0,
            last_rebalance: None,
        }
    }

    /// `msg` was handed to the application.
    pub fn handed(&mut self, msg: &Message) {
        let bytes =
            msg.key.as_ref().map_or(0, |k| k.len()) + msg.value.as_ref().map_or(0, |v| v.len());
        let tp = (msg.topic.clone(), msg.partition);
        let entry = self.handed.entry(tp).or_default();
        entry.0 += 1;
        entry.1 += bytes as u64;
    }

    /// The partitions changed, for `why`.
    pub fn rebalanced(&mut self, why: &'static str) {
        self.rebalances += 1;
        self.last_rebalance = Some((Instant::now(), why));
    }

    /// Where landed commits are recorded.
    pub fn committed(&self) -> Arc<Mutex<BTreeMap<TopicPartition, i64>>> {
        self.committed.clone()
    }
}

/// Records `offsets` in `into` once `commit` succeeds.
pub(super) async fn recorded<F>(
    commit: F,
    offsets: Vec<(Arc<str>, i32, i64)>,
    into: Option<Arc<Mutex<BTreeMap<TopicPartition, i64>>>>,
) -> Result<(), crate::Error>
where
    F: std::future::Future<Output = Result<(), crate::Error>>,
{
    let outcome = commit.await;
    if let (Ok(()), Some(into)) = (&outcome, into) {
        let mut committed = into.lock().unwrap_or_else(|p| p.into_inner());
        for (topic, partition, offset) in offsets {
            committed.insert((topic, partition), offset);
        }
    }
    outcome
}

impl Consumer {
    /// The group's committed offsets, as read when partitions were assigned: the statistics'
    /// `committed_offset` before this member commits anything.
    pub(super) fn note_committed(
        &self,
        read: &std::collections::HashMap<(String, i32), Option<i64>>,
    ) {
        let Some(counting) = &self.counting else {
            return;
        };
        let mut committed = counting.committed.lock().unwrap_or_else(|p| p.into_inner());
        for ((topic, partition), offset) in read {
            if let Some(offset) = offset {
                committed.insert((Arc::from(topic.as_str()), *partition), *offset);
            }
        }
    }

    /// Emits the statistics when they are due.
    pub(super) fn statistics_due(&mut self) {
        let due = self
            .counting
            .as_ref()
            .is_some_and(|c| c.emitter.due(Instant::now()));
        if due {
            let stats = self.assemble();
            if let Some(c) = &self.counting {
                c.emitter.emit(stats);
            }
        }
    }

    fn assemble(&mut self) -> crate::Statistics {
        let assigned: Vec<TopicPartition> = self.state.positions.keys().cloned().collect();
        let Some(counting) = self.counting.as_mut() else {
            unreachable!("assembled only when counting");
        };
        let mut stats = counting.emitter.blank();
        stats.metadata_cache_cnt = self.cluster.metadata_cache_cnt() as i64;
        // Fetched and not yet handed out, per partition.
        let mut fetched: BTreeMap<TopicPartition, (i64, i64)> = BTreeMap::new();
        for msg in &self.state.buffered {
            let entry = fetched
                .entry((msg.topic.clone(), msg.partition))
                .or_default();
            entry.0 += 1;
            entry.1 += (msg.key.as_ref().map_or(0, |k| k.len())
                + msg.value.as_ref().map_or(0, |v| v.len())) as i64;
        }
        let committed = counting
            .committed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let read_committed = self.config.isolation_level == IsolationLevel::ReadCommitted;
        let mut by_topic: BTreeMap<Arc<str>, Vec<i32>> = BTreeMap::new();
        for tp in assigned.iter().chain(counting.handed.keys()) {
            let partitions = by_topic.entry(tp.0.clone()).or_default();
            if !partitions.contains(&tp.1) {
                partitions.push(tp.1);
            }
        }
        for (topic, partitions) in by_topic {
            let since = *counting
                .topics
                .entry(topic.clone())
                .or_insert_with(Instant::now);
            let (metadata_age, places) = self.cluster.topic_places(&topic, partitions.into_iter());
            let mut out = TopicStatistics {
                topic: topic.to_string(),
                age: since.elapsed().as_millis() as i64,
                metadata_age,
                batchsize: Default::default(),
                batchcnt: Default::default(),
                partitions: BTreeMap::new(),
            };
            for (partition, place) in places {
                let tp: TopicPartition = (topic.clone(), partition);
                let mut s = PartitionStatistics::new(partition);
                s.leader = place.leader.into();
                s.leader_epoch = place.leader_epoch.into();
                s.unknown = place.unknown;
                let position = self.state.positions.get(&tp).copied();
                s.desired = position.is_some();
                s.broker = match self.state.read_replicas.get(&tp) {
                    Some(&replica) => replica.into(),
                    None if position.is_some() => place.leader.into(),
                    None => -1,
                };
                s.fetch_state = match (position, self.state.paused.contains(&tp)) {
                    (None, _) => "none",
                    (Some(_), true) => "stopped",
                    (Some(_), false) => "active",
                }
                .to_owned();
                if let Some(next) = position {
                    s.next_offset = next;
                }
                let (count, size) = fetched.get(&tp).copied().unwrap_or_default();
                (s.fetchq_cnt, s.fetchq_size) = (count, size);
                if let Some(app) = self.consumed.get(&tp) {
                    s.app_offset = app;
                }
                if let Some(stored) = self.consumed.stored(&tp) {
                    s.stored_offset = stored;
                }
                if let Some(&offset) = committed.get(&tp) {
                    (s.committed_offset, s.commited_offset) = (offset, offset);
                }
                if let Some(&hi) = self.state.high_watermarks.get(&tp) {
                    s.hi_offset = hi;
                    s.ls_offset = self.state.ends.get(&tp).copied().unwrap_or(hi);
                    let end = if read_committed { s.ls_offset } else { hi };
                    // As librdkafka: unknown (-1) for an offset beyond the end too.
                    let lag = |from: i64| match from >= 0 && from <= end {
                        true => end - from,
                        false => -1,
                    };
                    s.consumer_lag = lag(s.committed_offset);
                    s.consumer_lag_stored = lag(s.stored_offset);
                }
                if let Some(&at) = self.eof_at.get(&tp) {
                    s.eof_offset = at;
                }
                let (msgs, bytes) = counting.handed.get(&tp).copied().unwrap_or_default();
                (s.rxmsgs, s.rxbytes, s.msgs) = (msgs as i64, bytes as i64, msgs as i64);
                out.partitions.insert(partition.to_string(), s);
            }
            stats.topics.insert(out.topic.clone(), out);
        }
        stats.brokers = self.cluster.broker_statistics(&assigned);
        if self.config.group_id.is_some() {
            let member = self.group.as_ref();
            let state = if member.is_some() { "up" } else { "init" };
            let join_state = match member {
                Some(g) if !g.can_commit() => "wait-join",
                Some(_) if !assigned.is_empty() => "steady",
                Some(_) => "wait-assign-call",
                None => "init",
            };
            let emitter = &counting.emitter;
            stats.cgrp = Some(GroupStatistics {
                state: state.to_owned(),
                stateage: emitter.state_age_ms("cgrp.state", state),
                join_state: join_state.to_owned(),
                rebalance_age: counting
                    .last_rebalance
                    .map_or(0, |(at, _)| at.elapsed().as_millis() as i64),
                rebalance_cnt: counting.rebalances as i64,
                rebalance_reason: counting
                    .last_rebalance
                    .map_or(String::new(), |(_, why)| why.to_owned()),
                assignment_size: assigned.len() as i64,
            });
        }
        stats
    }
}
