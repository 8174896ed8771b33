//! Membership of a share group (KIP-932): ShareGroupHeartbeat to the group coordinator, which
//! hands each member the partitions it reads. Several members read the same partition, each
//! record going to one of them, so an assignment is taken up at once: nothing is revoked
//! first, nothing is committed, and the member reports nothing back but its subscription.
//!
//! ```text
//!  heartbeat task ── ShareGroupHeartbeat: epoch 0 joins (subscription sent), then every
//!     │              heartbeat interval; the member id is the client's own
//!     │  assignment (topic ids) ─► names ─► watch ─► the share consumer fetches from them
//!  FENCED_MEMBER_EPOCH, UNKNOWN_MEMBER_ID ─► assignment emptied, join again at epoch 0
//!  UNSUPPORTED_VERSION, no ShareGroupHeartbeat ─► share groups unavailable (fatal)
//! ```

use std::sync::{Arc, Mutex};
use std::time::Duration;

use kafka_protocol::messages::{ShareGroupHeartbeatRequest, ShareGroupHeartbeatResponse};
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

use super::consumer_group::{new_member_id, resolve};
use super::coordinator::{s, Coordinator};
use super::poll_clock::PollClock;
use super::Attention;
use crate::cluster::{topic_name, Cluster};
use crate::error::{Error, KafkaCode, Resource};
use crate::protocol::codes;
use crate::protocol::consumer_protocol::TopicPartitions;

/// The epoch with which a member joins.
const JOIN_EPOCH: i32 = 0;
/// The epoch with which a member leaves.
const LEAVE_EPOCH: i32 = -1;

/// Settings of the member.
#[derive(Debug, Clone)]
pub(crate) struct ShareMemberConfig {
    pub group_id: String,
    /// `client.rack`, sent once.
    pub rack: Option<String>,
    /// Heartbeats until the coordinator names its interval.
    pub heartbeat_interval: Duration,
    /// How long a coordinator being elected is waited for.
    pub patience: Duration,
    /// The pause after a failed heartbeat.
    pub backoff: Duration,
    /// The member leaves when the application stops asking for records for longer.
    pub max_poll_interval: Duration,
}

#[derive(Default)]
struct State {
    epoch: i32,
    topics: Vec<String>,
    /// The subscription changed: send it with the next heartbeat.
    resubscribe: bool,
    /// Why the member cannot go on.
    failed: Option<Error>,
}

struct Shared {
    member_id: String,
    state: Mutex<State>,
    /// Heartbeat now: the subscription changed.
    wake: Notify,
    /// Wakes the application: the member failed.
    attention: Attention,
    assignment: watch::Sender<TopicPartitions>,
}

impl Shared {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // Every change of State is one assignment: a panic elsewhere never leaves it half-done.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The member lost its assignment (fenced, left, failed): it fetches nothing until the
    /// coordinator names partitions again.
    fn unassign(&self) {
        self.assignment.send_if_modified(|a| {
            let changed = !a.is_empty();
            a.clear();
            changed
        });
    }
}

/// One member of a share group; heartbeats run in a task of their own until
/// [`ShareGroupMember::leave`] or drop.
pub(crate) struct ShareGroupMember {
    shared: Arc<Shared>,
    heartbeat: JoinHandle<()>,
    coordinator: Coordinator,
}

impl Drop for ShareGroupMember {
    fn drop(&mut self) {
        self.heartbeat.abort();
    }
}

impl ShareGroupMember {
    /// Starts heartbeating: the member joins with its first heartbeat.
    pub fn new(
        cluster: Cluster,
        config: ShareMemberConfig,
        topics: Vec<String>,
        polls: PollClock,
        attention: Attention,
    ) -> Self {
        let coordinator = Coordinator::new(
            cluster,
            config.group_id.clone(),
            config.patience,
            config.backoff,
        );
        let (assignment, _) = watch::channel(TopicPartitions::new());
        let shared = Arc::new(Shared {
            member_id: new_member_id(),
            state: Mutex::new(State {
                topics,
                ..State::default()
            }),
            wake: Notify::new(),
            attention,
            assignment,
        });
        let heartbeat = tokio::spawn(heartbeats(
            shared.clone(),
            coordinator.another(),
            config,
            polls,
        ));
        ShareGroupMember {
            shared,
            heartbeat,
            coordinator,
        }
    }

    /// The member id, the client's own for the member's life: ShareFetch and ShareAcknowledge
    /// carry it too.
    pub fn member_id(&self) -> &str {
        &self.shared.member_id
    }

    /// The partitions the member reads, as the coordinator last assigned them (by name).
    pub fn assignment(&self) -> watch::Receiver<TopicPartitions> {
        self.shared.assignment.subscribe()
    }

    /// The error the member stopped on, if it did.
    pub fn failed(&self) -> Option<Error> {
        self.shared.state().failed.clone()
    }

    /// The topics subscribed to are now `topics`: sent with the next heartbeat, at once.
    pub fn subscribe(&self, topics: Vec<String>) {
        let mut state = self.shared.state();
        state.topics = topics;
        state.resubscribe = true;
        drop(state);
        self.shared.wake.notify_one();
    }

    /// Leaves the group: the coordinator hands the member's partitions to the others at once.
    /// Records the member still holds are released by closing its share sessions, not here.
    pub async fn leave(&mut self) -> Result<(), Error> {
        self.heartbeat.abort();
        self.shared.unassign();
        if self.shared.state().epoch <= JOIN_EPOCH {
            return Ok(());
        }
        let request = ShareGroupHeartbeatRequest::default()
            .with_group_id(self.coordinator.group_id_field())
            .with_member_id(s(&self.shared.member_id))
            .with_member_epoch(LEAVE_EPOCH);
        let conn = self.coordinator.conn().await?;
        let (response, _) = conn.request(&request).await?;
        self.shared.state().epoch = JOIN_EPOCH;
        match response.error_code {
            0
            | codes::UNKNOWN_MEMBER_ID
            | codes::FENCED_MEMBER_EPOCH
            | codes::GROUP_ID_NOT_FOUND => Ok(()),
            code => Err(self.coordinator.error("ShareGroupHeartbeat", code)),
        }
    }
}

/// The heartbeat loop: joins, heartbeats on the coordinator's interval, turns assignments into
/// partitions by name, and joins again when fenced.
async fn heartbeats(
    shared: Arc<Shared>,
    mut coordinator: Coordinator,
    config: ShareMemberConfig,
    polls: PollClock,
) {
    let mut interval = config.heartbeat_interval;
    // The last assignment, by topic id, until every id is known by name.
    let mut unresolved: Option<Vec<(u128, Vec<i32>)>> = None;
    // After a failure the next heartbeat repeats the subscription, since the last may be lost.
    let mut full = true;
    loop {
        if polls.overdue(config.max_poll_interval) {
            // The application stopped asking for records: leave, as the Java client does, so
            // that the records go to members that read them; join again once it polls.
            tracing::warn!("max.poll.interval.ms passed without a poll; leaving the share group");
            if let Err(e) = send_leave(&shared, &mut coordinator).await {
                tracing::debug!(error = %e, "leaving the share group failed");
            }
            shared.unassign();
            while polls.overdue(config.max_poll_interval) {
                tokio::time::sleep(config.heartbeat_interval).await;
            }
            full = true;
            continue;
        }
        match heartbeat_once(&shared, &mut coordinator, &config, full).await {
            Ok(response) => {
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
                // Join again, after a pause: a coordinator that fences every heartbeat must
                // not get them in a tight loop.
                full = true;
                unresolved = None;
                tokio::time::sleep(config.backoff).await;
                continue;
            }
            Err(Heartbeat::Retry(why)) => {
                tracing::debug!(error = %why, "share group heartbeat failed");
                full = true;
                tokio::time::sleep(config.backoff).await;
                continue;
            }
            Err(Heartbeat::Fatal(e)) => {
                tracing::warn!(error = %e, "the share group member stops");
                shared.state().failed = Some(e);
                shared.unassign();
                shared.attention.notify_one();
                return;
            }
        }
        if let Some(assignment) = &unresolved {
            let topics = shared.state().topics.clone();
            if let Some(partitions) = resolve(coordinator.cluster(), &topics, assignment).await {
                shared.assignment.send_if_modified(|a| {
                    let changed = *a != partitions;
                    *a = partitions;
                    changed
                });
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
    /// The member must join again; its assignment is gone.
    Fenced,
    /// Try again after a pause.
    Retry(Error),
    Fatal(Error),
}

async fn send_leave(shared: &Shared, coordinator: &mut Coordinator) -> Result<(), Error> {
    let conn = coordinator.conn().await?;
    let request = ShareGroupHeartbeatRequest::default()
        .with_group_id(coordinator.group_id_field())
        .with_member_id(s(&shared.member_id))
        .with_member_epoch(LEAVE_EPOCH);
    conn.request(&request).await?;
    shared.state().epoch = JOIN_EPOCH;
    Ok(())
}

async fn heartbeat_once(
    shared: &Shared,
    coordinator: &mut Coordinator,
    config: &ShareMemberConfig,
    full: bool,
) -> Result<ShareGroupHeartbeatResponse, Heartbeat> {
    let conn = coordinator.conn().await.map_err(Heartbeat::Retry)?;
    let version = conn
        .version_of::<ShareGroupHeartbeatRequest>()
        .map_err(|_| Heartbeat::Fatal(unavailable(conn.broker(), false)))?;
    let request = {
        let mut state = shared.state();
        let joining = state.epoch == JOIN_EPOCH;
        let mut request = ShareGroupHeartbeatRequest::default()
            .with_group_id(coordinator.group_id_field())
            .with_member_id(s(&shared.member_id))
            .with_member_epoch(state.epoch);
        if full || joining {
            request = request.with_rack_id(config.rack.as_deref().map(s));
        }
        if full || joining || std::mem::take(&mut state.resubscribe) {
            let topics = state.topics.iter().map(|t| topic_name(t)).collect();
            request = request.with_subscribed_topic_names(Some(topics));
        }
        request
    };
    let response = match conn
        .request_at(&request, version, conn.socket_timeout())
        .await
    {
        Ok(response) => response,
        Err(e) => {
            coordinator.lost();
            shared.state().resubscribe = true;
            return Err(Heartbeat::Retry(e));
        }
    };
    match response.error_code {
        0 => {
            shared.state().epoch = response.member_epoch;
            Ok(response)
        }
        codes::FENCED_MEMBER_EPOCH | codes::UNKNOWN_MEMBER_ID => {
            tracing::debug!(code = response.error_code, "fenced from the share group");
            shared.state().epoch = JOIN_EPOCH;
            shared.unassign();
            Err(Heartbeat::Fenced)
        }
        code @ (codes::NOT_COORDINATOR
        | codes::COORDINATOR_NOT_AVAILABLE
        | codes::COORDINATOR_LOAD_IN_PROGRESS) => {
            coordinator.lost();
            shared.state().resubscribe = true;
            Err(Heartbeat::Retry(
                coordinator.error("ShareGroupHeartbeat", code),
            ))
        }
        codes::UNSUPPORTED_VERSION => Err(Heartbeat::Fatal(unavailable(conn.broker(), true))),
        code => Err(Heartbeat::Fatal(Error::Broker {
            api: "ShareGroupHeartbeat",
            resource: Resource::Group(coordinator.group_id().to_owned()),
            code: KafkaCode::from_code(code).expect("non-zero"),
            message: response.error_message.map(|m| m.to_string()),
        })),
    }
}

/// The error for a cluster without share groups: one whose brokers lack the API (before Kafka
/// 4.1), or one that has them turned off (`off`: the API answered UNSUPPORTED_VERSION, as
/// Kafka 4.1 and later do while the `share.version` feature is 0).
pub(crate) fn unavailable(broker: &str, off: bool) -> Error {
    let reason = if off {
        "the cluster has them turned off (its share.version feature is 0; \
         `kafka-features.sh upgrade --feature share.version=1` turns them on)"
    } else {
        "the broker does not speak the share group APIs (Kafka 4.2 and later have them, and \
         4.1 with the share.version feature turned on)"
    };
    Error::ShareGroupsUnavailable {
        broker: broker.to_owned(),
        reason: reason.to_owned(),
    }
}
