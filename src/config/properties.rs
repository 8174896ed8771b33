//! The librdkafka / Java property names and how each one's string value is parsed into the typed
//! settings of [`ClientConfig`].

use std::time::Duration;

use super::{
    Acks, AddressFamily, Assignor, AutoOffsetReset, ClientConfig, Compression, GroupProtocol,
    IsolationLevel, SaslMechanism, Secret, SecurityProtocol, ShareAcknowledgementMode,
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
            c.sasl_mechanism = match SaslMechanism::from_name(value) {
                Some(mechanism) => mechanism,
                // Told apart from a typo: a real mechanism, just not one we speak.
                None if value == "GSSAPI" => {
                    return Err(v.invalid(
                        "SASL/GSSAPI (Kerberos) is not supported; purekafka speaks PLAIN, \
                         SCRAM-SHA-256, SCRAM-SHA-512 and OAUTHBEARER",
                    ))
                }
                None => {
                    return Err(v.invalid(
                        "unknown SASL mechanism; expected PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 \
                         or OAUTHBEARER",
                    ))
                }
            }
        }
        "sasl.username" => c.sasl_username = Some(value.to_owned()),
        "sasl.password" => c.sasl_password = Some(Secret::new(value)),
        "sasl.jaas.config" => {
            // Never echoed: the value holds a password or a secret.
            let refused = |reason: &str| ConfigError::InvalidValue {
                key: key.to_owned(),
                value: "[redacted]".to_owned(),
                reason: reason.to_owned(),
            };
            let (module, options) = jaas_options(value).ok_or_else(|| {
                refused("not a JAAS login line (`LoginModule required name=\"value\" ...;`)")
            })?;
            if module.ends_with(".OAuthBearerLoginModule") {
                super::oauth::apply_jaas(&mut c.oauthbearer, &options)
                    .map_err(|reason| refused(&reason))?;
            } else if module.ends_with(".PlainLoginModule") || module.ends_with(".ScramLoginModule")
            {
                let option = |name: &str| {
                    options
                        .iter()
                        .find(|(n, _)| n == name)
                        .map(|(_, v)| v.clone())
                };
                let (Some(username), Some(password)) = (option("username"), option("password"))
                else {
                    return Err(refused("the login module needs a username and a password"));
                };
                c.sasl_username = Some(username);
                c.sasl_password = Some(Secret::new(password));
            } else {
                return Err(refused(
                    "purekafka reads the PlainLoginModule, ScramLoginModule and \
                     OAuthBearerLoginModule entries only; for anything else set \
                     sasl.mechanism, sasl.username and sasl.password",
                ));
            }
        }
        "client.id" => c.client_id = value.to_owned(),
        "socket.timeout.ms" => c.socket_timeout = v.millis(10, 300_000)?,
        "statistics.interval.ms" => c.statistics_interval = v.millis(0, 86_400_000)?,
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
        "transactional.id" => {
            if value.is_empty() {
                return Err(v.invalid("must not be empty"));
            }
            p.transactional_id = Some(value.to_owned())
        }
        "transaction.timeout.ms" => p.transaction_timeout = v.millis(1000, 2_147_483_647)?,
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
        "share.acknowledgement.mode" => {
            k.share_acknowledgement_mode = v.one_of(&[
                ("implicit", ShareAcknowledgementMode::Implicit),
                ("explicit", ShareAcknowledgementMode::Explicit),
            ])?
        }
        "max.partition.fetch.bytes" | "fetch.message.max.bytes" => {
            k.max_partition_fetch_bytes = v.int(1, 1_000_000_000)? as i32
        }
        _ if super::tls::apply(&mut c.tls, &v)? => {}
        _ if super::oauth::apply(&mut c.oauthbearer, &v)? => {}
        _ if super::oauth::apply_java_handler(&mut c.oauthbearer, &v)? => {}
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

/// The login module of a Java `sasl.jaas.config` entry and its options, in order:
/// `org.apache.kafka.common.security.plain.PlainLoginModule required username="u" password="p";`
fn jaas_options(value: &str) -> Option<(&str, Vec<(String, String)>)> {
    let value = value.trim().strip_suffix(';').unwrap_or(value.trim());
    let (module, rest) = value.split_once(char::is_whitespace)?;
    let rest = rest.trim_start().strip_prefix("required")?;
    let mut options = Vec::new();
    let mut rest = rest.trim_start();
    while !rest.is_empty() {
        let (name, after) = rest.split_once('=')?;
        let after = after.trim_start();
        let (value, tail) = match after.strip_prefix('"') {
            Some(inner) => inner.split_once('"')?,
            None => after.split_once(char::is_whitespace).unwrap_or((after, "")),
        };
        options.push((name.trim().to_owned(), value.to_owned()));
        rest = tail.trim_start();
    }
    Some((module, options))
}

/// `builtin.features`: succeeds when purekafka has every feature listed, as librdkafka checks
/// an application's required features.
fn check_features(v: &Value) -> Result<(), ConfigError> {
    const FEATURES: [&str; 9] = [
        "gzip",
        "snappy",
        "lz4",
        "zstd",
        "sasl",
        "sasl_plain",
        "sasl_scram",
        "sasl_oauthbearer",
        "regex",
    ];
    let have = |feature: &str| {
        FEATURES.contains(&feature)
            || (feature == "ssl" && cfg!(feature = "tls"))
            || (matches!(feature, "oidc" | "http") && cfg!(feature = "oidc"))
    };
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
             sasl_oauthbearer, regex{}{}",
            missing.join(", "),
            if cfg!(feature = "tls") {
                ", ssl"
            } else {
                " (ssl with the `tls` feature)"
            },
            if cfg!(feature = "oidc") {
                ", http, oidc"
            } else {
                " (http and oidc with the `oidc` feature)"
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
mod tests;
