//! The application's part in rebalances: a [`RebalanceListener`] that commits what was
//! processed before partitions go and chooses where new ones start, and `unsubscribe`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use purekafka::{
    Assigned, ClientConfig, Consumer, Error, ListenerFuture, Message, RebalanceEvent,
    RebalanceListener, Revoking,
};

use crate::common::{admin, new_topic, plaintext, unique_topic};
use crate::consumer_group::produce;

/// A member that commits by hand: `enable.auto.commit=false`, eager assignor (range), quick
/// heartbeats.
fn manual(group: &str) -> ClientConfig {
    plaintext()
        .group_id(group)
        .set("enable.auto.commit", false)
        .and_then(|c| c.set("auto.offset.reset", "earliest"))
        .and_then(|c| c.set("heartbeat.interval.ms", 200))
        .and_then(|c| c.set("session.timeout.ms", 6000))
        .and_then(|c| c.set("partition.assignment.strategy", "range"))
        .unwrap()
}

/// What the application processed: per partition, the offset after the last record done.
type Processed = Arc<Mutex<BTreeMap<(String, i32), i64>>>;

/// What `Revoking::consumed` said, per call of the listener.
type Told = Arc<Mutex<Vec<Vec<(String, i32, i64)>>>>;

/// Commits, before partitions go, what was processed of them; notes each call.
struct CommitProcessed {
    processed: Processed,
    calls: Arc<Mutex<Vec<String>>>,
    consumed: Told,
}

impl RebalanceListener for CommitProcessed {
    fn revoking<'a>(&'a mut self, revoking: &'a Revoking) -> ListenerFuture<'a> {
        Box::pin(async move {
            let offsets: Vec<(String, i32, i64)> = {
                let processed = self.processed.lock().unwrap();
                revoking
                    .partitions()
                    .iter()
                    .filter_map(|tp| processed.get(tp).map(|&o| (tp.0.clone(), tp.1, o)))
                    .collect()
            };
            revoking
                .commit(&offsets)
                .await
                .expect("commit before revoking");
            self.consumed
                .lock()
                .unwrap()
                .push(revoking.consumed().to_vec());
            self.calls
                .lock()
                .unwrap()
                .push(format!("revoking {}", revoking.partitions().len()));
        })
    }

    fn assigned<'a>(&'a mut self, assigned: &'a Assigned) -> ListenerFuture<'a> {
        Box::pin(async move {
            self.calls
                .lock()
                .unwrap()
                .push(format!("assigned {}", assigned.positions().len()));
        })
    }
}

/// Polls `consumer` for `period`, keeping what it reads.
async fn poll_for(consumer: &mut Consumer, period: Duration, into: &mut Vec<Message>) {
    let until = Instant::now() + period;
    while Instant::now() < until {
        if let Ok(batch) = consumer.poll(Duration::from_millis(100)).await {
            into.extend(batch);
        }
    }
}

/// A member that commits by hand processes the 40 records of its two partitions and commits
/// nothing itself. A second member joins: the first's listener commits what was
/// processed before the partitions go, so the second starts where the first stopped and reads
/// none of those 40 records again, only what is written after.
#[tokio::test]
async fn a_listener_commits_what_was_processed_before_partitions_go() {
    let topic = new_topic("listener", 2).await;
    produce(&topic, 40).await;
    let group = unique_topic("g");
    let processed: Processed = Arc::default();
    let calls = Arc::new(Mutex::new(Vec::new()));
    let consumed = Arc::new(Mutex::new(Vec::new()));
    let listener = CommitProcessed {
        processed: processed.clone(),
        calls: calls.clone(),
        consumed: consumed.clone(),
    };
    let mut first = Consumer::builder(manual(&group))
        .rebalance_listener(listener)
        .build()
        .await
        .unwrap();
    first.subscribe(&[&topic]).unwrap();
    let mut read = 0;
    let deadline = Instant::now() + Duration::from_secs(30);
    while read < 40 && Instant::now() < deadline {
        for msg in first.poll(Duration::from_millis(200)).await.unwrap() {
            processed
                .lock()
                .unwrap()
                .insert((msg.topic.to_string(), msg.partition), msg.offset + 1);
            read += 1;
        }
    }
    assert_eq!(read, 40);
    assert_eq!(*calls.lock().unwrap(), ["assigned 2"]);

    let mut second = Consumer::builder(manual(&group)).build().await.unwrap();
    second.subscribe(&[&topic]).unwrap();
    let (mut by_first, mut by_second) = (Vec::new(), Vec::new());
    // Both poll while the group rebalances (range: one partition each), until the first has
    // been told of its new partition too: the listener's calls run as a step of their own,
    // which may end a poll after the assignment changed (it did on Kafka 2.4.1).
    let deadline = Instant::now() + Duration::from_secs(30);
    while (first.assignment().len() != 1
        || second.assignment().len() != 1
        || calls.lock().unwrap().len() < 3)
        && Instant::now() < deadline
    {
        tokio::join!(
            poll_for(&mut first, Duration::from_millis(200), &mut by_first),
            poll_for(&mut second, Duration::from_millis(200), &mut by_second),
        );
    }
    assert_eq!(first.assignment().len(), 1);
    assert_eq!(second.assignment().len(), 1);
    assert!(by_first.is_empty() && by_second.is_empty());
    let calls_now = calls.lock().unwrap().clone();
    assert_eq!(calls_now, ["assigned 2", "revoking 2", "assigned 1"]);
    // What the consumer handed out, as the listener was told: all of both partitions.
    let told: BTreeMap<(String, i32), i64> = consumed.lock().unwrap()[0]
        .iter()
        .map(|(t, p, o)| ((t.clone(), *p), *o))
        .collect();
    let ends = processed.lock().unwrap().clone();
    assert_eq!(told, ends);

    produce(&topic, 10).await;
    tokio::join!(
        poll_for(&mut first, Duration::from_secs(3), &mut by_first),
        poll_for(&mut second, Duration::from_secs(3), &mut by_second),
    );
    let old: Vec<&Message> = by_second
        .iter()
        .filter(|m| m.offset < ends[&(m.topic.to_string(), m.partition)])
        .collect();
    assert!(old.is_empty(), "the second member read again: {old:?}");
    let all: BTreeSet<(i32, i64)> = by_first
        .iter()
        .chain(&by_second)
        .map(|m| (m.partition, m.offset))
        .collect();
    assert_eq!(all.len(), 10, "the new records, each once");
    first.close().await.unwrap();
    second.close().await.unwrap();
}

/// Starts every partition assigned at offset 3, whatever the group committed.
struct StartAt3;

impl RebalanceListener for StartAt3 {
    fn assigned<'a>(&'a mut self, assigned: &'a Assigned) -> ListenerFuture<'a> {
        Box::pin(async move {
            for (topic, partition, _) in assigned.positions() {
                assigned.seek(topic, *partition, 3).unwrap();
            }
            let err = assigned.seek("not-assigned", 0, 0).unwrap_err();
            assert!(
                matches!(&err, Error::NotAssigned { topic, partition: 0 } if topic == "not-assigned"),
                "{err:?}"
            );
        })
    }
}

/// The listener's `assigned` chooses where new partitions start: the member reads from offset 3.
#[tokio::test]
async fn a_listener_chooses_where_assigned_partitions_start() {
    let topic = new_topic("seek", 1).await;
    produce(&topic, 6).await;
    let mut consumer = Consumer::builder(manual(&unique_topic("g")))
        .rebalance_listener(StartAt3)
        .build()
        .await
        .unwrap();
    consumer.subscribe(&[&topic]).unwrap();
    let mut read = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while read.len() < 3 && Instant::now() < deadline {
        poll_for(&mut consumer, Duration::from_millis(200), &mut read).await;
    }
    let offsets: Vec<i64> = read.iter().map(|m| m.offset).collect();
    assert_eq!(offsets, [3, 4, 5]);
    consumer.close().await.unwrap();
}

/// `unsubscribe` revokes in good order (the listener, then the commit of what was consumed),
/// leaves at once so the other member takes every partition well within the session timeout,
/// and forgets the subscription; `subscribe` joins again.
#[tokio::test]
async fn unsubscribing_hands_the_partitions_on_at_once() {
    let topic = new_topic("unsubscribe", 2).await;
    produce(&topic, 10).await;
    let group = unique_topic("g");
    let auto = |group: &str| manual(group).set("enable.auto.commit", true).unwrap();
    let calls = Arc::new(Mutex::new(Vec::new()));
    let listener = CommitProcessed {
        processed: Processed::default(),
        calls: calls.clone(),
        consumed: Arc::default(),
    };
    let mut leaving = Consumer::builder(auto(&group))
        .rebalance_listener(listener)
        .build()
        .await
        .unwrap();
    let mut events = leaving.rebalance_events();
    leaving.subscribe(&[&topic]).unwrap();
    let mut read = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while read.len() < 10 && Instant::now() < deadline {
        poll_for(&mut leaving, Duration::from_millis(200), &mut read).await;
    }
    assert_eq!(read.len(), 10);
    let mut staying = Consumer::builder(auto(&group)).build().await.unwrap();
    staying.subscribe(&[&topic]).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let (mut nothing, mut none) = (Vec::new(), Vec::new());
    while staying.assignment().len() != 1 && Instant::now() < deadline {
        tokio::join!(
            poll_for(&mut leaving, Duration::from_millis(200), &mut none),
            poll_for(&mut staying, Duration::from_millis(200), &mut nothing),
        );
    }
    assert_eq!(staying.assignment().len(), 1);

    leaving.unsubscribe().await.unwrap();
    let left = Instant::now();
    assert!(leaving.assignment().is_empty());
    assert!(matches!(leaving.recv().await, Err(Error::NoAssignment)));
    assert_eq!(calls.lock().unwrap().last().unwrap(), "revoking 1");
    let mut revoked = Vec::new();
    while let Some(event) = events.try_recv() {
        if let RebalanceEvent::Revoked(ps) = event {
            revoked.push(ps);
        }
    }
    assert_eq!(revoked.last().map(Vec::len), Some(1), "{revoked:?}");
    while staying.assignment().len() != 2 && left.elapsed() < Duration::from_secs(30) {
        poll_for(&mut staying, Duration::from_millis(100), &mut nothing).await;
    }
    assert_eq!(staying.assignment().len(), 2);
    assert!(
        left.elapsed() < Duration::from_secs(5),
        "took over after {:?}: the member left rather than timed out",
        left.elapsed()
    );
    // Everything was committed: nothing old is read again.
    assert!(nothing.is_empty(), "{nothing:?}");

    leaving.subscribe(&[&topic]).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while leaving.assignment().len() != 1 && Instant::now() < deadline {
        tokio::join!(
            poll_for(&mut leaving, Duration::from_millis(200), &mut none),
            poll_for(&mut staying, Duration::from_millis(200), &mut nothing),
        );
    }
    assert_eq!(leaving.assignment().len(), 1, "joined again");
    assert!(
        nothing.is_empty() && none.is_empty(),
        "{nothing:?} {none:?}"
    );
    leaving.close().await.unwrap();
    staying.close().await.unwrap();
    admin().await.delete_topic(&topic).await.unwrap();
}

/// A member whose subscription changes while its JoinGroup is held (the group waits for a
/// member that stopped polling) joins again with the new subscription once that join is done,
/// rather than keep the old one.
#[tokio::test]
async fn a_subscription_changed_during_a_join_is_joined_again() {
    let (first, second) = (
        new_topic("during-a", 1).await,
        new_topic("during-b", 1).await,
    );
    let group = unique_topic("g");
    // A member that joins, then stops polling: the next rebalance waits for it up to its
    // max.poll.interval.ms, holding everyone's JoinGroup meanwhile.
    let slow = manual(&group).set("max.poll.interval.ms", 6000).unwrap();
    let mut stalled = Consumer::builder(slow).build().await.unwrap();
    stalled.subscribe(&[&first]).unwrap();
    let mut nothing = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while stalled.assignment().is_empty() && Instant::now() < deadline {
        poll_for(&mut stalled, Duration::from_millis(200), &mut nothing).await;
    }
    assert_eq!(stalled.assignment().len(), 1);

    let mut member = Consumer::builder(manual(&group)).build().await.unwrap();
    member.subscribe(&[&first]).unwrap();
    // Its first JoinGroup goes out and is held.
    poll_for(&mut member, Duration::from_secs(1), &mut nothing).await;
    assert!(member.assignment().is_empty(), "the join is held");
    member.subscribe(&[&first, &second]).unwrap();
    let deadline = Instant::now() + Duration::from_secs(40);
    while member.assignment().len() < 2 && Instant::now() < deadline {
        poll_for(&mut member, Duration::from_millis(200), &mut nothing).await;
    }
    let mut topics: Vec<String> = member.assignment().into_iter().map(|(t, _)| t).collect();
    topics.sort();
    let mut expected = vec![first.clone(), second.clone()];
    expected.sort();
    assert_eq!(topics, expected, "joined again with both topics");
    member.close().await.unwrap();
    drop(stalled);
    for topic in [first, second] {
        admin().await.delete_topic(&topic).await.unwrap();
    }
}

/// A commit does not wait for a join. A member that stopped polling holds the group's next
/// rebalance for its whole `max.poll.interval.ms` (8 s here); meanwhile the other member's
/// JoinGroup is held by the coordinator, and its commits answer within a round trip: refused
/// as a rebalance in progress (retriable), as the Java client's are, not after the join.
#[tokio::test]
async fn a_commit_does_not_wait_for_a_join_in_progress() {
    let topic = new_topic("commit-join", 2).await;
    produce(&topic, 20).await;
    let group = unique_topic("g");
    let patient = |ms: u32| manual(&group).set("max.poll.interval.ms", ms).unwrap();
    let mut active = Consumer::builder(patient(60_000)).build().await.unwrap();
    let mut idle = Consumer::builder(patient(8_000)).build().await.unwrap();
    active.subscribe(&[&topic]).unwrap();
    idle.subscribe(&[&topic]).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while active.assignment().len() != 1 || idle.assignment().len() != 1 {
        assert!(Instant::now() < deadline, "both members got a partition");
        let _ = active.poll(Duration::from_millis(100)).await;
        let _ = idle.poll(Duration::from_millis(100)).await;
    }
    // `idle` polls no more. A third member joins: `active` rejoins, and its JoinGroup waits
    // for `idle` until the coordinator gives up on it.
    let mut third = Consumer::builder(patient(60_000)).build().await.unwrap();
    third.subscribe(&[&topic]).unwrap();
    let third = tokio::spawn(async move {
        let until = Instant::now() + Duration::from_secs(30);
        while third.assignment().is_empty() && Instant::now() < until {
            let _ = third.poll(Duration::from_millis(100)).await;
        }
        third
    });
    let rebalance_started = Instant::now();
    // Polled until its join is under way (the join runs on as a task of its own).
    while active.assignment().len() == 1 && rebalance_started.elapsed() < Duration::from_secs(2) {
        let _ = active.poll(Duration::from_millis(100)).await;
    }
    let started = Instant::now();
    let committed = active.commit_offsets(&[(topic.as_str(), 0, 1)]).await;
    let took = started.elapsed();
    println!("commit during the join: {committed:?} after {took:?}");
    assert!(took < Duration::from_secs(3), "the commit waited {took:?}");
    if let Err(e) = &committed {
        assert!(e.is_retriable(), "{e}");
    }
    // Once the join is done, commits go through again.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let _ = active.poll(Duration::from_millis(100)).await;
        if active
            .commit_offsets(&[(topic.as_str(), 0, 1)])
            .await
            .is_ok()
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "commits go through after the rebalance"
        );
    }
    drop(idle);
    let _ = third.await;
}
