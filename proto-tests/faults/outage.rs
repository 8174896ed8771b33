//! Every broker down at once: for 10 s and back, with a producer and a consumer running that
//! are never restarted; and for good, where `delivery.timeout.ms` fails what is queued.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use purekafka::{Consumer, Error, Offset, Producer, ProducerRecord};

use super::cluster;
use super::ledger::{read_back, tally, Load};

const BROKERS: [i32; 3] = [1, 2, 3];

async fn kill_all() {
    for id in BROKERS {
        cluster::kill(id).await;
    }
}

/// Starts the three brokers together: each waits for a quorum of controllers.
async fn start_all() {
    let starts: Vec<_> = BROKERS
        .iter()
        .map(|&id| tokio::spawn(cluster::start(id)))
        .collect();
    for start in starts {
        start.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_broker_down_for_10_s_and_back() {
    const RECORDS: u64 = 60_000;
    const PARTITIONS: i32 = 3;
    let _turn = cluster::serial().await;
    let topic = cluster::replicated_topic("outage", PARTITIONS).await;
    let producer = cluster::idempotent_producer().await;
    // A consumer reading throughout, from before the outage to after it.
    let mut consumer = Consumer::builder(cluster::config()).build().await.unwrap();
    consumer
        .assign((0..PARTITIONS).map(|p| (&topic, p)), Offset::Earliest)
        .await
        .unwrap();
    let reading = tokio::spawn(async move {
        let mut seen = HashSet::new();
        let mut errors = 0;
        let deadline = Instant::now() + Duration::from_secs(240);
        while seen.len() < RECORDS as usize && Instant::now() < deadline {
            match tokio::time::timeout(Duration::from_secs(1), consumer.recv()).await {
                Ok(Ok(msg)) => {
                    let value: [u8; 8] = msg.value.as_deref().unwrap().try_into().unwrap();
                    seen.insert(u64::from_be_bytes(value));
                }
                // While the brokers are down, recv reports it; the consumer goes on.
                Ok(Err(_)) => errors += 1,
                Err(_) => {}
            }
        }
        (seen, errors)
    });

    let started = Instant::now();
    let load = Load::start(producer, &topic, RECORDS, 5_000);
    load.acked_at_least(RECORDS as usize / 4).await;
    let down_at = started.elapsed();
    kill_all().await;
    tokio::time::sleep(Duration::from_secs(10)).await;
    start_all().await;
    let up_at = started.elapsed();
    let acked_when_back = load.acked.load(std::sync::atomic::Ordering::SeqCst);
    load.acked_at_least(acked_when_back + 1).await;
    let first_ack_after = started.elapsed() - up_at;
    let outcomes = load.finish().await;
    let (seen, consumer_errors) = reading.await.unwrap();
    let log = read_back(&topic, PARTITIONS).await;
    let tally = tally(RECORDS, &outcomes, &log);
    let unread: usize = outcomes
        .acked
        .keys()
        .filter(|seq| !seen.contains(seq))
        .count();
    cluster::report(
        "every broker down for 10 s, then back",
        serde_json::json!({
            "tally": tally,
            "down_at_s": down_at.as_secs_f64(),
            "brokers_back_after_s": (up_at - down_at).as_secs_f64(),
            "first_ack_after_return_s": first_ack_after.as_secs_f64(),
            "live_consumer_read": seen.len(),
            "live_consumer_missed_acked": unread,
            "live_consumer_errors_reported": consumer_errors,
        }),
    );
    tally.assert_exactly_once();
    assert_eq!(
        unread, 0,
        "the consumer that lived through the outage read everything"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn brokers_that_never_return_fail_queued_records_after_the_delivery_timeout() {
    let _turn = cluster::serial().await;
    let topic = cluster::replicated_topic("gone", 3).await;
    let config = cluster::config()
        .set("delivery.timeout.ms", 5000)
        .unwrap()
        .set("socket.timeout.ms", 2000)
        .unwrap()
        .set("linger.ms", 0)
        .unwrap();
    let producer = Producer::builder(config).build().await.unwrap();
    producer
        .send(ProducerRecord::new(&topic).key("warm").value("up"))
        .await
        .unwrap();
    kill_all().await;
    let sent = Instant::now();
    let mut pending = Vec::new();
    for i in 0..100 {
        let record = ProducerRecord::new(&topic).key(format!("k{i}")).value("x");
        pending.push(producer.produce(record).await.unwrap());
    }
    let mut timeouts = 0;
    let mut last = Duration::ZERO;
    for delivery in pending {
        match delivery.await {
            Err(Error::Timeout { what, .. }) => {
                assert!(what.contains("delivery.timeout.ms"), "{what}");
                timeouts += 1;
            }
            other => panic!("expected the delivery timeout, got {other:?}"),
        }
        last = sent.elapsed();
    }
    producer.close().await;
    start_all().await;
    cluster::report(
        "every broker down for good",
        serde_json::json!({
            "queued": 100,
            "failed_with_delivery_timeout": timeouts,
            "delivery_timeout_ms": 5000,
            "last_failure_after_s": last.as_secs_f64(),
        }),
    );
    assert!(
        last < Duration::from_secs(15),
        "the last record failed {last:?} after it was queued"
    );
}
