//! `client.rack` (KIP-392): a consumer reads a partition from the replica in its own rack,
//! which the leader names, instead of from the leader. The harness gives broker N the rack
//! `rack-N` and `replica.selector.class=RackAwareReplicaSelector`.

use std::time::{Duration, Instant};

use purekafka::{Consumer, Offset, ProducerRecord};

use crate::cluster::{self, config, idempotent_producer, leader_of, replicated_topic};

const RECORDS: i64 = 200;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_reads_from_the_replica_in_its_rack() {
    let _turn = cluster::serial().await;
    let topic = replicated_topic("rack", 1).await;
    let producer = idempotent_producer().await;
    for i in 0..RECORDS {
        producer
            .send(
                ProducerRecord::new(&topic)
                    .partition(0)
                    .value(format!("{i}")),
            )
            .await
            .unwrap();
    }
    let leader = leader_of(&topic, 0).await;
    let follower = (1..=3).find(|&b| b != leader).unwrap();

    // In the follower's rack: the leader names the follower, and the records come from it.
    let rack = format!("rack-{follower}");
    let started = Instant::now();
    let near = read_all(&topic, Some(&rack)).await;
    assert_eq!(
        near.read_replica,
        Some(follower),
        "read from {:?}",
        near.sessions
    );
    assert!(
        near.sessions.iter().any(|(broker, _)| *broker == follower),
        "no fetch went to broker {follower}: {:?}",
        near.sessions
    );
    // In the leader's rack, and with no rack: the leader serves.
    let home = read_all(&topic, Some(&format!("rack-{leader}"))).await;
    assert_eq!(home.read_replica, None);
    let anywhere = read_all(&topic, None).await;
    assert_eq!(anywhere.read_replica, None);
    cluster::report(
        "client.rack",
        serde_json::json!({
            "leader": leader,
            "rack": rack,
            "read_from": follower,
            "records": RECORDS,
            "read_s": started.elapsed().as_secs_f64(),
        }),
    );
}

struct Read {
    read_replica: Option<i32>,
    sessions: Vec<(i32, i32)>,
}

/// Reads every record of `topic[0]` in order, as a consumer in `rack`.
async fn read_all(topic: &str, rack: Option<&str>) -> Read {
    let mut config = config();
    if let Some(rack) = rack {
        config = config.set("client.rack", rack).unwrap();
    }
    let mut consumer = Consumer::builder(config).build().await.unwrap();
    consumer
        .assign([(topic, 0)], Offset::Earliest)
        .await
        .unwrap();
    for expected in 0..RECORDS {
        let msg = tokio::time::timeout(Duration::from_secs(30), consumer.recv())
            .await
            .expect("a record in time")
            .unwrap();
        assert_eq!(msg.offset, expected);
        assert_eq!(msg.value.as_deref(), Some(expected.to_string().as_bytes()));
    }
    Read {
        read_replica: consumer.read_replica(topic, 0),
        sessions: consumer.fetch_sessions(),
    }
}
