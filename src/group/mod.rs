//! Group coordination, the layer under the consumer: finding the coordinator and committing
//! through it ([`coordinator`]), the classic JoinGroup/SyncGroup member ([`classic`]) and its
//! assignors ([`assignor`]), the KIP-848 member ([`consumer_group`]), the share group member
//! ([`share_group`], KIP-932), and the poll clock they use for `max.poll.interval.ms`
//! ([`poll_clock`]).
//!
//! ```text
//!  consumer (membership, subscription, listener) ─► group ─► cluster, conn, protocol, config
//! ```
//!
//! The transactional producer finds its transaction coordinator with [`coordinator`] too, and
//! commits a group's offsets with a [`ConsumerGroupMetadata`] the consumer gives out.
//!
//! Nothing here imports the consumer: what a member needs of it (the topics it subscribes to,
//! the wake-up of a waiting `recv`, when the application last polled) comes in as the shared
//! handles below.

pub(crate) mod assignor;
pub(crate) mod classic;
pub(crate) mod consumer_group;
pub(crate) mod coordinator;
pub(crate) mod poll_clock;
pub(crate) mod share_group;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use crate::cluster::Metadata;

/// The group a consumer is in, as the transaction's offsets are committed for it
/// ([`Consumer::group_metadata`](crate::Consumer::group_metadata)). With a generation and
/// member id (Kafka 2.5 and later), the group coordinator refuses the offsets of a member the
/// group has moved on from, so a zombie's transaction cannot commit them (KIP-447).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConsumerGroupMetadata {
    /// `group.id`.
    pub group_id: String,
    /// The generation (classic group) or member epoch (KIP-848 group); -1 for a consumer that
    /// assigns its own partitions.
    pub generation_id: i32,
    /// The member id; empty for a consumer that assigns its own partitions.
    pub member_id: String,
    /// `group.instance.id`, for a static member.
    pub group_instance_id: Option<String>,
}

impl ConsumerGroupMetadata {
    /// The metadata of `group_id` alone, with no member: the coordinator then checks no
    /// generation, as for offsets committed by a consumer outside the group.
    pub fn new(group_id: impl Into<String>) -> Self {
        ConsumerGroupMetadata {
            group_id: group_id.into(),
            generation_id: -1,
            member_id: String::new(),
            group_instance_id: None,
        }
    }
}

/// Wakes a consumer waiting in `recv` (for a fetch, or for partitions) when its membership
/// needs it: a rejoin was asked for, a join ended, a KIP-848 target or fencing arrived. Without
/// it, such news would wait for the fetch in progress, up to `fetch.wait.max.ms`.
pub(crate) type Attention = Arc<tokio::sync::Notify>;

/// The topics a member is subscribed to, as the consumer last resolved them; shared with the
/// member, which sends them when it joins (classic) or heartbeats (KIP-848).
pub(crate) type SharedTopics = Arc<Mutex<Vec<String>>>;

/// As group leader, the partition count of every topic the group subscribes to (`None`: the
/// topic did not exist) when this member last assigned: once the cluster says otherwise, the
/// leader rejoins so the assignment covers what is there now.
pub(crate) type AssignedFrom = Arc<Mutex<Option<BTreeMap<String, Option<usize>>>>>;

/// The partition count of each of `topics` in `metadata` (`None` where the topic does not
/// exist or is in error): what a leader's assignment was computed from.
pub(crate) fn partition_counts<'a>(
    metadata: &Metadata,
    topics: impl IntoIterator<Item = &'a String>,
) -> BTreeMap<String, Option<usize>> {
    topics
        .into_iter()
        .map(|t| {
            let count = metadata
                .topics
                .get(t)
                .filter(|meta| meta.error.is_none())
                .map(|meta| meta.partitions.len());
            (t.clone(), count)
        })
        .collect()
}
