//! What the transactional producer asks of the coordinators: its producer id and epoch
//! (InitProducerId), partitions and offsets added to the transaction (AddPartitionsToTxn,
//! AddOffsetsToTxn, TxnOffsetCommit to the group's coordinator), and its end (EndTxn), each
//! asked again while the answer is retriable ([`Transactions::ask`]).
//!
//! Under transaction protocol v2 (KIP-890, where the cluster's `transaction.version` is 2 or
//! more) the brokers add partitions and offsets themselves: no AddPartitionsToTxn, no
//! AddOffsetsToTxn; TxnOffsetCommit and EndTxn go at v5, and every EndTxn answers with the
//! epoch (or, once the epoch is spent, the producer id) of the next transaction. Under v1 they
//! stay below v5, which would ask the broker for v2.

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::txn_offset_commit_request::{
    TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
};
use kafka_protocol::messages::{
    AddOffsetsToTxnRequest, AddPartitionsToTxnRequest, DescribeTransactionsRequest, EndTxnRequest,
    GroupId, InitProducerIdRequest, ProducerId, TransactionalId, TxnOffsetCommitRequest,
};
use tokio::time::Instant;

use super::errors::{retriable, CONCURRENT_TRANSACTIONS};
use super::{Call, Phase, Transactions};
use crate::cluster::{per_topic, topic_name};
use crate::error::Error;
use crate::group::coordinator::{s, Coordinator};
use crate::group::ConsumerGroupMetadata;
use crate::producer::sink::Pipeline;
use crate::protocol::api::ApiRequest;
use crate::protocol::codes;

/// The last versions of transaction protocol v1: the next ones are v2's (KIP-890).
const END_TXN_V1_MAX: i16 = 4;
const TXN_OFFSET_COMMIT_V1_MAX: i16 = 4;
/// The cluster feature that turns transaction protocol v2 on, and its first level that does.
const TRANSACTION_VERSION: &str = "transaction.version";
const TRANSACTION_V2: i16 = 2;
/// The first InitProducerId version that bumps the epoch of a producer id (KIP-360).
const BUMPS_EPOCH: i16 = 3;
/// The first TxnOffsetCommit version that carries the member's generation (KIP-447).
const CARRIES_GENERATION: i16 = 3;
/// The pause before asking again while the previous transaction completes: short, as the
/// Java client's, since it is over in milliseconds.
const CONCURRENT_BACKOFF: Duration = Duration::from_millis(20);
/// How long after an EndTxn the next transaction's first request waits, at most, for the
/// coordinator to have completed it ([`Transactions::await_completion`]); how many times it
/// asks again at once (a round trip apart: completing takes about as long as a few), and then
/// how often.
const COMPLETION_PATIENCE: Duration = Duration::from_millis(50);
const COMPLETION_ASKED_AT_ONCE: u32 = 8;
const COMPLETION_POLL: Duration = Duration::from_millis(1);

impl Transactions {
    /// The producer id and epoch from the coordinator: a new one, or (with `current`) the
    /// next epoch of the current one, after an abort that needs it (KIP-360).
    pub(super) async fn init_producer_id(
        &self,
        pipeline: &Pipeline,
        current: Option<(i64, i16)>,
    ) -> Result<(), Error> {
        let (id, epoch) = current.unwrap_or((-1, -1));
        let (response, level) = self
            .ask_coordinator(
                "InitProducerId",
                None,
                |version| {
                    if current.is_some() && version < BUMPS_EPOCH {
                        return Err(Error::TransactionState {
                            call: "abort_transaction",
                            state: "the transaction needs a new producer epoch, which the \
                                    cluster cannot give (InitProducerId v3, Kafka 2.5 or later)"
                                .into(),
                        });
                    }
                    Ok(InitProducerIdRequest::default()
                        .with_transactional_id(Some(TransactionalId(s(&self.id))))
                        .with_transaction_timeout_ms(self.timeout_ms)
                        .with_producer_id(ProducerId(id))
                        .with_producer_epoch(epoch))
                },
                |r| r.error_code,
            )
            .await?;
        let identity = pipeline.identity.as_ref().expect("transactional");
        identity.set(response.producer_id.0, response.producer_epoch);
        // The protocol is chosen with the producer id, as the coordinator that gave it knows
        // the cluster's features; it holds until the next InitProducerId.
        let v2 = level.is_some_and(|l| l >= TRANSACTION_V2);
        self.state().v2 = v2;
        tracing::debug!(
            transactional_id = %self.id,
            producer_id = response.producer_id.0,
            epoch = response.producer_epoch,
            protocol = if v2 { 2 } else { 1 },
            "transactional producer initialised"
        );
        Ok(())
    }

    /// EndTxn: commits or aborts the transaction at the coordinator. Under v2 the answer
    /// carries the producer id and epoch of the next transaction, taken up here (sequences
    /// start again at 0); nothing is in flight by now. True when it did.
    pub(super) async fn end(&self, pipeline: &Pipeline, commit: bool) -> Result<bool, Error> {
        let (id, epoch) = producer(pipeline)?;
        let v2 = self.state().v2;
        let (response, _) = self
            .ask_coordinator(
                "EndTxn",
                (!v2).then_some(END_TXN_V1_MAX),
                |_| {
                    Ok(EndTxnRequest::default()
                        .with_transactional_id(TransactionalId(s(&self.id)))
                        .with_producer_id(ProducerId(id))
                        .with_producer_epoch(epoch)
                        .with_committed(commit))
                },
                |r| r.error_code,
            )
            .await?;
        // A coordinator that answered at v4 (moved to a broker without v5 meanwhile) gives
        // no new epoch: -1.
        let renewed = v2 && response.producer_id.0 >= 0;
        if renewed {
            let identity = pipeline.identity.as_ref().expect("transactional");
            identity.set(response.producer_id.0, response.producer_epoch);
        }
        self.state().ended_at = Some(Instant::now());
        Ok(renewed)
    }

    /// Waits, briefly, until the coordinator has completed the transaction the last EndTxn
    /// ended: it answers EndTxn once the end is decided, and writes the markers after. A
    /// request of the next transaction that meets that one still completing is refused with
    /// CONCURRENT_TRANSACTIONS and asked again 20 ms later (by us for AddPartitionsToTxn,
    /// under v2 by the partition's leader, `add.partitions.to.txn.retry.backoff.ms`), where
    /// completing takes a millisecond or two. So the first request of a transaction begun
    /// within [`COMPLETION_PATIENCE`] of the last end looks first (DescribeTransactions, Kafka
    /// 3.0 and later; a producer may describe its own transactional id) until it has, for that
    /// long at most: [`COMPLETION_ASKED_AT_ONCE`] times in a row, then every
    /// [`COMPLETION_POLL`]. Any error ends the wait: the retries above still cover what it was
    /// for.
    async fn await_completion(&self) {
        let Some(ended) = self.state().ended_at.take() else {
            return;
        };
        let give_up = ended + COMPLETION_PATIENCE;
        let request = DescribeTransactionsRequest::default()
            .with_transactional_ids(vec![TransactionalId(s(&self.id))]);
        let mut asked_times = 0;
        while Instant::now() < give_up {
            let asked = async {
                let mut coordinator = self.coordinator.lock().await;
                let conn = coordinator.conn().await.ok()?;
                let version = conn.version_of::<DescribeTransactionsRequest>().ok()?;
                let response = conn.request_at(&request, version, conn.socket_timeout());
                let response = response.await.ok()?;
                let state = response.transaction_states.into_iter().next()?;
                (state.error_code == 0).then_some(state.transaction_state)
            };
            let Ok(Some(state)) = tokio::time::timeout_at(give_up, asked).await else {
                return;
            };
            if !state.starts_with("Prepare") {
                return;
            }
            asked_times += 1;
            if asked_times >= COMPLETION_ASKED_AT_ONCE {
                tokio::time::sleep(COMPLETION_POLL).await;
            }
        }
    }

    /// Adds the partitions that have records in the transaction and are not in it yet, for
    /// every sink: AddPartitionsToTxn, retried while retriable. A sink calls this before it
    /// takes batches; their partitions' batches go once this returns.
    pub async fn add_partitions(&self, pipeline: &Pipeline) {
        let _adding = self.adding.lock().await;
        let partitions = pipeline.acc.partitions_to_add();
        if partitions.is_empty() {
            return;
        }
        let (serial, v2) = {
            let state = self.state();
            if !matches!(state.phase, Phase::InTransaction | Phase::Committing) {
                // A failed transaction: its records wait for the abort, which purges them.
                return pipeline.acc.not_added(partitions);
            }
            (state.serial, state.v2)
        };
        self.await_completion().await;
        // Under v2 the partition's leader adds it when the first batch comes (Produce v12).
        let added = match v2 {
            true => Ok(()),
            false => self.add(pipeline, &partitions).await,
        };
        match added {
            Ok(()) => {
                let current = {
                    let mut state = self.state();
                    // The coordinator holds a transaction now, whatever happened here
                    // meanwhile: EndTxn must end it.
                    state.started = true;
                    state.serial == serial
                };
                if current {
                    pipeline.acc.added(&partitions);
                }
            }
            Err(e) => {
                tracing::debug!(transactional_id = %self.id, error = %e, "AddPartitionsToTxn failed");
                self.failed(&pipeline.acc, Call::Produce, e);
            }
        }
    }

    async fn add(&self, pipeline: &Pipeline, partitions: &[(Arc<str>, i32)]) -> Result<(), Error> {
        let (id, epoch) = producer(pipeline)?;
        let topics: Vec<AddPartitionsToTxnTopic> =
            per_topic(partitions.iter().map(|(t, p)| (&**t, *p, ())))
                .into_iter()
                .map(|(topic, partitions)| {
                    AddPartitionsToTxnTopic::default()
                        .with_name(topic_name(topic))
                        .with_partitions(partitions.into_iter().map(|(p, ())| p).collect())
                })
                .collect();
        self.ask_coordinator(
            "AddPartitionsToTxn",
            None,
            |_| {
                Ok(AddPartitionsToTxnRequest::default()
                    .with_v3_and_below_transactional_id(TransactionalId(s(&self.id)))
                    .with_v3_and_below_producer_id(ProducerId(id))
                    .with_v3_and_below_producer_epoch(epoch)
                    .with_v3_and_below_topics(topics.clone()))
            },
            // The errors are per partition; one retriable error (the previous transaction
            // completing) holds up all of them.
            |r| {
                let codes = r.results_by_topic_v3_and_below.iter().flat_map(|t| {
                    t.results_by_partition
                        .iter()
                        .map(|p| p.partition_error_code)
                });
                first_error(codes)
            },
        )
        .await?;
        Ok(())
    }

    /// AddOffsetsToTxn (v1 only: under v2 the group's coordinator adds them), then
    /// TxnOffsetCommit to the group's coordinator.
    pub(super) async fn send_offsets(
        &self,
        pipeline: &Pipeline,
        offsets: &[(Arc<str>, i32, i64)],
        group: &ConsumerGroupMetadata,
    ) -> Result<(), Error> {
        let (id, epoch) = producer(pipeline)?;
        self.await_completion().await;
        let v2 = self.state().v2;
        if !v2 {
            self.ask_coordinator(
                "AddOffsetsToTxn",
                None,
                |_| {
                    Ok(AddOffsetsToTxnRequest::default()
                        .with_transactional_id(TransactionalId(s(&self.id)))
                        .with_producer_id(ProducerId(id))
                        .with_producer_epoch(epoch)
                        .with_group_id(GroupId(s(&group.group_id))))
                },
                |r| r.error_code,
            )
            .await?;
        }
        self.state().started = true;
        let topics: Vec<TxnOffsetCommitRequestTopic> =
            per_topic(offsets.iter().map(|(t, p, o)| (&**t, *p, *o)))
                .into_iter()
                .map(|(topic, partitions)| {
                    TxnOffsetCommitRequestTopic::default()
                        .with_name(topic_name(topic))
                        .with_partitions(
                            partitions
                                .into_iter()
                                .map(|(partition, offset)| {
                                    TxnOffsetCommitRequestPartition::default()
                                        .with_partition_index(partition)
                                        .with_committed_offset(offset)
                                        .with_committed_leader_epoch(-1)
                                })
                                .collect(),
                        )
                })
                .collect();
        let mut coordinator = Coordinator::new(
            pipeline.cluster.clone(),
            group.group_id.clone(),
            pipeline.config.transaction_timeout,
            self.retry_backoff,
        );
        let request = |version: i16| {
            let mut request = TxnOffsetCommitRequest::default()
                .with_transactional_id(TransactionalId(s(&self.id)))
                .with_group_id(GroupId(s(&group.group_id)))
                .with_producer_id(ProducerId(id))
                .with_producer_epoch(epoch)
                .with_topics(topics.clone());
            if version >= CARRIES_GENERATION {
                request = request
                    .with_generation_id(group.generation_id)
                    .with_member_id(s(&group.member_id))
                    .with_group_instance_id(group.group_instance_id.as_deref().map(s));
            }
            request
        };
        self.ask(
            &mut coordinator,
            "TxnOffsetCommit",
            (!v2).then_some(TXN_OFFSET_COMMIT_V1_MAX),
            |version| Ok(request(version)),
            |r| {
                let codes = r.topics.iter().flat_map(|t| t.partitions.iter());
                first_error(codes.map(|p| p.error_code))
            },
        )
        .await?;
        Ok(())
    }

    /// Sends what `make` builds for the negotiated version (at most `cap`) to the transaction
    /// coordinator until it answers without a retriable error (see [`Transactions::ask`]).
    async fn ask_coordinator<R: ApiRequest>(
        &self,
        api: &'static str,
        cap: Option<i16>,
        make: impl Fn(i16) -> Result<R, Error>,
        code: impl Fn(&R::Response) -> i16,
    ) -> Result<(R::Response, Option<i16>), Error> {
        let mut coordinator = self.coordinator.lock().await;
        self.ask(&mut coordinator, api, cap, make, code).await
    }

    /// Sends the request `make` builds for the negotiated version (at most `cap`) to
    /// `coordinator` until it is answered without a retriable error: the coordinator moving
    /// or loading, or the previous transaction still completing, for as long as it takes;
    /// other retriable codes (a topic the coordinator does not know yet, a timeout) for a
    /// transaction's length. `code` is the answer's error code. Returns the answer, and the
    /// cluster's `transaction.version` as the answering broker knows it.
    async fn ask<R: ApiRequest>(
        &self,
        coordinator: &mut Coordinator,
        api: &'static str,
        cap: Option<i16>,
        make: impl Fn(i16) -> Result<R, Error>,
        code: impl Fn(&R::Response) -> i16,
    ) -> Result<(R::Response, Option<i16>), Error> {
        let mut attempt = 0;
        let give_up = Instant::now() + Duration::from_millis(self.timeout_ms as u64);
        loop {
            let outcome = async {
                let conn = coordinator.conn().await?;
                let version = conn.version_of::<R>()?;
                let version = cap.map_or(version, |cap| version.min(cap));
                let level = conn.versions().feature(TRANSACTION_VERSION);
                let response = conn
                    .request_at(&make(version)?, version, conn.socket_timeout())
                    .await?;
                Ok::<_, Error>((response, level))
            }
            .await;
            let (retry, pause) = match outcome {
                Ok((response, level)) => match code(&response) {
                    0 => return Ok((response, level)),
                    c @ (codes::NOT_COORDINATOR | codes::COORDINATOR_NOT_AVAILABLE) => {
                        coordinator.lost();
                        (coordinator.error(api, c), self.backoff(attempt))
                    }
                    c @ codes::COORDINATOR_LOAD_IN_PROGRESS => {
                        (coordinator.error(api, c), self.backoff(attempt))
                    }
                    c @ CONCURRENT_TRANSACTIONS => (coordinator.error(api, c), CONCURRENT_BACKOFF),
                    c if retriable(c) && Instant::now() < give_up => {
                        (coordinator.error(api, c), self.backoff(attempt))
                    }
                    c => return Err(coordinator.error(api, c)),
                },
                Err(e) if e.is_retriable() => {
                    coordinator.lost();
                    (e, self.backoff(attempt))
                }
                Err(e) => return Err(e),
            };
            tracing::debug!(transactional_id = %self.id, api, error = %retry, "retrying");
            tokio::time::sleep(pause).await;
            attempt += 1;
        }
    }

    /// `retry.backoff.ms`, doubling per attempt up to `retry.backoff.max.ms`.
    pub(super) fn backoff(&self, attempt: u32) -> Duration {
        self.retry_backoff
            .saturating_mul(1 << attempt.min(16))
            .min(self.retry_backoff_max)
    }
}

/// The producer id and epoch; an error before `init_transactions` completed.
fn producer(pipeline: &Pipeline) -> Result<(i64, i16), Error> {
    pipeline
        .identity
        .as_ref()
        .and_then(|i| i.current())
        .ok_or_else(|| Error::TransactionState {
            call: "transaction",
            state: Phase::Uninitialized.describe(),
        })
}

/// The first error among per-partition codes, a retriable one only when there is no other:
/// OPERATION_NOT_ATTEMPTED marks the partitions held up by another's error.
fn first_error(codes: impl Iterator<Item = i16>) -> i16 {
    const OPERATION_NOT_ATTEMPTED: i16 = 55;
    let mut first = 0;
    for code in codes {
        match code {
            0 | OPERATION_NOT_ATTEMPTED => {}
            CONCURRENT_TRANSACTIONS
            | codes::COORDINATOR_LOAD_IN_PROGRESS
            | codes::NOT_COORDINATOR
            | codes::COORDINATOR_NOT_AVAILABLE => {
                if first == 0 {
                    first = code
                }
            }
            code => return code,
        }
    }
    first
}
