//! `cargo xtask test --matrix`: the proto-test suite against each Kafka line purekafka's users
//! run: CKafka's instance versions 2.4.1, 2.8 and 3.2.3 in ZooKeeper mode (as CKafka runs them;
//! 2.4 with PKCS12 TLS stores, which it needs), 3.9 and the newest 4.x, one fresh
//! single-broker cluster after another. It writes what it found to
//! COMPATIBILITY.md: the version of each API negotiated with each broker, and the tests passed.
//! The default cluster (4.x) is left running at the end, as `cargo xtask test` wants it.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Instant;

use purekafka::protocol::versions::OURS;

use crate::kafka::{self, Cluster, UpOptions};
use crate::run::{output_of, root};
use crate::test::proto_tests;

/// The brokers of the matrix: 2.4.1, 2.8 and 3.2.3 (ZooKeeper), 3.9 and the newest 4.x (KRaft).
const VERSIONS: [&str; 5] = ["2.4.1", "2.8.2", "3.2.3", "3.9.2", kafka::DEFAULT_VERSION];

/// What one broker version gave.
struct Run {
    version: &'static str,
    negotiated: Vec<(&'static str, Option<i16>)>,
    /// The cluster's finalized `transaction.version`, if it reports one.
    transaction_version: Option<i16>,
    /// Test name → passed.
    tests: BTreeMap<String, bool>,
    seconds: f64,
}

pub fn matrix() -> Result<(), String> {
    let started = Instant::now();
    let mut runs = Vec::new();
    for version in VERSIONS {
        kafka::down()?;
        let cluster = kafka::ensure_up(&UpOptions {
            version: version.to_owned(),
            ..UpOptions::default()
        })?;
        let began = Instant::now();
        let (negotiated, transaction_version) = negotiated(&cluster)?;
        let mut tests = proto_tests(&cluster);
        // The outcome is read from the test list, so a failing suite does not stop the matrix.
        let output = tests
            .output()
            .map_err(|e| format!("cannot run the proto-tests: {e}"))?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        // Each run's whole output stays for reading a failure afterwards.
        let log = root().join(format!("target/matrix/{version}.log"));
        let saved = std::fs::create_dir_all(root().join("target/matrix")).and_then(|()| {
            let stderr = String::from_utf8_lossy(&output.stderr);
            std::fs::write(&log, format!("{stdout}\n--- stderr ---\n{stderr}"))
        });
        if let Err(e) = saved {
            eprintln!("cannot keep the output in {}: {e}", log.display());
        }
        let results = parse_results(&stdout);
        if results.is_empty() {
            return Err(format!(
                "the proto-tests against Kafka {version} ran no test:\n{stdout}\n{}",
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        let failed: Vec<&String> = results
            .iter()
            .filter(|(_, ok)| !**ok)
            .map(|(t, _)| t)
            .collect();
        eprintln!(
            "Kafka {version}: {} of {} proto-tests passed{}",
            results.len() - failed.len(),
            results.len(),
            if failed.is_empty() {
                String::new()
            } else {
                format!("; failed: {failed:?} (output in {})", log.display())
            }
        );
        runs.push(Run {
            version,
            negotiated,
            transaction_version,
            tests: results,
            seconds: began.elapsed().as_secs_f64(),
        });
    }
    kafka::down()?;
    kafka::ensure_up(&UpOptions::default())?;

    let commit = output_of({
        let mut git = std::process::Command::new("git");
        git.args(["rev-parse", "--short", "HEAD"])
            .current_dir(root());
        git
    })?;
    let report = report(&runs, commit.trim());
    let path = root().join("COMPATIBILITY.md");
    std::fs::write(&path, &report).map_err(|e| format!("{}: {e}", path.display()))?;
    eprintln!(
        "matrix written to {} ({:.0} s)",
        path.display(),
        started.elapsed().as_secs_f64()
    );
    let failures: usize = runs
        .iter()
        .map(|r| r.tests.values().filter(|ok| !**ok).count())
        .sum();
    match failures {
        0 => Ok(()),
        n => Err(format!(
            "{n} proto-test(s) failed across the matrix (COMPATIBILITY.md)"
        )),
    }
}

/// The version of each API purekafka uses negotiated with `cluster`'s broker, and the
/// cluster's `transaction.version`.
type Negotiated = (Vec<(&'static str, Option<i16>)>, Option<i16>);

fn negotiated(cluster: &Cluster) -> Result<Negotiated, String> {
    let config = purekafka::ClientConfig::new().bootstrap_servers([cluster.plaintext_bootstrap()]);
    crate::run::block_on(async {
        let admin = crate::run::admin(config).await?;
        let versions = admin.negotiated_versions().await;
        let feature = admin.finalized_feature("transaction.version").await;
        Ok((
            versions.map_err(|e| e.to_string())?,
            feature.map_err(|e| e.to_string())?,
        ))
    })
}

/// `test NAME ... ok|FAILED` lines of libtest's output: name → passed. Ignored tests are left
/// out (the suite has none: nothing skips).
fn parse_results(stdout: &str) -> BTreeMap<String, bool> {
    stdout
        .lines()
        .filter_map(|line| {
            let rest = line.strip_prefix("test ")?;
            let (name, outcome) = rest.rsplit_once(" ... ")?;
            match outcome.trim() {
                "ok" => Some((name.to_owned(), true)),
                "FAILED" => Some((name.to_owned(), false)),
                _ => None,
            }
        })
        .collect()
}

fn report(runs: &[Run], commit: &str) -> String {
    let mut s = String::new();
    let versions: Vec<String> = runs
        .iter()
        .map(|r| format!("Kafka {}", r.version))
        .collect();
    let _ = writeln!(
        s,
        "# Compatibility\n\n\
         Written by `cargo xtask test --matrix` at commit `{commit}`: the proto-test suite \
         (`proto-tests/`, every test against the real broker) run against one fresh broker of \
         each version in turn, {}. CI runs the newest 4.x on every submission \
         (`cargo xtask test`); this matrix is run by hand and its result committed. The tests \
         that play a broker of their own (`proto-tests/offline/`: hostile bytes, metadata \
         requests) need none and are not part of it.\n",
        versions.join(", ")
    );
    let _ = writeln!(
        s,
        "2.4.1, 2.8.2 and 3.2.3 run in ZooKeeper mode, as CKafka's instances do (2.4.1, 2.8.1 \
         recommended, 3.2.3: classic groups only); 3.9 and 4.x in KRaft mode.\n"
    );

    let _ = writeln!(s, "## Tests passed\n");
    let _ = writeln!(s, "| area | {} |", versions.join(" | "));
    let _ = writeln!(s, "|---|{}", "---:|".repeat(runs.len()));
    let mut areas: BTreeMap<&str, Vec<(usize, usize)>> = BTreeMap::new();
    for (i, run) in runs.iter().enumerate() {
        for (name, ok) in &run.tests {
            let area = name.split("::").next().unwrap_or(name);
            let counts = areas
                .entry(area)
                .or_insert_with(|| vec![(0, 0); runs.len()]);
            counts[i].1 += 1;
            counts[i].0 += usize::from(*ok);
        }
    }
    for (area, counts) in &areas {
        let cells: Vec<String> = counts
            .iter()
            .map(|(ok, all)| format!("{ok}/{all}"))
            .collect();
        let _ = writeln!(s, "| {area} | {} |", cells.join(" | "));
    }
    let totals: Vec<String> = runs
        .iter()
        .map(|r| {
            let ok = r.tests.values().filter(|ok| **ok).count();
            format!("**{ok}/{}** in {:.0} s", r.tests.len(), r.seconds)
        })
        .collect();
    let _ = writeln!(s, "| all | {} |", totals.join(" | "));
    for run in runs {
        let failed: Vec<&String> = run
            .tests
            .iter()
            .filter(|(_, ok)| !**ok)
            .map(|(t, _)| t)
            .collect();
        if !failed.is_empty() {
            let _ = writeln!(
                s,
                "\nFailed against Kafka {}: {}",
                run.version,
                failed
                    .iter()
                    .map(|t| format!("`{t}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }

    let _ = writeln!(s, "\n## API versions negotiated\n");
    let _ = writeln!(
        s,
        "The highest version both sides speak, from the broker's ApiVersions answer; `—` where \
         the broker lacks the API.\n"
    );
    let _ = writeln!(s, "| API | key | purekafka | {} |", versions.join(" | "));
    let _ = writeln!(s, "|---|---:|---|{}", "---:|".repeat(runs.len()));
    for &(key, min, max) in OURS {
        let name = purekafka::protocol::api::api_name(key);
        let cells: Vec<String> = runs
            .iter()
            .map(|r| {
                r.negotiated
                    .iter()
                    .find(|(api, _)| *api == name)
                    .and_then(|(_, v)| *v)
                    .map_or("—".to_owned(), |v| format!("v{v}"))
            })
            .collect();
        let _ = writeln!(
            s,
            "| {name} | {key} | v{min}–v{max} | {} |",
            cells.join(" | ")
        );
    }
    let protocol = |v2: bool| -> Vec<String> {
        runs.iter()
            .filter(|r| r.transaction_version.is_some_and(|l| l >= 2) == v2)
            .map(|r| r.version.to_owned())
            .collect()
    };
    let (v2, v1) = (protocol(true), protocol(false));
    let _ = writeln!(
        s,
        "\n## Transaction protocol\n\n\
         v2 (KIP-890: the brokers add partitions and offsets to a transaction, each EndTxn \
         bumps the epoch), chosen where the cluster's finalized `transaction.version` is 2 or \
         more: {}. v1 with the others: {}.",
        if v2.is_empty() {
            "none".to_owned()
        } else {
            v2.join(", ")
        },
        if v1.is_empty() {
            "none".to_owned()
        } else {
            v1.join(", ")
        },
    );
    let _ = writeln!(
        s,
        "\n## What differs by version\n\n\
         - **KIP-848 groups** (`group.protocol=consumer`): Kafka 4 serves them. 3.9 lists \
         ConsumerGroupHeartbeat and ConsumerGroupDescribe (negotiated above) but refuses them \
         unless `group.coordinator.rebalance.protocols` includes `consumer`, which the matrix \
         leaves at its default; 2.4 to 3.2 lack them. Where a broker does not serve them, the KIP-848 \
         tests check that joining fails with a `Config` error naming `group.protocol`.\n\
         - **Describing a group**: a KIP-848 group through ConsumerGroupDescribe (4.x), a \
         classic one through DescribeGroups. An unknown group comes back as GROUP_ID_NOT_FOUND \
         or in state `Dead`, as the broker has it; the test takes either.\n\
         - **Listing groups**: the state from ListGroups v4 (2.6+), the group type from v5 \
         (3.8+), `None` before.\n\
         - **TLS**: a listener requiring a client certificate refuses a client without one \
         with the alert BadCertificate (4.4), with a record that does not decrypt (2.8.2) \
         or with a handshake message out of place (2.4.1, on Java 17); each is \
         `Error::Tls` naming the client certificate.\n\
         - **TLS stores**: brokers before 2.7 read no PEM stores; the harness gives 2.4.1 \
         PKCS12 stores of the same certificates.\n\
         - **Fetch**: 2.4.1 stops at v11 (no flexible versions); the transaction test's \
         hand-built Fetch asks v11 of it. Its console producer takes `--broker-list`.\n\
         - **Offsets committed with a transaction**: from 2.5 a read_committed consumer asks \
         for stable offsets (KIP-447) and its answer waits for the transaction's markers; \
         2.4.1 answers with the offset before until they land, which took up to 3 s after \
         `commit_transaction` returned. The test waits for them there.\n\
         - **SCRAM users** are created with `kafka-storage format --add-scram` (KRaft) or \
         `kafka-configs --zookeeper` (2.4 to 3.2)."
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libtest_lines_are_read() {
        let out = "running 3 tests\ntest a::x ... ok\ntest b::y ... FAILED\n\
                   test c::z ... ignored\nnoise ... ok\n\ntest result: FAILED.";
        let results = parse_results(out);
        assert_eq!(results.len(), 2);
        assert!(results["a::x"]);
        assert!(!results["b::y"]);
    }
}
