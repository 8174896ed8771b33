//! Routing without a broker: partitions go to their leader's sink, move with it, and wait
//! (and expire) without one.

use std::collections::HashMap;

use super::*;
use crate::config::ClientConfig;

/// An accumulator whose partitions are led as `leaders` says at the time of asking.
fn accumulator(settings: &[(&str, &str)], leaders: Arc<Mutex<HashMap<i32, i32>>>) -> Accumulator {
    let mut config = ClientConfig::new();
    for (key, value) in settings {
        config = config.set(key, value).unwrap();
    }
    let route = Box::new(move |_: &str, p: i32| leaders.lock().unwrap().get(&p).copied());
    Accumulator::new(config.producer, route, None, false)
}

fn append(acc: &Accumulator, partition: i32) -> Appended {
    acc.append(
        "t",
        Target::Partition(partition),
        0,
        None,
        Some(b"v"),
        &[],
        70,
        None,
    )
    .ok()
    .expect("appended")
}

#[tokio::test(start_paused = true)]
async fn a_partition_goes_to_its_leaders_sink_and_moves_with_it() {
    let leaders = Arc::new(Mutex::new(HashMap::from([(0, 1), (1, 2)])));
    let acc = accumulator(&[("linger.ms", "0")], leaders.clone());
    append(&acc, 0);
    append(&acc, 1);
    let mut sinks: Vec<i32> = acc.new_sinks().iter().map(|s| s.broker).collect();
    sinks.sort();
    assert_eq!(sinks, [1, 2]);
    assert!(acc.new_sinks().is_empty(), "each sink is started once");
    let now = Instant::now();
    let (one, _) = acc.drain(1, now);
    let (two, _) = acc.drain(2, now);
    assert_eq!(one.iter().map(|b| b.partition).collect::<Vec<_>>(), [0]);
    assert_eq!(two.iter().map(|b| b.partition).collect::<Vec<_>>(), [1]);
    for batch in one.into_iter().chain(two) {
        acc.settle(batch, Ok(BatchAck::UNKNOWN), true);
    }

    // The leader of partition 0 moves to broker 3: a new sink, woken with the work.
    leaders.lock().unwrap().insert(0, 3);
    append(&acc, 0);
    assert!(acc.reroute().is_empty());
    let started: Vec<i32> = acc.new_sinks().iter().map(|s| s.broker).collect();
    assert_eq!(started, [3]);
    assert!(acc.drain(1, Instant::now()).0.is_empty());
    let (three, _) = acc.drain(3, Instant::now());
    assert_eq!(three.len(), 1);
    assert_eq!(acc.pending(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_partition_without_a_leader_waits_then_expires_as_never_sent() {
    let leaders = Arc::new(Mutex::new(HashMap::new()));
    let acc = accumulator(&[("delivery.timeout.ms", "5000")], leaders.clone());
    let appended = append(&acc, 0);
    assert!(
        acc.new_sinks().is_empty(),
        "no sink for a partition without a leader"
    );
    assert_eq!(
        acc.reroute(),
        [Arc::<str>::from("t")],
        "its topic is asked about"
    );
    let (none, next) = acc.drain(UNROUTED, Instant::now());
    assert!(none.is_empty(), "nothing goes from the unrouted list");
    let next = next.expect("the router looks again at the delivery timeout");
    tokio::time::sleep_until(next).await;
    let (none, _) = acc.drain(UNROUTED, Instant::now());
    assert!(none.is_empty());
    let delivery = super::super::DeliveryFuture::new(appended.batch, appended.index, 0);
    let err = delivery.await.unwrap_err();
    assert!(!err.is_outcome_unknown(), "{err}");
    assert!(err.to_string().contains("delivery.timeout.ms"), "{err}");
    assert_eq!(acc.pending(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_batch_lingers_unless_a_flush_or_close_hurries_it() {
    let leaders = Arc::new(Mutex::new(HashMap::from([(0, 1)])));
    let acc = accumulator(&[("linger.ms", "100")], leaders);
    append(&acc, 0);
    let start = Instant::now();
    let (none, next) = acc.drain(1, start);
    assert!(none.is_empty());
    assert_eq!(next, Some(start + Duration::from_millis(100)));
    acc.flushing(true);
    let (flushed, _) = acc.drain(1, start);
    assert_eq!(flushed.len(), 1, "a flush sends it at once");
    acc.flushing(false);
    append(&acc, 0);
    assert!(
        acc.drain(1, Instant::now()).0.is_empty(),
        "one batch per partition in flight, and this one lingers"
    );
    for batch in flushed {
        acc.settle(batch, Ok(BatchAck::UNKNOWN), true);
    }
    acc.close();
    assert_eq!(
        acc.drain(1, Instant::now()).0.len(),
        1,
        "closing sends it at once"
    );
    assert!(matches!(
        acc.append("t", Target::Partition(0), 0, None, None, &[], 70, None),
        Err(Refused::Closed)
    ));
}

/// Where a record spread at random went.
fn spread(acc: &Accumulator, sticky: bool) -> i32 {
    let target = Target::Random {
        partitions: 8,
        sticky,
    };
    let appended = acc.append("t", target, 0, None, Some(b"v"), &[], 70, None);
    appended.ok().expect("appended").batch.partition
}

#[tokio::test(start_paused = true)]
async fn keyless_records_stick_to_a_partition_for_the_sticky_linger() {
    let leaders = Arc::new(Mutex::new((0..8).map(|p| (p, 1)).collect()));
    // Unset, the sticky linger is twice linger.ms, as in librdkafka.
    let acc = accumulator(&[("linger.ms", "50")], leaders.clone());
    let linger = Duration::from_millis(100);
    let mut drawn = std::collections::HashSet::new();
    for _ in 0..40 {
        let first = spread(&acc, true);
        for _ in 0..20 {
            tokio::time::advance(linger / 25).await;
            assert_eq!(spread(&acc, true), first, "moved within the sticky linger");
        }
        drawn.insert(first);
        tokio::time::advance(linger).await;
    }
    // A new draw each linger: fewer than 6 of the 8 partitions in 40 draws has a chance
    // below one in a million.
    assert!(drawn.len() >= 6, "{drawn:?}");
    // Records that may not stick draw every time, and so do all with a sticky linger of 0.
    let each = |acc: &Accumulator, sticky| {
        let drawn: std::collections::HashSet<i32> = (0..64).map(|_| spread(acc, sticky)).collect();
        assert!(drawn.len() >= 6, "{drawn:?}");
    };
    each(&acc, false);
    each(
        &accumulator(&[("sticky.partitioning.linger.ms", "0")], leaders),
        true,
    );
}

#[tokio::test(start_paused = true)]
async fn a_sticky_draw_avoids_a_partition_without_a_leader() {
    // Only partition 3 of 8 has a leader: a draw that lands elsewhere draws once more, as
    // librdkafka does, so partition 3 comes up far more than one time in eight.
    let leaders = Arc::new(Mutex::new(HashMap::from([(3, 1)])));
    let acc = accumulator(&[("sticky.partitioning.linger.ms", "0")], leaders);
    let on_3 = (0..800).filter(|_| spread(&acc, true) == 3).count();
    // Expected 800 * (1/8 + 7/8 * 1/8) = 187.5.
    assert!((130..260).contains(&on_3), "{on_3}");
}

#[tokio::test(start_paused = true)]
async fn the_sticky_partition_moves_on_when_it_fills_a_batch() {
    let leaders = Arc::new(Mutex::new((0..8).map(|p| (p, 1)).collect()));
    // A sticky linger far longer than the test, and batches of 14 records.
    let settings = [
        ("sticky.partitioning.linger.ms", "60000"),
        ("batch.num.messages", "14"),
    ];
    let acc = accumulator(&settings, leaders);
    let partitions: Vec<i32> = (0..280).map(|_| spread(&acc, true)).collect();
    // Runs of one partition, each ending where a batch filled (15 records: the one that finds
    // the batch full opens the next), then the next partition's.
    let runs = 1 + partitions.windows(2).filter(|w| w[0] != w[1]).count();
    assert!(runs >= 10, "{runs} runs: {partitions:?}");
    let longest = partitions
        .chunk_by(|a, b| a == b)
        .map(<[i32]>::len)
        .max()
        .unwrap();
    assert_eq!(longest, 15, "{partitions:?}");
    // Each full batch hands over to the next partition.
    let firsts: Vec<i32> = partitions
        .chunk_by(|a, b| a == b)
        .map(|run| run[0])
        .collect();
    assert!(
        firsts.windows(2).all(|w| w[1] == (w[0] + 1) % 8),
        "{firsts:?}"
    );
}
