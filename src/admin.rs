//! Administration: creating and deleting topics. Requests go to the controller (KRaft brokers
//! forward them there from any broker).

use std::sync::Arc;
use std::time::{Duration, Instant};

use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::{CreateTopicsRequest, DeleteTopicsRequest, TopicName};
use kafka_protocol::protocol::StrBytes;

use crate::cluster::{Cluster, TopicPartition, LATEST};
use crate::config::ClientConfig;
use crate::consumer::coordinator::Coordinator;
use crate::error::{Error, KafkaCode};
use crate::protocol::codes;

/// How often to look at the metadata while waiting for a topic to appear or go.
const POLL: Duration = Duration::from_millis(50);
/// The pause between asks for a group coordinator still being elected.
const RETRY: Duration = Duration::from_millis(100);

/// Builds an [`Admin`] client.
#[derive(Debug)]
pub struct AdminBuilder {
    config: ClientConfig,
}

impl AdminBuilder {
    /// Checks the configuration and connects to the cluster.
    pub async fn build(self) -> Result<Admin, Error> {
        Ok(Admin {
            cluster: Cluster::connect(&self.config).await?,
            timeout: self.config.common.request_timeout,
        })
    }
}

/// An admin client.
///
/// ```no_run
/// # async fn demo() -> Result<(), purekafka::Error> {
/// use purekafka::{Admin, ClientConfig};
/// let admin = Admin::builder(ClientConfig::new().bootstrap_servers(["127.0.0.1:9092"])).build().await?;
/// admin.create_topic("test", 1, 1).await?;
/// admin.delete_topic("test").await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Admin {
    cluster: Cluster,
    timeout: Duration,
}

impl Admin {
    /// A builder for an admin client with this configuration.
    pub fn builder(config: ClientConfig) -> AdminBuilder {
        AdminBuilder { config }
    }

    /// Creates `topic` and waits until every partition has a leader, so the topic can be used
    /// at once. A topic that exists already is [`Error::Broker`] with TOPIC_ALREADY_EXISTS
    /// (see [`Error::kafka_code`]).
    pub async fn create_topic(
        &self,
        topic: &str,
        partitions: i32,
        replication_factor: i16,
    ) -> Result<(), Error> {
        let conn = self.cluster.controller().await?;
        let request = CreateTopicsRequest::default()
            .with_timeout_ms(self.timeout_ms())
            .with_topics(vec![CreatableTopic::default()
                .with_name(TopicName(StrBytes::from_string(topic.to_owned())))
                .with_num_partitions(partitions)
                .with_replication_factor(replication_factor)]);
        let (response, _) = conn.request(&request).await?;
        for t in &response.topics {
            if let Some(code) = KafkaCode::from_code(t.error_code) {
                return Err(Error::Broker {
                    api: "CreateTopics",
                    resource: topic.to_owned(),
                    code,
                    message: t.error_message.as_ref().map(|m| m.to_string()),
                });
            }
        }
        self.wait_for(topic, true).await
    }

    /// Creates `topic` unless it exists; returns whether it was created.
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
                self.wait_for(topic, true).await?;
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// Deletes `topic` and waits until the metadata no longer lists it.
    pub async fn delete_topic(&self, topic: &str) -> Result<(), Error> {
        let conn = self.cluster.controller().await?;
        let version = conn.version_of::<DeleteTopicsRequest>()?;
        let name = TopicName(StrBytes::from_string(topic.to_owned()));
        let mut request = DeleteTopicsRequest::default().with_timeout_ms(self.timeout_ms());
        // v6 names topics in `topics` (by name or id); earlier versions in `topic_names`.
        if version >= 6 {
            request.topics = vec![DeleteTopicState::default().with_name(Some(name))];
        } else {
            request.topic_names = vec![name];
        }
        let response = conn.request_at(&request, version, self.timeout).await?;
        for t in &response.responses {
            if let Some(code) = KafkaCode::from_code(t.error_code) {
                return Err(Error::Broker {
                    api: "DeleteTopics",
                    resource: topic.to_owned(),
                    code,
                    message: t.error_message.as_ref().map(|m| m.to_string()),
                });
            }
        }
        self.wait_for(topic, false).await
    }

    /// Waits until `topic` is usable (`present`: every partition has a leader that answers for
    /// it) or gone from the metadata. The metadata can name a leader a moment before that broker
    /// serves the partition, so readiness is checked by asking each leader for its log end.
    async fn wait_for(&self, topic: &str, present: bool) -> Result<(), Error> {
        let deadline = Instant::now() + self.timeout;
        loop {
            self.cluster.invalidate_topic(topic);
            let state = match self.cluster.topic(topic).await {
                Ok(meta) if meta.partitions.iter().all(|p| p.leader >= 0) => {
                    let partitions: Vec<TopicPartition> = meta
                        .partitions
                        .iter()
                        .map(|p| (Arc::from(topic), p.id))
                        .collect();
                    match self.cluster.list_offsets(&partitions, LATEST, 0).await {
                        Ok(_) => Some(!partitions.is_empty()),
                        Err(e) if e.is_retriable() => Some(false),
                        Err(e) => return Err(e),
                    }
                }
                Ok(_) => Some(false),
                Err(Error::UnknownTopicOrPartition(_)) => None,
                Err(e) if e.is_retriable() => Some(false),
                Err(e) => return Err(e),
            };
            let done = match state {
                Some(ready) => present && ready,
                None => !present,
            };
            if done {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(Error::Timeout {
                    what: format!(
                        "topic {topic} to be {}",
                        if present { "ready" } else { "deleted" }
                    ),
                    after_ms: self.timeout.as_millis() as u64,
                });
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// The offset `group` has committed for each partition of `topic` (`None` where it has
    /// none): where a member would start reading.
    pub async fn committed_offsets(
        &self,
        group: &str,
        topic: &str,
    ) -> Result<Vec<(i32, Option<i64>)>, Error> {
        let partitions: Vec<i32> = self
            .cluster
            .topic(topic)
            .await?
            .partitions
            .iter()
            .map(|p| p.id)
            .collect();
        let mut coordinator =
            Coordinator::new(self.cluster.clone(), group.to_owned(), self.timeout, RETRY);
        let committed = coordinator
            .committed(&vec![(topic.to_owned(), partitions.clone())])
            .await?;
        Ok(partitions
            .into_iter()
            .map(|p| (p, committed.get(&(topic.to_owned(), p)).copied().flatten()))
            .collect())
    }

    /// The leader's broker id for each partition of `topic` (-1 where none is elected), asked of
    /// the cluster afresh rather than taken from the metadata cache.
    pub async fn partition_leaders(&self, topic: &str) -> Result<Vec<(i32, i32)>, Error> {
        self.cluster.invalidate_topic(topic);
        let meta = self.cluster.topic(topic).await?;
        Ok(meta.partitions.iter().map(|p| (p.id, p.leader)).collect())
    }

    /// The version of each API purekafka uses that it negotiated with one broker of the cluster
    /// (`None` where they share none), in the order of [`crate::protocol::versions::OURS`].
    pub async fn negotiated_versions(&self) -> Result<Vec<(&'static str, Option<i16>)>, Error> {
        Ok(self.cluster.any_broker().await?.versions().negotiated())
    }

    fn timeout_ms(&self) -> i32 {
        self.timeout.as_millis().min(i32::MAX as u128) as i32
    }
}
