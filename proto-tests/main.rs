//! Integration tests against the real local Kafka (`cargo xtask kafka up`; `cargo xtask test`
//! starts it). Addresses come from `PUREKAFKA_PLAINTEXT` and `PUREKAFKA_SASL`, defaulting to the
//! single-broker layout; tests that read the broker's log segments find them under
//! `PUREKAFKA_DATA_DIR` (default: that layout's data folder). A test that cannot reach its broker
//! fails: nothing here skips. The tests that play a fake broker of their own, and need no
//! Kafka, are the `offline` binary (`proto-tests/offline/`).

mod admin;
mod admin_ops;
mod bad_credentials;
mod common;
mod consumer;
mod consumer_calls;
mod consumer_group;
#[cfg(feature = "oidc")]
mod idp;
mod kip848;
mod oauth;
#[cfg(feature = "oidc")]
mod oidc;
#[cfg(feature = "cli")]
mod pkcat;
mod produce_fetch;
mod producer;
mod reauth;
mod rebalance;
mod sasl;
mod scram;
mod share;
mod statistics;
#[cfg(feature = "tls")]
mod tls;
mod topology;
mod transactions;
mod txn_producer;
mod versions;
