//! Shared by the proto-tests: broker addresses, configs, unique topics, and a TCP proxy that
//! counts connections.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use purekafka::{Admin, CKafkaConfig, ClientConfig};
use tokio::net::{TcpListener, TcpStream};

/// The PLAINTEXT bootstrap address.
pub fn plaintext_addr() -> String {
    std::env::var("PUREKAFKA_PLAINTEXT").unwrap_or_else(|_| "127.0.0.1:9092".into())
}

/// The SASL_PLAINTEXT bootstrap address.
pub fn sasl_addr() -> String {
    std::env::var("PUREKAFKA_SASL").unwrap_or_else(|_| "127.0.0.1:9094".into())
}

/// fixtures/ckafka.json, pointed at the SASL listener under test.
pub fn ckafka() -> CKafkaConfig {
    let mut c = CKafkaConfig::load(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/ckafka.json"))
        .expect("fixtures/ckafka.json loads");
    c.bootstrap_servers = vec![sasl_addr()];
    c
}

/// A client config for the PLAINTEXT listener.
pub fn plaintext() -> ClientConfig {
    ClientConfig::new().bootstrap_servers([plaintext_addr()])
}

/// A topic name no other test (or earlier run) uses.
pub fn unique_topic(prefix: &str) -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "{prefix}-{nanos}-{}",
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// An admin client on the PLAINTEXT listener.
pub async fn admin() -> Admin {
    Admin::builder(plaintext())
        .build()
        .await
        .expect("admin connects over PLAINTEXT")
}

/// A TCP proxy on 127.0.0.1 forwarding to `target`, counting the connections it accepted.
pub struct CountingProxy {
    pub addr: String,
    pub connections: Arc<AtomicUsize>,
}

impl CountingProxy {
    pub async fn start(target: String) -> CountingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let connections = Arc::new(AtomicUsize::new(0));
        let count = connections.clone();
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                let target = target.clone();
                tokio::spawn(async move {
                    if let Ok(mut broker) = TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut broker).await;
                    }
                });
            }
        });
        CountingProxy { addr, connections }
    }

    pub fn count(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}
