//! librdkafka's timeouts, against a broker that stops answering: `socket.timeout.ms` bounds
//! every request on the network, whatever `request.timeout.ms` (the broker's own wait for
//! replicas) says. With the CKafka guide's values (6000 and 305000), a hung broker is noticed
//! after about 6 s, not 305 s; here they are scaled down to 2 s and 305 s.

use std::time::{Duration, Instant};

use purekafka::{Acks, ClientConfig, Consumer, Error, Producer, ProducerRecord};

use crate::fake_broker::{Answer, FakeBroker, METADATA, PRODUCE, TOPIC};

const SOCKET_TIMEOUT: Duration = Duration::from_secs(2);

/// The guide's timeouts, scaled: a short socket timeout and a long request timeout.
fn config(broker: &FakeBroker) -> ClientConfig {
    ClientConfig::new()
        .bootstrap_servers([broker.addr.clone()])
        .set("socket.timeout.ms", SOCKET_TIMEOUT.as_millis())
        .and_then(|c| c.set("request.timeout.ms", 305_000))
        .and_then(|c| c.set("reconnect.backoff.ms", 50))
        .unwrap()
}

/// An answer an hour late: the broker has hung.
fn hung(_: &crate::fake_broker::Request, genuine: Vec<u8>) -> Answer {
    Answer::SendAfter(Duration::from_secs(3600), genuine)
}

/// How long after `start` the error came: at least the socket timeout, at most a second more.
fn assert_noticed_in_time(start: Instant, what: &str) {
    let took = start.elapsed();
    assert!(
        took >= SOCKET_TIMEOUT && took <= SOCKET_TIMEOUT + Duration::from_secs(1),
        "{what}: noticed after {took:?}, expected within socket.timeout.ms + 1 s"
    );
}

#[tokio::test]
async fn a_hung_metadata_request_fails_after_the_socket_timeout() {
    let broker = FakeBroker::start().await;
    let consumer = Consumer::builder(
        config(&broker)
            .set("topic.metadata.refresh.interval.ms", 1)
            .unwrap(),
    )
    .build()
    .await
    .unwrap();
    broker.always(METADATA, hung);
    tokio::time::sleep(Duration::from_millis(2)).await;
    let start = Instant::now();
    let err = consumer.partitions(TOPIC).await.unwrap_err();
    assert_noticed_in_time(start, "Metadata");
    let timed_out = |e: &Error| matches!(e, Error::Timeout { after_ms: 2000, .. });
    let cause = match &err {
        Error::NoBrokerReachable { last, .. } => last.as_ref(),
        other => other,
    };
    assert!(timed_out(cause), "{err:?}");
}

#[tokio::test]
async fn a_hung_produce_closes_its_connection_after_the_socket_timeout() {
    let broker = FakeBroker::start().await;
    let config = config(&broker)
        .acks(Acks::Leader)
        .set("linger.ms", 0)
        .unwrap();
    let producer = Producer::builder(config).build().await.unwrap();
    producer
        .send(ProducerRecord::new(TOPIC).partition(0).value("answered"))
        .await
        .unwrap();
    // The next Produce hangs; the client gives its connection up and sends the batch again on a
    // new one, which is answered.
    broker.next(PRODUCE, hung);
    let connections = broker.connections();
    let start = Instant::now();
    let delivery = producer
        .produce(ProducerRecord::new(TOPIC).partition(0).value("hung"))
        .await
        .unwrap();
    while broker.connections() == connections {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "never reconnected"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_noticed_in_time(start, "Produce");
    let delivered = tokio::time::timeout(Duration::from_secs(10), delivery)
        .await
        .expect("delivered once the broker answers")
        .unwrap();
    assert_eq!(delivered.partition, 0);
}
