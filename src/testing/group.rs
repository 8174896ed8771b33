//! The in-memory cluster's group coordinator (broker 1), for classic groups: FindCoordinator,
//! JoinGroup (with KIP-394's member id round trip), SyncGroup, Heartbeat, LeaveGroup,
//! OffsetCommit and OffsetFetch, with the rules a broker keeps. A JoinGroup or SyncGroup that
//! must wait for the other members is not ready (`Asked::Wait`) until they came, or until the
//! longest rebalance timeout passed and those missing were dropped. Sessions expire only when a
//! test says so ([`Group::expire`]).

use std::collections::BTreeMap;

use bytes::Bytes;
use kafka_protocol::messages::consumer_group_describe_response::{
    DescribedGroup as Kip848Group, Member as Kip848Member,
};
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponsePartition, OffsetFetchResponseTopic,
};
use kafka_protocol::messages::{
    BrokerId, FindCoordinatorResponse, HeartbeatRequest, HeartbeatResponse, JoinGroupRequest,
    JoinGroupResponse, LeaveGroupRequest, LeaveGroupResponse, OffsetCommitRequest,
    OffsetCommitResponse, OffsetFetchRequest, OffsetFetchResponse, SyncGroupRequest,
    SyncGroupResponse,
};
use kafka_protocol::messages::{
    ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse, DescribeGroupsRequest,
    DescribeGroupsResponse, GroupId,
};
use kafka_protocol::protocol::StrBytes;
use tokio::time::{Duration, Instant};

const UNKNOWN_MEMBER_ID: i16 = 25;
const ILLEGAL_GENERATION: i16 = 22;
const REBALANCE_IN_PROGRESS: i16 = 27;
const MEMBER_ID_REQUIRED: i16 = 79;
const GROUP_ID_NOT_FOUND: i16 = 69;

/// Whether an answer can go now.
pub(super) enum Asked<T> {
    Now(T),
    /// Ask again a little later: the round is not complete.
    Wait,
}

#[derive(Default)]
struct Member {
    protocols: Vec<(StrBytes, Bytes)>,
    rebalance_timeout: Duration,
    /// Joined in the round under way, waiting for it to complete.
    joined: bool,
}

/// One classic group.
#[derive(Default)]
pub(super) struct Group {
    generation: i32,
    members: BTreeMap<String, Member>,
    leader: Option<String>,
    protocol: Option<StrBytes>,
    /// A rebalance under way, and when it began.
    rebalancing: Option<Instant>,
    /// The leader's assignment of the current generation, once it sent it.
    assignments: Option<BTreeMap<String, Bytes>>,
    offsets: BTreeMap<(String, i32), i64>,
    next_id: u32,
}

impl Group {
    fn rebalance(&mut self) {
        if self.rebalancing.is_none() {
            self.rebalancing = Some(Instant::now());
            self.members.values_mut().for_each(|m| m.joined = false);
            self.assignments = None;
        }
    }

    /// Completes the round under way when every member joined, or when the longest rebalance
    /// timeout passed (dropping the members that did not come).
    fn settle(&mut self) {
        let Some(began) = self.rebalancing else {
            return;
        };
        let all = self.members.values().all(|m| m.joined);
        let patience = self.members.values().map(|m| m.rebalance_timeout).max();
        if !all && patience.is_none_or(|p| began.elapsed() < p) {
            return;
        }
        self.members.retain(|_, m| m.joined);
        self.generation += 1;
        self.rebalancing = None;
        if self
            .leader
            .as_ref()
            .is_none_or(|l| !self.members.contains_key(l))
        {
            self.leader = self.members.keys().next().cloned();
        }
        let leader = self.leader.as_ref().and_then(|l| self.members.get(l));
        self.protocol = leader
            .and_then(|l| l.protocols.first())
            .map(|(name, _)| name.clone());
        self.members.values_mut().for_each(|m| m.joined = false);
    }

    /// The error of a request made as `member` at `generation`, if any.
    fn check(&self, member: &str, generation: i32) -> Option<i16> {
        if !self.members.contains_key(member) {
            Some(UNKNOWN_MEMBER_ID)
        } else if generation != self.generation {
            Some(ILLEGAL_GENERATION)
        } else if self.rebalancing.is_some() {
            Some(REBALANCE_IN_PROGRESS)
        } else {
            None
        }
    }
}

pub(super) fn find_coordinator(host: String) -> FindCoordinatorResponse {
    FindCoordinatorResponse::default()
        .with_node_id(BrokerId(1))
        .with_host(StrBytes::from_string(host))
        .with_port(9092)
}

/// A JoinGroup; `again` when it is the same request asked again after a `Wait`.
pub(super) fn join(
    groups: &mut BTreeMap<String, Group>,
    asked: &JoinGroupRequest,
    version: i16,
    again: bool,
) -> Asked<JoinGroupResponse> {
    let group = groups.entry(asked.group_id.0.to_string()).or_default();
    let mut member_id = asked.member_id.to_string();
    if member_id.is_empty() {
        group.next_id += 1;
        member_id = format!("member-{}", group.next_id);
        if version >= 4 {
            // KIP-394: the member asks again with the id it was given.
            return Asked::Now(
                JoinGroupResponse::default()
                    .with_error_code(MEMBER_ID_REQUIRED)
                    .with_member_id(StrBytes::from_string(member_id)),
            );
        }
    }
    if !again {
        group.rebalance();
        let member = group.members.entry(member_id.clone()).or_default();
        member.protocols = asked
            .protocols
            .iter()
            .map(|p| (p.name.clone(), p.metadata.clone()))
            .collect();
        member.rebalance_timeout = Duration::from_millis(asked.rebalance_timeout_ms.max(0) as u64);
        member.joined = true;
    }
    group.settle();
    let Some(member) = group.members.get(&member_id) else {
        return Asked::Now(JoinGroupResponse::default().with_error_code(UNKNOWN_MEMBER_ID));
    };
    if member.joined {
        return Asked::Wait;
    }
    let protocol = group.protocol.clone().unwrap_or_default();
    let leader = group.leader.clone().unwrap_or_default();
    let members = match leader == member_id {
        true => group
            .members
            .iter()
            .map(|(id, m)| {
                let metadata = m.protocols.iter().find(|(n, _)| *n == protocol);
                JoinGroupResponseMember::default()
                    .with_member_id(StrBytes::from_string(id.clone()))
                    .with_metadata(metadata.map(|(_, b)| b.clone()).unwrap_or_default())
            })
            .collect(),
        false => Vec::new(),
    };
    Asked::Now(
        JoinGroupResponse::default()
            .with_generation_id(group.generation)
            .with_protocol_type(Some(StrBytes::from_static_str("consumer")))
            .with_protocol_name(Some(protocol))
            .with_leader(StrBytes::from_string(leader))
            .with_member_id(StrBytes::from_string(member_id))
            .with_members(members),
    )
}

pub(super) fn sync(
    groups: &mut BTreeMap<String, Group>,
    asked: &SyncGroupRequest,
) -> Asked<SyncGroupResponse> {
    let group = groups.entry(asked.group_id.0.to_string()).or_default();
    let member = asked.member_id.to_string();
    if let Some(code) = group.check(&member, asked.generation_id) {
        return Asked::Now(SyncGroupResponse::default().with_error_code(code));
    }
    if group.leader.as_deref() == Some(&*member) && group.assignments.is_none() {
        let assignments = asked
            .assignments
            .iter()
            .map(|a| (a.member_id.to_string(), a.assignment.clone()))
            .collect();
        group.assignments = Some(assignments);
    }
    let Some(assignments) = &group.assignments else {
        return Asked::Wait;
    };
    Asked::Now(
        SyncGroupResponse::default()
            .with_protocol_type(Some(StrBytes::from_static_str("consumer")))
            .with_protocol_name(group.protocol.clone())
            .with_assignment(assignments.get(&member).cloned().unwrap_or_default()),
    )
}

pub(super) fn heartbeat(
    groups: &mut BTreeMap<String, Group>,
    asked: &HeartbeatRequest,
) -> HeartbeatResponse {
    let group = groups.entry(asked.group_id.0.to_string()).or_default();
    let code = group.check(&asked.member_id, asked.generation_id);
    HeartbeatResponse::default().with_error_code(code.unwrap_or(0))
}

pub(super) fn leave(
    groups: &mut BTreeMap<String, Group>,
    asked: &LeaveGroupRequest,
) -> LeaveGroupResponse {
    let group = groups.entry(asked.group_id.0.to_string()).or_default();
    let mut leaving: Vec<String> = asked
        .members
        .iter()
        .map(|m| m.member_id.to_string())
        .collect();
    if !asked.member_id.is_empty() {
        leaving.push(asked.member_id.to_string());
    }
    let members = leaving
        .iter()
        .map(|id| {
            let code = match group.members.remove(id) {
                Some(_) => 0,
                None => UNKNOWN_MEMBER_ID,
            };
            MemberResponse::default()
                .with_member_id(StrBytes::from_string(id.clone()))
                .with_error_code(code)
        })
        .collect();
    if !group.members.is_empty() {
        group.rebalance();
    }
    LeaveGroupResponse::default().with_members(members)
}

pub(super) fn commit(
    groups: &mut BTreeMap<String, Group>,
    asked: &OffsetCommitRequest,
) -> OffsetCommitResponse {
    let group = groups.entry(asked.group_id.0.to_string()).or_default();
    let member = asked.member_id.to_string();
    let standalone = member.is_empty() && asked.generation_id_or_member_epoch < 0;
    let refused = match standalone {
        true => None,
        // A broker takes a commit of the current generation while it prepares a rebalance.
        false => group
            .check(&member, asked.generation_id_or_member_epoch)
            .filter(|&code| code != REBALANCE_IN_PROGRESS),
    };
    let topics = asked
        .topics
        .iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    if refused.is_none() {
                        let key = (t.name.0.to_string(), p.partition_index);
                        group.offsets.insert(key, p.committed_offset);
                    }
                    OffsetCommitResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(refused.unwrap_or(0))
                })
                .collect();
            OffsetCommitResponseTopic::default()
                .with_name(t.name.clone())
                .with_partitions(partitions)
        })
        .collect();
    OffsetCommitResponse::default().with_topics(topics)
}

impl Group {
    pub(super) fn generation(&self) -> i32 {
        self.generation
    }

    /// Every member's session expires at once: the members are dropped, and the group is
    /// empty at the next generation, as a broker leaves it.
    pub(super) fn expire(&mut self) {
        self.members.clear();
        self.leader = None;
        self.rebalancing = None;
        self.assignments = None;
        self.generation += 1;
    }
}

pub(super) fn fetch_offsets(
    groups: &mut BTreeMap<String, Group>,
    asked: &OffsetFetchRequest,
) -> OffsetFetchResponse {
    let group = groups.entry(asked.group_id.0.to_string()).or_default();
    let topics = asked
        .topics
        .iter()
        .flatten()
        .map(|t| {
            let partitions = t
                .partition_indexes
                .iter()
                .map(|&p| {
                    let key = (t.name.0.to_string(), p);
                    OffsetFetchResponsePartition::default()
                        .with_partition_index(p)
                        .with_committed_offset(group.offsets.get(&key).copied().unwrap_or(-1))
                        .with_committed_leader_epoch(-1)
                })
                .collect();
            OffsetFetchResponseTopic::default()
                .with_name(t.name.clone())
                .with_partitions(partitions)
        })
        .collect();
    OffsetFetchResponse::default().with_topics(topics)
}

/// DescribeGroups: a classic group with its members; a KIP-848 group (in `kip848`, with its
/// member ids) as one Kafka-compatible service answered it, an empty Stable group where Kafka
/// says GROUP_ID_NOT_FOUND; any other group Dead, as Kafka before 3.8 answers.
pub(super) fn describe(
    groups: &BTreeMap<String, Group>,
    kip848: &BTreeMap<String, Vec<String>>,
    asked: &DescribeGroupsRequest,
) -> DescribeGroupsResponse {
    let described = asked
        .groups
        .iter()
        .map(|id| {
            let name = id.0.to_string();
            let answer = DescribedGroup::default()
                .with_group_id(id.clone())
                .with_protocol_type(StrBytes::from_static_str("consumer"));
            match (groups.get(&name), kip848.contains_key(&name)) {
                (Some(g), _) if !g.members.is_empty() => answer
                    .with_group_state(StrBytes::from_static_str("Stable"))
                    .with_protocol_data(g.protocol.clone().unwrap_or_default())
                    .with_members(
                        g.members
                            .keys()
                            .map(|m| {
                                DescribedGroupMember::default()
                                    .with_member_id(StrBytes::from_string(m.clone()))
                            })
                            .collect(),
                    ),
                (_, true) => answer.with_group_state(StrBytes::from_static_str("Stable")),
                _ => answer
                    .with_group_state(StrBytes::from_static_str("Dead"))
                    .with_protocol_type(StrBytes::default()),
            }
        })
        .collect();
    DescribeGroupsResponse::default().with_groups(described)
}

/// ConsumerGroupDescribe: a KIP-848 group (in `kip848`) with its members; any other group
/// GROUP_ID_NOT_FOUND, as Kafka answers for a classic group.
pub(super) fn consumer_group_describe(
    kip848: &BTreeMap<String, Vec<String>>,
    asked: &ConsumerGroupDescribeRequest,
) -> ConsumerGroupDescribeResponse {
    let described = asked
        .group_ids
        .iter()
        .map(|id| match kip848.get(id.0.as_str()) {
            Some(members) => Kip848Group::default()
                .with_group_id(GroupId(id.0.clone()))
                .with_group_state(StrBytes::from_static_str("Stable"))
                .with_assignor_name(StrBytes::from_static_str("uniform"))
                .with_members(
                    members
                        .iter()
                        .map(|m| {
                            Kip848Member::default().with_member_id(StrBytes::from_string(m.clone()))
                        })
                        .collect(),
                ),
            None => Kip848Group::default()
                .with_group_id(GroupId(id.0.clone()))
                .with_error_code(GROUP_ID_NOT_FOUND),
        })
        .collect();
    ConsumerGroupDescribeResponse::default().with_groups(described)
}
