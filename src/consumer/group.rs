//! Membership of a classic consumer group: find the coordinator, join, (as leader) assign,
//! sync, heartbeat, commit and fetch offsets, leave.
//!
//! ```text
//!  FindCoordinator ─► JoinGroup (MEMBER_ID_REQUIRED: again with the id given)
//!       ▲               │ leader: run the assignor over every member's subscription
//!       │               ▼
//!       │           SyncGroup ─► assignment ─► OffsetFetch ─► positions
//!       │               │
//!       └── rejoin ◄── Heartbeat task (own connection, every heartbeat.interval.ms):
//!                      REBALANCE_IN_PROGRESS, UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION, …
//! ```
//!
//! The coordinator gets two connections of its own: one for JoinGroup, SyncGroup and offsets
//! (a JoinGroup may wait for a whole rebalance) and one for heartbeats, so neither a long join
//! nor a long fetch ever delays a heartbeat.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    FindCoordinatorRequest, GroupId, HeartbeatRequest, JoinGroupRequest, LeaveGroupRequest,
    OffsetCommitRequest, OffsetFetchRequest, SyncGroupRequest,
};
use kafka_protocol::protocol::StrBytes;
use tokio::task::JoinHandle;

use super::assignor::Assignor;
use crate::cluster::{topic_name, Cluster};
use crate::config::ConsumerConfig;
use crate::conn::Connection;
use crate::error::{Error, KafkaCode};
use crate::protocol::codes;
use crate::protocol::consumer_protocol::{
    decode_assignment, encode_assignment, Subscription, TopicPartitions,
};

/// The pause before joining again after the group asked to start over (the Java client's
/// `retry.backoff.ms` default).
const REJOIN_BACKOFF: Duration = Duration::from_millis(100);

/// The consumer protocol type every classic consumer group uses.
const PROTOCOL_TYPE: &str = "consumer";

fn s(value: &str) -> StrBytes {
    StrBytes::from_string(value.to_owned())
}

/// Whether, and why, the member must join again. Shared by the member, its heartbeat task and
/// the consumer.
#[derive(Clone, Debug)]
pub(crate) struct Rejoin(Arc<AtomicU8>);

impl Rejoin {
    const NO: u8 = 0;
    /// The group is rebalancing: the partitions are revoked in good order.
    const REBALANCE: u8 = 1;
    /// The coordinator no longer counts this member in: its partitions may already be elsewhere.
    const LOST: u8 = 2;

    fn new() -> Self {
        Rejoin(Arc::new(AtomicU8::new(Rejoin::REBALANCE)))
    }

    /// True while the member must join before fetching.
    pub fn needed(&self) -> bool {
        self.0.load(Ordering::Acquire) != Rejoin::NO
    }

    /// True when the partitions were lost rather than revoked.
    pub fn lost(&self) -> bool {
        self.0.load(Ordering::Acquire) == Rejoin::LOST
    }

    fn rebalance(&self) {
        // A loss is not downgraded to a rebalance.
        let _ = self.0.compare_exchange(
            Rejoin::NO,
            Rejoin::REBALANCE,
            Ordering::AcqRel,
            Ordering::Acquire,
        );
    }

    fn lose(&self) {
        self.0.store(Rejoin::LOST, Ordering::Release);
    }

    fn clear(&self) {
        self.0.store(Rejoin::NO, Ordering::Release);
    }
}

/// One member of a classic group.
pub(crate) struct GroupMember {
    cluster: Cluster,
    group_id: String,
    config: ConsumerConfig,
    topics: Vec<String>,
    /// JoinGroup, SyncGroup, offsets.
    coordinator: Option<Connection>,
    member_id: String,
    generation: i32,
    /// Set by the heartbeat task when the member must join again.
    rejoin: Rejoin,
    heartbeat: Option<JoinHandle<()>>,
}

impl Drop for GroupMember {
    fn drop(&mut self) {
        if let Some(task) = self.heartbeat.take() {
            task.abort();
        }
    }
}

impl GroupMember {
    pub fn new(
        cluster: Cluster,
        group_id: String,
        config: ConsumerConfig,
        topics: Vec<String>,
    ) -> Self {
        GroupMember {
            cluster,
            group_id,
            config,
            topics,
            coordinator: None,
            member_id: String::new(),
            generation: -1,
            rejoin: Rejoin::new(),
            heartbeat: None,
        }
    }

    /// Whether the member must (re)join before fetching: not yet joined, the group is
    /// rebalancing, or the member was dropped. Shared, so it can be read without waiting for the
    /// member.
    pub fn rejoin(&self) -> Rejoin {
        self.rejoin.clone()
    }

    fn group_error(&self, api: &'static str, code: i16) -> Error {
        Error::Broker {
            api,
            resource: format!("group {}", self.group_id),
            code: KafkaCode::from_code(code).expect("non-zero"),
            message: None,
        }
    }

    /// The coordinator's address, from FindCoordinator, retried while it is being elected.
    async fn find_coordinator(&self) -> Result<String, Error> {
        let mut waited = Duration::ZERO;
        loop {
            let conn = self.cluster.any_broker().await?;
            let request = FindCoordinatorRequest::default()
                .with_key(s(&self.group_id))
                .with_key_type(0);
            let (response, _) = conn.request(&request).await?;
            match response.error_code {
                0 => return Ok(format!("{}:{}", response.host.as_str(), response.port)),
                code @ (codes::COORDINATOR_NOT_AVAILABLE | codes::COORDINATOR_LOAD_IN_PROGRESS)
                    if waited < self.config.session_timeout =>
                {
                    tracing::debug!(group = %self.group_id, code, "coordinator not ready");
                    tokio::time::sleep(self.config.fetch_error_backoff).await;
                    waited += self.config.fetch_error_backoff;
                }
                code => return Err(self.group_error("FindCoordinator", code)),
            }
        }
    }

    async fn coordinator(&mut self) -> Result<Connection, Error> {
        if let Some(conn) = self.coordinator.as_ref().filter(|c| !c.is_closed()) {
            return Ok(conn.clone());
        }
        let addr = self.find_coordinator().await?;
        let conn = self.cluster.dedicated(&addr).await?;
        self.coordinator = Some(conn.clone());
        Ok(conn)
    }

    /// Joins (or rejoins) the group and returns this member's assignment. Restarts the
    /// heartbeat task for the new generation.
    pub async fn join(&mut self) -> Result<TopicPartitions, Error> {
        if let Some(task) = self.heartbeat.take() {
            task.abort();
        }
        loop {
            match self.join_once().await? {
                Some(assignment) => {
                    self.rejoin.clear();
                    self.start_heartbeat().await?;
                    return Ok(assignment);
                }
                // Start over after a pause, so a group stuck in an error is not hammered.
                None => tokio::time::sleep(REJOIN_BACKOFF).await,
            }
        }
    }

    /// One JoinGroup + SyncGroup round; `None` when the group asks to start over.
    async fn join_once(&mut self) -> Result<Option<TopicPartitions>, Error> {
        let conn = self.coordinator().await?;
        let subscription = Subscription {
            topics: self.topics.clone(),
            owned: Vec::new(),
            generation: None,
        }
        .encode()
        .map_err(|e| Error::protocol("-", e))?;
        let protocols = self
            .config
            .assignors
            .iter()
            .map(|a| {
                JoinGroupRequestProtocol::default()
                    .with_name(s(a.name()))
                    .with_metadata(subscription.clone())
            })
            .collect();
        let mut request = JoinGroupRequest::default()
            .with_group_id(GroupId(s(&self.group_id)))
            .with_session_timeout_ms(millis(self.config.session_timeout))
            .with_rebalance_timeout_ms(millis(self.config.max_poll_interval))
            .with_member_id(s(&self.member_id))
            .with_group_instance_id(self.config.group_instance_id.as_deref().map(s))
            .with_protocol_type(s(PROTOCOL_TYPE))
            .with_protocols(protocols);
        let version = conn.version_of::<JoinGroupRequest>()?;
        // The coordinator holds JoinGroup until every member has joined: up to the rebalance
        // timeout.
        let wait = self.config.max_poll_interval + conn.request_timeout();
        let joined = loop {
            let joined = match conn.request_at(&request, version, wait).await {
                Ok(joined) => joined,
                Err(e) => {
                    self.coordinator = None;
                    return Err(e);
                }
            };
            if joined.error_code != codes::MEMBER_ID_REQUIRED {
                break joined;
            }
            // JoinGroup v4+: the first join only hands out a member id; join again with it.
            self.member_id = joined.member_id.to_string();
            request.member_id = joined.member_id;
        };
        match joined.error_code {
            0 => {}
            codes::UNKNOWN_MEMBER_ID | codes::ILLEGAL_GENERATION => {
                self.member_id.clear();
                return Ok(None);
            }
            codes::REBALANCE_IN_PROGRESS | codes::COORDINATOR_LOAD_IN_PROGRESS => return Ok(None),
            codes::NOT_COORDINATOR | codes::COORDINATOR_NOT_AVAILABLE => {
                self.coordinator = None;
                return Ok(None);
            }
            code => return Err(self.group_error("JoinGroup", code)),
        }
        self.member_id = joined.member_id.to_string();
        self.generation = joined.generation_id;
        let protocol = joined
            .protocol_name
            .as_ref()
            .map(|p| p.to_string())
            .unwrap_or_default();
        let assignments = if joined.leader.as_str() == self.member_id && !joined.skip_assignment {
            self.assign(&protocol, &joined.members).await?
        } else {
            Vec::new()
        };
        let request = SyncGroupRequest::default()
            .with_group_id(GroupId(s(&self.group_id)))
            .with_generation_id(self.generation)
            .with_member_id(s(&self.member_id))
            .with_group_instance_id(self.config.group_instance_id.as_deref().map(s))
            .with_protocol_type(Some(s(PROTOCOL_TYPE)))
            .with_protocol_name(Some(s(&protocol)))
            .with_assignments(assignments);
        let version = conn.version_of::<SyncGroupRequest>()?;
        let synced = conn.request_at(&request, version, wait).await?;
        match synced.error_code {
            0 => decode_assignment(synced.assignment)
                .map(Some)
                .map_err(|e| Error::protocol(conn.broker(), e)),
            codes::REBALANCE_IN_PROGRESS => Ok(None),
            codes::UNKNOWN_MEMBER_ID | codes::ILLEGAL_GENERATION => {
                self.member_id.clear();
                Ok(None)
            }
            codes::NOT_COORDINATOR | codes::COORDINATOR_NOT_AVAILABLE => {
                self.coordinator = None;
                Ok(None)
            }
            code => Err(self.group_error("SyncGroup", code)),
        }
    }

    /// As leader: runs the chosen assignor over every member's subscription.
    async fn assign(
        &self,
        protocol: &str,
        members: &[kafka_protocol::messages::join_group_response::JoinGroupResponseMember],
    ) -> Result<Vec<SyncGroupRequestAssignment>, Error> {
        let assignor = Assignor::from_name(protocol).ok_or_else(|| Error::Broker {
            api: "JoinGroup",
            resource: format!("group {}", self.group_id),
            code: KafkaCode::from_code(codes::INCONSISTENT_GROUP_PROTOCOL).expect("non-zero"),
            message: Some(format!(
                "the group chose assignor {protocol:?}, which purekafka lacks"
            )),
        })?;
        let mut subscriptions = BTreeMap::new();
        for m in members {
            let sub =
                Subscription::decode(m.metadata.clone()).map_err(|e| Error::protocol("-", e))?;
            subscriptions.insert(m.member_id.to_string(), sub);
        }
        let mut partitions = HashMap::new();
        for sub in subscriptions.values() {
            for topic in &sub.topics {
                if partitions.contains_key(topic) {
                    continue;
                }
                match self.cluster.topic(topic).await {
                    Ok(meta) => {
                        partitions.insert(topic.clone(), meta.partitions.len() as i32);
                    }
                    // A subscribed topic that does not exist yet gets no partitions.
                    Err(Error::UnknownTopicOrPartition(_)) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        assignor
            .assign(&subscriptions, &partitions)
            .into_iter()
            .map(|(member, assigned)| {
                let bytes = encode_assignment(&assigned).map_err(|e| Error::protocol("-", e))?;
                Ok(SyncGroupRequestAssignment::default()
                    .with_member_id(s(&member))
                    .with_assignment(bytes))
            })
            .collect()
    }

    async fn start_heartbeat(&mut self) -> Result<(), Error> {
        let addr = self.coordinator().await?.broker().to_owned();
        let conn = self.cluster.dedicated(&addr).await?;
        let request = HeartbeatRequest::default()
            .with_group_id(GroupId(s(&self.group_id)))
            .with_generation_id(self.generation)
            .with_member_id(s(&self.member_id))
            .with_group_instance_id(self.config.group_instance_id.as_deref().map(s));
        let rejoin = self.rejoin.clone();
        let interval = self.config.heartbeat_interval;
        let session = self.config.session_timeout;
        let group = self.group_id.clone();
        self.heartbeat = Some(tokio::spawn(async move {
            let mut last_ok = tokio::time::Instant::now();
            loop {
                tokio::time::sleep(interval).await;
                let code = match conn.request(&request).await {
                    Ok((response, _)) => response.error_code,
                    Err(e) => {
                        tracing::debug!(%group, error = %e, "heartbeat failed");
                        if last_ok.elapsed() < session {
                            continue;
                        }
                        // The coordinator has surely expired us by now.
                        codes::UNKNOWN_MEMBER_ID
                    }
                };
                if code == 0 {
                    last_ok = tokio::time::Instant::now();
                    continue;
                }
                tracing::debug!(%group, code, "heartbeat asks to rejoin");
                match code {
                    codes::UNKNOWN_MEMBER_ID
                    | codes::ILLEGAL_GENERATION
                    | codes::FENCED_INSTANCE_ID => rejoin.lose(),
                    _ => rejoin.rebalance(),
                }
                return;
            }
        }));
        Ok(())
    }

    /// The committed offset of each partition (`None` where the group has none).
    pub async fn committed(
        &mut self,
        partitions: &TopicPartitions,
    ) -> Result<HashMap<(String, i32), Option<i64>>, Error> {
        let conn = self.coordinator().await?;
        let request = OffsetFetchRequest::default()
            .with_group_id(GroupId(s(&self.group_id)))
            .with_topics(Some(
                partitions
                    .iter()
                    .map(|(t, ps)| {
                        OffsetFetchRequestTopic::default()
                            .with_name(topic_name(t))
                            .with_partition_indexes(ps.clone())
                    })
                    .collect(),
            ));
        let (response, _) = conn.request(&request).await?;
        if response.error_code != 0 {
            return Err(self.group_error("OffsetFetch", response.error_code));
        }
        let mut out = HashMap::new();
        for t in response.topics {
            for p in t.partitions {
                if p.error_code != 0 {
                    return Err(self.group_error("OffsetFetch", p.error_code));
                }
                let offset = (p.committed_offset >= 0).then_some(p.committed_offset);
                out.insert((t.name.0.to_string(), p.partition_index), offset);
            }
        }
        Ok(out)
    }

    /// Commits `offsets` (the next offset to read, per partition) for the current generation.
    pub async fn commit(&mut self, offsets: &[(&str, i32, i64)]) -> Result<(), Error> {
        if offsets.is_empty() {
            return Ok(());
        }
        let conn = self.coordinator().await?;
        let mut topics: Vec<OffsetCommitRequestTopic> = Vec::new();
        for &(topic, partition, offset) in offsets {
            let p = OffsetCommitRequestPartition::default()
                .with_partition_index(partition)
                .with_committed_offset(offset)
                .with_committed_leader_epoch(-1);
            match topics.iter_mut().find(|t| t.name.0.as_str() == topic) {
                Some(t) => t.partitions.push(p),
                None => topics.push(
                    OffsetCommitRequestTopic::default()
                        .with_name(topic_name(topic))
                        .with_partitions(vec![p]),
                ),
            }
        }
        let request = OffsetCommitRequest::default()
            .with_group_id(GroupId(s(&self.group_id)))
            .with_generation_id_or_member_epoch(self.generation)
            .with_member_id(s(&self.member_id))
            .with_group_instance_id(self.config.group_instance_id.as_deref().map(s))
            .with_retention_time_ms(-1)
            .with_topics(topics);
        let (response, _) = conn.request(&request).await?;
        for t in &response.topics {
            for p in &t.partitions {
                match p.error_code {
                    0 => {}
                    code @ (codes::REBALANCE_IN_PROGRESS
                    | codes::ILLEGAL_GENERATION
                    | codes::UNKNOWN_MEMBER_ID) => {
                        self.rejoin.rebalance();
                        return Err(self.group_error("OffsetCommit", code));
                    }
                    code => return Err(self.group_error("OffsetCommit", code)),
                }
            }
        }
        Ok(())
    }

    /// Leaves the group, so its partitions move to other members at once. A static member
    /// (`group.instance.id`) does not leave, as in the Java client (KIP-345): its partitions
    /// wait for it to come back within its session, with no rebalance.
    pub async fn leave(&mut self) -> Result<(), Error> {
        if let Some(task) = self.heartbeat.take() {
            task.abort();
        }
        if self.member_id.is_empty() || self.config.group_instance_id.is_some() {
            return Ok(());
        }
        let conn = self.coordinator().await?;
        let version = conn.version_of::<LeaveGroupRequest>()?;
        let mut request = LeaveGroupRequest::default().with_group_id(GroupId(s(&self.group_id)));
        // v3 names members in a list (with their instance ids); earlier versions one member id.
        if version >= 3 {
            request.members = vec![MemberIdentity::default()
                .with_member_id(s(&self.member_id))
                .with_group_instance_id(self.config.group_instance_id.as_deref().map(s))];
        } else {
            request.member_id = s(&self.member_id);
        }
        let response = conn
            .request_at(&request, version, conn.request_timeout())
            .await?;
        self.member_id.clear();
        self.rejoin.rebalance();
        match response.error_code {
            0 | codes::UNKNOWN_MEMBER_ID => Ok(()),
            code => Err(self.group_error("LeaveGroup", code)),
        }
    }
}

fn millis(d: Duration) -> i32 {
    d.as_millis().min(i32::MAX as u128) as i32
}
