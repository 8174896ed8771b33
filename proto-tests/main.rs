//! Integration tests against the real local Kafka (`cargo xtask kafka up`; `cargo xtask test`
//! starts it). Addresses come from `PUREKAFKA_PLAINTEXT` and `PUREKAFKA_SASL`, defaulting to the
//! single-broker layout. A test that cannot reach its broker fails: nothing here skips.

mod admin;
mod common;
mod produce_fetch;
mod producer;
mod sasl;
mod versions;
