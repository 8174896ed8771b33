//! The sender task: takes ready batches from the accumulator, sends one Produce request per
//! broker carrying every batch that broker leads, and settles or retries each batch from the
//! answer.
//!
//! ```text
//!  loop: drain() ─► leader of each batch ─► per broker: Produce (≤ max.in.flight at once)
//!            ▲                                   │
//!            └── wake / linger deadline ◄── settle() ok │ retry() after retry.backoff.ms
//! ```

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::ProduceRequest;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use super::accumulator::{Accumulator, BatchAck, ReadyBatch};
use crate::cluster::{topic_name, Cluster};
use crate::config::{Acks, ProducerConfig};
use crate::error::{Error, KafkaCode};

/// Runs until the producer is closed and everything queued is settled.
pub(crate) async fn run(
    acc: Arc<Accumulator>,
    cluster: Cluster,
    config: ProducerConfig,
    request_timeout: std::time::Duration,
) {
    let mut in_flight: HashMap<i32, Arc<Semaphore>> = HashMap::new();
    let shared = Arc::new(Shared {
        acc: acc.clone(),
        cluster,
        config,
        request_timeout,
    });
    loop {
        let (batches, next) = acc.drain(Instant::now());
        if batches.is_empty() {
            if acc.is_finished() {
                return;
            }
            match next {
                Some(at) => {
                    tokio::select! {
                        _ = acc.wake.notified() => {}
                        _ = tokio::time::sleep_until(at) => {}
                    }
                }
                None => acc.wake.notified().await,
            }
            continue;
        }
        let mut by_leader: BTreeMap<i32, Vec<ReadyBatch>> = BTreeMap::new();
        for batch in batches {
            match shared
                .cluster
                .leader_id(&batch.topic, batch.partition)
                .await
            {
                Ok(leader) => by_leader.entry(leader).or_default().push(batch),
                Err(e) => shared.failed(batch, e),
            }
        }
        for (leader, batches) in by_leader {
            let permits = in_flight
                .entry(leader)
                .or_insert_with(|| Arc::new(Semaphore::new(shared.config.max_in_flight)))
                .clone();
            let shared = shared.clone();
            tokio::spawn(async move {
                let Ok(_permit) = permits.acquire_owned().await else {
                    return;
                };
                shared.produce(leader, batches).await;
            });
        }
    }
}

struct Shared {
    acc: Arc<Accumulator>,
    cluster: Cluster,
    config: ProducerConfig,
    request_timeout: std::time::Duration,
}

impl Shared {
    /// Sends `batches` to broker `leader` in one Produce request and settles each from the answer.
    async fn produce(&self, leader: i32, mut batches: Vec<ReadyBatch>) {
        let request = match self.request(&mut batches) {
            Ok(request) => request,
            Err(e) => return batches.into_iter().for_each(|b| self.failed(b, e.clone())),
        };
        let conn = match self.cluster.broker(leader).await {
            Ok(conn) => conn,
            Err(e) => return batches.into_iter().for_each(|b| self.failed(b, e.clone())),
        };
        if self.config.acks == Acks::None {
            let sent = match conn.version_of::<ProduceRequest>() {
                Ok(version) => conn.send_only(&request, version).await,
                Err(e) => Err(e),
            };
            for batch in batches {
                match &sent {
                    Ok(()) => self.acc.settle(
                        batch,
                        Ok(BatchAck {
                            base_offset: None,
                            log_append_time: None,
                        }),
                        true,
                    ),
                    Err(e) => self.failed(batch, e.clone()),
                }
            }
            return;
        }
        let response = match conn.request(&request).await {
            Ok((response, _)) => response,
            Err(e) => return batches.into_iter().for_each(|b| self.failed(b, e.clone())),
        };
        for batch in batches {
            let answer = response
                .responses
                .iter()
                .filter(|t| t.name.0.as_str() == &*batch.topic)
                .flat_map(|t| &t.partition_responses)
                .find(|p| p.index == batch.partition);
            let Some(p) = answer else {
                let e = Error::protocol(
                    conn.broker(),
                    format!(
                        "Produce response lacks {}[{}]",
                        batch.topic, batch.partition
                    ),
                );
                self.failed(batch, e);
                continue;
            };
            match KafkaCode::from_code(p.error_code) {
                None => self.acc.settle(
                    batch,
                    Ok(BatchAck {
                        base_offset: Some(p.base_offset),
                        log_append_time: (p.log_append_time_ms >= 0)
                            .then_some(p.log_append_time_ms),
                    }),
                    true,
                ),
                Some(code) => {
                    let e = Error::Broker {
                        api: "Produce",
                        resource: format!("{}[{}]", batch.topic, batch.partition),
                        code,
                        message: p.error_message.as_ref().map(|m| m.to_string()),
                    };
                    self.failed(batch, e);
                }
            }
        }
    }

    /// One Produce request for `batches`, grouped by topic.
    fn request(&self, batches: &mut [ReadyBatch]) -> Result<ProduceRequest, Error> {
        let mut topics: Vec<TopicProduceData> = Vec::new();
        for batch in batches.iter_mut() {
            let data = PartitionProduceData::default()
                .with_index(batch.partition)
                .with_records(Some(batch.bytes(&self.config)?));
            match topics
                .iter_mut()
                .find(|t| t.name.0.as_str() == &*batch.topic)
            {
                Some(t) => t.partition_data.push(data),
                None => topics.push(
                    TopicProduceData::default()
                        .with_name(topic_name(&batch.topic))
                        .with_partition_data(vec![data]),
                ),
            }
        }
        Ok(ProduceRequest::default()
            .with_acks(self.config.acks.as_i16())
            .with_timeout_ms(self.request_timeout.as_millis().min(i32::MAX as u128) as i32)
            .with_topic_data(topics))
    }

    /// A batch failed with `error`: retry it when the error allows and time remains, else report
    /// the error to its records.
    fn failed(&self, batch: ReadyBatch, error: Error) {
        let backoff = self.config.retry_backoff;
        let deadline = batch.created + self.config.delivery_timeout;
        if error.is_retriable()
            && batch.attempts < self.config.retries
            && Instant::now() + backoff < deadline
        {
            tracing::debug!(topic = %batch.topic, partition = batch.partition, %error, "retrying produce");
            // Leadership may have moved: look it up again before the retry.
            self.cluster.invalidate_topic(&batch.topic);
            self.acc.retry(batch, backoff);
        } else {
            self.acc.settle(batch, Err(error), true);
        }
    }
}
