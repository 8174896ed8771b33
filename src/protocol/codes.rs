//! The Kafka error codes purekafka handles by name.

/// The fetch offset is outside the partition's log.
pub const OFFSET_OUT_OF_RANGE: i16 = 1;
/// The broker does not host the topic or partition.
pub const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
/// The partition has no leader at the moment.
pub const LEADER_NOT_AVAILABLE: i16 = 5;
/// The broker is not available.
pub const BROKER_NOT_AVAILABLE: i16 = 8;
/// The broker does not enable the SASL mechanism asked for.
pub const UNSUPPORTED_SASL_MECHANISM: i16 = 33;
/// A SASL request came when the broker did not expect one.
pub const ILLEGAL_SASL_STATE: i16 = 34;
/// The broker does not speak the API version asked for.
pub const UNSUPPORTED_VERSION: i16 = 35;
/// The topic exists already.
pub const TOPIC_ALREADY_EXISTS: i16 = 36;
