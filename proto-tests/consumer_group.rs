//! Classic consumer groups: joining, splitting partitions, leaving, committed offsets.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use purekafka::{
    ClientConfig, ConfigError, Consumer, Error, Producer, ProducerRecord, RebalanceEvent,
};
use tokio::sync::watch;

use crate::common::{admin, plaintext, unique_topic};

/// A member config with quick heartbeats, so rebalances show within a second.
pub(crate) fn member(group: &str) -> ClientConfig {
    plaintext()
        .group_id(group)
        .set("auto.offset.reset", "earliest")
        .unwrap()
        .set("heartbeat.interval.ms", 200)
        .unwrap()
        .set("session.timeout.ms", 6000)
        .unwrap()
}

pub(crate) async fn produce(topic: &str, n: usize) {
    let producer = Producer::builder(plaintext()).build().await.unwrap();
    let mut pending = Vec::new();
    for i in 0..n {
        let record = ProducerRecord::new(topic)
            .key(format!("k{i}"))
            .value(format!("{i}"));
        pending.push(producer.produce(record).await.unwrap());
    }
    for d in pending {
        d.await.unwrap();
    }
}

/// A member consuming in the background, publishing its assignment after every poll and
/// keeping its rebalance events.
pub(crate) struct Member {
    assignment: watch::Receiver<Vec<(String, i32)>>,
    events: Arc<Mutex<Vec<RebalanceEvent>>>,
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Member {
    pub(crate) fn spawn(config: ClientConfig, topic: &str) -> Member {
        let (tx, assignment) = watch::channel(Vec::new());
        let stop = Arc::new(AtomicBool::new(false));
        let events = Arc::new(Mutex::new(Vec::new()));
        let (topic, halt, log) = (topic.to_owned(), stop.clone(), events.clone());
        let task = tokio::spawn(async move {
            let mut consumer = Consumer::builder(config).build().await.unwrap();
            let mut rebalances = consumer.rebalance_events();
            consumer.subscribe(&[topic]).unwrap();
            while !halt.load(Ordering::Relaxed) {
                let _ = tokio::time::timeout(Duration::from_millis(200), consumer.recv()).await;
                while let Some(event) = rebalances.try_recv() {
                    log.lock().unwrap().push(event);
                }
                let _ = tx.send(consumer.assignment());
            }
            consumer.close().await.unwrap();
        });
        Member {
            assignment,
            events,
            stop,
            task,
        }
    }

    pub(crate) fn partitions(&self) -> BTreeSet<i32> {
        self.assignment.borrow().iter().map(|(_, p)| *p).collect()
    }

    pub(crate) async fn leave(self) {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.unwrap();
    }
}

/// Waits until `done` holds, for at most 30 s.
pub(crate) async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..300 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting until {what}");
}

async fn split_and_rejoin(strategy: &str) {
    let group = unique_topic("g");
    let config = member(&group)
        .set("partition.assignment.strategy", strategy)
        .unwrap();
    split_and_rejoin_with(config).await;
}

/// One member holds six partitions, three split them 2-2-2 without overlap or gap, and when two
/// leave the last holds all six again.
pub(crate) async fn split_and_rejoin_with(config: ClientConfig) {
    let topic = unique_topic("group");
    admin().await.create_topic(&topic, 6, 1).await.unwrap();
    let a = Member::spawn(config.clone(), &topic);
    eventually("one member holds all 6 partitions", || {
        a.partitions().len() == 6
    })
    .await;
    let b = Member::spawn(config.clone(), &topic);
    eventually("two members split 3 and 3", || {
        let (pa, pb) = (a.partitions(), b.partitions());
        pa.len() == 3 && pb.len() == 3 && pa.is_disjoint(&pb)
    })
    .await;
    let c = Member::spawn(config, &topic);
    eventually("three members split 2, 2 and 2", || {
        let (pa, pb, pc) = (a.partitions(), b.partitions(), c.partitions());
        let all: BTreeSet<i32> = pa.iter().chain(&pb).chain(&pc).copied().collect();
        [&pa, &pb, &pc].iter().all(|p| p.len() == 2) && all.len() == 6
    })
    .await;
    // b and c leave the group: a gets everything back.
    b.leave().await;
    c.leave().await;
    eventually("the remaining member holds all 6 again", || {
        a.partitions().len() == 6
    })
    .await;
    a.leave().await;
}

#[tokio::test]
async fn range_members_split_partitions_without_overlap_or_gap() {
    split_and_rejoin("range").await;
}

#[tokio::test]
async fn roundrobin_members_split_partitions_without_overlap_or_gap() {
    split_and_rejoin("roundrobin").await;
}

#[tokio::test]
async fn cooperative_sticky_members_split_partitions_without_overlap_or_gap() {
    split_and_rejoin("cooperative-sticky").await;
}

/// How many partitions the member's Revoked events named in all.
fn revoked(member: &Member) -> usize {
    let events = member.events.lock().unwrap();
    events
        .iter()
        .map(|e| match e {
            RebalanceEvent::Revoked(ps) => ps.len(),
            _ => 0,
        })
        .sum()
}

#[tokio::test]
async fn cooperative_sticky_moves_only_what_must_move() {
    let topic = unique_topic("sticky");
    admin().await.create_topic(&topic, 6, 1).await.unwrap();
    let group = unique_topic("g");
    let config = member(&group)
        .set("partition.assignment.strategy", "cooperative-sticky")
        .unwrap();
    let a = Member::spawn(config.clone(), &topic);
    eventually("one member holds all 6 partitions", || {
        a.partitions().len() == 6
    })
    .await;
    // Watch a's assignment through the rebalance: what it keeps never leaves it.
    let mut watch = a.assignment.clone();
    let b = Member::spawn(config.clone(), &topic);
    let mut smallest = a.partitions();
    let split = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            watch.changed().await.unwrap();
            let now: BTreeSet<i32> = watch.borrow().iter().map(|(_, p)| *p).collect();
            smallest = smallest.intersection(&now).copied().collect();
            let pb = b.partitions();
            if now.len() == 3 && pb.len() == 3 && now.is_disjoint(&pb) {
                return now;
            }
        }
    })
    .await
    .expect("two members split 3 and 3 within 30 s");
    assert_eq!(smallest, split, "a never lost a partition it kept");
    assert_eq!(revoked(&a), 3, "a gave up 3, not all 6");
    assert_eq!(revoked(&b), 0);

    // A third member takes one partition from each: the other two stay where they are.
    let (kept_a, kept_b) = (a.partitions(), b.partitions());
    let c = Member::spawn(config, &topic);
    eventually("three members split 2, 2 and 2", || {
        let (pa, pb, pc) = (a.partitions(), b.partitions(), c.partitions());
        pa.len() == 2 && pb.len() == 2 && pc.len() == 2 && pa.is_disjoint(&pc)
    })
    .await;
    assert!(a.partitions().is_subset(&kept_a) && b.partitions().is_subset(&kept_b));
    assert_eq!(revoked(&a), 4);
    assert_eq!(revoked(&b), 1);
    for m in [a, b, c] {
        m.leave().await;
    }
}

#[tokio::test]
async fn a_new_member_resumes_from_committed_offsets() {
    resume_from_committed_offsets(member).await;
}

/// A member reads 10 of 30 records and closes; the next member of the group reads the other
/// 20, each once.
pub(crate) async fn resume_from_committed_offsets(member: fn(&str) -> ClientConfig) {
    let topic = unique_topic("resume");
    admin().await.create_topic(&topic, 3, 1).await.unwrap();
    produce(&topic, 30).await;
    let group = unique_topic("g");
    let mut first = Consumer::builder(member(&group)).build().await.unwrap();
    first.subscribe(&[&topic]).unwrap();
    let mut seen = BTreeSet::new();
    for _ in 0..10 {
        let msg = tokio::time::timeout(Duration::from_secs(20), first.recv())
            .await
            .unwrap()
            .unwrap();
        assert!(seen.insert((msg.partition, msg.offset)));
    }
    // close() commits what was handed out, no more.
    first.close().await.unwrap();
    let mut second = Consumer::builder(member(&group)).build().await.unwrap();
    second.subscribe(&[&topic]).unwrap();
    for _ in 0..20 {
        let msg = tokio::time::timeout(Duration::from_secs(20), second.recv())
            .await
            .unwrap()
            .unwrap();
        assert!(
            seen.insert((msg.partition, msg.offset)),
            "{msg} was read twice"
        );
    }
    assert_eq!(seen.len(), 30);
    let extra = tokio::time::timeout(Duration::from_millis(1500), second.recv()).await;
    assert!(extra.is_err(), "nothing beyond the 30 records: {extra:?}");
    second.close().await.unwrap();
}

#[tokio::test]
async fn latest_reset_skips_what_was_there_for_a_new_group() {
    let topic = unique_topic("latest-group");
    admin().await.create_topic(&topic, 1, 1).await.unwrap();
    produce(&topic, 5).await;
    let config = member(&unique_topic("g"))
        .set("auto.offset.reset", "latest")
        .unwrap();
    let mut consumer = Consumer::builder(config).build().await.unwrap();
    consumer.subscribe(&[&topic]).unwrap();
    // The first poll joins; nothing old arrives.
    assert!(
        tokio::time::timeout(Duration::from_millis(1500), consumer.recv())
            .await
            .is_err()
    );
    produce(&topic, 1).await;
    let msg = tokio::time::timeout(Duration::from_secs(20), consumer.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(msg.offset, 5);
    consumer.close().await.unwrap();
}

#[tokio::test]
async fn subscribing_needs_a_group_id() {
    let mut consumer = Consumer::builder(plaintext()).build().await.unwrap();
    let err = consumer.subscribe(&["t"]).unwrap_err();
    assert!(
        matches!(err, Error::Config(ConfigError::Missing { ref key }) if key == "group.id"),
        "{err:?}"
    );
}

/// The Java client's console consumer, as a member of `group` reading `topic`.
fn java_member(group: &str, topic: &str, assignor: &str) -> std::process::Child {
    crate::common::java_tool(
        "org.apache.kafka.tools.consumer.ConsoleConsumer",
        "kafka.tools.ConsoleConsumer",
    )
    .args(["--bootstrap-server", &crate::common::plaintext_addr()])
    .args(["--topic", topic, "--group", group])
    .args(["--consumer-property", "heartbeat.interval.ms=200"])
    .args(["--consumer-property", "session.timeout.ms=6000"])
    .args([
        "--consumer-property",
        &format!("partition.assignment.strategy=org.apache.kafka.clients.consumer.{assignor}"),
    ])
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::null())
    .spawn()
    .expect("java runs the Java client's console consumer")
}

/// A group of a Java member (the leader: it joins first, so the Java assignor reads our
/// subscription) and a purekafka member: the partitions split between them, and all come back
/// to purekafka when the Java member is killed and its session times out.
async fn java_leads(strategy: &str, java_assignor: &str) {
    let topic = unique_topic("mixed");
    admin().await.create_topic(&topic, 6, 1).await.unwrap();
    let group = unique_topic("g");
    let mut java = java_member(&group, &topic, java_assignor);
    // Let the Java member form the group first.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let ours = Member::spawn(
        member(&group)
            .set("partition.assignment.strategy", strategy)
            .unwrap(),
        &topic,
    );
    eventually(
        "purekafka holds 3 of 6 partitions beside the Java member",
        || ours.partitions().len() == 3,
    )
    .await;
    java.kill().unwrap();
    let _ = java.wait();
    eventually("purekafka holds all 6 once the Java member is gone", || {
        ours.partitions().len() == 6
    })
    .await;
    ours.leave().await;
}

/// The other way round: purekafka leads (and assigns), the Java member joins and must read the
/// assignment purekafka wrote for it.
async fn purekafka_leads(strategy: &str, java_assignor: &str) {
    let topic = unique_topic("mixed-lead");
    admin().await.create_topic(&topic, 6, 1).await.unwrap();
    let group = unique_topic("g");
    let ours = Member::spawn(
        member(&group)
            .set("partition.assignment.strategy", strategy)
            .unwrap(),
        &topic,
    );
    eventually("purekafka holds all 6 partitions alone", || {
        ours.partitions().len() == 6
    })
    .await;
    let mut java = java_member(&group, &topic, java_assignor);
    eventually("purekafka gave 3 partitions to the Java member", || {
        ours.partitions().len() == 3
    })
    .await;
    java.kill().unwrap();
    let _ = java.wait();
    ours.leave().await;
}

#[tokio::test]
async fn a_java_member_and_a_purekafka_member_share_a_group() {
    java_leads("range", "RangeAssignor").await;
}

#[tokio::test]
async fn a_java_member_takes_its_share_from_a_purekafka_leader() {
    purekafka_leads("range", "RangeAssignor").await;
}

#[tokio::test]
async fn a_cooperative_java_leader_and_a_purekafka_member_share_a_group() {
    java_leads("cooperative-sticky", "CooperativeStickyAssignor").await;
}

#[tokio::test]
async fn a_cooperative_java_member_takes_its_share_from_a_purekafka_leader() {
    purekafka_leads("cooperative-sticky", "CooperativeStickyAssignor").await;
}

/// A member hears of every change to its partitions: assigned alone, revoked when another
/// member joins, then assigned its share.
#[tokio::test]
async fn rebalance_events_tell_the_application() {
    use purekafka::RebalanceEvent::{Assigned, Revoked};
    let topic = unique_topic("events");
    admin().await.create_topic(&topic, 4, 1).await.unwrap();
    let group = unique_topic("g");
    let mut consumer = Consumer::builder(member(&group)).build().await.unwrap();
    let mut events = consumer.rebalance_events();
    consumer.subscribe(&[&topic]).unwrap();
    let all: Vec<(String, i32)> = (0..4).map(|p| (topic.clone(), p)).collect();
    let mut seen = Vec::new();
    let mut other = None;
    for _ in 0..300 {
        let _ = tokio::time::timeout(Duration::from_millis(100), consumer.recv()).await;
        while let Some(event) = events.try_recv() {
            seen.push(event);
        }
        if seen == [Assigned(all.clone())] && other.is_none() {
            other = Some(Member::spawn(member(&group), &topic));
        }
        if seen.len() == 3 {
            break;
        }
    }
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert_eq!(seen[0], Assigned(all.clone()));
    assert_eq!(seen[1], Revoked(all));
    assert!(
        matches!(&seen[2], Assigned(share) if share.len() == 2),
        "{seen:?}"
    );
    other.unwrap().leave().await;
    consumer.close().await.unwrap();
}

/// A member cut off from the coordinator for longer than its session learns its partitions
/// were lost (not revoked: nothing is committed), and rejoins once it can.
#[tokio::test]
async fn a_member_cut_off_past_its_session_loses_its_partitions() {
    use purekafka::RebalanceEvent::{Assigned, Lost};
    let topic = unique_topic("lost");
    admin().await.create_topic(&topic, 2, 1).await.unwrap();
    let (_turn, proxy) = crate::common::proxied().await;
    let config = ClientConfig::new()
        .bootstrap_servers([proxy.addr.clone()])
        .group_id(unique_topic("g"))
        .set("heartbeat.interval.ms", 200)
        .unwrap()
        .set("session.timeout.ms", 6000)
        .unwrap()
        .set("socket.timeout.ms", 1000)
        .unwrap();
    let mut consumer = Consumer::builder(config).build().await.unwrap();
    let mut events = consumer.rebalance_events();
    consumer.subscribe(&[&topic]).unwrap();
    let all: Vec<(String, i32)> = (0..2).map(|p| (topic.clone(), p)).collect();
    let _ = tokio::time::timeout(Duration::from_secs(5), consumer.recv()).await;
    assert_eq!(events.try_recv(), Some(Assigned(all.clone())));
    // Cut the member off for longer than its session.
    proxy.close();
    let started = std::time::Instant::now();
    while started.elapsed() < Duration::from_secs(8) {
        let _ = tokio::time::timeout(Duration::from_millis(200), consumer.recv()).await;
    }
    drop(proxy);
    let (listen, target) = crate::common::proxied_addrs();
    let proxy = crate::common::Proxy::listen(&listen, target).await;
    let mut seen = Vec::new();
    for _ in 0..100 {
        let _ = tokio::time::timeout(Duration::from_millis(200), consumer.recv()).await;
        while let Some(event) = events.try_recv() {
            seen.push(event);
        }
        if seen.len() >= 2 {
            break;
        }
    }
    assert_eq!(seen, [Lost(all.clone()), Assigned(all)]);
    consumer.close().await.unwrap();
    drop(proxy);
}

/// Static members (group.instance.id): one closes and comes back within its session, and takes
/// up the same partitions with no rebalance: the other member's assignment never moves.
#[tokio::test]
async fn a_static_member_comes_back_without_a_rebalance() {
    let topic = unique_topic("static");
    admin().await.create_topic(&topic, 4, 1).await.unwrap();
    let group = unique_topic("g");
    let config = |instance: &str| {
        member(&group)
            .set("group.instance.id", instance)
            .unwrap()
            .set("session.timeout.ms", 20_000)
            .unwrap()
    };
    let a = Member::spawn(config("static-a"), &topic);
    eventually("a holds all 4", || a.partitions().len() == 4).await;
    let b = Member::spawn(config("static-b"), &topic);
    eventually("a and b hold 2 each", || {
        a.partitions().len() == 2 && b.partitions().len() == 2
    })
    .await;
    let (a_share, b_share) = (a.partitions(), b.partitions());
    a.leave().await;
    let mut b_seen = std::collections::BTreeSet::new();
    for _ in 0..20 {
        b_seen.insert(b.partitions());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let again = Member::spawn(config("static-a"), &topic);
    eventually("the returning member holds its old share", || {
        again.partitions() == a_share
    })
    .await;
    for _ in 0..20 {
        b_seen.insert(b.partitions());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        b_seen.into_iter().collect::<Vec<_>>(),
        [b_share],
        "b was never rebalanced"
    );
    again.leave().await;
    b.leave().await;
}

/// Manual commits, with auto commit off: explicit offsets, then the consumed positions in the
/// background. Each time a fresh member of the group starts where the commit said.
#[tokio::test]
async fn manual_commits_of_explicit_offsets_and_in_the_background() {
    let topic = unique_topic("manual");
    admin().await.create_topic(&topic, 1, 1).await.unwrap();
    produce(&topic, 10).await;
    let group = unique_topic("g");
    let config = member(&group).set("enable.auto.commit", false).unwrap();
    async fn first_offset(config: &ClientConfig, topic: &str) -> i64 {
        let mut consumer = Consumer::builder(config.clone()).build().await.unwrap();
        consumer.subscribe(&[topic]).unwrap();
        let msg = tokio::time::timeout(Duration::from_secs(20), consumer.recv())
            .await
            .unwrap()
            .unwrap();
        consumer.close().await.unwrap();
        msg.offset
    }

    let mut consumer = Consumer::builder(config.clone()).build().await.unwrap();
    consumer.subscribe(&[&topic]).unwrap();
    for expected in 0..5 {
        let msg = tokio::time::timeout(Duration::from_secs(20), consumer.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(msg.offset, expected);
    }
    consumer.commit_offsets(&[(&topic, 0, 2)]).await.unwrap();
    consumer.close().await.unwrap();
    assert_eq!(
        first_offset(&config, &topic).await,
        2,
        "close does not commit"
    );

    let mut consumer = Consumer::builder(config.clone()).build().await.unwrap();
    consumer.subscribe(&[&topic]).unwrap();
    for _ in 2..7 {
        tokio::time::timeout(Duration::from_secs(20), consumer.recv())
            .await
            .unwrap()
            .unwrap();
    }
    let pending = consumer.commit_async().unwrap();
    pending.await.unwrap();
    consumer.close().await.unwrap();
    assert_eq!(first_offset(&config, &topic).await, 7);
}

/// A member whose application stops asking for records for longer than
/// `max.poll.interval.ms` leaves the group: the other member takes every partition. When the
/// application reads again, it hears its partitions were lost and rejoins for its share.
pub(crate) async fn a_stalled_member_leaves(config: ClientConfig) {
    let topic = unique_topic("stall");
    admin().await.create_topic(&topic, 6, 1).await.unwrap();
    let config = config.set("max.poll.interval.ms", 3000).unwrap();
    let busy = Member::spawn(config.clone(), &topic);
    let mut stalled = Consumer::builder(config).build().await.unwrap();
    let mut events = stalled.rebalance_events();
    stalled.subscribe(&[&topic]).unwrap();
    let mut split = false;
    for _ in 0..300 {
        let _ = tokio::time::timeout(Duration::from_millis(100), stalled.recv()).await;
        if stalled.assignment().len() == 3 && busy.partitions().len() == 3 {
            split = true;
            break;
        }
    }
    assert!(split, "the two members split 3 and 3");
    // The application stalls: within the poll interval plus a rebalance, the busy member
    // holds everything.
    eventually("the busy member holds all 6 while the other stalls", || {
        busy.partitions().len() == 6
    })
    .await;
    while events.try_recv().is_some() {}
    // Reading again: the partitions were lost (not revoked), then a share comes back.
    let mut back = false;
    for _ in 0..300 {
        let _ = tokio::time::timeout(Duration::from_millis(100), stalled.recv()).await;
        if stalled.assignment().len() == 3 && busy.partitions().len() == 3 {
            back = true;
            break;
        }
    }
    assert!(back, "the two members split again once it reads");
    let first = events.try_recv();
    assert!(
        matches!(first, Some(RebalanceEvent::Lost(ref ps)) if ps.len() == 3),
        "{first:?}"
    );
    stalled.close().await.unwrap();
    busy.leave().await;
}

#[tokio::test]
async fn a_member_that_stops_polling_leaves_the_group() {
    a_stalled_member_leaves(member(&unique_topic("g"))).await;
}
