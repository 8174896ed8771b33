//! The producer's sending side: a router task, and one sink task per broker.
//!
//! ```text
//!  router: starts sinks, routes partitions again when the metadata changes, expires the batches
//!          of partitions without a leader
//!  sink(broker): free request slot ─► drain(broker) ─► one Produce for every batch taken
//!                    ▲                                  │ written on the connection by the sink
//!                    │                                  ▼
//!                    └──── slot freed ◄── completion, on the connection's reader task:
//!                                         settle() each batch, or retry() it
//! ```
//!
//! Who owns what:
//! - the [`Accumulator`] owns the queued batches and the routing of partitions to sinks;
//! - a sink owns the batches it drained until it writes them, then the request's completion
//!   owns them until the answer (or the connection's failure) settles or retries each;
//! - a sink owns at most `max.in.flight.requests.per.connection` request slots; the completion
//!   of a request holds its slot.
//!
//! Locks: the accumulator's (never held across an await), the idempotent identity's (likewise),
//! the connection's write half (held while one request is written). A sink waits for its own
//! broker only: a broker that is down, or slow to answer, holds up no other sink.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::ProduceRequest;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::accumulator::{Accumulator, ReadyBatch, UNROUTED};
use super::delivery::BatchAck;
use super::idempotence::Identity;
use crate::cluster::Cluster;
use crate::config::{Acks, ProducerConfig};
use crate::conn::Connection;
use crate::error::{Error, KafkaCode};
use crate::protocol::codes;
use crate::protocol::frame::Body;
use crate::protocol::produce::{encode_produce, TopicBatches};
use crate::protocol::records::ProducerFields;

/// What the router and the sinks share.
pub(crate) struct Pipeline {
    pub acc: Arc<Accumulator>,
    pub cluster: Cluster,
    pub config: ProducerConfig,
    pub request_timeout: Duration,
    /// Producer id, epoch and sequences, when the producer is idempotent.
    pub identity: Option<Identity>,
}

/// The router: runs until the producer is closed and everything queued is settled, starting a
/// sink for each broker that leads a partition in use.
pub(crate) async fn run(pipeline: Arc<Pipeline>) {
    let acc = &pipeline.acc;
    let mut sinks = JoinSet::new();
    let mut metadata = pipeline.cluster.metadata_updates();
    loop {
        // Partitions whose leader moved go to its sink; those without one are asked about.
        for topic in acc.reroute() {
            pipeline.cluster.refresh_soon(&topic);
        }
        for (broker, wake) in acc.new_sinks() {
            sinks.spawn(sink(pipeline.clone(), broker, wake));
        }
        if acc.is_finished() {
            break;
        }
        // Batches of partitions without a leader expire here; their topics are asked about.
        let (_, next) = acc.drain(UNROUTED, Instant::now());
        tokio::select! {
            _ = acc.router.notified() => {}
            changed = metadata.changed() => {
                if changed.is_err() {
                    break;
                }
            }
            _ = sleep_until(next) => {}
        }
    }
    while sinks.join_next().await.is_some() {}
}

/// Sleeps until `at`, or for ever.
async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The requests a sink has in flight, oldest first, to give up on those unanswered in time.
#[derive(Default)]
struct InFlight(VecDeque<Request>);

struct Request {
    deadline: Instant,
    after: Duration,
    answered: Arc<AtomicBool>,
    conn: Connection,
}

impl InFlight {
    /// Waits until the oldest unanswered request is overdue, and closes its connection: every
    /// request on it fails as outcome-unknown, and is retried or reported.
    async fn overdue(&mut self) {
        while self
            .0
            .front()
            .is_some_and(|r| r.answered.load(Ordering::Acquire))
        {
            self.0.pop_front();
        }
        let Some(oldest) = self.0.front() else {
            return std::future::pending().await;
        };
        tokio::time::sleep_until(oldest.deadline).await;
        let oldest = self.0.pop_front().expect("looked at above");
        if !oldest.answered.load(Ordering::Acquire) {
            oldest.conn.poison(Error::Timeout {
                what: format!("Produce to {}", oldest.conn.broker()),
                after_ms: oldest.after.as_millis() as u64,
                outcome_unknown: true,
            });
        }
    }
}

/// The sink of broker `broker`: sends the batches of the partitions it leads, up to
/// `max.in.flight.requests.per.connection` requests at a time, until the producer is finished.
async fn sink(pipeline: Arc<Pipeline>, broker: i32, wake: Arc<Notify>) {
    let slots = Arc::new(Semaphore::new(pipeline.config.max_in_flight.max(1)));
    let mut in_flight = InFlight::default();
    loop {
        // A free slot first: batches are taken only when they can go.
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
            _ = in_flight.overdue() => continue,
        };
        let (batches, next) = pipeline.acc.drain(broker, Instant::now());
        if batches.is_empty() {
            drop(slot);
            if pipeline.acc.is_finished() {
                return;
            }
            tokio::select! {
                _ = wake.notified() => {}
                _ = sleep_until(next) => {}
                _ = in_flight.overdue() => {}
            }
            continue;
        }
        pipeline.send(broker, batches, slot, &mut in_flight).await;
    }
}

impl Pipeline {
    fn timeout_ms(&self) -> i32 {
        self.request_timeout.as_millis().min(i32::MAX as u128) as i32
    }

    /// Sends `batches` to broker `broker` in one Produce request; the answer settles them.
    async fn send(
        self: &Arc<Self>,
        broker: i32,
        mut batches: Vec<ReadyBatch>,
        slot: OwnedSemaphorePermit,
        in_flight: &mut InFlight,
    ) {
        if let Some(identity) = &self.identity {
            if let Err(e) = identity.ensure(&self.cluster).await {
                tracing::debug!(error = %e, "InitProducerId failed");
                return batches.into_iter().for_each(|b| self.failed(b, e.clone()));
            }
        }
        // A connection may take reconnect backoffs while the broker is down; not past the
        // delivery timeout of the oldest batch.
        let oldest = batches.iter().map(|b| b.created).min().expect("not empty");
        let left =
            (oldest + self.config.delivery_timeout).saturating_duration_since(Instant::now());
        let conn = match tokio::time::timeout(left, self.cluster.broker(broker)).await {
            Ok(Ok(conn)) => conn,
            Ok(Err(e)) => return batches.into_iter().for_each(|b| self.failed(b, e.clone())),
            Err(_) => {
                let e = Error::Timeout {
                    what: format!("a connection to broker {broker}"),
                    after_ms: left.as_millis() as u64,
                    outcome_unknown: false,
                };
                return batches.into_iter().for_each(|b| self.failed(b, e.clone()));
            }
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
            drop(slot);
            for batch in batches {
                match &sent {
                    Ok(()) => self.acc.settle(batch, Ok(BatchAck::UNKNOWN), true),
                    Err(e) => self.failed(batch, e.clone()),
                }
            }
            return;
        }
        let answered = Arc::new(AtomicBool::new(false));
        // The broker may take its whole timeout; the client waits that long plus its own.
        let after = self.request_timeout * 2;
        in_flight.0.push_back(Request {
            deadline: Instant::now() + after,
            after,
            answered: answered.clone(),
            conn: conn.clone(),
        });
        let pipeline = self.clone();
        let answering = conn.clone();
        conn.submit::<ProduceRequest>(version, body, move |reply| {
            answered.store(true, Ordering::Release);
            drop(slot);
            let response =
                reply.and_then(|bytes| answering.decode::<ProduceRequest>(bytes, version));
            match response {
                Ok(response) => pipeline.answered(&answering, batches, response),
                Err(e) => batches
                    .into_iter()
                    .for_each(|b| pipeline.failed(b, e.clone())),
            }
        })
        .await;
    }

    /// Settles (or retries) each batch of a request from the broker's answer.
    fn answered(
        &self,
        conn: &Connection,
        batches: Vec<ReadyBatch>,
        response: kafka_protocol::messages::ProduceResponse,
    ) {
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
                codes::DUPLICATE_SEQUENCE_NUMBER if self.identity.is_some() => {
                    self.acc.settle(batch, Ok(BatchAck::UNKNOWN), true)
                }
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
                        let e = broker_error(&batch, p.error_code, p.error_message.as_ref());
                        self.acc.settle(batch, Err(e), true);
                    }
                }
                code => {
                    let e = broker_error(&batch, code, p.error_message.as_ref());
                    self.failed(batch, e);
                }
            }
        }
    }

    /// The wait before retry number `attempts + 1`: `retry.backoff.ms`, doubling per attempt, at
    /// most `retry.backoff.max.ms`.
    fn backoff(&self, attempts: u32) -> Duration {
        let c = &self.config;
        c.retry_backoff
            .saturating_mul(1 << attempts.min(16))
            .min(c.retry_backoff_max.max(c.retry_backoff))
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
    fn failed(&self, mut batch: ReadyBatch, error: Error) {
        batch.maybe_written |= error.is_outcome_unknown();
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

fn broker_error(
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
