//! Tests of the whole client against a fake broker of their own (`fake_broker.rs`), on loopback
//! sockets: a hostile broker's bytes (`hostile`) and how the clients ask for metadata
//! (`metadata`). They need no Kafka, so a plain `cargo test` runs them; the tests that need the
//! real broker are the `proto-tests` binary.

mod fake_broker;
mod hostile;
mod metadata;
mod share;
mod timeouts;

use std::sync::atomic::{AtomicUsize, Ordering};

/// A topic name no earlier test used.
pub fn unique_topic(prefix: &str) -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    format!("{prefix}-{}", COUNTER.fetch_add(1, Ordering::Relaxed))
}
