//! The in-memory cluster's partitions and their logs, as the brokers serve them: Metadata,
//! Fetch, ListOffsets and Produce (a transactional batch checked with the transaction
//! coordinator, [`super::txn`]).

use bytes::{Buf, BytesMut};
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{
    BrokerId, FetchRequest, FetchResponse, ListOffsetsRequest, ListOffsetsResponse,
    MetadataRequest, MetadataResponse, ProduceRequest, ProduceResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use super::{Partition, State};

pub(super) fn metadata(state: &State, asked: MetadataRequest) -> MetadataResponse {
    let names: Vec<String> = match asked.topics {
        None => state.topics.keys().cloned().collect(),
        Some(topics) => topics
            .iter()
            .filter_map(|t| t.name.as_ref().map(|n| n.0.to_string()))
            .collect(),
    };
    let topics = names
        .into_iter()
        .map(|name| {
            let topic = MetadataResponseTopic::default()
                .with_name(Some(TopicName(StrBytes::from_string(name.clone()))))
                .with_topic_id(super::share::topic_id(&name));
            let Some(partitions) = state.topics.get(&name) else {
                return topic.with_error_code(3); // UNKNOWN_TOPIC_OR_PARTITION
            };
            topic.with_partitions(
                partitions
                    .iter()
                    .enumerate()
                    .map(|(i, p)| {
                        MetadataResponsePartition::default()
                            .with_partition_index(i as i32)
                            .with_leader_id(BrokerId(p.leader))
                            .with_leader_epoch(p.leader_epoch)
                            .with_replica_nodes(vec![BrokerId(p.leader)])
                            .with_isr_nodes(vec![BrokerId(p.leader)])
                    })
                    .collect(),
            )
        })
        .collect();
    let brokers = state
        .brokers
        .keys()
        .map(|&node| {
            MetadataResponseBroker::default()
                .with_node_id(BrokerId(node))
                .with_host(StrBytes::from_string(format!("mem-{}-{node}", state.id)))
                .with_port(9092)
        })
        .collect();
    MetadataResponse::default()
        .with_brokers(brokers)
        .with_controller_id(BrokerId(1))
        .with_topics(topics)
}

/// `topic[partition]` when broker `node` leads it, or the error code a broker answers:
/// UNKNOWN_TOPIC_OR_PARTITION or NOT_LEADER_OR_FOLLOWER.
fn led<'a>(
    state: &'a mut State,
    topic: &str,
    partition: i32,
    node: i32,
) -> Result<&'a mut Partition, i16> {
    let found = state.topics.get_mut(topic);
    match found.and_then(|parts| parts.get_mut(partition as usize)) {
        None => Err(3),
        Some(p) if p.leader != node => Err(6),
        Some(p) => Ok(p),
    }
}

/// The records of each partition asked from `fetch_offset` on, as the log holds them (whole
/// batches, each with its base offset set where the log put it), up to the partition's limit.
pub(super) fn fetch(state: &mut State, node: i32, asked: &FetchRequest) -> FetchResponse {
    if let Some(broker) = state.brokers.get_mut(&node) {
        broker.fetch_requests += 1;
    }
    let rack = !asked.rack_id.is_empty();
    let responses = asked
        .topics
        .iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let answer = PartitionData::default()
                        .with_partition_index(p.partition)
                        .with_preferred_read_replica(BrokerId(-1));
                    let topic = t.topic.0.as_str();
                    let named = state
                        .topics
                        .get(topic)
                        .and_then(|parts| parts.get(p.partition as usize))
                        .and_then(|part| part.read_replica);
                    // The replica a leader named serves the partition as the leader does.
                    let serves = match named {
                        Some(replica) if replica == node => state
                            .topics
                            .get(topic)
                            .map_or(node, |parts| parts[p.partition as usize].leader),
                        _ => node,
                    };
                    let partition = match led(state, topic, p.partition, serves) {
                        Ok(partition) => partition,
                        Err(code) => return answer.with_error_code(code),
                    };
                    let end = partition.next_offset;
                    let answer = answer
                        .with_high_watermark(end)
                        .with_last_stable_offset(end)
                        .with_log_start_offset(0);
                    if let (true, Some(replica)) = (rack, named) {
                        if replica != node {
                            // The leader names the replica, with no records.
                            return answer.with_preferred_read_replica(BrokerId(replica));
                        }
                    }
                    if p.fetch_offset > end {
                        return answer.with_error_code(1); // OFFSET_OUT_OF_RANGE
                    }
                    let mut records = BytesMut::new();
                    for (base, batch) in &partition.log {
                        let count = (&batch[57..61]).get_i32() as i64;
                        if base + count <= p.fetch_offset {
                            continue;
                        }
                        if !records.is_empty()
                            && records.len() + batch.len() > p.partition_max_bytes as usize
                        {
                            break;
                        }
                        let at = records.len();
                        records.extend_from_slice(batch);
                        // The base offset is outside the batch's CRC: the log sets it.
                        records[at..at + 8].copy_from_slice(&base.to_be_bytes());
                    }
                    answer.with_records(Some(records.freeze()))
                })
                .collect();
            FetchableTopicResponse::default()
                .with_topic(t.topic.clone())
                .with_partitions(partitions)
        })
        .collect();
    FetchResponse::default().with_responses(responses)
}

/// The earliest (0) or latest offset of each partition asked.
pub(super) fn list_offsets(state: &State, asked: &ListOffsetsRequest) -> ListOffsetsResponse {
    let topics = asked
        .topics
        .iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let answer = ListOffsetsPartitionResponse::default()
                        .with_partition_index(p.partition_index);
                    let Some(partition) = state
                        .topics
                        .get(t.name.0.as_str())
                        .and_then(|parts| parts.get(p.partition_index as usize))
                    else {
                        return answer.with_error_code(3);
                    };
                    let offset = match p.timestamp {
                        -2 => 0,
                        _ => partition.next_offset,
                    };
                    answer
                        .with_offset(offset)
                        .with_timestamp(-1)
                        .with_leader_epoch(partition.leader_epoch)
                })
                .collect();
            ListOffsetsTopicResponse::default()
                .with_name(t.name.clone())
                .with_partitions(partitions)
        })
        .collect();
    ListOffsetsResponse::default().with_topics(topics)
}

pub(super) fn produce(
    state: &mut State,
    node: i32,
    asked: &ProduceRequest,
    version: i16,
) -> ProduceResponse {
    let responses = asked
        .topic_data
        .iter()
        .map(|t| {
            let partitions = t
                .partition_data
                .iter()
                .map(|p| {
                    let answer = PartitionProduceResponse::default()
                        .with_index(p.index)
                        .with_log_append_time_ms(-1);
                    let partition = match led(state, t.name.0.as_str(), p.index, node) {
                        Ok(partition) => partition,
                        Err(code) => return answer.with_error_code(code),
                    };
                    if let Some((code, left)) = &mut partition.refuse {
                        let code = *code;
                        *left -= 1;
                        if *left == 0 {
                            partition.refuse = None;
                        }
                        return answer.with_error_code(code);
                    }
                    let batch = p.records.clone().unwrap_or_default();
                    // A transactional batch (attributes at byte 21, bit 4) goes only into a
                    // partition its transaction holds.
                    if (&batch[21..23]).get_i16() & 0x10 != 0 {
                        let (id, epoch) = ((&batch[43..51]).get_i64(), (&batch[51..53]).get_i16());
                        let code =
                            state
                                .txns
                                .produce(id, epoch, t.name.0.as_str(), p.index, version);
                        if code != 0 {
                            return answer.with_error_code(code);
                        }
                    }
                    let partition = match led(state, t.name.0.as_str(), p.index, node) {
                        Ok(partition) => partition,
                        Err(code) => return answer.with_error_code(code),
                    };
                    // A v2 batch header holds its record count at byte 57.
                    let count = (&batch[57..61]).get_i32() as i64;
                    let base = partition.next_offset;
                    partition.next_offset += count;
                    partition.log.push((base, batch));
                    answer.with_base_offset(base)
                })
                .collect();
            TopicProduceResponse::default()
                .with_name(t.name.clone())
                .with_partition_responses(partitions)
        })
        .collect();
    ProduceResponse::default().with_responses(responses)
}
