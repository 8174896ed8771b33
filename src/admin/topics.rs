//! Topics: create, delete, list and describe them, and add partitions. Each call that names
//! several topics answers for each one, in the order asked.

use base64::Engine as _;
use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::metadata_response::MetadataResponseTopic;
use kafka_protocol::messages::{CreatePartitionsRequest, CreateTopicsRequest, DeleteTopicsRequest};
use kafka_protocol::protocol::StrBytes;

use super::{item_answer, missing_answer, Admin, Outcome};
use crate::cluster::{topic_error, topic_name};
use crate::error::{Error, KafkaCode, Resource};
use crate::protocol::codes;

/// A topic to create.
///
/// ```
/// use purekafka::NewTopic;
/// let topic = NewTopic::new("orders", 6, 3).config("retention.ms", "86400000");
/// assert_eq!(topic.configs, [("retention.ms".to_owned(), "86400000".to_owned())]);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NewTopic {
    /// The topic's name.
    pub name: String,
    /// Its partitions; -1 takes the broker's `num.partitions`.
    pub partitions: i32,
    /// Copies of each partition; -1 takes the broker's `default.replication.factor`.
    pub replication_factor: i16,
    /// Topic configs (`cleanup.policy`, `retention.ms`, …), set at creation.
    pub configs: Vec<(String, String)>,
}

impl NewTopic {
    /// A topic of `partitions` partitions, each with `replication_factor` copies.
    pub fn new(name: impl Into<String>, partitions: i32, replication_factor: i16) -> NewTopic {
        NewTopic {
            name: name.into(),
            partitions,
            replication_factor,
            configs: Vec::new(),
        }
    }

    /// Adds a topic config.
    pub fn config(mut self, key: impl Into<String>, value: impl Into<String>) -> NewTopic {
        self.configs.push((key.into(), value.into()));
        self
    }
}

/// A topic of the cluster, as [`Admin::list_topics`] lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TopicListing {
    /// The topic's name.
    pub name: String,
    /// Its id as Kafka's tools print it (base64), where the broker has ids (Kafka 2.8 and later).
    pub topic_id: Option<String>,
    /// True for the cluster's own topics, such as `__consumer_offsets`.
    pub internal: bool,
    /// How many partitions it has.
    pub partitions: usize,
}

/// A topic and where its partitions are, as [`Admin::describe_topics`] finds them.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TopicDescription {
    /// The topic's name.
    pub name: String,
    /// Its id as Kafka's tools print it (base64), where the broker has ids.
    pub topic_id: Option<String>,
    /// True for the cluster's own topics.
    pub internal: bool,
    /// Its partitions, by id.
    pub partitions: Vec<PartitionDescription>,
}

/// One partition of a [`TopicDescription`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PartitionDescription {
    /// The partition id.
    pub id: i32,
    /// The leader's broker id, or `None` while there is none.
    pub leader: Option<i32>,
    /// The brokers holding a copy, the preferred leader first.
    pub replicas: Vec<i32>,
    /// The copies in sync with the leader.
    pub isr: Vec<i32>,
    /// Copies on brokers that are offline.
    pub offline_replicas: Vec<i32>,
}

impl Admin {
    /// Creates `topics` and waits until each created one can be used (every partition has a
    /// leader that answers). One outcome per topic, in order: a topic that exists already is
    /// [`Error::Broker`] with TOPIC_ALREADY_EXISTS. The outer error is for the request as a
    /// whole (no broker reachable, say).
    ///
    /// Cancel-safe for the client; dropped after its request went out, the change may still
    /// be made (see [`Admin`]).
    pub async fn create_topics(&self, topics: &[NewTopic]) -> Result<Vec<Outcome>, Error> {
        let conn = self.cluster.controller().await?;
        let request = CreateTopicsRequest::default()
            .with_timeout_ms(self.timeout_ms())
            .with_topics(
                topics
                    .iter()
                    .map(|t| {
                        CreatableTopic::default()
                            .with_name(topic_name(&t.name))
                            .with_num_partitions(t.partitions)
                            .with_replication_factor(t.replication_factor)
                            .with_configs(
                                t.configs
                                    .iter()
                                    .map(|(k, v)| {
                                        CreatableTopicConfig::default()
                                            .with_name(StrBytes::from_string(k.clone()))
                                            .with_value(Some(StrBytes::from_string(v.clone())))
                                    })
                                    .collect(),
                            )
                    })
                    .collect(),
            );
        let (response, _) = conn.request(&request).await?;
        let mut outcomes = Vec::with_capacity(topics.len());
        for topic in topics {
            let answer = response.topics.iter().find(|t| t.name.0 == *topic.name);
            let answer = answer.map(|t| (t.error_code, t.error_message.as_ref()));
            let result =
                match item_answer("CreateTopics", &Resource::Topic(topic.name.clone()), answer) {
                    Ok(()) => self.wait_for(&topic.name, Some(0)).await,
                    failed => failed,
                };
            outcomes.push((topic.name.clone(), result));
        }
        Ok(outcomes)
    }

    /// Deletes `topics` and waits until the metadata no longer lists each deleted one. One
    /// outcome per topic: an unknown one is UNKNOWN_TOPIC_OR_PARTITION.
    ///
    /// Cancel-safe for the client; dropped after its request went out, the change may still
    /// be made (see [`Admin`]).
    pub async fn delete_topics(&self, topics: &[&str]) -> Result<Vec<Outcome>, Error> {
        let conn = self.cluster.controller().await?;
        let version = conn.version_of::<DeleteTopicsRequest>()?;
        let mut request = DeleteTopicsRequest::default().with_timeout_ms(self.timeout_ms());
        // v6 names topics in `topics` (by name or id); earlier versions in `topic_names`.
        if version >= 6 {
            request.topics = topics
                .iter()
                .map(|t| DeleteTopicState::default().with_name(Some(topic_name(t))))
                .collect();
        } else {
            request.topic_names = topics.iter().map(|t| topic_name(t)).collect();
        }
        let response = conn.request_at(&request, version, self.timeout).await?;
        let mut outcomes = Vec::with_capacity(topics.len());
        for &topic in topics {
            let answer = response
                .responses
                .iter()
                .find(|t| t.name.as_ref().is_some_and(|n| n.0 == *topic))
                .map(|t| (t.error_code, t.error_message.as_ref()));
            let result =
                match item_answer("DeleteTopics", &Resource::Topic(topic.to_string()), answer) {
                    Ok(()) => self.wait_for(topic, None).await,
                    failed => failed,
                };
            outcomes.push((topic.to_owned(), result));
        }
        Ok(outcomes)
    }

    /// Every topic of the cluster, internal ones included (and marked), sorted by name.
    ///
    /// Cancel-safe: it only reads.
    pub async fn list_topics(&self) -> Result<Vec<TopicListing>, Error> {
        let response = self.cluster.metadata(None).await?;
        let mut topics: Vec<TopicListing> = response
            .topics
            .iter()
            .filter(|t| t.error_code == 0)
            .filter_map(|t| {
                Some(TopicListing {
                    name: t.name.as_ref()?.0.to_string(),
                    topic_id: topic_id(t),
                    internal: t.is_internal,
                    partitions: t.partitions.len(),
                })
            })
            .collect();
        topics.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(topics)
    }

    /// Each of `topics` with its partitions' leaders and replicas, asked of the cluster afresh.
    /// One outcome per topic: an unknown one is [`Error::UnknownTopicOrPartition`].
    ///
    /// Cancel-safe: it only reads.
    pub async fn describe_topics(
        &self,
        topics: &[&str],
    ) -> Result<Vec<(String, Result<TopicDescription, Error>)>, Error> {
        let response = self.cluster.metadata(Some(topics)).await?;
        Ok(topics
            .iter()
            .map(|&topic| {
                let answer = response
                    .topics
                    .iter()
                    .find(|t| t.name.as_ref().is_some_and(|n| n.0 == *topic));
                let result = match answer {
                    None => Err(missing_answer(
                        "Metadata",
                        &Resource::Topic(topic.to_string()),
                    )),
                    Some(t) => match KafkaCode::from_code(t.error_code) {
                        Some(code) => Err(topic_error(topic, code)),
                        None => Ok(describe(topic, t)),
                    },
                };
                (topic.to_owned(), result)
            })
            .collect())
    }

    /// Grows each topic to the partition count given (`(topic, new total)`) and waits until the
    /// metadata shows it. One outcome per topic: a count not above the current one is
    /// INVALID_PARTITIONS.
    ///
    /// Cancel-safe for the client; dropped after its request went out, the change may still
    /// be made (see [`Admin`]).
    pub async fn create_partitions(&self, topics: &[(&str, i32)]) -> Result<Vec<Outcome>, Error> {
        let conn = self.cluster.controller().await?;
        let request = CreatePartitionsRequest::default()
            .with_timeout_ms(self.timeout_ms())
            .with_topics(
                topics
                    .iter()
                    .map(|&(topic, count)| {
                        // No assignments (null): the controller places the new partitions.
                        CreatePartitionsTopic::default()
                            .with_name(topic_name(topic))
                            .with_count(count)
                            .with_assignments(None)
                    })
                    .collect(),
            );
        let (response, _) = conn.request(&request).await?;
        let mut outcomes = Vec::with_capacity(topics.len());
        for &(topic, count) in topics {
            let answer = response.results.iter().find(|r| r.name.0 == *topic);
            let answer = answer.map(|r| (r.error_code, r.error_message.as_ref()));
            let result = match item_answer(
                "CreatePartitions",
                &Resource::Topic(topic.to_string()),
                answer,
            ) {
                Ok(()) => self.wait_for(topic, Some(count as usize)).await,
                failed => failed,
            };
            outcomes.push((topic.to_owned(), result));
        }
        Ok(outcomes)
    }

    /// Creates `topic` and waits until every partition has a leader, so the topic can be used
    /// at once. A topic that exists already is [`Error::Broker`] with TOPIC_ALREADY_EXISTS
    /// (see [`Error::kafka_code`]).
    ///
    /// Cancel-safe for the client; dropped after its request went out, the change may still
    /// be made (see [`Admin`]).
    pub async fn create_topic(
        &self,
        topic: &str,
        partitions: i32,
        replication_factor: i16,
    ) -> Result<(), Error> {
        let new = NewTopic::new(topic, partitions, replication_factor);
        only(self.create_topics(&[new]).await?)
    }

    /// Creates `topic` unless it exists; returns whether it was created.
    ///
    /// Cancel-safe for the client; dropped after its request went out, the change may still
    /// be made (see [`Admin`]).
    pub async fn create_topic_if_missing(
        &self,
        topic: &str,
        partitions: i32,
        replication_factor: i16,
    ) -> Result<bool, Error> {
        match self
            .create_topic(topic, partitions, replication_factor)
            .await
        {
            Ok(()) => Ok(true),
            Err(e)
                if e.kafka_code()
                    .is_some_and(|c| c.code() == codes::TOPIC_ALREADY_EXISTS) =>
            {
                self.wait_for(topic, Some(0)).await?;
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// Deletes `topic` and waits until the metadata no longer lists it.
    ///
    /// Cancel-safe for the client; dropped after its request went out, the change may still
    /// be made (see [`Admin`]).
    pub async fn delete_topic(&self, topic: &str) -> Result<(), Error> {
        only(self.delete_topics(&[topic]).await?)
    }
}

/// The one outcome of a call about one item (each call answers once per item asked).
fn only(outcomes: Vec<Outcome>) -> Result<(), Error> {
    let (_, result) = outcomes.into_iter().next().expect("one outcome per item");
    result
}

fn topic_id(t: &MetadataResponseTopic) -> Option<String> {
    let bytes = t.topic_id.as_bytes();
    (*bytes != [0; 16]).then(|| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

fn describe(topic: &str, t: &MetadataResponseTopic) -> TopicDescription {
    let mut partitions: Vec<PartitionDescription> = t
        .partitions
        .iter()
        .map(|p| PartitionDescription {
            id: p.partition_index,
            leader: (p.leader_id.0 >= 0).then_some(p.leader_id.0),
            replicas: p.replica_nodes.iter().map(|b| b.0).collect(),
            isr: p.isr_nodes.iter().map(|b| b.0).collect(),
            offline_replicas: p.offline_replicas.iter().map(|b| b.0).collect(),
        })
        .collect();
    partitions.sort_by_key(|p| p.id);
    TopicDescription {
        name: topic.to_owned(),
        topic_id: topic_id(t),
        internal: t.is_internal,
        partitions,
    }
}
