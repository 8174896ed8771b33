//! KIP-320: a consumer's position is checked against a new leader's log before it reads there.
//! After an unclean leader election the new leader's log may end short of what the consumer
//! already read, and go on with other records at the same offsets; fetching on from the old
//! position would skip them without a word. So when a partition's leader epoch moves past the
//! one the position was fetched at, the new leader is asked (OffsetForLeaderEpoch) where the
//! epoch of the last record read ends in its log. Short of the position, the log diverged:
//! the position goes back to where it diverges (as the Java client does), or, with
//! `auto.offset.reset=error`, `recv` fails with [`Error::LogTruncated`].
//!
//! ```text
//!  Epochs { record: epoch of the last batch read, leader: epoch fetched at }
//!     metadata: leader epoch > epochs.leader ─► OffsetForLeaderEpoch(leader_epoch = record)
//!        end offset ≥ position: valid, fetch at the new epoch
//!        end offset < position: truncated ─► position = end offset (or LogTruncated)
//!        undefined: no such epoch left ─► auto.offset.reset
//! ```

use kafka_protocol::messages::offset_for_leader_epoch_request::{
    OffsetForLeaderPartition, OffsetForLeaderTopic,
};
use kafka_protocol::messages::{BrokerId, OffsetForLeaderEpochRequest};

use super::absorb::reset_offsets;
use super::fetch::FetchState;
use crate::cluster::{by_topic, topic_name, Cluster, TopicPartition};
use crate::config::{AutoOffsetReset, ConsumerConfig};
use crate::error::{Error, KafkaCode, Resource};

/// The leader epochs a partition's position hangs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Epochs {
    /// The epoch of the leader that wrote the last batch read (the one below the position);
    /// -1 when unknown (the position came from a commit, a reset or a seek).
    pub record: i32,
    /// The leader epoch the position was last fetched at or checked against; -1 before any.
    pub leader: i32,
}

impl Default for Epochs {
    fn default() -> Self {
        Epochs {
            record: -1,
            leader: -1,
        }
    }
}

impl Epochs {
    /// Whether the position must be checked before fetching from a leader at epoch `current`:
    /// the leader changed since the position was fetched, and the epoch of what was read
    /// is known.
    pub fn needs_check(&self, current: i32) -> bool {
        self.record >= 0 && self.leader >= 0 && current > self.leader
    }
}

/// One position the leader was asked about.
#[derive(Debug)]
pub(super) struct Checked {
    pub tp: TopicPartition,
    /// The position asked about: the answer holds only while it has not moved.
    pub position: i64,
    /// The leader epoch asked at.
    pub leader_epoch: i32,
    /// The epoch and end offset the leader gave, or its error.
    pub answer: Result<(i32, i64), KafkaCode>,
}

/// What a leader's answer says of a position.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Verdict {
    /// The leader's log holds everything below the position as read: fetch on.
    Valid,
    /// The log ends the epoch at `diverging`, short of the position: what was read beyond it
    /// is gone, and other records may stand at those offsets now.
    Truncated { diverging: i64, epoch: i32 },
    /// The leader knows no such epoch (its log starts later): reset as for an offset out of
    /// range.
    Unknown,
}

/// The verdict on `position` from the leader's `(epoch, end offset)`.
pub(super) fn verdict(position: i64, (epoch, end): (i32, i64)) -> Verdict {
    if epoch < 0 || end < 0 {
        Verdict::Unknown
    } else if end < position {
        Verdict::Truncated {
            diverging: end,
            epoch,
        }
    } else {
        Verdict::Valid
    }
}

/// Asks `leader` where the epoch of each position's last record ends in its log:
/// `(partition, position, epoch of the last record read, current leader epoch)`.
pub(super) async fn check(
    cluster: &Cluster,
    leader: i32,
    positions: Vec<(TopicPartition, i64, i32, i32)>,
) -> Result<Vec<Checked>, Error> {
    let conn = cluster.broker(leader).await?;
    if conn.version_of::<OffsetForLeaderEpochRequest>()? < 3 {
        // Before Kafka 2.3 the API serves followers only: nothing to check with, as for the
        // Java client. The positions stand.
        let valid = positions
            .into_iter()
            .map(|(tp, position, record, current)| Checked {
                tp,
                position,
                leader_epoch: current,
                answer: Ok((record, position)),
            });
        return Ok(valid.collect());
    }
    let topics = by_topic(
        positions
            .iter()
            .map(|(tp, _, record, current)| (tp, (*record, *current))),
    )
    .into_iter()
    .map(|(topic, partitions)| {
        OffsetForLeaderTopic::default()
            .with_topic(topic_name(topic))
            .with_partitions(
                partitions
                    .into_iter()
                    .map(|(p, (record, current))| {
                        OffsetForLeaderPartition::default()
                            .with_partition(p)
                            .with_current_leader_epoch(current)
                            .with_leader_epoch(record)
                    })
                    .collect(),
            )
    })
    .collect();
    // A consumer's replica id (v3 and later): -1.
    let request = OffsetForLeaderEpochRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(topics);
    let (response, _) = conn.request(&request).await?;
    let mut checked = Vec::with_capacity(positions.len());
    for (tp, position, _, leader_epoch) in positions {
        let answer = response
            .topics
            .iter()
            .filter(|t| t.topic.0.as_str() == &*tp.0)
            .flat_map(|t| &t.partitions)
            .find(|p| p.partition == tp.1)
            .ok_or_else(|| {
                Error::protocol(
                    conn.broker(),
                    format!("OffsetForLeaderEpoch answer lacks {}[{}]", tp.0, tp.1),
                )
            })?;
        let answer = match KafkaCode::from_code(answer.error_code) {
            Some(code) => Err(code),
            None => Ok((answer.leader_epoch, answer.end_offset)),
        };
        checked.push(Checked {
            tp,
            position,
            leader_epoch,
            answer,
        });
    }
    Ok(checked)
}

/// Applies what leaders said of positions checked against them (see [`validation`]), to those
/// that have not moved meanwhile. Returns true when a check is to be made again (the leader
/// moved on once more, or is not ready).
pub(super) async fn apply_checks(
    cluster: &Cluster,
    config: &ConsumerConfig,
    state: &mut FetchState,
    checked: Vec<Checked>,
) -> Result<bool, Error> {
    let mut again = false;
    let mut reset = Vec::new();
    for check in checked {
        let (topic, partition) = (&check.tp.0, check.tp.1);
        if state.positions.get(&check.tp) != Some(&check.position) {
            continue;
        }
        let answer = match check.answer {
            Ok(answer) => answer,
            Err(code) if code.is_retriable() => {
                cluster.refresh_soon(topic);
                again = true;
                continue;
            }
            Err(code) => {
                return Err(Error::Broker {
                    api: "OffsetForLeaderEpoch",
                    resource: Resource::partition(topic, partition),
                    code,
                    message: None,
                })
            }
        };
        match verdict(check.position, answer) {
            Verdict::Valid => {
                state.epochs.entry(check.tp).or_default().leader = check.leader_epoch;
            }
            Verdict::Unknown => reset.push(check.tp),
            Verdict::Truncated { diverging, epoch } => {
                if config.auto_offset_reset == AutoOffsetReset::Error {
                    return Err(Error::LogTruncated {
                        topic: topic.to_string(),
                        partition,
                        offset: check.position,
                        diverging,
                    });
                }
                tracing::warn!(
                    %topic, partition, position = check.position, diverging,
                    "the log was truncated under the consumer (an unclean leader election): \
                     reading on from where it diverges"
                );
                state.positions.insert(check.tp.clone(), diverging);
                state.truncated.push((check.tp.clone(), diverging));
                state
                    .buffered
                    .retain(|m| (&m.topic, m.partition) != (topic, partition));
                state.epochs.insert(
                    check.tp,
                    Epochs {
                        record: epoch,
                        leader: check.leader_epoch,
                    },
                );
            }
        }
    }
    if !reset.is_empty() {
        reset_offsets(cluster, config, state, reset).await?;
    }
    Ok(again)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_position_is_checked_when_the_leader_epoch_moves_on() {
        let read = Epochs {
            record: 3,
            leader: 3,
        };
        assert!(!read.needs_check(3));
        assert!(read.needs_check(4));
        // Metadata older than the fetch that set the position: nothing to check.
        assert!(!read.needs_check(2));
        // Without the epoch of what was read (a commit, a seek), nothing to ask.
        let committed = Epochs {
            record: -1,
            leader: 3,
        };
        assert!(!committed.needs_check(4));
        // Before the first fetch, or a broker without epochs.
        assert!(!Epochs::default().needs_check(4));
    }

    #[test]
    fn verdicts() {
        assert_eq!(verdict(200, (3, 250)), Verdict::Valid);
        assert_eq!(verdict(200, (3, 200)), Verdict::Valid);
        assert_eq!(
            verdict(200, (2, 150)),
            Verdict::Truncated {
                diverging: 150,
                epoch: 2
            }
        );
        assert_eq!(verdict(200, (-1, -1)), Verdict::Unknown);
        assert_eq!(verdict(200, (3, -1)), Verdict::Unknown);
    }
}
