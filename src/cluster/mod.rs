//! The cluster as the clients see it: the metadata cache (brokers, topics, partition leaders)
//! and the pool of broker connections, reconnecting with backoff.
//!
//! ```text
//!  Producer / Consumer / Admin
//!        │ leader(topic, p) · broker(id) · controller() · refresh_metadata(topics)
//!        ▼
//!  Cluster ── Metadata cache (RwLock) ── BrokerSlot per node id ─► Connection (reconnects)
//!                                      └ BrokerSlot per bootstrap address
//! ```

mod metadata;
mod offsets;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{MetadataRequest, MetadataResponse};

pub use metadata::{Metadata, TopicMetadata};
pub(crate) use offsets::{
    by_leader, by_topic, per_topic, topic_name, TopicPartition, EARLIEST, LATEST,
};

use crate::config::ClientConfig;
use crate::conn::{Backoff, Connection, ConnectionSettings};
use crate::error::{Error, KafkaCode};
use crate::protocol::codes;

/// The shared cluster view of one client. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Cluster {
    inner: Arc<Inner>,
}

struct Inner {
    settings: ConnectionSettings,
    bootstrap: Vec<Arc<BrokerSlot>>,
    brokers: Mutex<HashMap<i32, Arc<BrokerSlot>>>,
    metadata: RwLock<Metadata>,
    /// `metadata.max.age.ms`: cached topic metadata older than this is fetched again.
    metadata_max_age: Duration,
    /// One metadata refresh at a time.
    refreshing: tokio::sync::Mutex<()>,
}

/// One broker address and its (re)connection state.
struct BrokerSlot {
    addr: String,
    state: tokio::sync::Mutex<SlotState>,
}

struct SlotState {
    conn: Option<Connection>,
    backoff: Backoff,
}

impl BrokerSlot {
    fn new(addr: String, settings: &ConnectionSettings) -> Arc<Self> {
        Arc::new(BrokerSlot {
            addr,
            state: tokio::sync::Mutex::new(SlotState {
                conn: None,
                backoff: Backoff::new(settings.reconnect_backoff, settings.reconnect_backoff_max),
            }),
        })
    }

    /// The live connection, or a new one after the backoff delay. Callers wanting the same
    /// broker wait for one attempt rather than racing their own.
    async fn connection(&self, settings: &ConnectionSettings) -> Result<Connection, Error> {
        self.connection_fresh(settings).await.map(|(conn, _)| conn)
    }

    /// As [`BrokerSlot::connection`], and whether the connection was made by this call (so no
    /// request but the handshake has been answered on it yet).
    async fn connection_fresh(
        &self,
        settings: &ConnectionSettings,
    ) -> Result<(Connection, bool), Error> {
        let mut state = self.state.lock().await;
        if let Some(conn) = &state.conn {
            if !conn.is_closed() {
                return Ok((conn.clone(), false));
            }
        }
        state.conn = None;
        let delay = state.backoff.delay();
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        match Connection::connect(&self.addr, settings).await {
            Ok(conn) => {
                state.backoff.succeeded();
                state.conn = Some(conn.clone());
                Ok((conn, true))
            }
            Err(e) => {
                state.backoff.failed();
                tracing::debug!(broker = %self.addr, error = %e, "connect failed");
                Err(e)
            }
        }
    }

    /// A new connection failed at its first request: as far as backoff goes, connecting did
    /// not succeed, so the next attempt waits rather than hammering a broker that takes
    /// connections and then drops them.
    async fn closed_early(&self) {
        self.state.lock().await.backoff.failed();
    }
}

/// Errors that another broker or another attempt cannot cure: every broker of the cluster
/// would refuse the same credentials, certificates or configuration.
fn is_final(error: &Error) -> bool {
    matches!(
        error,
        Error::Authentication { .. } | Error::Tls { .. } | Error::Config(_)
    )
}

/// Errors of the connection rather than of the request: another broker may answer.
fn is_connection_failure(error: &Error) -> bool {
    matches!(
        error,
        Error::Io { .. } | Error::Disconnected { .. } | Error::Timeout { .. }
    )
}

/// What a PLAINTEXT client gets from a SASL listener: it answers ApiVersions, which a client
/// may send before authenticating, and closes the connection at the next request without a
/// word. A PLAINTEXT listener never does that, so seen twice in a row it is reported as what
/// it is, rather than as "connection closed".
fn sasl_listener_error(broker: &str) -> Error {
    Error::Authentication {
        broker: broker.to_owned(),
        mechanism: "none".to_owned(),
        message: "the broker answered ApiVersions, then closed the connection at the first \
                  request, twice: that is how a SASL listener treats a client that does not \
                  authenticate. security.protocol is PLAINTEXT; use SASL_PLAINTEXT with \
                  sasl.mechanism, sasl.username and sasl.password, or a PLAINTEXT listener"
            .to_owned(),
    }
}

impl Cluster {
    /// Checks the configuration and fetches the cluster's brokers from the bootstrap servers.
    pub async fn connect(config: &ClientConfig) -> Result<Cluster, Error> {
        let settings = ConnectionSettings::from_config(config)?;
        let bootstrap = config
            .common
            .bootstrap_servers
            .iter()
            .map(|addr| BrokerSlot::new(addr.clone(), &settings))
            .collect();
        let cluster = Cluster {
            inner: Arc::new(Inner {
                settings,
                bootstrap,
                brokers: Mutex::new(HashMap::new()),
                metadata: RwLock::new(Metadata::default()),
                metadata_max_age: config.common.metadata_max_age,
                refreshing: tokio::sync::Mutex::new(()),
            }),
        };
        cluster.refresh_metadata(&[]).await?;
        Ok(cluster)
    }

    /// A connection to any broker: a known broker first, then the bootstrap servers. An
    /// authentication failure ends the search at once: other brokers would refuse us too.
    pub async fn any_broker(&self) -> Result<Connection, Error> {
        let mut tried = Vec::new();
        let mut last = None;
        for slot in self.candidates() {
            match slot.connection(&self.inner.settings).await {
                Ok(conn) => return Ok(conn),
                Err(e) if is_final(&e) => return Err(e),
                Err(e) => {
                    tried.push(slot.addr.clone());
                    last = Some(e);
                }
            }
        }
        Err(Error::NoBrokerReachable {
            tried: tried.join(", "),
            last: Arc::new(last.unwrap_or(Error::Closed)),
        })
    }

    /// The brokers to ask when any will do: the known ones by node id, then the bootstrap
    /// servers.
    fn candidates(&self) -> Vec<Arc<BrokerSlot>> {
        let brokers = self.inner.brokers.lock().expect("brokers lock");
        let mut ids: Vec<_> = brokers.keys().copied().collect();
        ids.sort_unstable();
        ids.iter()
            .map(|id| brokers[id].clone())
            .chain(self.inner.bootstrap.iter().cloned())
            .collect()
    }

    /// A new connection of its own to `addr`, outside the pool: for work that must not share a
    /// socket, such as a group's JoinGroup (which the broker holds for a whole rebalance) and its
    /// heartbeats.
    pub async fn dedicated(&self, addr: &str) -> Result<Connection, Error> {
        Connection::connect(addr, &self.inner.settings).await
    }

    /// A connection to the broker with node id `id`, refreshing the metadata once when the
    /// broker is not known yet.
    pub async fn broker(&self, id: i32) -> Result<Connection, Error> {
        let slot = match self.slot(id) {
            Some(slot) => slot,
            None => {
                self.refresh_metadata(&[]).await?;
                self.slot(id).ok_or_else(|| Error::Broker {
                    api: "Metadata",
                    resource: format!("broker {id}"),
                    code: KafkaCode::from_code(codes::BROKER_NOT_AVAILABLE).expect("non-zero"),
                    message: Some("the broker is not in the cluster metadata".into()),
                })?
            }
        };
        slot.connection(&self.inner.settings).await
    }

    fn slot(&self, id: i32) -> Option<Arc<BrokerSlot>> {
        self.inner
            .brokers
            .lock()
            .expect("brokers lock")
            .get(&id)
            .cloned()
    }

    /// The node id of the leader of `topic[partition]`, fetching the topic's metadata when it is
    /// not cached.
    pub async fn leader_id(&self, topic: &str, partition: i32) -> Result<i32, Error> {
        let topic_meta = self.topic(topic).await?;
        let p = topic_meta
            .partitions
            .iter()
            .find(|p| p.id == partition)
            .ok_or_else(|| Error::UnknownTopicOrPartition(format!("{topic}[{partition}]")))?;
        if p.leader < 0 {
            return Err(Error::Broker {
                api: "Metadata",
                resource: format!("{topic}[{partition}]"),
                code: KafkaCode::from_code(codes::LEADER_NOT_AVAILABLE).expect("non-zero"),
                message: None,
            });
        }
        Ok(p.leader)
    }

    /// The metadata of `topic`, fetched when not cached or older than `metadata.max.age.ms`. A
    /// topic the cluster does not know is [`Error::UnknownTopicOrPartition`].
    pub async fn topic(&self, topic: &str) -> Result<TopicMetadata, Error> {
        let meta = match self.cached(topic) {
            Some(meta) if meta.error.is_none() && !meta.is_stale(self.inner.metadata_max_age) => {
                meta
            }
            _ => {
                self.refresh_metadata(&[topic]).await?;
                self.cached(topic)
                    .ok_or_else(|| Error::UnknownTopicOrPartition(topic.to_owned()))?
            }
        };
        match meta.error {
            None => Ok(meta),
            Some(code) => Err(topic_error(topic, code)),
        }
    }

    /// The partition ids of `topic`.
    pub async fn partition_ids(&self, topic: &str) -> Result<Vec<i32>, Error> {
        Ok(self
            .topic(topic)
            .await?
            .partitions
            .iter()
            .map(|p| p.id)
            .collect())
    }

    fn cached(&self, topic: &str) -> Option<TopicMetadata> {
        let metadata = self.inner.metadata.read().expect("metadata lock");
        metadata.topics.get(topic).cloned()
    }

    /// The controller, for admin requests. KRaft brokers forward them, so any broker will do
    /// where the metadata names none.
    pub async fn controller(&self) -> Result<Connection, Error> {
        let controller = self
            .inner
            .metadata
            .read()
            .expect("metadata lock")
            .controller_id;
        match controller {
            Some(id) => self.broker(id).await,
            None => self.any_broker().await,
        }
    }

    /// Marks cached metadata for `topic` out of date, so the next lookup asks the cluster. The
    /// partition count stays known meanwhile (see [`Cluster::partition_count`]).
    pub fn invalidate_topic(&self, topic: &str) {
        if let Some(meta) = self
            .inner
            .metadata
            .write()
            .expect("metadata lock")
            .topics
            .get_mut(topic)
        {
            meta.invalidated = true;
        }
    }

    /// How many partitions `topic` has: the last count the cluster gave, even when the rest of
    /// its metadata is out of date (a partition count only changes by an admin's hand), so that
    /// a producer keeps choosing partitions while the cluster is out of reach. Asks the
    /// cluster only for a topic never seen.
    pub async fn partition_count(&self, topic: &str) -> Result<usize, Error> {
        // On every keyed send: read the count under the lock rather than clone the metadata.
        let known = {
            let metadata = self.inner.metadata.read().expect("metadata lock");
            metadata
                .topics
                .get(topic)
                .filter(|meta| meta.error.is_none())
                .map(|meta| meta.partitions.len())
                .filter(|&n| n > 0)
        };
        match known {
            Some(n) => Ok(n),
            None => Ok(self.topic(topic).await?.partitions.len()),
        }
    }

    /// Fetches the brokers and the metadata of `topics` (none when empty) and merges them into
    /// the cache.
    pub async fn refresh_metadata(&self, topics: &[&str]) -> Result<(), Error> {
        self.metadata(Some(topics)).await.map(drop)
    }

    /// The cluster's whole answer about `topics` (every topic when `None`), merged into the
    /// cache too: for the admin client, which reports what the cache does not keep.
    pub async fn metadata(&self, topics: Option<&[&str]>) -> Result<MetadataResponse, Error> {
        let _one_at_a_time = self.inner.refreshing.lock().await;
        let response = self.fetch_metadata(topics).await?;
        let fresh = Metadata::from_response(&response);
        {
            let mut brokers = self.inner.brokers.lock().expect("brokers lock");
            for (id, addr) in &fresh.brokers {
                let stale = brokers.get(id).is_none_or(|slot| &slot.addr != addr);
                if stale {
                    brokers.insert(*id, BrokerSlot::new(addr.clone(), &self.inner.settings));
                }
            }
        }
        self.inner
            .metadata
            .write()
            .expect("metadata lock")
            .merge(fresh);
        Ok(response)
    }

    /// Asks one broker after another (see [`Cluster::candidates`]) for metadata, until one
    /// answers: a broker that takes the connection and then drops it is not the end of the
    /// search.
    ///
    /// While bootstrapping a PLAINTEXT client, a new connection that closes at its first request
    /// gets one more try, to tell a SASL listener (see [`sasl_listener_error`]) from a passing
    /// failure. Once the cluster has answered over PLAINTEXT that question is settled, and an
    /// early close is only a connection failure.
    async fn fetch_metadata(&self, topics: Option<&[&str]>) -> Result<MetadataResponse, Error> {
        let settings = &self.inner.settings;
        let may_be_sasl_listener =
            settings.sasl.is_none() && self.inner.brokers.lock().expect("brokers lock").is_empty();
        let mut tried = Vec::new();
        let mut last = None;
        for slot in self.candidates() {
            let mut early_closes = 0;
            let error = loop {
                let (conn, fresh) = match slot.connection_fresh(settings).await {
                    Ok(connected) => connected,
                    Err(e) => break e,
                };
                let e = match metadata_request(&conn, topics).await {
                    Ok(response) => return Ok(response),
                    Err(e) => e,
                };
                if !(fresh && matches!(e, Error::Io { .. })) {
                    break e;
                }
                slot.closed_early().await;
                early_closes += 1;
                match (may_be_sasl_listener, early_closes) {
                    (false, _) => break e,
                    (true, 1) => {
                        tracing::debug!(broker = %slot.addr, error = %e, "closed at the first request; trying once more");
                    }
                    (true, _) => break sasl_listener_error(&slot.addr),
                }
            };
            if is_final(&error) || !is_connection_failure(&error) {
                return Err(error);
            }
            tried.push(slot.addr.clone());
            last = Some(error);
        }
        Err(Error::NoBrokerReachable {
            tried: tried.join(", "),
            last: Arc::new(last.unwrap_or(Error::Closed)),
        })
    }
}

/// One Metadata request for `topics`: the brokers only when empty, every topic when `None`.
async fn metadata_request(
    conn: &Connection,
    topics: Option<&[&str]>,
) -> Result<MetadataResponse, Error> {
    // An empty list asks for brokers only (from v1; v0 answers with every topic, which the merge
    // in refresh_metadata takes in just as well). v0 also reads an empty list as every topic.
    let mut request = MetadataRequest::default().with_topics(topics.map(|topics| {
        topics
            .iter()
            .map(|t| MetadataRequestTopic::default().with_name(Some(topic_name(t))))
            .collect()
    }));
    let version = conn.version_of::<MetadataRequest>()?;
    if version == 0 && request.topics.is_none() {
        request.topics = Some(Vec::new());
    }
    if version >= 4 {
        // Before v4 the field does not exist and brokers follow auto.create.topics.enable.
        request.allow_auto_topic_creation = false;
    }
    conn.request_at(&request, version, conn.request_timeout())
        .await
}

/// The error a Metadata answer gives for `topic`: an unknown topic is its own variant.
pub(crate) fn topic_error(topic: &str, code: KafkaCode) -> Error {
    if code.code() == codes::UNKNOWN_TOPIC_OR_PARTITION {
        return Error::UnknownTopicOrPartition(topic.to_owned());
    }
    Error::Broker {
        api: "Metadata",
        resource: topic.to_owned(),
        code,
        message: None,
    }
}
