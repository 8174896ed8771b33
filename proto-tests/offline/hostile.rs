//! A hostile broker (issue 5, section 2): a fake broker that answers the handshake and metadata
//! like a real one, then sends frames claiming 2 GiB, truncated frames, a wrong correlation id,
//! batches with a bad CRC or a record count beyond their bytes, negative lengths, and an
//! ApiVersions answer with nothing in common.
//!
//! For each, the client gets a typed [`Error`] naming what was wrong, within a bounded wait, with
//! no panic in any of its tasks and no allocation beyond the bytes received or
//! `receive.message.max.bytes`; it closes the connection, and a later request opens a new one,
//! no sooner than `reconnect.backoff.ms` allows.
//!
//! These tests need no real Kafka: `cargo test --test offline hostile`.

use std::cell::Cell;
use std::future::Future;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Once};
use std::time::{Duration, Instant};

use bytes::Bytes;
use purekafka::protocol::records::{restamp, ProducerFields};
use purekafka::{Admin, ClientConfig, Consumer, Error, Offset, Producer, ProducerRecord};

use crate::fake_broker::{log_batch, Answer, FakeBroker, FETCH, METADATA, PRODUCE, TOPIC};

/// The longest any client call may take here: a hang fails the test instead of stalling it.
const BOUND: Duration = Duration::from_secs(10);

/// Counts the allocations of the test binary. `GlobalAlloc` can only be implemented with
/// `unsafe`: this is the one exception in purekafka's tests, and it is what lets a test measure
/// that a hostile length never sizes an allocation, rather than argue it.
mod allocations {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;

    /// The system allocator, noting the largest single allocation made on each thread.
    struct Noting;

    thread_local! {
        static LARGEST: Cell<usize> = const { Cell::new(0) };
    }

    fn note(size: usize) {
        // `try_with`: the thread-local may already be gone while a thread ends.
        let _ = LARGEST.try_with(|largest| largest.set(largest.get().max(size)));
    }

    // SAFETY: every call goes to the system allocator unchanged; noting a size only touches a
    // const-initialised thread-local of plain data, which neither allocates nor has a destructor.
    unsafe impl GlobalAlloc for Noting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            note(layout.size());
            System.alloc(layout)
        }

        unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
            note(layout.size());
            System.alloc_zeroed(layout)
        }

        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            note(new_size);
            System.realloc(ptr, layout, new_size)
        }

        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            System.dealloc(ptr, layout)
        }
    }

    #[global_allocator]
    static NOTING: Noting = Noting;

    /// Runs `f` and returns its output with the largest single allocation made meanwhile on this
    /// thread. `#[tokio::test]` runs a current-thread runtime, so the client's connection tasks
    /// and the fake broker run on the test's thread too.
    pub async fn largest_during<T>(f: impl std::future::Future<Output = T>) -> (T, usize) {
        LARGEST.with(|largest| largest.set(0));
        let out = f.await;
        (out, LARGEST.with(Cell::get))
    }
}

thread_local! {
    /// Panics on this thread: in the test itself or in any task of its runtime.
    static PANICS: Cell<usize> = const { Cell::new(0) };
}

/// Watches for panics on the test's thread, where every task of the client runs: tokio catches a
/// panic in a spawned task, so without this a panicking connection task would pass unseen.
struct PanicWatch(usize);

impl PanicWatch {
    fn start() -> PanicWatch {
        static HOOK: Once = Once::new();
        HOOK.call_once(|| {
            let previous = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| {
                let _ = PANICS.try_with(|n| n.set(n.get() + 1));
                previous(info);
            }));
        });
        PanicWatch(PANICS.with(Cell::get))
    }

    fn assert_none(self) {
        assert_eq!(PANICS.with(Cell::get), self.0, "a task panicked");
    }
}

/// Awaits `f`, failing the test if it takes longer than [`BOUND`].
async fn within<T>(f: impl Future<Output = T>) -> T {
    tokio::time::timeout(BOUND, f)
        .await
        .expect("the client hung on a hostile broker")
}

/// A client config for `broker`: short backoffs and timeouts, and metadata that is always asked
/// again, so that every `partitions` call is a Metadata request.
fn config(broker: &FakeBroker) -> ClientConfig {
    ClientConfig::new()
        .bootstrap_servers([broker.addr.clone()])
        .set("reconnect.backoff.ms", 50)
        .and_then(|c| c.set("reconnect.backoff.max.ms", 1000))
        .and_then(|c| c.set("socket.timeout.ms", 5000))
        .and_then(|c| c.set("request.timeout.ms", 5000))
        .and_then(|c| c.set("topic.metadata.refresh.interval.ms", 1))
        .unwrap()
}

async fn consumer_of(config: ClientConfig) -> Consumer {
    within(Consumer::builder(config).build())
        .await
        .expect("the consumer bootstraps from the fake broker")
}

/// A Metadata request for [`TOPIC`]: what the client knows is older than
/// `topic.metadata.refresh.interval.ms` (1 ms) by then, so it asks.
async fn partitions(consumer: &Consumer) -> Result<Vec<i32>, Error> {
    tokio::time::sleep(Duration::from_millis(2)).await;
    within(consumer.partitions(TOPIC)).await
}

/// The cause of a request's failure on a connection that was closed under it: the request had
/// been written, so its outcome is unknown.
/// The failure behind `err`: a metadata lookup tries every broker the client knows (here the
/// bootstrap entry and broker 1, both the fake broker) and reports the last failure.
fn last_failure(err: &Error) -> &Error {
    match err {
        Error::NoBrokerReachable { last, .. } => last_failure(last),
        other => other,
    }
}

fn disconnected(err: &Error) -> &Error {
    match last_failure(err) {
        Error::Disconnected {
            cause,
            outcome_unknown: true,
            ..
        } => cause,
        other => panic!("expected a disconnection with unknown outcome, got {other:?}"),
    }
}

/// Asserts that `err` is a protocol error whose message contains `what`.
fn assert_protocol(err: &Error, what: &str) {
    match err {
        Error::Protocol { message, .. } => assert!(message.contains(what), "{message}"),
        other => panic!("expected a protocol error about {what:?}, got {other:?}"),
    }
}

/// After a hostile answer: the client closed that connection, and the next request, answered
/// genuinely, goes out on a new one.
async fn recovers(broker: &FakeBroker, consumer: &Consumer, closed_before: usize) {
    broker.until_closed_by_client(closed_before + 1).await;
    broker.genuine(METADATA);
    let connections = broker.connections();
    assert_eq!(partitions(consumer).await.unwrap(), [0]);
    assert_eq!(
        broker.connections(),
        connections + 1,
        "the request after the failure opened a new connection"
    );
}

/// `frame` with its first four bytes (the size) replaced.
fn with_size(frame: &[u8], size: u32) -> Vec<u8> {
    let mut out = size.to_be_bytes().to_vec();
    out.extend_from_slice(&frame[4..]);
    out
}

#[tokio::test]
async fn a_frame_claiming_2_gib_is_refused_before_any_allocation() {
    let watch = PanicWatch::start();
    let broker = FakeBroker::start().await;
    // The default ceiling, receive.message.max.bytes = 100 MB.
    let consumer = consumer_of(config(&broker)).await;
    for (claim, what) in [
        (
            i32::MAX as u32,
            "frame of 2147483647 bytes exceeds receive.message.max.bytes (100000000)",
        ),
        // 2 GiB exactly does not fit an i32: as the protocol's signed size, it is negative.
        (1 << 31, "frame size -2147483648 is negative"),
    ] {
        let closed = broker.closed_by_client();
        broker.always(METADATA, move |_, genuine| {
            Answer::Send(with_size(&genuine, claim))
        });
        let (result, largest) = allocations::largest_during(partitions(&consumer)).await;
        let err = result.unwrap_err();
        assert_protocol(disconnected(&err), what);
        assert!(err.to_string().contains(what), "{err}");
        // The connection's own buffers (64 KiB each) are the largest things it allocates.
        assert!(largest <= 1 << 20, "allocated {largest} bytes");
        recovers(&broker, &consumer, closed).await;
    }

    // A ceiling set lower holds just the same.
    let consumer = consumer_of(
        config(&broker)
            .set("receive.message.max.bytes", 1000)
            .unwrap(),
    )
    .await;
    let closed = broker.closed_by_client();
    broker.always(METADATA, |_, genuine| {
        Answer::Send(with_size(&genuine, 1001))
    });
    let err = partitions(&consumer).await.unwrap_err();
    assert_protocol(
        disconnected(&err),
        "frame of 1001 bytes exceeds receive.message.max.bytes (1000)",
    );
    recovers(&broker, &consumer, closed).await;
    watch.assert_none();
}

#[tokio::test]
async fn truncated_frames_fail_the_request_and_the_connection() {
    let watch = PanicWatch::start();
    let broker = FakeBroker::start().await;
    let consumer = consumer_of(config(&broker)).await;

    // The size says N; fewer bytes come, then the broker closes.
    let closed = broker.closed_by_client();
    broker.always(METADATA, |_, genuine| {
        Answer::SendAndClose(genuine[..genuine.len() / 2].to_vec())
    });
    let err = partitions(&consumer).await.unwrap_err();
    let Error::Io {
        message,
        outcome_unknown: true,
        ..
    } = last_failure(&err)
    else {
        panic!("expected an I/O error with unknown outcome, got {err:?}")
    };
    assert!(
        message.contains("in the middle of a response frame"),
        "{message}"
    );
    // The broker closed this one: nothing for the client to close. The next request reconnects.
    broker.genuine(METADATA);
    let connections = broker.connections();
    assert_eq!(partitions(&consumer).await.unwrap(), [0]);
    assert_eq!(broker.connections(), connections + 1);
    assert_eq!(broker.closed_by_client(), closed);

    // The broker closes within the size prefix itself.
    broker.always(METADATA, |_, genuine| {
        Answer::SendAndClose(genuine[..2].to_vec())
    });
    let err = partitions(&consumer).await.unwrap_err();
    assert!(
        matches!(last_failure(&err), Error::Io { message, .. } if message.contains("in the middle of a frame size")),
        "{err:?}"
    );
    broker.genuine(METADATA);
    let connections = broker.connections();
    assert_eq!(partitions(&consumer).await.unwrap(), [0]);
    assert_eq!(broker.connections(), connections + 1);

    // A whole frame too short to hold the correlation id, and the broker keeps the socket open:
    // the client must close it.
    let closed = broker.closed_by_client();
    broker.always(METADATA, |request, _| {
        let mut frame = 2u32.to_be_bytes().to_vec();
        frame.extend_from_slice(&request.correlation_id.to_be_bytes()[..2]);
        Answer::Send(frame)
    });
    let err = partitions(&consumer).await.unwrap_err();
    assert_protocol(
        disconnected(&err),
        "response frame of 2 bytes is too short for a correlation id",
    );
    recovers(&broker, &consumer, closed).await;

    // A frame cut inside the response header: from v9, Metadata has a flexible header, whose
    // tagged fields follow the correlation id.
    let closed = broker.closed_by_client();
    broker.always(METADATA, |request, _| {
        assert!(request.api_version >= 9, "a flexible Metadata version");
        let mut frame = 4u32.to_be_bytes().to_vec();
        frame.extend_from_slice(&request.correlation_id.to_be_bytes());
        Answer::Send(frame)
    });
    let err = partitions(&consumer).await.unwrap_err();
    assert_protocol(disconnected(&err), "malformed response header");
    recovers(&broker, &consumer, closed).await;

    // A size within the ceiling, then a few bytes and the end: the reader reserves room for the
    // frame it was promised, as the Java client does, so the ceiling bounds it (with the size
    // prefix and the bytes already buffered: well within one 64 KiB read buffer).
    let ceiling = 1_000_000;
    let consumer = consumer_of(
        config(&broker)
            .set("receive.message.max.bytes", ceiling)
            .unwrap(),
    )
    .await;
    broker.always(METADATA, move |_, genuine| {
        Answer::SendAndClose(with_size(&genuine, ceiling as u32 - 1))
    });
    let (result, largest) = allocations::largest_during(partitions(&consumer)).await;
    assert!(
        matches!(result.as_ref().map_err(last_failure), Err(Error::Io { .. })),
        "{result:?}"
    );
    assert!(largest <= ceiling + (64 << 10), "allocated {largest} bytes");
    watch.assert_none();
}

#[tokio::test]
async fn a_wrong_correlation_id_closes_the_connection() {
    let watch = PanicWatch::start();
    let broker = FakeBroker::start().await;
    let consumer = consumer_of(config(&broker)).await;
    let closed = broker.closed_by_client();
    let expected = Arc::new(AtomicI32::new(0));
    let seen = expected.clone();
    broker.always(METADATA, move |request, mut genuine| {
        seen.store(request.correlation_id, Ordering::SeqCst);
        genuine[4..8].copy_from_slice(&(request.correlation_id + 1000).to_be_bytes());
        Answer::Send(genuine)
    });
    let err = partitions(&consumer).await.unwrap_err();
    let expected = expected.load(Ordering::SeqCst);
    assert_protocol(
        disconnected(&err),
        &format!(
            "correlation id mismatch: expected {expected}, got {}",
            expected + 1000
        ),
    );
    recovers(&broker, &consumer, closed).await;
    watch.assert_none();
}

/// A consumer of partition 0 of [`TOPIC`] from offset 0, with `check.crcs` as given.
async fn reader(broker: &FakeBroker, check_crcs: bool) -> Consumer {
    let mut consumer = consumer_of(config(broker).set("check.crcs", check_crcs).unwrap()).await;
    consumer.assign([(TOPIC, 0)], Offset::At(0)).await.unwrap();
    consumer
}

/// Where the log's batch starts in a Fetch answer.
fn batch_at(frame: &[u8]) -> usize {
    let batch = log_batch();
    frame
        .windows(batch.len())
        .position(|w| w == &batch[..])
        .expect("the Fetch answer carries the log's batch")
}

/// Replaces the log's batch in a Fetch answer with `batch`, of the same length.
fn replace_batch(mut frame: Vec<u8>, batch: &[u8]) -> Vec<u8> {
    let at = batch_at(&frame);
    frame[at..at + batch.len()].copy_from_slice(batch);
    frame
}

/// The log's batch with `edit` applied and its CRC made right again: the batch is consistent
/// as far as the CRC can tell, and wrong inside.
fn edited_batch(edit: impl Fn(&mut Vec<u8>)) -> Bytes {
    let mut batch = log_batch().to_vec();
    edit(&mut batch);
    restamp(&batch, ProducerFields::NONE)
}

/// After a corrupt batch: the client closed the connection it came on, and the next fetch, on a
/// new connection, reads the record.
async fn reads_again(broker: &FakeBroker, consumer: &mut Consumer, closed_before: usize) {
    broker.until_closed_by_client(closed_before + 1).await;
    let connections = broker.connections();
    let msg = within(consumer.recv()).await.unwrap();
    assert_eq!((msg.offset, msg.key.as_deref()), (0, Some(&b"k"[..])));
    assert_eq!(msg.value.as_deref(), Some(&b"v"[..]));
    assert!(broker.connections() > connections, "a new connection");
}

fn assert_corrupt(err: &Error, what: &str) {
    match err {
        Error::CorruptBatch {
            topic,
            partition: 0,
            reason,
        } if topic == TOPIC => assert!(reason.contains(what), "{reason}"),
        other => panic!("expected a corrupt batch in {TOPIC}[0] ({what}), got {other:?}"),
    }
}

#[tokio::test]
async fn a_batch_with_a_bad_crc_is_refused() {
    let watch = PanicWatch::start();
    let broker = FakeBroker::start().await;
    // Flip the record's value, the batch's second-to-last byte; the CRC stays as it was.
    let flip = |_: &crate::fake_broker::Request, mut genuine: Vec<u8>| {
        let at = batch_at(&genuine) + log_batch().len() - 2;
        genuine[at] ^= 0x20;
        Answer::Send(genuine)
    };

    let mut consumer = reader(&broker, true).await;
    let closed = broker.closed_by_client();
    broker.next(FETCH, flip);
    let err = within(consumer.recv()).await.unwrap_err();
    assert_corrupt(&err, "CRC mismatch in batch at offset 0");
    reads_again(&broker, &mut consumer, closed).await;

    // Without check.crcs the same bytes go through: the CRC is what caught them. (Another
    // broker: the first consumer keeps fetching in the background.)
    let broker = FakeBroker::start().await;
    let mut unchecked = reader(&broker, false).await;
    broker.next(FETCH, flip);
    let msg = within(unchecked.recv()).await.unwrap();
    assert_eq!(msg.value.as_deref(), Some(&b"V"[..]));
    watch.assert_none();
}

#[tokio::test]
async fn a_record_count_beyond_the_bytes_is_refused_without_allocating_for_it() {
    let watch = PanicWatch::start();
    let broker = FakeBroker::start().await;
    let mut consumer = reader(&broker, true).await;
    let closed = broker.closed_by_client();
    // The record count (bytes 57..61 of the header) claims 2^31 - 1 records; one is there.
    let hostile = edited_batch(|b| b[57..61].copy_from_slice(&i32::MAX.to_be_bytes()));
    broker.next(FETCH, move |_, genuine| {
        Answer::Send(replace_batch(genuine, &hostile))
    });
    let (result, largest) = allocations::largest_during(within(consumer.recv())).await;
    assert_corrupt(
        &result.unwrap_err(),
        "record count beyond the records present",
    );
    assert!(largest <= 1 << 20, "allocated {largest} bytes");
    reads_again(&broker, &mut consumer, closed).await;
    watch.assert_none();
}

/// A lone batch whose length claims more bytes than the answer holds: since the broker always
/// sends the first partition a whole batch, fetching again would get the same bytes forever.
/// The consumer says so instead of spinning.
#[tokio::test]
async fn a_lone_batch_longer_than_the_answer_is_refused() {
    let watch = PanicWatch::start();
    let broker = FakeBroker::start().await;
    let mut consumer = reader(&broker, true).await;
    let closed = broker.closed_by_client();
    let mut hostile = log_batch().to_vec();
    let claimed = i32::from_be_bytes(hostile[8..12].try_into().unwrap()) + 1000;
    hostile[8..12].copy_from_slice(&claimed.to_be_bytes());
    broker.next(FETCH, move |_, genuine| {
        Answer::Send(replace_batch(genuine, &hostile))
    });
    let result = within(consumer.recv()).await;
    assert_corrupt(&result.unwrap_err(), "hold no whole batch");
    reads_again(&broker, &mut consumer, closed).await;
    watch.assert_none();
}

#[tokio::test]
async fn negative_lengths_are_refused() {
    let watch = PanicWatch::start();
    let broker = FakeBroker::start().await;
    // Metadata and Produce before their flexible versions: lengths are plain signed integers.
    let mut versions = crate::fake_broker::our_versions();
    for (key, _, max) in &mut versions {
        if *key == METADATA || *key == PRODUCE {
            *max = 8;
        }
    }
    broker.offer_versions(versions);

    // An array: Metadata v8 = size, correlation id, throttle time, then the brokers' count.
    let consumer = consumer_of(config(&broker)).await;
    let closed = broker.closed_by_client();
    broker.always(METADATA, |_, mut genuine| {
        genuine[12..16].copy_from_slice(&(-2i32).to_be_bytes());
        Answer::Send(genuine)
    });
    let err = partitions(&consumer).await.unwrap_err();
    assert_protocol(
        disconnected(&err),
        "cannot decode Metadata v8 response: Array length is negative (-2)",
    );
    recovers(&broker, &consumer, closed).await;

    // A string: Produce v8 = size, correlation id, the topics' count, then the topic name's
    // length. The record may have been written: the producer must say its outcome is unknown.
    let producer = within(
        Producer::builder(
            config(&broker)
                .set("acks", 1)
                .and_then(|c| c.set("retries", 0))
                .unwrap(),
        )
        .build(),
    )
    .await
    .unwrap();
    let closed = broker.closed_by_client();
    broker.next(PRODUCE, |_, mut genuine| {
        genuine[12..14].copy_from_slice(&(-5i16).to_be_bytes());
        Answer::Send(genuine)
    });
    let record = || ProducerRecord::new(TOPIC).partition(0).value("v");
    let err = within(producer.send(record())).await.unwrap_err();
    assert!(err.is_outcome_unknown(), "{err:?}");
    assert_protocol(
        disconnected(&err),
        "cannot decode Produce v8 response: String length is negative (-5)",
    );
    broker.until_closed_by_client(closed + 1).await;
    let connections = broker.connections();
    within(producer.send(record())).await.unwrap();
    assert_eq!(broker.connections(), connections + 1);
    broker.behave();

    // A record's key and value lengths: -1 means null, anything below is malformed. The log's
    // record is `len, attributes, timestamp delta, offset delta, key len, "k", value len, "v",
    // header count`: the key length is the batch's 5th byte from the end, the value's the 3rd.
    let mut consumer = reader(&broker, true).await;
    let mut closed = broker.closed_by_client();
    for (from_end, what) in [(5, "negative key length"), (3, "negative value length")] {
        let hostile = edited_batch(|b| {
            let at = b.len() - from_end;
            assert_eq!(b[at], 2, "a length of 1, as a varint");
            b[at] = 9; // -5, as a zig-zag varint
        });
        broker.next(FETCH, move |_, genuine| {
            Answer::Send(replace_batch(genuine, &hostile))
        });
        let err = within(consumer.recv()).await.unwrap_err();
        assert_corrupt(&err, what);
        broker.until_closed_by_client(closed + 1).await;
        closed += 1;
    }
    reads_again(&broker, &mut consumer, closed - 1).await;
    watch.assert_none();
}

/// Every API purekafka uses, at versions it does not speak.
fn versions_beyond_ours() -> Vec<(i16, i16, i16)> {
    crate::fake_broker::our_versions()
        .into_iter()
        .map(|(key, _, _)| (key, 100, 120))
        .collect()
}

/// Asserts that `err` says the broker shares no version of Metadata with purekafka.
fn assert_nothing_in_common(err: &Error) {
    let unsupported = match err {
        Error::NoBrokerReachable { last, .. } => &**last,
        other => other,
    };
    assert!(
        matches!(
            unsupported,
            Error::UnsupportedApi {
                api: "Metadata",
                ..
            }
        ),
        "expected no shared Metadata version, got {err:?}"
    );
    assert!(
        err.to_string()
            .contains("does not support Metadata in any version purekafka speaks"),
        "{err}"
    );
}

#[tokio::test]
async fn an_api_versions_answer_with_nothing_in_common_is_refused() {
    let watch = PanicWatch::start();
    let broker = FakeBroker::start().await;
    for offered in [versions_beyond_ours(), Vec::new()] {
        let closed = broker.closed_by_client();
        broker.offer_versions(offered);
        // The client is built (brokers may be upgraded while it runs); what it asks fails.
        let admin = within(Admin::builder(config(&broker)).build())
            .await
            .expect("an admin client, built before any broker answered");
        let err = within(admin.describe_cluster())
            .await
            .expect_err("no answer without a shared Metadata version");
        assert_nothing_in_common(&err);
        broker.until_closed_by_client(closed + 1).await;
    }

    // A broker that comes back from a restart speaking nothing in common: the client drops that
    // connection rather than keeping it, and reconnects once the broker speaks its versions.
    broker.behave();
    let consumer = consumer_of(config(&broker)).await;
    assert_eq!(partitions(&consumer).await.unwrap(), [0]);
    broker.offer_versions(Vec::new());
    broker.cut();
    // Let the client see the connection go.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let closed = broker.closed_by_client();
    let err = partitions(&consumer).await.unwrap_err();
    assert_nothing_in_common(&err);
    broker.until_closed_by_client(closed + 1).await;
    broker.behave();
    let connections = broker.connections();
    assert_eq!(partitions(&consumer).await.unwrap(), [0]);
    assert!(broker.connections() > connections, "a new connection");
    watch.assert_none();
}

#[tokio::test]
async fn reconnects_honour_reconnect_backoff() {
    let watch = PanicWatch::start();
    let broker = FakeBroker::start().await;
    let backoff = Duration::from_millis(100);
    let consumer = consumer_of(
        config(&broker)
            .set("reconnect.backoff.ms", backoff.as_millis())
            .unwrap(),
    )
    .await;
    // Every Metadata answer from now on has a wrong correlation id: each request poisons its
    // connection, and the application asks again at once, for a whole window.
    broker.always(METADATA, |request, mut genuine| {
        genuine[4..8].copy_from_slice(&(request.correlation_id ^ 0x5555).to_be_bytes());
        Answer::Send(genuine)
    });
    let window = Duration::from_millis(1500);
    let before = broker.connections();
    let start = Instant::now();
    let mut failures = 0;
    while start.elapsed() < window {
        assert!(partitions(&consumer).await.is_err());
        failures += 1;
    }
    let accepted = broker.accepted_at()[before..].to_vec();
    // Each reconnect waited at least reconnect.backoff.ms less its 20% jitter.
    let shortest = backoff.mul_f64(0.8) - Duration::from_millis(5);
    for pair in accepted.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(gap >= shortest, "reconnected after {gap:?}");
    }
    let most = (window.as_secs_f64() / shortest.as_secs_f64()).ceil() as usize + 1;
    assert!(
        (3..=most).contains(&accepted.len()),
        "{} connections in {window:?} ({failures} failed requests)",
        accepted.len()
    );
    watch.assert_none();
}
