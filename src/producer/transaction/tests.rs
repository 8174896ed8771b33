//! The transactional producer against the in-memory cluster's transaction coordinator
//! ([`crate::testing`]), on paused time: partitions added before their first batch, calls
//! that time out and are taken up, calls dropped mid-way, the three error classes, and
//! transaction protocol v2 where the cluster has it.

use std::time::Duration;

use bytes::Bytes;

use crate::testing::MemCluster;
use crate::{ClientConfig, ConsumerGroupMetadata, Error, Producer, ProducerRecord};

const T: Duration = Duration::from_secs(30);

fn config(cluster: &MemCluster) -> ClientConfig {
    ClientConfig::new()
        .bootstrap_servers([cluster.addr(1)])
        .set("transactional.id", "txn-1")
        .unwrap()
        .set("linger.ms", 0)
        .unwrap()
        .set("retry.backoff.ms", 10)
        .unwrap()
}

async fn producer(cluster: &MemCluster) -> Producer {
    let producer = Producer::builder(config(cluster)).build().await.unwrap();
    producer.init_transactions(T).await.unwrap();
    producer
}

/// A cluster of one broker leading every partition of `t` (`partitions` of them), and a
/// transactional producer for it, initialised.
async fn transactional(partitions: usize) -> (MemCluster, Producer) {
    let cluster = MemCluster::new(1);
    cluster.topic("t", &vec![1; partitions]);
    let producer = producer(&cluster).await;
    (cluster, producer)
}

fn record(partition: i32, value: &'static str) -> ProducerRecord {
    ProducerRecord::new("t")
        .partition(partition)
        .value(Bytes::from_static(value.as_bytes()))
}

fn partitions(of: &[i32]) -> Vec<(String, i32)> {
    of.iter().map(|&p| ("t".to_owned(), p)).collect()
}

fn count(asked: &[&str], api: &str) -> usize {
    asked.iter().filter(|a| **a == api).count()
}

#[tokio::test(start_paused = true)]
async fn partitions_join_the_transaction_before_their_first_batch() {
    let (cluster, producer) = transactional(2).await;
    producer.begin_transaction().unwrap();
    producer.send(record(0, "a")).await.unwrap();
    producer.send(record(1, "b")).await.unwrap();
    producer.send(record(0, "c")).await.unwrap();
    producer.commit_transaction(T).await.unwrap();
    let asked = cluster.txn_asked();
    let first_produce = asked.iter().position(|a| *a == "Produce").unwrap();
    assert_eq!(asked[first_produce - 1], "AddPartitionsToTxn", "{asked:?}");
    assert_eq!(
        count(&asked, "AddPartitionsToTxn"),
        2,
        "once per partition: {asked:?}"
    );
    assert_eq!(cluster.txns_ended(), [(true, partitions(&[0, 1]))]);

    // The next transaction adds its partitions again; a coordinator still completing the
    // last one (CONCURRENT_TRANSACTIONS) is asked again.
    cluster.script_txn("AddPartitionsToTxn", &[51, 51]);
    producer.begin_transaction().unwrap();
    producer.send(record(1, "d")).await.unwrap();
    producer.commit_transaction(T).await.unwrap();
    assert_eq!(cluster.txns_ended()[1], (true, partitions(&[1])));
    assert_eq!(count(&cluster.txn_asked(), "AddPartitionsToTxn"), 5);
}

#[tokio::test(start_paused = true)]
async fn an_empty_transaction_ends_without_the_coordinator() {
    let (cluster, producer) = transactional(1).await;
    producer.begin_transaction().unwrap();
    producer.commit_transaction(T).await.unwrap();
    producer.begin_transaction().unwrap();
    producer.abort_transaction(T).await.unwrap();
    assert_eq!(count(&cluster.txn_asked(), "EndTxn"), 0);
}

#[tokio::test(start_paused = true)]
async fn a_commit_that_times_out_goes_on_and_the_next_call_takes_it_up() {
    let (cluster, producer) = transactional(1).await;
    producer.begin_transaction().unwrap();
    producer.send(record(0, "a")).await.unwrap();
    cluster.hold_end_txn(true);
    let e = producer
        .commit_transaction(Duration::from_secs(1))
        .await
        .unwrap_err();
    assert!(
        e.is_retriable() && !e.txn_requires_abort() && !e.is_fatal(),
        "{e}"
    );
    // Meanwhile nothing else goes: the commit is under way.
    let refused = producer.produce(record(0, "late")).await.unwrap_err();
    assert!(
        matches!(refused, Error::TransactionState { .. }),
        "{refused}"
    );
    assert!(producer.begin_transaction().is_err());
    cluster.hold_end_txn(false);
    producer.commit_transaction(T).await.unwrap();
    assert_eq!(
        count(&cluster.txn_asked(), "EndTxn"),
        1,
        "one EndTxn, taken up"
    );
    assert_eq!(cluster.txns_ended(), [(true, partitions(&[0]))]);
}

#[tokio::test(start_paused = true)]
async fn a_commit_dropped_mid_way_goes_on_and_is_not_taken_for_the_next() {
    let (cluster, producer) = transactional(1).await;
    producer.begin_transaction().unwrap();
    producer.send(record(0, "a")).await.unwrap();
    cluster.hold_end_txn(true);
    tokio::select! {
        _ = producer.commit_transaction(T) => panic!("EndTxn is held"),
        _ = tokio::time::sleep(Duration::from_millis(200)) => {}
    }
    cluster.hold_end_txn(false);
    tokio::time::sleep(Duration::from_secs(1)).await;
    // The dropped commit completed in the background: the next transaction begins, and its
    // commit is its own.
    producer.begin_transaction().unwrap();
    producer.send(record(0, "b")).await.unwrap();
    producer.commit_transaction(T).await.unwrap();
    assert_eq!(count(&cluster.txn_asked(), "EndTxn"), 2);
    assert_eq!(cluster.txns_ended().len(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_failed_record_makes_the_transaction_abortable() {
    let (cluster, producer) = transactional(1).await;
    producer.begin_transaction().unwrap();
    cluster.refuse("t", 0, 10, 1); // MESSAGE_TOO_LARGE: not retriable
    let failed = producer.send(record(0, "big")).await.unwrap_err();
    assert!(matches!(failed, Error::Broker { .. }), "{failed}");
    let next = producer.produce(record(0, "next")).await.unwrap_err();
    assert!(next.txn_requires_abort(), "{next}");
    let commit = producer.commit_transaction(T).await.unwrap_err();
    assert!(commit.txn_requires_abort(), "{commit}");
    assert_eq!(commit.kafka_code().map(|c| c.code()), Some(10), "{commit}");
    producer.abort_transaction(T).await.unwrap();
    assert_eq!(cluster.txns_ended(), [(false, partitions(&[0]))]);
    // And the producer goes on.
    producer.begin_transaction().unwrap();
    producer.send(record(0, "again")).await.unwrap();
    producer.commit_transaction(T).await.unwrap();
    assert_eq!(cluster.txns_ended()[1], (true, partitions(&[0])));
}

#[tokio::test(start_paused = true)]
async fn an_abortable_add_fails_the_commit_at_once() {
    let (cluster, producer) = transactional(1).await;
    producer.begin_transaction().unwrap();
    cluster.script_txn("AddPartitionsToTxn", &[29]); // TOPIC_AUTHORIZATION_FAILED
    let queued = producer.produce(record(0, "a")).await.unwrap();
    let commit = producer.commit_transaction(T).await.unwrap_err();
    assert!(commit.txn_requires_abort(), "{commit}");
    assert!(matches!(queued.await, Err(Error::Purged)));
    producer.abort_transaction(T).await.unwrap();
    assert_eq!(count(&cluster.txn_asked(), "Produce"), 0);
}

#[tokio::test(start_paused = true)]
async fn a_newer_producer_fences_the_older() {
    let (cluster, zombie) = transactional(1).await;
    zombie.begin_transaction().unwrap();
    zombie.send(record(0, "a")).await.unwrap();
    let _successor = producer(&cluster).await;
    // The zombie's next record is refused for its old epoch: the transaction is abortable
    // (KIP-588); its abort is refused by the coordinator: fatal.
    let refused = zombie.send(record(0, "b")).await.unwrap_err();
    assert!(matches!(refused, Error::Broker { .. }), "{refused}");
    let commit = zombie.commit_transaction(T).await.unwrap_err();
    assert!(commit.txn_requires_abort(), "{commit}");
    let abort = zombie.abort_transaction(T).await.unwrap_err();
    assert!(abort.is_fatal(), "{abort}");
    assert!(zombie.begin_transaction().unwrap_err().is_fatal());
    assert!(zombie.produce(record(0, "c")).await.unwrap_err().is_fatal());
}

#[tokio::test(start_paused = true)]
async fn a_fenced_record_is_fatal_and_what_is_queued_is_purged() {
    let (cluster, producer) = transactional(2).await;
    producer.begin_transaction().unwrap();
    producer.send(record(1, "a")).await.unwrap();
    cluster.refuse("t", 0, 90, 1); // PRODUCER_FENCED
    let fenced = producer.send(record(0, "b")).await.unwrap_err();
    assert!(matches!(fenced, Error::Broker { .. }), "{fenced}");
    let e = producer.commit_transaction(T).await.unwrap_err();
    assert!(e.is_fatal(), "{e}");
    assert!(producer.abort_transaction(T).await.unwrap_err().is_fatal());
    tokio::time::timeout(Duration::from_secs(5), producer.close())
        .await
        .expect("closes at once");
}

#[tokio::test(start_paused = true)]
async fn offsets_go_with_the_transaction_and_only_with_a_commit() {
    let (cluster, producer) = transactional(1).await;
    let group = ConsumerGroupMetadata::new("g");
    producer.begin_transaction().unwrap();
    producer.send(record(0, "a")).await.unwrap();
    producer
        .send_offsets_to_transaction(&[("in", 0, 42)], &group, T)
        .await
        .unwrap();
    producer.commit_transaction(T).await.unwrap();
    let expected = [(("in".to_owned(), 0), 42)].into_iter().collect();
    assert_eq!(cluster.txn_offsets("g"), expected);
    let asked = cluster.txn_asked();
    let add = asked.iter().position(|a| *a == "AddOffsetsToTxn").unwrap();
    let commit = asked.iter().position(|a| *a == "TxnOffsetCommit").unwrap();
    assert!(add < commit, "{asked:?}");

    producer.begin_transaction().unwrap();
    producer
        .send_offsets_to_transaction(&[("in", 0, 50)], &group, T)
        .await
        .unwrap();
    producer.abort_transaction(T).await.unwrap();
    assert_eq!(cluster.txn_offsets("g"), expected);
    assert!(!cluster.txns_ended().last().unwrap().0);
}

#[tokio::test(start_paused = true)]
async fn calls_on_a_producer_without_transactional_id_are_refused() {
    let cluster = MemCluster::new(1);
    cluster.topic("t", &[1]);
    let config = ClientConfig::new().bootstrap_servers([cluster.addr(1)]);
    let producer = Producer::builder(config).build().await.unwrap();
    for e in [
        producer.init_transactions(T).await.unwrap_err(),
        producer.begin_transaction().unwrap_err(),
        producer.commit_transaction(T).await.unwrap_err(),
        producer.abort_transaction(T).await.unwrap_err(),
    ] {
        assert!(matches!(e, Error::TransactionState { .. }), "{e}");
    }
    // And records go as ever.
    producer.send(record(0, "plain")).await.unwrap();
}

/// A cluster with `transaction.version` 2 (Kafka 4 by default), `t` of `partitions`, and a
/// transactional producer for it, initialised.
async fn transactional_v2(partitions: usize) -> (MemCluster, Producer) {
    let cluster = MemCluster::new(1);
    cluster.transaction_version(2);
    cluster.topic("t", &vec![1; partitions]);
    let producer = producer(&cluster).await;
    (cluster, producer)
}

/// Transaction protocol v2 (KIP-890): the leaders add partitions and the group's coordinator
/// adds offsets, so neither AddPartitionsToTxn nor AddOffsetsToTxn is asked; each EndTxn
/// gives the next epoch, and the next transaction's records go under it (the coordinator
/// refuses an older one).
#[tokio::test(start_paused = true)]
async fn under_protocol_v2_nothing_is_added_by_hand_and_each_end_brings_the_next_epoch() {
    let (cluster, producer) = transactional_v2(2).await;
    let group = ConsumerGroupMetadata::new("g");
    producer.begin_transaction().unwrap();
    producer.send(record(0, "a")).await.unwrap();
    producer.send(record(1, "b")).await.unwrap();
    producer
        .send_offsets_to_transaction(&[("in", 0, 42)], &group, T)
        .await
        .unwrap();
    producer.commit_transaction(T).await.unwrap();
    assert_eq!(cluster.txns_ended(), [(true, partitions(&[0, 1]))]);
    let expected = [(("in".to_owned(), 0), 42)].into_iter().collect();
    assert_eq!(cluster.txn_offsets("g"), expected);

    for round in 0..3 {
        producer.begin_transaction().unwrap();
        producer.send(record(round % 2, "next")).await.unwrap();
        match round {
            1 => producer.abort_transaction(T).await.unwrap(),
            _ => producer.commit_transaction(T).await.unwrap(),
        }
    }
    let ended: Vec<bool> = cluster.txns_ended().iter().map(|e| e.0).collect();
    assert_eq!(ended, [true, true, false, true]);
    let asked = cluster.txn_asked();
    assert_eq!(count(&asked, "AddPartitionsToTxn"), 0, "{asked:?}");
    assert_eq!(count(&asked, "AddOffsetsToTxn"), 0, "{asked:?}");
    assert_eq!(count(&asked, "InitProducerId"), 1, "{asked:?}");
}

/// Under v2 a leader answers CONCURRENT_TRANSACTIONS while the previous transaction
/// completes: the batch is sent again, not failed.
#[tokio::test(start_paused = true)]
async fn under_protocol_v2_a_batch_met_by_a_completing_transaction_is_sent_again() {
    let (cluster, producer) = transactional_v2(1).await;
    producer.begin_transaction().unwrap();
    cluster.refuse("t", 0, 51, 2); // CONCURRENT_TRANSACTIONS
    producer.send(record(0, "a")).await.unwrap();
    producer.commit_transaction(T).await.unwrap();
    assert_eq!(cluster.txns_ended(), [(true, partitions(&[0]))]);
}

/// Under v2 the abort after a record whose sequence is unknown takes its new epoch from
/// EndTxn; no InitProducerId is needed, and the producer goes on.
#[tokio::test(start_paused = true)]
async fn under_protocol_v2_the_abort_brings_the_new_epoch_itself() {
    let (cluster, producer) = transactional_v2(1).await;
    producer.begin_transaction().unwrap();
    producer.send(record(0, "a")).await.unwrap();
    cluster.refuse("t", 0, 59, 1); // UNKNOWN_PRODUCER_ID: the sequence is unknown
    let failed = producer.send(record(0, "b")).await.unwrap_err();
    assert!(matches!(failed, Error::Broker { .. }), "{failed}");
    let commit = producer.commit_transaction(T).await.unwrap_err();
    assert!(commit.txn_requires_abort(), "{commit}");
    producer.abort_transaction(T).await.unwrap();
    producer.begin_transaction().unwrap();
    producer.send(record(0, "c")).await.unwrap();
    producer.commit_transaction(T).await.unwrap();
    assert_eq!(count(&cluster.txn_asked(), "InitProducerId"), 1);
    let ended: Vec<bool> = cluster.txns_ended().iter().map(|e| e.0).collect();
    assert_eq!(ended, [false, true]);
}

/// A transaction begun right after the last one ended waits for the coordinator to have
/// completed that one before its first batch goes (a batch meeting it still completing would
/// wait 20 ms at its leader); one begun later does not ask.
#[tokio::test(start_paused = true)]
async fn the_next_transaction_waits_for_the_last_one_to_complete() {
    let (cluster, producer) = transactional_v2(1).await;
    producer.begin_transaction().unwrap();
    producer.send(record(0, "a")).await.unwrap();
    producer.commit_transaction(T).await.unwrap();

    cluster.txn_completing(3);
    producer.begin_transaction().unwrap();
    producer.send(record(0, "b")).await.unwrap();
    producer.commit_transaction(T).await.unwrap();
    let asked = cluster.txn_asked();
    let after_end = &asked[asked.iter().position(|a| *a == "EndTxn").unwrap() + 1..];
    assert_eq!(
        after_end[..5],
        [
            "DescribeTransactions",
            "DescribeTransactions",
            "DescribeTransactions",
            "DescribeTransactions",
            "Produce"
        ],
        "{asked:?}"
    );

    tokio::time::sleep(Duration::from_millis(100)).await;
    producer.begin_transaction().unwrap();
    producer.send(record(0, "c")).await.unwrap();
    producer.commit_transaction(T).await.unwrap();
    assert_eq!(count(&cluster.txn_asked(), "DescribeTransactions"), 4);
}
