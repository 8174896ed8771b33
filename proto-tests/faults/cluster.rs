//! The cluster under test: its brokers stopped and started through `cargo xtask kafka`, and
//! the scenarios' reports.

use std::collections::HashMap;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use purekafka::{Admin, ClientConfig, Producer};

/// One scenario at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Waits for the other scenarios, then checks every broker is up (a failed scenario may have
/// left one down) before handing over.
pub async fn serial() -> tokio::sync::MutexGuard<'static, ()> {
    let guard = SERIAL.lock().await;
    for id in 1..=3 {
        // `start` refuses a running broker; that is the usual case.
        if let Err(said) = xtask(&["kafka", "start", &id.to_string()]).await {
            assert!(
                said.contains("is already running"),
                "broker {id} did not start again before the next scenario:\n{said}"
            );
        }
    }
    guard
}

/// Runs the xtask binary that started the cluster (`PUREKAFKA_XTASK`), showing what it says.
async fn xtask(args: &[&str]) -> Result<(), String> {
    let program = std::env::var("PUREKAFKA_XTASK").expect(
        "PUREKAFKA_XTASK names the xtask binary; run these with `cargo xtask test --faults`",
    );
    let out = tokio::process::Command::new(program)
        .args(args)
        .output()
        .await
        .map_err(|e| e.to_string())?;
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    if out.status.success() {
        eprint!("{said}");
        Ok(())
    } else {
        Err(said)
    }
}

/// Runs `xtask kafka <command> <id>`, which must succeed.
async fn kafka(command: &str, id: i32) {
    let id = id.to_string();
    if let Err(said) = xtask(&["kafka", command, &id]).await {
        panic!("`xtask kafka {command} {id}` failed:\n{said}");
    }
}

/// SIGKILL: a crash.
pub async fn kill(id: i32) {
    kafka("kill", id).await;
}

/// SIGTERM: a controlled shutdown.
pub async fn stop(id: i32) {
    kafka("stop", id).await;
}

/// Starts a stopped broker and waits until it answers.
pub async fn start(id: i32) {
    kafka("start", id).await;
}

/// How a broker is taken down.
#[derive(Clone, Copy)]
pub enum Down {
    /// SIGKILL: a crash.
    Kill,
    /// SIGTERM: a controlled shutdown.
    Stop,
}

/// Takes broker `id` down, waits 2 s and starts it again; the fault's figures, with times
/// from `started`.
pub async fn down_and_back(id: i32, how: Down, started: std::time::Instant) -> serde_json::Value {
    let at = started.elapsed();
    match how {
        Down::Kill => kill(id).await,
        Down::Stop => stop(id).await,
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    start(id).await;
    serde_json::json!({
        "broker": id,
        "at_s": at.as_secs_f64(),
        "back_after_s": (started.elapsed() - at).as_secs_f64(),
    })
}

/// A CKafka `ckafka.json` for the examples, in the temporary folder: the SASL listeners of
/// the three brokers, the local PLAIN user, `topic` and the consumer group `group`. The
/// caller removes it.
pub fn ckafka_json(group: &str, topic: &str) -> std::path::PathBuf {
    let sasl: Vec<String> = std::env::var("PUREKAFKA_SASL")
        .expect("PUREKAFKA_SASL")
        .split(',')
        .map(str::to_owned)
        .collect();
    let path = std::env::temp_dir().join(format!("{group}.json"));
    let json = serde_json::json!({
        "topic": [topic],
        "sasl": {"username": "purekafka", "password": "purekafka-secret",
                 "instanceId": "ckafka-local"},
        "bootstrapServers": sasl,
        "consumerGroupId": group,
    });
    std::fs::write(&path, json.to_string()).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    path
}

/// A client of the three-broker cluster.
pub fn config() -> ClientConfig {
    crate::common::plaintext()
}

/// A fresh topic of `partitions`, each replicated on all three brokers.
pub async fn replicated_topic(prefix: &str, partitions: i32) -> String {
    let topic = crate::common::unique_topic(prefix);
    admin()
        .await
        .create_topic(&topic, partitions, 3)
        .await
        .unwrap();
    topic
}

/// The producer whose guarantees the scenarios check: acks=all, idempotent.
pub async fn idempotent_producer() -> Producer {
    let config = config()
        .set("acks", "all")
        .unwrap()
        .set("enable.idempotence", true)
        .unwrap();
    Producer::builder(config).build().await.unwrap()
}

pub async fn admin() -> Admin {
    Admin::builder(config()).build().await.unwrap()
}

/// The current leader of `topic`'s `partition`, waiting out an election.
pub async fn leader_of(topic: &str, partition: i32) -> i32 {
    let admin = admin().await;
    for _ in 0..100 {
        if let Ok(leaders) = admin.partition_leaders(topic).await {
            if let Some(&(_, leader)) = leaders.iter().find(|(p, _)| *p == partition) {
                if leader >= 0 {
                    return leader;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("{topic}[{partition}] has no leader after 20 s");
}

/// Prints a scenario's figures and appends them to `PUREKAFKA_FAULT_REPORT` when set.
pub fn report(scenario: &str, figures: serde_json::Value) {
    let line = serde_json::json!({ "scenario": scenario, "figures": figures }).to_string();
    println!("FAULT-REPORT {line}");
    if let Ok(path) = std::env::var("PUREKAFKA_FAULT_REPORT") {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .unwrap_or_else(|e| panic!("{path}: {e}"));
        writeln!(file, "{line}").unwrap();
    }
}

/// A group's committed offsets, sampled every 300 ms while a scenario runs: they must never go
/// backwards.
pub struct CommitSampler {
    /// Each regression seen: (partition, before, after).
    regressions: Arc<Mutex<Vec<(i32, i64, i64)>>>,
    sampling: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<usize>,
}

impl CommitSampler {
    pub fn start(group: &str, topic: &str) -> CommitSampler {
        let regressions: Arc<Mutex<Vec<(i32, i64, i64)>>> = Arc::default();
        let sampling = Arc::new(AtomicBool::new(true));
        let (seen_back, go_on) = (regressions.clone(), sampling.clone());
        let (group, topic) = (group.to_owned(), topic.to_owned());
        let task = tokio::spawn(async move {
            let admin = admin().await;
            let mut last: HashMap<i32, i64> = HashMap::new();
            let mut samples = 0;
            while go_on.load(Ordering::Relaxed) {
                if let Ok(offsets) = admin.committed_offsets(&group, &topic).await {
                    samples += 1;
                    for (p, offset) in offsets {
                        let Some(offset) = offset else { continue };
                        if let Some(&before) = last.get(&p) {
                            if offset < before {
                                seen_back.lock().unwrap().push((p, before, offset));
                            }
                        }
                        last.insert(p, offset);
                    }
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            samples
        });
        CommitSampler {
            regressions,
            sampling,
            task,
        }
    }

    /// Stops sampling: how many samples were taken, and every regression seen.
    pub async fn finish(self) -> (usize, Vec<(i32, i64, i64)>) {
        self.sampling.store(false, Ordering::Relaxed);
        let samples = self.task.await.unwrap();
        let regressions = self.regressions.lock().unwrap().clone();
        (samples, regressions)
    }
}
