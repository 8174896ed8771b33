//! The cluster as the clients see it: the metadata cache (brokers, topics, partition leaders),
//! kept current ([`refresh`]), and the pool of broker connections, reconnecting with backoff
//! ([`brokers`]).
//!
//! ```text
//!  Producer / Consumer / Admin
//!        │ leader_id(topic, p) · topic(t) · producing_to(t, p) · broker(id) · refresh(topics)
//!        ▼
//!  Cluster ── Metadata cache (RwLock) ◄── refresh queue ◄── keeper task (interval, unsettled)
//!        │                                           shape changes ─► topology_changes()
//!        └── BrokerSlot per node id / per bootstrap address ─► Connection (reconnects)
//! ```

mod brokers;
mod events;
mod metadata;
mod offsets;
mod refresh;
mod stats;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use kafka_protocol::messages::MetadataResponse;
use tokio::sync::watch;
use tokio::time::Instant;

pub use metadata::{Metadata, TopicMetadata};
pub(crate) use offsets::{
    by_leader, by_topic, per_topic, topic_name, ByLeader, TopicPartition, EARLIEST, LATEST,
};

use crate::config::ClientConfig;
use crate::conn::{Connection, ConnectionSettings};
use crate::error::{Error, KafkaCode, Resource};
use crate::protocol::codes;
use brokers::{is_final, BrokerSlot};
use events::Reach;
pub use events::{ClientEvent, ClientEvents};
use refresh::{Cadence, Refresher};

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
    /// Counts the changes to the cluster's shape merged into the cache (see
    /// [`Metadata::merge`]), for clients to wait on.
    topology: watch::Sender<u64>,
    /// Counts the metadata answers merged into the cache, shape changed or not.
    updates: watch::Sender<u64>,
    /// `topic.metadata.refresh.interval.ms`: cached topic metadata older than this is fetched
    /// again.
    max_age: Option<Duration>,
    /// `topic.metadata.refresh.fast.interval.ms` and `retry.backoff.max.ms`: the pauses while
    /// waiting for a topic or a partition to appear.
    fast: Duration,
    fast_max: Duration,
    /// `topic.metadata.propagation.max.ms`.
    propagation: Duration,
    /// Let the broker create the topics a producer sends to, or a consumer subscribes to
    /// (`allow.auto.create.topics`).
    auto_create_topics: bool,
    /// `auto_create_topics`, for a consumer: the topics it subscribes to or is assigned are
    /// asked for with creation allowed.
    consumer_creates: bool,
    refresher: Refresher,
    /// Whether any broker can be reached, for [`ClientEvents`].
    reach: Reach,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The keeper waits for a wake or a due time (none with the periodic refresh off): it
        // finds the cluster gone and ends.
        self.refresher.wake.notify_one();
    }
}

/// What kind of client a cluster serves: `allow.auto.create.topics` defaults differ.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum ClientKind {
    Producer,
    Consumer,
    Admin,
}

impl Cluster {
    /// Checks the configuration, fetches the cluster's brokers from the bootstrap servers, and
    /// starts the keeper that refreshes the metadata of the topics in use.
    pub async fn connect(config: &ClientConfig, kind: ClientKind) -> Result<Cluster, Error> {
        let settings = ConnectionSettings::from_config(config)?;
        let c = &config.common;
        let bootstrap = config
            .bootstrap_addresses()?
            .into_iter()
            .map(|addr| BrokerSlot::new(addr, &settings))
            .collect();
        let auto_create_topics = match kind {
            ClientKind::Producer => c.allow_auto_create_topics.unwrap_or(true),
            ClientKind::Consumer => c.allow_auto_create_topics.unwrap_or(false),
            ClientKind::Admin => false,
        };
        let cadence = Cadence {
            interval: c.metadata_refresh_interval,
            fast: c.metadata_refresh_fast_interval,
            fast_max: config.producer.retry_backoff_max,
        };
        let cluster = Cluster {
            inner: Arc::new(Inner {
                settings,
                bootstrap,
                brokers: Mutex::new(HashMap::new()),
                metadata: RwLock::new(Metadata::default()),
                topology: watch::channel(0).0,
                updates: watch::channel(0).0,
                max_age: c.metadata_refresh_interval,
                fast: cadence.fast,
                fast_max: cadence.fast_max.max(cadence.fast),
                propagation: c.topic_propagation_max,
                auto_create_topics,
                consumer_creates: auto_create_topics && kind == ClientKind::Consumer,
                refresher: Refresher::default(),
                reach: Reach::new(),
            }),
        };
        // The first answer is awaited for at most socket.connection.setup.timeout.ms. A broker
        // that refuses the client (credentials, TLS, a listener of another protocol) fails the
        // build: a setting is wrong, and waiting cannot mend it. Brokers that cannot be reached
        // do not, as in librdkafka and the Java client: a service may start before its
        // brokers. The keeper then goes on asking, calls wait within their own timeouts, and
        // the client's events say that all brokers are down.
        let first = cluster.refresh(&[], false);
        if let Ok(Err(e)) =
            tokio::time::timeout(config.common.connection_setup_timeout, first).await
        {
            if is_final(&e) {
                return Err(e);
            }
        }
        tokio::spawn(refresh::keep_current(
            Arc::downgrade(&cluster.inner),
            cluster.inner.refresher.wake.clone(),
            cadence,
        ));
        Ok(cluster)
    }

    /// A connection to any broker: a known broker first, then the bootstrap servers. An
    /// authentication failure ends the search at once: other brokers would refuse us too.
    pub async fn any_broker(&self) -> Result<Connection, Error> {
        let mut tried = Vec::new();
        let mut last = None;
        for slot in self.candidates() {
            match slot.connection(&self.inner.settings).await {
                Ok(conn) => {
                    self.inner.reach.reached();
                    return Ok(conn);
                }
                Err(e) if is_final(&e) => {
                    self.inner.reach.failed(&e);
                    return Err(e);
                }
                Err(e) => {
                    tried.push(slot.addr.clone());
                    last = Some(e);
                }
            }
        }
        let error = Error::NoBrokerReachable {
            tried: tried.join(", "),
            last: Arc::new(last.unwrap_or(Error::Closed)),
        };
        self.inner.reach.failed(&error);
        Err(error)
    }

    /// `socket.timeout.ms`: how long a request may wait for its answer.
    pub fn socket_timeout(&self) -> Duration {
        self.inner.settings.socket_timeout
    }

    /// The client's events from now on (see [`ClientEvents`]).
    pub fn events(&self) -> ClientEvents {
        self.inner.reach.subscribe()
    }

    /// The brokers to ask when any will do: the known ones by node id, then the bootstrap
    /// servers that are not among them. An address is tried once, through one slot, so that
    /// its reconnect backoff is one too.
    fn candidates(&self) -> Vec<Arc<BrokerSlot>> {
        let brokers = self.inner.brokers.lock().expect("brokers lock");
        let mut ids: Vec<_> = brokers.keys().copied().collect();
        ids.sort_unstable();
        let known: Vec<Arc<BrokerSlot>> = ids.iter().map(|id| brokers[id].clone()).collect();
        let bootstrap = self
            .inner
            .bootstrap
            .iter()
            .filter(|b| known.iter().all(|k| k.addr != b.addr))
            .cloned()
            .collect::<Vec<_>>();
        known.into_iter().chain(bootstrap).collect()
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
                self.refresh(&[], false).await?;
                self.slot(id).ok_or_else(|| Error::Broker {
                    api: "Metadata",
                    resource: Resource::Broker(format!("broker {id}")),
                    code: KafkaCode::from_code(codes::BROKER_NOT_AVAILABLE).expect("non-zero"),
                    message: Some("the broker is not in the cluster metadata".into()),
                })?
            }
        };
        let connected = slot.connection(&self.inner.settings).await;
        if let Err(e) = &connected {
            if matches!(e, Error::Authentication { .. } | Error::Tls { .. }) {
                // The broker refused the client: whoever connects is told, and the
                // application hears of it even when that was a task of the client's.
                self.inner.reach.error(e);
            }
        }
        connected
    }

    /// Reports an error that belongs to no single call (see [`ClientEvent::Error`]).
    pub(crate) fn report(&self, event: ClientEvent) {
        self.inner.reach.report(event);
    }

    /// The connection to broker `id` when one is open and free to take this moment, without
    /// waiting: `None` when there is none (or another caller is making one).
    pub fn live_connection(&self, id: i32) -> Option<Connection> {
        self.slot(id)?.live()
    }

    fn slot(&self, id: i32) -> Option<Arc<BrokerSlot>> {
        self.inner
            .brokers
            .lock()
            .expect("brokers lock")
            .get(&id)
            .cloned()
    }

    /// The node id of the leader of `topic[partition]` and its epoch (-1 where the broker
    /// sends none), fetching the topic's metadata when it is not cached, and once more when the
    /// partition is beyond the count cached (the topic may have grown).
    pub async fn leader(&self, topic: &str, partition: i32) -> Result<(i32, i32), Error> {
        let mut meta = self.topic(topic).await?;
        if meta.partitions.iter().all(|p| p.id != partition) {
            self.refresh(&[topic], false).await?;
            meta = self.topic(topic).await?;
        }
        let p = meta
            .partitions
            .iter()
            .find(|p| p.id == partition)
            .ok_or_else(|| Error::unknown(topic, Some(partition)))?;
        if p.leader < 0 {
            return Err(Error::Broker {
                api: "Metadata",
                resource: Resource::partition(topic, partition),
                code: KafkaCode::from_code(codes::LEADER_NOT_AVAILABLE).expect("non-zero"),
                message: None,
            });
        }
        Ok((p.leader, p.leader_epoch))
    }

    /// The metadata of `topic`, fetched when not cached, older than
    /// `topic.metadata.refresh.interval.ms`, or known to be out of date. A topic the cluster
    /// does not know is [`Error::UnknownTopicOrPartition`].
    pub async fn topic(&self, topic: &str) -> Result<TopicMetadata, Error> {
        let meta = match self.cached(topic) {
            Some(meta) if meta.error.is_none() && !meta.is_stale(self.inner.max_age) => meta,
            _ => {
                self.refresh(&[topic], false).await?;
                self.cached(topic)
                    .ok_or_else(|| Error::unknown(topic, None))?
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
        self.with_metadata(|metadata| metadata.topics.get(topic).cloned())
    }

    /// For a consumer with `allow.auto.create.topics=true`: asks for the topics it is about to
    /// read, letting the broker create those that do not exist (as librdkafka does when
    /// subscribing to or assigning them). Otherwise nothing.
    pub async fn create_if_allowed(&self, topics: &[&str]) -> Result<(), Error> {
        match self.inner.consumer_creates {
            true => self.refresh_with(topics, false, true).await,
            false => Ok(()),
        }
    }

    /// `f` over the cache as it is, without asking the cluster.
    pub fn with_metadata<R>(&self, f: impl FnOnce(&Metadata) -> R) -> R {
        f(&self.inner.metadata.read().expect("metadata lock"))
    }

    /// How many metadata answers the cache has taken in, as a channel: the producer routes its
    /// partitions again on each (a leader may have moved).
    pub fn metadata_updates(&self) -> watch::Receiver<u64> {
        self.inner.updates.subscribe()
    }

    /// The leader of `topic[partition]` as the cache knows it, without asking: `None` when the
    /// partition is not cached or has no leader.
    pub fn cached_leader(&self, topic: &str, partition: i32) -> Option<i32> {
        self.with_metadata(|metadata| {
            let partitions = &metadata.topics.get(topic)?.partitions;
            let i = partitions.binary_search_by_key(&partition, |p| p.id).ok()?;
            Some(partitions[i].leader).filter(|&leader| leader >= 0)
        })
    }

    /// How many changes to the cluster's shape (topics appearing or going, partition counts,
    /// the listing of every topic) the cache has taken in, as a channel: a client that saw one
    /// count and sees another looks again at what it follows.
    pub fn topology_changes(&self) -> watch::Receiver<u64> {
        self.inner.topology.subscribe()
    }

    /// The controller, for admin requests. KRaft brokers forward them, so any broker will do
    /// where the metadata names none.
    pub async fn controller(&self) -> Result<Connection, Error> {
        let controller = self.with_metadata(|metadata| metadata.controller_id);
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

    /// How many partitions `topic` has, as last cached: even when the rest of its metadata is
    /// out of date, so that a producer keeps choosing partitions while the cluster is out of
    /// reach. `None` for a topic never seen, or one the cluster says does not exist.
    pub fn partition_count(&self, topic: &str) -> Option<usize> {
        // On every send: read the count under the lock rather than clone the metadata.
        self.with_metadata(|metadata| {
            metadata
                .topics
                .get(topic)
                .filter(|meta| meta.error.is_none())
                .map(|meta| meta.partitions.len())
                .filter(|&n| n > 0)
        })
    }

    /// The partition count of `topic`, for a record about to be produced to it (to
    /// `partition`, when given). The cache answers when it knows the topic and the partition.
    /// Otherwise the cluster is asked, every `topic.metadata.refresh.fast.interval.ms`
    /// (doubling up to `retry.backoff.max.ms`), until both appear or
    /// `topic.metadata.propagation.max.ms` has passed since this call: topics and partitions
    /// reach every broker a little after they are created. Then the record fails with
    /// [`Error::UnknownTopicOrPartition`] naming the topic (or `topic[partition]`), or with
    /// the last error asking met.
    ///
    /// Cancel-safe: it only reads and asks.
    pub async fn producing_to(&self, topic: &str, partition: Option<i32>) -> Result<usize, Error> {
        if let Some(p) = partition.filter(|&p| p < 0) {
            return Err(Error::unknown(topic, Some(p)));
        }
        let fits = |n: usize| partition.is_none_or(|p| (p as usize) < n);
        if let Some(n) = self.partition_count(topic).filter(|&n| fits(n)) {
            return Ok(n);
        }
        self.use_topic(topic);
        let mut patience = self.patience(self.inner.propagation);
        loop {
            let create = self.inner.auto_create_topics;
            let outcome = match self.refresh_with(&[topic], false, create).await {
                Ok(()) => match self.cached(topic) {
                    Some(meta) if meta.error.is_none() && fits(meta.partitions.len()) => {
                        return Ok(meta.partitions.len())
                    }
                    Some(meta) if meta.error.is_none() || meta.is_missing() => {
                        // The topic is there but not the partition, or not the topic.
                        Error::unknown(topic, partition.filter(|_| meta.error.is_none()))
                    }
                    Some(meta) => topic_error(topic, meta.error.expect("matched above")),
                    None => Error::unknown(topic, None),
                },
                Err(e) => e,
            };
            // An unknown topic or partition is retriable: it may appear yet.
            if !outcome.is_retriable() || !patience.wait().await {
                return Err(outcome);
            }
        }
    }

    /// Asking again while something settles, for up to `within`: see [`Patience`].
    fn patience(&self, within: Duration) -> Patience {
        Patience {
            deadline: Instant::now() + within,
            pause: self.inner.fast,
            max: self.inner.fast_max,
        }
    }

    /// The cluster's whole answer about `topics` (every topic when `None`; the brokers only
    /// when empty), asked now and merged into the cache: for the admin client, which reports
    /// what the cache does not keep, and for the refresh queue.
    pub async fn metadata(&self, topics: Option<&[&str]>) -> Result<MetadataResponse, Error> {
        self.metadata_with(topics, false).await
    }

    /// As [`Cluster::metadata`], letting the broker create the topics named when `create`.
    async fn metadata_with(
        &self,
        topics: Option<&[&str]>,
        create: bool,
    ) -> Result<MetadataResponse, Error> {
        let response = self.fetch_metadata(topics, create).await?;
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
        let changed = self
            .inner
            .metadata
            .write()
            .expect("metadata lock")
            .merge(fresh, topics.is_none());
        if changed {
            self.inner.topology.send_modify(|n| *n += 1);
        }
        self.inner.updates.send_modify(|n| *n += 1);
        Ok(response)
    }
}

/// The pauses between asks while a topic, partition or leader settles:
/// `topic.metadata.refresh.fast.interval.ms`, doubling up to `retry.backoff.max.ms`, until a
/// deadline.
struct Patience {
    deadline: Instant,
    pause: Duration,
    max: Duration,
}

impl Patience {
    /// Waits the next pause (never past the deadline); false, at once, once the deadline has
    /// passed.
    async fn wait(&mut self) -> bool {
        let now = Instant::now();
        if now >= self.deadline {
            return false;
        }
        tokio::time::sleep(self.pause.min(self.deadline - now)).await;
        self.pause = (self.pause * 2).min(self.max);
        true
    }
}

/// The error a Metadata answer gives for `topic`: an unknown topic is its own variant.
pub(crate) fn topic_error(topic: &str, code: KafkaCode) -> Error {
    if code.code() == codes::UNKNOWN_TOPIC_OR_PARTITION {
        return Error::unknown(topic, None);
    }
    Error::Broker {
        api: "Metadata",
        resource: Resource::Topic(topic.to_owned()),
        code,
        message: None,
    }
}
