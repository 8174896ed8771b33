//! The partition leader taken away twice under an acks=all idempotent load: killed (a crash)
//! or stopped cleanly, and restarted each time. Every acknowledged record must be read back
//! exactly once, in order.

use std::time::{Duration, Instant};

use super::cluster;
use super::ledger::{read_back, tally, Load};

const RECORDS: u64 = 200_000;
const PARTITIONS: i32 = 3;
/// Slow enough that the load spans both faults.
const PER_SECOND: u64 = 10_000;

#[derive(Clone, Copy)]
enum Fault {
    Kill,
    Stop,
}

async fn leader_lost_under_load(fault: Fault, scenario: &str) {
    let _turn = cluster::serial().await;
    let topic = cluster::replicated_topic("faults", PARTITIONS).await;
    let producer = cluster::idempotent_producer().await;
    let started = Instant::now();
    let load = Load::start(producer, &topic, RECORDS, PER_SECOND);
    let mut faults = Vec::new();
    for at in [RECORDS as usize / 8, RECORDS as usize / 2] {
        load.acked_at_least(at).await;
        let leader = cluster::leader_of(&topic, 0).await;
        let t = started.elapsed();
        match fault {
            Fault::Kill => cluster::kill(leader).await,
            Fault::Stop => cluster::stop(leader).await,
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        cluster::start(leader).await;
        faults.push(serde_json::json!({
            "broker": leader,
            "at_s": t.as_secs_f64(),
            "back_after_s": (started.elapsed() - t).as_secs_f64(),
        }));
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
    leader_lost_under_load(Fault::Kill, "leader killed (SIGKILL) twice under load").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_stopped_cleanly_twice_under_load() {
    leader_lost_under_load(Fault::Stop, "leader stopped cleanly twice under load").await;
}
