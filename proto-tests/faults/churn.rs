//! A consumer group of three member processes (the CKafka guide's consumer example) under a
//! steady load, while one member is killed and another joins. Every record is consumed at
//! least once, committed offsets never go backwards, and the time until the group is stable
//! again is measured each time.

use std::collections::{BTreeMap, HashMap};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use purekafka::{Producer, ProducerRecord};
use tokio::io::AsyncBufReadExt;

use super::cluster;
use crate::common::unique_topic;

const PARTITIONS: i32 = 6;

/// One consumed record: which member, which partition, which record.
struct Consumed {
    member: &'static str,
    partition: i32,
    seq: u64,
}

type Log = Arc<Mutex<Vec<Consumed>>>;

/// The consumer example as a member of `group`, its records gathered in `log`.
fn member(name: &'static str, config: &std::path::Path, log: &Log) -> tokio::process::Child {
    let dir = std::env::var("PUREKAFKA_EXAMPLES").expect("PUREKAFKA_EXAMPLES: the examples' dir");
    let mut child = tokio::process::Command::new(format!("{dir}/consumer"))
        .arg("--config")
        .arg(config)
        .args(["--idle-timeout-ms", "600000"])
        .args(["-X", "session.timeout.ms=6000"])
        .args(["-X", "heartbeat.interval.ms=500"])
        .args(["-X", "auto.commit.interval.ms=500"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("the consumer example runs");
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let log = log.clone();
    tokio::spawn(async move {
        // "Message on TOPIC[P]@OFFSET: SEQ"
        while let Ok(Some(line)) = lines.next_line().await {
            let Some(rest) = line.strip_prefix("Message on ") else {
                continue;
            };
            let (at, value) = rest.split_once(": ").unwrap();
            let partition = at[at.rfind('[').unwrap() + 1..at.rfind(']').unwrap()]
                .parse()
                .unwrap();
            let seq = value.parse().unwrap();
            log.lock().unwrap().push(Consumed {
                member: name,
                partition,
                seq,
            });
        }
    });
    child
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_killed_and_another_joining_lose_nothing() {
    let _turn = cluster::serial().await;
    let topic = cluster::replicated_topic("churn", PARTITIONS).await;
    let group = unique_topic("churn-group");
    let ckafka = cluster::ckafka_json(&group, &topic);

    // A steady load: seq → when it was sent.
    let sent: Arc<Mutex<BTreeMap<u64, Instant>>> = Arc::default();
    let producing = Arc::new(AtomicBool::new(true));
    let producer = Producer::builder(cluster::config()).build().await.unwrap();
    let (log_sent, go_on, load_topic) = (sent.clone(), producing.clone(), topic.clone());
    let load = tokio::spawn(async move {
        let mut seq = 0u64;
        while go_on.load(Ordering::Relaxed) {
            let record = ProducerRecord::new(&load_topic)
                .key(format!("k{seq}"))
                .value(seq.to_string());
            let at = Instant::now();
            producer.send(record).await.unwrap();
            log_sent.lock().unwrap().insert(seq, at);
            seq += 1;
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        producer.close().await;
    });

    // Committed offsets, sampled: they must never go backwards.
    let sampler = cluster::CommitSampler::start(&group, &topic);

    let log: Log = Arc::default();
    // Every partition delivers records sent after `since`, to `member` if named.
    let stable = |since: Instant, member: Option<&'static str>| {
        let (log, sent) = (log.clone(), sent.clone());
        async move {
            let deadline = Instant::now() + Duration::from_secs(90);
            loop {
                {
                    let log = log.lock().unwrap();
                    let sent = sent.lock().unwrap();
                    let fresh: std::collections::BTreeSet<i32> = log
                        .iter()
                        .filter(|c| sent.get(&c.seq).is_some_and(|&at| at > since))
                        .map(|c| c.partition)
                        .collect();
                    let joined = member.is_none_or(|m| log.iter().any(|c| c.member == m));
                    if fresh.len() == PARTITIONS as usize && joined {
                        return since.elapsed();
                    }
                }
                assert!(
                    Instant::now() < deadline,
                    "the group is not stable after 90 s"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };

    let start = Instant::now();
    let mut a = member("a", &ckafka, &log);
    let mut b = member("b", &ckafka, &log);
    let mut c = member("c", &ckafka, &log);
    let formed = stable(start, None).await;

    let killed_at = Instant::now();
    b.kill().await.unwrap();
    let after_kill = stable(killed_at, None).await;

    let joined_at = Instant::now();
    let mut d = member("d", &ckafka, &log);
    let after_join = stable(joined_at, Some("d")).await;

    producing.store(false, Ordering::Relaxed);
    load.await.unwrap();
    let sent = sent.lock().unwrap().len() as u64;
    // Every record sent is consumed by someone, at least once.
    let deadline = Instant::now() + Duration::from_secs(60);
    let (missing, copies) = loop {
        let mut copies: HashMap<u64, usize> = HashMap::new();
        for c in log.lock().unwrap().iter() {
            *copies.entry(c.seq).or_default() += 1;
        }
        let missing = (0..sent).filter(|s| !copies.contains_key(s)).count();
        if missing == 0 || Instant::now() > deadline {
            break (missing, copies);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let (samples, regressions) = sampler.finish().await;
    for member in [&mut a, &mut c, &mut d] {
        member.kill().await.unwrap();
    }
    let _ = std::fs::remove_file(&ckafka);
    let duplicated: usize = copies.values().map(|n| n - 1).sum();
    cluster::report(
        "consumer group churn: a member killed, another joining",
        serde_json::json!({
            "members": 3,
            "sent": sent,
            "consumed_distinct": copies.len(),
            "missing": missing,
            "duplicated": duplicated,
            "group_formed_s": formed.as_secs_f64(),
            "stable_after_kill_s": after_kill.as_secs_f64(),
            "stable_after_join_s": after_join.as_secs_f64(),
            "session_timeout_s": 6,
            "committed_offset_samples": samples,
            "committed_offset_regressions": regressions.len(),
        }),
    );
    assert_eq!(missing, 0, "every record consumed at least once");
    assert!(
        regressions.is_empty(),
        "committed offsets went back: {regressions:?}"
    );
}
