//! The group coordinator as both membership protocols use it: found with FindCoordinator, and
//! asked for committed offsets (OffsetFetch) and to store new ones (OffsetCommit). A
//! transactional producer finds its transaction coordinator the same way.

use std::collections::HashMap;
use std::time::Duration;

use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::{
    FindCoordinatorRequest, GroupId, OffsetCommitRequest, OffsetFetchRequest,
};
use kafka_protocol::protocol::StrBytes;

use crate::cluster::{per_topic, topic_name, Cluster};
use crate::conn::Connection;
use crate::error::{Error, KafkaCode, Resource};
use crate::protocol::codes;
use crate::protocol::consumer_protocol::TopicPartitions;

pub(crate) fn s(value: &str) -> StrBytes {
    StrBytes::from_string(value.to_owned())
}

/// A member as the group knew it at one moment: its id and generation (classic) or member
/// epoch (KIP-848). A commit made as such an identity is refused once the group has moved
/// on, rather than land for partitions the member no longer owns.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Identity {
    pub member_id: String,
    pub generation: i32,
}

/// Why a commit failed, as far as the membership cares.
pub(crate) enum CommitError {
    /// The group moved on (rebalancing, or this member is stale): rejoin.
    Stale(Error),
    /// Anything else.
    Other(Error),
}

/// Whether an OffsetCommit error code says the group moved on without this member's
/// generation (or epoch): a rebalance under way, or the member dropped or fenced.
pub(crate) fn stale_commit(code: i16) -> bool {
    matches!(
        code,
        codes::REBALANCE_IN_PROGRESS
            | codes::ILLEGAL_GENERATION
            | codes::UNKNOWN_MEMBER_ID
            | codes::STALE_MEMBER_EPOCH
            | codes::FENCED_MEMBER_EPOCH
    )
}

impl From<CommitError> for Error {
    fn from(e: CommitError) -> Error {
        match e {
            CommitError::Stale(e) | CommitError::Other(e) => e,
        }
    }
}

/// The topics of an OffsetCommit request committing `offsets` (`(topic, partition, next offset
/// to read)`), with no leader epoch.
pub(crate) fn commit_topics(offsets: &[(&str, i32, i64)]) -> Vec<OffsetCommitRequestTopic> {
    per_topic(offsets.iter().copied())
        .into_iter()
        .map(|(topic, partitions)| {
            OffsetCommitRequestTopic::default()
                .with_name(topic_name(topic))
                .with_partitions(
                    partitions
                        .into_iter()
                        .map(|(partition, offset)| {
                            OffsetCommitRequestPartition::default()
                                .with_partition_index(partition)
                                .with_committed_offset(offset)
                                .with_committed_leader_epoch(-1)
                        })
                        .collect(),
                )
        })
        .collect()
}

/// The first OffsetFetch version with `require_stable`.
const REQUIRE_STABLE: i16 = 7;

/// FindCoordinator's key types.
const GROUP: i8 = 0;
const TRANSACTION: i8 = 1;

/// One group's coordinator, with a connection of its own for joins and offsets; or a
/// transactional id's.
pub(crate) struct Coordinator {
    cluster: Cluster,
    group_id: String,
    key_type: i8,
    /// OffsetFetch waits out offsets that open transactions hold (KIP-447).
    require_stable: bool,
    conn: Option<Connection>,
    /// How long to wait for a coordinator being elected.
    patience: Duration,
    retry_backoff: Duration,
}

impl Coordinator {
    pub fn new(cluster: Cluster, group_id: String, patience: Duration, backoff: Duration) -> Self {
        Coordinator {
            cluster,
            group_id,
            key_type: GROUP,
            require_stable: false,
            conn: None,
            patience,
            retry_backoff: backoff,
        }
    }

    /// The transaction coordinator of `transactional_id`.
    pub fn transaction(
        cluster: Cluster,
        transactional_id: String,
        patience: Duration,
        backoff: Duration,
    ) -> Self {
        Coordinator {
            key_type: TRANSACTION,
            ..Coordinator::new(cluster, transactional_id, patience, backoff)
        }
    }

    /// Committed offsets are read as a `read_committed` consumer must read them: an offset a
    /// transaction has sent, but not yet committed or aborted, is waited out (OffsetFetch
    /// `require_stable`, Kafka 2.5 and later), so that a consumer that starts while the
    /// transaction completes does not read the offset before it, and process its records twice.
    pub fn stable(mut self, on: bool) -> Self {
        self.require_stable = on;
        self
    }

    pub fn cluster(&self) -> &Cluster {
        &self.cluster
    }

    pub fn group_id(&self) -> &str {
        &self.group_id
    }

    pub fn group_id_field(&self) -> GroupId {
        GroupId(s(&self.group_id))
    }

    /// An error for this group (or transactional id) from `api`.
    pub fn error(&self, api: &'static str, code: i16) -> Error {
        let key = self.group_id.clone();
        Error::Broker {
            api,
            resource: match self.key_type {
                TRANSACTION => Resource::TransactionalId(key),
                _ => Resource::Group(key),
            },
            code: KafkaCode::from_code(code).expect("non-zero"),
            message: None,
        }
    }

    /// The coordinator's node id and address, from FindCoordinator, retried while it is being
    /// elected.
    async fn find(&self) -> Result<(i32, String), Error> {
        let mut waited = Duration::ZERO;
        loop {
            let conn = self.cluster.any_broker().await?;
            let request = FindCoordinatorRequest::default()
                .with_key(s(&self.group_id))
                .with_key_type(self.key_type);
            let (response, _) = conn.request(&request).await?;
            match response.error_code {
                0 => {
                    let addr = format!("{}:{}", response.host.as_str(), response.port);
                    return Ok((response.node_id.0, addr));
                }
                code @ (codes::COORDINATOR_NOT_AVAILABLE | codes::COORDINATOR_LOAD_IN_PROGRESS)
                    if waited < self.patience =>
                {
                    tracing::debug!(group = %self.group_id, code, "coordinator not ready");
                    tokio::time::sleep(self.retry_backoff).await;
                    waited += self.retry_backoff;
                }
                code => return Err(self.error("FindCoordinator", code)),
            }
        }
    }

    /// The connection to the coordinator, found again when the last one closed.
    pub async fn conn(&mut self) -> Result<Connection, Error> {
        if let Some(conn) = self.conn.as_ref().filter(|c| !c.is_closed()) {
            return Ok(conn.clone());
        }
        let (_, addr) = self.find().await?;
        let conn = self.cluster.dedicated(&addr).await?;
        self.conn = Some(conn.clone());
        Ok(conn)
    }

    /// The coordinator's node id and the cluster's pooled connection to it, for one-off
    /// requests (the admin client's): found afresh each time.
    pub async fn shared(&self) -> Result<(i32, Connection), Error> {
        let (node, _) = self.find().await?;
        Ok((node, self.cluster.broker(node).await?))
    }

    /// A connection of its own to the coordinator, found afresh: for heartbeats, which follow
    /// the coordinator when it moves.
    pub async fn dedicated(&self) -> Result<Connection, Error> {
        let (_, addr) = self.find().await?;
        self.cluster.dedicated(&addr).await
    }

    /// Another handle on the same group's coordinator, with no connection yet.
    pub fn another(&self) -> Coordinator {
        Coordinator {
            key_type: self.key_type,
            require_stable: self.require_stable,
            ..Coordinator::new(
                self.cluster.clone(),
                self.group_id.clone(),
                self.patience,
                self.retry_backoff,
            )
        }
    }

    /// Forgets the coordinator: it moved, or its connection failed.
    pub fn lost(&mut self) {
        self.conn = None;
    }

    /// The committed offset of each partition (`None` where the group has none). Retriable
    /// answers are asked again, up to the coordinator's patience: with
    /// [`Coordinator::stable`], offsets an open transaction holds (UNSTABLE_OFFSET_COMMIT,
    /// KIP-447) are waited for that way.
    pub async fn committed(
        &mut self,
        partitions: &TopicPartitions,
    ) -> Result<HashMap<(String, i32), Option<i64>>, Error> {
        if partitions.is_empty() {
            return Ok(HashMap::new());
        }
        let mut waited = Duration::ZERO;
        loop {
            match self.fetch_committed(partitions).await {
                // Offsets an open transaction holds; a stable read the coordinator could not
                // finish in time (REQUEST_TIMED_OUT: from Kafka 4, such a read waits for the
                // offsets partition's replicas, which stall while one of them is down); the
                // coordinator moving or loading.
                Err(e)
                    if e.kafka_code().is_some_and(|c| c.is_retriable())
                        && waited < self.patience =>
                {
                    tracing::debug!(group = %self.group_id, error = %e, "committed offsets asked again");
                    tokio::time::sleep(self.retry_backoff).await;
                    waited += self.retry_backoff;
                }
                outcome => return outcome,
            }
        }
    }

    async fn fetch_committed(
        &mut self,
        partitions: &TopicPartitions,
    ) -> Result<HashMap<(String, i32), Option<i64>>, Error> {
        let conn = self.conn().await?;
        let version = conn.version_of::<OffsetFetchRequest>()?;
        let request = OffsetFetchRequest::default()
            .with_group_id(self.group_id_field())
            .with_topics(Some(
                partitions
                    .iter()
                    .map(|(t, ps)| {
                        OffsetFetchRequestTopic::default()
                            .with_name(topic_name(t))
                            .with_partition_indexes(ps.clone())
                    })
                    .collect(),
            ))
            .with_require_stable(self.require_stable && version >= REQUIRE_STABLE);
        let response = conn
            .request_at(&request, version, conn.socket_timeout())
            .await
            .inspect_err(|_| self.lost())?;
        if matches!(
            response.error_code,
            codes::NOT_COORDINATOR | codes::COORDINATOR_NOT_AVAILABLE
        ) {
            // The group moved: find its coordinator again next time.
            self.lost();
        }
        if response.error_code != 0 {
            return Err(self.error("OffsetFetch", response.error_code));
        }
        let mut out = HashMap::new();
        for t in response.topics {
            for p in t.partitions {
                if p.error_code != 0 {
                    return Err(self.error("OffsetFetch", p.error_code));
                }
                let offset = (p.committed_offset >= 0).then_some(p.committed_offset);
                out.insert((t.name.0.to_string(), p.partition_index), offset);
            }
        }
        Ok(out)
    }

    /// Commits `offsets` (the next offset to read, per partition) as member `who`, at its
    /// generation (classic) or member epoch (KIP-848); `instance_id` is a static member's.
    pub async fn commit(
        &mut self,
        who: &Identity,
        instance_id: Option<&str>,
        offsets: &[(&str, i32, i64)],
    ) -> Result<(), CommitError> {
        if offsets.is_empty() {
            return Ok(());
        }
        let conn = self.conn().await.map_err(CommitError::Other)?;
        let topics = commit_topics(offsets);
        let request = OffsetCommitRequest::default()
            .with_group_id(self.group_id_field())
            .with_generation_id_or_member_epoch(who.generation)
            .with_member_id(s(&who.member_id))
            .with_group_instance_id(instance_id.map(s))
            .with_retention_time_ms(-1)
            .with_topics(topics);
        let (response, _) = conn.request(&request).await.map_err(|e| {
            // Found again next time: its broker may be gone.
            self.lost();
            CommitError::Other(e)
        })?;
        for t in &response.topics {
            for p in &t.partitions {
                match p.error_code {
                    0 => {}
                    code if stale_commit(code) => {
                        return Err(CommitError::Stale(self.error("OffsetCommit", code)))
                    }
                    code @ (codes::NOT_COORDINATOR | codes::COORDINATOR_NOT_AVAILABLE) => {
                        self.lost();
                        return Err(CommitError::Other(self.error("OffsetCommit", code)));
                    }
                    code => return Err(CommitError::Other(self.error("OffsetCommit", code))),
                }
            }
        }
        Ok(())
    }
}
