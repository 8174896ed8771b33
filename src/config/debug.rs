//! librdkafka's `debug` contexts, and the `tracing` targets each one stands for.
//!
//! purekafka logs through `tracing`, and its events' targets are the modules that log them
//! (`purekafka::conn::wire`, `purekafka::group::classic`, …). A library cannot choose what the
//! application's subscriber shows, so `debug=broker,cgrp` does not turn logging on by itself:
//! [`ClientConfig::debug_filter`](super::ClientConfig::debug_filter) gives the directives that
//! do, for `tracing_subscriber::EnvFilter` or `RUST_LOG`.

use super::properties::Value;
use crate::error::ConfigError;

/// Each context librdkafka's `debug` takes, with the targets whose events it covers. Contexts
/// for parts purekafka does not have (interceptors, plugins, the mock cluster, telemetry)
/// cover none.
const CONTEXTS: &[(&str, &[&str])] = &[
    ("generic", &["purekafka"]),
    (
        "broker",
        &["purekafka::conn", "purekafka::cluster::brokers"],
    ),
    ("topic", &["purekafka::cluster"]),
    ("metadata", &["purekafka::cluster"]),
    ("feature", &["purekafka::conn::handshake"]),
    ("queue", &["purekafka::producer::accumulator"]),
    ("msg", &["purekafka::producer"]),
    (
        "protocol",
        &["purekafka::conn::wire", "purekafka::protocol"],
    ),
    (
        "cgrp",
        &["purekafka::group", "purekafka::consumer::membership"],
    ),
    (
        "security",
        &["purekafka::conn::handshake", "purekafka::conn::tls"],
    ),
    (
        "fetch",
        &["purekafka::consumer::fetch", "purekafka::consumer::absorb"],
    ),
    ("interceptor", &[]),
    ("plugin", &[]),
    ("consumer", &["purekafka::consumer"]),
    ("admin", &["purekafka::admin"]),
    (
        "eos",
        &[
            "purekafka::producer::idempotence",
            "purekafka::producer::transaction",
        ],
    ),
    ("mock", &[]),
    ("assignor", &["purekafka::group::assignor"]),
    ("conf", &["purekafka::config"]),
    ("telemetry", &[]),
    ("all", &["purekafka"]),
];

/// Parses `debug`'s comma-separated contexts, as librdkafka does: case-insensitive, spaces
/// around each ignored.
pub(super) fn parse(v: &Value) -> Result<Vec<&'static str>, ConfigError> {
    let mut contexts = Vec::new();
    for word in v.value.split(',').map(str::trim).filter(|w| !w.is_empty()) {
        let (name, _) = CONTEXTS
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(word))
            .ok_or_else(|| {
                let names: Vec<&str> = CONTEXTS.iter().map(|(name, _)| *name).collect();
                v.invalid(&format!(
                    "unknown debug context {word:?}; expected a list of {}",
                    names.join(", ")
                ))
            })?;
        if !contexts.contains(name) {
            contexts.push(*name);
        }
    }
    Ok(contexts)
}

/// The `tracing` filter directives (`target=debug`, comma-separated) for `contexts`, each
/// target once; `None` when they cover no target.
pub(super) fn filter(contexts: &[&str]) -> Option<String> {
    let mut targets: Vec<&str> = Vec::new();
    for context in contexts {
        let (_, covered) = CONTEXTS.iter().find(|(name, _)| name == context)?;
        for target in *covered {
            if !targets.contains(target) {
                targets.push(target);
            }
        }
    }
    // A target inside another one already listed adds nothing.
    let directives: Vec<String> = targets
        .iter()
        .filter(|t| {
            !targets
                .iter()
                .any(|outer| outer != *t && t.starts_with(&format!("{outer}::")))
        })
        .map(|t| format!("{t}=debug"))
        .collect();
    (!directives.is_empty()).then(|| directives.join(","))
}

#[cfg(test)]
mod tests {
    use crate::config::ClientConfig;
    use crate::error::ConfigError;

    fn filter(debug: &str) -> Option<String> {
        ClientConfig::new()
            .set("debug", debug)
            .unwrap()
            .debug_filter()
    }

    #[test]
    fn contexts_become_targets() {
        assert_eq!(
            filter("broker,topic,msg").as_deref(),
            Some("purekafka::conn=debug,purekafka::cluster=debug,purekafka::producer=debug")
        );
        assert_eq!(
            filter(" CGRP , fetch").as_deref(),
            Some(
                "purekafka::group=debug,purekafka::consumer::membership=debug,\
                 purekafka::consumer::fetch=debug,purekafka::consumer::absorb=debug"
            )
        );
        assert_eq!(filter("all,broker").as_deref(), Some("purekafka=debug"));
        assert_eq!(filter("plugin,mock"), None);
        assert_eq!(filter(""), None);
        assert_eq!(ClientConfig::new().debug_filter(), None);
    }

    #[test]
    fn an_unknown_context_is_named() {
        let err = ClientConfig::new()
            .set("debug", "broker,brokers")
            .unwrap_err();
        let ConfigError::InvalidValue { key, reason, .. } = &err else {
            panic!("{err:?}")
        };
        assert_eq!(key, "debug");
        assert!(reason.contains("\"brokers\""), "{reason}");
    }

    /// Every target named is a module that exists, so the directives filter real events.
    #[test]
    fn targets_are_modules() {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/src");
        for (_, targets) in super::CONTEXTS {
            for target in *targets {
                let rel: Vec<&str> = target.split("::").skip(1).collect();
                if rel.is_empty() {
                    continue;
                }
                let path = format!("{root}/{}", rel.join("/"));
                let exists = std::path::Path::new(&format!("{path}.rs")).exists()
                    || std::path::Path::new(&format!("{path}/mod.rs")).exists();
                assert!(exists, "{target}: no module at {path}");
            }
        }
    }
}
