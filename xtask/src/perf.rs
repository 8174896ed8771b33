//! `cargo xtask perf …`: the load generator (examples/perf.rs) in a release build against the
//! local Kafka, started when none is up; `perf compare`, purekafka against its peers
//! (benches/peers and the Java client), each in a process of its own; `perf rejoin`, how soon a
//! cooperative member joins again after a revocation, against librdkafka; and `perf size`, the
//! size of a static purekafka producer.

mod compare;
mod java;
mod measure;
mod rejoin;
mod report;
mod size;
mod workload;

use crate::kafka::{self, UpOptions};
use crate::run::{cargo, check};

pub fn perf(args: &[&str]) -> Result<(), String> {
    if let Some((&"compare", rest)) = args.split_first() {
        return compare::compare(rest);
    }
    if let Some((&"rejoin", rest)) = args.split_first() {
        return rejoin::rejoin(rest);
    }
    if args == ["size"] {
        return size::size();
    }
    let cluster = kafka::ensure_up(&UpOptions::default())?;
    let bootstrap = cluster.plaintext_bootstrap();
    let mut run = vec!["run", "--quiet", "--release", "--example", "perf", "--"];
    run.extend_from_slice(args);
    run.extend_from_slice(&["--bootstrap", &bootstrap]);
    check(cargo(&run))
}
