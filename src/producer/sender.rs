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

use bytes::Bytes;
use kafka_protocol::messages::ProduceRequest;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use super::accumulator::{Accumulator, BatchAck, ReadyBatch};
use super::idempotence::Identity;
use crate::cluster::Cluster;
use crate::config::{Acks, ProducerConfig};
use crate::error::{Error, KafkaCode};
use crate::protocol::codes;
use crate::protocol::frame::Body;
use crate::protocol::produce::{encode_produce, TopicBatches};
use crate::protocol::records::ProducerFields;

/// Runs until the producer is closed and everything queued is settled.
pub(crate) async fn run(
    acc: Arc<Accumulator>,
    cluster: Cluster,
    config: ProducerConfig,
    request_timeout: std::time::Duration,
) {
    let mut in_flight: HashMap<i32, Arc<Semaphore>> = HashMap::new();
    let identity = config.idempotent().unwrap_or(false).then(Identity::default);
    let shared = Arc::new(Shared {
        acc: acc.clone(),
        cluster,
        config,
        request_timeout,
        identity,
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
        if let Some(identity) = shared.identity.as_ref().filter(|i| i.needs_init()) {
            if let Err(e) = identity.init(&shared.cluster).await {
                tracing::debug!(error = %e, "InitProducerId failed");
                batches
                    .into_iter()
                    .for_each(|b| shared.failed(b, e.clone()));
                continue;
            }
        }
        let mut by_leader: BTreeMap<i32, Vec<ReadyBatch>> = BTreeMap::new();
        for batch in batches {
            // A lookup waits out reconnect backoffs while the cluster is unreachable; it may
            // not hold the batch past its delivery timeout.
            let left = (batch.created + shared.config.delivery_timeout)
                .saturating_duration_since(Instant::now());
            let lookup = shared.cluster.leader_id(&batch.topic, batch.partition);
            match tokio::time::timeout(left, lookup).await {
                Ok(Ok(leader)) => by_leader.entry(leader).or_default().push(batch),
                Ok(Err(e)) => shared.failed(batch, e),
                Err(_) => {
                    let e = Error::Timeout {
                        what: format!("the leader of {}[{}]", batch.topic, batch.partition),
                        after_ms: left.as_millis() as u64,
                    };
                    shared.failed(batch, e);
                }
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
    /// Producer id, epoch and sequences, when the producer is idempotent.
    identity: Option<Identity>,
}

impl Shared {
    fn timeout_ms(&self) -> i32 {
        self.request_timeout.as_millis().min(i32::MAX as u128) as i32
    }

    /// Sends `batches` to broker `leader` in one Produce request and settles each from the answer.
    async fn produce(&self, leader: i32, mut batches: Vec<ReadyBatch>) {
        let conn = match self.cluster.broker(leader).await {
            Ok(conn) => conn,
            Err(e) => return batches.into_iter().for_each(|b| self.failed(b, e.clone())),
        };
        let body = conn
            .version_of::<ProduceRequest>()
            .and_then(|version| Ok((version, self.body(version, &mut batches)?)));
        let (version, body) = match body {
            Ok(ok) => ok,
            Err(e) => return batches.into_iter().for_each(|b| self.failed(b, e.clone())),
        };
        if self.config.acks == Acks::None {
            let sent = conn.send_only::<ProduceRequest>(version, body).await;
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
        // The broker may take its whole timeout; the client waits that long plus its own.
        let wait = self.request_timeout * 2;
        let response = match conn.call::<ProduceRequest>(version, body, wait).await {
            Ok(bytes) => conn.decode::<ProduceRequest>(bytes, version),
            Err(e) => Err(e),
        };
        let response = match response {
            Ok(response) => response,
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
            match p.error_code {
                0 => self.acc.settle(
                    batch,
                    Ok(BatchAck {
                        base_offset: Some(p.base_offset),
                        log_append_time: (p.log_append_time_ms >= 0)
                            .then_some(p.log_append_time_ms),
                    }),
                    true,
                ),
                // A retry of a batch the broker already wrote: delivered, offset not repeated.
                codes::DUPLICATE_SEQUENCE_NUMBER if self.identity.is_some() => self.acc.settle(
                    batch,
                    Ok(BatchAck {
                        base_offset: None,
                        log_append_time: None,
                    }),
                    true,
                ),
                // The broker lost or refuses our sequence: send again under a new epoch.
                codes::OUT_OF_ORDER_SEQUENCE_NUMBER
                | codes::UNKNOWN_PRODUCER_ID
                | codes::INVALID_PRODUCER_EPOCH
                    if self.identity.is_some() =>
                {
                    if let Some(identity) = &self.identity {
                        identity.sequence_broken(&batch);
                    }
                    if batch.attempts < self.config.retries {
                        let backoff = self.backoff(batch.attempts);
                        self.acc.retry(batch, backoff);
                    } else {
                        let e = self.broker_error(&batch, p.error_code, p.error_message.as_ref());
                        self.acc.settle(batch, Err(e), true);
                    }
                }
                code => {
                    let e = self.broker_error(&batch, code, p.error_message.as_ref());
                    self.failed(batch, e);
                }
            }
        }
    }

    /// The wait before retry number `attempts + 1`: `retry.backoff.ms`, doubling per attempt, at
    /// most `retry.backoff.max.ms`.
    fn backoff(&self, attempts: u32) -> std::time::Duration {
        let c = &self.config;
        c.retry_backoff
            .saturating_mul(1 << attempts.min(16))
            .min(c.retry_backoff_max.max(c.retry_backoff))
    }

    fn broker_error(
        &self,
        batch: &ReadyBatch,
        code: i16,
        message: Option<&kafka_protocol::protocol::StrBytes>,
    ) -> Error {
        Error::Broker {
            api: "Produce",
            resource: format!("{}[{}]", batch.topic, batch.partition),
            code: KafkaCode::from_code(code).expect("non-zero"),
            message: message.map(|m| m.to_string()),
        }
    }

    /// The Produce body for `batches`, grouped by topic, the batches shared rather than copied.
    fn body(&self, version: i16, batches: &mut [ReadyBatch]) -> Result<Body, Error> {
        let mut topics: Vec<TopicBatches<'_>> = Vec::new();
        let encoded: Vec<Bytes> = batches
            .iter_mut()
            .map(|b| {
                let fields = match &self.identity {
                    Some(identity) => identity.stamp(b)?,
                    None => ProducerFields::NONE,
                };
                b.bytes(&self.config, fields)
            })
            .collect::<Result<_, _>>()?;
        for (batch, bytes) in batches.iter().zip(encoded) {
            match topics.iter_mut().find(|(name, _)| *name == &*batch.topic) {
                Some((_, partitions)) => partitions.push((batch.partition, bytes)),
                None => topics.push((&batch.topic, vec![(batch.partition, bytes)])),
            }
        }
        encode_produce(
            version,
            self.config.acks.as_i16(),
            self.timeout_ms(),
            &topics,
        )
        .map_err(|e| Error::protocol("-", e))
    }

    /// A batch failed with `error`: retry it when the error allows and time remains, else report
    /// the error to its records.
    fn failed(&self, batch: ReadyBatch, error: Error) {
        let deadline = batch.created + self.config.delivery_timeout;
        let remaining = deadline.saturating_duration_since(Instant::now());
        let out_of_time = remaining.is_zero();
        if error.is_retriable() && batch.attempts < self.config.retries && !out_of_time {
            tracing::debug!(topic = %batch.topic, partition = batch.partition, %error, "retrying produce");
            // Leadership may have moved: look it up again before the retry.
            self.cluster.refresh_soon(&batch.topic);
            // Never past the deadline: there the batch expires, not before (as in the Java
            // client, a record fails no sooner than delivery.timeout.ms).
            let backoff = self.backoff(batch.attempts).min(remaining);
            self.acc.retry(batch, backoff);
        } else {
            if let Some(identity) = &self.identity {
                // The batch may have been written: its sequence cannot be reused.
                identity.sequence_broken(&batch);
            }
            let error = match out_of_time && error.is_retriable() {
                true => batch.expired(self.config.delivery_timeout, Some(&error)),
                false => error,
            };
            self.acc.settle(batch, Err(error), true);
        }
    }
}
