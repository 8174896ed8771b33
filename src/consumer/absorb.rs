//! A fetch round's answers taken in: records decoded (zero-copy) into messages for the
//! application, positions advanced, epochs noted (KIP-320), and partitions fallen out of their
//! log reset per `auto.offset.reset`.
//!
//! ```text
//!  Reply (one leader's answer) ─► per partition still at the offset asked:
//!      error ─► retriable: refresh soon │ OFFSET_OUT_OF_RANGE: reset │ other: Err
//!      records ─► BatchDecoder (one decompression budget per round) ─► aborted transactions
//!                 filtered ─► messages, position = last offset + 1, epoch of the batch
//! ```

use std::collections::HashMap;
use std::sync::Arc;

use super::fetch::{FetchState, Reply};
use super::Message;
use crate::cluster::{Cluster, TopicPartition, EARLIEST, LATEST};
use crate::config::{AutoOffsetReset, ConsumerConfig, IsolationLevel};
use crate::conn::Connection;
use crate::error::{Error, KafkaCode, Resource};
use crate::protocol::codes;
use crate::protocol::records::{AbortedTransactions, BatchDecoder, DecodeError};

/// Decodes a round's answers into `state.buffered`, advancing positions. An answer for a
/// partition no longer at the offset asked (sought, reset or revoked meanwhile) is dropped.
/// Returns true when a partition answered with a retriable error (its leader moved, or the
/// topic is still being created).
pub(super) async fn absorb(
    cluster: &Cluster,
    config: &ConsumerConfig,
    decompression_limit: usize,
    state: &mut FetchState,
    replies: Vec<Reply>,
) -> Result<bool, Error> {
    let FetchState {
        positions,
        high_watermarks,
        ends,
        read_replicas,
        paused,
        epochs,
        buffered: out,
        ..
    } = state;
    let mut retriable = false;
    let mut reset: Vec<TopicPartition> = Vec::new();
    // One decompression budget for the whole round: what compressed batches inflate to stays in
    // memory until the messages are handed out. Batches beyond it are fetched again later.
    let mut budget = decompression_limit;
    for Reply {
        broker,
        asked,
        response,
        conn,
    } in replies
    {
        // The broker always answers the first partition with records with at least one whole
        // batch (KIP-74), however large; later ones may end in part of one, fetched again.
        let mut first = true;
        for t in response.responses {
            let topic: Arc<str> = Arc::from(t.topic.0.as_str());
            for p in t.partitions {
                let tp = (topic.clone(), p.partition_index);
                // Whether the broker owed this partition a whole batch, counted before any
                // answer is dropped below.
                let present = p.records.as_ref().map_or(0, |r| r.len());
                let leads = first;
                first &= present == 0;
                let Some(position) = positions.get_mut(&tp) else {
                    continue;
                };
                if paused.contains(&tp) {
                    // Paused after this round went out: its records wait for the resume.
                    continue;
                }
                let Some(at) = asked.get(&tp).filter(|at| at.offset == *position) else {
                    continue;
                };
                // Read from a replica the leader named (KIP-392): at its first error, back to
                // the leader, which has the final word (a replica behind the leader answers
                // OFFSET_OUT_OF_RANGE for what it has not copied yet: no reset for that).
                let from_replica = read_replicas.get(&tp) == Some(&broker);
                if from_replica && p.error_code != 0 {
                    read_replicas.remove(&tp);
                    retriable = true;
                    continue;
                }
                let named = p.preferred_read_replica.0;
                if named >= 0 && named != broker {
                    tracing::debug!(
                        %topic, partition = tp.1, replica = named,
                        "reading from the replica the leader named (client.rack)"
                    );
                    read_replicas.insert(tp.clone(), named);
                }
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
                            cluster.refresh_soon(&topic);
                            retriable = true;
                            continue;
                        }
                        return Err(Error::Broker {
                            api: "Fetch",
                            resource: Resource::partition(&topic[..], p.partition_index),
                            code,
                            message: None,
                        });
                    }
                }
                high_watermarks.insert(tp.clone(), p.high_watermark);
                let stable = (config.isolation_level == IsolationLevel::ReadCommitted
                    && p.last_stable_offset >= 0)
                    .then_some(p.last_stable_offset);
                ends.insert(tp.clone(), stable.unwrap_or(p.high_watermark));
                let tp_epochs = epochs.entry(tp.clone()).or_default();
                tp_epochs.leader = at.leader_epoch;
                let Some(records) = p.records else { continue };
                // Under read_committed the broker lists the aborted transactions the records
                // overlap; under read_uncommitted it sends none, and only control batches drop.
                let mut aborted =
                    AbortedTransactions::new(p.aborted_transactions.as_deref().unwrap_or(&[]));
                let mut decoder = BatchDecoder::new(records, config.check_crcs, budget);
                let mut whole = 0;
                let mut over_budget = false;
                while let Some(batch) = decoder.next() {
                    let batch = match batch {
                        Ok(batch) => batch,
                        // Over what is left of this fetch's budget, though within the whole:
                        // stop here, and fetch this batch again once the buffer is handed out.
                        Err(DecodeError::InflatesBeyond(_))
                            if decoder.budget() < decompression_limit =>
                        {
                            over_budget = true;
                            break;
                        }
                        Err(e) => {
                            return Err(corrupt(&conn, &topic, p.partition_index, e.to_string()))
                        }
                    };
                    let delivered = aborted.delivers(&batch).map_err(|e| {
                        let reason = format!("batch at offset {}: {e}", batch.base_offset);
                        corrupt(&conn, &topic, p.partition_index, reason)
                    })?;
                    let (last_offset, leader_epoch) =
                        (batch.last_offset, batch.partition_leader_epoch);
                    if delivered {
                        let from = *position;
                        out.extend(
                            Message::of_batch(&topic, p.partition_index, batch)
                                .filter(|m| m.offset >= from),
                        );
                    }
                    let next = last_offset.checked_add(1).ok_or_else(|| {
                        let reason = "last offset is i64::MAX".to_owned();
                        corrupt(&conn, &topic, p.partition_index, reason)
                    })?;
                    *position = (*position).max(next);
                    tp_epochs.record = leader_epoch;
                    whole += 1;
                }
                if leads && present > 0 && whole == 0 && !over_budget {
                    // Nothing but part of a batch where a whole one is due: fetching again would
                    // get the same bytes forever.
                    let reason = format!(
                        "{present} bytes at offset {position} hold no whole batch (a batch claims \
                         more bytes than the broker sent)"
                    );
                    return Err(corrupt(&conn, &topic, p.partition_index, reason));
                }
                budget = decoder.budget();
            }
        }
    }
    if !reset.is_empty() {
        reset_offsets(cluster, config, state, reset).await?;
    }
    Ok(retriable)
}

/// The error for a batch of `topic[partition]` that does not decode. As for any answer that does
/// not decode, the connection it came on is closed: the next fetch opens a new one.
fn corrupt(conn: &Connection, topic: &str, partition: i32, reason: String) -> Error {
    let error = Error::CorruptBatch {
        topic: topic.to_owned(),
        partition,
        reason,
    };
    conn.poison(error.clone());
    error
}

/// Applies `auto.offset.reset` to partitions whose position fell out of the log.
pub(super) async fn reset_offsets(
    cluster: &Cluster,
    config: &ConsumerConfig,
    state: &mut FetchState,
    partitions: Vec<TopicPartition>,
) -> Result<(), Error> {
    let timestamp = match config.auto_offset_reset {
        AutoOffsetReset::Earliest => EARLIEST,
        AutoOffsetReset::Latest => LATEST,
        AutoOffsetReset::Error => {
            let (topic, partition) = &partitions[0];
            return Err(Error::Broker {
                api: "Fetch",
                resource: Resource::partition(topic, *partition),
                code: KafkaCode::from_code(codes::OFFSET_OUT_OF_RANGE).expect("non-zero"),
                message: Some(format!(
                    "position {}; auto.offset.reset is error",
                    state.positions[&partitions[0]]
                )),
            });
        }
    };
    let offsets: HashMap<TopicPartition, i64> = cluster
        .list_offsets(&partitions, timestamp, config.isolation_level.as_i8())
        .await?
        .into_iter()
        .collect();
    for (tp, offset) in offsets {
        // Where the position came from is no longer known.
        state.epochs.remove(&tp);
        state.positions.insert(tp, offset);
    }
    Ok(())
}
