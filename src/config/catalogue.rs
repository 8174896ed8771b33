//! The properties purekafka takes without acting on them, and those it refuses, each with the
//! reason. Together with the ones `properties::apply` implements, they cover every property in
//! librdkafka's CONFIGURATION.md and the Java client's `ProducerConfig` and `ConsumerConfig`
//! (`fixtures/properties/`), so a config map brought from either never fails on a name purekafka
//! has not heard of, and never quietly loses a setting that would have mattered.
//!
//! - **Inert**: accepted, because it changes nothing here, and the reason says why. Its value
//!   is still checked as librdkafka checks it, so a typo in it is caught.
//! - **Refused**: it would change behaviour purekafka does not have, so it fails with the reason
//!   and what to use instead. Some are accepted at the one value that asks for nothing.

use super::properties::Value;
use crate::error::ConfigError;

/// What purekafka does with a property it does not implement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Accepted; changes nothing here, for this reason.
    Inert(&'static str),
    /// Refused for this reason, except at the values listed, which ask for nothing.
    Refused(&'static str, &'static [&'static str]),
}

/// How an inert property's value is checked.
#[derive(Debug, Clone, Copy)]
enum Shape {
    /// Any string.
    Text,
    /// A secret string: any value, never echoed.
    Secret,
    /// `true`/`false`, as librdkafka reads them.
    Bool,
    /// An integer in this range, as librdkafka reads it.
    Int(i64, i64),
    /// One of these words (case-insensitive); the others are refused as values.
    OneOf(&'static [&'static str]),
}

struct Entry {
    names: &'static [&'static str],
    shape: Shape,
    kind: Kind,
}

use Kind::{Inert, Refused};
use Shape::{Bool, Int, OneOf, Secret, Text};

const fn inert(names: &'static [&'static str], shape: Shape, why: &'static str) -> Entry {
    Entry {
        names,
        shape,
        kind: Inert(why),
    }
}

const fn refused(names: &'static [&'static str], why: &'static str) -> Entry {
    Entry {
        names,
        shape: Text,
        kind: Refused(why, &[]),
    }
}

/// Refused except at `off`, the values that ask for nothing purekafka lacks.
const fn refused_unless(
    names: &'static [&'static str],
    off: &'static [&'static str],
    why: &'static str,
) -> Entry {
    Entry {
        names,
        shape: Text,
        kind: Refused(why, off),
    }
}

const MAX: i64 = i32::MAX as i64;

const NO_GSSAPI: &str = "used only by SASL/GSSAPI (Kerberos), which `sasl.mechanism` refuses";
const NO_ASSERTION: &str = "used only by the JWT-bearer grant \
     (sasl.oauthbearer.grant.type=urn:ietf:params:oauth:grant-type:jwt-bearer), which purekafka \
     refuses; it asks for tokens by the client-credentials grant";
const TOKEN_VALIDATION: &str = "configures how a broker (or the Java client itself) validates \
     OAUTHBEARER tokens; purekafka reads only a token's expiry and principal, and leaves \
     validation to the broker";
const LOGIN_TUNING: &str = "tunes the Java client's token refresh and its HTTP timeouts; \
     purekafka refreshes a token at 80% of its lifetime, as librdkafka does, and gives the \
     token endpoint 10 s to connect and 30 s to answer";
const JAVA_METRICS: &str = "configures the Java client's metrics library; purekafka logs through \
                            `tracing` and has no JMX metrics";
const C_API: &str = "a librdkafka C callback or pointer, set through its C API, never as a \
                     string (librdkafka refuses it too)";
const JAVA_CLASS: &str =
    "names a Java class; purekafka cannot load one (see docs/PORTING.md for each equivalent)";
const LOGGING: &str = "shapes librdkafka's own log output; purekafka logs through `tracing`, and \
                       the application's subscriber chooses what is shown (see `debug`)";
const DEPRECATED: &str = "deprecated and no longer used by librdkafka either";
const FILE_STORE: &str = "used only by librdkafka's deprecated file offset store; purekafka \
                          stores offsets with the group coordinator (`offset.store.method=broker`)";

const NO_PREFETCH: &str = "bounds librdkafka's queue of records fetched ahead; purekafka fetches \
                           the next round when the application has taken the last one, so what \
                           waits is one fetch answer (at most `fetch.max.bytes`)";

const ENTRIES: &[Entry] = &[
    // Connections and metadata.
    inert(
        &["message.copy.max.bytes"],
        Int(0, 1_000_000_000),
        "purekafka writes each record into its batch once and sends the batch without copying it \
         again, whatever the record's size",
    ),
    inert(
        &[
            "topic.metadata.refresh.fast.cnt",
            "socket.blocking.max.ms",
            "reconnect.backoff.jitter.ms",
            "produce.offset.report",
        ],
        Text,
        DEPRECATED,
    ),
    inert(
        &["topic.metadata.refresh.sparse"],
        Bool,
        "purekafka always asks only for the topics in use (a regex subscription asks for every \
         topic's name)",
    ),
    inert(
        &["metadata.recovery.strategy"],
        OneOf(&["rebootstrap"]),
        "purekafka always falls back to the bootstrap servers when no known broker answers, which \
         is `rebootstrap`; `none` is refused",
    ),
    inert(
        &["metadata.recovery.rebootstrap.trigger.ms"],
        Int(0, MAX),
        "purekafka asks the bootstrap servers as soon as no known broker answers, rather than \
         after a delay",
    ),
    inert(
        &["metadata.cluster.check.enable"],
        Bool,
        "purekafka does not compare cluster ids across brokers",
    ),
    inert(
        &["bootstrap.resolve.timeout.ms"],
        Int(0, i64::MAX),
        "purekafka resolves bootstrap names at each connection attempt and keeps trying in the \
         background; a call waits within its own timeout",
    ),
    inert(
        &["socket.max.fails"],
        OneOf(&["1"]),
        "purekafka closes a connection at its first timed-out request, which is librdkafka's \
         default of 1",
    ),
    inert(
        &["broker.address.ttl"],
        Int(0, 86_400_000),
        "purekafka resolves a broker's name at every connection attempt, with no cache of its own",
    ),
    inert(
        &["client.dns.lookup"],
        OneOf(&["use_all_dns_ips"]),
        "purekafka tries every address a name resolves to, in turn, which is `use_all_dns_ips`",
    ),
    refused_unless(
        &["connections.max.idle.ms"],
        &["0"],
        "purekafka keeps connections open until the client closes or the broker closes them \
         (brokers close idle ones after their own connections.max.idle.ms)",
    ),
    inert(
        &["socket.connection.setup.timeout.max.ms"],
        Int(0, i64::MAX),
        "purekafka gives every connection attempt `socket.connection.setup.timeout.ms`, and \
         spaces attempts by `reconnect.backoff.ms` up to `reconnect.backoff.max.ms`",
    ),
    inert(
        &["api.version.request"],
        Bool,
        "purekafka always asks brokers for their API versions: every broker since Kafka 0.10.0 \
         answers, and purekafka supports Kafka 2.4 and later",
    ),
    inert(
        &["api.version.fallback.ms", "broker.version.fallback"],
        Text,
        "used only for brokers older than Kafka 0.10.0, which purekafka does not support",
    ),
    refused(
        &["topic.blacklist"],
        "not supported yet; leave the topics out of the subscription (or its regex)",
    ),
    inert(
        &["enable.metrics.push"],
        Bool,
        "purekafka does not push client metrics to the cluster (KIP-714), whichever the value",
    ),
    // Logging, threads and the C API.
    inert(&["log_level"], Int(0, 7), LOGGING),
    inert(
        &["log.queue", "log.thread.name", "log.connection.close"],
        Bool,
        LOGGING,
    ),
    inert(
        &["enable.random.seed"],
        Bool,
        "purekafka never seeds the C library's random numbers; its randomness comes from the \
         operating system",
    ),
    inert(
        &["internal.termination.signal"],
        Int(0, 128),
        "purekafka has no threads of its own to wake; `close()` returns when the client's tasks \
         are done",
    ),
    refused(
        &[
            "enabled_events",
            "error_cb",
            "throttle_cb",
            "stats_cb",
            "log_cb",
            "background_event_cb",
            "socket_cb",
            "connect_cb",
            "closesocket_cb",
            "open_cb",
            "resolve_cb",
            "opaque",
            "default_topic_conf",
            "ssl_key",
            "ssl_certificate",
            "ssl_ca",
            "ssl_engine_callback_data",
            "ssl.certificate.verify_cb",
            "oauthbearer_token_refresh_cb",
            "interceptors",
            "consume_cb",
            "rebalance_cb",
            "offset_commit_cb",
            "dr_cb",
            "dr_msg_cb",
            "partitioner_cb",
            "msg_order_cmp",
        ],
        C_API,
    ),
    refused(&["plugin.library.paths"], "purekafka loads no C plugins"),
    // TLS.
    refused(
        &["ssl.cipher.suites", "ssl.curves.list", "ssl.sigalgs.list"],
        "OpenSSL's names cannot be mapped; purekafka's TLS (rustls) offers only modern AEAD \
         suites and curves, and has no legacy ones to enable",
    ),
    refused(
        &["ssl.crl.location"],
        "certificate revocation lists are not checked yet",
    ),
    refused(
        &[
            "ssl.providers",
            "ssl.engine.location",
            "ssl.engine.id",
            "ssl.engine.factory.class",
            "security.providers",
        ],
        "configures OpenSSL or Java security providers; purekafka's TLS is rustls",
    ),
    inert(
        &["ssl.ca.certificate.stores"],
        Text,
        "names Windows certificate stores; purekafka reads the system's trust store on every \
         platform when no `ssl.ca.location` is given",
    ),
    inert(
        &["ssl.protocol"],
        OneOf(&["TLSv1.2", "TLSv1.3", "TLS"]),
        "names the Java SSLContext; purekafka offers TLS 1.2 and 1.3 and the broker picks",
    ),
    refused(
        &["ssl.enabled.protocols"],
        "not supported yet: purekafka offers TLS 1.2 and 1.3 and cannot yet narrow that",
    ),
    inert(
        &[
            "ssl.keymanager.algorithm",
            "ssl.trustmanager.algorithm",
            "ssl.provider",
            "ssl.secure.random.implementation",
        ],
        Text,
        "names Java security machinery; rustls has one implementation of each",
    ),
    // SASL.
    inert(
        &[
            "sasl.kerberos.service.name",
            "sasl.kerberos.principal",
            "sasl.kerberos.kinit.cmd",
            "sasl.kerberos.keytab",
            "sasl.kerberos.min.time.before.relogin",
            "sasl.kerberos.ticket.renew.jitter",
            "sasl.kerberos.ticket.renew.window.factor",
        ],
        Text,
        NO_GSSAPI,
    ),
    refused_unless(
        &["sasl.oauthbearer.grant.type"],
        &["client_credentials"],
        "purekafka asks for OIDC tokens by the client-credentials grant only; the JWT-bearer \
         grant is not supported",
    ),
    refused_unless(
        &["sasl.oauthbearer.metadata.authentication.type"],
        &["none"],
        "purekafka does not fetch tokens from a cloud's instance metadata; give the token \
         endpoint (sasl.oauthbearer.token.endpoint.url) or a token provider",
    ),
    inert(
        &[
            "sasl.oauthbearer.assertion.algorithm",
            "sasl.oauthbearer.assertion.private.key.file",
            "sasl.oauthbearer.assertion.file",
            "sasl.oauthbearer.assertion.claim.aud",
            "sasl.oauthbearer.assertion.claim.exp.seconds",
            "sasl.oauthbearer.assertion.claim.iss",
            "sasl.oauthbearer.assertion.claim.jti.include",
            "sasl.oauthbearer.assertion.claim.nbf.seconds",
            "sasl.oauthbearer.assertion.claim.sub",
            "sasl.oauthbearer.assertion.jwt.template.file",
            "sasl.oauthbearer.assertion.template.file",
        ],
        Text,
        NO_ASSERTION,
    ),
    inert(
        &[
            "sasl.oauthbearer.assertion.private.key.passphrase",
            "sasl.oauthbearer.assertion.private.key.pem",
        ],
        Secret,
        NO_ASSERTION,
    ),
    inert(
        &[
            "sasl.oauthbearer.allow.unverified.audience",
            "sasl.oauthbearer.allow.unverified.issuer",
            "sasl.oauthbearer.clock.skew.seconds",
            "sasl.oauthbearer.expected.audience",
            "sasl.oauthbearer.expected.issuer",
            "sasl.oauthbearer.jwks.endpoint.refresh.ms",
            "sasl.oauthbearer.jwks.endpoint.retry.backoff.max.ms",
            "sasl.oauthbearer.jwks.endpoint.retry.backoff.ms",
            "sasl.oauthbearer.jwks.endpoint.url",
            "sasl.oauthbearer.scope.claim.name",
        ],
        Text,
        TOKEN_VALIDATION,
    ),
    refused_unless(
        &["sasl.oauthbearer.header.urlencode"],
        &["false"],
        "purekafka sends the client id and secret in HTTP Basic authentication as they are, as \
         librdkafka does; it does not URL-encode them first",
    ),
    inert(
        &[
            "sasl.login.connect.timeout.ms",
            "sasl.login.read.timeout.ms",
            "sasl.login.refresh.buffer.seconds",
            "sasl.login.refresh.min.period.seconds",
            "sasl.login.refresh.window.factor",
            "sasl.login.refresh.window.jitter",
            "sasl.login.retry.backoff.max.ms",
            "sasl.login.retry.backoff.ms",
        ],
        Text,
        LOGIN_TUNING,
    ),
    refused(
        &["sasl.login.callback.handler.class"],
        "names a Java class; purekafka cannot load one. Its OIDC login handler \
         (org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginCallbackHandler) is \
         taken, as sasl.oauthbearer.method=oidc; for a handler of your own, give a token \
         provider (ClientConfig::oauthbearer_token_provider)",
    ),
    refused(
        &[
            "sasl.client.callback.handler.class",
            "sasl.login.class",
            "sasl.oauthbearer.jwt.retriever.class",
            "sasl.oauthbearer.jwt.validator.class",
        ],
        JAVA_CLASS,
    ),
    // Java plumbing.
    refused(
        &[
            "key.serializer",
            "value.serializer",
            "key.deserializer",
            "value.deserializer",
        ],
        "purekafka sends and hands back bytes (`Bytes`); serialize in the application",
    ),
    refused_unless(
        &[
            "interceptor.classes",
            "metric.reporters",
            "config.providers",
        ],
        &[""],
        JAVA_CLASS,
    ),
    inert(
        &[
            "metrics.num.samples",
            "metrics.recording.level",
            "metrics.sample.window.ms",
            "auto.include.jmx.reporter",
        ],
        Text,
        JAVA_METRICS,
    ),
    inert(
        &["buffer.memory.allocation.strategy"],
        Text,
        "chooses how the Java producer pools its buffers; purekafka's batches are bytes the \
         allocator hands out and takes back",
    ),
    // Transactions.
    refused_unless(
        &["transaction.two.phase.commit.enable"],
        &["false"],
        "two-phase commit with an external transaction manager (KIP-939) is not supported",
    ),
    // Producer.
    refused_unless(
        &["enable.gapless.guarantee"],
        &["false"],
        "not supported: purekafka retries a failed batch within `delivery.timeout.ms` and fails \
         only its records; it has no mode that stops the producer at the first gap",
    ),
    inert(
        &["queue.buffering.backpressure.threshold"],
        Int(1, 1_000_000),
        "purekafka's sinks keep taking records into batches while requests are in flight, and \
         send them as soon as a request slot is free",
    ),
    inert(
        &["queuing.strategy"],
        OneOf(&["fifo"]),
        "purekafka always sends in the order records were produced; `lifo` is refused",
    ),
    refused_unless(
        &[
            "compression.level",
            "compression.gzip.level",
            "compression.lz4.level",
            "compression.zstd.level",
        ],
        &["-1"],
        "not supported yet: each codec runs at its default level (gzip 6, LZ4's fast mode, zstd's \
         fastest)",
    ),
    refused(
        &["max.block.ms"],
        "`produce()` waits for a missing topic up to `topic.metadata.propagation.max.ms`, and for \
         queue room until the future is dropped; wrap it in a timeout for Java's bound",
    ),
    inert(
        &["metadata.max.idle.ms"],
        Int(5000, MAX),
        "purekafka keeps the metadata of the topics it has produced to and refreshes only those \
         in use",
    ),
    refused(
        &["partitioner.class"],
        "set `partitioner` (`murmur2_random` matches the Java client's default) or give a \
         `Partitioner` to `ProducerBuilder::partitioner`",
    ),
    refused_unless(
        &["partitioner.ignore.keys"],
        &["false"],
        "not supported: set `partitioner=random` to spread records without regard to their keys",
    ),
    inert(
        &[
            "partitioner.adaptive.partitioning.enable",
            "partitioner.rack.aware",
        ],
        Bool,
        "tunes the Java producer's choice for keyless records; purekafka's sticks to one \
         partition per batch, as librdkafka's does",
    ),
    inert(
        &["partitioner.availability.timeout.ms"],
        Int(0, i64::MAX),
        "tunes the Java producer's choice for keyless records; purekafka's sticks to one \
         partition per batch, as librdkafka's does",
    ),
    // Consumer.
    inert(
        &["group.protocol.type"],
        OneOf(&["consumer"]),
        "the only group protocol type a consumer uses, here as in librdkafka",
    ),
    inert(
        &["coordinator.query.interval.ms"],
        Int(1, 3_600_000),
        "purekafka finds the coordinator again whenever it answers NOT_COORDINATOR or its \
         connection fails, instead of asking on a timer",
    ),
    inert(
        &["offset.store.method"],
        OneOf(&["broker"]),
        "offsets are always stored with the group coordinator; the deprecated `file` is refused",
    ),
    inert(
        &["offset.store.path", "offset.store.sync.interval.ms"],
        Text,
        FILE_STORE,
    ),
    inert(
        &["consume.callback.max.messages"],
        Int(0, 1_000_000),
        "bounds librdkafka's legacy consume-callback call, which purekafka does not have",
    ),
    inert(&["queued.min.messages"], Int(1, 10_000_000), NO_PREFETCH),
    inert(
        &["queued.max.messages.kbytes"],
        Int(1, 2_097_151),
        NO_PREFETCH,
    ),
    inert(&["fetch.queue.backoff.ms"], Int(0, 300_000), NO_PREFETCH),
    inert(
        &["exclude.internal.topics"],
        OneOf(&["true"]),
        "a regex subscription never matches Kafka's internal topics; `false` is refused",
    ),
    inert(
        &["internal.throw.on.fetch.stable.offset.unsupported"],
        Bool,
        "purekafka asks for stable offsets only where the broker supports them",
    ),
    // Not yet: the calls these need come later in this release's porting work.
    inert(
        &["default.api.timeout.ms"],
        Int(0, MAX),
        "every purekafka call that waits takes a timeout of its own, or runs until it is \
         dropped (wrap it in a timeout)",
    ),
    refused_unless(
        &["share.acquire.mode"],
        &["batch_optimized"],
        "record_limit needs ShareFetch v2 (KIP-1206), which purekafka does not speak yet; a \
         share consumer hands out at most max.poll.records per poll all the same",
    ),
];

/// The confluent-kafka-go binding's own settings (`go.delivery.reports`,
/// `go.events.channel.enable`, …), which it reads and never hands to librdkafka.
const GO_BINDING: Entry = Entry {
    names: &["go.*"],
    shape: Text,
    kind: Refused(
        "a setting of the confluent-kafka-go binding, not of librdkafka: purekafka has no \
         channels to size or switch; delivery reports are each record's DeliveryFuture (or \
         ProducerBuilder::delivery_reports), rebalances a RebalanceListener, and logs go \
         through tracing (docs/PORTING.md maps each)",
        &[],
    ),
};

/// The entry naming `key`.
fn entry(key: &str) -> Option<&'static Entry> {
    if key.starts_with("go.") {
        return Some(&GO_BINDING);
    }
    ENTRIES.iter().find(|e| e.names.contains(&key))
}

#[cfg(test)]
/// What purekafka does with `key`, when it is one it does not implement.
pub(crate) fn kind(key: &str) -> Option<Kind> {
    entry(key).map(|e| e.kind)
}

/// Applies `key`, when the catalogue names it: `None` when it does not.
pub(super) fn apply(v: &Value) -> Option<Result<(), ConfigError>> {
    let entry = entry(v.key)?;
    Some(match entry.kind {
        Refused(_, off) if off.iter().any(|o| o.eq_ignore_ascii_case(v.value.trim())) => Ok(()),
        Refused(reason, _) => Err(ConfigError::Unsupported {
            key: v.key.to_owned(),
            reason: reason.to_owned(),
        }),
        Inert(why) => check(v, entry.shape, why),
    })
}

fn check(v: &Value, shape: Shape, why: &str) -> Result<(), ConfigError> {
    match shape {
        Text | Secret => Ok(()),
        Bool => v.boolean().map(drop),
        Int(min, max) => v.int(min, max).map(drop),
        OneOf(values) => {
            if values
                .iter()
                .any(|o| o.eq_ignore_ascii_case(v.value.trim()))
            {
                Ok(())
            } else {
                let values = values.join(" or ");
                Err(v.invalid(&format!("purekafka takes only {values}: {why}")))
            }
        }
    }
}

/// Where docs/CONFIGURATION.md's generated part begins: [`markdown`] follows it.
#[cfg(test)]
pub(super) const DOCS_START: &str =
    "<!-- generated from src/config/catalogue.rs; a unit test keeps it in step -->\n";

/// The catalogue as docs/CONFIGURATION.md shows it: a table of the inert properties, then one
/// of the refused.
#[cfg(test)]
pub(super) fn markdown() -> String {
    let names = |e: &Entry| {
        let names: Vec<String> = e.names.iter().map(|n| format!("`{n}`")).collect();
        names.join(", ")
    };
    let mut out = String::from(
        "\n## Accepted, with no effect here\n\n\
         Taken so that a config map brought from librdkafka or the Java client builds; each \
         changes nothing in purekafka, for the reason given. The value is still checked.\n\n\
         | property | values taken | why it changes nothing here |\n|---|---|---|\n",
    );
    for e in ENTRIES {
        if let Inert(why) = e.kind {
            let values = match e.shape {
                Text | Secret => "any".to_owned(),
                Bool => "`true`, `false`".to_owned(),
                Int(min, i64::MAX) => format!("{min} or more"),
                Int(min, max) => format!("{min} to {max}"),
                OneOf(values) => {
                    let values: Vec<String> = values.iter().map(|v| format!("`{v}`")).collect();
                    values.join(", ")
                }
            };
            out += &format!("| {} | {values} | {why} |\n", names(e));
        }
    }
    out += "\n## Refused\n\n\
            Setting one of these fails with `ConfigError::Unsupported`, which says why and what \
            to use instead, except at the values in the second column, which ask for nothing \
            purekafka lacks.\n\n\
            | property | values taken | why, and what to use instead |\n|---|---|---|\n";
    for e in ENTRIES.iter().chain([&GO_BINDING]) {
        if let Refused(why, off) = e.kind {
            let values: Vec<String> = off
                .iter()
                .map(|v| {
                    if v.is_empty() {
                        "empty".to_owned()
                    } else {
                        format!("`{v}`")
                    }
                })
                .collect();
            let values = if values.is_empty() {
                "none".to_owned()
            } else {
                values.join(", ")
            };
            out += &format!("| {} | {values} | {why} |\n", names(e));
        }
    }
    out
}

/// Every name the catalogue holds, for the tests.
#[cfg(test)]
pub(super) fn names() -> impl Iterator<Item = &'static str> {
    ENTRIES.iter().flat_map(|e| e.names.iter().copied())
}
