//! What a group member is subscribed to, and how it follows the cluster: topic names and
//! regexes (a name starting with `^`, librdkafka's rule), resolved against the metadata each
//! time the cluster's shape changes, and subscribed topics that do not exist reported once;
//! and the consumer's `subscribe`, `unsubscribe` and the following itself.
//!
//! ```text
//!  subscribe(["orders", "^audit-.*"]) ─► Subscription ─ resolve(metadata) ─► ["audit-eu", "orders"]
//!                                                           │   (again on every change of shape)
//!                                                           ▼
//!  member: JoinGroup metadata (classic) · subscribed_topic_names (KIP-848)
//! ```

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use super::listener::Step;
use super::membership::{ClassicGroup, Membership};
use super::{Consumer, RebalanceEvent};
use crate::cluster::{topic_error, Metadata};
use crate::config::GroupProtocol;
use crate::error::{ConfigError, Error};
use crate::group::classic::GroupMember;
use crate::group::consumer_group::ConsumerGroupMember;
use crate::group::partition_counts;

/// A consumer's subscription: names, and regexes matched against every topic's name.
pub(super) struct Subscription {
    names: Vec<String>,
    patterns: Vec<regex_lite::Regex>,
    /// Subscribed names reported missing (or refused), not to be reported again until they
    /// have been seen to exist.
    reported: BTreeSet<String>,
}

impl Subscription {
    /// The subscription to `topics`. A topic starting with `^` is a regex; it matches a topic
    /// whose name it finds a match in (regexes are not anchored at the end: `^audit-` matches
    /// every topic starting with `audit-`, `^audit-[a-z]+$` only whole names).
    pub fn parse<T: AsRef<str>>(topics: &[T]) -> Result<Subscription, Error> {
        let mut names = Vec::new();
        let mut patterns = Vec::new();
        for topic in topics {
            let topic = topic.as_ref();
            if topic.starts_with('^') {
                let regex = regex_lite::Regex::new(topic).map_err(|e| {
                    Error::Config(ConfigError::InvalidValue {
                        key: "subscription".into(),
                        value: topic.to_owned(),
                        reason: format!(
                            "a topic starting with ^ is a regex, and this one is not valid: {e}"
                        ),
                    })
                })?;
                patterns.push(regex);
            } else if topic.is_empty() {
                return Err(Error::Config(ConfigError::InvalidValue {
                    key: "subscription".into(),
                    value: String::new(),
                    reason: "a topic name cannot be empty".into(),
                }));
            } else if !names.iter().any(|n| n == topic) {
                names.push(topic.to_owned());
            }
        }
        Ok(Subscription {
            names,
            patterns,
            reported: BTreeSet::new(),
        })
    }

    /// True when the subscription needs every topic's name (it has a regex).
    pub fn needs_listing(&self) -> bool {
        !self.patterns.is_empty()
    }

    /// The names subscribed to as the cache stands: every name given, and every listed topic a
    /// regex matches, sorted.
    pub fn resolve(&self, metadata: &Metadata) -> Vec<String> {
        let mut topics: BTreeSet<&str> = self.names.iter().map(String::as_str).collect();
        if let Some(listing) = &metadata.listing {
            topics.extend(
                listing
                    .iter()
                    .filter(|t| self.patterns.iter().any(|p| p.is_match(t)))
                    .map(String::as_str),
            );
        }
        topics.into_iter().map(str::to_owned).collect()
    }

    /// The subscribed names the cache says are missing or refused (TOPIC_AUTHORIZATION_FAILED,
    /// say) and that were not reported yet, each as the error to report: once per topic, as
    /// librdkafka does, until the topic is seen to exist. Also returns the names reported
    /// before that exist now.
    pub fn unavailable(&mut self, metadata: &Metadata) -> (Vec<(String, Error)>, Vec<String>) {
        let mut report = Vec::new();
        let mut appeared = Vec::new();
        for name in &self.names {
            let Some(topic) = metadata.topics.get(name) else {
                continue;
            };
            match topic.error {
                // A passing error (a leader being elected) is no news for the application.
                Some(code) if topic.is_missing() || !code.is_retriable() => {
                    if self.reported.insert(name.clone()) {
                        report.push((name.clone(), topic_error(name, code)));
                    }
                }
                Some(_) => {}
                None => {
                    if self.reported.remove(name) {
                        appeared.push(name.clone());
                    }
                }
            }
        }
        (report, appeared)
    }
}

impl Consumer {
    /// Joins the consumer group (`group.id`) with a subscription to `topics`. Partitions are
    /// assigned by the group and reassigned as members come and go; each starts at the group's
    /// committed offset, or per `auto.offset.reset` where there is none. Membership begins with
    /// the next [`Consumer::recv`].
    ///
    /// A topic starting with `^` is a regex (librdkafka's rule), matched against every topic's
    /// name but Kafka's internal ones, again whenever the cluster's topics change: `^audit-`
    /// subscribes to every topic whose name starts with `audit-`, present and future (add `$`
    /// to match whole names only). A topic that does not exist yet stays subscribed: `recv`
    /// reports it once ([`Error::UnknownTopicOrPartition`], and a
    /// [`RebalanceEvent::TopicNotAvailable`]), and its partitions are assigned once it is
    /// created. New partitions of a subscribed topic are assigned once the metadata shows them
    /// (`topic.metadata.refresh.interval.ms`).
    ///
    /// Subscribing again changes the subscription: the group rebalances with the new one.
    pub fn subscribe<T: AsRef<str>>(&mut self, topics: &[T]) -> Result<(), Error> {
        let group_id = self
            .config
            .group_id
            .clone()
            .ok_or_else(|| ConfigError::Missing {
                key: "group.id".into(),
            })?;
        let subscription = Subscription::parse(topics)?;
        let topics = self.cluster.with_metadata(|m| subscription.resolve(m));
        self.cluster
            .subscribe(&topics, subscription.needs_listing());
        self.subscription = Some(subscription);
        // Look at the cache afresh: whatever it already says of these topics is news to them.
        self.look_again = true;
        if self.group.is_some() {
            return Ok(());
        }
        let (cluster, config) = (self.cluster.clone(), self.config.clone());
        let polls = self.polls.clone();
        self.group = Some(match self.config.group_protocol {
            GroupProtocol::Classic => {
                let shared = Arc::new(Mutex::new(topics));
                let attention = self.attention.clone();
                let member =
                    GroupMember::new(cluster, group_id, config, shared.clone(), polls, attention);
                Membership::Classic(ClassicGroup {
                    rejoin: member.rejoin(),
                    cooperative: member.cooperative(),
                    assigned_from: member.assigned_from(),
                    committer: member.committer(),
                    member: Arc::new(tokio::sync::Mutex::new(member)),
                    joining: None,
                    topics: shared,
                    failures: 0,
                })
            }
            GroupProtocol::Consumer => Membership::Consumer(Arc::new(ConsumerGroupMember::new(
                cluster,
                group_id,
                config,
                topics,
                polls,
                self.attention.clone(),
            ))),
        });
        self.state.clear();
        self.consumed.clear();
        Ok(())
    }

    /// Leaves the group: the partitions are revoked in good order (the listener's `revoking`,
    /// then with `enable.auto.commit` the commit of what was consumed), the member leaves, and
    /// the subscription is forgotten. A later [`Consumer::subscribe`] joins afresh.
    ///
    /// Cancel-safe: once called, the consumer is no longer subscribed, and the revocation and
    /// the leaving go on in a task of their own even if this future is dropped.
    pub async fn unsubscribe(&mut self) -> Result<(), Error> {
        self.leave_group().await
    }

    /// Revokes every partition in good order and leaves the group: for `unsubscribe` and
    /// `close`. Returns the first failure, of the commit or of the leaving.
    pub(super) async fn leave_group(&mut self) -> Result<(), Error> {
        let Some(group) = self.group.take() else {
            return Ok(());
        };
        // A step in progress finishes first, in the same task as the rest (its seeks no longer
        // matter): from here on nothing waits before the consumer is out of the group.
        let pending = self.step.take();
        // Everything the consumer itself keeps changes now; the rest is a task of its own.
        self.subscription = None;
        self.errors.clear();
        self.cluster.subscribe(&[], false);
        let mut step = Step {
            revoked: self.assignment(),
            ..Step::default()
        };
        if !step.revoked.is_empty() {
            step.consumed = self
                .consumed_offsets()
                .into_iter()
                .map(|(t, p, o)| (t.to_string(), p, o))
                .collect();
            step.committer = Some(group.committer().pinned());
            step.auto_commit = self.config.enable_auto_commit;
            step.commit_patience = self.config.session_timeout;
        }
        self.state.clear();
        self.consumed.clear();
        let (listener, events) = (self.listener.clone(), self.events.clone());
        let leaving = tokio::spawn(async move {
            if let Membership::Classic(g) = &group {
                if let Some(joining) = &g.joining {
                    joining.abort();
                }
            }
            if let Some(pending) = pending {
                let _ = pending.await;
            }
            let finished = step.spawn(listener, events).await;
            let left = match &group {
                Membership::Classic(g) => g.member.lock().await.leave().await,
                Membership::Consumer(member) => member.leave().await,
            };
            let committed = match finished {
                Ok(finished) => finished.commit.unwrap_or(Ok(())),
                Err(e) => Err(Error::protocol("-", format!("revoking task failed: {e}"))),
            };
            committed.and(left)
        });
        leaving
            .await
            .map_err(|e| Error::protocol("-", format!("leaving task failed: {e}")))?
    }

    /// Follows changes to the cluster's shape, when the cache has seen one since the last
    /// look (an atomic read on every `recv` otherwise): resolves the subscription again,
    /// reports subscribed topics that are missing, and has the member rejoin where its
    /// assignment no longer covers what is there.
    pub(super) fn follow_topology(&mut self) {
        // On every recv: an atomic read, unless something changed.
        let changed = self.topology.has_changed().unwrap_or(false);
        if !std::mem::take(&mut self.look_again) && !changed {
            return;
        }
        self.topology.borrow_and_update();
        let (Some(subscription), Some(group)) = (self.subscription.as_mut(), self.group.as_ref())
        else {
            return;
        };
        let (topics, (unavailable, appeared), outdated) = self.cluster.with_metadata(|m| {
            let outdated = match group {
                Membership::Classic(g) => g
                    .assigned_from
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .as_ref()
                    .is_some_and(|from| partition_counts(m, from.keys()) != *from),
                Membership::Consumer(_) => false,
            };
            (
                subscription.resolve(m),
                subscription.unavailable(m),
                outdated,
            )
        });
        let listing = subscription.needs_listing();
        if topics != group.topics() {
            tracing::debug!(?topics, "the subscription now resolves to other topics");
            self.cluster.subscribe(&topics, listing);
            group.resubscribe(topics);
        }
        if let Membership::Classic(g) = group {
            // A leader whose assignment is out of date rejoins, as the Java client does; so
            // does any member whose own topic it reported missing has appeared, rather than
            // wait for the leader to notice.
            if outdated || !appeared.is_empty() {
                tracing::debug!(outdated, ?appeared, "the group's topics changed; rejoining");
                g.rejoin.rebalance();
            }
        }
        for (topic, error) in unavailable {
            tracing::warn!(%topic, %error, "subscribed topic not available");
            self.event(RebalanceEvent::TopicNotAvailable(topic));
            self.errors.push_back(error);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::TopicMetadata;
    use crate::error::KafkaCode;
    use std::time::Instant;

    fn metadata(topics: &[(&str, Option<i16>)], listing: &[&str]) -> Metadata {
        let mut m = Metadata::default();
        for (name, error) in topics {
            m.topics.insert(
                name.to_string(),
                TopicMetadata {
                    error: error.and_then(KafkaCode::from_code),
                    partitions: Vec::new(),
                    id: 0,
                    internal: false,
                    fetched_at: Instant::now(),
                    invalidated: false,
                },
            );
        }
        m.listing = Some(listing.iter().map(|t| t.to_string()).collect());
        m
    }

    #[test]
    fn names_and_regexes_resolve_against_the_listing() {
        let sub = Subscription::parse(&["orders", "^audit-", "orders", "^x$"]).unwrap();
        assert!(sub.needs_listing());
        let m = metadata(
            &[],
            &["audit-eu", "audit-us", "billing", "x", "xy", "pre-audit-1"],
        );
        assert_eq!(sub.resolve(&m), ["audit-eu", "audit-us", "orders", "x"]);
        // Names stay subscribed whether or not they exist; no listing, no regex matches.
        let plain = Subscription::parse(&["b", "a"]).unwrap();
        assert!(!plain.needs_listing());
        assert_eq!(plain.resolve(&Metadata::default()), ["a", "b"]);
    }

    #[test]
    fn bad_patterns_name_themselves() {
        let err = Subscription::parse(&["ok", "^audit-(["]).err().unwrap();
        match err {
            Error::Config(ConfigError::InvalidValue { key, value, .. }) => {
                assert_eq!(
                    (key.as_str(), value.as_str()),
                    ("subscription", "^audit-([")
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(Subscription::parse(&[""]).is_err());
    }

    #[test]
    fn a_missing_topic_is_reported_once_until_it_exists() {
        let mut sub = Subscription::parse(&["t", "u"]).unwrap();
        // Not asked about yet: nothing to say.
        let (report, appeared) = sub.unavailable(&Metadata::default());
        assert!(report.is_empty() && appeared.is_empty());
        let missing = metadata(&[("t", Some(3)), ("u", None)], &[]);
        let (report, appeared) = sub.unavailable(&missing);
        assert_eq!(report.len(), 1);
        assert!(
            matches!(&report[0], (t, Error::UnknownTopicOrPartition { topic, partition: None }) if t == "t" && topic == "t")
        );
        assert!(appeared.is_empty());
        assert_eq!(sub.unavailable(&missing).0.len(), 0, "once");
        // Being created (LEADER_NOT_AVAILABLE) is not news.
        assert_eq!(
            sub.unavailable(&metadata(&[("t", Some(5))], &[])).0.len(),
            0
        );
        let created = metadata(&[("t", None)], &[]);
        let (report, appeared) = sub.unavailable(&created);
        assert!(report.is_empty());
        assert_eq!(appeared, ["t"]);
        // Deleted again: reported again.
        assert_eq!(sub.unavailable(&missing).0.len(), 1);
        // Refused is reported like missing.
        let mut sub = Subscription::parse(&["secret"]).unwrap();
        let refused = metadata(&[("secret", Some(29))], &[]);
        let (report, _) = sub.unavailable(&refused);
        assert_eq!(report[0].1.kafka_code().map(|c| c.code()), Some(29));
    }
}
