//! Exactly once under faults: the consume-transform-produce example
//! (`examples/exactly_once.rs`, a process of its own) copies 100,000 keyed records from one
//! topic to another, a transaction per batch with the group's offsets, while the broker that
//! coordinates its transactions is killed (SIGKILL), then a leader of the output, then the
//! example's own process, which is started again. The output, read as a `read_committed`
//! consumer reads it, holds every input record exactly once, each key's records in order.

use std::collections::{BTreeMap, HashMap};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use purekafka::{Consumer, Offset, ProducerRecord};
use tokio::io::AsyncBufReadExt;

use super::cluster::{self, Down};
use crate::common::unique_topic;

const RECORDS: u64 = 100_000;
const PARTITIONS: i32 = 6;
const KEYS: u64 = 300;
/// `transaction.state.log.num.partitions`, Kafka's default.
const TXN_LOG_PARTITIONS: i32 = 50;

/// What the example's processes said, counted.
#[derive(Default)]
struct Said {
    /// Records of committed transactions.
    committed: AtomicU64,
    /// Transactions aborted (and read again).
    aborted: AtomicU64,
    /// Calls that timed out and were made again.
    retried: AtomicU64,
}

/// The example, reading `input` with the settings of `config` (a ckafka.json), writing to
/// `output` as `txn_id`; its progress counted in `said`.
fn copy_loop(
    config: &std::path::Path,
    input: &str,
    output: &str,
    txn_id: &str,
    said: &Arc<Said>,
) -> tokio::process::Child {
    let dir = std::env::var("PUREKAFKA_EXAMPLES").expect("PUREKAFKA_EXAMPLES: the examples' dir");
    let mut child = tokio::process::Command::new(format!("{dir}/exactly_once"))
        .arg("--config")
        .arg(config)
        .args(["--input", input, "--output", output])
        .args(["--transactional-id", txn_id, "--batch", "500"])
        .args(["--idle-timeout-ms", "30000"])
        .args(["-X", "session.timeout.ms=6000"])
        .args(["-X", "heartbeat.interval.ms=500"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("the exactly_once example runs");
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let said = said.clone();
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(rest) = line.strip_prefix("Committed a transaction of ") {
                let n: u64 = rest.trim_end_matches(" records").parse().unwrap();
                said.committed.fetch_add(n, Ordering::Relaxed);
            } else if line.starts_with("Transaction aborted") {
                said.aborted.fetch_add(1, Ordering::Relaxed);
                println!("exactly_once: {line}");
            } else if line.starts_with("Retrying") {
                said.retried.fetch_add(1, Ordering::Relaxed);
                println!("exactly_once: {line}");
            }
        }
    });
    child
}

/// Waits until the example's committed transactions hold `records` records.
async fn committed_at_least(said: &Said, records: u64) {
    let deadline = Instant::now() + Duration::from_secs(180);
    while said.committed.load(Ordering::Relaxed) < records {
        assert!(
            Instant::now() < deadline,
            "{} records committed after 180 s, waiting for {records}",
            said.committed.load(Ordering::Relaxed)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The broker coordinating `txn_id`'s transactions: the leader of its partition of the
/// transaction log (the partition is Java's `String.hashCode`, made non-negative, modulo the
/// partition count, as the broker computes it).
async fn coordinator_of(txn_id: &str) -> i32 {
    let hash = txn_id
        .encode_utf16()
        .fold(0i32, |h, unit| h.wrapping_mul(31).wrapping_add(unit as i32));
    let partition = if hash == i32::MIN { 0 } else { hash.abs() } % TXN_LOG_PARTITIONS;
    cluster::leader_of("__transaction_state", partition).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consume_transform_produce_is_exactly_once_under_faults() {
    let _turn = cluster::serial().await;
    let input = cluster::replicated_topic("eos-in", PARTITIONS).await;
    let output = cluster::replicated_topic("eos-out", PARTITIONS).await;
    let group = unique_topic("eos-group");
    let txn_id = unique_topic("eos-txn");

    // The input: key k<seq % KEYS>, value <seq>.
    let producer = cluster::idempotent_producer().await;
    let mut deliveries = Vec::new();
    for seq in 0..RECORDS {
        let record = ProducerRecord::new(&input)
            .key(format!("k{}", seq % KEYS))
            .value(seq.to_string());
        deliveries.push(producer.produce(record).await.unwrap());
    }
    for d in deliveries {
        d.await.unwrap();
    }
    producer.close().await;

    let ckafka = cluster::ckafka_json(&group, &input);

    let said = Arc::new(Said::default());
    let started = Instant::now();
    let mut copying = copy_loop(&ckafka, &input, &output, &txn_id, &said);
    let mut faults = Vec::new();

    // The transaction coordinator's broker, killed mid-transaction.
    committed_at_least(&said, RECORDS / 5).await;
    let coordinator = coordinator_of(&txn_id).await;
    let mut fault = cluster::down_and_back(coordinator, Down::Kill, started).await;
    fault["what"] = "transaction coordinator".into();
    faults.push(fault);

    // A leader of the output.
    committed_at_least(&said, RECORDS * 9 / 20).await;
    let leader = cluster::leader_of(&output, 0).await;
    let mut fault = cluster::down_and_back(leader, Down::Kill, started).await;
    fault["what"] = "leader of an output partition".into();
    faults.push(fault);

    // The loop's own process, killed and started again.
    committed_at_least(&said, RECORDS * 13 / 20).await;
    let at = started.elapsed();
    copying.kill().await.unwrap();
    let killed_at = said.committed.load(Ordering::Relaxed);
    copying = copy_loop(&ckafka, &input, &output, &txn_id, &said);
    faults.push(serde_json::json!({
        "what": "the loop's process (SIGKILL), started again",
        "at_s": at.as_secs_f64(),
        "records_committed_before": killed_at,
    }));

    // The example stops once nothing has come for 30 s, having committed the rest.
    let status = tokio::time::timeout(Duration::from_secs(300), copying.wait())
        .await
        .expect("the example ends within 300 s")
        .unwrap();
    assert!(status.success(), "the example failed: {status}");
    let copy_s = started.elapsed().as_secs_f64();

    // The output, as a read_committed consumer sees it.
    let mut consumer = Consumer::builder(cluster::config()).build().await.unwrap();
    let all: Vec<(&str, i32)> = (0..PARTITIONS).map(|p| (output.as_str(), p)).collect();
    consumer.assign(all, Offset::Earliest).await.unwrap();
    let text = |b: Option<Bytes>| String::from_utf8(b.unwrap_or_default().to_vec()).unwrap();
    let mut seen: HashMap<u64, u32> = HashMap::new();
    let mut last_of_key: BTreeMap<String, u64> = BTreeMap::new();
    let mut out_of_order = 0;
    let mut read = 0u64;
    loop {
        let quiet = if read >= RECORDS { 3 } else { 20 };
        let Ok(msg) = tokio::time::timeout(Duration::from_secs(quiet), consumer.recv()).await
        else {
            break;
        };
        let msg = msg.unwrap();
        read += 1;
        let seq: u64 = text(msg.value).parse().unwrap();
        *seen.entry(seq).or_default() += 1;
        let key = text(msg.key);
        if let Some(&before) = last_of_key.get(&key) {
            if seq <= before {
                out_of_order += 1;
            }
        }
        last_of_key.insert(key, seq);
    }
    let lost = (0..RECORDS).filter(|s| !seen.contains_key(s)).count();
    let duplicated: u32 = seen.values().map(|n| n - 1).sum();
    cluster::report(
        "consume-transform-produce, exactly once, under faults",
        serde_json::json!({
            "input_records": RECORDS,
            "output_read_committed": read,
            "lost": lost,
            "duplicated": duplicated,
            "out_of_order_per_key": out_of_order,
            "transactions_aborted": said.aborted.load(Ordering::Relaxed),
            "calls_retried": said.retried.load(Ordering::Relaxed),
            "copy_s": copy_s,
            "faults": faults,
        }),
    );
    assert_eq!((lost, duplicated, out_of_order), (0, 0, 0));
    assert_eq!(read, RECORDS);
    let _ = std::fs::remove_file(&ckafka);
}
