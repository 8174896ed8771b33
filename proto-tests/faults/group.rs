//! Partition leaders killed (SIGKILL) while a consumer group reads: two members in this
//! process, never restarted, under a steady idempotent load. Nothing acknowledged goes
//! unread; a record is read twice only where its partition was taken up again from the
//! group's committed offset below it (those duplicates are counted); committed offsets never
//! go backwards.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use purekafka::{Assigned, Consumer, ListenerFuture, RebalanceListener};

use super::cluster::{self, Down};
use super::ledger::Load;
use crate::common::unique_topic;

const RECORDS: u64 = 60_000;
const PARTITIONS: i32 = 6;
const PER_SECOND: u64 = 5_000;

/// What the members did, in the order they did it.
#[derive(Debug, Clone, Copy)]
enum Entry {
    /// A member read a record.
    Read {
        member: usize,
        partition: i32,
        offset: i64,
        seq: u64,
    },
    /// A member took up a partition, starting at `offset` (the group's committed offset, or
    /// the earliest where it has none).
    Start {
        member: usize,
        partition: i32,
        offset: i64,
    },
}

type Log = Arc<Mutex<Vec<Entry>>>;

/// Notes where each partition assigned starts.
struct NoteStarts {
    member: usize,
    log: Log,
}

impl RebalanceListener for NoteStarts {
    fn assigned<'a>(&'a mut self, assigned: &'a Assigned) -> ListenerFuture<'a> {
        Box::pin(async move {
            let mut log = self.log.lock().unwrap();
            for (_, partition, offset) in assigned.positions() {
                log.push(Entry::Start {
                    member: self.member,
                    partition: *partition,
                    offset: *offset,
                });
            }
        })
    }
}

/// A member of `group` reading `topic` until `stop`, every record and start noted in `log`.
/// Returns the errors `poll` reported on the way, by message with numbers left out.
fn member(
    id: usize,
    protocol: &str,
    group: &str,
    topic: &str,
    log: &Log,
    stop: &Arc<AtomicBool>,
) -> tokio::task::JoinHandle<BTreeMap<String, usize>> {
    let mut config = cluster::config()
        .group_id(group)
        .set("group.protocol", protocol)
        .and_then(|c| c.set("auto.offset.reset", "earliest"))
        .and_then(|c| c.set("auto.commit.interval.ms", 500))
        .unwrap();
    if protocol == "classic" {
        config = config
            .set("heartbeat.interval.ms", 500)
            .and_then(|c| c.set("session.timeout.ms", 6000))
            .unwrap();
    }
    let (topic, log, stop) = (topic.to_owned(), log.clone(), stop.clone());
    tokio::spawn(async move {
        let listener = NoteStarts {
            member: id,
            log: log.clone(),
        };
        let mut consumer = Consumer::builder(config)
            .rebalance_listener(listener)
            .build()
            .await
            .unwrap();
        consumer.subscribe(&[&topic]).unwrap();
        let mut errors: BTreeMap<String, usize> = BTreeMap::new();
        while !stop.load(Ordering::Relaxed) {
            match consumer.poll(Duration::from_millis(200)).await {
                Ok(batch) => {
                    let mut log = log.lock().unwrap();
                    for msg in batch {
                        let value: [u8; 8] = msg.value.as_deref().unwrap().try_into().unwrap();
                        log.push(Entry::Read {
                            member: id,
                            partition: msg.partition,
                            offset: msg.offset,
                            seq: u64::from_be_bytes(value),
                        });
                    }
                }
                Err(e) => {
                    assert!(e.is_retriable(), "member {id}: {e}");
                    let kind: String = e
                        .to_string()
                        .chars()
                        .filter(|c| !c.is_ascii_digit())
                        .collect();
                    *errors.entry(kind).or_default() += 1;
                }
            }
        }
        consumer.close().await.unwrap();
        errors
    })
}

/// The duplicates in `log`: every read of a `(partition, offset)` after its first. Returns
/// how many there are, and how many are not explained by a start of that partition, at or
/// below the offset, between the two reads.
fn duplicates(log: &[Entry]) -> (usize, usize) {
    // (partition, offset) → whether a start since its last read would explain reading it again.
    let mut read: HashMap<(i32, i64), bool> = HashMap::new();
    let (mut duplicated, mut unexplained) = (0, 0);
    for entry in log {
        match *entry {
            Entry::Start {
                partition, offset, ..
            } => {
                for ((p, o), explained) in read.iter_mut() {
                    if *p == partition && *o >= offset {
                        *explained = true;
                    }
                }
            }
            Entry::Read {
                partition, offset, ..
            } => match read.get_mut(&(partition, offset)) {
                None => {
                    read.insert((partition, offset), false);
                }
                Some(explained) => {
                    duplicated += 1;
                    if !*explained {
                        unexplained += 1;
                    }
                    *explained = false;
                }
            },
        }
    }
    (duplicated, unexplained)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partition_leaders_killed_while_a_classic_group_consumes() {
    leaders_killed_while_a_group_consumes("classic").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partition_leaders_killed_while_a_kip848_group_consumes() {
    leaders_killed_while_a_group_consumes("consumer").await;
}

async fn leaders_killed_while_a_group_consumes(protocol: &str) {
    let _turn = cluster::serial().await;
    let topic = cluster::replicated_topic("group-faults", PARTITIONS).await;
    let group = unique_topic("group-faults");
    let log: Log = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let members: Vec<_> = (0..2)
        .map(|id| member(id, protocol, &group, &topic, &log, &stop))
        .collect();
    let sampler = cluster::CommitSampler::start(&group, &topic);

    let started = Instant::now();
    let load = Load::start(
        cluster::idempotent_producer().await,
        &topic,
        RECORDS,
        PER_SECOND,
    );
    let mut faults = Vec::new();
    for (at, partition) in [(RECORDS as usize / 4, 0), (RECORDS as usize / 2, 1)] {
        load.acked_at_least(at).await;
        let leader = cluster::leader_of(&topic, partition).await;
        let mut fault = cluster::down_and_back(leader, Down::Kill, started).await;
        fault["leader_of_partition"] = partition.into();
        faults.push(fault);
    }
    let outcomes = load.finish().await;
    let acked: HashSet<u64> = outcomes.acked.keys().copied().collect();

    // Every acknowledged record read, within a minute of the load's end.
    let deadline = Instant::now() + Duration::from_secs(60);
    let missing = loop {
        let read: HashSet<u64> = log
            .lock()
            .unwrap()
            .iter()
            .filter_map(|e| match e {
                Entry::Read { seq, .. } => Some(*seq),
                Entry::Start { .. } => None,
            })
            .collect();
        let missing = acked.iter().filter(|seq| !read.contains(seq)).count();
        if missing == 0 || Instant::now() > deadline {
            break missing;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let caught_up_s = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let mut errors: BTreeMap<String, usize> = BTreeMap::new();
    for member in members {
        for (kind, n) in member.await.unwrap() {
            *errors.entry(kind).or_default() += n;
        }
    }
    let (samples, regressions) = sampler.finish().await;
    let log = log.lock().unwrap().clone();
    let (duplicated, unexplained) = duplicates(&log);
    let mut starts: BTreeMap<usize, usize> = BTreeMap::new();
    let mut reads: BTreeMap<usize, usize> = BTreeMap::new();
    for entry in &log {
        match entry {
            Entry::Start { member, .. } => *starts.entry(*member).or_default() += 1,
            Entry::Read { member, .. } => *reads.entry(*member).or_default() += 1,
        }
    }
    cluster::report(
        "partition leaders killed (SIGKILL) while a group consumes",
        serde_json::json!({
            "group_protocol": protocol,
            "members": 2,
            "sent": RECORDS,
            "acknowledged": outcomes.acked.len(),
            "failed": outcomes.failed.len(),
            "missing": missing,
            "duplicated": duplicated,
            "duplicated_without_a_start_below": unexplained,
            "reads_per_member": reads,
            "partitions_taken_up_per_member": starts,
            "consumer_errors": errors,
            "committed_offset_samples": samples,
            "committed_offset_regressions": regressions.len(),
            "faults": faults,
            "all_read_after_s": caught_up_s,
        }),
    );
    assert_eq!(outcomes.failed.len(), 0, "{:?}", outcomes.failed);
    assert_eq!(missing, 0, "every acknowledged record read");
    assert_eq!(
        unexplained, 0,
        "a record was read twice with no start from the committed offset below it"
    );
    assert!(
        regressions.is_empty(),
        "committed offsets went back: {regressions:?}"
    );
}

#[test]
fn duplicates_are_explained_by_a_start_at_or_below_them() {
    let read = |member, offset| Entry::Read {
        member,
        partition: 0,
        offset,
        seq: offset as u64,
    };
    let start = |member, offset| Entry::Start {
        member,
        partition: 0,
        offset,
    };
    let explained = [
        start(0, 0),
        read(0, 0),
        read(0, 1),
        start(1, 1),
        read(1, 1),
        read(1, 2),
    ];
    assert_eq!(duplicates(&explained), (1, 0));
    // A second read with no start below it: the position went back by itself.
    let unexplained = [start(0, 0), read(0, 0), read(0, 1), read(0, 1)];
    assert_eq!(duplicates(&unexplained), (1, 1));
    // A start above the offset explains nothing.
    let above = [start(0, 0), read(0, 0), start(1, 1), read(1, 0)];
    assert_eq!(duplicates(&above), (1, 1));
}
