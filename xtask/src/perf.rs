//! `cargo xtask perf …`: the load generator (examples/perf.rs) in a release build against the
//! local Kafka, started when none is up.

use crate::kafka::{self, UpOptions};
use crate::run::{cargo, check};

pub fn perf(args: &[&str]) -> Result<(), String> {
    let cluster = kafka::ensure_up(&UpOptions::default())?;
    let bootstrap = cluster.plaintext_bootstrap();
    let mut run = vec!["run", "--quiet", "--release", "--example", "perf", "--"];
    run.extend_from_slice(args);
    run.extend_from_slice(&["--bootstrap", &bootstrap]);
    check(cargo(&run))
}
