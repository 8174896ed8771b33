//! The property parser against librdkafka's and the Java client's names and values, and
//! docs/CONFIGURATION.md kept in step with the code.

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
    let crate::config::SaslCredentials::Password { username, password } = sasl.credentials else {
        panic!("PLAIN takes a password");
    };
    assert_eq!(username, "ckafka-xyz#user");
    assert_eq!(password.expose(), "pw");
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
    let err = set("sasl.mechanism", "GSSAPI").unwrap_err();
    assert!(err.to_string().contains("purekafka speaks PLAIN"), "{err}");
    for name in ["SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"] {
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
fn a_transactional_id_implies_idempotence_and_refuses_what_contradicts_it() {
    let idempotent = |pairs: &[(&str, &str)]| {
        ClientConfig::from_properties(pairs.iter().copied())
            .unwrap()
            .producer
            .idempotent()
    };
    let txn = ("transactional.id", "orders-1");
    assert_eq!(idempotent(&[txn]), Ok(true));
    assert_eq!(idempotent(&[txn, ("enable.idempotence", "true")]), Ok(true));
    for (key, value) in [
        ("enable.idempotence", "false"),
        ("acks", "1"),
        ("acks", "0"),
    ] {
        let conflict = idempotent(&[txn, (key, value)]).unwrap_err();
        let text = conflict.to_string();
        assert!(
            text.contains("transactional.id") && text.contains(key),
            "{text}"
        );
    }
    let config = set("transaction.timeout.ms", "900000").unwrap();
    assert_eq!(
        config.producer.transaction_timeout,
        Duration::from_secs(900)
    );
    assert_eq!(
        ClientConfig::new().producer.transaction_timeout,
        Duration::from_secs(60)
    );
    assert!(set("transaction.timeout.ms", "999").is_err());
    assert!(set("transactional.id", "").is_err());
    assert!(set("transaction.two.phase.commit.enable", "false").is_ok());
    assert!(matches!(
        set("transaction.two.phase.commit.enable", "true"),
        Err(ConfigError::Unsupported { .. })
    ));
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
    let docs = include_str!("../../../docs/CONFIGURATION.md");
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
    let err = set(
        "builtin.features",
        "zstd,plugins,sasl_gssapi,sasl_oauthbearer",
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("lacks plugins, sasl_gssapi;"),
        "{err}"
    );
    assert_eq!(
        set("builtin.features", "ssl").is_ok(),
        cfg!(feature = "tls")
    );
    assert_eq!(
        set("builtin.features", "sasl_oauthbearer,oidc,http").is_ok(),
        cfg!(feature = "oidc")
    );
}

/// Every property of librdkafka's CONFIGURATION.md and of the Java client is implemented,
/// inert or refused, and docs/CONFIGURATION.md says which, in the right section.
#[test]
fn every_librdkafka_and_java_property_is_classified() {
    let implemented = implemented_keys();
    let mut names: Vec<String> = Vec::new();
    for list in [
        include_str!("../../../fixtures/properties/librdkafka.txt"),
        include_str!("../../../fixtures/properties/java.txt"),
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
    let docs = include_str!("../../../docs/CONFIGURATION.md");
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
    keys_in(include_str!("../properties.rs"))
        .into_iter()
        .chain(keys_in(include_str!("../tls.rs")))
        .chain(keys_in(include_str!("../oauth.rs")))
        .collect()
}

#[test]
fn password_never_printed() {
    let config = set("sasl.password", "hunter2-secret").unwrap();
    assert!(!format!("{config:?}").contains("hunter2"));
    assert!(!format!("{:?}", config.validate()).contains("hunter2"));
}
