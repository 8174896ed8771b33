//! KIP-368 re-authentication: a broker with `connections.max.reauth.ms` set (or an
//! OAUTHBEARER token that expires) gives each SASL session a lifetime, and closes a
//! connection whose session expired at its next request. Before that, the connection
//! authenticates again, on the same socket: requests in flight are answered first, requests
//! sent meanwhile wait their turn, and none of them fails because of it.
//!
//! Each connection with a lifetime has a task that sleeps until 85-95% of it (a random point,
//! so that a client's connections do not all re-authenticate at once, as the Java client
//! spreads them), takes a token if the mechanism needs one, then re-authenticates. The task
//! holds the connection weakly, but for the exchange itself: dropping the connection stops it.

use std::time::Duration;

use tokio::time::Instant;

use super::handshake::{self, Session};
use super::{Connection, Sasl};
use crate::error::Error;

/// The broker refuses to begin a re-authentication within a second of the last beginning.
const AT_LEAST: Duration = Duration::from_millis(1050);
/// How long to wait before asking for a token again when the source had none, while the
/// session lasts.
const TOKEN_RETRY: Duration = Duration::from_secs(1);

/// Keeps `conn` authenticated while the broker gives its sessions a lifetime.
pub(super) fn keep(conn: &Connection, sasl: &Sasl, session: Session) {
    if session.lifetime.is_none() {
        return;
    }
    let weak = conn.downgrade();
    let broker = conn.broker().to_owned();
    let sasl = sasl.clone();
    let task = tokio::spawn(async move {
        let mut session = session;
        while let Some(lifetime) = session.lifetime {
            let expires = session.began + lifetime;
            tokio::time::sleep_until(due(&session, lifetime, fastrand::f64())).await;
            // The token first, the connection held only weakly meanwhile: a provider that
            // takes its time keeps no connection open, and is given until the session ends.
            let client = loop {
                let fetched =
                    tokio::time::timeout_at(expires, handshake::sasl_client(&broker, &sasl));
                let error = match fetched.await {
                    Ok(Ok(client)) => break client,
                    Ok(Err(e)) => e,
                    Err(_) => no_token_in_time(&broker, &sasl),
                };
                if Instant::now() + TOKEN_RETRY >= expires {
                    close(&weak, &broker, error);
                    return;
                }
                tracing::warn!(broker, error = %error, "re-authentication postponed");
                tokio::time::sleep(TOKEN_RETRY).await;
            };
            let Some(conn) = weak.upgrade() else { return };
            if conn.is_closed() {
                return;
            }
            match handshake::reauthenticate(&conn, &sasl, client).await {
                Ok(next) => {
                    conn.wire.reauthenticated();
                    tracing::debug!(
                        broker,
                        mechanism = sasl.mechanism.name(),
                        session_lifetime_ms = next.lifetime.map(|l| l.as_millis() as u64),
                        "re-authenticated"
                    );
                    session = next;
                }
                Err(e) => {
                    tracing::warn!(broker, error = %e, "re-authentication failed; the connection is closed");
                    return;
                }
            }
        }
    });
    conn.wire.adopt_reauth(task.abort_handle());
}

/// When to re-authenticate `session`, of `lifetime`: at 85% to 95% of it from when it began, by
/// `draw` (from 0 to 1), and no sooner than the broker allows.
fn due(session: &Session, lifetime: Duration, draw: f64) -> Instant {
    let at = session.began + lifetime.mul_f64(0.85 + 0.10 * draw.clamp(0.0, 1.0));
    at.max(session.handshake_answered + AT_LEAST)
}

/// The error when the token source gave none before the session's end.
fn no_token_in_time(broker: &str, sasl: &Sasl) -> Error {
    Error::Authentication {
        broker: broker.to_owned(),
        mechanism: sasl.mechanism.name().to_owned(),
        message: format!(
            "{}: the token provider gave none before the session expired",
            handshake::NO_TOKEN
        ),
    }
}

/// Closes the connection, if it is still there, with `error`: its session ends without a
/// token to renew it.
fn close(weak: &super::WeakConnection, broker: &str, error: Error) {
    tracing::warn!(broker, error = %error, "re-authentication failed; the connection is closed");
    if let Some(conn) = weak.upgrade() {
        conn.poison(error);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::SystemTime;

    use bytes::Bytes;

    use super::*;
    use crate::oauth::{OAuthBearerToken, TokenFuture, TokenProvider};
    use crate::testing::MemCluster;
    use crate::{ClientConfig, Producer, ProducerRecord};

    /// A SASL client of `cluster` whose brokers give sessions of 2 s.
    fn sasl_client(cluster: &MemCluster) -> ClientConfig {
        for node in 1..=2 {
            cluster.session_lifetime(node, Duration::from_secs(2));
        }
        ClientConfig::new()
            .bootstrap_servers([cluster.addr(1)])
            .set("security.protocol", "SASL_PLAINTEXT")
            .unwrap()
            .set("acks", "all")
            .unwrap()
            .set("linger.ms", 1)
            .unwrap()
    }

    /// Produces to both brokers for 20 s of paused time, a record every 2 ms, every delivery
    /// awaited; returns how many were delivered.
    async fn produce_for_20_s(producer: &Producer) -> usize {
        let mut deliveries = Vec::new();
        for i in 0..10_000 {
            let record = ProducerRecord::new("t")
                .partition(i % 2)
                .value(Bytes::from_static(b"v"));
            deliveries.push(producer.produce(record).await.unwrap());
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let mut delivered = 0;
        for d in deliveries {
            d.await.unwrap();
            delivered += 1;
        }
        delivered
    }

    /// Connections whose sessions last 2 s stay open for 20 s under a steady load: each
    /// re-authenticates on its socket, no request comes between the messages of a
    /// re-authentication or after a session expired (the in-memory broker closes the
    /// connection for either, as Kafka does), and every record is delivered.
    #[tokio::test(start_paused = true)]
    async fn plain_sessions_are_renewed_under_load_without_a_reconnect() {
        let cluster = MemCluster::new(2);
        cluster.topic("t", &[1, 2]);
        let config = sasl_client(&cluster)
            .set("sasl.mechanism", "PLAIN")
            .unwrap()
            .set("sasl.username", "user")
            .unwrap()
            .set("sasl.password", "secret")
            .unwrap();
        let producer = Producer::builder(config).build().await.unwrap();
        // Every connection the load needs, made before it starts.
        for partition in 0..2 {
            let record = ProducerRecord::new("t").partition(partition);
            producer.produce(record).await.unwrap().await.unwrap();
        }
        let connections = (cluster.connections(1), cluster.connections(2));
        assert_eq!(produce_for_20_s(&producer).await, 10_000);
        for node in [1, 2] {
            let (reauthentications, broken) = cluster.sessions(node);
            // One every 1.7 to 1.9 s for 20 s, on each connection (broker 1 has the bootstrap
            // connection too).
            let open = cluster.connections(node);
            assert!(
                (9 * open..=12 * open).contains(&reauthentications),
                "broker {node}: {reauthentications} on {open} connections"
            );
            assert_eq!(broken, 0, "broker {node} closed a session");
        }
        assert_eq!(
            (cluster.connections(1), cluster.connections(2)),
            connections
        );
        producer.close().await;
    }

    /// Counts the tokens it hands out; each lives an hour.
    struct Counting(AtomicUsize);

    impl TokenProvider for Counting {
        fn token(&self) -> TokenFuture<'_> {
            let n = self.0.fetch_add(1, Ordering::SeqCst);
            let expires = SystemTime::now() + Duration::from_secs(3600);
            Box::pin(
                async move { Ok(OAuthBearerToken::new(format!("token{n}"), "alice", expires)) },
            )
        }
    }

    /// The same with OAUTHBEARER: the token, still fresh, is presented again, not fetched anew
    /// per re-authentication.
    #[tokio::test(start_paused = true)]
    async fn oauthbearer_sessions_are_renewed_with_the_held_token() {
        let cluster = MemCluster::new(2);
        cluster.topic("t", &[1, 2]);
        let provider = Arc::new(Counting(AtomicUsize::new(0)));
        struct Shared(Arc<Counting>);
        impl TokenProvider for Shared {
            fn token(&self) -> TokenFuture<'_> {
                self.0.token()
            }
        }
        let config = sasl_client(&cluster).oauthbearer_token_provider(Shared(provider.clone()));
        let producer = Producer::builder(config).build().await.unwrap();
        assert_eq!(produce_for_20_s(&producer).await, 10_000);
        for node in [1, 2] {
            let (reauthentications, broken) = cluster.sessions(node);
            assert!(reauthentications >= 9, "{node}: {reauthentications}");
            assert_eq!(broken, 0);
        }
        assert_eq!(provider.0.load(Ordering::SeqCst), 1);
        producer.close().await;
    }

    /// A re-authentication waits for the answers ahead of it (here a Fetch the broker holds
    /// 5 s, where socket.timeout.ms is 1 s) before its own time starts: the consumer's
    /// connections stay up through sessions of 3 s for 20 s.
    #[tokio::test(start_paused = true)]
    async fn a_long_poll_fetch_in_flight_does_not_time_the_reauthentication_out() {
        let cluster = MemCluster::new(1);
        cluster.topic("t", &[1]);
        cluster.session_lifetime(1, Duration::from_secs(3));
        let config = ClientConfig::new()
            .bootstrap_servers([cluster.addr(1)])
            .set("security.protocol", "SASL_PLAINTEXT")
            .unwrap()
            .set("sasl.username", "user")
            .unwrap()
            .set("sasl.password", "secret")
            .unwrap()
            .set("socket.timeout.ms", 1000)
            .unwrap()
            .set("fetch.wait.max.ms", 5000)
            .unwrap();
        let mut consumer = crate::Consumer::builder(config).build().await.unwrap();
        consumer
            .assign([("t", 0)], crate::Offset::Earliest)
            .await
            .unwrap();
        // The first fetch makes the connection to the leader.
        let _ = consumer.poll(Duration::from_secs(1)).await;
        let connections = cluster.connections(1);
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(20) {
            assert!(consumer
                .poll(Duration::from_secs(1))
                .await
                .unwrap()
                .is_empty());
        }
        let (reauthentications, broken) = cluster.sessions(1);
        assert_eq!(broken, 0);
        assert!(reauthentications >= 4, "{reauthentications}");
        assert_eq!(cluster.connections(1), connections, "no reconnect");
    }

    /// Sets its flag when dropped.
    struct Dropped(Arc<std::sync::atomic::AtomicBool>);

    impl Drop for Dropped {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    /// Gives one token, which expires within 10 ms of the wall clock (the paused clock of the
    /// tests does not move it), then hangs at the next call until dropped.
    struct HangsOnRenewal {
        calls: AtomicUsize,
        dropped: Arc<std::sync::atomic::AtomicBool>,
    }

    impl TokenProvider for HangsOnRenewal {
        fn token(&self) -> TokenFuture<'_> {
            let first = self.calls.fetch_add(1, Ordering::SeqCst) == 0;
            let guard = (!first).then(|| Dropped(self.dropped.clone()));
            Box::pin(async move {
                if let Some(_guard) = guard {
                    std::future::pending::<()>().await;
                }
                let expires = SystemTime::now() + Duration::from_millis(10);
                Ok(OAuthBearerToken::new("token", "alice", expires))
            })
        }
    }

    /// A provider that never answers holds no connection open, and the session it cannot renew
    /// closes its connection when it ends; once the client is closed, the call to the provider
    /// is dropped with it.
    #[tokio::test(start_paused = true)]
    async fn a_provider_that_hangs_keeps_nothing_open_after_close() {
        let cluster = MemCluster::new(1);
        cluster.topic("t", &[1]);
        let dropped = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let provider = Arc::new(HangsOnRenewal {
            calls: AtomicUsize::new(0),
            dropped: dropped.clone(),
        });
        struct Shared(Arc<HangsOnRenewal>);
        impl TokenProvider for Shared {
            fn token(&self) -> TokenFuture<'_> {
                self.0.token()
            }
        }
        let config = sasl_client(&cluster).oauthbearer_token_provider(Shared(provider.clone()));
        let producer = Producer::builder(config).build().await.unwrap();
        producer
            .produce(ProducerRecord::new("t").partition(0))
            .await
            .unwrap()
            .await
            .unwrap();
        let connections = cluster.connections(1);
        // The token expires on the wall clock; the sessions of 2 s are due for renewal, and the
        // provider hangs.
        std::thread::sleep(Duration::from_millis(20));
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert_eq!(provider.calls.load(Ordering::SeqCst), 2);
        assert!(
            !dropped.load(Ordering::SeqCst),
            "the provider is still being asked"
        );
        assert_eq!(
            cluster.sessions(1),
            (0, 0),
            "no re-authentication without a token"
        );
        assert_eq!(cluster.connections(1), connections);
        producer.close().await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(
            dropped.load(Ordering::SeqCst),
            "the hung call outlived the client"
        );
    }

    /// Dropping the client stops the re-authentication tasks with the connections.
    #[tokio::test(start_paused = true)]
    async fn a_dropped_connection_is_not_renewed() {
        let cluster = MemCluster::new(1);
        cluster.topic("t", &[1]);
        let config = sasl_client(&cluster)
            .set("sasl.username", "user")
            .unwrap()
            .set("sasl.password", "secret")
            .unwrap();
        let producer = Producer::builder(config).build().await.unwrap();
        producer.close().await;
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert_eq!(cluster.sessions(1), (0, 0));
    }

    #[test]
    fn due_between_85_and_95_percent_and_not_within_a_second() {
        let began = Instant::now();
        let session = |answered_after: u64, lifetime: Duration| Session {
            began,
            handshake_answered: began + Duration::from_millis(answered_after),
            lifetime: Some(lifetime),
        };
        let ten = Duration::from_secs(10);
        let s = session(5, ten);
        assert_eq!(due(&s, ten, 0.0) - began, Duration::from_millis(8500));
        assert_eq!(due(&s, ten, 1.0) - began, Duration::from_millis(9500));
        assert_eq!(due(&s, ten, 0.5) - began, Duration::from_millis(9000));
        // A second after the broker took the handshake, however short the session.
        let short = Duration::from_millis(500);
        assert_eq!(
            due(&session(300, short), short, 0.5) - began,
            Duration::from_millis(1350)
        );
    }
}
