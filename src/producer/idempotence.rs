//! The idempotent producer's identity: a producer id and epoch from InitProducerId, and the next
//! sequence number of every partition. Brokers drop a batch whose sequence they have already
//! written, so a batch retried with the same stamp after an unknown outcome is written once.
//!
//! ```text
//!  InitProducerId ─► (id, epoch) ─► each batch, when first sent: sequence = next[partition]
//!        ▲                                          next[partition] += records
//!        └─ a stamped batch failed for good, or the broker lost our sequence:
//!           bump the epoch (KIP-360; a new id on brokers before 2.5) and start sequences at 0
//! ```
//!
//! One batch per partition is in flight at a time, so sequences are handed out in queue order.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use kafka_protocol::messages::{InitProducerIdRequest, ProducerId};

use super::accumulator::ReadyBatch;
use crate::cluster::Cluster;
use crate::error::{Error, KafkaCode, Resource};
use crate::protocol::records::ProducerFields;

/// The first InitProducerId version that bumps the epoch of an existing producer id.
const BUMPS_EPOCH: i16 = 3;

#[derive(Default)]
struct State {
    /// Producer id and epoch, once initialised.
    current: Option<(i64, i16)>,
    /// Next sequence per topic and partition.
    sequences: HashMap<(Arc<str>, i32), i32>,
    /// A sequence gap opened: get a new epoch before the next batch goes.
    reset: bool,
    /// Producer ids and epochs taken so far, for the statistics.
    taken: u64,
}

/// Producer id, epoch and sequences, shared by the sinks.
#[derive(Default)]
pub(crate) struct Identity {
    state: Mutex<State>,
    /// Held while InitProducerId is out, so that sinks needing an epoch at once ask once.
    init: tokio::sync::Mutex<()>,
    /// The producer is transactional: its id and epoch come from the transaction coordinator
    /// (`init_transactions`, and after an abort that needs a new epoch), never from `ensure`.
    transactional: bool,
}

impl Identity {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("identity lock")
    }

    /// The identity of a transactional producer.
    pub fn transactional() -> Self {
        Identity {
            transactional: true,
            ..Identity::default()
        }
    }

    /// The producer id and epoch, once there are some.
    pub fn current(&self) -> Option<(i64, i16)> {
        self.state().current
    }

    /// Takes up `id` and `epoch` from the transaction coordinator; sequences start again.
    pub fn set(&self, id: i64, epoch: i16) {
        let mut state = self.state();
        state.current = Some((id, epoch));
        state.taken += 1;
        state.sequences.clear();
        state.reset = false;
    }

    /// For the statistics: the producer id and epoch, how many were taken, and whether a new
    /// one is needed.
    pub fn statistics(&self) -> (Option<(i64, i16)>, u64, bool) {
        let state = self.state();
        (state.current, state.taken, state.reset)
    }

    /// True when a batch of the current epoch failed in a way that leaves its partition's
    /// sequence unknown: a transactional producer must abort and bump its epoch.
    pub fn sequence_was_broken(&self) -> bool {
        self.state().reset
    }

    /// True until InitProducerId succeeded, and again after a sequence gap.
    pub fn needs_init(&self) -> bool {
        let state = self.state();
        state.current.is_none() || state.reset
    }

    /// Makes sure there is a producer id and a current epoch: asks for one when there is none
    /// (or the current one had a sequence gap), once for all the sinks that need it.
    ///
    /// Cancel-safe: a cancelled request leaves the identity as it was, and the next call asks.
    pub async fn ensure(&self, cluster: &Cluster) -> Result<(), Error> {
        if !self.needs_init() {
            return Ok(());
        }
        if self.transactional {
            // The records of a transaction whose sequence broke wait for its abort, which
            // gets the new epoch; before init_transactions nothing is sent at all.
            return Err(match self.current() {
                None => Error::TransactionState {
                    call: "produce",
                    state: "init_transactions has not completed".into(),
                },
                Some(_) => super::transaction::sequence_unknown(),
            });
        }
        let _asking = self.init.lock().await;
        match self.needs_init() {
            true => self.init(cluster).await,
            false => Ok(()),
        }
    }

    /// Asks the cluster for a producer id, or for the next epoch of the current one.
    async fn init(&self, cluster: &Cluster) -> Result<(), Error> {
        let current = self.state().current;
        let conn = cluster.any_broker().await?;
        let version = conn.version_of::<InitProducerIdRequest>()?;
        let (id, epoch) = match current {
            Some((id, epoch)) if version >= BUMPS_EPOCH => (id, epoch),
            _ => (-1, -1),
        };
        // kafka-protocol's default transactional id is "", not null: set it to null explicitly.
        let request = InitProducerIdRequest::default()
            .with_transactional_id(None)
            // No transaction: the Java client sends i32::MAX here too.
            .with_transaction_timeout_ms(i32::MAX)
            .with_producer_id(ProducerId(id))
            .with_producer_epoch(epoch);
        let response = conn
            .request_at(&request, version, conn.socket_timeout())
            .await?;
        if let Some(code) = KafkaCode::from_code(response.error_code) {
            return Err(Error::Broker {
                api: "InitProducerId",
                resource: Resource::Broker(conn.broker().to_owned()),
                code,
                message: None,
            });
        }
        let mut state = self.state();
        state.current = Some((response.producer_id.0, response.producer_epoch));
        state.taken += 1;
        state.sequences.clear();
        state.reset = false;
        tracing::debug!(
            producer_id = response.producer_id.0,
            epoch = response.producer_epoch,
            "idempotent producer initialised"
        );
        Ok(())
    }

    /// The fields `batch` goes with: its stamp when that is of the current epoch (a retry),
    /// otherwise the partition's next sequence.
    pub fn stamp(&self, batch: &ReadyBatch) -> Result<ProducerFields, Error> {
        let mut state = self.state();
        let (id, epoch) = state.current.ok_or(Error::Closed)?;
        if let Some(stamp) = batch.stamp() {
            if (stamp.producer_id, stamp.producer_epoch) == (id, epoch) {
                return Ok(stamp);
            }
        }
        let next = state
            .sequences
            .entry((batch.topic.clone(), batch.partition))
            .or_insert(0);
        let base_sequence = *next;
        // Sequences wrap to 0 after i32::MAX, as in the Java client.
        *next = ((*next as i64 + batch.records as i64) % (i32::MAX as i64 + 1)) as i32;
        Ok(ProducerFields {
            producer_id: id,
            producer_epoch: epoch,
            base_sequence,
            transactional: self.transactional,
        })
    }

    /// The sequence of `batch`'s partition can no longer be trusted (the batch failed for good
    /// after it may have been written, or the broker refused its sequence): when the batch was
    /// stamped with the current epoch, get a new epoch before sending more.
    pub fn sequence_broken(&self, batch: &ReadyBatch) {
        let mut state = self.state();
        let current = state.current;
        if let (Some(stamp), Some((id, epoch))) = (batch.stamp(), current) {
            if (stamp.producer_id, stamp.producer_epoch) == (id, epoch) {
                state.reset = true;
            }
        }
    }
}
