//! KIP-848 consumer groups (`group.protocol=consumer`): the coordinator assigns. Kafka 4.0 and
//! later have them; against an older broker the same tests check the error names the setting.

use std::time::Duration;

use purekafka::{ClientConfig, ConfigError, Consumer, Error};

use crate::common::{broker_has_kip848, new_topic, unique_topic};
use crate::consumer_group::{member, resume_from_committed_offsets, split_and_rejoin_with};

fn kip848_member(group: &str) -> ClientConfig {
    member(group).set("group.protocol", "consumer").unwrap()
}

/// A KIP-848 member of a new group, subscribed to a new topic of one partition (named too).
async fn new_member() -> (Consumer, String) {
    let topic = new_topic("kip848", 1).await;
    let mut consumer = Consumer::builder(kip848_member(&unique_topic("g")))
        .build()
        .await
        .unwrap();
    consumer.subscribe(&[&topic]).unwrap();
    (consumer, topic)
}

#[tokio::test]
async fn kip848_members_split_partitions_without_overlap_or_gap() {
    if !broker_has_kip848().await {
        return older_brokers_name_the_setting().await;
    }
    split_and_rejoin_with(kip848_member(&unique_topic("g"))).await;
}

#[tokio::test]
async fn a_kip848_member_resumes_from_committed_offsets() {
    if !broker_has_kip848().await {
        return older_brokers_name_the_setting().await;
    }
    resume_from_committed_offsets(kip848_member).await;
}

/// Where the broker does not serve KIP-848 groups, `group.protocol=consumer` fails at the first
/// `recv` with an error naming the setting.
pub(crate) async fn older_brokers_name_the_setting() {
    let (mut consumer, _) = new_member().await;
    let err = tokio::time::timeout(Duration::from_secs(10), consumer.recv())
        .await
        .expect("an answer within 10 s")
        .unwrap_err();
    match err {
        Error::Config(ConfigError::InvalidValue { key, .. }) => assert_eq!(key, "group.protocol"),
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn a_kip848_member_that_stops_polling_leaves_the_group() {
    if !broker_has_kip848().await {
        return older_brokers_name_the_setting().await;
    }
    crate::consumer_group::a_stalled_member_leaves(kip848_member(&unique_topic("g"))).await;
}
