//! ListOffsets and Fetch for the consumer: one request per leader, answers decoded zero-copy.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;

use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{BrokerId, FetchRequest};

use super::Message;
use crate::cluster::{by_leader, by_topic, topic_name, Cluster, TopicPartition, EARLIEST, LATEST};
use crate::config::{AutoOffsetReset, ConsumerConfig};
use crate::error::{Error, KafkaCode};
use crate::protocol::codes;
use crate::protocol::records::{BatchDecoder, DecodeError};

/// What the consumer knows of its partitions between fetches.
#[derive(Default)]
pub(super) struct FetchState {
    /// Next offset to fetch, per assigned partition.
    pub positions: BTreeMap<TopicPartition, i64>,
    /// The high watermark each partition reported in its last fetch.
    pub high_watermarks: BTreeMap<TopicPartition, i64>,
    /// Assigned partitions not fetched until resumed.
    pub paused: BTreeSet<TopicPartition>,
    /// Fetched messages not yet handed out.
    pub buffered: VecDeque<Message>,
}

impl FetchState {
    /// Forgets everything: a new assignment follows.
    pub fn clear(&mut self) {
        *self = FetchState::default();
    }
}

/// Fetches once from every leader of the assigned, unpaused partitions and appends what
/// arrived to `state.buffered`, advancing positions. Returns true when a partition answered
/// with a retriable error (its leader moved, or the topic is still being created): the caller
/// backs off before the next fetch rather than asking again at once.
pub(super) async fn fetch_once(
    cluster: &Cluster,
    config: &ConsumerConfig,
    decompression_limit: usize,
    state: &mut FetchState,
) -> Result<bool, Error> {
    let FetchState {
        positions,
        high_watermarks,
        paused,
        buffered: out,
    } = state;
    let mut retriable = false;
    let active: Vec<TopicPartition> = positions
        .keys()
        .filter(|tp| !paused.contains(*tp))
        .cloned()
        .collect();
    let groups = by_leader(cluster, active).await?;
    let mut requests = tokio::task::JoinSet::new();
    for (leader, tps) in groups {
        let conn = cluster.broker(leader).await?;
        let topics = by_topic(tps.iter().map(|tp| (tp, positions[tp])))
            .into_iter()
            .map(|(topic, ps)| {
                FetchTopic::default()
                    .with_topic(topic_name(&topic))
                    .with_partitions(
                        ps.iter()
                            .map(|&(p, offset)| {
                                FetchPartition::default()
                                    .with_partition(p)
                                    .with_current_leader_epoch(-1)
                                    .with_fetch_offset(offset)
                                    .with_log_start_offset(-1)
                                    .with_partition_max_bytes(config.max_partition_fetch_bytes)
                            })
                            .collect(),
                    )
            })
            .collect();
        let request = FetchRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_max_wait_ms(config.fetch_wait_max.as_millis() as i32)
            .with_min_bytes(1)
            // A response must fit in receive.message.max.bytes (which also bounds this
            // function's decompression), with room for its headers.
            .with_max_bytes(
                config
                    .fetch_max_bytes
                    .min(decompression_limit.saturating_sub(512) as i32),
            )
            .with_isolation_level(0)
            .with_session_id(0)
            .with_session_epoch(-1)
            .with_topics(topics);
        let timeout = conn.request_timeout() + config.fetch_wait_max;
        requests.spawn(async move {
            let version = conn.version_of::<FetchRequest>()?;
            conn.request_at(&request, version, timeout).await
        });
    }
    let mut reset: Vec<TopicPartition> = Vec::new();
    // One decompression budget for the whole fetch: what compressed batches inflate to stays in
    // memory until the messages are handed out. Batches beyond it are fetched again later.
    let mut budget = decompression_limit;
    while let Some(joined) = requests.join_next().await {
        let response =
            joined.map_err(|e| Error::protocol("-", format!("fetch task failed: {e}")))??;
        if let Some(code) = KafkaCode::from_code(response.error_code) {
            return Err(Error::Broker {
                api: "Fetch",
                resource: "fetch session".into(),
                code,
                message: None,
            });
        }
        for t in response.responses {
            let topic: Arc<str> = Arc::from(t.topic.0.as_str());
            for p in t.partitions {
                let tp = (topic.clone(), p.partition_index);
                let Some(position) = positions.get_mut(&tp) else {
                    continue;
                };
                match p.error_code {
                    0 => {}
                    codes::OFFSET_OUT_OF_RANGE => {
                        reset.push(tp);
                        continue;
                    }
                    code => {
                        let code = KafkaCode::from_code(code).expect("non-zero");
                        if code.is_retriable() {
                            // Leadership moved or the topic is still being created.
                            cluster.invalidate_topic(&topic);
                            retriable = true;
                            continue;
                        }
                        return Err(Error::Broker {
                            api: "Fetch",
                            resource: format!("{topic}[{}]", p.partition_index),
                            code,
                            message: None,
                        });
                    }
                }
                high_watermarks.insert(tp.clone(), p.high_watermark);
                let Some(records) = p.records else { continue };
                let mut decoder = BatchDecoder::new(records, config.check_crcs, budget);
                while let Some(batch) = decoder.next() {
                    let batch = match batch {
                        Ok(batch) => batch,
                        // Over what is left of this fetch's budget, though within the whole:
                        // stop here, and fetch this batch again once the buffer is handed out.
                        Err(DecodeError::InflatesBeyond(_))
                            if decoder.budget() < decompression_limit =>
                        {
                            break
                        }
                        Err(e) => {
                            return Err(Error::CorruptBatch {
                                topic: topic.to_string(),
                                partition: p.partition_index,
                                reason: e.to_string(),
                            })
                        }
                    };
                    if !batch.is_control() {
                        out.extend(
                            batch
                                .records
                                .into_iter()
                                .filter(|r| r.offset >= *position)
                                .map(|r| Message {
                                    topic: topic.clone(),
                                    partition: p.partition_index,
                                    offset: r.offset,
                                    timestamp: r.timestamp,
                                    key: r.key,
                                    value: r.value,
                                    headers: r.headers,
                                }),
                        );
                    }
                    let next =
                        batch
                            .last_offset
                            .checked_add(1)
                            .ok_or_else(|| Error::CorruptBatch {
                                topic: topic.to_string(),
                                partition: p.partition_index,
                                reason: "last offset is i64::MAX".into(),
                            })?;
                    *position = (*position).max(next);
                }
                budget = decoder.budget();
            }
        }
    }
    if !reset.is_empty() {
        reset_offsets(cluster, config, positions, reset).await?;
    }
    Ok(retriable)
}

/// Applies `auto.offset.reset` to partitions whose position fell out of the log.
async fn reset_offsets(
    cluster: &Cluster,
    config: &ConsumerConfig,
    positions: &mut BTreeMap<TopicPartition, i64>,
    partitions: Vec<TopicPartition>,
) -> Result<(), Error> {
    let timestamp = match config.auto_offset_reset {
        AutoOffsetReset::Earliest => EARLIEST,
        AutoOffsetReset::Latest => LATEST,
        AutoOffsetReset::Error => {
            let (topic, partition) = &partitions[0];
            return Err(Error::Broker {
                api: "Fetch",
                resource: format!(
                    "{topic}[{partition}] at offset {}",
                    positions[&partitions[0]]
                ),
                code: KafkaCode::from_code(codes::OFFSET_OUT_OF_RANGE).expect("non-zero"),
                message: Some("auto.offset.reset is error".into()),
            });
        }
    };
    let offsets: HashMap<TopicPartition, i64> = cluster
        .list_offsets(&partitions, timestamp)
        .await?
        .into_iter()
        .collect();
    positions.extend(offsets);
    Ok(())
}
