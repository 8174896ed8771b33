//! The consumer's fetching against an in-memory cluster ([`crate::testing`]) on paused time:
//! assigned partitions read in order from their leaders, and `recv` and `poll` dropped
//! mid-fetch with nothing lost or handed out twice; a classic group's members sharing the
//! partitions, one leaving, commits carried from one member to the next, and a member dropped
//! by the in-memory coordinator (whose sessions expire only when a test says so).

use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

use crate::testing::MemCluster;
use crate::{ClientConfig, Consumer, Offset, Producer, ProducerRecord};

fn config(cluster: &MemCluster) -> ClientConfig {
    ClientConfig::new().bootstrap_servers([cluster.addr(1)])
}

/// Writes `values` to `topic[partition]`, one request each.
async fn write(cluster: &MemCluster, topic: &str, partition: i32, values: &[String]) {
    let config = config(cluster).set("acks", "1").unwrap();
    let producer = Producer::builder(config).build().await.unwrap();
    for value in values {
        let record = ProducerRecord::new(topic)
            .partition(partition)
            .value(Bytes::from(value.clone()));
        producer.send(record).await.unwrap();
    }
    producer.close().await;
}

fn values(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i}")).collect()
}

/// What `consumer` hands out next, `n` records: `(partition, offset, value)`.
async fn read(consumer: &mut Consumer, n: usize) -> Vec<(i32, i64, String)> {
    let mut out = Vec::new();
    while out.len() < n {
        let msg = consumer.recv().await.unwrap();
        let value = String::from_utf8(msg.value.unwrap_or_default().to_vec()).unwrap();
        out.push((msg.partition, msg.offset, value));
    }
    out
}

#[tokio::test(start_paused = true)]
async fn assigned_partitions_are_read_in_order_from_their_leaders() {
    let cluster = MemCluster::new(2);
    cluster.topic("t", &[1, 2]);
    write(&cluster, "t", 0, &values("a", 5)).await;
    write(&cluster, "t", 1, &values("b", 5)).await;
    let mut consumer = Consumer::builder(config(&cluster)).build().await.unwrap();
    consumer
        .assign([("t", 0), ("t", 1)], Offset::Earliest)
        .await
        .unwrap();
    let mut got = read(&mut consumer, 10).await;
    got.sort();
    let want: Vec<_> = (0..2)
        .flat_map(|p| {
            let prefix = ["a", "b"][p as usize];
            (0..5).map(move |i| (p, i as i64, format!("{prefix}{i}")))
        })
        .collect();
    assert_eq!(got, want);
}

#[tokio::test(start_paused = true)]
async fn a_recv_dropped_mid_fetch_loses_and_repeats_nothing() {
    let cluster = MemCluster::new(1);
    cluster.topic("t", &[1]);
    let mut consumer = Consumer::builder(config(&cluster)).build().await.unwrap();
    consumer.assign([("t", 0)], Offset::Earliest).await.unwrap();
    // Each of these is dropped while a fetch waits at the broker for records.
    for _ in 0..3 {
        let waited = tokio::time::timeout(Duration::from_millis(150), consumer.recv()).await;
        assert!(waited.is_err(), "nothing to read yet: {waited:?}");
    }
    write(&cluster, "t", 0, &values("x", 10)).await;
    let got = read(&mut consumer, 10).await;
    let want: Vec<_> = (0..10).map(|i| (0, i as i64, format!("x{i}"))).collect();
    assert_eq!(got, want);
    let more = tokio::time::timeout(Duration::from_millis(150), consumer.recv()).await;
    assert!(more.is_err(), "nothing handed out twice: {more:?}");
    // And a poll dropped the same way leaves the consumer as it was.
    let waited =
        tokio::time::timeout(Duration::from_millis(150), consumer.poll(Duration::MAX)).await;
    assert!(waited.is_err(), "nothing to poll yet: {waited:?}");
    write(&cluster, "t", 0, &values("y", 2)).await;
    let mut offsets = Vec::new();
    while offsets.len() < 2 {
        let polled = consumer.poll(Duration::from_secs(1)).await.unwrap();
        offsets.extend(polled.iter().map(|m| m.offset));
    }
    assert_eq!(offsets, [10, 11]);
}

#[tokio::test(start_paused = true)]
async fn poll_gives_nothing_once_its_time_is_up() {
    let cluster = MemCluster::new(1);
    cluster.topic("t", &[1]);
    let mut consumer = Consumer::builder(config(&cluster)).build().await.unwrap();
    consumer.assign([("t", 0)], Offset::Latest).await.unwrap();
    let started = Instant::now();
    let polled = consumer.poll(Duration::from_millis(700)).await.unwrap();
    assert!(polled.is_empty());
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(700) && took < Duration::from_millis(1300),
        "{took:?}"
    );
}

/// A member of group `g` reading `t` from the earliest offset, committing by hand.
async fn member(cluster: &MemCluster) -> Consumer {
    let config = config(cluster)
        .group_id("g")
        .set("auto.offset.reset", "earliest")
        .unwrap()
        .set("enable.auto.commit", false)
        .unwrap();
    let mut consumer = Consumer::builder(config).build().await.unwrap();
    consumer.subscribe(&["t"]).unwrap();
    consumer
}

/// Lets every one of `members` take its turn (a `recv` given up after 100 ms: the joins run
/// on as tasks of their own) until `done` says so.
async fn until(members: &mut [&mut Consumer], done: impl Fn(&[&mut Consumer]) -> bool) {
    let started = Instant::now();
    while !done(members) {
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "the group settled"
        );
        for member in members.iter_mut() {
            let _ = tokio::time::timeout(Duration::from_millis(100), member.recv()).await;
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_classic_group_shares_the_partitions_and_hands_a_leavers_on() {
    let cluster = MemCluster::new(1);
    cluster.topic("t", &[1, 1, 1, 1]);
    let mut a = member(&cluster).await;
    until(&mut [&mut a], |m| m[0].assignment().len() == 4).await;
    let mut b = member(&cluster).await;
    until(&mut [&mut a, &mut b], |m| {
        m[0].assignment().len() == 2 && m[1].assignment().len() == 2
    })
    .await;
    let mut both = a.assignment();
    both.extend(b.assignment());
    both.sort();
    assert_eq!(both, [0, 1, 2, 3].map(|p| ("t".to_owned(), p)));
    a.close().await.unwrap();
    until(&mut [&mut b], |m| m[0].assignment().len() == 4).await;
}

#[tokio::test(start_paused = true)]
async fn the_next_member_starts_where_the_last_one_committed() {
    let cluster = MemCluster::new(1);
    cluster.topic("t", &[1]);
    write(&cluster, "t", 0, &values("v", 10)).await;
    let mut first = member(&cluster).await;
    let read_first = read(&mut first, 5).await;
    assert_eq!(read_first.last().map(|r| r.1), Some(4));
    first.commit().await.unwrap();
    first.close().await.unwrap();
    let mut next = member(&cluster).await;
    let read_next = read(&mut next, 5).await;
    let offsets: Vec<i64> = read_next.iter().map(|r| r.1).collect();
    assert_eq!(offsets, [5, 6, 7, 8, 9]);
}

/// A read_committed member asks for stable offsets (KIP-447), and a retriable answer (a
/// stable read the coordinator could not finish in time, offsets a transaction holds) is asked
/// again within the join: the member takes its partitions up where the group committed,
/// without joining the group once more.
#[tokio::test(start_paused = true)]
async fn a_member_asks_for_stable_offsets_and_waits_out_a_slow_answer() {
    let cluster = MemCluster::new(1);
    cluster.topic("t", &[1]);
    write(&cluster, "t", 0, &values("v", 10)).await;
    let mut first = member(&cluster).await;
    read(&mut first, 5).await;
    first.commit().await.unwrap();
    first.close().await.unwrap();
    let generation = cluster.generation("g");
    cluster.refuse_offset_fetch(&[7, 88]); // REQUEST_TIMED_OUT, UNSTABLE_OFFSET_COMMIT
    let mut next = member(&cluster).await;
    let offsets: Vec<i64> = read(&mut next, 5).await.iter().map(|r| r.1).collect();
    assert_eq!(offsets, [5, 6, 7, 8, 9]);
    assert_eq!(cluster.generation("g"), generation + 1, "joined once");
    let stable = cluster.offset_fetch_stable();
    assert!(
        !stable.is_empty() && stable.iter().all(|s| *s),
        "{stable:?}"
    );
}

/// `client.rack` (KIP-392): the leader names a replica; the consumer reads from it until it
/// answers with an error, then from the leader again. Without a rack, only the leader serves.
#[tokio::test(start_paused = true)]
async fn a_consumer_reads_from_the_replica_its_leader_names_until_it_errs() {
    let cluster = MemCluster::new(2);
    cluster.topic("t", &[1]);
    cluster.read_replica("t", 0, Some(2));
    write(&cluster, "t", 0, &values("a", 5)).await;
    let racked = config(&cluster).set("client.rack", "rack-2").unwrap();
    let mut consumer = Consumer::builder(racked).build().await.unwrap();
    consumer.assign([("t", 0)], Offset::Earliest).await.unwrap();
    let got = read(&mut consumer, 5).await;
    assert_eq!(got.iter().map(|m| m.1).collect::<Vec<_>>(), [0, 1, 2, 3, 4]);
    assert_eq!(consumer.read_replica("t", 0), Some(2));
    let from_replica = cluster.fetch_requests(2);
    assert!(from_replica > 0);
    // The replica stops serving the partition: its error sends the consumer back to the
    // leader, with nothing lost or read twice.
    cluster.read_replica("t", 0, None);
    write(&cluster, "t", 0, &values("b", 3)).await;
    let got = read(&mut consumer, 3).await;
    assert_eq!(got.iter().map(|m| m.1).collect::<Vec<_>>(), [5, 6, 7]);
    assert_eq!(consumer.read_replica("t", 0), None);

    // No rack: the leader never names the replica.
    cluster.read_replica("t", 0, Some(2));
    let before = cluster.fetch_requests(2);
    let mut plain = Consumer::builder(config(&cluster)).build().await.unwrap();
    plain.assign([("t", 0)], Offset::Earliest).await.unwrap();
    assert_eq!(read(&mut plain, 8).await.len(), 8);
    assert_eq!(plain.read_replica("t", 0), None);
    assert_eq!(cluster.fetch_requests(2), before);
}

/// `enable.partition.eof`: reported once per end reached, after everything before it.
#[tokio::test(start_paused = true)]
async fn the_end_of_each_partition_is_reported_once_per_offset() {
    let cluster = MemCluster::new(1);
    cluster.topic("t", &[1, 1]);
    write(&cluster, "t", 0, &values("a", 3)).await;
    let eof = config(&cluster)
        .set("enable.partition.eof", "true")
        .unwrap();
    let mut consumer = Consumer::builder(eof).build().await.unwrap();
    consumer
        .assign([("t", 0), ("t", 1)], Offset::Earliest)
        .await
        .unwrap();
    let mut seen = Vec::new();
    while seen.len() < 5 {
        match consumer.recv().await {
            Ok(m) => seen.push(format!("{}@{}", m.partition, m.offset)),
            Err(crate::Error::PartitionEof {
                partition, offset, ..
            }) => seen.push(format!("eof {partition}@{offset}")),
            Err(e) => panic!("{e:?}"),
        }
    }
    // Partition 0's end comes after its records; partition 1 is empty: its end is at 0.
    let eofs: Vec<&String> = seen.iter().filter(|s| s.starts_with("eof")).collect();
    assert_eq!(eofs.len(), 2, "{seen:?}");
    assert!(seen.contains(&"eof 1@0".to_owned()), "{seen:?}");
    let end_of_0 = seen
        .iter()
        .position(|s| s == "eof 0@3")
        .expect("partition 0's end");
    assert!(seen[..end_of_0].contains(&"0@2".to_owned()), "{seen:?}");
    // Nothing new: no end again.
    let idle = tokio::time::timeout(Duration::from_secs(5), consumer.recv()).await;
    assert!(idle.is_err(), "{idle:?}");
    write(&cluster, "t", 1, &values("b", 1)).await;
    assert_eq!(consumer.recv().await.unwrap().offset, 0);
    assert!(matches!(
        consumer.recv().await,
        Err(crate::Error::PartitionEof {
            partition: 1,
            offset: 1,
            ..
        })
    ));
}

/// A member's session expires behind its back: its next automatic commit is refused
/// (UNKNOWN_MEMBER_ID). `recv` does not fail for it, as the Java client's and librdkafka's
/// automatic commits do not; the member joins again and reads on, and its commits land again.
#[tokio::test(start_paused = true)]
async fn an_automatic_commit_refused_for_a_dropped_member_joins_again_and_reads_on() {
    let cluster = MemCluster::new(1);
    cluster.topic("t", &[1]);
    write(&cluster, "t", 0, &values("v", 10)).await;
    let config = config(&cluster)
        .group_id("g")
        .set("auto.offset.reset", "earliest")
        .and_then(|c| c.set("auto.commit.interval.ms", 100))
        .and_then(|c| c.set("heartbeat.interval.ms", 5000))
        .unwrap();
    let mut consumer = Consumer::builder(config).build().await.unwrap();
    consumer.subscribe(&["t"]).unwrap();
    let first: Vec<i64> = read(&mut consumer, 5).await.iter().map(|r| r.1).collect();
    assert_eq!(first, [0, 1, 2, 3, 4]);
    consumer.commit().await.unwrap();
    let dropped_at = cluster.generation("g");
    cluster.expire_members("g");
    // The commit interval runs on the real clock (the poll clock), not on paused time.
    std::thread::sleep(Duration::from_millis(150));

    // recv fails for nothing while the member finds out and joins again; the records are
    // handed out in order, and again from the group's commit once the member is back.
    let mut offsets = Vec::new();
    let started = Instant::now();
    while offsets.last() != Some(&9) || cluster.generation("g") <= dropped_at + 1 {
        assert!(started.elapsed() < Duration::from_secs(60), "joined again");
        if let Ok(msg) = tokio::time::timeout(Duration::from_millis(100), consumer.recv()).await {
            offsets.push(msg.unwrap().offset);
        }
    }
    assert_eq!(offsets[0], 5);
    assert!(
        offsets.windows(2).all(|w| w[1] == w[0] + 1 || w[1] == 5),
        "on, or again from the commit: {offsets:?}"
    );
    consumer.commit().await.unwrap();
    let committed = consumer
        .committed(&[("t", 0)], Duration::from_secs(5))
        .await;
    assert_eq!(committed.unwrap(), [("t".to_owned(), 0, Some(10))]);
}
