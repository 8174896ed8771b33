//! Client configuration: librdkafka / confluent-kafka-go property names mapped onto typed
//! settings, a typed builder for the same settings, and the loader for CKafka's `ckafka.json`.
//!
//! ```text
//!  "bootstrap.servers" = "…"  ─┐
//!  ClientConfig::set(k, v)     ├─► ClientConfig { common, producer, consumer } ─► Producer / Consumer / Admin
//!  typed setters / ckafka.json ┘
//! ```
//!
//! Every property is parsed when it is set, so a wrong key or value is reported at once, with the
//! key's name.

mod assignor;
pub(crate) mod catalogue;
mod ckafka;
mod debug;
mod oauth;
mod properties;
mod tls;

use std::fmt;
use std::time::Duration;

pub use assignor::Assignor;
pub use ckafka::{CKafkaConfig, CKafkaSasl};
pub(crate) use oauth::TokenSpec;
pub use oauth::{OAuthBearerConfig, OAuthBearerMethod};
pub use tls::{StoreType, TlsConfig};

use crate::error::ConfigError;
use crate::producer::KeyPartitioner;
use crate::protocol::compression::Compression;
pub use crate::protocol::sasl::SaslMechanism;

/// How the client talks to brokers (`security.protocol`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SecurityProtocol {
    /// Plain TCP, no authentication.
    Plaintext,
    /// Plain TCP with SASL authentication.
    SaslPlaintext,
    /// TLS (the `tls` feature), authenticated by a client certificate when the listener asks
    /// for one.
    Ssl,
    /// TLS (the `tls` feature) with SASL authentication inside it.
    SaslSsl,
}

impl SecurityProtocol {
    /// Every protocol, as `security.protocol` names them.
    pub const ALL: [SecurityProtocol; 4] = [
        SecurityProtocol::Plaintext,
        SecurityProtocol::Ssl,
        SecurityProtocol::SaslPlaintext,
        SecurityProtocol::SaslSsl,
    ];

    /// The property value, as `security.protocol=` takes it.
    pub fn name(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "PLAINTEXT",
            SecurityProtocol::SaslPlaintext => "SASL_PLAINTEXT",
            SecurityProtocol::Ssl => "SSL",
            SecurityProtocol::SaslSsl => "SASL_SSL",
        }
    }

    /// Whether connections are TLS.
    pub fn uses_tls(self) -> bool {
        matches!(self, SecurityProtocol::Ssl | SecurityProtocol::SaslSsl)
    }

    /// Whether connections authenticate with SASL.
    pub fn uses_sasl(self) -> bool {
        matches!(
            self,
            SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl
        )
    }
}

/// Why SSL and SASL_SSL are refused by a build without the `tls` feature.
const NO_TLS: &str = "TLS needs purekafka's `tls` feature, which this build lacks \
                      (purekafka = { features = [\"tls\"] })";

/// Options of every broker socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct SocketOptions {
    /// `socket.keepalive.enable`: TCP keep-alives (`SO_KEEPALIVE`). Off by default.
    pub keepalive: bool,
    /// `socket.nagle.disable`: `TCP_NODELAY`, so small requests leave at once. On by default.
    pub nodelay: bool,
    /// `socket.send.buffer.bytes` (Java: `send.buffer.bytes`): the kernel's send buffer; 0
    /// leaves the system's default.
    pub send_buffer_bytes: u32,
    /// `socket.receive.buffer.bytes` (Java: `receive.buffer.bytes`): the kernel's receive
    /// buffer; 0 leaves the system's default.
    pub receive_buffer_bytes: u32,
    /// `broker.address.family`: which addresses of a broker's name are tried.
    pub address_family: AddressFamily,
}

impl Default for SocketOptions {
    fn default() -> Self {
        SocketOptions {
            keepalive: false,
            nodelay: true,
            send_buffer_bytes: 0,
            receive_buffer_bytes: 0,
            address_family: AddressFamily::Any,
        }
    }
}

/// The IP versions a broker's name may resolve to and be connected to
/// (`broker.address.family`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressFamily {
    /// IPv4 and IPv6 (`any`, the default).
    Any,
    /// IPv4 only (`v4`).
    V4,
    /// IPv6 only (`v6`).
    V6,
}

impl AddressFamily {
    /// Whether `addr` is of this family.
    pub fn admits(self, addr: &std::net::SocketAddr) -> bool {
        match self {
            AddressFamily::Any => true,
            AddressFamily::V4 => addr.is_ipv4(),
            AddressFamily::V6 => addr.is_ipv6(),
        }
    }
}

/// What the producer waits for before a write counts as done (`acks`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acks {
    /// Do not wait for the broker (`acks=0`): no offsets are reported.
    None,
    /// Wait for the partition leader (`acks=1`).
    Leader,
    /// Wait for all in-sync replicas (`acks=all` or `-1`).
    All,
}

impl Acks {
    /// The property value, as `acks=` takes it: `0`, `1` or `all`.
    pub fn name(self) -> &'static str {
        match self {
            Acks::None => "0",
            Acks::Leader => "1",
            Acks::All => "all",
        }
    }

    /// The value sent in Produce requests.
    pub fn as_i16(self) -> i16 {
        match self {
            Acks::None => 0,
            Acks::Leader => 1,
            Acks::All => -1,
        }
    }
}

/// Where a consumer starts when it has no valid offset (`auto.offset.reset`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AutoOffsetReset {
    /// The oldest record still in the log (`earliest`, `smallest`, `beginning`).
    Earliest,
    /// The next record to be written (`latest`, `largest`, `end`).
    Latest,
    /// Report an error instead (`error`, `none`).
    Error,
}

/// Which records a consumer reads (`isolation.level`).
///
/// The default is `read_committed`, as in librdkafka (the Java client defaults to
/// `read_uncommitted`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IsolationLevel {
    /// Every record, those of open and aborted transactions included (`read_uncommitted`).
    ReadUncommitted,
    /// Records outside transactions and those of committed transactions, up to the partition's
    /// last stable offset (`read_committed`).
    #[default]
    ReadCommitted,
}

impl IsolationLevel {
    /// The value sent in Fetch and ListOffsets requests.
    pub fn as_i8(self) -> i8 {
        match self {
            IsolationLevel::ReadUncommitted => 0,
            IsolationLevel::ReadCommitted => 1,
        }
    }
}

/// How a consumer group shares out partitions (`group.protocol`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupProtocol {
    /// JoinGroup and SyncGroup, with the assignment computed by a member (`classic`): every
    /// Kafka version, and the only one CKafka offers.
    Classic,
    /// KIP-848 (`consumer`): the coordinator assigns, through ConsumerGroupHeartbeat; Kafka 4.0
    /// and later.
    Consumer,
}

/// How a [`ShareConsumer`](crate::ShareConsumer) acknowledges the records it hands out
/// (`share.acknowledgement.mode`), with the Java client's meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ShareAcknowledgementMode {
    /// Each call for records accepts every record the previous calls handed out (`implicit`,
    /// the default).
    #[default]
    Implicit,
    /// The application acknowledges each record, and a call for records is refused while one
    /// handed out is unacknowledged (`explicit`).
    Explicit,
}

/// A secret string, such as a SASL password. Its `Debug` never shows the value.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// What a client authenticates with, once the settings are checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SaslConfig {
    /// The mechanism.
    pub mechanism: SaslMechanism,
    /// The credentials it takes.
    pub credentials: SaslCredentials,
}

/// The credentials of a SASL mechanism.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SaslCredentials {
    /// PLAIN and SCRAM: a user name (for CKafka `instanceId#username`) and its password,
    /// never printed.
    Password { username: String, password: Secret },
    /// OAUTHBEARER: where its tokens come from.
    Token(TokenSpec),
}

/// Settings every client shares: where the brokers are, how to authenticate, and timeouts.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CommonConfig {
    /// `bootstrap.servers`: `host:port` addresses to fetch the cluster metadata from.
    pub bootstrap_servers: Vec<String>,
    /// `security.protocol`.
    pub security_protocol: SecurityProtocol,
    /// `sasl.mechanism`, `sasl.username`, `sasl.password`, checked together when a client is built.
    pub sasl_mechanism: SaslMechanism,
    /// `sasl.username`.
    pub sasl_username: Option<String>,
    /// `sasl.password`.
    pub sasl_password: Option<Secret>,
    /// The `sasl.oauthbearer.*` settings, used with `sasl.mechanism=OAUTHBEARER`.
    pub oauthbearer: OAuthBearerConfig,
    /// The `ssl.*` settings, used with `security.protocol` SSL and SASL_SSL.
    pub tls: TlsConfig,
    /// `client.id`, sent in every request header.
    pub client_id: String,
    /// `socket.timeout.ms`: how long any request may wait for its answer on the network, as in
    /// librdkafka. A Fetch adds `fetch.wait.max.ms`, a JoinGroup `max.poll.interval.ms`, the
    /// time the broker may hold them. Past it the connection is closed and the request fails
    /// (or is retried, where that is safe).
    pub socket_timeout: Duration,
    /// `request.timeout.ms`: how long the broker may wait for replicas before it answers a
    /// Produce (the request's own timeout field), as in librdkafka; also the admin calls'
    /// default operation timeout. Not a network timeout: that is `socket.timeout.ms`.
    pub request_timeout: Duration,
    /// `socket.connection.setup.timeout.ms`: how long connecting to a broker may take, TLS,
    /// SASL and the API version exchange included.
    pub connection_setup_timeout: Duration,
    /// `api.version.request.timeout.ms`: how long a broker may take to say its API versions.
    pub api_version_request_timeout: Duration,
    /// The broker sockets' options (`socket.keepalive.enable`, `socket.nagle.disable`, the
    /// buffer sizes, `broker.address.family`).
    pub socket: SocketOptions,
    /// `debug`: the librdkafka debug contexts asked for. purekafka logs through `tracing`;
    /// [`ClientConfig::debug_filter`] turns these into the targets to enable.
    pub debug: Vec<&'static str>,
    /// `reconnect.backoff.ms`: the first wait before reconnecting to a broker.
    pub reconnect_backoff: Duration,
    /// `reconnect.backoff.max.ms`: the longest wait before reconnecting.
    pub reconnect_backoff_max: Duration,
    /// `receive.message.max.bytes`: the largest response frame accepted from a broker.
    pub receive_message_max_bytes: usize,
    /// `topic.metadata.refresh.interval.ms` (Java: `metadata.max.age.ms`): how often the
    /// metadata of the topics in use is asked for again without any error calling for it, so
    /// that new partitions, moved leaders and new brokers are found; also how old a cached
    /// topic may be before a lookup asks again. `None` (`-1`) turns both off: cached metadata is
    /// then trusted until an error says otherwise.
    pub metadata_refresh_interval: Option<Duration>,
    /// `topic.metadata.refresh.fast.interval.ms`: the first pause between refreshes while a
    /// leader moves or a subscribed topic is missing; it doubles up to `retry.backoff.max.ms`.
    pub metadata_refresh_fast_interval: Duration,
    /// `topic.metadata.propagation.max.ms`: how long a producer waits for a topic it does not
    /// find (or a partition beyond the count it knows) before the record fails with
    /// [`Error::UnknownTopicOrPartition`](crate::Error::UnknownTopicOrPartition).
    pub topic_propagation_max: Duration,
    /// `allow.auto.create.topics`: whether the client's Metadata requests let the broker create
    /// a topic they name (only where the broker has `auto.create.topics.enable=true`). Unset,
    /// producers allow it and consumers do not, as in librdkafka.
    pub allow_auto_create_topics: Option<bool>,
    /// `statistics.interval.ms`: how often the client emits its statistics (librdkafka's
    /// STATISTICS.md JSON) to [`crate::StatisticsStream`]s; 0, the default, keeps none, and
    /// counts nothing for them.
    pub statistics_interval: Duration,
}

/// Producer settings.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProducerConfig {
    /// `acks`.
    pub acks: Acks,
    /// `retries`: how many times a failed produce is retried.
    pub retries: u32,
    /// `retry.backoff.ms`: the wait before the first retry; it doubles with each further one.
    pub retry_backoff: Duration,
    /// `retry.backoff.max.ms`: the longest wait between retries.
    pub retry_backoff_max: Duration,
    /// `compression.type` (librdkafka also `compression.codec`).
    pub compression: Compression,
    /// `delivery.timeout.ms` (librdkafka: `message.timeout.ms`): how long a record may take,
    /// retries included, before it fails.
    pub delivery_timeout: Duration,
    /// `message.max.bytes` (Java: `max.request.size`): the largest record batch sent.
    pub message_max_bytes: usize,
    /// `linger.ms` (librdkafka also `queue.buffering.max.ms`): how long a batch waits for more
    /// records before it is sent.
    pub linger: Duration,
    /// `batch.size`: the most bytes in one batch.
    pub batch_size: usize,
    /// `batch.num.messages`: the most records in one batch.
    pub batch_num_messages: usize,
    /// `queue.buffering.max.messages`: records queued and in flight before `send` waits.
    pub queue_max_messages: usize,
    /// `queue.buffering.max.kbytes` (Java: `buffer.memory`, in bytes): record bytes queued and in
    /// flight before `send` waits.
    pub queue_max_bytes: usize,
    /// `max.in.flight.requests.per.connection` (librdkafka also `max.in.flight`): Produce
    /// requests in flight to one broker.
    pub max_in_flight: usize,
    /// `enable.idempotence`, when set. Unset, it is on exactly when `acks=all` (the default), as
    /// in the Java client since 3.0.
    pub enable_idempotence: Option<bool>,
    /// `delivery.report.only.error`: the report stream tells only of records that failed.
    pub delivery_report_only_error: bool,
    /// `partitioner`: how a record sent without a partition gets one. `consistent_random` by
    /// default, as in librdkafka; `murmur2_random` puts keys where the Java client does.
    pub partitioner: KeyPartitioner,
    /// `sticky.partitioning.linger.ms`, when set: how long records that spread at random stay
    /// on one partition before another is drawn; 0 draws one per record. Unset, twice
    /// `linger.ms` (see [`ProducerConfig::sticky_linger`]).
    pub sticky_partitioning_linger: Option<Duration>,
    /// `transactional.id`: makes the producer transactional (see
    /// [`Producer::init_transactions`](crate::Producer::init_transactions)). It implies
    /// idempotence.
    pub transactional_id: Option<String>,
    /// `transaction.timeout.ms`: how long the transaction coordinator lets a transaction stay
    /// open before it aborts it.
    pub transaction_timeout: Duration,
}

impl ProducerConfig {
    /// How long a sticky partition is kept: `sticky.partitioning.linger.ms`, or twice
    /// `linger.ms` (at most 900 s) when unset, as librdkafka has it.
    pub fn sticky_linger(&self) -> Duration {
        self.sticky_partitioning_linger
            .unwrap_or_else(|| (self.linger * 2).min(Duration::from_secs(900)))
    }

    /// Whether the producer is idempotent, or why the settings contradict each other.
    pub fn idempotent(&self) -> Result<bool, ConfigError> {
        if self.transactional_id.is_some() {
            // Transactions stand on idempotence: librdkafka and the Java client turn it on
            // with a transactional id, and refuse settings that contradict it.
            if self.enable_idempotence == Some(false) {
                return Err(ConfigError::Conflict(
                    "transactional.id requires idempotence, but enable.idempotence=false".into(),
                ));
            }
            if self.acks != Acks::All {
                return Err(ConfigError::Conflict(format!(
                    "transactional.id requires acks=all, but acks={}",
                    self.acks.name()
                )));
            }
        }
        match self.enable_idempotence {
            None => Ok(self.acks == Acks::All),
            Some(false) => Ok(false),
            Some(true) if self.acks != Acks::All => Err(ConfigError::Conflict(format!(
                "enable.idempotence=true requires acks=all, but acks={}",
                self.acks.name()
            ))),
            Some(true) if self.max_in_flight > 5 => Err(ConfigError::Conflict(format!(
                "enable.idempotence=true allows at most 5 max.in.flight.requests.per.connection, \
                 but it is {}",
                self.max_in_flight
            ))),
            Some(true) => Ok(true),
        }
        .map(|idempotent| idempotent || self.transactional_id.is_some())
    }
}

/// Consumer settings.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConsumerConfig {
    /// `group.id`.
    pub group_id: Option<String>,
    /// `auto.offset.reset`.
    pub auto_offset_reset: AutoOffsetReset,
    /// `session.timeout.ms`.
    pub session_timeout: Duration,
    /// `fetch.wait.max.ms` (Java: `fetch.max.wait.ms`): how long the broker may hold a fetch.
    pub fetch_wait_max: Duration,
    /// `fetch.min.bytes`: the broker holds a fetch until this many bytes are ready (or
    /// `fetch.wait.max.ms` passes).
    pub fetch_min_bytes: i32,
    /// `fetch.max.bytes`: the most bytes one fetch response may carry.
    pub fetch_max_bytes: i32,
    /// `max.partition.fetch.bytes`: the most bytes per partition in one fetch response.
    pub max_partition_fetch_bytes: i32,
    /// `fetch.error.backoff.ms`: the wait before fetching again after a partition error.
    pub fetch_error_backoff: Duration,
    /// `heartbeat.interval.ms`: how often a group member tells the coordinator it is alive.
    pub heartbeat_interval: Duration,
    /// `max.poll.interval.ms`: the rebalance timeout, how long the group waits for members to
    /// rejoin.
    pub max_poll_interval: Duration,
    /// `group.protocol`: `classic` (default) or `consumer` (KIP-848).
    pub group_protocol: GroupProtocol,
    /// `group.remote.assignor`: the coordinator's assignor for `group.protocol=consumer`
    /// (`uniform` or `range`); the broker's default when unset.
    pub group_remote_assignor: Option<String>,
    /// `partition.assignment.strategy`: the assignors offered, in order of preference.
    pub assignors: Vec<Assignor>,
    /// `enable.auto.commit`: commit what was handed to the application, periodically and on
    /// rebalance and close.
    pub enable_auto_commit: bool,
    /// `auto.commit.interval.ms`.
    pub auto_commit_interval: Duration,
    /// `group.instance.id`: static membership (KIP-345).
    pub group_instance_id: Option<String>,
    /// `enable.auto.offset.store`: each message handed to the application stores its offset
    /// for the next commit (`true`, the default); `false` stores only what
    /// [`Consumer::store_offset`](crate::Consumer::store_offset) and
    /// [`Consumer::store_offsets`](crate::Consumer::store_offsets) are given.
    pub enable_auto_offset_store: bool,
    /// `enable.partition.eof`: report [`Error::PartitionEof`](crate::Error::PartitionEof) each
    /// time the consumer reaches the end of a partition. Off by default.
    pub enable_partition_eof: bool,
    /// `max.poll.records` (Java): the most messages one [`Consumer::poll`](crate::Consumer::poll)
    /// returns.
    pub max_poll_records: usize,
    /// `client.rack`: where this consumer runs; with it, a partition's leader may name a
    /// replica in the same rack to read from (KIP-392, brokers 2.4 and later with a
    /// `replica.selector.class`).
    pub client_rack: Option<String>,
    /// `check.crcs`: verify each fetched batch's CRC32C (on by default, as in the Java client).
    pub check_crcs: bool,
    /// `isolation.level`: whether records of aborted and open transactions are read.
    pub isolation_level: IsolationLevel,
    /// `share.acknowledgement.mode`: how a [`ShareConsumer`](crate::ShareConsumer)
    /// acknowledges records; the plain consumer ignores it.
    pub share_acknowledgement_mode: ShareAcknowledgementMode,
}

/// The whole client configuration. Build it from librdkafka property names with
/// [`ClientConfig::set`], with the typed setters, or from a CKafka file with
/// [`CKafkaConfig::client_config`].
///
/// ```
/// use purekafka::{Acks, ClientConfig};
/// # fn main() -> Result<(), purekafka::ConfigError> {
/// let config = ClientConfig::new()
///     .set("bootstrap.servers", "127.0.0.1:9094")?
///     .set("security.protocol", "SASL_PLAINTEXT")?
///     .set("sasl.mechanism", "PLAIN")?
///     .set("sasl.username", "ckafka-local#purekafka")?
///     .set("sasl.password", "hunter2")?
///     .set("acks", 1)?;
/// assert_eq!(config.producer.acks, Acks::Leader);
/// assert!(!format!("{config:?}").contains("hunter2"));
/// assert!(ClientConfig::new().set("bootstrap.server", "x").is_err());
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClientConfig {
    /// Settings shared by every client.
    pub common: CommonConfig,
    /// Producer settings.
    pub producer: ProducerConfig,
    /// Consumer settings.
    pub consumer: ConsumerConfig,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            common: CommonConfig {
                bootstrap_servers: Vec::new(),
                security_protocol: SecurityProtocol::Plaintext,
                sasl_mechanism: SaslMechanism::Plain,
                sasl_username: None,
                sasl_password: None,
                oauthbearer: OAuthBearerConfig::default(),
                tls: TlsConfig::default(),
                client_id: "purekafka".to_owned(),
                socket_timeout: Duration::from_millis(60_000),
                request_timeout: Duration::from_millis(30_000),
                connection_setup_timeout: Duration::from_millis(30_000),
                api_version_request_timeout: Duration::from_millis(10_000),
                socket: SocketOptions::default(),
                debug: Vec::new(),
                reconnect_backoff: Duration::from_millis(100),
                reconnect_backoff_max: Duration::from_millis(10_000),
                receive_message_max_bytes: 100_000_000,
                statistics_interval: Duration::ZERO,
                metadata_refresh_interval: Some(Duration::from_millis(300_000)),
                metadata_refresh_fast_interval: Duration::from_millis(100),
                topic_propagation_max: Duration::from_millis(30_000),
                allow_auto_create_topics: None,
            },
            producer: ProducerConfig {
                acks: Acks::All,
                retries: i32::MAX as u32,
                retry_backoff: Duration::from_millis(100),
                retry_backoff_max: Duration::from_millis(1000),
                compression: Compression::None,
                delivery_timeout: Duration::from_millis(120_000),
                message_max_bytes: 1_000_000,
                linger: Duration::from_millis(5),
                batch_size: 1_000_000,
                batch_num_messages: 10_000,
                queue_max_messages: 100_000,
                queue_max_bytes: 1_048_576 * 1024,
                max_in_flight: 5,
                enable_idempotence: None,
                delivery_report_only_error: false,
                partitioner: KeyPartitioner::ConsistentRandom,
                sticky_partitioning_linger: None,
                transactional_id: None,
                transaction_timeout: Duration::from_millis(60_000),
            },
            consumer: ConsumerConfig {
                group_id: None,
                auto_offset_reset: AutoOffsetReset::Latest,
                session_timeout: Duration::from_millis(45_000),
                fetch_wait_max: Duration::from_millis(500),
                fetch_min_bytes: 1,
                fetch_max_bytes: 52_428_800,
                max_partition_fetch_bytes: 1_048_576,
                fetch_error_backoff: Duration::from_millis(500),
                heartbeat_interval: Duration::from_millis(3000),
                max_poll_interval: Duration::from_millis(300_000),
                group_protocol: GroupProtocol::Classic,
                group_remote_assignor: None,
                assignors: vec![Assignor::Range, Assignor::RoundRobin],
                enable_auto_commit: true,
                auto_commit_interval: Duration::from_millis(5000),
                group_instance_id: None,
                enable_auto_offset_store: true,
                enable_partition_eof: false,
                max_poll_records: usize::MAX,
                client_rack: None,
                check_crcs: true,
                isolation_level: IsolationLevel::ReadCommitted,
                share_acknowledgement_mode: ShareAcknowledgementMode::Implicit,
            },
        }
    }
}

impl ClientConfig {
    /// A configuration with every setting at its default (those of librdkafka where the clients
    /// differ, except `auto.offset.reset`, which is `latest` as in both).
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets a property by its librdkafka / Java name. The value may be a string or a number, as
    /// in a confluent-kafka-go `ConfigMap`. An unknown key, or a value of the wrong type or out of
    /// range, is an error that names the key.
    pub fn set(mut self, key: &str, value: impl ToString) -> Result<Self, ConfigError> {
        properties::apply(&mut self, key, &value.to_string())?;
        Ok(self)
    }

    /// Builds a configuration from `(key, value)` pairs, as [`ClientConfig::set`] one by one.
    pub fn from_properties<K, V>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Result<Self, ConfigError>
    where
        K: AsRef<str>,
        V: ToString,
    {
        pairs
            .into_iter()
            .try_fold(Self::new(), |config, (k, v)| config.set(k.as_ref(), v))
    }

    /// Sets `bootstrap.servers`.
    pub fn bootstrap_servers<S: Into<String>>(
        mut self,
        servers: impl IntoIterator<Item = S>,
    ) -> Self {
        self.common.bootstrap_servers = servers.into_iter().map(Into::into).collect();
        self
    }

    /// Uses SASL/PLAIN over plain TCP (`security.protocol=SASL_PLAINTEXT`,
    /// `sasl.mechanism=PLAIN`) with these credentials.
    /// Over TLS (SSL), it stays TLS: `SASL_SSL`.
    pub fn sasl_plain(self, username: impl Into<String>, password: impl Into<String>) -> Self {
        self.sasl(SaslMechanism::Plain, username, password)
    }

    /// Uses SASL over plain TCP (`security.protocol=SASL_PLAINTEXT`) with `mechanism`
    /// (`sasl.mechanism`: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512) and these credentials. Over
    /// TLS (SSL), it stays TLS: `SASL_SSL`.
    ///
    /// ```
    /// use purekafka::{ClientConfig, SaslMechanism};
    ///
    /// let config = ClientConfig::new()
    ///     .bootstrap_servers(["127.0.0.1:9094"])
    ///     .sasl(SaslMechanism::ScramSha512, "alice", "alice-secret");
    /// ```
    pub fn sasl(
        mut self,
        mechanism: SaslMechanism,
        username: impl Into<String>,
        password: impl Into<String>,
    ) -> Self {
        self.common.security_protocol = if self.common.security_protocol.uses_tls() {
            SecurityProtocol::SaslSsl
        } else {
            SecurityProtocol::SaslPlaintext
        };
        self.common.sasl_mechanism = mechanism;
        self.common.sasl_username = Some(username.into());
        self.common.sasl_password = Some(Secret::new(password));
        self
    }

    /// Authenticates with SASL/OAUTHBEARER tokens from `provider`: the application's own
    /// source of tokens, as librdkafka's `oauthbearer_token_refresh_cb` or the Java client's
    /// login callback handler. It sets `sasl.mechanism=OAUTHBEARER` and takes precedence over
    /// `sasl.oauthbearer.method`. `security.protocol` stays as set: SASL_PLAINTEXT or
    /// SASL_SSL. See [`TokenProvider`](crate::oauth::TokenProvider).
    pub fn oauthbearer_token_provider(
        mut self,
        provider: impl crate::oauth::TokenProvider,
    ) -> Self {
        self.common.sasl_mechanism = SaslMechanism::OAuthBearer;
        self.common.oauthbearer.provider = Some(crate::oauth::SharedTokenProvider(
            std::sync::Arc::new(provider),
        ));
        self
    }

    /// Sets `security.protocol`. SSL and SASL_SSL take their settings from
    /// [`CommonConfig::tls`] (the `ssl.*` properties); they need the `tls` feature, and without
    /// it the client fails to build with an error that says so.
    pub fn security_protocol(mut self, protocol: SecurityProtocol) -> Self {
        self.common.security_protocol = protocol;
        self
    }

    /// Sets `client.id`.
    pub fn client_id(mut self, client_id: impl Into<String>) -> Self {
        self.common.client_id = client_id.into();
        self
    }

    /// Sets `request.timeout.ms`.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.common.request_timeout = timeout;
        self
    }

    /// Sets `acks`.
    pub fn acks(mut self, acks: Acks) -> Self {
        self.producer.acks = acks;
        self
    }

    /// Sets `compression.type`.
    pub fn compression(mut self, compression: Compression) -> Self {
        self.producer.compression = compression;
        self
    }

    /// Sets `group.id`.
    pub fn group_id(mut self, group_id: impl Into<String>) -> Self {
        self.consumer.group_id = Some(group_id.into());
        self
    }

    /// Sets `auto.offset.reset`.
    pub fn auto_offset_reset(mut self, reset: AutoOffsetReset) -> Self {
        self.consumer.auto_offset_reset = reset;
        self
    }

    /// Sets `isolation.level`.
    pub fn isolation_level(mut self, level: IsolationLevel) -> Self {
        self.consumer.isolation_level = level;
        self
    }

    /// The bootstrap servers as `host:port`: an address set without a port (by the typed
    /// setter; `set` already adds it) gets 9092, as in librdkafka.
    pub(crate) fn bootstrap_addresses(&self) -> Result<Vec<String>, ConfigError> {
        self.common
            .bootstrap_servers
            .iter()
            .map(|server| properties::bootstrap_address(server))
            .collect()
    }

    /// The `tracing` filter directives that show what `debug` asks for, as
    /// `tracing_subscriber::EnvFilter` and `RUST_LOG` take them; `None` when `debug` is unset
    /// or names only contexts purekafka has no part for.
    ///
    /// ```
    /// use purekafka::ClientConfig;
    /// # fn main() -> Result<(), purekafka::ConfigError> {
    /// let config = ClientConfig::new().set("debug", "broker,cgrp")?;
    /// assert_eq!(
    ///     config.debug_filter().as_deref(),
    ///     Some("purekafka::conn=debug,purekafka::cluster::brokers=debug,\
    ///           purekafka::group=debug,purekafka::consumer::membership=debug")
    /// );
    /// # Ok(()) }
    /// ```
    pub fn debug_filter(&self) -> Option<String> {
        debug::filter(&self.common.debug)
    }

    /// Checks the settings that only make sense together and returns the SASL credentials to
    /// use, if any. Called when a client is built.
    pub(crate) fn validate(&self) -> Result<Option<SaslConfig>, ConfigError> {
        let c = &self.common;
        if c.bootstrap_servers.is_empty() {
            return Err(ConfigError::Missing {
                key: "bootstrap.servers".into(),
            });
        }
        self.bootstrap_addresses()?;
        if c.reconnect_backoff > c.reconnect_backoff_max {
            return Err(ConfigError::Conflict(
                "reconnect.backoff.ms is larger than reconnect.backoff.max.ms".into(),
            ));
        }
        if c.security_protocol.uses_tls() && !cfg!(feature = "tls") {
            return Err(ConfigError::InvalidValue {
                key: "security.protocol".into(),
                value: c.security_protocol.name().into(),
                reason: NO_TLS.into(),
            });
        }
        if !c.security_protocol.uses_sasl() {
            return Ok(None);
        }
        if c.sasl_mechanism == SaslMechanism::OAuthBearer {
            return Ok(Some(SaslConfig {
                mechanism: c.sasl_mechanism,
                credentials: SaslCredentials::Token(c.oauthbearer.token_spec()?),
            }));
        }
        let username = c
            .sasl_username
            .clone()
            .ok_or_else(|| ConfigError::Missing {
                key: "sasl.username".into(),
            })?;
        let password = c
            .sasl_password
            .clone()
            .ok_or_else(|| ConfigError::Missing {
                key: "sasl.password".into(),
            })?;
        Ok(Some(SaslConfig {
            mechanism: c.sasl_mechanism,
            credentials: SaslCredentials::Password { username, password },
        }))
    }
}
