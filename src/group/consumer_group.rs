//! Membership of a KIP-848 consumer group (`group.protocol=consumer`, Kafka 4.0 and later).
//! The coordinator computes every member's assignment itself and hands each its target in
//! ConsumerGroupHeartbeat answers; the member gives up what the target lacks, takes up what it
//! adds, and acknowledges with the partitions it owns in its next heartbeat. No JoinGroup, no
//! SyncGroup, no client-side assignor, and no stop-the-world rebalance.
//!
//! ```text
//!  heartbeat task ── ConsumerGroupHeartbeat: epoch 0 joins, then every heartbeat interval
//!     │  assignment (topic ids) ─► names ─► target ─► Consumer::recv reconciles it:
//!     │                                              revoke (commit first), then assign
//!     ◄─────────── owned partitions, acknowledged ◄──┘  (the task is woken at once)
//!  FENCED_MEMBER_EPOCH, UNKNOWN_MEMBER_ID ─► partitions lost, join again at epoch 0
//! ```

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasher, Hasher};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kafka_protocol::messages::consumer_group_heartbeat_request::TopicPartitions as Owned;
use kafka_protocol::messages::{ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::coordinator::{s, CommitError, Coordinator, Identity};
use super::poll_clock::PollClock;
use super::Attention;
use crate::cluster::{topic_name, Cluster};
use crate::config::{ConsumerConfig, IsolationLevel};
use crate::error::{ConfigError, Error, Resource};
use crate::protocol::codes;
use crate::protocol::consumer_protocol::TopicPartitions;

/// The epoch with which a member joins.
const JOIN_EPOCH: i32 = 0;
/// The epoch with which a dynamic member leaves.
const LEAVE_EPOCH: i32 = -1;
/// The epoch with which a static member leaves for now, keeping its instance id's place.
const STATIC_LEAVE_EPOCH: i32 = -2;

/// A change the consumer must apply.
pub(crate) enum Change {
    /// The coordinator dropped the member: its partitions may already be elsewhere.
    Lost,
    /// The partitions the member should own now.
    Target(TopicPartitions),
}

#[derive(Default)]
struct State {
    member_id: String,
    epoch: i32,
    /// The coordinator's latest target, not yet taken up by the consumer.
    target: Option<TopicPartitions>,
    /// What the consumer owns; sent with the next heartbeat when `report` is set.
    owned: TopicPartitions,
    report: bool,
    lost: bool,
    /// Why the member cannot go on.
    failed: Option<Error>,
    /// The topics subscribed to, as the consumer last resolved them.
    topics: Vec<String>,
    /// The subscription changed: send it with the next heartbeat.
    resubscribe: bool,
}

struct Shared {
    state: Mutex<State>,
    /// Heartbeat now: the consumer took up an assignment.
    wake: Notify,
    /// Wakes the consumer: a target, a fencing or a failure to apply.
    attention: Attention,
}

impl Shared {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic elsewhere never leaves State half-changed: every change is one assignment.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// One member of a KIP-848 consumer group.
pub(crate) struct ConsumerGroupMember {
    shared: Arc<Shared>,
    heartbeat: JoinHandle<()>,
    /// Offsets go through a connection of their own, apart from heartbeats.
    coordinator: tokio::sync::Mutex<Coordinator>,
    instance_id: Option<String>,
    group_id: String,
}

impl Drop for ConsumerGroupMember {
    fn drop(&mut self) {
        self.heartbeat.abort();
    }
}

impl ConsumerGroupMember {
    /// Starts heartbeating: the member joins with its first heartbeat.
    pub fn new(
        cluster: Cluster,
        group_id: String,
        config: ConsumerConfig,
        topics: Vec<String>,
        polls: PollClock,
        attention: Attention,
    ) -> Self {
        let shared = Arc::new(Shared {
            attention,
            state: Mutex::new(State {
                member_id: new_member_id(),
                report: true,
                topics,
                ..State::default()
            }),
            wake: Notify::new(),
        });
        let coordinator = |cluster: Cluster| {
            Coordinator::new(
                cluster,
                group_id.clone(),
                config.session_timeout,
                config.fetch_error_backoff,
            )
            .stable(config.isolation_level == IsolationLevel::ReadCommitted)
        };
        let heartbeat = tokio::spawn(heartbeats(
            shared.clone(),
            coordinator(cluster.clone()),
            config.clone(),
            polls,
        ));
        ConsumerGroupMember {
            shared,
            heartbeat,
            coordinator: tokio::sync::Mutex::new(coordinator(cluster)),
            instance_id: config.group_instance_id,
            group_id,
        }
    }

    /// What the consumer must apply, if anything; an error once the member cannot go on.
    /// A target stays until [`ConsumerGroupMember::owned`] reports it taken up, so a `recv`
    /// cancelled halfway through applying it applies it again next time.
    /// Once the member cannot go on, its partitions are reported lost and then the error,
    /// on every call: the consumer must not read on without heartbeats.
    pub fn change(&self) -> Result<Option<Change>, Error> {
        let mut state = self.shared.state();
        if std::mem::take(&mut state.lost) {
            return Ok(Some(Change::Lost));
        }
        if let Some(e) = &state.failed {
            return Err(e.clone());
        }
        Ok(state.target.clone().map(Change::Target))
    }

    /// The consumer took up `target` and now owns `partitions`: tell the coordinator at once.
    pub fn owned(&self, target: &TopicPartitions, partitions: TopicPartitions) {
        let mut state = self.shared.state();
        if state.target.as_ref() != Some(target) {
            // Fenced (or given a newer target) while the consumer applied this one: what it
            // owns now is not what the coordinator expects; the next change() says so.
            return;
        }
        state.target = None;
        state.owned = partitions;
        state.report = true;
        drop(state);
        self.shared.wake.notify_one();
    }

    /// The topics subscribed to are now `topics`: sent with the next heartbeat, at once.
    pub fn subscribe(&self, topics: Vec<String>) {
        let mut state = self.shared.state();
        state.topics = topics;
        state.resubscribe = true;
        drop(state);
        self.shared.wake.notify_one();
    }

    /// The topics subscribed to.
    pub fn topics(&self) -> Vec<String> {
        self.shared.state().topics.clone()
    }

    /// The committed offset of each partition (`None` where the group has none).
    pub async fn committed(
        &self,
        partitions: &TopicPartitions,
    ) -> Result<HashMap<(String, i32), Option<i64>>, Error> {
        self.coordinator.lock().await.committed(partitions).await
    }

    /// The member's id and epoch now.
    pub fn identity(&self) -> Identity {
        let state = self.shared.state();
        Identity {
            member_id: state.member_id.clone(),
            generation: state.epoch,
        }
    }

    /// Commits `offsets` (the next offset to read, per partition) at the member's epoch, or
    /// as `as_of` when given.
    pub async fn commit(
        &self,
        offsets: &[(&str, i32, i64)],
        as_of: Option<&Identity>,
    ) -> Result<(), Error> {
        let identity = match as_of {
            Some(identity) => identity.clone(),
            None => {
                if self.shared.state().lost {
                    // Fenced, and the consumer has not given the partitions up yet: under the
                    // epoch of a new join this commit would land for partitions another
                    // member may own.
                    return Err(Error::Broker {
                        api: "OffsetCommit",
                        resource: Resource::Group(self.group_id.clone()),
                        code: crate::error::KafkaCode::from_code(codes::FENCED_MEMBER_EPOCH)
                            .expect("non-zero"),
                        message: Some("the member was fenced; its partitions are lost".into()),
                    });
                }
                self.identity()
            }
        };
        let instance_id = self.instance_id.as_deref();
        let mut coordinator = self.coordinator.lock().await;
        match coordinator.commit(&identity, instance_id, offsets).await {
            Err(CommitError::Stale(e)) => {
                // The heartbeat brings the new epoch (or the fencing) on its own.
                self.shared.wake.notify_one();
                Err(e)
            }
            other => Ok(other?),
        }
    }

    /// Leaves the group: a dynamic member for good, so its partitions move at once; a static
    /// member (`group.instance.id`) only for now, keeping its place for its session.
    pub async fn leave(&self) -> Result<(), Error> {
        self.heartbeat.abort();
        let (member_id, epoch) = {
            let state = self.shared.state();
            (state.member_id.clone(), state.epoch)
        };
        if epoch <= JOIN_EPOCH {
            return Ok(());
        }
        let mut coordinator = self.coordinator.lock().await;
        let instance_id = self.instance_id.as_deref();
        send_leave(&mut coordinator, &member_id, instance_id).await
    }
}

/// Sends the heartbeat that leaves the group: for good for a dynamic member, for now for a
/// static one (`group.instance.id`), which keeps its place for its session.
async fn send_leave(
    coordinator: &mut Coordinator,
    member_id: &str,
    instance_id: Option<&str>,
) -> Result<(), Error> {
    let conn = coordinator.conn().await?;
    let request = ConsumerGroupHeartbeatRequest::default()
        .with_group_id(coordinator.group_id_field())
        .with_member_id(s(member_id))
        .with_instance_id(instance_id.map(s))
        .with_member_epoch(match instance_id {
            Some(_) => STATIC_LEAVE_EPOCH,
            None => LEAVE_EPOCH,
        });
    let (response, _) = conn.request(&request).await?;
    match response.error_code {
        0 | codes::UNKNOWN_MEMBER_ID | codes::FENCED_MEMBER_EPOCH => Ok(()),
        code => Err(coordinator.error("ConsumerGroupHeartbeat", code)),
    }
}

/// A member id of 32 hex digits from 128 random bits (std's per-process random hash keys,
/// mixed with the time): v1 of ConsumerGroupHeartbeat has the client choose it.
pub(super) fn new_member_id() -> String {
    let random = std::collections::hash_map::RandomState::new();
    let mut id = String::with_capacity(32);
    for half in 0..2u8 {
        let mut h = random.build_hasher();
        h.write_u8(half);
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or_default(),
        );
        id.push_str(&format!("{:016x}", h.finish()));
    }
    id
}

/// The heartbeat loop: joins, heartbeats on the coordinator's interval, turns assignments into
/// targets, and rejoins when fenced.
async fn heartbeats(
    shared: Arc<Shared>,
    mut coordinator: Coordinator,
    config: ConsumerConfig,
    polls: PollClock,
) {
    let mut interval = config.heartbeat_interval;
    // The last assignment, by topic id, until every id is known by name.
    let mut unresolved: Option<Vec<(u128, Vec<i32>)>> = None;
    // After a failure the next heartbeat repeats everything, since the last may be lost.
    let mut full = true;
    let mut last_ok = Instant::now();
    loop {
        if polls.overdue(config.max_poll_interval) {
            // The application stopped asking for records: leave, as the Java client does, so
            // the partitions go to members that read them; join again once it polls.
            tracing::warn!("max.poll.interval.ms passed without a poll; leaving the group");
            let member_id = shared.state().member_id.clone();
            let instance_id = config.group_instance_id.as_deref();
            if let Err(e) = send_leave(&mut coordinator, &member_id, instance_id).await {
                tracing::debug!(error = %e, "leave failed");
            }
            fence(&shared);
            while polls.overdue(config.max_poll_interval) {
                tokio::time::sleep(config.heartbeat_interval).await;
            }
            full = true;
            continue;
        }
        let outcome = heartbeat_once(&shared, &mut coordinator, &config, full).await;
        match outcome {
            Ok(response) => {
                last_ok = Instant::now();
                full = false;
                if response.heartbeat_interval_ms > 0 {
                    interval = Duration::from_millis(response.heartbeat_interval_ms as u64);
                }
                if let Some(assignment) = response.assignment {
                    unresolved = Some(
                        assignment
                            .topic_partitions
                            .into_iter()
                            .map(|t| (t.topic_id.as_u128(), t.partitions))
                            .collect(),
                    );
                }
            }
            Err(Heartbeat::Fenced) => {
                // Join again at once; the consumer reports the partitions lost.
                full = true;
                unresolved = None;
                continue;
            }
            Err(Heartbeat::Retry(why)) => {
                // Only the coordinator fences a member (as librdkafka does with KIP-848): until
                // it answers, the member keeps its partitions and reads on.
                tracing::debug!(error = %why, "consumer group heartbeat failed");
                full = true;
                if last_ok.elapsed() >= config.session_timeout {
                    tracing::warn!(error = %why, "no heartbeat answered for longer than session.timeout.ms; reading on until the coordinator says otherwise");
                    last_ok = Instant::now();
                }
                tokio::time::sleep(config.fetch_error_backoff).await;
                continue;
            }
            Err(Heartbeat::Fatal(e)) => {
                shared.state().failed = Some(e);
                fence(&shared);
                return;
            }
        }
        if let Some(assignment) = &unresolved {
            let topics = shared.state().topics.clone();
            if let Some(target) = resolve(coordinator.cluster(), &topics, assignment).await {
                shared.state().target = Some(target);
                shared.attention.notify_one();
                unresolved = None;
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = shared.wake.notified() => {}
        }
    }
}

enum Heartbeat {
    /// The member must join again; what it owned is lost.
    Fenced,
    /// Try again after a pause.
    Retry(Error),
    Fatal(Error),
}

fn fence(shared: &Shared) {
    let mut state = shared.state();
    state.epoch = JOIN_EPOCH;
    state.owned.clear();
    state.target = None;
    state.report = true;
    state.lost = true;
    drop(state);
    shared.attention.notify_one();
}

async fn heartbeat_once(
    shared: &Shared,
    coordinator: &mut Coordinator,
    config: &ConsumerConfig,
    full: bool,
) -> Result<ConsumerGroupHeartbeatResponse, Heartbeat> {
    let conn = coordinator.conn().await.map_err(Heartbeat::Retry)?;
    let version = conn
        .version_of::<ConsumerGroupHeartbeatRequest>()
        .map_err(|_| Heartbeat::Fatal(unsupported(conn.broker())))?;
    let (request, reported) = {
        let mut state = shared.state();
        let joining = state.epoch == JOIN_EPOCH;
        let full = full || joining;
        let resubscribe = full || std::mem::take(&mut state.resubscribe);
        // Version 0 has the coordinator choose the member id.
        let member_id = if version == 0 && joining {
            String::new()
        } else {
            state.member_id.clone()
        };
        let mut request = ConsumerGroupHeartbeatRequest::default()
            .with_group_id(coordinator.group_id_field())
            .with_member_id(s(&member_id))
            .with_member_epoch(state.epoch)
            .with_rebalance_timeout_ms(-1);
        if full {
            request = request
                .with_instance_id(config.group_instance_id.as_deref().map(s))
                .with_rebalance_timeout_ms(millis(config.max_poll_interval))
                .with_server_assignor(config.group_remote_assignor.as_deref().map(s));
        }
        if resubscribe {
            let topics = state.topics.iter().map(|t| topic_name(t)).collect();
            request = request.with_subscribed_topic_names(Some(topics));
        }
        // A member joining owns nothing, whatever the consumer last reported (the coordinator
        // refuses a join that claims partitions).
        let reported = if joining {
            Some(Vec::new())
        } else {
            (full || state.report).then(|| state.owned.clone())
        };
        state.report = false;
        (request, reported)
    };
    let request = match &reported {
        Some(owned) => {
            let ids = topic_ids(coordinator.cluster(), owned).await;
            request.with_topic_partitions(Some(ids))
        }
        None => request,
    };
    let answer = conn
        .request_at(&request, version, conn.socket_timeout())
        .await;
    let response = match answer {
        Ok(response) => response,
        Err(e) => {
            coordinator.lost();
            shared.state().report |= reported.is_some();
            return Err(Heartbeat::Retry(e));
        }
    };
    match response.error_code {
        0 => {
            let mut state = shared.state();
            if let Some(id) = &response.member_id {
                state.member_id = id.to_string();
            }
            state.epoch = response.member_epoch;
            Ok(response)
        }
        codes::FENCED_MEMBER_EPOCH | codes::UNKNOWN_MEMBER_ID => {
            tracing::debug!(code = response.error_code, "fenced from the consumer group");
            fence(shared);
            Err(Heartbeat::Fenced)
        }
        code @ (codes::NOT_COORDINATOR
        | codes::COORDINATOR_NOT_AVAILABLE
        | codes::COORDINATOR_LOAD_IN_PROGRESS) => {
            coordinator.lost();
            shared.state().report |= reported.is_some();
            Err(Heartbeat::Retry(
                coordinator.error("ConsumerGroupHeartbeat", code),
            ))
        }
        codes::UNSUPPORTED_VERSION => Err(Heartbeat::Fatal(unsupported(conn.broker()))),
        code => Err(Heartbeat::Fatal(Error::Broker {
            api: "ConsumerGroupHeartbeat",
            resource: Resource::Group(coordinator.group_id().to_owned()),
            code: crate::error::KafkaCode::from_code(code).expect("non-zero"),
            message: response.error_message.map(|m| m.to_string()),
        })),
    }
}

/// The error for a coordinator without the KIP-848 protocol, naming the setting.
fn unsupported(broker: &str) -> Error {
    Error::Config(ConfigError::InvalidValue {
        key: "group.protocol".into(),
        value: "consumer".into(),
        reason: format!(
            "the group coordinator {broker} does not serve the KIP-848 consumer group protocol \
             (Kafka 4.0 and later do; 3.7 to 3.9 only with group.coordinator.rebalance.protocols \
             set to classic,consumer); use group.protocol=classic"
        ),
    })
}

/// Partitions by topic name → by topic id, for the heartbeat. A topic's id never changes, so
/// the cache answers even when the rest of its metadata is out of date (a broker down): what
/// the member owns must not be under-reported, or the coordinator would hand on partitions
/// this member still reads. Only an id never cached is asked for; a topic still unknown then
/// (deleted) is left out.
async fn topic_ids(cluster: &Cluster, owned: &TopicPartitions) -> Vec<Owned> {
    let mut out = Vec::new();
    for (topic, partitions) in owned {
        let cached =
            cluster.with_metadata(|m| m.topics.get(topic).map(|t| t.id).filter(|&id| id != 0));
        let id = match cached {
            Some(id) => Some(id),
            None => cluster.topic(topic).await.ok().map(|meta| meta.id),
        };
        if let Some(id) = id {
            out.push(
                Owned::default()
                    .with_topic_id(uuid::Uuid::from_u128(id))
                    .with_partitions(partitions.clone()),
            );
        }
    }
    out
}

/// The assignment by topic name, once metadata names every topic id in it (`None` until then).
/// An id the cache does not know is a topic created since it was read (or the consumer's first
/// look at its subscription): the subscribed topics are asked for again at once, and the ids
/// looked up once more.
pub(super) async fn resolve(
    cluster: &Cluster,
    topics: &[String],
    assignment: &[(u128, Vec<i32>)],
) -> Option<TopicPartitions> {
    let names = |cluster: &Cluster| -> BTreeMap<u128, String> {
        cluster.with_metadata(|m| {
            topics
                .iter()
                .filter_map(|t| {
                    m.topics
                        .get(t)
                        .filter(|meta| meta.id != 0)
                        .map(|meta| (meta.id, t.clone()))
                })
                .collect()
        })
    };
    let mut known = names(cluster);
    if assignment.iter().any(|(id, _)| !known.contains_key(id)) {
        let asked: Vec<&str> = topics.iter().map(String::as_str).collect();
        if let Err(e) = cluster.refresh(&asked, false).await {
            tracing::debug!(error = %e, "metadata for the assignment's topics");
            return None;
        }
        known = names(cluster);
    }
    let mut out: TopicPartitions = Vec::new();
    for (id, partitions) in assignment {
        let name = known.get(id)?;
        let mut partitions = partitions.clone();
        partitions.sort_unstable();
        out.push((name.clone(), partitions));
    }
    out.sort();
    Some(out)
}

fn millis(d: Duration) -> i32 {
    d.as_millis().min(i32::MAX as u128) as i32
}
