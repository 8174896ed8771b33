//! The in-memory cluster's transaction coordinator (broker 1 coordinates every transactional
//! id), as Kafka's behaves towards a client of transaction protocol v1: InitProducerId bumps
//! the epoch of a known id (fencing the producer before it), AddPartitionsToTxn and
//! AddOffsetsToTxn refuse an old epoch, EndTxn ends the transaction, and Produce of a
//! transactional batch is refused for a partition not added to its transaction, as brokers
//! from 3.6 verify (KIP-890 part 1). A test scripts error answers, or holds EndTxn.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use kafka_protocol::messages::add_offsets_to_txn_response::AddOffsetsToTxnResponse;
use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResponse, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::end_txn_response::EndTxnResponse;
use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponse, TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::{
    AddOffsetsToTxnRequest, AddPartitionsToTxnRequest, EndTxnRequest, InitProducerIdRequest,
    InitProducerIdResponse, ProducerId, TxnOffsetCommitRequest,
};

const INVALID_PRODUCER_EPOCH: i16 = 47;
const INVALID_TXN_STATE: i16 = 48;

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

    /// EndTxn's answer, or `None` while EndTxn is held.
    pub fn end(&mut self, asked: &EndTxnRequest, again: bool) -> Option<EndTxnResponse> {
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
        }
        Some(EndTxnResponse::default().with_error_code(code))
    }

    /// The error code for a transactional batch of `producer_id` at `epoch` for
    /// `topic[partition]`: 0 when its transaction holds the partition.
    pub fn produce(&mut self, producer_id: i64, epoch: i16, topic: &str, partition: i32) -> i16 {
        self.asked.push("Produce");
        let Some((_, known)) = self.ids.iter().find(|(_, k)| k.producer_id == producer_id) else {
            return INVALID_TXN_STATE;
        };
        if epoch < known.epoch {
            return INVALID_PRODUCER_EPOCH;
        }
        match known.partitions.contains(&(topic.to_owned(), partition)) {
            true => 0,
            false => INVALID_TXN_STATE,
        }
    }
}
