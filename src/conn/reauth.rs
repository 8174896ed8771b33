//! KIP-368 re-authentication: a broker with `connections.max.reauth.ms` set (or an
//! OAUTHBEARER token that expires) gives each SASL session a lifetime, and closes a
//! connection whose session expired at its next request. Before that, the connection
//! authenticates again, on the same socket: requests in flight are answered first, requests
//! sent meanwhile wait their turn, and none of them fails because of it.
//!
//! Each connection with a lifetime has a task that sleeps until 85-95% of it (a random point,
//! so that a client's connections do not all re-authenticate at once, as the Java client
//! spreads them), then re-authenticates. The task holds the connection weakly: dropping the
//! connection stops it.

use std::time::Duration;

use tokio::time::Instant;

use super::handshake::{self, Session};
use super::{Connection, Sasl};
use crate::error::Error;

/// The broker refuses to start re-authentication within a second of the last start.
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
    let sasl = sasl.clone();
    let task = tokio::spawn(async move {
        let mut session = session;
        while let Some(lifetime) = session.lifetime {
            let expires = session.began + lifetime;
            tokio::time::sleep_until(session.began + due(lifetime, fastrand::f64())).await;
            loop {
                let Some(conn) = weak.upgrade() else { return };
                if conn.is_closed() {
                    return;
                }
                match handshake::reauthenticate(&conn, &sasl).await {
                    Ok(next) => {
                        conn.wire.reauthenticated();
                        tracing::debug!(
                            broker = conn.broker(),
                            mechanism = sasl.mechanism.name(),
                            session_lifetime_ms = next.lifetime.map(|l| l.as_millis() as u64),
                            "re-authenticated"
                        );
                        session = next;
                        break;
                    }
                    // No token yet, nothing sent: the session may outlast another try.
                    Err(e) if is_before_exchange(&e) && Instant::now() + TOKEN_RETRY < expires => {
                        tracing::warn!(broker = conn.broker(), error = %e, "re-authentication postponed");
                        drop(conn);
                        tokio::time::sleep(TOKEN_RETRY).await;
                    }
                    Err(e) => {
                        tracing::warn!(broker = conn.broker(), error = %e, "re-authentication failed; closing the connection");
                        conn.poison(e);
                        return;
                    }
                }
            }
        }
    });
    conn.wire.adopt_reauth(task.abort_handle());
}

/// When to re-authenticate, after a session of `lifetime` began: at 85% to 95% of it, by
/// `draw` (from 0 to 1), and no sooner than the broker allows.
fn due(lifetime: Duration, draw: f64) -> Duration {
    lifetime
        .mul_f64(0.85 + 0.10 * draw.clamp(0.0, 1.0))
        .max(AT_LEAST)
}

/// An error from before any byte of the exchange went out: the token source had none.
fn is_before_exchange(error: &Error) -> bool {
    matches!(error, Error::Authentication { message, .. } if message.starts_with(handshake::NO_TOKEN))
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
        let ten = Duration::from_secs(10);
        assert_eq!(due(ten, 0.0), Duration::from_millis(8500));
        assert_eq!(due(ten, 1.0), Duration::from_millis(9500));
        assert_eq!(due(ten, 0.5), Duration::from_millis(9000));
        assert_eq!(due(Duration::from_millis(500), 0.5), AT_LEAST);
    }
}
