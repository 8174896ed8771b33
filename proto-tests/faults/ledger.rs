//! A producer's load with a record of every outcome, and the check of what a consumer reads
//! back: lost, duplicated, out of order.
//!
//! Record `seq` has key `k{seq}` and the 8 bytes of `seq` as its value, so what is read back
//! names the record it is, whichever partition and offset it landed at.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use purekafka::{Consumer, Error, Offset, Producer, ProducerRecord};

use super::cluster;

/// What became of each record sent.
#[derive(Default)]
pub struct Outcomes {
    /// seq → (partition, offset), for every acknowledged record.
    pub acked: HashMap<u64, (i32, i64)>,
    /// seq → the error, for every record that failed.
    pub failed: HashMap<u64, Error>,
}

/// A load in progress: records sent at a steady rate, outcomes collected as they come.
pub struct Load {
    pub acked: Arc<AtomicUsize>,
    pub outcomes: Arc<Mutex<Outcomes>>,
    sending: tokio::task::JoinHandle<Producer>,
    collecting: tokio::task::JoinHandle<()>,
}

impl Load {
    /// Sends `total` keyed records to `topic` at about `per_second`.
    pub fn start(producer: Producer, topic: &str, total: u64, per_second: u64) -> Load {
        let acked = Arc::new(AtomicUsize::new(0));
        let outcomes = Arc::new(Mutex::new(Outcomes::default()));
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let topic = topic.to_owned();
        let sending = tokio::spawn(async move {
            let started = Instant::now();
            for seq in 0..total {
                if seq % 1000 == 0 {
                    let due = Duration::from_secs_f64(seq as f64 / per_second as f64);
                    tokio::time::sleep_until((started + due).into()).await;
                }
                let record = ProducerRecord::new(&topic)
                    .key(format!("k{seq}"))
                    .value(seq.to_be_bytes().to_vec());
                let delivery = producer.produce(record).await;
                tx.send((seq, delivery)).unwrap();
            }
            producer
        });
        let (count, log) = (acked.clone(), outcomes.clone());
        let collecting = tokio::spawn(async move {
            while let Some((seq, delivery)) = rx.recv().await {
                let outcome = match delivery {
                    Ok(delivery) => delivery.await,
                    Err(e) => Err(e),
                };
                let mut log = log.lock().unwrap();
                match outcome {
                    Ok(meta) => {
                        let offset = meta.offset.expect("acks=all answers with the offset");
                        log.acked.insert(seq, (meta.partition, offset));
                        count.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(e) => {
                        log.failed.insert(seq, e);
                    }
                }
            }
        });
        Load {
            acked,
            outcomes,
            sending,
            collecting,
        }
    }

    /// Waits until `n` records are acknowledged (or 3 minutes pass).
    pub async fn acked_at_least(&self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(180);
        while self.acked.load(Ordering::SeqCst) < n {
            assert!(
                Instant::now() < deadline,
                "{n} records not acknowledged in 3 minutes"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits for every outcome, then closes the producer.
    pub async fn finish(self) -> Outcomes {
        let producer = self.sending.await.unwrap();
        self.collecting.await.unwrap();
        producer.close().await;
        Arc::try_unwrap(self.outcomes)
            .ok()
            .expect("the collector is done")
            .into_inner()
            .unwrap()
    }
}

/// Every record in `topic`'s `partitions`, as (partition, offset, seq), read from the start
/// until nothing more comes for 5 s.
pub async fn read_back(topic: &str, partitions: i32) -> Vec<(i32, i64, u64)> {
    let mut consumer = Consumer::builder(cluster::config()).build().await.unwrap();
    consumer
        .assign((0..partitions).map(|p| (topic, p)), Offset::Earliest)
        .await
        .unwrap();
    let mut out = Vec::new();
    while let Ok(msg) = tokio::time::timeout(Duration::from_secs(5), consumer.recv()).await {
        let msg = msg.unwrap();
        let value: [u8; 8] = msg.value.as_deref().unwrap().try_into().unwrap();
        out.push((msg.partition, msg.offset, u64::from_be_bytes(value)));
    }
    out
}

/// The check of a run: what was sent, what became of it, what is in the log.
#[derive(Debug, serde::Serialize)]
pub struct Tally {
    pub sent: u64,
    pub acknowledged: usize,
    pub failed: usize,
    /// Failed records whose outcome the client reported unknown (sent, no answer).
    pub failed_outcome_unknown: usize,
    pub read_back: usize,
    /// Acknowledged records not in the log.
    pub lost: usize,
    /// Extra copies of records in the log.
    pub duplicated: usize,
    /// Records of one partition in the log in another order than they were sent.
    pub out_of_order: usize,
    /// Acknowledged at an offset other than where the record is.
    pub misplaced: usize,
    /// Failed records that are in the log all the same.
    pub failed_but_written: usize,
    /// Of those, the ones reported failed for sure (not outcome-unknown): must be zero.
    pub failed_for_sure_but_written: usize,
}

pub fn tally(sent: u64, outcomes: &Outcomes, log: &[(i32, i64, u64)]) -> Tally {
    let mut copies: HashMap<u64, Vec<(i32, i64)>> = HashMap::new();
    let mut per_partition: BTreeMap<i32, Vec<(i64, u64)>> = BTreeMap::new();
    for &(partition, offset, seq) in log {
        copies.entry(seq).or_default().push((partition, offset));
        per_partition
            .entry(partition)
            .or_default()
            .push((offset, seq));
    }
    let out_of_order = per_partition
        .values_mut()
        .map(|records| {
            records.sort_unstable();
            records.windows(2).filter(|w| w[1].1 < w[0].1).count()
        })
        .sum();
    let written_failed: Vec<&Error> = outcomes
        .failed
        .iter()
        .filter(|(seq, _)| copies.contains_key(seq))
        .map(|(_, e)| e)
        .collect();
    Tally {
        sent,
        acknowledged: outcomes.acked.len(),
        failed: outcomes.failed.len(),
        failed_outcome_unknown: outcomes
            .failed
            .values()
            .filter(|e| e.is_outcome_unknown())
            .count(),
        read_back: log.len(),
        lost: outcomes
            .acked
            .keys()
            .filter(|seq| !copies.contains_key(seq))
            .count(),
        duplicated: copies.values().map(|c| c.len() - 1).sum(),
        out_of_order,
        misplaced: outcomes
            .acked
            .iter()
            .filter(|(seq, at)| copies.get(seq).is_some_and(|c| !c.contains(at)))
            .count(),
        failed_but_written: written_failed.len(),
        failed_for_sure_but_written: written_failed
            .iter()
            .filter(|e| !e.is_outcome_unknown())
            .count(),
    }
}

impl Tally {
    /// The guarantees of an idempotent producer with acks=all: nothing acknowledged is lost,
    /// nothing is written twice or out of order, and a record reported failed for sure is not
    /// in the log.
    pub fn assert_exactly_once(&self) {
        assert_eq!(self.lost, 0, "{self:?}");
        assert_eq!(self.duplicated, 0, "{self:?}");
        assert_eq!(self.out_of_order, 0, "{self:?}");
        assert_eq!(self.misplaced, 0, "{self:?}");
        assert_eq!(self.failed_for_sure_but_written, 0, "{self:?}");
        assert_eq!(
            self.acknowledged + self.failed,
            self.sent as usize,
            "every record has an outcome: {self:?}"
        );
    }
}
