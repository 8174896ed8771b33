//! The partition leader taken away twice under an acks=all idempotent load: killed (a crash)
//! or stopped cleanly, and restarted each time. Every acknowledged record must be read back
//! exactly once, in order.

use std::time::Instant;

use super::cluster::{self, Down};
use super::ledger::{read_back, tally, Load};

const RECORDS: u64 = 200_000;
const PARTITIONS: i32 = 3;
/// Slow enough that the load spans both faults.
const PER_SECOND: u64 = 10_000;

async fn leader_lost_under_load(how: Down, scenario: &str) {
    let _turn = cluster::serial().await;
    let topic = cluster::replicated_topic("faults", PARTITIONS).await;
    let producer = cluster::idempotent_producer().await;
    let started = Instant::now();
    let load = Load::start(producer, &topic, RECORDS, PER_SECOND);
    let mut faults = Vec::new();
    for at in [RECORDS as usize / 8, RECORDS as usize / 2] {
        load.acked_at_least(at).await;
        let leader = cluster::leader_of(&topic, 0).await;
        faults.push(cluster::down_and_back(leader, how, started).await);
    }
    let outcomes = load.finish().await;
    let produced_s = started.elapsed().as_secs_f64();
    let log = read_back(&topic, PARTITIONS).await;
    let tally = tally(RECORDS, &outcomes, &log);
    cluster::report(
        scenario,
        serde_json::json!({ "tally": tally, "faults": faults, "produce_s": produced_s }),
    );
    tally.assert_exactly_once();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_killed_twice_under_load() {
    leader_lost_under_load(Down::Kill, "leader killed (SIGKILL) twice under load").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_stopped_cleanly_twice_under_load() {
    leader_lost_under_load(Down::Stop, "leader stopped cleanly twice under load").await;
}
