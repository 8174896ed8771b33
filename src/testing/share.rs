//! Share groups on the in-memory cluster (KIP-932), kept as Kafka keeps them: broker 1
//! coordinates the groups (ShareGroupHeartbeat: every member is assigned every partition of
//! its topics), and each partition's leader hands records out (ShareFetch) to one member at a
//! time, under an acquisition lock, counting deliveries, and takes their acknowledgements
//! (ShareFetch, ShareAcknowledge) within a share session per member and broker.
//!
//! ```text
//!  record: available ──ShareFetch──► acquired (member, lock until) ──ACCEPT/REJECT/GAP──► done
//!              ▲                              │
//!              └── RELEASE, lock expired, session closed (epoch -1), connection lost ──┘
//!                  (archived instead once delivered `limit` times)
//! ```
//!
//! A group reads each partition from offset 0 (`share.auto.offset.reset=earliest`).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use bytes::{Buf, BytesMut};
use kafka_protocol::messages::share_acknowledge_response::{
    PartitionData as AckPartition, ShareAcknowledgeTopicResponse,
};
use kafka_protocol::messages::share_fetch_response::{
    AcquiredRecords, PartitionData, ShareFetchableTopicResponse,
};
use kafka_protocol::messages::share_group_heartbeat_response::{Assignment, TopicPartitions};
use kafka_protocol::messages::{
    ShareAcknowledgeRequest, ShareAcknowledgeResponse, ShareFetchRequest, ShareFetchResponse,
    ShareGroupHeartbeatRequest, ShareGroupHeartbeatResponse,
};
use tokio::time::Instant;

use super::State;

const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const NOT_LEADER_OR_FOLLOWER: i16 = 6;
const UNKNOWN_MEMBER_ID: i16 = 25;
const INVALID_REQUEST: i16 = 42;
const INVALID_RECORD_STATE: i16 = 121;
const SHARE_SESSION_NOT_FOUND: i16 = 122;
const INVALID_SHARE_SESSION_EPOCH: i16 = 123;

/// The id the in-memory cluster gives `topic` (never 0).
pub(super) fn topic_id(topic: &str) -> uuid::Uuid {
    let mut h: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
    for b in topic.bytes() {
        h = (h ^ b as u128).wrapping_mul(0x0000_0000_0100_0000_0000_0000_0000_013b);
    }
    uuid::Uuid::from_u128(h | 1)
}

/// A member's session with a broker: (group, member, broker).
type SessionKey = (String, String, i32);
/// A partition's acknowledgement batches: (first, last, types).
type Batches = Vec<(i64, i64, Vec<i8>)>;

/// What a record is to its group.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Held {
    Available,
    Acquired {
        member: String,
        until: Instant,
    },
    /// Acknowledged, rejected or archived.
    Done,
}

#[derive(Debug, Clone)]
struct Record {
    held: Held,
    deliveries: i16,
}

/// One member's share session with one broker.
struct Session {
    epoch: i32,
    partitions: BTreeSet<(String, i32)>,
    /// The connection it lives on: when that closes, the session ends.
    conn: u64,
}

#[derive(Default)]
struct Group {
    epoch: i32,
    /// Member id → subscribed topics.
    members: BTreeMap<String, Vec<String>>,
}

/// The share groups of the cluster.
pub(super) struct Shares {
    groups: BTreeMap<String, Group>,
    /// Per (group, topic, partition): the records handed out at least once, by offset.
    records: BTreeMap<(String, String, i32), BTreeMap<i64, Record>>,
    /// Per (group, member, broker).
    sessions: BTreeMap<SessionKey, Session>,
    /// A ShareFetch's acknowledgement results, kept while it waits for records.
    results: BTreeMap<SessionKey, Vec<(String, i32, i16)>>,
    /// How long a member holds a record it acquired.
    pub lock: Duration,
    /// Deliveries after which a record released (or whose lock ran out) is archived.
    pub limit: i16,
    /// Every acknowledgement the brokers took: (topic, partition, first, last, type).
    pub acknowledged: Vec<(String, i32, i64, i64, i8)>,
    /// ShareFetch and ShareAcknowledge requests read, and the epochs they carried.
    pub epochs: Vec<(&'static str, i32)>,
}

impl Default for Shares {
    fn default() -> Self {
        Shares {
            groups: BTreeMap::new(),
            records: BTreeMap::new(),
            sessions: BTreeMap::new(),
            results: BTreeMap::new(),
            lock: Duration::from_secs(30),
            limit: 5,
            acknowledged: Vec::new(),
            epochs: Vec::new(),
        }
    }
}

impl Shares {
    /// Ends every session, as if each member's connection went: the next request names a
    /// session the broker no longer has. The records stay acquired.
    pub fn forget_sessions(&mut self) {
        self.sessions.clear();
    }

    /// The sessions on connection `conn` end with it, and their records are released.
    pub fn disconnected(&mut self, conn: u64) {
        let gone: Vec<SessionKey> = self
            .sessions
            .iter()
            .filter(|(_, s)| s.conn == conn)
            .map(|(k, _)| k.clone())
            .collect();
        for key in gone {
            self.close(&key);
        }
    }

    /// Ends a session and releases what its member holds on its partitions.
    fn close(&mut self, key: &SessionKey) {
        let Some(session) = self.sessions.remove(key) else {
            return;
        };
        let (group, member, _) = key;
        for (topic, partition) in session.partitions {
            if let Some(records) = self.records.get_mut(&(group.clone(), topic, partition)) {
                for r in records.values_mut() {
                    if matches!(&r.held, Held::Acquired { member: m, .. } if m == member) {
                        r.held = released(r.deliveries, self.limit);
                    }
                }
            }
        }
    }
}

fn released(deliveries: i16, limit: i16) -> Held {
    match deliveries >= limit {
        true => Held::Done,
        false => Held::Available,
    }
}

fn name_of(state: &State, id: uuid::Uuid) -> Option<String> {
    state.topics.keys().find(|t| topic_id(t) == id).cloned()
}

pub(super) fn heartbeat(
    state: &mut State,
    asked: &ShareGroupHeartbeatRequest,
) -> ShareGroupHeartbeatResponse {
    let member = asked.member_id.to_string();
    let group = state
        .shares
        .groups
        .entry(asked.group_id.0.to_string())
        .or_default();
    let answer = ShareGroupHeartbeatResponse::default()
        .with_member_id(Some(asked.member_id.clone()))
        .with_heartbeat_interval_ms(500);
    match asked.member_epoch {
        -1 => {
            group.members.remove(&member);
            return answer.with_member_epoch(-1);
        }
        0 => {
            group.epoch += 1;
            let topics = asked.subscribed_topic_names.clone().unwrap_or_default();
            let topics = topics.into_iter().map(|t| t.0.to_string()).collect();
            group.members.insert(member.clone(), topics);
        }
        _ if !group.members.contains_key(&member) => {
            return answer.with_error_code(UNKNOWN_MEMBER_ID);
        }
        _ => {
            if let Some(topics) = &asked.subscribed_topic_names {
                let topics = topics.iter().map(|t| t.0.to_string()).collect();
                group.members.insert(member.clone(), topics);
            }
        }
    }
    let epoch = group.epoch;
    let topics = group.members[&member].clone();
    let assigned = topics
        .iter()
        .filter_map(|t| {
            let partitions = state.topics.get(t)?;
            Some(
                TopicPartitions::default()
                    .with_topic_id(topic_id(t))
                    .with_partitions((0..partitions.len() as i32).collect()),
            )
        })
        .collect();
    answer
        .with_member_epoch(epoch)
        .with_assignment(Some(Assignment::default().with_topic_partitions(assigned)))
}

/// Applies one partition's acknowledgement batches of `member`; the partition's error code.
fn acknowledge(
    state: &mut State,
    group: &str,
    member: &str,
    topic: &str,
    partition: i32,
    batches: impl IntoIterator<Item = (i64, i64, Vec<i8>)>,
) -> i16 {
    let limit = state.shares.limit;
    let records = state
        .shares
        .records
        .entry((group.to_owned(), topic.to_owned(), partition))
        .or_default();
    let mut code = 0;
    for (first, last, kinds) in batches {
        for offset in first..=last {
            let kind = match kinds.len() {
                1 => kinds[0],
                _ => kinds[(offset - first) as usize],
            };
            let Some(r) = records.get_mut(&offset) else {
                code = INVALID_RECORD_STATE;
                continue;
            };
            if !matches!(&r.held, Held::Acquired { member: m, .. } if m == member) {
                code = INVALID_RECORD_STATE;
                continue;
            }
            r.held = match kind {
                2 => released(r.deliveries, limit),
                _ => Held::Done,
            };
        }
        if code == 0 {
            let kind = kinds.first().copied().unwrap_or_default();
            state
                .shares
                .acknowledged
                .push((topic.to_owned(), partition, first, last, kind));
        }
    }
    code
}

/// A ShareFetch read by broker `node` on connection `conn`, and whether its answer is ready
/// (records, acknowledgement results or an error); a request asked `again` (waiting for
/// records) only looks for records again.
pub(super) fn fetch(
    state: &mut State,
    node: i32,
    asked: &ShareFetchRequest,
    again: bool,
    conn: u64,
) -> (ShareFetchResponse, bool) {
    let group = asked
        .group_id
        .as_ref()
        .map(|g| g.0.to_string())
        .unwrap_or_default();
    let member = asked
        .member_id
        .as_ref()
        .map(|m| m.to_string())
        .unwrap_or_default();
    let key = (group.clone(), member.clone(), node);
    let top = |code: i16| (ShareFetchResponse::default().with_error_code(code), true);
    if !again {
        state
            .shares
            .epochs
            .push(("ShareFetch", asked.share_session_epoch));
        let named: Vec<((String, i32), Batches)> = asked
            .topics
            .iter()
            .filter_map(|t| Some((name_of(state, t.topic_id)?, t)))
            .flat_map(|(name, t)| {
                t.partitions.iter().map(move |p| {
                    let batches = p
                        .acknowledgement_batches
                        .iter()
                        .map(|b| (b.first_offset, b.last_offset, b.acknowledge_types.clone()))
                        .collect();
                    ((name.clone(), p.partition_index), batches)
                })
            })
            .collect();
        let forgotten: Vec<(String, i32)> = asked
            .forgotten_topics_data
            .iter()
            .filter_map(|t| Some((name_of(state, t.topic_id)?, t)))
            .flat_map(|(name, t)| t.partitions.iter().map(move |&p| (name.clone(), p)))
            .collect();
        match asked.share_session_epoch {
            0 => {
                if named.iter().any(|(_, batches)| !batches.is_empty()) {
                    return top(INVALID_REQUEST);
                }
                let partitions = named.into_iter().map(|(tp, _)| tp).collect();
                state.shares.sessions.insert(
                    key.clone(),
                    Session {
                        epoch: 1,
                        partitions,
                        conn,
                    },
                );
            }
            epoch => {
                let Some(session) = state.shares.sessions.get_mut(&key) else {
                    return top(SHARE_SESSION_NOT_FOUND);
                };
                if epoch != -1 && epoch != session.epoch {
                    return top(INVALID_SHARE_SESSION_EPOCH);
                }
                session.epoch += 1;
                for (tp, _) in &named {
                    session.partitions.insert(tp.clone());
                }
                for tp in &forgotten {
                    session.partitions.remove(tp);
                }
                let mut results = Vec::new();
                for ((topic, partition), batches) in named {
                    if !batches.is_empty() {
                        let code = acknowledge(state, &group, &member, &topic, partition, batches);
                        results.push((topic, partition, code));
                    }
                }
                if epoch == -1 {
                    state.shares.close(&key);
                    return (answer(Vec::new(), results, Vec::new()), true);
                }
                state.shares.results.insert(key.clone(), results);
            }
        }
    }
    let Some(session) = state.shares.sessions.get(&key) else {
        return top(SHARE_SESSION_NOT_FOUND);
    };
    let partitions: Vec<(String, i32)> = session.partitions.iter().cloned().collect();
    let mut budget = asked.max_records.max(0) as i64;
    let mut handed = Vec::new();
    let mut errors = Vec::new();
    for (topic, partition) in partitions {
        let leader = state
            .topics
            .get(&topic)
            .and_then(|parts| parts.get(partition as usize))
            .map(|p| p.leader);
        match leader {
            None => errors.push((topic, partition, UNKNOWN_TOPIC_OR_PARTITION)),
            Some(l) if l != node => errors.push((topic, partition, NOT_LEADER_OR_FOLLOWER)),
            Some(_) => {
                if budget > 0 {
                    if let Some(h) = acquire(state, &group, &member, &topic, partition, budget) {
                        budget -=
                            h.2.iter()
                                .map(|a| a.last_offset - a.first_offset + 1)
                                .sum::<i64>();
                        handed.push(h);
                    }
                }
            }
        }
    }
    let ready = !handed.is_empty()
        || !errors.is_empty()
        || state
            .shares
            .results
            .get(&key)
            .is_some_and(|r| !r.is_empty());
    let results = match ready {
        true => state.shares.results.remove(&key).unwrap_or_default(),
        false => Vec::new(),
    };
    let response = answer(handed, results, errors)
        .with_acquisition_lock_timeout_ms(state.shares.lock.as_millis() as i32);
    (response, ready)
}

/// Acquires up to `budget` available records of the partition for `member`: the batches they
/// are in, and the acquired ranges.
fn acquire(
    state: &mut State,
    group: &str,
    member: &str,
    topic: &str,
    partition: i32,
    budget: i64,
) -> Option<(String, i32, Vec<AcquiredRecords>, bytes::Bytes)> {
    let now = Instant::now();
    let (lock, limit) = (state.shares.lock, state.shares.limit);
    let log = &state.topics.get(topic)?.get(partition as usize)?;
    let end = log.next_offset;
    let records = state
        .shares
        .records
        .entry((group.to_owned(), topic.to_owned(), partition))
        .or_default();
    // Locks that ran out give the records back.
    for r in records.values_mut() {
        if matches!(r.held, Held::Acquired { until, .. } if until <= now) {
            r.held = released(r.deliveries, limit);
        }
    }
    let mut taken: Vec<(i64, i16)> = Vec::new();
    for offset in 0..end {
        if taken.len() as i64 >= budget {
            break;
        }
        let r = records.entry(offset).or_insert(Record {
            held: Held::Available,
            deliveries: 0,
        });
        if r.held != Held::Available {
            continue;
        }
        r.deliveries += 1;
        r.held = Held::Acquired {
            member: member.to_owned(),
            until: now + lock,
        };
        taken.push((offset, r.deliveries));
    }
    if taken.is_empty() {
        return None;
    }
    let mut ranges: Vec<AcquiredRecords> = Vec::new();
    for (offset, count) in &taken {
        match ranges.last_mut() {
            Some(a) if a.last_offset + 1 == *offset && a.delivery_count == *count => {
                a.last_offset = *offset
            }
            _ => ranges.push(
                AcquiredRecords::default()
                    .with_first_offset(*offset)
                    .with_last_offset(*offset)
                    .with_delivery_count(*count),
            ),
        }
    }
    // Whole batches that hold an acquired offset, each with the base offset the log gave it.
    let mut bytes = BytesMut::new();
    for (base, batch) in &log.log {
        let count = (&batch[57..61]).get_i32() as i64;
        if taken.iter().any(|(o, _)| *o >= *base && *o < base + count) {
            let at = bytes.len();
            bytes.extend_from_slice(batch);
            bytes[at..at + 8].copy_from_slice(&base.to_be_bytes());
        }
    }
    Some((topic.to_owned(), partition, ranges, bytes.freeze()))
}

/// A ShareFetch answer: records handed out, acknowledgement results, partition errors.
fn answer(
    handed: Vec<(String, i32, Vec<AcquiredRecords>, bytes::Bytes)>,
    results: Vec<(String, i32, i16)>,
    errors: Vec<(String, i32, i16)>,
) -> ShareFetchResponse {
    let mut by_topic: BTreeMap<String, BTreeMap<i32, PartitionData>> = BTreeMap::new();
    fn entry<'a>(
        by_topic: &'a mut BTreeMap<String, BTreeMap<i32, PartitionData>>,
        topic: &str,
        partition: i32,
    ) -> &'a mut PartitionData {
        by_topic
            .entry(topic.to_owned())
            .or_default()
            .entry(partition)
            .or_insert_with(|| {
                PartitionData::default()
                    .with_partition_index(partition)
                    .with_records(Some(bytes::Bytes::new()))
            })
    }
    for (topic, partition, acquired, records) in handed {
        let p = entry(&mut by_topic, &topic, partition);
        p.acquired_records = acquired;
        p.records = Some(records);
    }
    for (topic, partition, code) in results {
        entry(&mut by_topic, &topic, partition).acknowledge_error_code = code;
    }
    for (topic, partition, code) in errors {
        entry(&mut by_topic, &topic, partition).error_code = code;
    }
    ShareFetchResponse::default().with_responses(
        by_topic
            .into_iter()
            .map(|(topic, partitions)| {
                ShareFetchableTopicResponse::default()
                    .with_topic_id(topic_id(&topic))
                    .with_partitions(partitions.into_values().collect())
            })
            .collect(),
    )
}

pub(super) fn acknowledge_request(
    state: &mut State,
    node: i32,
    asked: &ShareAcknowledgeRequest,
) -> ShareAcknowledgeResponse {
    let group = asked
        .group_id
        .as_ref()
        .map(|g| g.0.to_string())
        .unwrap_or_default();
    let member = asked
        .member_id
        .as_ref()
        .map(|m| m.to_string())
        .unwrap_or_default();
    let key = (group.clone(), member.clone(), node);
    let epoch = asked.share_session_epoch;
    state.shares.epochs.push(("ShareAcknowledge", epoch));
    let top = |code: i16| ShareAcknowledgeResponse::default().with_error_code(code);
    if epoch == 0 {
        return top(INVALID_SHARE_SESSION_EPOCH);
    }
    let Some(session) = state.shares.sessions.get_mut(&key) else {
        return top(SHARE_SESSION_NOT_FOUND);
    };
    if epoch != -1 && epoch != session.epoch {
        return top(INVALID_SHARE_SESSION_EPOCH);
    }
    session.epoch += 1;
    let mut responses = Vec::new();
    for t in &asked.topics {
        let Some(topic) = name_of(state, t.topic_id) else {
            continue;
        };
        let mut partitions = Vec::new();
        for p in &t.partitions {
            let batches = p
                .acknowledgement_batches
                .iter()
                .map(|b| (b.first_offset, b.last_offset, b.acknowledge_types.clone()));
            let code = acknowledge(state, &group, &member, &topic, p.partition_index, batches);
            partitions.push(
                AckPartition::default()
                    .with_partition_index(p.partition_index)
                    .with_error_code(code),
            );
        }
        responses.push(
            ShareAcknowledgeTopicResponse::default()
                .with_topic_id(t.topic_id)
                .with_partitions(partitions),
        );
    }
    if epoch == -1 {
        state.shares.close(&key);
    }
    ShareAcknowledgeResponse::default().with_responses(responses)
}
