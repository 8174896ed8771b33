//! The in-memory cluster's transaction coordinator (broker 1 coordinates every transactional
//! id), as Kafka's behaves towards a client of transaction protocol v1: InitProducerId bumps
//! the epoch of a known id (fencing the producer before it), AddPartitionsToTxn and
//! AddOffsetsToTxn refuse an old epoch, EndTxn ends the transaction, and Produce of a
//! transactional batch is refused for a partition not added to its transaction, as brokers
//! from 3.6 verify (KIP-890 part 1). A test scripts error answers, or holds EndTxn.
//!
//! With `transaction.version` 2 set (transaction protocol v2, KIP-890 part 2), it also plays
//! v2 as Kafka 4 does, by request version: a transactional Produce v12 adds its partition,
//! TxnOffsetCommit v5 needs no AddOffsetsToTxn, and EndTxn v5 bumps the epoch and answers
//! with it. DescribeTransactions says whether the last transaction has completed; a test
//! makes it say "not yet" a number of times.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use kafka_protocol::messages::add_offsets_to_txn_response::AddOffsetsToTxnResponse;
use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResponse, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::describe_transactions_response::{
    DescribeTransactionsResponse, TransactionState,
};
use kafka_protocol::messages::end_txn_response::EndTxnResponse;
use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponse, TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::{
    AddOffsetsToTxnRequest, AddPartitionsToTxnRequest, DescribeTransactionsRequest, EndTxnRequest,
    InitProducerIdRequest, InitProducerIdResponse, ProducerId, TxnOffsetCommitRequest,
};
use kafka_protocol::protocol::StrBytes;

const INVALID_PRODUCER_EPOCH: i16 = 47;
const INVALID_TXN_STATE: i16 = 48;
const TRANSACTIONAL_ID_NOT_FOUND: i16 = 105;

/// The first versions of transaction protocol v2.
const PRODUCE_V2: i16 = 12;
const END_TXN_V2: i16 = 5;

/// One transactional id's producer and its open transaction.
struct Id {
    producer_id: i64,
    epoch: i16,
    /// Partitions in the open transaction.
    partitions: BTreeSet<(String, i32)>,
    /// Offsets sent with the open transaction, by group: `(topic, partition, offset)`.
    offsets: Vec<(String, (String, i32, i64))>,
}

/// The coordinator's state, and what a test asked of it.
#[derive(Default)]
pub(super) struct Txns {
    ids: BTreeMap<String, Id>,
    next_producer_id: i64,
    /// The APIs asked, in order (Produce of transactional batches included): for tests of
    /// what goes before what.
    pub asked: Vec<&'static str>,
    /// The next answers of an API (by name): these error codes, in turn.
    pub scripted: BTreeMap<&'static str, VecDeque<i16>>,
    /// EndTxn is read and not answered while set.
    pub hold_end: bool,
    /// Transactions ended: `(committed, partitions)`.
    pub ended: Vec<(bool, Vec<(String, i32)>)>,
    /// Offsets committed with transactions, by group.
    pub committed: BTreeMap<String, BTreeMap<(String, i32), i64>>,
    /// The cluster's `transaction.version` feature level.
    pub version: i16,
    /// The next DescribeTransactions answers that say the last transaction is completing.
    pub completing: usize,
}

impl Txns {
    fn scripted(&mut self, api: &'static str) -> Option<i16> {
        self.asked.push(api);
        self.scripted.get_mut(api)?.pop_front()
    }

    /// The error code for a request of `id` at `producer_id` and `epoch`: 0 when it is the
    /// current producer, INVALID_PRODUCER_EPOCH for an older epoch (v1 brokers say so).
    fn check(&self, id: &str, producer_id: i64, epoch: i16) -> Result<&Id, i16> {
        match self.ids.get(id) {
            Some(known) if known.producer_id == producer_id && known.epoch == epoch => Ok(known),
            Some(_) => Err(INVALID_PRODUCER_EPOCH),
            None => Err(INVALID_TXN_STATE),
        }
    }

    pub fn init(&mut self, asked: &InitProducerIdRequest) -> InitProducerIdResponse {
        let id = asked
            .transactional_id
            .as_ref()
            .expect("transactional")
            .0
            .to_string();
        if let Some(code) = self.scripted("InitProducerId") {
            return InitProducerIdResponse::default().with_error_code(code);
        }
        self.next_producer_id += 1;
        let fresh = 2000 + self.next_producer_id;
        let known = self.ids.entry(id).or_insert(Id {
            producer_id: fresh,
            epoch: -1,
            partitions: BTreeSet::new(),
            offsets: Vec::new(),
        });
        // A new epoch fences the producer before, and aborts what it left open.
        known.epoch += 1;
        known.partitions.clear();
        known.offsets.clear();
        InitProducerIdResponse::default()
            .with_producer_id(ProducerId(known.producer_id))
            .with_producer_epoch(known.epoch)
    }

    pub fn add_partitions(
        &mut self,
        asked: &AddPartitionsToTxnRequest,
    ) -> AddPartitionsToTxnResponse {
        let id = asked.v3_and_below_transactional_id.0.to_string();
        let scripted = self.scripted("AddPartitionsToTxn");
        let code = scripted.unwrap_or_else(|| {
            match self.check(
                &id,
                asked.v3_and_below_producer_id.0,
                asked.v3_and_below_producer_epoch,
            ) {
                Ok(_) => 0,
                Err(code) => code,
            }
        });
        let results = asked
            .v3_and_below_topics
            .iter()
            .map(|t| {
                if code == 0 {
                    let known = self.ids.get_mut(&id).expect("checked");
                    for &p in &t.partitions {
                        known.partitions.insert((t.name.0.to_string(), p));
                    }
                }
                AddPartitionsToTxnTopicResult::default()
                    .with_name(t.name.clone())
                    .with_results_by_partition(
                        t.partitions
                            .iter()
                            .map(|&p| {
                                AddPartitionsToTxnPartitionResult::default()
                                    .with_partition_index(p)
                                    .with_partition_error_code(code)
                            })
                            .collect(),
                    )
            })
            .collect();
        AddPartitionsToTxnResponse::default().with_results_by_topic_v3_and_below(results)
    }

    pub fn add_offsets(&mut self, asked: &AddOffsetsToTxnRequest) -> AddOffsetsToTxnResponse {
        let id = asked.transactional_id.0.to_string();
        let code = self.scripted("AddOffsetsToTxn").unwrap_or_else(|| {
            match self.check(&id, asked.producer_id.0, asked.producer_epoch) {
                Ok(_) => 0,
                Err(code) => code,
            }
        });
        AddOffsetsToTxnResponse::default().with_error_code(code)
    }

    pub fn commit_offsets(&mut self, asked: &TxnOffsetCommitRequest) -> TxnOffsetCommitResponse {
        let id = asked.transactional_id.0.to_string();
        let group = asked.group_id.0.to_string();
        let code = self.scripted("TxnOffsetCommit").unwrap_or_else(|| {
            match self.check(&id, asked.producer_id.0, asked.producer_epoch) {
                Ok(_) => 0,
                Err(code) => code,
            }
        });
        let topics = asked
            .topics
            .iter()
            .map(|t| {
                let partitions = t
                    .partitions
                    .iter()
                    .map(|p| {
                        if code == 0 {
                            let known = self.ids.get_mut(&id).expect("checked");
                            let offset =
                                (t.name.0.to_string(), p.partition_index, p.committed_offset);
                            known.offsets.push((group.clone(), offset));
                        }
                        TxnOffsetCommitResponsePartition::default()
                            .with_partition_index(p.partition_index)
                            .with_error_code(code)
                    })
                    .collect();
                TxnOffsetCommitResponseTopic::default()
                    .with_name(t.name.clone())
                    .with_partitions(partitions)
            })
            .collect();
        TxnOffsetCommitResponse::default().with_topics(topics)
    }

    /// EndTxn's answer, or `None` while EndTxn is held; `version` is the request's.
    pub fn end(
        &mut self,
        asked: &EndTxnRequest,
        version: i16,
        again: bool,
    ) -> Option<EndTxnResponse> {
        if self.hold_end {
            if !again {
                self.asked.push("EndTxn");
            }
            return None;
        }
        if !again {
            self.asked.push("EndTxn");
        }
        if let Some(code) = self
            .scripted
            .get_mut("EndTxn")
            .and_then(VecDeque::pop_front)
        {
            return Some(EndTxnResponse::default().with_error_code(code));
        }
        let id = asked.transactional_id.0.to_string();
        let code = match self.check(&id, asked.producer_id.0, asked.producer_epoch) {
            Ok(_) => 0,
            Err(code) => code,
        };
        if code == 0 {
            let known = self.ids.get_mut(&id).expect("checked");
            let partitions = std::mem::take(&mut known.partitions).into_iter().collect();
            let offsets = std::mem::take(&mut known.offsets);
            if asked.committed {
                for (group, (topic, partition, offset)) in offsets {
                    self.committed
                        .entry(group)
                        .or_default()
                        .insert((topic, partition), offset);
                }
            }
            self.ended.push((asked.committed, partitions));
            if version >= END_TXN_V2 && self.version >= 2 {
                // v2: every transaction ends with the next epoch.
                known.epoch += 1;
                return Some(
                    EndTxnResponse::default()
                        .with_producer_id(ProducerId(known.producer_id))
                        .with_producer_epoch(known.epoch),
                );
            }
        }
        Some(EndTxnResponse::default().with_error_code(code))
    }

    /// DescribeTransactions: `PrepareCommit` while `completing` says so, then `Ongoing` or
    /// `CompleteCommit`.
    pub fn describe(
        &mut self,
        asked: &DescribeTransactionsRequest,
    ) -> DescribeTransactionsResponse {
        self.asked.push("DescribeTransactions");
        let mut states = Vec::new();
        for id in &asked.transactional_ids {
            let answer = TransactionState::default().with_transactional_id(id.clone());
            let state = match self.ids.get(id.0.as_str()) {
                None => {
                    states.push(answer.with_error_code(TRANSACTIONAL_ID_NOT_FOUND));
                    continue;
                }
                Some(_) if self.completing > 0 => {
                    self.completing -= 1;
                    "PrepareCommit"
                }
                Some(known) if known.partitions.is_empty() => "CompleteCommit",
                Some(_) => "Ongoing",
            };
            states.push(answer.with_transaction_state(StrBytes::from_static_str(state)));
        }
        DescribeTransactionsResponse::default().with_transaction_states(states)
    }

    /// The error code for a transactional batch of `producer_id` at `epoch` for
    /// `topic[partition]`, sent with Produce `version`: 0 when its transaction holds the
    /// partition, or (v2) takes it now.
    pub fn produce(
        &mut self,
        producer_id: i64,
        epoch: i16,
        topic: &str,
        partition: i32,
        version: i16,
    ) -> i16 {
        self.asked.push("Produce");
        let v2 = version >= PRODUCE_V2 && self.version >= 2;
        let Some((_, known)) = self
            .ids
            .iter_mut()
            .find(|(_, k)| k.producer_id == producer_id)
        else {
            return INVALID_TXN_STATE;
        };
        if epoch < known.epoch {
            return INVALID_PRODUCER_EPOCH;
        }
        let partition = (topic.to_owned(), partition);
        if v2 {
            known.partitions.insert(partition);
            return 0;
        }
        match known.partitions.contains(&partition) {
            true => 0,
            false => INVALID_TXN_STATE,
        }
    }
}
