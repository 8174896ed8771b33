//! The broker pool: one slot per broker address, holding its connection and reconnect
//! backoff, and the search for a broker that answers a Metadata request.

use std::sync::Arc;

use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{MetadataRequest, MetadataResponse};

use super::{topic_name, Cluster};
use crate::conn::{Backoff, Connection, ConnectionSettings};
use crate::error::Error;
use crate::stats::BrokerCounters;

/// One broker address and its (re)connection state.
pub(super) struct BrokerSlot {
    pub addr: String,
    state: tokio::sync::Mutex<SlotState>,
    /// What its connections count, across reconnects, when statistics are kept.
    pub counters: Option<Arc<BrokerCounters>>,
}

struct SlotState {
    conn: Option<Connection>,
    backoff: Backoff,
}

impl BrokerSlot {
    pub fn new(addr: String, settings: &ConnectionSettings) -> Arc<Self> {
        Arc::new(BrokerSlot {
            addr,
            state: tokio::sync::Mutex::new(SlotState {
                conn: None,
                backoff: Backoff::new(settings.reconnect_backoff, settings.reconnect_backoff_max),
            }),
            counters: settings.statistics.then(|| Arc::new(BrokerCounters::new())),
        })
    }

    /// The live connection, if there is one and nobody is connecting this moment.
    pub fn live(&self) -> Option<Connection> {
        let state = self.state.try_lock().ok()?;
        state.conn.as_ref().filter(|c| !c.is_closed()).cloned()
    }

    /// The live connection, or a new one after the backoff delay. Callers wanting the same
    /// broker wait for one attempt rather than racing their own.
    pub async fn connection(&self, settings: &ConnectionSettings) -> Result<Connection, Error> {
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
        if let Some(c) = &self.counters {
            c.connects
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        match Connection::connect_counted(&self.addr, settings, self.counters.clone()).await {
            Ok(conn) => {
                if let Some(c) = &self.counters {
                    c.up();
                }
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
pub(super) fn is_final(error: &Error) -> bool {
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
    /// Asks one broker after another (see [`Cluster::candidates`]) for metadata, until one
    /// answers: a broker that takes the connection and then drops it is not the end of the
    /// search.
    ///
    /// While bootstrapping a PLAINTEXT client, a new connection that closes at its first request
    /// gets one more try, to tell a SASL listener (see [`sasl_listener_error`]) from a passing
    /// failure. Once the cluster has answered over PLAINTEXT that question is settled, and an
    /// early close is only a connection failure.
    pub(super) async fn fetch_metadata(
        &self,
        topics: Option<&[&str]>,
        create: bool,
    ) -> Result<MetadataResponse, Error> {
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
                let answer = metadata_request(&conn, topics, create);
                let e = match answer.await {
                    Ok(response) => {
                        self.inner.reach.reached();
                        return Ok(response);
                    }
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
            if is_final(&error) {
                self.inner.reach.failed(&error);
                return Err(error);
            }
            if !is_connection_failure(&error) {
                return Err(error);
            }
            tried.push(slot.addr.clone());
            last = Some(error);
        }
        let error = Error::NoBrokerReachable {
            tried: tried.join(", "),
            last: Arc::new(last.unwrap_or(Error::Closed)),
        };
        self.inner.reach.failed(&error);
        Err(error)
    }
}

/// One Metadata request for `topics`: the brokers only when empty, every topic when `None`.
/// `auto_create` lets the broker create the topics named (`allow.auto.create.topics`).
async fn metadata_request(
    conn: &Connection,
    topics: Option<&[&str]>,
    auto_create: bool,
) -> Result<MetadataResponse, Error> {
    // An empty list asks for brokers only (from v1; v0 answers with every topic, which the merge
    // takes in just as well). v0 also reads an empty list as every topic.
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
        request.allow_auto_topic_creation = auto_create && topics.is_some();
    }
    conn.request_at(&request, version, conn.socket_timeout())
        .await
}
