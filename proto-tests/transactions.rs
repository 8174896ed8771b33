//! Transactions written by the Java client (proto-tests/java/TransactionalWriter.java), read at
//! the protocol level, below the consumer: raw Fetch requests at each isolation level, the
//! record batches decoded and filtered with `AbortedTransactions` as a `read_committed` consumer
//! would. The Java console consumer checks the writer's account of what it committed.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::fetch_response::PartitionData;
use kafka_protocol::messages::{BrokerId, FetchRequest, FetchResponse, TopicName};
use kafka_protocol::protocol::{Decodable, HeaderVersion, StrBytes};
use purekafka::protocol::frame;
use purekafka::protocol::records::{AbortedTransactions, BatchDecoder};
use purekafka::IsolationLevel;

use crate::common::{admin, plaintext_addr, unique_topic, write_transactions, Outcome, Written};

/// The Fetch version asked for: the last that names topics (12), or 11 from brokers before
/// Kafka 2.7, which stop there.
fn fetch_version() -> i16 {
    if crate::common::kafka_version() >= (2, 7) {
        12
    } else {
        11
    }
}

/// One Fetch of partition 0 of `topic` from `offset`, on a connection of its own to `broker`.
fn fetch(broker: &str, topic: &str, offset: i64, level: IsolationLevel) -> PartitionData {
    let version = fetch_version();
    let request = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(200)
        .with_min_bytes(1)
        .with_max_bytes(1 << 20)
        .with_isolation_level(level.as_i8())
        .with_session_id(0)
        .with_session_epoch(-1)
        .with_topics(vec![FetchTopic::default()
            .with_topic(TopicName(StrBytes::from_string(topic.to_owned())))
            .with_partitions(vec![FetchPartition::default()
                .with_partition(0)
                .with_current_leader_epoch(-1)
                .with_fetch_offset(offset)
                .with_log_start_offset(-1)
                .with_partition_max_bytes(1 << 20)])]);
    let body = frame::encode_body(&request, version).unwrap();
    let head = frame::encode_request_head(
        frame::RequestHead::of::<FetchRequest>(version),
        1,
        &StrBytes::from_static_str("purekafka-proto-tests"),
        body.len(),
    )
    .unwrap();
    let mut socket = TcpStream::connect(broker).unwrap_or_else(|e| panic!("{broker}: {e}"));
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    socket.write_all(&head).unwrap();
    socket.write_all(&body).unwrap();
    let mut size = [0u8; 4];
    socket.read_exact(&mut size).unwrap();
    let mut response = BytesMut::zeroed(i32::from_be_bytes(size) as usize);
    socket.read_exact(&mut response).unwrap();
    let mut response: Bytes = response.freeze();
    assert_eq!(frame::peek_correlation_id(&response), Some(1));
    frame::strip_response_header(&mut response, FetchResponse::header_version(version)).unwrap();
    let response = FetchResponse::decode(&mut response, version).unwrap();
    assert_eq!(response.error_code, 0, "Fetch of {topic} from {broker}");
    response
        .responses
        .into_iter()
        .next()
        .and_then(|t| t.partitions.into_iter().next())
        .expect("the partition asked for")
}

/// The records a consumer at `level` is handed, `(offset, key, value)`, fetching partition 0 of
/// `topic` from its start until past `last` (the offset of the last record written). Returns
/// them with the aborted transactions the broker listed along the way.
fn read(topic: &str, level: IsolationLevel, last: i64) -> (Vec<(i64, String, String)>, usize) {
    // The partition's leader: in a multi-broker layout, whichever answers without NOT_LEADER.
    let brokers: Vec<String> = plaintext_addr().split(',').map(str::to_owned).collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    let (mut offset, mut records, mut listed) = (0, Vec::new(), 0);
    let mut leader = 0;
    while offset <= last {
        assert!(
            Instant::now() < deadline,
            "{topic}: fetching at {level:?} stalled at offset {offset} (last written {last})"
        );
        let partition = fetch(&brokers[leader], topic, offset, level);
        match partition.error_code {
            0 => {}
            // NOT_LEADER_OR_FOLLOWER, or the leader not known yet.
            6 | 3 => {
                leader = (leader + 1) % brokers.len();
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
            code => panic!("{topic}: Fetch error {code}"),
        }
        let aborted = partition.aborted_transactions.as_deref().unwrap_or(&[]);
        // read_committed returns nothing at or past the last stable offset (the markers land
        // after the producer's EndTxn returns, so it may trail for a moment); read_uncommitted
        // lists no aborted transactions.
        let bound = match level {
            IsolationLevel::ReadCommitted => partition.last_stable_offset,
            IsolationLevel::ReadUncommitted => {
                assert!(partition.aborted_transactions.is_none());
                partition.high_watermark
            }
        };
        listed += aborted.len();
        let mut filter = AbortedTransactions::new(aborted);
        let batches = partition.records.unwrap_or_default();
        for batch in BatchDecoder::new(batches, true, 1 << 26) {
            let batch = batch.unwrap();
            assert!(batch.last_offset < bound, "{level:?}: batch past {bound}");
            if filter.delivers(&batch).unwrap() {
                records.extend(
                    batch
                        .records
                        .iter()
                        .filter(|r| r.offset >= offset)
                        .map(|r| {
                            let text =
                                |b: &Option<Bytes>| String::from_utf8(b.clone().unwrap().to_vec());
                            (r.offset, text(&r.key).unwrap(), text(&r.value).unwrap())
                        }),
                );
            }
            offset = batch.last_offset + 1;
        }
        if offset <= last {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    (records, listed)
}

fn triples<'a>(written: impl Iterator<Item = &'a Written>) -> Vec<(i64, String, String)> {
    written
        .map(|w| (w.offset, w.key.clone(), w.value.clone()))
        .collect()
}

/// What the writer says it wrote: its fixed mix, every record in its own offset.
fn check_account(written: &[Written]) {
    let keys = |outcome| -> Vec<&str> {
        written
            .iter()
            .filter(|w| w.outcome == outcome)
            .map(|w| w.key.as_str())
            .collect()
    };
    assert_eq!(
        keys(Outcome::Committed),
        ["c0", "c1", "c2", "c3", "c4", "c5", "c6", "c7", "c8", "c9", "c10", "c11"]
    );
    assert_eq!(
        keys(Outcome::Aborted),
        ["a0", "a1", "a2", "a3", "a4", "a5", "a6"]
    );
    assert_eq!(keys(Outcome::Plain), ["n0", "n1", "n2", "n3"]);
    for w in written {
        assert_eq!(w.value, format!("value-{}", w.key));
    }
}

/// The writer's records fetched raw: read_committed through `AbortedTransactions` gives exactly
/// the committed and plain records, read_uncommitted every record, markers never.
#[tokio::test]
async fn aborted_transactions_filter_a_read_committed_fetch() {
    let topic = unique_topic("txn-fetch");
    admin().await.create_topic(&topic, 1, 1).await.unwrap();
    let written = write_transactions(&topic);
    check_account(&written);
    let last = written.last().unwrap().offset;

    let (committed, listed) = read(&topic, IsolationLevel::ReadCommitted, last);
    assert_eq!(
        committed,
        triples(written.iter().filter(|w| w.outcome != Outcome::Aborted))
    );
    // The two aborted transactions of producer P1.
    assert!(
        listed >= 2,
        "the broker listed {listed} aborted transactions"
    );

    let (all, _) = read(&topic, IsolationLevel::ReadUncommitted, last);
    assert_eq!(all, triples(written.iter()));
    admin().await.delete_topic(&topic).await.unwrap();
}

/// The Java client's own read_committed consumer agrees with the writer's account.
#[tokio::test]
async fn the_java_consumer_reads_what_the_writer_committed() {
    let topic = unique_topic("txn-java");
    admin().await.create_topic(&topic, 1, 1).await.unwrap();
    let written = write_transactions(&topic);
    check_account(&written);
    let expected: Vec<String> = written
        .iter()
        .filter(|w| w.outcome != Outcome::Aborted)
        .map(|w| format!("{}\t{}", w.key, w.value))
        .collect();
    let out = crate::common::java_tool(
        "org.apache.kafka.tools.consumer.ConsoleConsumer",
        "kafka.tools.ConsoleConsumer",
    )
    .args(["--bootstrap-server", &plaintext_addr()])
    .args(["--topic", &topic, "--from-beginning"])
    .args(["--isolation-level", "read_committed"])
    .args(["--max-messages", &expected.len().to_string()])
    .args(["--timeout-ms", "30000"])
    // --property, not its newer name --formatter-property, which Kafka 2.8 does not know.
    .args(["--property", "print.key=true"])
    .output()
    .expect("java runs the Java client's console consumer");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let got: Vec<&str> = stdout.lines().filter(|l| l.contains("\tvalue-")).collect();
    assert_eq!(
        got,
        expected,
        "console consumer ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    admin().await.delete_topic(&topic).await.unwrap();
}

/// Everything a consumer at `level` is handed from partition 0 of `topic`, reading until
/// nothing more comes for a second.
async fn consume_all(topic: &str, level: &str) -> Vec<(i64, String, String)> {
    let config = crate::common::plaintext()
        .set("isolation.level", level)
        .unwrap();
    let mut consumer = purekafka::Consumer::builder(config).build().await.unwrap();
    consumer
        .assign([(topic, 0)], purekafka::Offset::Earliest)
        .await
        .unwrap();
    let text = |b: Option<Bytes>| String::from_utf8(b.unwrap().to_vec()).unwrap();
    let mut out = Vec::new();
    while let Ok(msg) = tokio::time::timeout(Duration::from_secs(1), consumer.recv()).await {
        let msg = msg.unwrap();
        out.push((msg.offset, text(msg.key), text(msg.value)));
    }
    out
}

/// The consumer itself: at read_committed it hands out exactly the committed and plain
/// records; at read_uncommitted every record; transaction markers never.
#[tokio::test]
async fn a_read_committed_consumer_skips_aborted_transactions() {
    let topic = unique_topic("txn-consumer");
    admin().await.create_topic(&topic, 1, 1).await.unwrap();
    let written = write_transactions(&topic);
    check_account(&written);
    assert_eq!(
        consume_all(&topic, "read_committed").await,
        triples(written.iter().filter(|w| w.outcome != Outcome::Aborted))
    );
    assert_eq!(
        consume_all(&topic, "read_uncommitted").await,
        triples(written.iter())
    );
    admin().await.delete_topic(&topic).await.unwrap();
}
