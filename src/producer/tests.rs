//! The producer's pipeline against an in-memory cluster ([`crate::testing`]) on paused time:
//! sinks that do not wait for each other, partitions that follow their leader, retries,
//! timeouts and what they say about the outcome, and every public async method dropped
//! mid-flight with the producer still working after it.

use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

use crate::testing::MemCluster;
use crate::{ClientConfig, ClientEvent, Error, Producer, ProducerRecord};

/// A producer's configuration for `cluster`: acks=1 (no idempotence) and linger.ms=0 (so
/// that callers send for the sinks whenever they can) unless a test says otherwise, and
/// timeouts a test can wait out on paused time.
fn config(cluster: &MemCluster) -> ClientConfig {
    ClientConfig::new()
        .bootstrap_servers([cluster.addr(1)])
        .set("acks", "1")
        .unwrap()
        .set("linger.ms", 0)
        .unwrap()
        .set("request.timeout.ms", 1000)
        .unwrap()
        .set("retry.backoff.ms", 10)
        .unwrap()
}

fn record(topic: &str, partition: i32, value: &'static str) -> ProducerRecord {
    ProducerRecord::new(topic)
        .partition(partition)
        .value(Bytes::from_static(value.as_bytes()))
}

fn values(records: Vec<(i64, Option<Bytes>)>) -> Vec<(i64, String)> {
    records
        .into_iter()
        .map(|(offset, value)| {
            let value = String::from_utf8(value.unwrap_or_default().to_vec()).unwrap();
            (offset, value)
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_stalled_broker_holds_up_no_other_broker() {
    let cluster = MemCluster::new(2);
    cluster.topic("t", &[1, 2]);
    let producer = Producer::builder(config(&cluster)).build().await.unwrap();
    cluster.stall(2, true);
    let started = Instant::now();
    let slow = producer.produce(record("t", 1, "slow")).await.unwrap();
    let fast = producer.send(record("t", 0, "fast")).await.unwrap();
    assert_eq!(fast.to_string(), "t[0]@0");
    assert!(
        started.elapsed() < Duration::from_millis(50),
        "{:?}",
        started.elapsed()
    );
    // The stalled request is given up after twice request.timeout.ms, its connection closed,
    // and the batch sent again: to a broker that answers by then.
    tokio::time::sleep(Duration::from_millis(500)).await;
    cluster.stall(2, false);
    let slow = slow.await.unwrap();
    assert_eq!(slow.to_string(), "t[1]@0");
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(values(cluster.records("t", 1)), [(0, "slow".to_owned())]);
    assert_eq!(
        cluster.connections(2),
        2,
        "the stalled connection was replaced"
    );
}

#[tokio::test(start_paused = true)]
async fn a_partition_follows_its_leader_to_another_sink() {
    let cluster = MemCluster::new(2);
    cluster.topic("t", &[1]);
    let producer = Producer::builder(config(&cluster)).build().await.unwrap();
    producer.send(record("t", 0, "a")).await.unwrap();
    cluster.move_leader("t", 0, 2);
    // Broker 1 answers NOT_LEADER_OR_FOLLOWER; the metadata names broker 2, whose sink sends it.
    let moved = producer.send(record("t", 0, "b")).await.unwrap();
    assert_eq!(moved.to_string(), "t[0]@1");
    assert_eq!(cluster.produce_requests(2), 1);
    assert_eq!(
        values(cluster.records("t", 0)),
        [(0, "a".to_owned()), (1, "b".to_owned())]
    );
}

#[tokio::test(start_paused = true)]
async fn a_refused_batch_is_retried_until_the_broker_takes_it() {
    let cluster = MemCluster::new(1);
    cluster.topic("t", &[1]);
    let producer = Producer::builder(config(&cluster)).build().await.unwrap();
    cluster.refuse("t", 0, 19, 2); // NOT_ENOUGH_REPLICAS, twice
    let delivered = producer.send(record("t", 0, "x")).await.unwrap();
    assert_eq!(delivered.offset, Some(0));
    assert_eq!(cluster.produce_requests(1), 3);
}

#[tokio::test(start_paused = true)]
async fn the_sinks_of_an_idempotent_producer_share_one_init_producer_id() {
    let cluster = MemCluster::new(3);
    cluster.topic("t", &[1, 2, 3]);
    let config = config(&cluster).set("acks", "all").unwrap();
    let producer = Producer::builder(config).build().await.unwrap();
    let pending: Vec<_> = futures_join(&producer, 3).await;
    for (p, delivery) in pending.into_iter().enumerate() {
        assert_eq!(delivery.await.unwrap().to_string(), format!("t[{p}]@0"));
    }
    assert_eq!(cluster.init_producer_id_requests(), 1);
}

/// Queues one record on each of `partitions` partitions of `t`, returning their futures.
async fn futures_join(producer: &Producer, partitions: i32) -> Vec<crate::DeliveryFuture> {
    let mut pending = Vec::new();
    for p in 0..partitions {
        pending.push(producer.produce(record("t", p, "x")).await.unwrap());
    }
    pending
}

#[tokio::test(start_paused = true)]
async fn a_flush_dropped_mid_way_leaves_linger_in_force() {
    let cluster = MemCluster::new(1);
    cluster.topic("t", &[1]);
    let config = config(&cluster).set("linger.ms", 10_000).unwrap();
    let producer = Producer::builder(config).build().await.unwrap();
    cluster.stall(1, true);
    let first = producer.produce(record("t", 0, "first")).await.unwrap();
    let flush = producer.flush(Duration::from_secs(30));
    assert!(tokio::time::timeout(Duration::from_millis(100), flush)
        .await
        .is_err());
    cluster.stall(1, false);
    let started = Instant::now();
    let second = producer.produce(record("t", 0, "second")).await.unwrap();
    first.await.unwrap();
    let second = second.await.unwrap();
    // Had the dropped flush stayed on, the second record would have gone with no linger.
    assert!(
        started.elapsed() >= Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(second.offset, Some(1));
    // And a flush that runs to its end still sends at once.
    let third = producer.produce(record("t", 0, "third")).await.unwrap();
    let started = Instant::now();
    producer.flush(Duration::from_secs(30)).await.unwrap();
    assert!(started.elapsed() < Duration::from_millis(50));
    assert_eq!(third.await.unwrap().offset, Some(2));
}

#[tokio::test(start_paused = true)]
async fn a_produce_dropped_while_it_waits_for_space_queues_nothing() {
    let cluster = MemCluster::new(1);
    cluster.topic("t", &[1]);
    let config = config(&cluster)
        .set("linger.ms", 1_000)
        .unwrap()
        .set("queue.buffering.max.messages", 1)
        .unwrap();
    let producer = Producer::builder(config).build().await.unwrap();
    let first = producer.produce(record("t", 0, "first")).await.unwrap();
    let waiting = producer.produce(record("t", 0, "dropped"));
    assert!(tokio::time::timeout(Duration::from_millis(100), waiting)
        .await
        .is_err());
    assert_eq!(producer.in_flight_count(), 1);
    first.await.unwrap();
    let after = producer.send(record("t", 0, "after")).await.unwrap();
    assert_eq!(after.offset, Some(1));
    assert_eq!(
        values(cluster.records("t", 0)),
        [(0, "first".to_owned()), (1, "after".to_owned())]
    );
    // try_send refuses rather than waits.
    let _queued = producer.produce(record("t", 0, "queued")).await.unwrap();
    let refused = producer
        .try_send(record("t", 0, "refused"))
        .await
        .unwrap_err();
    assert!(matches!(refused, Error::QueueFull { .. }), "{refused:?}");
}

#[tokio::test(start_paused = true)]
async fn a_delivery_future_dropped_or_abandoned_leaves_the_record_delivered() {
    let cluster = MemCluster::new(1);
    cluster.topic("t", &[1]);
    let config = config(&cluster).set("linger.ms", 100).unwrap();
    let producer = Producer::builder(config)
        .delivery_reports()
        .build()
        .await
        .unwrap();
    let mut reports = producer.delivery_reports().unwrap();
    drop(producer.produce(record("t", 0, "dropped")).await.unwrap());
    let mut abandoned = producer.produce(record("t", 0, "abandoned")).await.unwrap();
    // Polled once, given up on by a timeout, then awaited again: still its own outcome.
    assert!(
        tokio::time::timeout(Duration::from_millis(1), &mut abandoned)
            .await
            .is_err()
    );
    let first = reports.recv().await.unwrap();
    assert_eq!(first.metadata.to_string(), "t[0]@0");
    assert!(first.error.is_none());
    assert_eq!(abandoned.await.unwrap().to_string(), "t[0]@1");
    assert_eq!(reports.recv().await.unwrap().metadata.offset, Some(1));
}

#[tokio::test(start_paused = true)]
async fn close_sends_what_lingers_at_once_and_waits_for_it() {
    let cluster = MemCluster::new(2);
    cluster.topic("t", &[1, 2]);
    let config = config(&cluster).set("linger.ms", 60_000).unwrap();
    let producer = Producer::builder(config).build().await.unwrap();
    let a = producer.produce(record("t", 0, "a")).await.unwrap();
    let b = producer.produce(record("t", 1, "b")).await.unwrap();
    let started = Instant::now();
    producer.clone().close().await;
    assert!(started.elapsed() < Duration::from_millis(50));
    assert_eq!(a.await.unwrap().offset, Some(0));
    assert_eq!(b.await.unwrap().offset, Some(0));
    let late = producer.produce(record("t", 0, "late")).await.unwrap_err();
    assert!(matches!(late, Error::Closed), "{late:?}");
}

#[tokio::test(start_paused = true)]
async fn a_timeout_is_outcome_unknown_only_when_the_request_was_written() {
    let cluster = MemCluster::new(2);
    cluster.topic("t", &[1, 2]);
    let config = config(&cluster)
        .set("delivery.timeout.ms", 5_000)
        .unwrap()
        .set("socket.timeout.ms", 1_000)
        .unwrap();
    let producer = Producer::builder(config).build().await.unwrap();
    // Broker 1 takes the request and never answers: it may have written the record.
    cluster.stall(1, true);
    // Broker 2 never completes a handshake: the record never left.
    cluster.silence(2);
    let written = producer.produce(record("t", 0, "w")).await.unwrap();
    let unsent = producer.produce(record("t", 1, "u")).await.unwrap();
    let (written, unsent) = (written.await.unwrap_err(), unsent.await.unwrap_err());
    for e in [&written, &unsent] {
        assert!(
            matches!(e, Error::Timeout { what, .. } if what.contains("delivery.timeout.ms")),
            "{e:?}"
        );
    }
    assert!(written.is_outcome_unknown(), "{written}");
    assert!(!unsent.is_outcome_unknown(), "{unsent}");
}

#[tokio::test(start_paused = true)]
async fn connecting_to_a_silent_broker_times_out_with_nothing_sent() {
    let cluster = MemCluster::new(1);
    cluster.silence(1);
    let config = config(&cluster)
        .set("socket.connection.setup.timeout.ms", 1_000)
        .unwrap()
        .set("topic.metadata.propagation.max.ms", 3_000)
        .unwrap();
    // Building does not fail: it waits for the first answer as long as a connection may take.
    let started = Instant::now();
    let producer = Producer::builder(config).build().await.unwrap();
    assert_eq!(started.elapsed(), Duration::from_secs(1));
    let Some(ClientEvent::AllBrokersDown(down)) = producer.events().recv().await else {
        panic!("all brokers are down")
    };
    let text = down.to_string();
    assert!(
        text.contains("socket.connection.setup.timeout.ms"),
        "{text}"
    );
    assert!(down.is_retriable(), "{down:?}");
    let err = producer.send(record("t", 0, "v")).await.unwrap_err();
    assert!(!err.is_outcome_unknown(), "{err:?}");
}

#[tokio::test(start_paused = true)]
async fn a_producer_built_before_its_brokers_sends_once_they_are_up() {
    let cluster = std::sync::Arc::new(MemCluster::new(1));
    cluster.topic("t", &[1]);
    cluster.down(1, true);
    let started = Instant::now();
    let producer = Producer::builder(config(&cluster)).build().await.unwrap();
    assert!(
        started.elapsed() < Duration::from_millis(10),
        "{:?}",
        started.elapsed()
    );
    let mut events = producer.events();
    assert!(matches!(
        events.recv().await,
        Some(ClientEvent::AllBrokersDown(_))
    ));
    let up = {
        let cluster = cluster.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(3)).await;
            cluster.down(1, false);
        })
    };
    // produce() waits for the topic (topic.metadata.propagation.max.ms) while the keeper asks.
    let delivered = producer.send(record("t", 0, "late")).await.unwrap();
    assert_eq!(delivered.offset, Some(0));
    assert!(started.elapsed() >= Duration::from_secs(3));
    assert!(matches!(
        events.recv().await,
        Some(ClientEvent::BrokersReachable)
    ));
    up.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn delivery_reports_hand_back_the_record_and_its_opaque() {
    let cluster = MemCluster::new(1);
    cluster.topic("t", &[1]);
    // The second request for t[0] is refused for good: its record fails.
    cluster.refuse("t", 0, 87, 1); // INVALID_RECORD, not retriable
    let producer = Producer::builder(config(&cluster))
        .delivery_reports()
        .build()
        .await
        .unwrap();
    let mut reports = producer.delivery_reports().unwrap();
    let sent = record("t", 0, "first")
        .key("k")
        .header("h", "v")
        .opaque(7_u32);
    assert!(producer.send(sent).await.is_err());
    producer
        .send(record("t", 0, "second").opaque("two"))
        .await
        .unwrap();
    let failed = reports.recv().await.unwrap();
    assert!(failed.error.is_some());
    assert_eq!(failed.key.as_deref(), Some(&b"k"[..]));
    assert_eq!(failed.value.as_deref(), Some(&b"first"[..]));
    assert_eq!(failed.headers.len(), 1);
    assert_eq!(failed.opaque.unwrap().downcast_ref::<u32>(), Some(&7));
    let delivered = reports.recv().await.unwrap();
    assert!(delivered.error.is_none());
    assert_eq!(delivered.metadata.offset, Some(0));
    assert_eq!(
        delivered.opaque.unwrap().downcast_ref::<&str>(),
        Some(&"two")
    );

    // delivery.report.only.error: the stream tells of failures only.
    let cluster = MemCluster::new(1);
    cluster.topic("t", &[1]);
    let config = config(&cluster)
        .set("delivery.report.only.error", "true")
        .unwrap();
    let producer = Producer::builder(config)
        .delivery_reports()
        .build()
        .await
        .unwrap();
    let mut reports = producer.delivery_reports().unwrap();
    producer.send(record("t", 0, "fine")).await.unwrap();
    cluster.refuse("t", 0, 87, 1);
    assert!(producer.send(record("t", 0, "refused")).await.is_err());
    let only = reports.recv().await.unwrap();
    assert_eq!(only.value.as_deref(), Some(&b"refused"[..]));
    producer.close().await;
    assert!(
        reports.recv().await.is_none(),
        "no report of the delivered record"
    );
}

#[tokio::test(start_paused = true)]
async fn purge_fails_what_was_not_sent_and_leaves_what_is_in_flight() {
    let cluster = MemCluster::new(1);
    cluster.topic("t", &[1]);
    let config = config(&cluster)
        .set("max.in.flight", 1)
        .unwrap()
        .set("delivery.timeout.ms", 600_000)
        .unwrap();
    let producer = Producer::builder(config)
        .delivery_reports()
        .build()
        .await
        .unwrap();
    let mut reports = producer.delivery_reports().unwrap();
    // The first request is held by the broker; the rest queue behind it (one in flight).
    cluster.stall(1, true);
    let in_flight = producer.produce(record("t", 0, "held")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut queued = Vec::new();
    for _ in 0..5 {
        queued.push(producer.produce(record("t", 0, "queued")).await.unwrap());
    }
    assert_eq!(producer.purge(), 5);
    for delivery in queued {
        assert!(matches!(delivery.await, Err(Error::Purged)));
    }
    for _ in 0..5 {
        let report = reports.recv().await.unwrap();
        assert!(matches!(report.error, Some(Error::Purged)), "{report:?}");
    }
    assert_eq!(producer.in_flight_count(), 1);
    // The held request's connection is given up at the socket timeout; the record, sent
    // again, is delivered once the broker answers.
    cluster.stall(1, false);
    let delivered = in_flight.await.unwrap();
    assert_eq!(delivered.offset, Some(0));
    assert_eq!(values(cluster.records("t", 0)), [(0, "held".to_owned())]);
}

/// The statistics count what the producer did: records queued while a broker stalls, then
/// acknowledged per partition, the requests and round trips of the broker that took them,
/// and the retried batch.
#[tokio::test(start_paused = true)]
async fn statistics_count_what_was_queued_sent_and_acknowledged() {
    let cluster = MemCluster::new(2);
    cluster.topic("t", &[1, 2]);
    let config = config(&cluster)
        .set("statistics.interval.ms", 1000)
        .unwrap()
        .set("client.id", "p")
        .unwrap();
    let producer = Producer::builder(config).build().await.unwrap();
    let mut statistics = producer.statistics();
    cluster.stall(2, true);
    let mut pending = Vec::new();
    for i in 0..6 {
        pending.push(producer.produce(record("t", i % 2, "v")).await.unwrap());
    }
    let stats = statistics.recv().await.unwrap();
    assert!(stats.name.starts_with("p#producer-"), "{}", stats.name);
    // Partition 1's three wait on the stalled broker: one batch in flight.
    let p1 = &stats.topics["t"].partitions["1"];
    assert_eq!((p1.msgs, p1.txmsgs, p1.msgs_inflight), (3, 0, 3));
    assert_eq!(stats.msg_cnt, 3);
    assert_eq!(stats.topics["t"].partitions["0"].txmsgs, 3);
    let broker1 = &stats.brokers[&format!("{}/1", cluster.addr(1))];
    assert_eq!(broker1.state, "UP");
    assert!(broker1.req["Produce"] >= 1, "{:?}", broker1.req);
    // The first window holds every answer so far.
    assert_eq!(broker1.rtt.cnt, broker1.rx, "{broker1:?}");
    assert!(broker1.toppars.contains_key("t-0") && !broker1.toppars.contains_key("t-1"));
    let broker2 = &stats.brokers[&format!("{}/2", cluster.addr(2))];
    assert_eq!(broker2.waitresp_cnt, 1, "{broker2:?}");

    cluster.stall(2, false);
    for delivery in pending {
        delivery.await.unwrap();
    }
    // One emitted while they were still on their way may be waiting: the one after.
    let _ = statistics.recv().await.unwrap();
    let stats = statistics.recv().await.unwrap();
    let acked: Vec<i64> = stats.topics["t"]
        .partitions
        .values()
        .map(|p| p.txmsgs)
        .collect();
    assert_eq!((acked, stats.txmsgs, stats.msg_cnt), (vec![3, 3], 6, 0));
    let broker2 = &stats.brokers[&format!("{}/2", cluster.addr(2))];
    assert_eq!(broker2.waitresp_cnt, 0);
    assert!(stats.topics["t"].batchcnt.cnt >= 1);
    producer.close().await;
}

/// Without `statistics.interval.ms`, the stream ends at once and nothing is counted.
#[tokio::test(start_paused = true)]
async fn without_an_interval_the_statistics_stream_ends_at_once() {
    let cluster = MemCluster::new(1);
    cluster.topic("t", &[1]);
    let producer = Producer::builder(config(&cluster)).build().await.unwrap();
    assert!(producer.statistics().recv().await.is_none());
    assert!(producer.inner.cluster.broker_counters(1).is_none());
    producer.close().await;
}

/// A broker refusing the client's login on a connection the producer's own task makes (to the
/// leader of a partition, after the bootstrap went well) is reported as a client event, since
/// no call of the application's made that connection: librdkafka's error_cb.
#[tokio::test(start_paused = true)]
async fn a_login_refused_in_the_background_is_a_client_event() {
    let cluster = MemCluster::new(2);
    cluster.topic("t", &[2]);
    cluster.refuse_logins(2);
    let config = config(&cluster)
        .set("security.protocol", "SASL_PLAINTEXT")
        .unwrap()
        .set("sasl.mechanism", "PLAIN")
        .unwrap()
        .set("sasl.username", "user")
        .unwrap()
        .set("sasl.password", "secret")
        .unwrap()
        .set("linger.ms", 5)
        .unwrap();
    let producer = Producer::builder(config).build().await.unwrap();
    let mut events = producer.events();
    let delivery = producer.produce(record("t", 0, "v")).await.unwrap();
    match tokio::time::timeout(Duration::from_secs(10), events.recv()).await {
        Ok(Some(ClientEvent::Error(Error::Authentication { broker, .. }))) => {
            assert_eq!(broker, cluster.addr(2));
        }
        other => panic!("expected ClientEvent::Error, got {other:?}"),
    }
    // The record fails with it too, within its delivery timeout.
    assert!(matches!(delivery.await, Err(Error::Authentication { .. })));
    producer.close().await;
}
