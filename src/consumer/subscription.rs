//! What a group member is subscribed to, and how it follows the cluster: topic names and
//! regexes (a name starting with `^`, librdkafka's rule), resolved against the metadata each
//! time the cluster's shape changes, and subscribed topics that do not exist reported once.
//!
//! ```text
//!  subscribe(["orders", "^audit-.*"]) ─► Subscription ─ resolve(metadata) ─► ["audit-eu", "orders"]
//!                                                           │   (again on every change of shape)
//!                                                           ▼
//!  member: JoinGroup metadata (classic) · subscribed_topic_names (KIP-848)
//! ```

use std::collections::BTreeSet;

use crate::cluster::{topic_error, Metadata};
use crate::error::{ConfigError, Error};

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
            matches!(&report[0], (t, Error::UnknownTopicOrPartition(n)) if t == "t" && n == "t")
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
