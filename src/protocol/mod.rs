//! The Kafka wire protocol, free of I/O: no tokio, no clock, no sockets. Bytes in, bytes out.
//!
//! - [`api`]: the requests purekafka sends, with their keys and responses;
//! - [`codes`]: the error codes handled by name;
//! - [`compression`]: gzip, snappy, lz4 and zstd, in pure Rust;
//! - [`consumer_protocol`]: group members' subscriptions and assignments;
//! - [`frame`]: size-prefixed frames, request and response headers, correlation ids;
//! - [`versions`]: the APIs purekafka speaks and version negotiation with a broker;
//! - [`produce`]: Produce request bodies that carry record batches without copying them;
//! - [`records`]: the record-batch encoder (the producer's hot path) and zero-copy decoder;
//! - [`sasl`]: SASL mechanisms as state machines;
//! - [`share`]: share groups' acquired records and acknowledgements (KIP-932).
//!
//! Request and response bodies are kafka-protocol's message types; its `anyhow` errors are turned
//! into strings here and into [`crate::Error`] by the connection layer.
//!
//! This module is public for benchmarks and for users who need the building blocks; its API may
//! change between minor versions.

pub mod api;
pub mod codes;
pub mod compression;
pub mod consumer_protocol;
pub mod frame;
pub mod produce;
pub mod records;
pub mod sasl;
pub mod share;
pub mod versions;

#[cfg(test)]
mod hostile_tests;
