//! pkcat reading as a group member (`pkcat -C -G`) while brokers 2 and then 3 are killed
//! (SIGKILL) and started again, under a steady load: it reports what passes on stderr and
//! reads on, as kcat does, to the last record; Ctrl-C then commits, leaves and exits 0.

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::AsyncBufReadExt;

use super::cluster::{self, Down};
use super::ledger::Load;
use crate::common::unique_topic;

const RECORDS: u64 = 100_000;
const PARTITIONS: i32 = 3;
const PER_SECOND: u64 = 5_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pkcat_reads_on_while_brokers_die() {
    let _turn = cluster::serial().await;
    let topic = cluster::replicated_topic("pkcat-faults", PARTITIONS).await;
    let pkcat = std::env::var("PUREKAFKA_PKCAT").expect("PUREKAFKA_PKCAT: the pkcat binary");
    let bootstrap = crate::common::plaintext_addr();
    let mut child = tokio::process::Command::new(pkcat)
        .args([
            "-b",
            &bootstrap,
            "-C",
            "-G",
            &unique_topic("pkcat-group"),
            &topic,
        ])
        .args(["-o", "beginning", "-f", "%p %o\\n"])
        .args([
            "-X",
            "session.timeout.ms=6000",
            "-X",
            "heartbeat.interval.ms=500",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("pkcat runs");
    // (partition, offset) → how often pkcat printed it.
    let printed: Arc<Mutex<HashMap<(i32, i64), usize>>> = Arc::default();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let out = printed.clone();
    let reading = tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            let (p, o) = line.split_once(' ').expect("%p %o");
            let at = (p.parse().unwrap(), o.parse().unwrap());
            *out.lock().unwrap().entry(at).or_default() += 1;
        }
    });
    let mut stderr = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let said = Arc::new(Mutex::new(Vec::new()));
    let err = said.clone();
    let warnings = tokio::spawn(async move {
        while let Ok(Some(line)) = stderr.next_line().await {
            err.lock().unwrap().push(line);
        }
    });

    let started = Instant::now();
    let load = Load::start(
        cluster::idempotent_producer().await,
        &topic,
        RECORDS,
        PER_SECOND,
    );
    let mut faults = Vec::new();
    for (at, broker) in [(RECORDS as usize / 4, 2), (RECORDS as usize / 2, 3)] {
        load.acked_at_least(at).await;
        faults.push(cluster::down_and_back(broker, Down::Kill, started).await);
    }
    let outcomes = load.finish().await;
    assert!(outcomes.failed.is_empty(), "{:?}", outcomes.failed);

    let deadline = Instant::now() + Duration::from_secs(60);
    let missing = loop {
        let missing = {
            let printed = printed.lock().unwrap();
            outcomes
                .acked
                .values()
                .filter(|at| !printed.contains_key(at))
                .count()
        };
        if missing == 0 || Instant::now() > deadline {
            break missing;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "pkcat stopped reading:\n{}",
            said.lock().unwrap().join("\n")
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let alive = child.try_wait().unwrap().is_none();
    // Ctrl-C: a group member commits and leaves.
    let pid = child.id().expect("pkcat runs").to_string();
    let interrupted = tokio::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .await
        .unwrap();
    assert!(interrupted.success());
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("pkcat ends within 30 s of Ctrl-C")
        .unwrap();
    reading.await.unwrap();
    warnings.await.unwrap();
    let said = said.lock().unwrap().clone();
    let carried_on = said.iter().filter(|l| l.contains("carrying on")).count();
    // What pkcat said, its first and last lines, for the report.
    let sample: Vec<&String> = said
        .iter()
        .take(3)
        .chain(said.iter().rev().take(3))
        .collect();
    let printed = printed.lock().unwrap();
    let duplicated: usize = printed.values().map(|n| n - 1).sum();
    cluster::report(
        "pkcat -C -G while brokers 2 then 3 are killed (SIGKILL)",
        serde_json::json!({
            "sent": RECORDS,
            "acknowledged": outcomes.acked.len(),
            "printed_distinct": printed.len(),
            "missing": missing,
            "duplicated": duplicated,
            "errors_reported_and_carried_on": carried_on,
            "stderr_first_and_last": sample,
            "faults": faults,
            "exit": status.code(),
        }),
    );
    assert!(alive, "pkcat was still reading at the end");
    assert_eq!(missing, 0, "every acknowledged record printed");
    assert!(status.success(), "{status}:\n{}", said.join("\n"));
}
