//! The cluster's share of a client's statistics: one object per broker slot (its connection's
//! counters, and the partitions the client uses that it leads), and what the metadata cache
//! knows of each topic.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::Cluster;
use crate::stats::{BrokerCounters, BrokerStatistics, TopparStatistics};

/// What the metadata says of one partition, for its statistics.
pub(crate) struct PartitionPlace {
    /// Its leader, -1 if none.
    pub leader: i32,
    pub leader_epoch: i32,
    /// The metadata does not list it.
    pub unknown: bool,
}

impl Cluster {
    /// The statistics of every broker the client knows, and of each bootstrap server not known
    /// by id, their windows taken. `used` lists the partitions the client works with; each is
    /// put in the `toppars` of its leader.
    pub(crate) fn broker_statistics(
        &self,
        used: &[(Arc<str>, i32)],
    ) -> BTreeMap<String, BrokerStatistics> {
        let mut out = BTreeMap::new();
        let known: Vec<(i32, Arc<super::brokers::BrokerSlot>)> = {
            let brokers = self.inner.brokers.lock().expect("brokers lock");
            brokers.iter().map(|(id, s)| (*id, s.clone())).collect()
        };
        for (id, slot) in &known {
            if let Some(c) = &slot.counters {
                let name = format!("{}/{id}", slot.addr);
                let mut stats = c.take(name.clone(), *id, &slot.addr);
                for (topic, partition) in used {
                    if self.cached_leader(topic, *partition) == Some(*id) {
                        let toppar = TopparStatistics {
                            topic: topic.to_string(),
                            partition: (*partition).into(),
                        };
                        stats.toppars.insert(format!("{topic}-{partition}"), toppar);
                    }
                }
                out.insert(name, stats);
            }
        }
        for slot in &self.inner.bootstrap {
            if known.iter().any(|(_, k)| k.addr == slot.addr) {
                continue;
            }
            if let Some(c) = &slot.counters {
                let name = format!("{}/bootstrap", slot.addr);
                out.insert(name.clone(), c.take(name, -1, &slot.addr));
            }
        }
        out
    }

    /// The counters of broker `id`'s connections, when statistics are kept (without a lock
    /// when they are not: the producer asks for every request).
    pub(crate) fn broker_counters(&self, id: i32) -> Option<Arc<BrokerCounters>> {
        if !self.inner.settings.statistics {
            return None;
        }
        self.slot(id)?.counters.clone()
    }

    /// How many topics the metadata cache holds.
    pub(crate) fn metadata_cache_cnt(&self) -> usize {
        self.with_metadata(|m| m.topics.len())
    }

    /// ms since `topic`'s metadata was fetched (0 if never), and where each of `partitions`
    /// is.
    pub(crate) fn topic_places(
        &self,
        topic: &str,
        partitions: impl Iterator<Item = i32>,
    ) -> (i64, Vec<(i32, PartitionPlace)>) {
        self.with_metadata(|m| {
            let meta = m.topics.get(topic);
            let age = meta.map_or(0, |t| t.fetched_at.elapsed().as_millis() as i64);
            let places = partitions
                .map(|p| {
                    let found = meta.and_then(|t| t.partitions.iter().find(|x| x.id == p));
                    let place = PartitionPlace {
                        leader: found.map_or(-1, |x| x.leader),
                        leader_epoch: found.map_or(-1, |x| x.leader_epoch),
                        unknown: found.is_none(),
                    };
                    (p, place)
                })
                .collect();
            (age, places)
        })
    }
}
