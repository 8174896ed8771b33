//! purekafka: a pure-Rust Apache Kafka client.
#![forbid(unsafe_code)]
