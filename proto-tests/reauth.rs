//! KIP-368 re-authentication under load, against the REAUTH listener, whose sessions last 10 s
//! (`connections.max.reauth.ms=10000`): for 60 s a producer sends and a consumer reads, with
//! PLAIN, SCRAM-SHA-512 and OAUTHBEARER each. Kafka closes a connection at the first request
//! after its session expired, or at a request that comes between the messages of a
//! re-authentication; so every record delivered and read, on connections never lost, is the
//! proof. The figures (records, re-authentications, connections lost) are printed for
//! RELIABILITY.md; run with `-- --nocapture` to see them.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use purekafka::{
    ClientConfig, Consumer, Offset, Producer, ProducerRecord, SaslMechanism, Statistics,
    StatisticsStream,
};

use crate::common::{admin, new_topic, reauth_addr};

/// How long each mechanism is loaded.
const LOAD: Duration = Duration::from_secs(60);
/// One record per this, per partition pair: about 25,000 records a minute.
const EVERY: Duration = Duration::from_micros(2400);

/// The newest statistics a client emitted.
fn latest(mut stream: StatisticsStream) -> Arc<Mutex<Option<Arc<Statistics>>>> {
    let latest: Arc<Mutex<Option<Arc<Statistics>>>> = Arc::default();
    let keep = latest.clone();
    tokio::spawn(async move {
        while let Some(stats) = stream.recv().await {
            *keep.lock().unwrap() = Some(stats);
        }
    });
    latest
}

/// Re-authentications and connections lost, summed over the brokers.
fn sessions(stats: &Statistics) -> (i64, i64) {
    stats.brokers.values().fold((0, 0), |(reauths, lost), b| {
        (reauths + b.reauths, lost + b.disconnects)
    })
}

async fn under_load(config: ClientConfig, what: &str) {
    let config = config
        .bootstrap_servers(reauth_addr().split(','))
        .set("statistics.interval.ms", 1000)
        .unwrap();
    let topic = new_topic("reauth", 2).await;
    let producer = Producer::builder(config.clone()).build().await.unwrap();
    let produced = latest(producer.statistics());
    let mut consumer = Consumer::builder(config).build().await.unwrap();
    let consumed = latest(consumer.statistics());
    consumer
        .assign([(topic.as_str(), 0), (topic.as_str(), 1)], Offset::Earliest)
        .await
        .unwrap();

    let mut sending = {
        let producer = producer.clone();
        let topic = topic.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let mut deliveries = Vec::new();
            let mut ticks = tokio::time::interval(EVERY);
            let mut n = 0u64;
            while started.elapsed() < LOAD {
                ticks.tick().await;
                let record = ProducerRecord::new(&topic).value(n.to_string());
                deliveries.push(producer.produce(record).await.expect("queued"));
                n += 1;
            }
            let mut failed = Vec::new();
            for d in deliveries {
                if let Err(e) = d.await {
                    failed.push(e.to_string());
                }
            }
            (n, failed)
        })
    };
    let mut read = BTreeSet::new();
    let mut reads = 0u64;
    let mut read_errors = Vec::new();
    let deadline = Instant::now() + LOAD + Duration::from_secs(30);
    let mut sent = None;
    let mut failed = Vec::new();
    loop {
        if sent.is_none() && sending.is_finished() {
            let (n, f) = (&mut sending).await.unwrap();
            (sent, failed) = (Some(n), f);
        }
        if sent.is_some_and(|n| read.len() as u64 >= n) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: read {} records by the deadline",
            read.len()
        );
        match consumer.poll(Duration::from_millis(200)).await {
            Ok(messages) => {
                for m in messages {
                    reads += 1;
                    read.insert(String::from_utf8(m.value.unwrap().to_vec()).unwrap());
                }
            }
            Err(e) => read_errors.push(e.to_string()),
        }
    }
    let sent = sent.unwrap();
    // The last statistics, a second after the load.
    for _ in 0..12 {
        let _ = consumer.poll(Duration::from_millis(100)).await;
    }
    let producer_stats = produced
        .lock()
        .unwrap()
        .clone()
        .expect("producer statistics");
    let consumer_stats = consumed
        .lock()
        .unwrap()
        .clone()
        .expect("consumer statistics");
    let (p_reauths, p_lost) = sessions(&producer_stats);
    let (c_reauths, c_lost) = sessions(&consumer_stats);
    eprintln!(
        "re-authentication, {what}: {sent} records sent in {}s, {} failed, {} read ({} errors); \
         producer: {p_reauths} re-authentications, {p_lost} connections lost; consumer: \
         {c_reauths} re-authentications, {c_lost} connections lost",
        LOAD.as_secs(),
        failed.len(),
        read.len(),
        read_errors.len()
    );
    assert!(failed.is_empty(), "{what}: failed deliveries: {failed:?}");
    assert!(
        read_errors.is_empty(),
        "{what}: consumer errors: {read_errors:?}"
    );
    assert_eq!(
        (read.len() as u64, reads),
        (sent, sent),
        "{what}: every record read, each once"
    );
    assert_eq!((p_lost, c_lost), (0, 0), "{what}: connections lost");
    // A session of 10 s is renewed at 8.5-9.5 s: at least 5 times in 60 s on each client's
    // connection to the leader.
    assert!(
        p_reauths >= 5 && c_reauths >= 5,
        "{what}: {p_reauths}, {c_reauths}"
    );
    producer.close().await;
    admin().await.delete_topic(&topic).await.unwrap();
}

#[tokio::test]
async fn plain_reauthenticates_under_load() {
    let config = ClientConfig::new().sasl(
        SaslMechanism::Plain,
        "ckafka-local#purekafka",
        "purekafka-secret",
    );
    under_load(config, "PLAIN").await;
}

#[tokio::test]
async fn scram_reauthenticates_under_load() {
    let config = ClientConfig::new().sasl(SaslMechanism::ScramSha512, "alice", "alice-secret");
    under_load(config, "SCRAM-SHA-512").await;
}

#[tokio::test]
async fn oauthbearer_reauthenticates_under_load() {
    let config = crate::oauth::unsecured(&reauth_addr(), "alice");
    under_load(config, "OAUTHBEARER").await;
}
