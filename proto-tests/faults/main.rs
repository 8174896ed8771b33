//! Fault scenarios against the real three-broker cluster, run by `cargo xtask test --faults`:
//! brokers killed and stopped under load, every broker down at once, a consumer group whose
//! members come and go, partition leaders killed while a group (and pkcat) reads, an unclean
//! election truncating a log under consumers, a consume-transform-produce loop kept exactly
//! once through kills of its coordinator, a leader and itself, and the proto-tests' topology scenarios (topics
//! and partitions appearing) on three brokers. Each scenario prints its figures as one `FAULT-REPORT {json}` line (and
//! appends it to `PUREKAFKA_FAULT_REPORT` when set); RELIABILITY.md collects them.
//!
//! The scenarios take turns ([`cluster::serial`]): each may stop brokers the others need.

#[allow(dead_code)]
#[path = "../common.rs"]
mod common;

mod churn;
mod cluster;
mod eos;
mod group;
mod leader;
mod ledger;
mod outage;
mod pkcat;
mod rack;
/// The topology scenarios of the proto-tests, against three brokers.
#[path = "../topology.rs"]
mod topology;
mod truncation;
