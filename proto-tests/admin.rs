//! Creating and deleting topics.

use purekafka::{Error, Producer, ProducerRecord};

use crate::common::{admin, plaintext, unique_topic};

#[tokio::test]
async fn create_then_delete() {
    let admin = admin().await;
    let topic = unique_topic("admin");
    admin.create_topic(&topic, 3, 1).await.unwrap();
    let err = admin.create_topic(&topic, 3, 1).await.unwrap_err();
    assert_eq!(err.kafka_code().map(|c| c.code()), Some(36), "{err}");
    assert!(!admin.create_topic_if_missing(&topic, 3, 1).await.unwrap());
    admin.delete_topic(&topic).await.unwrap();
    let err = admin.delete_topic(&topic).await.unwrap_err();
    assert_eq!(err.kafka_code().map(|c| c.code()), Some(3), "{err}");
}

#[tokio::test]
async fn producing_to_a_missing_topic_is_an_error_not_a_hang() {
    let producer = Producer::builder(plaintext()).build().await.unwrap();
    let topic = unique_topic("missing");
    let err = producer
        .send(ProducerRecord::new(&topic).value("x"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::UnknownTopicOrPartition(t) if *t == topic),
        "{err:?}"
    );
}
