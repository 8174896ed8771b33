//! The librdkafka / Java property names and how each one's string value is parsed into the typed
//! settings of [`ClientConfig`].

use std::time::Duration;

use super::{
    Acks, AddressFamily, Assignor, AutoOffsetReset, ClientConfig, Compression, GroupProtocol,
    IsolationLevel, SaslMechanism, Secret, SecurityProtocol,
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
            c.bootstrap_servers = servers
                .iter()
                .map(|server| with_port(key, server))
                .collect::<Result<_, _>>()?;
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
        "sasl.jaas.config" => {
            let (username, password) = jaas_credentials(value).ok_or_else(|| {
                // Never echoed: the value holds a password.
                ConfigError::InvalidValue {
                    key: key.to_owned(),
                    value: "[redacted]".to_owned(),
                    reason: "purekafka reads the username and password of a PlainLoginModule or \
                             ScramLoginModule entry only; for anything else set sasl.mechanism, \
                             sasl.username and sasl.password"
                        .to_owned(),
                }
            })?;
            c.sasl_username = Some(username);
            c.sasl_password = Some(Secret::new(password));
        }
        "client.id" => c.client_id = value.to_owned(),
        "socket.timeout.ms" => c.socket_timeout = v.millis(10, 300_000)?,
        "request.timeout.ms" => c.request_timeout = v.millis(1, 900_000)?,
        "socket.connection.setup.timeout.ms" => {
            c.connection_setup_timeout = v.millis(1000, i32::MAX as i64)?
        }
        "api.version.request.timeout.ms" => c.api_version_request_timeout = v.millis(1, 300_000)?,
        "socket.keepalive.enable" => c.socket.keepalive = v.boolean()?,
        "socket.nagle.disable" => c.socket.nodelay = v.boolean()?,
        "socket.send.buffer.bytes" | "send.buffer.bytes" => {
            c.socket.send_buffer_bytes = v.buffer_bytes()?
        }
        "socket.receive.buffer.bytes" | "receive.buffer.bytes" => {
            c.socket.receive_buffer_bytes = v.buffer_bytes()?
        }
        "broker.address.family" => {
            c.socket.address_family = v.one_of(&[
                ("any", AddressFamily::Any),
                ("v4", AddressFamily::V4),
                ("v6", AddressFamily::V6),
            ])?
        }
        "debug" => c.debug = super::debug::parse(&v)?,
        "builtin.features" => check_features(&v)?,
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
            p.acks = match value.trim() {
                all if all.eq_ignore_ascii_case("all") => Acks::All,
                _ => match v
                    .int(-1, 1)
                    .map_err(|_| v.invalid("expected all, -1, 0 or 1"))?
                {
                    -1 => Acks::All,
                    0 => Acks::None,
                    _ => Acks::Leader,
                },
            }
        }
        "retries" | "message.send.max.retries" => p.retries = v.int(0, 2_147_483_647)? as u32,
        "retry.backoff.ms" => p.retry_backoff = v.millis(1, 300_000)?,
        "retry.backoff.max.ms" => p.retry_backoff_max = v.millis(1, 300_000)?,
        "delivery.timeout.ms" | "message.timeout.ms" => {
            // 0: no limit, as in librdkafka.
            p.delivery_timeout = match v.millis(0, 2_147_483_647)? {
                Duration::ZERO => Duration::MAX,
                timeout => timeout,
            }
        }
        "message.max.bytes" | "max.request.size" => {
            p.message_max_bytes = v.int(1000, 1_000_000_000)? as usize
        }
        "linger.ms" | "queue.buffering.max.ms" => p.linger = v.fractional_millis(0.0, 900_000.0)?,
        "batch.size" => p.batch_size = v.int(1, 2_147_483_647)? as usize,
        "batch.num.messages" => p.batch_num_messages = v.int(1, 1_000_000)? as usize,
        "queue.buffering.max.messages" => {
            // 0: no limit, as in librdkafka.
            p.queue_max_messages = match v.int(0, 2_147_483_647)? {
                0 => usize::MAX,
                n => n as usize,
            }
        }
        "queue.buffering.max.kbytes" => {
            p.queue_max_bytes = v.int(1, 2_147_483_647)? as usize * 1024
        }
        "buffer.memory" => p.queue_max_bytes = v.int(1024, i64::MAX)? as usize,
        "max.in.flight.requests.per.connection" | "max.in.flight" => {
            p.max_in_flight = v.int(1, 1_000_000)? as usize
        }
        "enable.idempotence" => p.enable_idempotence = Some(v.boolean()?),
        "delivery.report.only.error" => p.delivery_report_only_error = v.boolean()?,
        "compression.type" | "compression.codec" => {
            p.compression = Compression::from_name(&value.trim().to_ascii_lowercase())
                // librdkafka's topic-level `inherit` takes the global codec: the one set here.
                .or_else(|| v.is("inherit").then_some(p.compression))
                .ok_or_else(|| v.invalid("expected none, gzip, snappy, lz4 or zstd"))?
        }
        "partitioner" => {
            p.partitioner =
                v.one_of(&crate::producer::KeyPartitioner::ALL.map(|p| (p.name(), p)))?
        }
        "sticky.partitioning.linger.ms" => {
            p.sticky_partitioning_linger = Some(v.millis(0, 900_000)?)
        }
        "group.id" => {
            if value.is_empty() {
                return Err(v.invalid("must not be empty"));
            }
            k.group_id = Some(value.to_owned())
        }
        "auto.offset.reset" => {
            k.auto_offset_reset = v.one_of(&[
                ("earliest", AutoOffsetReset::Earliest),
                ("smallest", AutoOffsetReset::Earliest),
                ("beginning", AutoOffsetReset::Earliest),
                ("latest", AutoOffsetReset::Latest),
                ("largest", AutoOffsetReset::Latest),
                ("end", AutoOffsetReset::Latest),
                ("error", AutoOffsetReset::Error),
                ("none", AutoOffsetReset::Error),
            ])?
        }
        "group.protocol" => {
            k.group_protocol = v.one_of(&[
                ("classic", GroupProtocol::Classic),
                ("consumer", GroupProtocol::Consumer),
            ])?
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
        "enable.auto.commit" | "auto.commit.enable" => k.enable_auto_commit = v.boolean()?,
        "auto.commit.interval.ms" => {
            // 0 turns the periodic commit off, as in librdkafka (revocation and close still
            // commit while enable.auto.commit is on).
            k.auto_commit_interval = match v.millis(0, 86_400_000)? {
                Duration::ZERO => Duration::MAX,
                interval => interval,
            }
        }
        "group.instance.id" => k.group_instance_id = Some(value.to_owned()),
        "check.crcs" => k.check_crcs = v.boolean()?,
        "enable.auto.offset.store" => k.enable_auto_offset_store = v.boolean()?,
        "enable.partition.eof" => k.enable_partition_eof = v.boolean()?,
        "client.rack" => k.client_rack = (!value.is_empty()).then(|| value.to_owned()),
        "max.poll.records" => k.max_poll_records = v.int(1, i32::MAX as i64)? as usize,
        "isolation.level" => {
            k.isolation_level = v.one_of(&[
                ("read_committed", IsolationLevel::ReadCommitted),
                ("read_uncommitted", IsolationLevel::ReadUncommitted),
            ])?
        }
        "max.partition.fetch.bytes" | "fetch.message.max.bytes" => {
            k.max_partition_fetch_bytes = v.int(1, 1_000_000_000)? as i32
        }
        _ if super::tls::apply(&mut c.tls, &v)? => {}
        _ => {
            return super::catalogue::apply(&v).unwrap_or_else(|| {
                Err(ConfigError::UnknownKey {
                    key: key.to_owned(),
                })
            })
        }
    }
    Ok(())
}

/// The port bootstrap addresses without one get, as in librdkafka.
const DEFAULT_PORT: u16 = 9092;

/// `server` as `host:port`: a host alone (a name, an IPv4 address or a bracketed IPv6 one)
/// gets port 9092.
fn with_port(key: &str, server: &str) -> Result<String, ConfigError> {
    let invalid = |reason: &str| ConfigError::InvalidValue {
        key: key.to_owned(),
        value: server.to_owned(),
        reason: reason.to_owned(),
    };
    let (host, port) = match server.rsplit_once(':') {
        // A bare IPv6 address: its colons are not a port's.
        Some((host, _)) if host.contains(':') && !host.ends_with(']') => (server, None),
        Some((host, port)) => (host, Some(port)),
        None => (server, None),
    };
    if host.is_empty() || host.contains(char::is_whitespace) {
        return Err(invalid("expected host or host:port"));
    }
    match port {
        None if host.contains(':') && !host.starts_with('[') => Err(invalid(
            "an IPv6 address needs brackets: [address] or [address]:port",
        )),
        None => Ok(format!("{host}:{DEFAULT_PORT}")),
        Some(port) if port.parse::<u16>().is_ok_and(|p| p > 0) => Ok(server.to_owned()),
        Some(_) => Err(invalid(
            "expected host or host:port, with a port from 1 to 65535",
        )),
    }
}

/// The username and password of a Java `sasl.jaas.config` entry for PLAIN or SCRAM:
/// `org.apache.kafka.common.security.plain.PlainLoginModule required username="u" password="p";`
fn jaas_credentials(value: &str) -> Option<(String, String)> {
    let value = value.trim().strip_suffix(';').unwrap_or(value.trim());
    let (module, rest) = value.split_once(char::is_whitespace)?;
    if !(module.ends_with(".PlainLoginModule") || module.ends_with(".ScramLoginModule")) {
        return None;
    }
    let rest = rest.trim_start().strip_prefix("required")?;
    let (mut username, mut password) = (None, None);
    let mut rest = rest.trim_start();
    while !rest.is_empty() {
        let (name, after) = rest.split_once('=')?;
        let after = after.trim_start();
        let (quoted, tail) = match after.strip_prefix('"') {
            Some(inner) => inner.split_once('"')?,
            None => after.split_once(char::is_whitespace).unwrap_or((after, "")),
        };
        match name.trim() {
            "username" => username = Some(quoted.to_owned()),
            "password" => password = Some(quoted.to_owned()),
            _ => {}
        }
        rest = tail.trim_start();
    }
    Some((username?, password?))
}

/// `builtin.features`: succeeds when purekafka has every feature listed, as librdkafka checks
/// an application's required features.
fn check_features(v: &Value) -> Result<(), ConfigError> {
    const FEATURES: [&str; 8] = [
        "gzip",
        "snappy",
        "lz4",
        "zstd",
        "sasl",
        "sasl_plain",
        "sasl_scram",
        "regex",
    ];
    let have =
        |feature: &str| FEATURES.contains(&feature) || (feature == "ssl" && cfg!(feature = "tls"));
    let missing: Vec<&str> = v
        .value
        .split(',')
        .map(|f| f.trim())
        .filter(|f| !f.is_empty() && !have(&f.to_ascii_lowercase()))
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(v.invalid(&format!(
            "purekafka lacks {}; it has gzip, snappy, lz4, zstd, sasl, sasl_plain, sasl_scram, \
             regex{}",
            missing.join(", "),
            if cfg!(feature = "tls") {
                ", ssl"
            } else {
                " (ssl with the `tls` feature)"
            }
        )))
    }
}

/// `server` as `host:port`, with librdkafka's default port when it has none.
pub(super) fn bootstrap_address(server: &str) -> Result<String, ConfigError> {
    with_port("bootstrap.servers", server)
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

    /// An integer between `min` and `max`, written as librdkafka (C's `strtol` in base 0)
    /// reads it: decimal, `0x` hexadecimal, or octal after a leading `0`. Unlike librdkafka,
    /// trailing text (`100ms`) is refused rather than ignored.
    pub fn int(&self, min: i64, max: i64) -> Result<i64, ConfigError> {
        let n = c_integer(self.value).ok_or_else(|| self.invalid("expected an integer"))?;
        if n < min || n > max {
            return Err(self.invalid(&format!("must be between {min} and {max}")));
        }
        Ok(n)
    }

    /// `true`/`t`/`1` or `false`/`f`/`0`, in any case, as librdkafka reads booleans.
    pub fn boolean(&self) -> Result<bool, ConfigError> {
        match self.value {
            v if ["true", "t", "1"].iter().any(|t| v.eq_ignore_ascii_case(t)) => Ok(true),
            v if ["false", "f", "0"]
                .iter()
                .any(|f| v.eq_ignore_ascii_case(f)) =>
            {
                Ok(false)
            }
            _ => Err(self.invalid("expected true or false")),
        }
    }

    /// Whether the value is `word`, in any case and spaces around it aside.
    pub fn is(&self, word: &str) -> bool {
        self.value.trim().eq_ignore_ascii_case(word)
    }

    /// The value among `choices`, matched as librdkafka matches enum values: in any case,
    /// spaces around it aside.
    pub fn one_of<T: Copy>(&self, choices: &[(&str, T)]) -> Result<T, ConfigError> {
        choices
            .iter()
            .find(|(name, _)| self.is(name))
            .map(|&(_, value)| value)
            .ok_or_else(|| {
                let names: Vec<&str> = choices.iter().map(|(name, _)| *name).collect();
                self.invalid(&format!("expected {}", names.join(", ")))
            })
    }

    fn millis(&self, min: i64, max: i64) -> Result<Duration, ConfigError> {
        self.int(min, max).map(|n| Duration::from_millis(n as u64))
    }

    /// Milliseconds that may have a fraction (librdkafka's `linger.ms` is a float).
    fn fractional_millis(&self, min: f64, max: f64) -> Result<Duration, ConfigError> {
        let ms: f64 = match self.value.trim().parse::<f64>() {
            Ok(ms) if ms.is_finite() => ms,
            _ => return Err(self.invalid("expected a number of milliseconds")),
        };
        if ms < min || ms > max {
            return Err(self.invalid(&format!("must be between {min} and {max}")));
        }
        Ok(Duration::from_secs_f64(ms / 1000.0))
    }

    /// A socket buffer size: 0 (and Java's -1) leave the system's default.
    fn buffer_bytes(&self) -> Result<u32, ConfigError> {
        Ok(self.int(-1, 100_000_000)?.max(0) as u32)
    }
}

/// `s` as C's `strtol(s, &end, 0)` reads it, requiring that nothing but spaces follow.
fn c_integer(s: &str) -> Option<i64> {
    let s = s.trim();
    let (negative, digits) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let (radix, digits) = if let Some(hex) = digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        (16, hex)
    } else if digits.len() > 1 && digits.starts_with('0') {
        (8, &digits[1..])
    } else {
        (10, digits)
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let n = i64::from_str_radix(digits, radix).ok()?;
    Some(if negative { -n } else { n })
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
            ("bootstrap.servers", "host:99999"),
            ("bootstrap.servers", "host:"),
            ("bootstrap.servers", "::1"),
            ("bootstrap.servers", "two words:9092"),
            ("security.protocol", "KERBEROS"),
            ("auto.offset.reset", "sometime"),
            ("group.protocol", "modern"),
            ("compression.type", "brotli"),
            ("enable.idempotence", "yes"),
            ("partition.assignment.strategy", "range,sticky"),
            ("enable.auto.commit", "2"),
            ("isolation.level", "serializable"),
            ("partitioner", "murmur3"),
            ("debug", "everything"),
            ("linger.ms", "5ms"),
            ("linger.ms", "NaN"),
            ("retries", "100ms"),
            ("broker.address.family", "v5"),
            ("builtin.features", "gzip,sasl_gssapi"),
            ("exclude.internal.topics", "false"),
            ("socket.max.fails", "3"),
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
            assert!(err.to_string().contains(key), "{err}");
            assert!(!format!("{err} {err:?}").contains("hunter2"), "{err:?}");
        }
    }

    #[test]
    fn isolation_level_is_read_committed_unless_set() {
        // librdkafka's default; the Java client's is read_uncommitted.
        assert_eq!(
            ClientConfig::new().consumer.isolation_level,
            IsolationLevel::ReadCommitted
        );
        assert_eq!(IsolationLevel::default(), IsolationLevel::ReadCommitted);
        for (value, level) in [
            ("read_committed", IsolationLevel::ReadCommitted),
            ("READ_UNCOMMITTED", IsolationLevel::ReadUncommitted),
            (" read_uncommitted ", IsolationLevel::ReadUncommitted),
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
        let keys = implemented_keys();
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

    /// Values read as librdkafka reads them: C integers, its booleans, enum words in any case.
    #[test]
    fn values_parse_as_librdkafka_parses_them() {
        let c = set("retries", "0x10").unwrap();
        assert_eq!(c.producer.retries, 16);
        assert_eq!(set("retries", "010").unwrap().producer.retries, 8);
        assert_eq!(set("retries", " 7 ").unwrap().producer.retries, 7);
        assert_eq!(set("retries", "+7").unwrap().producer.retries, 7);
        for (value, on) in [
            ("t", true),
            ("TRUE", true),
            ("1", true),
            ("F", false),
            ("0", false),
        ] {
            let c = set("enable.auto.commit", value).unwrap();
            assert_eq!(c.consumer.enable_auto_commit, on, "{value}");
        }
        assert_eq!(set("acks", "ALL").unwrap().producer.acks, Acks::All);
        assert_eq!(set("acks", "-1").unwrap().producer.acks, Acks::All);
        assert_eq!(set("acks", "0").unwrap().producer.acks, Acks::None);
        let c = set("auto.offset.reset", "Smallest").unwrap();
        assert_eq!(c.consumer.auto_offset_reset, AutoOffsetReset::Earliest);
        let c = set("compression.codec", "LZ4").unwrap();
        assert_eq!(c.producer.compression, Compression::Lz4);
        let c = set("compression.codec", "zstd")
            .unwrap()
            .set("compression.codec", "inherit");
        assert_eq!(c.unwrap().producer.compression, Compression::Zstd);
        // librdkafka's linger.ms is a float.
        let c = set("linger.ms", "0.5").unwrap();
        assert_eq!(c.producer.linger, Duration::from_micros(500));
        // 0: no limit, for these as in librdkafka.
        assert_eq!(
            set("message.timeout.ms", "0")
                .unwrap()
                .producer
                .delivery_timeout,
            Duration::MAX
        );
        let c = set("queue.buffering.max.messages", "0").unwrap();
        assert_eq!(c.producer.queue_max_messages, usize::MAX);
        let c = set("auto.commit.interval.ms", "0").unwrap();
        assert_eq!(c.consumer.auto_commit_interval, Duration::MAX);
    }

    #[test]
    fn a_bootstrap_address_without_a_port_takes_9092() {
        let c = set("bootstrap.servers", "a, b:9093,10.0.0.1,[::1],[::1]:9094").unwrap();
        assert_eq!(
            c.common.bootstrap_servers,
            [
                "a:9092",
                "b:9093",
                "10.0.0.1:9092",
                "[::1]:9092",
                "[::1]:9094"
            ]
        );
        // The typed setter takes them too: the port is added when a client is built.
        let typed = ClientConfig::new().bootstrap_servers(["a", "b:1"]);
        assert_eq!(typed.bootstrap_addresses().unwrap(), ["a:9092", "b:1"]);
    }

    #[test]
    fn socket_options_and_their_java_names() {
        let c = ClientConfig::from_properties([
            ("socket.keepalive.enable", "true"),
            ("socket.nagle.disable", "false"),
            ("socket.send.buffer.bytes", "131072"),
            ("receive.buffer.bytes", "-1"),
            ("broker.address.family", "V4"),
        ])
        .unwrap();
        let s = c.common.socket;
        assert!(s.keepalive && !s.nodelay);
        assert_eq!((s.send_buffer_bytes, s.receive_buffer_bytes), (131_072, 0));
        assert_eq!(s.address_family, AddressFamily::V4);
        let d = ClientConfig::new().common.socket;
        assert!(!d.keepalive && d.nodelay);
    }

    #[test]
    fn java_jaas_config_gives_the_credentials() {
        let c = set(
            "sasl.jaas.config",
            "org.apache.kafka.common.security.plain.PlainLoginModule required \
             username=\"ckafka-1#me\" password=\"p w=;\";",
        )
        .unwrap();
        assert_eq!(c.common.sasl_username.as_deref(), Some("ckafka-1#me"));
        assert_eq!(c.common.sasl_password.as_ref().unwrap().expose(), "p w=;");
        let scram = "org.apache.kafka.common.security.scram.ScramLoginModule required \
                     username=u password=p;";
        let c = set("sasl.jaas.config", scram).unwrap();
        assert_eq!(c.common.sasl_password.as_ref().unwrap().expose(), "p");
        let kerberos = "com.sun.security.auth.module.Krb5LoginModule required useKeyTab=true \
                        keyTab=\"/k\" principal=\"hunter2@X\";";
        let err = set("sasl.jaas.config", kerberos).unwrap_err();
        assert!(!format!("{err:?}").contains("hunter2"), "{err:?}");
    }

    #[test]
    fn the_go_bindings_own_keys_are_refused_with_what_to_use() {
        for key in [
            "go.delivery.reports",
            "go.events.channel.enable",
            "go.logs.channel.enable",
        ] {
            let err = set(key, "true").unwrap_err();
            let ConfigError::Unsupported { key: k, reason } = &err else {
                panic!("{err:?}")
            };
            assert_eq!(k, key);
            assert!(reason.contains("confluent-kafka-go"), "{reason}");
        }
    }

    #[test]
    fn builtin_features_are_checked() {
        assert!(set(
            "builtin.features",
            "gzip, snappy,lz4,zstd,sasl_plain,SASL_SCRAM,regex"
        )
        .is_ok());
        let err = set("builtin.features", "zstd,plugins,sasl_oauthbearer").unwrap_err();
        assert!(
            err.to_string().contains("lacks plugins, sasl_oauthbearer"),
            "{err}"
        );
        assert_eq!(
            set("builtin.features", "ssl").is_ok(),
            cfg!(feature = "tls")
        );
    }

    /// Every property of librdkafka's CONFIGURATION.md and of the Java client is implemented,
    /// inert or refused, and docs/CONFIGURATION.md says which, in the right section.
    #[test]
    fn every_librdkafka_and_java_property_is_classified() {
        let implemented = implemented_keys();
        let mut names: Vec<String> = Vec::new();
        for list in [
            include_str!("../../fixtures/properties/librdkafka.txt"),
            include_str!("../../fixtures/properties/java.txt"),
        ] {
            names.extend(
                list.lines()
                    .filter(|l| !l.starts_with('#'))
                    .filter_map(|l| l.split_whitespace().next())
                    .map(str::to_owned),
            );
        }
        assert!(names.len() > 330, "{}", names.len());
        for name in &names {
            let known = implemented.contains(name) || super::super::catalogue::kind(name).is_some();
            assert!(
                known,
                "`{name}` is neither implemented nor in the catalogue"
            );
        }
        // The generated sections of the docs match the catalogue.
        let docs = include_str!("../../docs/CONFIGURATION.md");
        let (before, generated) = docs
            .split_once(super::super::catalogue::DOCS_START)
            .expect("docs/CONFIGURATION.md has the catalogue's start marker");
        let expected = super::super::catalogue::markdown();
        if generated.trim_end() != expected.trim_end() {
            let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/CONFIGURATION.md");
            if std::env::var_os("PUREKAFKA_BLESS").is_some() {
                let text = format!("{before}{}{expected}", super::super::catalogue::DOCS_START);
                std::fs::write(path, text).unwrap();
            } else {
                panic!(
                    "docs/CONFIGURATION.md's catalogue sections differ from the code's; \
                     PUREKAFKA_BLESS=1 cargo test --lib config:: rewrites them"
                );
            }
        }
        // Implemented keys are documented before the catalogue, the others in it.
        for key in &implemented {
            assert!(
                before.contains(&format!("`{key}`")),
                "docs/CONFIGURATION.md: `{key}`"
            );
        }
        for name in super::super::catalogue::names() {
            assert!(
                !implemented.iter().any(|k| k == name),
                "`{name}` is in both"
            );
        }
    }

    fn implemented_keys() -> Vec<String> {
        keys_in(include_str!("properties.rs"))
            .into_iter()
            .chain(keys_in(include_str!("tls.rs")))
            .collect()
    }

    #[test]
    fn password_never_printed() {
        let config = set("sasl.password", "hunter2-secret").unwrap();
        assert!(!format!("{config:?}").contains("hunter2"));
        assert!(!format!("{:?}", config.validate()).contains("hunter2"));
    }
}
