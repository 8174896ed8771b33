//! The metadata cache: brokers, topics, partitions and their leaders, and a count of the
//! changes to the cluster's shape (a topic appearing or going, a partition count changing) that
//! the clients above follow.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kafka_protocol::messages::MetadataResponse;

use crate::error::KafkaCode;
use crate::protocol::codes;
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
    /// Every topic's name but the internal ones, sorted, as of the last answer about every
    /// topic: what regex subscriptions are matched against. `None` until such an answer.
    pub listing: Option<Arc<[String]>>,
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
    /// Kafka's own topics (`__consumer_offsets`, `__transaction_state`), which no regex
    /// subscription matches.
    pub internal: bool,
    /// When the cluster told us this.
    pub fetched_at: Instant,
    /// Known to be out of date (a leader moved): ask again before trusting the leaders.
    pub invalidated: bool,
}

impl TopicMetadata {
    /// True when this is older than `max_age` (`topic.metadata.refresh.interval.ms`; `None`:
    /// never too old) or known to be out of date, and must be asked again.
    pub fn is_stale(&self, max_age: Option<Duration>) -> bool {
        self.invalidated || max_age.is_some_and(|age| self.fetched_at.elapsed() >= age)
    }

    /// True when the topic does not exist (as far as this answer goes).
    pub fn is_missing(&self) -> bool {
        self.error
            .is_some_and(|e| e.code() == codes::UNKNOWN_TOPIC_OR_PARTITION)
    }

    /// True while the topic is not fully served: a partition has no leader, or the topic is in
    /// a passing error (LEADER_NOT_AVAILABLE while it is created).
    pub fn is_unsettled(&self) -> bool {
        self.invalidated
            || self
                .error
                .is_some_and(|e| e.is_retriable() && !self.is_missing())
            || self.partitions.iter().any(|p| p.leader < 0)
    }

    /// What the clients above follow: whether the topic exists (or its error), and how many
    /// partitions it has.
    fn shape(&self) -> (Option<i16>, usize) {
        (self.error.map(|e| e.code()), self.partitions.len())
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
                        internal: t.is_internal,
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
            listing: None,
        }
    }

    /// Takes in a fresher answer: brokers and controller are replaced, topics it names too.
    /// `every_topic` says the answer is about every topic, so it gives the listing, and a topic
    /// cached but not in it no longer exists. A partition whose leader epoch the answer gives
    /// older than the cache's keeps the cache's (a broker behind the controller answered), as
    /// the Java client does. Returns true when the cluster's shape changed: a topic appeared,
    /// went, or changed its partition count, or the listing changed.
    pub(crate) fn merge(&mut self, mut fresh: Metadata, every_topic: bool) -> bool {
        if !fresh.brokers.is_empty() {
            self.brokers = fresh.brokers;
        }
        self.controller_id = fresh.controller_id.or(self.controller_id);
        let mut changed = false;
        if every_topic {
            let mut names: Vec<String> = fresh
                .topics
                .iter()
                .filter(|(_, t)| !t.internal && !t.is_missing())
                .map(|(name, _)| name.clone())
                .collect();
            names.sort_unstable();
            if self.listing.as_deref() != Some(&names[..]) {
                self.listing = Some(names.into());
                changed = true;
            }
        }
        if every_topic {
            let gone: Vec<String> = self
                .topics
                .keys()
                .filter(|name| !fresh.topics.contains_key(*name))
                .cloned()
                .collect();
            for name in gone {
                let missing = TopicMetadata {
                    error: KafkaCode::from_code(codes::UNKNOWN_TOPIC_OR_PARTITION),
                    partitions: Vec::new(),
                    id: 0,
                    internal: false,
                    fetched_at: Instant::now(),
                    invalidated: false,
                };
                fresh.topics.insert(name, missing);
            }
        }
        for (name, mut topic) in fresh.topics {
            let before = self.topics.get(&name);
            if let Some(old) =
                before.filter(|old| old.id == topic.id || old.id == 0 || topic.id == 0)
            {
                for p in &mut topic.partitions {
                    let cached = old.partitions.iter().find(|o| o.id == p.id);
                    if let Some(o) =
                        cached.filter(|o| p.leader_epoch >= 0 && o.leader_epoch > p.leader_epoch)
                    {
                        *p = *o;
                    }
                }
            }
            changed |= before.map(TopicMetadata::shape) != Some(topic.shape());
            self.topics.insert(name, topic);
        }
        changed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topic(error: Option<i16>, leaders: &[i32]) -> TopicMetadata {
        TopicMetadata {
            error: error.and_then(KafkaCode::from_code),
            partitions: leaders
                .iter()
                .enumerate()
                .map(|(id, &leader)| PartitionMetadata {
                    id: id as i32,
                    leader,
                    leader_epoch: 0,
                })
                .collect(),
            id: 1,
            internal: false,
            fetched_at: Instant::now(),
            invalidated: false,
        }
    }

    fn answer(topics: &[(&str, TopicMetadata)]) -> Metadata {
        Metadata {
            topics: topics
                .iter()
                .map(|(n, t)| (n.to_string(), t.clone()))
                .collect(),
            ..Metadata::default()
        }
    }

    #[test]
    fn only_shape_changes_count() {
        let mut cache = Metadata::default();
        // A topic first seen, even as missing, is a change: a subscriber must hear of it.
        assert!(cache.merge(answer(&[("t", topic(Some(3), &[]))]), false));
        assert!(!cache.merge(answer(&[("t", topic(Some(3), &[]))]), false));
        // Created.
        assert!(cache.merge(answer(&[("t", topic(None, &[1]))]), false));
        // A leader moving is not a change of shape.
        assert!(!cache.merge(answer(&[("t", topic(None, &[2]))]), false));
        // A partition added is.
        assert!(cache.merge(answer(&[("t", topic(None, &[2, 1]))]), false));
        // An answer about other topics leaves this one as it was.
        assert!(cache.merge(answer(&[("u", topic(None, &[1]))]), false));
        assert_eq!(cache.topics["t"].partitions.len(), 2);
    }

    #[test]
    fn an_older_leader_epoch_does_not_replace_a_newer_one() {
        let mut cache = Metadata::default();
        let with_epoch = |leader: i32, epoch: i32| {
            let mut t = topic(None, &[leader]);
            t.partitions[0].leader_epoch = epoch;
            t
        };
        cache.merge(answer(&[("t", with_epoch(2, 5))]), false);
        // A lagging broker still says broker 1 leads at epoch 4.
        cache.merge(answer(&[("t", with_epoch(1, 4))]), false);
        assert_eq!(cache.topics["t"].partitions[0].leader, 2);
        cache.merge(answer(&[("t", with_epoch(3, 6))]), false);
        assert_eq!(cache.topics["t"].partitions[0].leader, 3);
        // The same name with another id is another topic: its epochs start again.
        let mut recreated = with_epoch(1, 0);
        recreated.id = 2;
        cache.merge(answer(&[("t", recreated)]), false);
        assert_eq!(cache.topics["t"].partitions[0].leader, 1);
    }

    #[test]
    fn a_topic_missing_from_an_answer_about_every_topic_is_gone() {
        let mut cache = Metadata::default();
        cache.merge(
            answer(&[("a", topic(None, &[1])), ("b", topic(None, &[1]))]),
            true,
        );
        assert!(cache.merge(answer(&[("a", topic(None, &[1]))]), true));
        assert!(cache.topics["b"].is_missing());
        // An answer about some topics says nothing of the others.
        cache.merge(answer(&[("b", topic(None, &[1]))]), false);
        assert!(!cache.merge(answer(&[("a", topic(None, &[1]))]), false));
        assert!(!cache.topics["b"].is_missing());
    }

    #[test]
    fn the_listing_comes_from_answers_about_every_topic() {
        let mut cache = Metadata::default();
        let mut internal = topic(None, &[1]);
        internal.internal = true;
        let all = answer(&[
            ("b", topic(None, &[1])),
            ("a", topic(None, &[1])),
            ("__consumer_offsets", internal),
        ]);
        assert!(cache.merge(all.clone(), true));
        assert_eq!(
            cache.listing.as_deref(),
            Some(&["a".to_owned(), "b".to_owned()][..])
        );
        assert!(!cache.merge(all, true), "the same listing again");
        // An answer about some topics says nothing of the others: the listing stays.
        assert!(!cache.merge(answer(&[("a", topic(None, &[1]))]), false));
        assert_eq!(cache.listing.as_ref().map(|l| l.len()), Some(2));
        assert!(cache.merge(answer(&[("a", topic(None, &[1]))]), true));
        assert_eq!(cache.listing.as_deref(), Some(&["a".to_owned()][..]));
    }

    #[test]
    fn unsettled_topics() {
        assert!(!topic(None, &[1, 2]).is_unsettled());
        assert!(topic(None, &[1, -1]).is_unsettled());
        // LEADER_NOT_AVAILABLE while a topic is created.
        assert!(topic(Some(5), &[]).is_unsettled());
        // Missing is not unsettled: whether to wait for it is the caller's business.
        let missing = topic(Some(3), &[]);
        assert!(missing.is_missing() && !missing.is_unsettled());
        let mut moved = topic(None, &[1]);
        moved.invalidated = true;
        assert!(moved.is_unsettled() && moved.is_stale(None));
        assert!(!topic(None, &[1]).is_stale(None));
        assert!(topic(None, &[1]).is_stale(Some(Duration::ZERO)));
    }
}
