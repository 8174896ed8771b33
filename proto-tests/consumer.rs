//! The consumer's controls: poll, seek, pause and resume, watermarks and lag.

use std::time::Duration;

use purekafka::{Consumer, Offset, Producer, ProducerRecord};

use crate::common::{admin, plaintext, unique_topic};

async fn topic_with(n: usize, partitions: i32) -> String {
    let topic = unique_topic("controls");
    admin()
        .await
        .create_topic(&topic, partitions, 1)
        .await
        .unwrap();
    let producer = Producer::builder(plaintext()).build().await.unwrap();
    for i in 0..n {
        producer
            .send(
                ProducerRecord::new(&topic)
                    .partition(i as i32 % partitions)
                    .value(format!("{i}")),
            )
            .await
            .unwrap();
    }
    topic
}

async fn assigned(topic: &str, partitions: i32) -> Consumer {
    let mut consumer = Consumer::builder(plaintext()).build().await.unwrap();
    consumer
        .assign((0..partitions).map(|p| (topic, p)), Offset::Earliest)
        .await
        .unwrap();
    consumer
}

#[tokio::test]
async fn poll_returns_batches_and_nothing_when_idle() {
    let topic = topic_with(20, 1).await;
    let mut consumer = assigned(&topic, 1).await;
    let mut got = Vec::new();
    while got.len() < 20 {
        let batch = consumer.poll(Duration::from_secs(10)).await.unwrap();
        assert!(!batch.is_empty());
        got.extend(batch.into_iter().map(|m| m.offset));
    }
    assert_eq!(got, (0..20).collect::<Vec<i64>>());
    assert!(consumer
        .poll(Duration::from_millis(700))
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn seek_rereads_and_watermarks_give_the_lag() {
    let topic = topic_with(10, 1).await;
    let mut consumer = assigned(&topic, 1).await;
    for expected in 0..4 {
        assert_eq!(consumer.recv().await.unwrap().offset, expected);
    }
    assert_eq!(consumer.watermark_and_lag(&topic, 0), Some((10, 6)));
    consumer.seek(&topic, 0, 1).unwrap();
    assert_eq!(consumer.recv().await.unwrap().offset, 1);
    assert!(
        consumer.seek(&topic, 7, 0).is_err(),
        "partition 7 is not assigned"
    );
}

#[tokio::test]
async fn paused_partitions_wait_for_resume() {
    let topic = topic_with(10, 2).await;
    let mut consumer = assigned(&topic, 2).await;
    consumer.pause(&topic, 1).unwrap();
    let mut from_zero = 0;
    while from_zero < 5 {
        let msg = tokio::time::timeout(Duration::from_secs(10), consumer.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(msg.partition, 0, "partition 1 is paused");
        from_zero += 1;
    }
    assert!(
        tokio::time::timeout(Duration::from_millis(700), consumer.recv())
            .await
            .is_err()
    );
    consumer.resume(&topic, 1).unwrap();
    let msg = tokio::time::timeout(Duration::from_secs(10), consumer.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(msg.partition, 1);
}

/// Compressed batches that together inflate past receive.message.max.bytes are decoded a
/// fetch's budget at a time: everything arrives, nothing is skipped.
#[tokio::test]
async fn compressed_fetches_stay_within_their_budget() {
    let topic = unique_topic("budget");
    admin().await.create_topic(&topic, 3, 1).await.unwrap();
    let producer = Producer::builder(plaintext().set("compression.type", "gzip").unwrap())
        .build()
        .await
        .unwrap();
    let mut pending = Vec::new();
    for i in 0..900 {
        let value = format!("{i:06}{}", "x".repeat(94));
        let record = ProducerRecord::new(&topic).partition(i % 3).value(value);
        pending.push(producer.produce(record).await.unwrap());
    }
    for d in pending {
        d.await.unwrap();
    }
    // Each partition's batch inflates to about 30 KB; the budget holds one and a half.
    let config = plaintext()
        .set("receive.message.max.bytes", 50_000)
        .unwrap();
    let mut consumer = Consumer::builder(config).build().await.unwrap();
    consumer
        .assign((0..3).map(|p| (topic.as_str(), p)), Offset::Earliest)
        .await
        .unwrap();
    let mut seen = std::collections::BTreeSet::new();
    while seen.len() < 900 {
        let msg = tokio::time::timeout(Duration::from_secs(10), consumer.recv())
            .await
            .unwrap()
            .unwrap();
        let n: usize = std::str::from_utf8(&msg.value.unwrap()[..6])
            .unwrap()
            .parse()
            .unwrap();
        assert!(seen.insert(n), "{n} twice");
    }
}

#[tokio::test]
async fn the_consumer_is_a_stream_of_messages() {
    use futures_core::Stream;
    let topic = topic_with(5, 1).await;
    let mut consumer = assigned(&topic, 1).await;
    let mut stream = consumer.stream();
    for expected in 0..5 {
        let next = std::future::poll_fn(|cx| std::pin::Pin::new(&mut stream).poll_next(cx));
        let msg = tokio::time::timeout(Duration::from_secs(10), next)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(msg.offset, expected);
    }
    assert!(stream.consumer().is_some(), "no recv in progress");
    drop(stream);
    assert_eq!(consumer.assignment(), [(topic.clone(), 0)]);
}

/// Records the Java client wrote with each codec, stored by the broker, read back.
#[tokio::test]
async fn java_written_topics_read_back_with_every_codec() {
    use std::io::Write;
    for codec in ["gzip", "snappy", "lz4", "zstd"] {
        let topic = unique_topic(&format!("java-{codec}"));
        admin().await.create_topic(&topic, 1, 1).await.unwrap();
        let mut producer = crate::common::java_tool(
            "org.apache.kafka.tools.ConsoleProducer",
            "kafka.tools.ConsoleProducer",
        )
        .args([
            crate::common::console_producer_servers_flag(),
            &crate::common::plaintext_addr(),
        ])
        .args(["--topic", &topic, "--compression-codec", codec])
        .args([
            "--property",
            "parse.key=true",
            "--property",
            "key.separator=:",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("java runs the Java client's console producer");
        let lines: Vec<String> = (0..50).map(|i| format!("k{i}:{codec} value {i}")).collect();
        producer
            .stdin
            .take()
            .unwrap()
            .write_all(lines.join("\n").as_bytes())
            .unwrap();
        assert!(
            producer.wait().unwrap().success(),
            "{codec}: console producer failed"
        );
        let mut consumer = assigned(&topic, 1).await;
        for i in 0..50 {
            let msg = tokio::time::timeout(Duration::from_secs(10), consumer.recv())
                .await
                .unwrap()
                .unwrap();
            assert_eq!(
                msg.key.as_deref(),
                Some(format!("k{i}").as_bytes()),
                "{codec}"
            );
            assert_eq!(
                msg.value.as_deref(),
                Some(format!("{codec} value {i}").as_bytes()),
                "{codec}"
            );
        }
    }
}

#[tokio::test]
async fn one_fetch_session_serves_every_round() {
    // Eight partitions fetched over several rounds, with new records between them: every
    // record arrives once and in order, and the broker keeps the same KIP-227 session
    // throughout, so it accepted each incremental request (a refused epoch would open a new
    // session with another id).
    let topic = topic_with(0, 8).await;
    let producer = Producer::builder(plaintext()).build().await.unwrap();
    let mut consumer = assigned(&topic, 8).await;
    let mut sessions = Vec::new();
    let mut seen: Vec<Vec<String>> = vec![Vec::new(); 8];
    for round in 0..6 {
        for p in 0..8 {
            producer
                .send(
                    ProducerRecord::new(&topic)
                        .partition(p)
                        .value(format!("{round}")),
                )
                .await
                .unwrap();
        }
        for _ in 0..8 {
            let msg = tokio::time::timeout(Duration::from_secs(10), consumer.recv())
                .await
                .expect("a record within 10 s")
                .unwrap();
            let value = String::from_utf8(msg.value.unwrap().to_vec()).unwrap();
            seen[msg.partition as usize].push(value);
        }
        sessions.push(consumer.fetch_sessions());
    }
    let expected: Vec<String> = (0..6).map(|r| r.to_string()).collect();
    assert!(seen.iter().all(|values| *values == expected), "{seen:?}");
    let (broker, id) = sessions[0][0];
    assert_ne!(id, 0, "the broker opened a fetch session");
    assert!(
        sessions.iter().all(|s| s == &[(broker, id)]),
        "one session throughout: {sessions:?}"
    );
}

/// A consumer placed past the end of the log, with each `auto.offset.reset`.
async fn out_of_range(reset: &str) -> (Consumer, String) {
    let topic = topic_with(3, 1).await;
    let config = plaintext().set("auto.offset.reset", reset).unwrap();
    let mut consumer = Consumer::builder(config).build().await.unwrap();
    consumer
        .assign([(&topic, 0)], Offset::At(1_000_000))
        .await
        .unwrap();
    (consumer, topic)
}

#[tokio::test]
async fn out_of_range_offsets_reset_as_configured() {
    // earliest: back to the start of the log.
    let (mut consumer, _) = out_of_range("earliest").await;
    let msg = tokio::time::timeout(Duration::from_secs(10), consumer.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(msg.offset, 0);

    // latest: to the end, so the next record written is the next one read.
    let (mut consumer, topic) = out_of_range("latest").await;
    assert!(
        tokio::time::timeout(Duration::from_millis(1500), consumer.recv())
            .await
            .is_err(),
        "nothing before the next record"
    );
    assert_eq!(consumer.positions().next().map(|(_, _, o)| o), Some(3));
    let producer = Producer::builder(plaintext()).build().await.unwrap();
    producer
        .send(ProducerRecord::new(&topic).partition(0).value("new"))
        .await
        .unwrap();
    let msg = tokio::time::timeout(Duration::from_secs(10), consumer.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!((msg.offset, msg.value.as_deref()), (3, Some(&b"new"[..])));

    // error: the application hears of it, naming the partition.
    let (mut consumer, topic) = out_of_range("error").await;
    match tokio::time::timeout(Duration::from_secs(10), consumer.recv())
        .await
        .unwrap()
    {
        Err(e @ purekafka::Error::Broker { code, .. }) => {
            assert_eq!(code.code(), 1, "OFFSET_OUT_OF_RANGE");
            assert_eq!(e.topic_partition(), Some((topic.as_str(), Some(0))), "{e}");
        }
        other => panic!("expected OFFSET_OUT_OF_RANGE, got {other:?}"),
    }
}

/// A service started before its brokers: with every bootstrap connection refused, building
/// still succeeds, the events say all brokers are down, and once the broker is reachable the
/// consumer reads and the events say so.
#[tokio::test]
async fn a_consumer_built_before_its_broker_reads_once_it_is_reachable() {
    let topic = topic_with(3, 1).await;
    let (_turn, proxy) = crate::common::proxied().await;
    proxy.refuse(true);
    let config = purekafka::ClientConfig::new()
        .bootstrap_servers([proxy.addr.clone()])
        .set("auto.offset.reset", "earliest")
        .unwrap();
    let mut consumer = Consumer::builder(config).build().await.unwrap();
    let mut events = consumer.events();
    let down = tokio::time::timeout(Duration::from_secs(10), events.recv()).await;
    assert!(
        matches!(down, Ok(Some(purekafka::ClientEvent::AllBrokersDown(_)))),
        "{down:?}"
    );
    // The broker becomes reachable a second later; assigning waits for it, or fails with a
    // retriable error and is asked again, as an application would.
    let started = std::time::Instant::now();
    let reachable = async {
        tokio::time::sleep(Duration::from_secs(1)).await;
        proxy.refuse(false);
    };
    let assign = async {
        loop {
            match consumer
                .assign([(topic.as_str(), 0)], Offset::Earliest)
                .await
            {
                Ok(()) => break,
                Err(e) if e.is_retriable() && started.elapsed() < Duration::from_secs(20) => {
                    tokio::time::sleep(Duration::from_millis(100)).await
                }
                Err(e) => panic!("{e:?}"),
            }
        }
    };
    tokio::join!(assign, reachable);
    let mut read = 0;
    while read < 3 {
        tokio::time::timeout(Duration::from_secs(10), consumer.recv())
            .await
            .expect("records once the broker is reachable")
            .unwrap();
        read += 1;
    }
    let up = tokio::time::timeout(Duration::from_secs(10), events.recv()).await;
    assert!(
        matches!(up, Ok(Some(purekafka::ClientEvent::BrokersReachable))),
        "{up:?}"
    );
    consumer.close().await.unwrap();
}
