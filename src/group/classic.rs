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

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    GroupId, HeartbeatRequest, JoinGroupRequest, LeaveGroupRequest, SyncGroupRequest,
};
use tokio::task::JoinHandle;

use super::assignor;
use super::coordinator::{s, CommitError, Coordinator, Identity};
use super::poll_clock::PollClock;
use super::{partition_counts, AssignedFrom, Attention, SharedTopics};
use crate::cluster::Cluster;
use crate::config::Assignor;
use crate::config::{ConsumerConfig, IsolationLevel};
use crate::conn::Connection;
use crate::error::{Error, KafkaCode, Resource};
use crate::protocol::codes;
use crate::protocol::consumer_protocol::{
    decode_assignment, encode_assignment, Subscription, TopicPartitions,
};

/// The pause before joining again while the coordinator moves or loads (the Java client's
/// `retry.backoff.ms` default).
const REJOIN_BACKOFF: Duration = Duration::from_millis(100);

/// The consumer protocol type every classic consumer group uses.
const PROTOCOL_TYPE: &str = "consumer";

/// Whether, and why, the member must join again. Shared by the member, its heartbeat task and
/// the consumer, which each change wakes (see [`Attention`]).
#[derive(Clone, Debug)]
pub(crate) struct Rejoin {
    state: Arc<AtomicU8>,
    attention: Attention,
}

impl Rejoin {
    const NO: u8 = 0;
    /// The group is rebalancing: the partitions are revoked in good order.
    const REBALANCE: u8 = 1;
    /// The coordinator no longer counts this member in: its partitions may already be elsewhere.
    const LOST: u8 = 2;

    fn new(attention: Attention) -> Self {
        Rejoin {
            state: Arc::new(AtomicU8::new(Rejoin::REBALANCE)),
            attention,
        }
    }

    /// True while the member must join before fetching.
    pub fn needed(&self) -> bool {
        self.state.load(Ordering::Acquire) != Rejoin::NO
    }

    /// True when the partitions were lost rather than revoked.
    pub fn lost(&self) -> bool {
        self.state.load(Ordering::Acquire) == Rejoin::LOST
    }

    pub fn rebalance(&self) {
        // A loss is not downgraded to a rebalance.
        let _ = self.state.compare_exchange(
            Rejoin::NO,
            Rejoin::REBALANCE,
            Ordering::AcqRel,
            Ordering::Acquire,
        );
        self.attention.notify_one();
    }

    fn lose(&self) {
        self.state.store(Rejoin::LOST, Ordering::Release);
        self.attention.notify_one();
    }

    fn clear(&self) {
        self.state.store(Rejoin::NO, Ordering::Release);
    }

    /// Wakes the consumer without changing anything: a join it waits for has ended.
    pub fn poke(&self) {
        self.attention.notify_one();
    }
}

/// How one JoinGroup + SyncGroup round ended.
enum Round {
    /// This member's partitions in the new generation.
    Joined(TopicPartitions),
    /// The group asks to start over, at once or after a pause.
    Again { pause: bool },
}

/// The outcome of a join.
pub(crate) struct Joined {
    /// This member's partitions in the new generation.
    pub assignment: TopicPartitions,
    /// True when the coordinator dropped the member during the join, so the partitions it
    /// meant to keep are lost (they may already be another member's).
    pub lost: bool,
}

/// One member of a classic group.
pub(crate) struct GroupMember {
    /// JoinGroup, SyncGroup and offsets go through its connection; heartbeats get another.
    coordinator: Coordinator,
    config: ConsumerConfig,
    /// The subscription, as the consumer last resolved it.
    topics: SharedTopics,
    /// As leader, what the last assignment was computed from (see [`AssignedFrom`]).
    assigned_from: AssignedFrom,
    member_id: String,
    generation: i32,
    /// `member_id` and `generation` as last published, for commits bound to the generation
    /// partitions were owned in (see [`GroupMember::identity`]).
    identity: Arc<std::sync::Mutex<Identity>>,
    /// Set by the heartbeat task when the member must join again.
    rejoin: Rejoin,
    /// Set while a join runs, for the committer (see [`GroupMember::committer`]).
    in_join: Arc<AtomicBool>,
    heartbeat: Option<JoinHandle<()>>,
    /// When the application last asked for records.
    polls: PollClock,
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
        topics: SharedTopics,
        polls: PollClock,
        attention: Attention,
    ) -> Self {
        GroupMember {
            assigned_from: AssignedFrom::default(),
            polls,
            coordinator: Coordinator::new(
                cluster,
                group_id,
                config.session_timeout,
                config.fetch_error_backoff,
            )
            .stable(config.isolation_level == IsolationLevel::ReadCommitted),
            config,
            topics,
            member_id: String::new(),
            generation: -1,
            identity: Arc::default(),
            rejoin: Rejoin::new(attention),
            in_join: Arc::default(),
            heartbeat: None,
        }
    }

    /// What this member, as leader, last assigned from; `None` while it is not the leader.
    pub fn assigned_from(&self) -> AssignedFrom {
        self.assigned_from.clone()
    }

    /// Whether the member must (re)join before fetching: not yet joined, the group is
    /// rebalancing, or the member was dropped. Shared, so it can be read without waiting for the
    /// member.
    pub fn rejoin(&self) -> Rejoin {
        self.rejoin.clone()
    }

    /// True when every assignor offered is cooperative (KIP-429), as in the Java client: the
    /// member then keeps its partitions through a rebalance and gives up only those its new
    /// assignment lacks. Otherwise the group rebalances eagerly: everything is revoked first.
    pub fn cooperative(&self) -> bool {
        !self.config.assignors.is_empty()
            && self.config.assignors.iter().all(|a| a.is_cooperative())
    }

    /// Joins (or rejoins) the group. `owned` is what the member keeps through the rebalance
    /// (cooperative groups; empty when eager). Restarts the heartbeat task for the new
    /// generation.
    pub async fn join(&mut self, owned: &TopicPartitions) -> Result<Joined, Error> {
        if let Some(task) = self.heartbeat.take() {
            task.abort();
        }
        /// Clears the flag however the join ends, cancelled included.
        struct InJoin(Arc<AtomicBool>);
        impl Drop for InJoin {
            fn drop(&mut self) {
                self.0.store(false, Ordering::Release);
            }
        }
        self.in_join.store(true, Ordering::Release);
        let _in_join = InJoin(self.in_join.clone());
        let mut owned = owned.clone();
        let mut lost = false;
        loop {
            let again = match self.join_once(&owned).await? {
                Round::Joined(assignment) => {
                    self.start_heartbeat();
                    return Ok(Joined { assignment, lost });
                }
                Round::Again { pause } => pause,
            };
            if self.generation < 0 && !owned.is_empty() {
                // Dropped by the coordinator mid-rebalance: what was owned is lost.
                owned.clear();
                lost = true;
            }
            if again {
                // The coordinator is moving or loading: no hammering it meanwhile.
                tokio::time::sleep(REJOIN_BACKOFF).await
            }
        }
    }

    /// One JoinGroup + SyncGroup round.
    async fn join_once(&mut self, owned: &TopicPartitions) -> Result<Round, Error> {
        let conn = self.coordinator.conn().await?;
        // This round answers every request to rejoin made so far; one made while it runs (the
        // subscription changed, say) asks for another once it is done.
        self.rejoin.clear();
        let topics = self
            .topics
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let subscription = Subscription {
            topics,
            owned: owned.clone(),
            // The generation the partitions were owned in, so a leader can tell stale claims.
            generation: (self.generation >= 0).then_some(self.generation),
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
            .with_group_id(self.coordinator.group_id_field())
            .with_session_timeout_ms(millis(self.config.session_timeout))
            .with_rebalance_timeout_ms(millis(self.config.max_poll_interval))
            .with_member_id(s(&self.member_id))
            .with_group_instance_id(self.config.group_instance_id.as_deref().map(s))
            .with_protocol_type(s(PROTOCOL_TYPE))
            .with_protocols(protocols);
        let version = conn.version_of::<JoinGroupRequest>()?;
        // The coordinator holds JoinGroup until every member has joined: up to the rebalance
        // timeout.
        let wait = self.config.max_poll_interval + conn.socket_timeout();
        let joined = loop {
            tracing::debug!(group = %self.coordinator.group_id(), member = %self.member_id, owned = ?owned, "JoinGroup");
            let joined = match conn.request_at(&request, version, wait).await {
                Ok(joined) => joined,
                Err(e) => {
                    self.coordinator.lost();
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
        if let Some(again) = self.start_over("JoinGroup", joined.error_code)? {
            return Ok(again);
        }
        self.member_id = joined.member_id.to_string();
        self.generation = joined.generation_id;
        self.publish_identity();
        let protocol = joined
            .protocol_name
            .as_ref()
            .map(|p| p.to_string())
            .unwrap_or_default();
        let assignments = if joined.leader.as_str() == self.member_id && !joined.skip_assignment {
            self.assign(&protocol, &joined.members).await?
        } else {
            *self.assigned_from.lock().unwrap_or_else(|p| p.into_inner()) = None;
            Vec::new()
        };
        let request = SyncGroupRequest::default()
            .with_group_id(self.coordinator.group_id_field())
            .with_generation_id(self.generation)
            .with_member_id(s(&self.member_id))
            .with_group_instance_id(self.config.group_instance_id.as_deref().map(s))
            .with_protocol_type(Some(s(PROTOCOL_TYPE)))
            .with_protocol_name(Some(s(&protocol)))
            .with_assignments(assignments);
        let version = conn.version_of::<SyncGroupRequest>()?;
        let synced = conn.request_at(&request, version, wait).await?;
        if let Some(again) = self.start_over("SyncGroup", synced.error_code)? {
            return Ok(again);
        }
        decode_assignment(synced.assignment)
            .map(Round::Joined)
            .map_err(|e| Error::protocol(conn.broker(), e))
    }

    /// What an error code of JoinGroup or SyncGroup (`api`) asks for: `None` for none, the
    /// round to start over for those the group answers while it moves on, as the Java client
    /// reads them. A rebalance under way or a stale member joins again at once; a coordinator
    /// moving or loading, after a pause.
    fn start_over(&mut self, api: &'static str, code: i16) -> Result<Option<Round>, Error> {
        match code {
            0 => Ok(None),
            codes::UNKNOWN_MEMBER_ID | codes::ILLEGAL_GENERATION => {
                self.forget_membership();
                Ok(Some(Round::Again { pause: false }))
            }
            codes::REBALANCE_IN_PROGRESS => Ok(Some(Round::Again { pause: false })),
            codes::COORDINATOR_LOAD_IN_PROGRESS => Ok(Some(Round::Again { pause: true })),
            codes::NOT_COORDINATOR | codes::COORDINATOR_NOT_AVAILABLE => {
                self.coordinator.lost();
                Ok(Some(Round::Again { pause: true }))
            }
            code => Err(self.coordinator.error(api, code)),
        }
    }

    /// The coordinator no longer knows this member: join afresh, owning nothing.
    fn forget_membership(&mut self) {
        self.member_id.clear();
        self.generation = -1;
        self.publish_identity();
    }

    /// As leader: runs the chosen assignor over every member's subscription.
    async fn assign(
        &self,
        protocol: &str,
        members: &[kafka_protocol::messages::join_group_response::JoinGroupResponseMember],
    ) -> Result<Vec<SyncGroupRequestAssignment>, Error> {
        let assignor = Assignor::from_name(protocol).ok_or_else(|| Error::Broker {
            api: "JoinGroup",
            resource: Resource::Group(self.coordinator.group_id().to_owned()),
            code: KafkaCode::from_code(codes::INCONSISTENT_GROUP_PROTOCOL).expect("non-zero"),
            message: Some(format!(
                "the group chose assignor {protocol:?}, which purekafka lacks"
            )),
        })?;
        let mut subscriptions = BTreeMap::new();
        for m in members {
            let sub = Subscription::decode_for(m.metadata.clone(), assignor.is_cooperative())
                .map_err(|e| Error::protocol("-", e))?;
            subscriptions.insert(m.member_id.to_string(), sub);
        }
        let topics: BTreeSet<String> = subscriptions
            .values()
            .flat_map(|sub| sub.topics.iter().cloned())
            .collect();
        let cluster = self.coordinator.cluster();
        for topic in &topics {
            // Kept current from now on, so the assignment is redone when one of them changes.
            cluster.use_topic(topic);
            match cluster.topic(topic).await {
                Ok(_) => {}
                // A subscribed topic that does not exist yet, or that the cluster refuses to
                // describe, gets no partitions until that changes.
                Err(Error::UnknownTopicOrPartition { .. }) => {}
                Err(e) if e.kafka_code().is_some() => {
                    tracing::debug!(%topic, error = %e, "subscribed topic left out of the assignment");
                }
                Err(e) => return Err(e),
            }
        }
        let counts = cluster.with_metadata(|m| partition_counts(m, &topics));
        let partitions: HashMap<String, i32> = counts
            .iter()
            .filter_map(|(t, n)| n.map(|n| (t.clone(), n as i32)))
            .collect();
        *self.assigned_from.lock().unwrap_or_else(|p| p.into_inner()) = Some(counts);
        assignor::assign(assignor, &subscriptions, &partitions)
            .into_iter()
            .map(|(member, assigned)| {
                let bytes = encode_assignment(&assigned).map_err(|e| Error::protocol("-", e))?;
                Ok(SyncGroupRequestAssignment::default()
                    .with_member_id(s(&member))
                    .with_assignment(bytes))
            })
            .collect()
    }

    /// Heartbeats in a task of its own, on a connection of its own. When the coordinator moves
    /// (its broker dies, or it answers NOT_COORDINATOR), the task finds the new one and goes on
    /// with the same generation, as the Java client does: the group does not rebalance for it,
    /// and a new coordinator loading the group gives its members a fresh session. Only the
    /// coordinator says a member is gone (UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION): until it
    /// answers, however long that takes, the member keeps its partitions and reads on.
    fn start_heartbeat(&mut self) {
        let coordinator = self.coordinator.another();
        let request = HeartbeatRequest::default()
            .with_group_id(self.coordinator.group_id_field())
            .with_generation_id(self.generation)
            .with_member_id(s(&self.member_id))
            .with_group_instance_id(self.config.group_instance_id.as_deref().map(s));
        let rejoin = self.rejoin.clone();
        let interval = self.config.heartbeat_interval;
        let session = self.config.session_timeout;
        let max_poll = self.config.max_poll_interval;
        let group = self.coordinator.group_id().to_owned();
        let (polls, member_id) = (self.polls.clone(), self.member_id.clone());
        let dynamic = self.config.group_instance_id.is_none();
        self.heartbeat = Some(tokio::spawn(async move {
            let mut last_ok = tokio::time::Instant::now();
            let mut warned = false;
            let mut conn: Option<Connection> = None;
            loop {
                tokio::time::sleep(interval).await;
                let answer = match conn.as_ref().filter(|c| !c.is_closed()) {
                    Some(c) => Ok(c.clone()),
                    None => coordinator.dedicated().await,
                };
                if polls.overdue(max_poll) {
                    // The application stopped asking for records: leave, as the Java client
                    // does, so the partitions go to members that read them. The next recv
                    // reports them lost and joins again. A static member just stops.
                    tracing::warn!(%group, "max.poll.interval.ms passed without a poll; leaving");
                    if let (true, Ok(c)) = (dynamic, &answer) {
                        if let Err(e) = send_leave(c, &group, &member_id).await {
                            tracing::debug!(%group, error = %e, "leave failed");
                        }
                    }
                    rejoin.lose();
                    return;
                }
                let answer = match answer {
                    Ok(c) => {
                        conn = Some(c.clone());
                        c.request(&request).await.map(|(r, _)| r.error_code)
                    }
                    Err(e) => Err(e),
                };
                let code = match answer {
                    Ok(code) => code,
                    Err(e) => {
                        tracing::debug!(%group, error = %e, "heartbeat failed");
                        conn = None;
                        codes::COORDINATOR_NOT_AVAILABLE
                    }
                };
                match code {
                    0 => {
                        last_ok = tokio::time::Instant::now();
                        warned = false;
                        continue;
                    }
                    codes::NOT_COORDINATOR
                    | codes::COORDINATOR_NOT_AVAILABLE
                    | codes::COORDINATOR_LOAD_IN_PROGRESS => {
                        tracing::debug!(%group, code, "no coordinator to heartbeat to; finding it");
                        conn = None;
                        if !warned && last_ok.elapsed() > session {
                            warned = true;
                            tracing::warn!(
                                %group,
                                "no heartbeat answered for longer than session.timeout.ms; \
                                 reading on until the coordinator says otherwise"
                            );
                        }
                        continue;
                    }
                    codes::UNKNOWN_MEMBER_ID
                    | codes::ILLEGAL_GENERATION
                    | codes::FENCED_INSTANCE_ID => {
                        tracing::debug!(%group, code, "heartbeat: the member was dropped");
                        rejoin.lose();
                    }
                    code => {
                        tracing::debug!(%group, code, "heartbeat asks to rejoin");
                        rejoin.rebalance();
                    }
                }
                return;
            }
        }));
    }

    /// The committed offset of each partition (`None` where the group has none).
    pub async fn committed(
        &mut self,
        partitions: &TopicPartitions,
    ) -> Result<HashMap<(String, i32), Option<i64>>, Error> {
        self.coordinator.committed(partitions).await
    }

    fn publish_identity(&self) {
        *self.identity.lock().unwrap_or_else(|p| p.into_inner()) = Identity {
            member_id: self.member_id.clone(),
            generation: self.generation,
        };
    }

    /// What commits for this member without waiting for it: a join holds the member for a
    /// whole rebalance (up to `max.poll.interval.ms`), and a commit must not wait that long.
    pub fn committer(&self) -> ClassicCommitter {
        ClassicCommitter {
            coordinator: Arc::new(tokio::sync::Mutex::new(self.coordinator.another())),
            identity: self.identity.clone(),
            instance_id: self.config.group_instance_id.clone(),
            rejoin: self.rejoin.clone(),
            in_join: self.in_join.clone(),
        }
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
        let conn = self.coordinator.conn().await?;
        let code = send_leave(&conn, self.coordinator.group_id(), &self.member_id).await?;
        self.member_id.clear();
        self.publish_identity();
        self.rejoin.rebalance();
        match code {
            0 | codes::UNKNOWN_MEMBER_ID => Ok(()),
            code => Err(self.coordinator.error("LeaveGroup", code)),
        }
    }
}

/// Sends LeaveGroup for a dynamic member; returns the error code.
async fn send_leave(conn: &Connection, group_id: &str, member_id: &str) -> Result<i16, Error> {
    let version = conn.version_of::<LeaveGroupRequest>()?;
    let mut request = LeaveGroupRequest::default().with_group_id(GroupId(s(group_id)));
    // v3 names members in a list; earlier versions one member id.
    if version >= 3 {
        request.members = vec![MemberIdentity::default().with_member_id(s(member_id))];
    } else {
        request.member_id = s(member_id);
    }
    let response = conn
        .request_at(&request, version, conn.socket_timeout())
        .await?;
    Ok(response.error_code)
}

fn millis(d: Duration) -> i32 {
    d.as_millis().min(i32::MAX as u128) as i32
}

/// Commits offsets for a classic member, as the member was last published (or as it was when
/// pinned): through a coordinator handle of its own, so a commit never waits for a join.
#[derive(Clone)]
pub(crate) struct ClassicCommitter {
    coordinator: Arc<tokio::sync::Mutex<Coordinator>>,
    identity: Arc<std::sync::Mutex<Identity>>,
    instance_id: Option<String>,
    rejoin: Rejoin,
    in_join: Arc<AtomicBool>,
}

impl ClassicCommitter {
    /// The member's id and generation now.
    pub fn identity(&self) -> Identity {
        self.identity
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Commits `offsets` (the next offset to read, per partition) for the current generation,
    /// or for `as_of` when given. During a join the generation is the one ending, and the
    /// coordinator refuses it (REBALANCE_IN_PROGRESS, retriable), as the Java client's commits
    /// fail during a rebalance. When the group has moved on otherwise, the member rejoins.
    ///
    /// Cancel-safe as far as the client goes; the commit itself may or may not have been made
    /// when dropped (the request may be on the wire).
    pub async fn commit(
        &self,
        offsets: &[(&str, i32, i64)],
        as_of: Option<&Identity>,
    ) -> Result<(), Error> {
        let identity = match as_of {
            Some(identity) => identity.clone(),
            None => self.identity(),
        };
        let instance_id = self.instance_id.as_deref();
        let mut coordinator = self.coordinator.lock().await;
        let outcome = coordinator.commit(&identity, instance_id, offsets).await;
        match outcome {
            Err(CommitError::Stale(e)) => {
                // A join under way answers it already.
                if !self.in_join.load(Ordering::Acquire) {
                    self.rejoin.rebalance();
                }
                Err(e)
            }
            other => Ok(other?),
        }
    }
}
