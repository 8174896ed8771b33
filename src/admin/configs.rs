//! Topic and broker configurations: DescribeConfigs reads them, IncrementalAlterConfigs
//! changes single entries (`kafka-configs --describe` and `--alter`). A broker's own entries
//! are asked of that broker, which alone knows its static ones; topics and the defaults every
//! broker shares, of any broker (KRaft brokers forward changes to the controller). Each
//! resource is asked on its own: one out of reach fails alone.

use std::fmt;

use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::describe_configs_response::DescribeConfigsResult;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::{DescribeConfigsRequest, IncrementalAlterConfigsRequest};
use kafka_protocol::protocol::StrBytes;

use super::{item_answer, missing_answer, Admin};
use crate::conn::Connection;
use crate::error::{Error, Resource};

/// What a configuration belongs to (the Java client's `ConfigResource`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ConfigResource {
    /// A topic's configuration: the entries set on it, and the broker defaults it takes.
    Topic(String),
    /// One broker's configuration, by node id: its `server.properties` and what was set on
    /// it while it runs.
    Broker(i32),
    /// The defaults every broker takes unless it has its own value (`kafka-configs
    /// --entity-type brokers --entity-default`).
    BrokerDefault,
    /// One broker's log4j loggers and their levels, by node id.
    BrokerLogger(i32),
    /// A group's configuration (Kafka 4.0 and later): for a share group,
    /// `share.auto.offset.reset` (where a new group starts: `latest` unless set),
    /// `share.record.lock.duration.ms`, `share.isolation.level` and the like.
    Group(String),
}

impl ConfigResource {
    /// The resource type and name that DescribeConfigs and IncrementalAlterConfigs carry.
    fn wire(&self) -> (i8, String) {
        match self {
            ConfigResource::Topic(topic) => (TOPIC, topic.clone()),
            ConfigResource::Broker(id) => (BROKER, id.to_string()),
            ConfigResource::BrokerDefault => (BROKER, String::new()),
            ConfigResource::BrokerLogger(id) => (BROKER_LOGGER, id.to_string()),
            ConfigResource::Group(group) => (GROUP, group.clone()),
        }
    }

    /// The broker that must answer for it, where one must.
    fn broker(&self) -> Option<i32> {
        match self {
            ConfigResource::Broker(id) | ConfigResource::BrokerLogger(id) => Some(*id),
            ConfigResource::Topic(_) | ConfigResource::BrokerDefault | ConfigResource::Group(_) => {
                None
            }
        }
    }

    /// How an error about it names it.
    fn resource(&self) -> Resource {
        match self {
            ConfigResource::Topic(topic) => Resource::Topic(topic.clone()),
            ConfigResource::Group(group) => Resource::Group(group.clone()),
            other => Resource::Broker(other.to_string()),
        }
    }
}

impl fmt::Display for ConfigResource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigResource::Topic(topic) => write!(f, "topic {topic}"),
            ConfigResource::Broker(id) => write!(f, "broker {id}"),
            ConfigResource::BrokerDefault => f.write_str("the broker defaults"),
            ConfigResource::BrokerLogger(id) => write!(f, "broker {id}'s loggers"),
            ConfigResource::Group(group) => write!(f, "group {group}"),
        }
    }
}

const TOPIC: i8 = 2;
const BROKER: i8 = 4;
const BROKER_LOGGER: i8 = 8;
const GROUP: i8 = 32;

/// Where a configuration entry's value comes from (the Java client's `ConfigEntry.ConfigSource`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ConfigSource {
    /// Set on the topic (`kafka-configs --alter`, or at creation).
    DynamicTopic,
    /// Set on this broker while it runs.
    DynamicBroker,
    /// Set as the default of every broker while they run.
    DynamicDefaultBroker,
    /// This broker's `server.properties`.
    StaticBroker,
    /// Kafka's own default.
    Default,
    /// A broker logger's level, set while it runs.
    DynamicBrokerLogger,
    /// Anything else the broker names, by its code (client metrics, group configs, ...).
    Other(i8),
}

impl ConfigSource {
    fn from_code(code: i8) -> ConfigSource {
        match code {
            1 => ConfigSource::DynamicTopic,
            2 => ConfigSource::DynamicBroker,
            3 => ConfigSource::DynamicDefaultBroker,
            4 => ConfigSource::StaticBroker,
            5 => ConfigSource::Default,
            6 => ConfigSource::DynamicBrokerLogger,
            other => ConfigSource::Other(other),
        }
    }
}

/// One entry of a configuration, as [`Admin::describe_configs`] reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConfigEntry {
    /// Its name, e.g. `retention.ms`.
    pub name: String,
    /// Its value; `None` for a sensitive entry (a password), which brokers never send, and for
    /// one without a value.
    pub value: Option<String>,
    /// Where the value comes from.
    pub source: ConfigSource,
    /// Whether it cannot be changed while the broker runs.
    pub read_only: bool,
    /// Whether it is a secret, whose value is never sent.
    pub sensitive: bool,
}

impl ConfigEntry {
    /// Whether the value is Kafka's own default, set nowhere.
    pub fn is_default(&self) -> bool {
        self.source == ConfigSource::Default
    }
}

/// One change to one configuration entry, for [`Admin::incremental_alter_configs`] (the Java
/// client's `AlterConfigOp`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AlterConfig {
    /// Sets the entry to this value.
    Set(String, String),
    /// Removes the entry: it falls back to the broker's or Kafka's default.
    Delete(String),
    /// Adds this value to a list entry (`cleanup.policy`, say), unless it is there.
    Append(String, String),
    /// Removes this value from a list entry.
    Subtract(String, String),
}

impl AlterConfig {
    fn wire(&self) -> AlterableConfig {
        let (name, operation, value) = match self {
            AlterConfig::Set(name, value) => (name, 0, Some(value)),
            AlterConfig::Delete(name) => (name, 1, None),
            AlterConfig::Append(name, value) => (name, 2, Some(value)),
            AlterConfig::Subtract(name, value) => (name, 3, Some(value)),
        };
        AlterableConfig::default()
            .with_name(StrBytes::from_string(name.clone()))
            .with_config_operation(operation)
            .with_value(value.map(|v| StrBytes::from_string(v.clone())))
    }
}

/// What became of one resource of a configuration call: the resource, and its result.
pub type ConfigOutcome<T = ()> = (ConfigResource, Result<T, Error>);

impl Admin {
    /// The configuration of each resource: every entry, with its value and where the value
    /// comes from. One outcome per resource, in the order asked: a topic the cluster does not
    /// know is UNKNOWN_TOPIC_OR_PARTITION.
    ///
    /// Cancel-safe: it only reads.
    ///
    /// ```no_run
    /// # async fn demo(admin: purekafka::Admin) -> Result<(), purekafka::Error> {
    /// use purekafka::ConfigResource;
    /// let described = admin.describe_configs(&[ConfigResource::Topic("test".into())]).await?;
    /// for entry in described[0].1.as_ref().map_err(Clone::clone)? {
    ///     if !entry.is_default() {
    ///         println!("{} = {:?} ({:?})", entry.name, entry.value, entry.source);
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn describe_configs(
        &self,
        resources: &[ConfigResource],
    ) -> Result<Vec<ConfigOutcome<Vec<ConfigEntry>>>, Error> {
        let mut outcomes = Vec::with_capacity(resources.len());
        for resource in resources {
            let (kind, name) = resource.wire();
            let request = DescribeConfigsRequest::default().with_resources(vec![
                DescribeConfigsResource::default()
                    .with_resource_type(kind)
                    .with_resource_name(StrBytes::from_string(name.clone()))
                    .with_configuration_keys(None),
            ]);
            // A broker out of reach fails its own item, not the others.
            let result = async {
                let conn = self.answering(resource).await?;
                let (response, _) = conn.request(&request).await?;
                let answer = response
                    .results
                    .into_iter()
                    .find(|r| r.resource_type == kind && r.resource_name.as_str() == name);
                match answer {
                    Some(answer) => entries(resource, answer),
                    None => Err(missing_answer("DescribeConfigs", &resource.resource())),
                }
            }
            .await;
            outcomes.push((resource.clone(), result));
        }
        Ok(outcomes)
    }

    /// Changes entries of each resource's configuration: each [`AlterConfig`] sets, deletes,
    /// appends to or subtracts from one entry, and the entries not named keep their values
    /// (unlike the older AlterConfigs, which replaced the whole configuration). One outcome per
    /// resource, in the order asked: a name the broker does not know is INVALID_CONFIG, a
    /// read-only entry INVALID_REQUEST (with the broker's message). Kafka 2.3 and later.
    ///
    /// Cancel-safe for the client; dropped after its request went out, the change may still
    /// be made (see [`Admin`]).
    pub async fn incremental_alter_configs(
        &self,
        changes: &[(ConfigResource, Vec<AlterConfig>)],
    ) -> Result<Vec<ConfigOutcome>, Error> {
        let mut outcomes = Vec::with_capacity(changes.len());
        for (resource, alter) in changes {
            let (kind, name) = resource.wire();
            let request = IncrementalAlterConfigsRequest::default().with_resources(vec![
                AlterConfigsResource::default()
                    .with_resource_type(kind)
                    .with_resource_name(StrBytes::from_string(name.clone()))
                    .with_configs(alter.iter().map(AlterConfig::wire).collect()),
            ]);
            let result = async {
                let conn = self.answering(resource).await?;
                let (response, _) = conn.request(&request).await?;
                let answer = response
                    .responses
                    .iter()
                    .find(|r| r.resource_type == kind && r.resource_name.as_str() == name)
                    .map(|r| (r.error_code, r.error_message.as_ref()));
                item_answer("IncrementalAlterConfigs", &resource.resource(), answer)
            }
            .await;
            outcomes.push((resource.clone(), result));
        }
        Ok(outcomes)
    }

    /// The connection to ask about `resource`: its broker's, or any broker's.
    async fn answering(&self, resource: &ConfigResource) -> Result<Connection, Error> {
        match resource.broker() {
            Some(id) => self.cluster.broker(id).await,
            None => self.cluster.any_broker().await,
        }
    }
}

/// The entries of one DescribeConfigs answer, or its error.
fn entries(
    resource: &ConfigResource,
    answer: DescribeConfigsResult,
) -> Result<Vec<ConfigEntry>, Error> {
    let code = (answer.error_code, answer.error_message.as_ref());
    item_answer("DescribeConfigs", &resource.resource(), Some(code))?;
    let mut entries: Vec<ConfigEntry> = answer
        .configs
        .into_iter()
        .map(|c| ConfigEntry {
            name: c.name.to_string(),
            value: c.value.map(|v| v.to_string()),
            source: ConfigSource::from_code(c.config_source),
            read_only: c.read_only,
            sensitive: c.is_sensitive,
        })
        .collect();
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(entries)
}
