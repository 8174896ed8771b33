//! A share consumer against brokers without share groups: one that lacks the APIs (Kafka 4.0
//! and earlier) and one that has them turned off (Kafka 4.1 and later with the `share.version`
//! feature at 0, which answers every share request with UNSUPPORTED_VERSION). The real 2.8 and
//! 3.9 brokers of the matrix check the first case too (`proto-tests/share.rs`).

use std::time::Duration;

use purekafka::{ClientConfig, Error, ShareConsumer};

use crate::fake_broker::{respond, Answer, FakeBroker, SHARE_GROUP_HEARTBEAT, TOPIC};

/// UNSUPPORTED_VERSION, as a broker with share groups turned off answers.
const UNSUPPORTED_VERSION: i16 = 35;

async fn first_poll(broker: &FakeBroker) -> Error {
    let config = ClientConfig::new()
        .bootstrap_servers([broker.addr.clone()])
        .set("group.id", "workers")
        .unwrap();
    let mut consumer = ShareConsumer::builder(config).build().await.unwrap();
    consumer.subscribe(&[TOPIC]).unwrap();
    tokio::time::timeout(
        Duration::from_secs(5),
        consumer.poll(Duration::from_secs(4)),
    )
    .await
    .expect("an answer within 5 s")
    .unwrap_err()
}

#[tokio::test]
async fn a_broker_with_share_groups_turned_off_says_so() {
    let broker = FakeBroker::start().await;
    broker.always(SHARE_GROUP_HEARTBEAT, |request, _| {
        let off = kafka_protocol::messages::ShareGroupHeartbeatResponse::default()
            .with_error_code(UNSUPPORTED_VERSION);
        Answer::Send(respond(request, &off))
    });
    let err = first_poll(&broker).await;
    match &err {
        Error::ShareGroupsUnavailable { reason, .. } => {
            assert!(reason.contains("share.version"), "{err}")
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn a_broker_without_the_share_apis_says_so() {
    let broker = FakeBroker::start().await;
    let versions = crate::fake_broker::our_versions()
        .into_iter()
        .filter(|&(key, _, _)| key != SHARE_GROUP_HEARTBEAT)
        .collect();
    broker.offer_versions(versions);
    let err = first_poll(&broker).await;
    assert!(
        matches!(err, Error::ShareGroupsUnavailable { .. }),
        "unexpected {err:?}"
    );
    assert!(err.to_string().contains("Kafka 4.2"), "{err}");
}
