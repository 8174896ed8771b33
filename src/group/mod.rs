//! Group coordination, the layer under the consumer: finding the coordinator and committing
//! through it ([`coordinator`]), the classic JoinGroup/SyncGroup member ([`classic`]) and its
//! assignors ([`assignor`]), the KIP-848 member ([`consumer_group`]), and the poll clock both
//! use for `max.poll.interval.ms` ([`poll_clock`]).
//!
//! ```text
//!  consumer (membership, subscription, listener) ─► group ─► cluster, conn, protocol, config
//! ```
//!
//! Nothing here imports the consumer: what a member needs of it (the topics it subscribes to,
//! the wake-up of a waiting `recv`, when the application last polled) comes in as the shared
//! handles below.

pub(crate) mod assignor;
pub(crate) mod classic;
pub(crate) mod consumer_group;
pub(crate) mod coordinator;
pub(crate) mod poll_clock;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use crate::cluster::Metadata;

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
