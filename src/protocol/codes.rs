//! The Kafka error codes purekafka handles by name.

/// The fetch offset is outside the partition's log.
pub const OFFSET_OUT_OF_RANGE: i16 = 1;
/// The broker does not host the topic or partition.
pub const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
/// The partition has no leader at the moment.
pub const LEADER_NOT_AVAILABLE: i16 = 5;
/// The broker addressed does not lead the partition (any longer).
pub const NOT_LEADER_OR_FOLLOWER: i16 = 6;
/// The broker is not available.
pub const BROKER_NOT_AVAILABLE: i16 = 8;
/// The replica is not available for the partition.
pub const REPLICA_NOT_AVAILABLE: i16 = 9;
/// The leader epoch in the request is older than the broker's: the client's metadata is stale.
pub const FENCED_LEADER_EPOCH: i16 = 74;
/// The leader epoch in the request is newer than the broker's: the broker is behind.
pub const UNKNOWN_LEADER_EPOCH: i16 = 76;
/// The leader has not yet caught up with the high watermark after an election.
pub const OFFSET_NOT_AVAILABLE: i16 = 78;
/// The broker does not enable the SASL mechanism asked for.
pub const UNSUPPORTED_SASL_MECHANISM: i16 = 33;
/// A SASL request came when the broker did not expect one.
pub const ILLEGAL_SASL_STATE: i16 = 34;
/// The broker does not speak the API version asked for.
pub const UNSUPPORTED_VERSION: i16 = 35;
/// The topic exists already.
pub const TOPIC_ALREADY_EXISTS: i16 = 36;
/// The broker saw a sequence number out of order for this producer and partition.
pub const OUT_OF_ORDER_SEQUENCE_NUMBER: i16 = 45;
/// The broker already has this batch (a retry of a batch that was written).
pub const DUPLICATE_SEQUENCE_NUMBER: i16 = 46;
/// The batch carries an older producer epoch than the broker knows.
pub const INVALID_PRODUCER_EPOCH: i16 = 47;
/// The broker no longer knows the producer id (its records expired).
pub const UNKNOWN_PRODUCER_ID: i16 = 59;
/// A transaction of the same producer is still completing (retriable for the producer).
pub const CONCURRENT_TRANSACTIONS: i16 = 51;
/// The coordinator is still loading the group.
pub const COORDINATOR_LOAD_IN_PROGRESS: i16 = 14;
/// The coordinator is not available.
pub const COORDINATOR_NOT_AVAILABLE: i16 = 15;
/// The broker is not this group's coordinator.
pub const NOT_COORDINATOR: i16 = 16;
/// The generation is not the group's current one.
pub const ILLEGAL_GENERATION: i16 = 22;
/// The coordinator does not know this member id.
pub const UNKNOWN_MEMBER_ID: i16 = 25;
/// The group is rebalancing: rejoin.
pub const REBALANCE_IN_PROGRESS: i16 = 27;
/// JoinGroup v4+: join again with the member id the broker assigned.
pub const MEMBER_ID_REQUIRED: i16 = 79;
/// Another member holds this group.instance.id.
pub const FENCED_INSTANCE_ID: i16 = 82;
/// The member's assignors share none with the group's.
pub const INCONSISTENT_GROUP_PROTOCOL: i16 = 23;
/// The group is not known; DescribeGroups' answer for a KIP-848 group on Kafka 4 ("not a
/// classic group").
pub const GROUP_ID_NOT_FOUND: i16 = 69;
/// The broker no longer has the fetch session the request names (KIP-227).
pub const FETCH_SESSION_ID_NOT_FOUND: i16 = 70;
/// The fetch session's epoch is not the one the broker expects (KIP-227).
pub const INVALID_FETCH_SESSION_EPOCH: i16 = 71;
/// The member's epoch is older than the group's: it was fenced and must rejoin (KIP-848).
pub const FENCED_MEMBER_EPOCH: i16 = 110;
/// A static member's instance id is still held by an earlier member (KIP-848).
pub const UNRELEASED_INSTANCE_ID: i16 = 111;
/// The server-side assignor named is not one the broker has (KIP-848).
pub const UNSUPPORTED_ASSIGNOR: i16 = 112;
/// An offset commit came with an epoch older than the member's (KIP-848).
pub const STALE_MEMBER_EPOCH: i16 = 113;
/// The record is not acquired by this member (any more): its acknowledgement came too late
/// (the acquisition lock expired) or from another member (KIP-932).
pub const INVALID_RECORD_STATE: i16 = 121;
/// The broker has no share session for the member (KIP-932).
pub const SHARE_SESSION_NOT_FOUND: i16 = 122;
/// The share session's epoch is not the one the broker expects (KIP-932).
pub const INVALID_SHARE_SESSION_EPOCH: i16 = 123;
/// The broker holds as many share sessions as it may (KIP-932).
pub const SHARE_SESSION_LIMIT_REACHED: i16 = 133;
