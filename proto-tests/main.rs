//! Integration tests against the real local Kafka (`cargo xtask kafka up`; `cargo xtask test`
//! starts it). Addresses come from `PUREKAFKA_PLAINTEXT` and `PUREKAFKA_SASL`, defaulting to the
//! single-broker layout; tests that read the broker's log segments find them under
//! `PUREKAFKA_DATA_DIR` (default: that layout's data folder). A test that cannot reach its broker
//! fails: nothing here skips. `hostile` is the exception that needs no Kafka: it plays a fake
//! broker of its own.

mod admin;
mod bad_credentials;
mod common;
mod consumer;
mod consumer_group;
mod fake_broker;
mod hostile;
mod kip848;
mod metadata;
#[cfg(feature = "cli")]
mod pkcat;
mod produce_fetch;
mod producer;
mod rebalance;
mod sasl;
mod scram;
#[cfg(feature = "tls")]
mod tls;
mod topology;
mod transactions;
mod versions;
