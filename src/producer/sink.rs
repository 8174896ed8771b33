//! The producer's sending side: a router task, and one sink per broker.
//!
//! ```text
//!  produce() ─ append ─► a batch opened or filled: kick(sink)
//!                          │ linger 0, slot + connection + producer id ready: the caller
//!                          │ drains and writes the request itself, never waiting
//!                          └ otherwise: wake the sink's task
//!  sink task(broker): free request slot ─► drain(broker) ─► one Produce for every batch taken
//!                        ▲                                  │ written by the sink's task
//!                        │                                  ▼
//!                        └── slot freed ◄── completion, on the connection's reader task:
//!                                           settle() each batch, or retry() it
//!  router task: starts the sink tasks, routes partitions again when metadata arrives, expires
//!               the batches of partitions without a leader
//! ```
//!
//! Tasks: the router, one task per sink (per broker leading a partition in use), and each
//! connection's reader. No task is spawned per request (but to finish a write the socket did
//! not take at once, see `Wire::try_submit`).
//!
//! Who owns what:
//! - the [`Accumulator`] owns the queued batches and the routing of partitions to sinks;
//! - whoever drains batches (a sink's task, or a caller kicking its sink) owns them until it
//!   writes them; then the request's completion owns them until the answer, or the
//!   connection's failure, settles or retries each;
//! - a sink has `max.in.flight.requests.per.connection` request slots ([`SinkHandle`]); a
//!   request's completion holds its slot;
//! - the connection's reader keeps each request's deadline and closes the connection when an
//!   answer is overdue, which fails (and retries) what was in flight on it.
//!
//! Locks: the accumulator's and the idempotent identity's (never held across an await), and
//! the connection's write half (held while one request is written). A sink waits for its own
//! broker only: a broker that is down, or slow to answer, holds up no other sink.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::ProduceRequest;
use tokio::sync::OwnedSemaphorePermit;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::accumulator::{Accumulator, ReadyBatch, SinkHandle, UNROUTED};
use super::delivery::BatchAck;
use super::idempotence::Identity;
use super::transaction::Transactions;
use crate::cluster::Cluster;
use crate::config::{Acks, ProducerConfig};
use crate::conn::Connection;
use crate::error::{Error, KafkaCode, Resource};
use crate::protocol::codes;
use crate::protocol::frame::Body;
use crate::protocol::produce::{encode_produce, TopicBatches};
use crate::protocol::records::ProducerFields;

/// What the router and the sinks share.
pub(crate) struct Pipeline {
    pub acc: Arc<Accumulator>,
    pub cluster: Cluster,
    pub config: ProducerConfig,
    /// `request.timeout.ms`: how long the broker may wait for replicas, sent in each Produce.
    pub request_timeout: Duration,
    /// Producer id, epoch and sequences, when the producer is idempotent.
    pub identity: Option<Identity>,
    /// The transaction state, when the producer is transactional.
    pub txn: Option<Transactions>,
    /// The runtime the producer was built on: a caller sending for a sink may be polled by
    /// another executor, and what must go on as a task goes on there.
    pub runtime: tokio::runtime::Handle,
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
        for handle in acc.new_sinks() {
            sinks.spawn(sink(pipeline.clone(), handle));
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

/// The task of one broker's sink: sends the batches of the partitions that broker leads, up to
/// `max.in.flight.requests.per.connection` requests at a time, until the producer is finished.
/// It is what waits (for a slot, a connection, a producer id, a linger); at linger 0, with all
/// of that ready, the caller of `produce` sends without it ([`Pipeline::kick`]).
async fn sink(pipeline: Arc<Pipeline>, sink: Arc<SinkHandle>) {
    loop {
        // Partitions new to the transaction are added first (for every sink at once).
        if let Some(txn) = &pipeline.txn {
            if pipeline.acc.has_partitions_to_add() {
                txn.add_partitions(&pipeline).await;
            }
        }
        // A free slot first: batches are taken only when they can go.
        let slot = sink
            .slots
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        let (batches, next) = pipeline.acc.drain(sink.broker, Instant::now());
        if batches.is_empty() {
            drop(slot);
            if pipeline.acc.is_finished() {
                return;
            }
            tokio::select! {
                _ = sink.wake.notified() => {}
                _ = sleep_until(next) => {}
            }
            continue;
        }
        pipeline.send(sink.broker, batches, slot).await;
    }
}

/// A Produce request ready to go: its batches (which the answer settles), its body, its slot.
struct Request {
    /// The broker it goes to.
    broker: i32,
    batches: Vec<ReadyBatch>,
    version: i16,
    body: Body,
    slot: OwnedSemaphorePermit,
}

impl Pipeline {
    fn timeout_ms(&self) -> i32 {
        self.request_timeout.as_millis().min(i32::MAX as u128) as i32
    }

    /// A partition routed to `sink` has a batch to look at (one opened or filled). At linger
    /// 0, when a request slot, the broker's connection and the producer id are ready, the
    /// batch is sent here and now, by the caller, without waiting: no task to wake, no hop.
    /// Otherwise the sink's task is woken to send it (or to wait out its linger).
    pub fn kick(self: &Arc<Self>, sink: &Arc<SinkHandle>) {
        if !self.send_now(sink) {
            sink.wake.notify_one();
        }
    }

    /// Sends what `sink` has ready without waiting; false when that needs the sink's task.
    fn send_now(self: &Arc<Self>, sink: &SinkHandle) -> bool {
        let c = &self.config;
        if !c.linger.is_zero() || c.acks == Acks::None {
            return false;
        }
        if self.identity.as_ref().is_some_and(Identity::needs_init) {
            return false;
        }
        if self.txn.is_some() && self.acc.has_partitions_to_add() {
            return false;
        }
        let Ok(slot) = sink.slots.clone().try_acquire_owned() else {
            return false;
        };
        let Some(conn) = self.cluster.live_connection(sink.broker) else {
            return false;
        };
        let (batches, next) = self.acc.drain(sink.broker, Instant::now());
        if batches.is_empty() {
            // Taken by the sink meanwhile, or waiting out a retry backoff (the sink's task
            // keeps that time).
            return next.is_none();
        }
        let Some(request) = self.request(sink.broker, &conn, batches, slot) else {
            return true;
        };
        let deadline = Self::answer_deadline(&conn);
        let (on_reply, version, body) = self.on_reply(&conn, request);
        if let Err(on_reply) =
            conn.try_submit::<ProduceRequest, _>(version, &body, deadline, on_reply)
        {
            // Another request is being written on the connection: this one follows it.
            self.runtime.spawn(async move {
                conn.submit::<ProduceRequest>(version, body, deadline, on_reply)
                    .await
            });
        }
        true
    }

    /// Sends `batches` to broker `broker` in one Produce request; the answer settles them.
    async fn send(
        self: &Arc<Self>,
        broker: i32,
        batches: Vec<ReadyBatch>,
        slot: OwnedSemaphorePermit,
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
        let Some(request) = self.request(broker, &conn, batches, slot) else {
            return;
        };
        if self.config.acks == Acks::None {
            let Request {
                batches,
                version,
                body,
                slot,
                ..
            } = request;
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
        let deadline = Self::answer_deadline(&conn);
        let (on_reply, version, body) = self.on_reply(&conn, request);
        conn.submit::<ProduceRequest>(version, body, deadline, on_reply)
            .await;
    }

    /// When the answer to a request sent now on `conn` is given up on: `socket.timeout.ms`,
    /// as in librdkafka, whatever the broker's own `request.timeout.ms` for replicas.
    fn answer_deadline(conn: &Connection) -> Instant {
        Instant::now() + conn.socket_timeout()
    }

    /// The Produce request for `batches` on `conn`, or `None` when it cannot be made (the
    /// batches are then failed or retried).
    fn request(
        &self,
        broker: i32,
        conn: &Connection,
        mut batches: Vec<ReadyBatch>,
        slot: OwnedSemaphorePermit,
    ) -> Option<Request> {
        if let Some(c) = self.cluster.broker_counters(broker) {
            let now = Instant::now();
            for batch in &batches {
                // One sample per batch: how long its first record waited in the client.
                c.int_latency
                    .record(now.duration_since(batch.created).as_micros() as i64);
                if batch.attempts > 0 {
                    c.txretries
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
        }
        let body = conn
            .version_of::<ProduceRequest>()
            .and_then(|version| match &self.txn {
                Some(txn) => txn.produce_version(conn.broker(), version),
                None => Ok(version),
            })
            .and_then(|version| Ok((version, self.body(version, &mut batches)?)));
        match body {
            Ok((version, body)) => Some(Request {
                broker,
                batches,
                version,
                body,
                slot,
            }),
            Err(e) => {
                batches.into_iter().for_each(|b| self.failed(b, e.clone()));
                None
            }
        }
    }

    /// What settles `request`'s batches from its answer, on the connection's reader task; and
    /// the request's version and body, to send.
    fn on_reply(
        self: &Arc<Self>,
        conn: &Connection,
        request: Request,
    ) -> (
        impl FnOnce(Result<Bytes, Error>) + Send + 'static,
        i16,
        Body,
    ) {
        let (pipeline, conn) = (self.clone(), conn.clone());
        let Request {
            broker,
            batches,
            version,
            body,
            slot,
        } = request;
        let on_reply = move |reply: Result<Bytes, Error>| {
            drop(slot);
            let response = reply.and_then(|bytes| conn.decode::<ProduceRequest>(bytes, version));
            match response {
                Ok(response) => pipeline.answered(broker, &conn, batches, response),
                Err(e) => batches
                    .into_iter()
                    .for_each(|b| pipeline.failed(b, e.clone())),
            }
        };
        (on_reply, version, body)
    }

    /// Settles (or retries) each batch of a request from the broker's answer.
    fn answered(
        &self,
        broker: i32,
        conn: &Connection,
        batches: Vec<ReadyBatch>,
        response: kafka_protocol::messages::ProduceResponse,
    ) {
        if let Some(c) = self.cluster.broker_counters(broker) {
            c.throttle.record(response.throttle_time_ms.into());
        }
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
                // Fenced by another producer with our transactional id, or refused it: the
                // producer cannot go on.
                code if self.txn.as_ref().is_some_and(|t| t.is_fatal_code(code)) => {
                    let e = broker_error(&batch, code, p.error_message.as_ref());
                    self.acc.settle(batch, Err(e.clone()), true);
                    if let Some(txn) = &self.txn {
                        txn.fatal(&self.acc, "produce", e);
                    }
                }
                // The broker lost or refuses our sequence: send again under a new epoch. In a
                // transaction, the new epoch comes with the abort: the record fails, and with
                // it the transaction (abortable).
                codes::OUT_OF_ORDER_SEQUENCE_NUMBER
                | codes::UNKNOWN_PRODUCER_ID
                | codes::INVALID_PRODUCER_EPOCH
                    if self.identity.is_some() =>
                {
                    if let Some(identity) = &self.identity {
                        identity.sequence_broken(&batch);
                    }
                    if batch.attempts < self.config.retries && self.txn.is_none() {
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
            self.config.transactional_id.as_deref(),
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
        resource: Resource::partition(&batch.topic, batch.partition),
        code: KafkaCode::from_code(code).expect("non-zero"),
        message: message.map(|m| m.to_string()),
    }
}
