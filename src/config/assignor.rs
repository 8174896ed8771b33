//! Which partition assignors a classic consumer group member offers
//! (`partition.assignment.strategy`): a setting. The assignments themselves are made in the
//! group layer (`crate::group::assignor`).

/// A partition assignment strategy (`partition.assignment.strategy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Assignor {
    /// Per topic, consecutive ranges of partitions to members in member-id order.
    Range,
    /// All partitions of all topics dealt out to members in turn.
    RoundRobin,
    /// Balanced, keeping the partitions members own, and moving partitions in two rebalances
    /// (revoke, then assign) without stopping the others: Java's `CooperativeStickyAssignor`
    /// (KIP-429). Cooperative: see [`Assignor::is_cooperative`].
    CooperativeSticky,
}

impl Assignor {
    /// The protocol name members agree on in JoinGroup.
    pub fn name(self) -> &'static str {
        match self {
            Assignor::Range => "range",
            Assignor::RoundRobin => "roundrobin",
            Assignor::CooperativeSticky => "cooperative-sticky",
        }
    }

    /// Whether the assignor follows the cooperative protocol (KIP-429): members keep their
    /// partitions while they rejoin, send them in their subscription (`owned` and
    /// `generation`), revoke only what their new assignment lacks, and rejoin at once when they
    /// revoked anything. Eager assignors revoke everything before joining.
    pub fn is_cooperative(self) -> bool {
        matches!(self, Assignor::CooperativeSticky)
    }

    /// The assignor called `name`.
    pub fn from_name(name: &str) -> Option<Assignor> {
        match name {
            "range" => Some(Assignor::Range),
            "roundrobin" => Some(Assignor::RoundRobin),
            "cooperative-sticky" => Some(Assignor::CooperativeSticky),
            _ => None,
        }
    }
}
