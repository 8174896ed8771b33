//! The librdkafka / Java property names and how each one's string value is parsed into the typed
//! settings of [`ClientConfig`].

use std::time::Duration;

use super::{
    Acks, Assignor, AutoOffsetReset, ClientConfig, Compression, GroupProtocol, IsolationLevel,
    SaslMechanism, Secret, SecurityProtocol,
};
use crate::error::ConfigError;

/// Applies one property. Secrets are never echoed back in errors.
pub(super) fn apply(config: &mut ClientConfig, key: &str, value: &str) -> Result<(), ConfigError> {
    let v = Value { key, value };
    let c = &mut config.common;
    let p = &mut config.producer;
    let k = &mut config.consumer;
    match key {
        "bootstrap.servers" | "metadata.broker.list" => {
            let servers: Vec<String> = value
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect();
            if servers.is_empty() {
                return Err(v.invalid("expected a comma-separated list of host:port"));
            }
            for server in &servers {
                check_host_port_for(key, server)?;
            }
            c.bootstrap_servers = servers;
        }
        "security.protocol" => {
            let protocol = SecurityProtocol::ALL
                .into_iter()
                .find(|p| p.name().eq_ignore_ascii_case(value))
                .ok_or_else(|| v.invalid("expected PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL"))?;
            if protocol.uses_tls() && !cfg!(feature = "tls") {
                return Err(v.invalid(super::NO_TLS));
            }
            c.security_protocol = protocol;
        }
        "sasl.mechanism" | "sasl.mechanisms" => {
            c.sasl_mechanism =
                match SaslMechanism::from_name(value) {
                    Some(mechanism) => mechanism,
                    // Told apart from a typo: these are real mechanisms, just not ones we speak.
                    None if matches!(value, "GSSAPI" | "OAUTHBEARER") => {
                        return Err(v.invalid(
                            "this SASL mechanism is not supported; purekafka speaks PLAIN, \
                         SCRAM-SHA-256 and SCRAM-SHA-512",
                        ))
                    }
                    None => return Err(v.invalid(
                        "unknown SASL mechanism; expected PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512",
                    )),
                }
        }
        "sasl.username" => c.sasl_username = Some(value.to_owned()),
        "sasl.password" => c.sasl_password = Some(Secret::new(value)),
        "client.id" => c.client_id = value.to_owned(),
        "socket.timeout.ms" => c.socket_timeout = v.millis(10, 300_000)?,
        "request.timeout.ms" => c.request_timeout = v.millis(1, 900_000)?,
        "reconnect.backoff.ms" => c.reconnect_backoff = v.millis(0, 3_600_000)?,
        "reconnect.backoff.max.ms" => c.reconnect_backoff_max = v.millis(0, 3_600_000)?,
        "topic.metadata.refresh.interval.ms" | "metadata.max.age.ms" => {
            c.metadata_refresh_interval = match v.int(-1, 86_400_000)? {
                -1 => None,
                0 => return Err(v.invalid("expected -1 (never) or at least 1")),
                ms => Some(Duration::from_millis(ms as u64)),
            }
        }
        "topic.metadata.refresh.fast.interval.ms" => {
            c.metadata_refresh_fast_interval = v.millis(1, 60_000)?
        }
        "topic.metadata.propagation.max.ms" => c.topic_propagation_max = v.millis(0, 3_600_000)?,
        "allow.auto.create.topics" => c.allow_auto_create_topics = Some(v.boolean()?),
        "receive.message.max.bytes" => {
            c.receive_message_max_bytes = v.int(1000, 2_147_483_647)? as usize
        }
        "acks" | "request.required.acks" => {
            p.acks = match value {
                "all" | "-1" => Acks::All,
                "0" => Acks::None,
                "1" => Acks::Leader,
                _ => return Err(v.invalid("expected all, -1, 0 or 1")),
            }
        }
        "retries" | "message.send.max.retries" => p.retries = v.int(0, 2_147_483_647)? as u32,
        "retry.backoff.ms" => p.retry_backoff = v.millis(1, 300_000)?,
        "retry.backoff.max.ms" => p.retry_backoff_max = v.millis(1, 300_000)?,
        "delivery.timeout.ms" | "message.timeout.ms" => {
            p.delivery_timeout = v.millis(1, 2_147_483_647)?
        }
        "message.max.bytes" | "max.request.size" => {
            p.message_max_bytes = v.int(1000, 1_000_000_000)? as usize
        }
        "linger.ms" | "queue.buffering.max.ms" => p.linger = v.millis(0, 900_000)?,
        "batch.size" => p.batch_size = v.int(1, 2_147_483_647)? as usize,
        "batch.num.messages" => p.batch_num_messages = v.int(1, 1_000_000)? as usize,
        "queue.buffering.max.messages" => p.queue_max_messages = v.int(1, 2_147_483_647)? as usize,
        "queue.buffering.max.kbytes" => {
            p.queue_max_bytes = v.int(1, 2_147_483_647)? as usize * 1024
        }
        "buffer.memory" => p.queue_max_bytes = v.int(1024, i64::MAX)? as usize,
        "max.in.flight.requests.per.connection" | "max.in.flight" => {
            p.max_in_flight = v.int(1, 1_000_000)? as usize
        }
        "enable.idempotence" => p.enable_idempotence = Some(v.boolean()?),
        "compression.type" | "compression.codec" => {
            p.compression = Compression::from_name(value)
                .ok_or_else(|| v.invalid("expected none, gzip, snappy, lz4 or zstd"))?
        }
        "group.id" => {
            if value.is_empty() {
                return Err(v.invalid("must not be empty"));
            }
            k.group_id = Some(value.to_owned())
        }
        "auto.offset.reset" => {
            k.auto_offset_reset = match value {
                "earliest" | "smallest" | "beginning" => AutoOffsetReset::Earliest,
                "latest" | "largest" | "end" => AutoOffsetReset::Latest,
                "error" | "none" => AutoOffsetReset::Error,
                _ => return Err(v.invalid("expected earliest, latest or error")),
            }
        }
        "group.protocol" => {
            k.group_protocol = match value.to_ascii_lowercase().as_str() {
                "classic" => GroupProtocol::Classic,
                "consumer" => GroupProtocol::Consumer,
                _ => return Err(v.invalid("expected classic or consumer")),
            }
        }
        "group.remote.assignor" => k.group_remote_assignor = Some(value.to_owned()),
        "session.timeout.ms" => k.session_timeout = v.millis(1, 3_600_000)?,
        "fetch.wait.max.ms" | "fetch.max.wait.ms" => k.fetch_wait_max = v.millis(0, 300_000)?,
        "fetch.min.bytes" => k.fetch_min_bytes = v.int(1, 100_000_000)? as i32,
        "fetch.max.bytes" => k.fetch_max_bytes = v.int(0, 2_147_483_135)? as i32,
        "fetch.error.backoff.ms" => k.fetch_error_backoff = v.millis(0, 300_000)?,
        "heartbeat.interval.ms" => k.heartbeat_interval = v.millis(1, 3_600_000)?,
        "max.poll.interval.ms" => k.max_poll_interval = v.millis(1, 86_400_000)?,
        "partition.assignment.strategy" => {
            k.assignors = value
                .split(',')
                .map(|name| {
                    let name = name.trim();
                    // The Java client's class names name the same assignors.
                    let short = match name {
                        "org.apache.kafka.clients.consumer.RangeAssignor" => "range",
                        "org.apache.kafka.clients.consumer.RoundRobinAssignor" => "roundrobin",
                        "org.apache.kafka.clients.consumer.CooperativeStickyAssignor" => {
                            "cooperative-sticky"
                        }
                        other => other,
                    };
                    Assignor::from_name(short).ok_or_else(|| {
                        v.invalid("expected a list of range, roundrobin, cooperative-sticky")
                    })
                })
                .collect::<Result<_, _>>()?
        }
        "enable.auto.commit" => k.enable_auto_commit = v.boolean()?,
        "auto.commit.interval.ms" => k.auto_commit_interval = v.millis(1, 86_400_000)?,
        "group.instance.id" => k.group_instance_id = Some(value.to_owned()),
        "check.crcs" => k.check_crcs = v.boolean()?,
        "isolation.level" => {
            k.isolation_level = match value {
                "read_uncommitted" => IsolationLevel::ReadUncommitted,
                "read_committed" => IsolationLevel::ReadCommitted,
                _ => return Err(v.invalid("expected read_uncommitted or read_committed")),
            }
        }
        "max.partition.fetch.bytes" | "fetch.message.max.bytes" => {
            k.max_partition_fetch_bytes = v.int(1, 1_000_000_000)? as i32
        }
        _ if super::tls::apply(&mut c.tls, &v)? => {}
        _ => {
            return Err(ConfigError::UnknownKey {
                key: key.to_owned(),
            })
        }
    }
    Ok(())
}

/// Checks that `server` is `host:port` with a valid port.
pub(super) fn check_host_port(server: &str) -> Result<(), ConfigError> {
    check_host_port_for("bootstrap.servers", server)
}

fn check_host_port_for(key: &str, server: &str) -> Result<(), ConfigError> {
    let ok = server
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0));
    if ok {
        Ok(())
    } else {
        Err(ConfigError::InvalidValue {
            key: key.to_owned(),
            value: server.to_owned(),
            reason: "expected host:port".into(),
        })
    }
}

/// A property's key and raw value, with parsers that name the key on failure.
pub(super) struct Value<'a> {
    pub key: &'a str,
    pub value: &'a str,
}

impl Value<'_> {
    pub fn invalid(&self, reason: &str) -> ConfigError {
        ConfigError::InvalidValue {
            key: self.key.to_owned(),
            value: self.value.to_owned(),
            reason: reason.to_owned(),
        }
    }

    fn int(&self, min: i64, max: i64) -> Result<i64, ConfigError> {
        let n: i64 = self
            .value
            .trim()
            .parse()
            .map_err(|_| self.invalid("expected an integer"))?;
        if n < min || n > max {
            return Err(self.invalid(&format!("must be between {min} and {max}")));
        }
        Ok(n)
    }

    pub fn boolean(&self) -> Result<bool, ConfigError> {
        match self.value {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(self.invalid("expected true or false")),
        }
    }

    fn millis(&self, min: i64, max: i64) -> Result<Duration, ConfigError> {
        self.int(min, max).map(|n| Duration::from_millis(n as u64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(key: &str, value: &str) -> Result<ClientConfig, ConfigError> {
        ClientConfig::new().set(key, value)
    }

    #[test]
    fn seed_properties_parse() {
        let config = ClientConfig::from_properties([
            ("bootstrap.servers", "a:6000,b:6000"),
            ("sasl.mechanism", "PLAIN"),
            ("security.protocol", "SASL_PLAINTEXT"),
            ("sasl.username", "ckafka-xyz#user"),
            ("sasl.password", "pw"),
            ("acks", "1"),
            ("retries", "0"),
            ("retry.backoff.ms", "100"),
            ("socket.timeout.ms", "6000"),
            ("reconnect.backoff.max.ms", "3000"),
            ("group.id", "g"),
            ("auto.offset.reset", "earliest"),
            ("session.timeout.ms", "10000"),
            ("request.timeout.ms", "305000"),
            ("client.id", "me"),
        ])
        .unwrap();
        assert_eq!(config.common.bootstrap_servers, ["a:6000", "b:6000"]);
        assert_eq!(
            config.common.security_protocol,
            SecurityProtocol::SaslPlaintext
        );
        assert_eq!(config.producer.acks, Acks::Leader);
        assert_eq!(config.producer.retries, 0);
        assert_eq!(config.common.socket_timeout, Duration::from_millis(6000));
        assert_eq!(config.common.reconnect_backoff_max, Duration::from_secs(3));
        assert_eq!(config.consumer.group_id.as_deref(), Some("g"));
        assert_eq!(config.consumer.auto_offset_reset, AutoOffsetReset::Earliest);
        assert_eq!(
            config.common.request_timeout,
            Duration::from_millis(305_000)
        );
        let sasl = config.validate().unwrap().unwrap();
        assert_eq!(sasl.username, "ckafka-xyz#user");
        assert_eq!(sasl.password.expose(), "pw");
    }

    #[test]
    fn assignors_by_short_or_java_class_name() {
        let config = set(
            "partition.assignment.strategy",
            "cooperative-sticky, org.apache.kafka.clients.consumer.CooperativeStickyAssignor,\
             org.apache.kafka.clients.consumer.RangeAssignor,roundrobin",
        )
        .unwrap();
        assert_eq!(
            config.consumer.assignors,
            [
                Assignor::CooperativeSticky,
                Assignor::CooperativeSticky,
                Assignor::Range,
                Assignor::RoundRobin
            ]
        );
    }

    #[test]
    fn errors_name_the_key() {
        let err = set("bootstrap.server", "a:1").unwrap_err();
        assert_eq!(
            err,
            ConfigError::UnknownKey {
                key: "bootstrap.server".into()
            }
        );
        for (key, value) in [
            ("acks", "2"),
            ("retries", "-1"),
            ("retries", "many"),
            ("session.timeout.ms", "0"),
            ("bootstrap.servers", "no-port"),
            ("bootstrap.servers", "host:99999"),
            ("security.protocol", "KERBEROS"),
            ("auto.offset.reset", "sometime"),
            ("group.protocol", "modern"),
            ("compression.type", "brotli"),
            ("enable.idempotence", "yes"),
            ("partition.assignment.strategy", "range,sticky"),
            ("enable.auto.commit", "1"),
            ("isolation.level", "READ_COMMITTED"),
            ("isolation.level", "serializable"),
            ("sasl.mechanism", "GSSAPI"),
            ("sasl.mechanism", "plain-ish"),
            ("sasl.mechanism", "scram-sha-256"),
            ("request.timeout.ms", "0"),
            ("socket.timeout.ms", "1"),
            ("receive.message.max.bytes", "10"),
            ("max.in.flight", "0"),
            ("linger.ms", "900001"),
        ] {
            let err = set(key, value).unwrap_err();
            match &err {
                ConfigError::InvalidValue { key: k, .. } => assert_eq!(k, key),
                other => panic!("{key}={value}: unexpected {other:?}"),
            }
            assert!(err.to_string().contains(&format!("`{key}`")), "{err}");
        }
        assert!(ClientConfig::new().set("acks", 1).is_ok());
    }

    #[test]
    fn out_of_range_values_say_the_range() {
        let err = set("request.timeout.ms", "-5").unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid value \"-5\" for `request.timeout.ms`: must be between 1 and 900000"
        );
        let err = set("sasl.mechanism", "OAUTHBEARER").unwrap_err();
        assert!(err.to_string().contains("purekafka speaks PLAIN"), "{err}");
        for name in ["SCRAM-SHA-256", "SCRAM-SHA-512"] {
            let config = set("sasl.mechanism", name).unwrap();
            assert_eq!(config.common.sasl_mechanism.name(), name);
        }
    }

    #[test]
    fn a_misspelt_secret_key_is_not_echoed() {
        for key in ["sasl.pasword", "sasl.jaas.config"] {
            let err = set(key, "password=\"hunter2-secret\"").unwrap_err();
            assert_eq!(err, ConfigError::UnknownKey { key: key.into() });
            assert!(!format!("{err} {err:?}").contains("hunter2"), "{err:?}");
        }
    }

    #[test]
    fn isolation_level_is_read_uncommitted_unless_set() {
        assert_eq!(
            ClientConfig::new().consumer.isolation_level,
            IsolationLevel::ReadUncommitted
        );
        for (value, level) in [
            ("read_committed", IsolationLevel::ReadCommitted),
            ("read_uncommitted", IsolationLevel::ReadUncommitted),
        ] {
            let config = set("isolation.level", value).unwrap();
            assert_eq!(config.consumer.isolation_level, level);
        }
        let typed = ClientConfig::new().isolation_level(IsolationLevel::ReadCommitted);
        assert_eq!(typed.consumer.isolation_level.as_i8(), 1);
        assert_eq!(IsolationLevel::ReadUncommitted.as_i8(), 0);
    }

    #[test]
    fn idempotence_follows_acks_unless_set() {
        let idempotent = |pairs: &[(&str, &str)]| {
            ClientConfig::from_properties(pairs.iter().copied())
                .unwrap()
                .producer
                .idempotent()
        };
        assert_eq!(idempotent(&[]), Ok(true));
        assert_eq!(idempotent(&[("acks", "1")]), Ok(false));
        assert_eq!(idempotent(&[("enable.idempotence", "false")]), Ok(false));
        // Both keys are named, with the value that contradicts, in either order of setting.
        for pairs in [
            [("acks", "1"), ("enable.idempotence", "true")],
            [("enable.idempotence", "true"), ("acks", "1")],
        ] {
            let conflict = idempotent(&pairs).unwrap_err();
            assert!(matches!(conflict, ConfigError::Conflict(_)), "{conflict:?}");
            assert_eq!(
                conflict.to_string(),
                "conflicting configuration: enable.idempotence=true requires acks=all, but acks=1"
            );
        }
        let conflict = idempotent(&[("acks", "0"), ("enable.idempotence", "true")]).unwrap_err();
        assert!(conflict.to_string().contains("acks=0"), "{conflict}");
        let conflict =
            idempotent(&[("enable.idempotence", "true"), ("max.in.flight", "6")]).unwrap_err();
        assert!(
            conflict
                .to_string()
                .contains("max.in.flight.requests.per.connection, but it is 6"),
            "{conflict}"
        );
    }

    #[test]
    fn validate_requires_sasl_credentials() {
        let config = set("bootstrap.servers", "a:1")
            .unwrap()
            .set("security.protocol", "SASL_PLAINTEXT")
            .unwrap();
        assert_eq!(
            config.validate().unwrap_err(),
            ConfigError::Missing {
                key: "sasl.username".into()
            }
        );
        assert_eq!(
            ClientConfig::new().validate().unwrap_err(),
            ConfigError::Missing {
                key: "bootstrap.servers".into()
            }
        );
    }

    /// The keys of the match arms of `apply` in `source`: the lines `"key" | "alias" =>` at
    /// the arms' indentation.
    fn keys_in(source: &str) -> Vec<String> {
        source
            .lines()
            .filter_map(|line| line.strip_prefix("        \""))
            .filter_map(|arm| arm.split_once(" =>").map(|(keys, _)| keys))
            .flat_map(|keys| keys.split(" | "))
            .map(|key| key.trim_matches('"').to_owned())
            .collect()
    }

    #[test]
    fn every_property_is_documented_and_accepted() {
        let docs = include_str!("../../docs/CONFIGURATION.md");
        let keys: Vec<String> = keys_in(include_str!("properties.rs"))
            .into_iter()
            .chain(keys_in(include_str!("tls.rs")))
            .collect();
        assert!(keys.len() > 70, "{keys:?}");
        for key in &keys {
            assert!(
                docs.contains(&format!("`{key}`")),
                "docs/CONFIGURATION.md does not name `{key}`"
            );
            // Taken (or refused for its value, by name), never unknown.
            if let Err(ConfigError::UnknownKey { .. }) = set(key, "x") {
                panic!("{key} is not accepted");
            }
        }
    }

    #[test]
    fn metadata_refresh_settings() {
        let config = ClientConfig::new();
        assert_eq!(
            config.common.metadata_refresh_interval,
            Some(Duration::from_secs(300))
        );
        for key in ["topic.metadata.refresh.interval.ms", "metadata.max.age.ms"] {
            let set2s = set(key, "2000").unwrap();
            assert_eq!(
                set2s.common.metadata_refresh_interval,
                Some(Duration::from_secs(2))
            );
            assert_eq!(
                set(key, "-1").unwrap().common.metadata_refresh_interval,
                None
            );
            assert!(set(key, "0").is_err());
            assert!(set(key, "-2").is_err());
        }
        let fast = set("topic.metadata.refresh.fast.interval.ms", "250").unwrap();
        assert_eq!(
            fast.common.metadata_refresh_fast_interval,
            Duration::from_millis(250)
        );
        let propagation = set("topic.metadata.propagation.max.ms", "0").unwrap();
        assert_eq!(propagation.common.topic_propagation_max, Duration::ZERO);
        assert_eq!(config.common.allow_auto_create_topics, None);
        let auto = set("allow.auto.create.topics", "false").unwrap();
        assert_eq!(auto.common.allow_auto_create_topics, Some(false));
        assert!(set("allow.auto.create.topics", "yes").is_err());
    }

    #[test]
    fn password_never_printed() {
        let config = set("sasl.password", "hunter2-secret").unwrap();
        assert!(!format!("{config:?}").contains("hunter2"));
        assert!(!format!("{:?}", config.validate()).contains("hunter2"));
    }
}
