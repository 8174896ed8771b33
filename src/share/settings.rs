//! The share consumer's settings, from the client configuration: what it takes, and the
//! settings a share group decides for itself, refused by name as the Java client refuses them.

use std::time::Duration;

use super::driver::Params;
use crate::config::{ClientConfig, ConsumerConfig, GroupProtocol, ShareAcknowledgementMode};
use crate::error::ConfigError;
use crate::group::share_group::ShareMemberConfig;

/// The share consumer's settings, from the client configuration.
pub(super) struct Settings {
    pub mode: ShareAcknowledgementMode,
    pub max_poll_records: usize,
    pub member: ShareMemberConfig,
    pub params: Params,
    pub close_timeout: Duration,
}

impl Settings {
    pub(super) fn of(config: &ClientConfig, group_id: String) -> Settings {
        let k = &config.consumer;
        // Java's and librdkafka's default for share consumers; the plain consumer has none.
        let max_poll_records = match k.max_poll_records {
            usize::MAX => DEFAULT_MAX_POLL_RECORDS,
            n => n,
        };
        let limit = config.common.receive_message_max_bytes;
        Settings {
            mode: k.share_acknowledgement_mode,
            max_poll_records,
            member: ShareMemberConfig {
                group_id: group_id.clone(),
                rack: k.client_rack.clone(),
                heartbeat_interval: k.heartbeat_interval,
                patience: k.session_timeout,
                backoff: k.fetch_error_backoff,
                max_poll_interval: k.max_poll_interval,
            },
            params: Params {
                group_id,
                member_id: String::new(),
                max_wait: k.fetch_wait_max,
                min_bytes: k.fetch_min_bytes,
                max_bytes: k.fetch_max_bytes.min(limit.saturating_sub(512) as i32),
                max_records: max_poll_records.min(i32::MAX as usize) as i32,
                check_crcs: k.check_crcs,
                decompression_limit: limit,
                backoff: k.fetch_error_backoff,
            },
            close_timeout: config.common.request_timeout,
        }
    }
}

/// `max.poll.records` of a share consumer that sets none, as in Java and librdkafka.
pub(super) const DEFAULT_MAX_POLL_RECORDS: usize = 500;

/// The `group.id`, and no setting a share group decides for itself: those the Java client
/// refuses for a share consumer are refused here, naming the group config that takes their
/// place. A setting equal to its default cannot be told from one left alone, so it passes.
pub(super) fn check(config: &ConsumerConfig) -> Result<String, ConfigError> {
    let defaults = ClientConfig::default().consumer;
    let refuse = |key: &str, instead: &str| {
        Err(ConfigError::InvalidValue {
            key: key.into(),
            value: "(set)".into(),
            reason: format!("cannot be set for a share consumer: {instead}"),
        })
    };
    if config.auto_offset_reset != defaults.auto_offset_reset {
        return refuse(
            "auto.offset.reset",
            "a share group starts where its group config share.auto.offset.reset says",
        );
    }
    if config.enable_auto_commit != defaults.enable_auto_commit {
        return refuse(
            "enable.auto.commit",
            "records are acknowledged (share.acknowledgement.mode), not committed",
        );
    }
    if config.group_instance_id.is_some() {
        return refuse("group.instance.id", "share groups have no static members");
    }
    if config.isolation_level != defaults.isolation_level {
        return refuse(
            "isolation.level",
            "the group config share.isolation.level decides it",
        );
    }
    if config.group_protocol != GroupProtocol::Classic {
        return refuse("group.protocol", "a share group has a protocol of its own");
    }
    if config.group_remote_assignor.is_some() {
        return refuse(
            "group.remote.assignor",
            "share groups assign with the broker's share assignor",
        );
    }
    if config.assignors != defaults.assignors {
        return refuse(
            "partition.assignment.strategy",
            "share groups assign with the broker's share assignor",
        );
    }
    if config.heartbeat_interval != defaults.heartbeat_interval {
        return refuse(
            "heartbeat.interval.ms",
            "the group config share.heartbeat.interval.ms decides it",
        );
    }
    if config.session_timeout != defaults.session_timeout {
        return refuse(
            "session.timeout.ms",
            "the group config share.session.timeout.ms decides it",
        );
    }
    match &config.group_id {
        Some(id) if !id.is_empty() => Ok(id.clone()),
        _ => Err(ConfigError::Missing {
            key: "group.id".into(),
        }),
    }
}
