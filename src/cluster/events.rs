//! What happens to a client as a whole, for the application to watch: librdkafka's
//! `ERR__ALL_BROKERS_DOWN` error event and its end, a broker refusing the client, a producer
//! failing for good (librdkafka's `error_cb`).

use std::sync::Mutex;

use tokio::sync::broadcast;

use crate::error::Error;

/// Something that happened to the client's reach of the cluster, as [`ClientEvents`] reports
/// it. Errors of single requests come back from the calls that made them, not here.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ClientEvent {
    /// No broker could be reached: every broker the client knows and every bootstrap server
    /// failed, for the reason the error gives (often [`Error::NoBrokerReachable`]; an
    /// [`Error::Authentication`] or [`Error::Tls`] when a broker refused the client). The
    /// client keeps trying in the background, and calls wait within their own timeouts.
    /// Reported once, until [`ClientEvent::BrokersReachable`]. librdkafka's
    /// `ERR__ALL_BROKERS_DOWN`.
    AllBrokersDown(Error),
    /// A broker answered again after [`ClientEvent::AllBrokersDown`].
    BrokersReachable,
    /// A broker refused the client's credentials or certificate ([`Error::Authentication`],
    /// [`Error::Tls`]) on a connection to it: also one that a task of the client made in the
    /// background, a reconnect say, which no call of the application's reports. librdkafka's
    /// `error_cb` with `ERR__AUTHENTICATION` or `ERR__SSL`.
    Error(Error),
    /// The producer failed for good (a transactional producer fenced by another with its
    /// `transactional.id`, or refused its id): every call fails from now on, and the producer
    /// is to be closed. librdkafka's `error_cb` with `ERR__FATAL`.
    Fatal(Error),
}

/// The [`ClientEvent`]s of one client, from when this was made; the first one is the current
/// state when all brokers are down already.
pub struct ClientEvents {
    rx: broadcast::Receiver<ClientEvent>,
    first: Option<ClientEvent>,
}

impl ClientEvents {
    /// The next event; `None` once the client is closed and every event was taken. Events
    /// missed by a receiver that fell far behind are skipped.
    ///
    /// Cancel-safe: an event is taken only when this returns it.
    pub async fn recv(&mut self) -> Option<ClientEvent> {
        if let Some(first) = self.first.take() {
            return Some(first);
        }
        loop {
            match self.rx.recv().await {
                Ok(event) => return Some(event),
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }

    /// The next event if one is waiting, without waiting.
    pub fn try_recv(&mut self) -> Option<ClientEvent> {
        if let Some(first) = self.first.take() {
            return Some(first);
        }
        loop {
            match self.rx.try_recv() {
                Ok(event) => return Some(event),
                Err(broadcast::error::TryRecvError::Lagged(_)) => continue,
                Err(_) => return None,
            }
        }
    }
}

impl std::fmt::Debug for ClientEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientEvents").finish_non_exhaustive()
    }
}

/// The sending side, in the cluster: says when reaching the cluster fails and when it works
/// again, each change once.
pub(super) struct Reach {
    tx: broadcast::Sender<ClientEvent>,
    /// The error of the last failure while all brokers are down; `None` while reachable.
    down: Mutex<Option<Error>>,
}

impl Reach {
    pub fn new() -> Reach {
        Reach {
            tx: broadcast::channel(16).0,
            down: Mutex::new(None),
        }
    }

    /// A receiver of what happens from now, which hears first that all brokers are down when
    /// they are.
    pub fn subscribe(&self) -> ClientEvents {
        let down = self.down.lock().unwrap_or_else(|p| p.into_inner());
        ClientEvents {
            rx: self.tx.subscribe(),
            first: down.clone().map(ClientEvent::AllBrokersDown),
        }
    }

    /// An error no single call reports.
    pub fn error(&self, error: &Error) {
        tracing::warn!(%error, "a broker refused the client");
        self.report(ClientEvent::Error(error.clone()));
    }

    /// Tells the receivers of `event`.
    pub fn report(&self, event: ClientEvent) {
        let _ = self.tx.send(event);
    }

    /// No broker could be reached, for `error`.
    pub fn failed(&self, error: &Error) {
        let mut down = self.down.lock().unwrap_or_else(|p| p.into_inner());
        if down.is_none() {
            tracing::warn!(%error, "all brokers are down");
            let _ = self.tx.send(ClientEvent::AllBrokersDown(error.clone()));
        }
        *down = Some(error.clone());
    }

    /// A broker answered.
    pub fn reached(&self) {
        let mut down = self.down.lock().unwrap_or_else(|p| p.into_inner());
        if down.take().is_some() {
            tracing::info!("a broker answers again");
            let _ = self.tx.send(ClientEvent::BrokersReachable);
        }
    }
}
