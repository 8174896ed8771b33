//! `cargo xtask test`: starts the local Kafka, then runs every gate: formatting, clippy with
//! warnings denied, docs without warnings, the protocol layer's freedom from I/O and the build's
//! from C, the declared rust-version and `cargo package` (src/publish.rs), the whole test
//! suite (unit, doc and proto-tests against the real broker), and a static musl build of the
//! examples whose producer runs once against the broker.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use crate::kafka::{self, UpOptions};
use crate::publish;
use crate::run::{cargo, check, output_of, root, target_dir};

const MUSL: &str = "x86_64-unknown-linux-musl";
/// purekafka's optional features, TLS, pkcat and the metrics facade, for the commands that name
/// packages of the whole workspace.
const FEATURES: &str = "purekafka/tls,purekafka/cli,purekafka/metrics,purekafka/oidc";
/// The patched kafka-protocol: a workspace member so that it packages with purekafka, but
/// upstream's code, neither linted nor tested as ours.
const PROTOCOL_COPY: &str = "purekafka-kafka-protocol";

pub fn test() -> Result<(), String> {
    let started = Instant::now();
    let cluster = kafka::ensure_up(&UpOptions::default())?;

    check(cargo(&["fmt", "--all", "--", "--check"]))?;
    // Linted with and without the optional features: each build has code of its own.
    for features in [&[][..], &["--features", FEATURES]] {
        let mut args = vec![
            "clippy",
            "--workspace",
            "--exclude",
            PROTOCOL_COPY,
            "--all-targets",
        ];
        args.extend_from_slice(features);
        args.extend(["--", "-D", "warnings"]);
        check(cargo(&args))?;
    }
    // The fault scenarios are `test = false`, which --all-targets leaves out.
    check(cargo(&[
        "clippy", "--test", "faults", "--", "-D", "warnings",
    ]))?;
    let mut doc = cargo(&[
        "doc",
        "--no-deps",
        "--package",
        "purekafka",
        "--features",
        FEATURES,
    ]);
    doc.env("RUSTDOCFLAGS", "-D warnings");
    check(doc)?;
    protocol_is_pure()?;
    no_c_compilation()?;
    publish::msrv()?;
    publish::package()?;

    // The whole suite with the optional features, whose proto-tests need them (TLS, pkcat);
    // the library's unit tests without them too.
    check(cargo(&["test", "--package", "purekafka", "--lib"]))?;
    let mut tests = cargo(&[
        "test",
        "--workspace",
        "--exclude",
        PROTOCOL_COPY,
        "--features",
        FEATURES,
    ]);
    tests.envs(cluster.test_env());
    check(tests)?;

    musl_examples(&cluster)?;
    eprintln!(
        "xtask test: all gates passed in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The proto-tests alone (`cargo xtask test --matrix` runs them against each Kafka line).
pub fn proto_tests(cluster: &kafka::Cluster) -> Command {
    let mut tests = cargo(&["test", "--features", FEATURES, "--test", "proto-tests"]);
    tests.envs(cluster.test_env());
    tests
}

/// `cargo xtask test --faults`: the fault scenarios of `proto-tests/faults/` against a fresh
/// three-broker cluster (any other cluster running is stopped first, and this one after), with
/// their figures gathered in `target/faults-report.jsonl` and printed at the end.
pub fn faults() -> Result<(), String> {
    let started = Instant::now();
    kafka::down()?;
    let cluster = kafka::ensure_up(&UpOptions {
        brokers: 3,
        ..UpOptions::default()
    })?;
    // The group churn scenario runs the consumer example as member processes; another runs
    // pkcat.
    check(cargo(&["build", "--examples"]))?;
    check(cargo(&["build", "--features", "cli", "--bin", "pkcat"]))?;
    let report = root().join("target/faults-report.jsonl");
    let _ = std::fs::remove_file(&report);
    let xtask = std::env::current_exe().map_err(|e| format!("the xtask binary: {e}"))?;
    let mut tests = cargo(&[
        "test",
        "--test",
        "faults",
        "--",
        "--test-threads=1",
        "--nocapture",
    ]);
    tests.envs(cluster.test_env());
    tests
        .env("PUREKAFKA_XTASK", &xtask)
        .env("PUREKAFKA_FAULT_REPORT", &report)
        .env(
            "PUREKAFKA_EXAMPLES",
            target_dir(&root()).join("debug/examples"),
        )
        .env("PUREKAFKA_PKCAT", target_dir(&root()).join("debug/pkcat"));
    let outcome = check(tests);
    // Read before `down`, which forgets the cluster; shown last, where CI's summary shows it.
    let failed = outcome.is_err();
    let errors = if failed {
        kafka::broker_errors(10)
    } else {
        Vec::new()
    };
    kafka::down()?;
    if let Ok(lines) = std::fs::read_to_string(&report) {
        eprintln!("fault scenario figures ({}):", report.display());
        for line in lines.lines() {
            eprintln!("  {line}");
        }
    }
    if failed {
        for broker in errors {
            eprintln!("{broker}");
        }
        // A broker that finds its disk full stops; say how full it is.
        let _ = Command::new("df")
            .arg("-h")
            .arg(root().join("target"))
            .status();
    }
    outcome?;
    eprintln!(
        "xtask test --faults: every scenario passed in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// `src/protocol/` is bytes in, bytes out: it uses no tokio and nothing from the layers above
/// it (shared/STYLE.md).
fn protocol_is_pure() -> Result<(), String> {
    let mut dirs = vec![root().join("src/protocol")];
    while let Some(dir) = dirs.pop() {
        let entries = std::fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        for entry in entries {
            let path = entry.map_err(|e| e.to_string())?.path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            let text =
                std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            let impure = text.lines().find(|l| {
                let code = l.split("//").next().unwrap_or("");
                code.contains("tokio")
                    || (code.contains("crate::") && !code.contains("crate::protocol"))
            });
            if let Some(line) = impure {
                return Err(format!(
                    "{}: `{}`: the protocol layer uses no I/O and nothing above it",
                    path.display(),
                    line.trim()
                ));
            }
        }
    }
    Ok(())
}

/// Nothing in purekafka's default dependency graph (dev and build dependencies included, since
/// the musl build of the examples compiles those too) may compile C: no `cc`, `cmake` or
/// `pkg-config` crate. The `tls` feature brings ring's C, and xtask builds it for its
/// certificates; neither is the default build.
fn no_c_compilation() -> Result<(), String> {
    let tree = output_of(cargo(&[
        "tree",
        "--package",
        "purekafka",
        "--edges",
        "normal,build,dev",
        "--prefix",
        "none",
        "--format",
        "{p}",
    ]))?;
    let c_builders: Vec<&str> = tree
        .lines()
        .filter(|l| {
            ["cc ", "cmake ", "pkg-config "]
                .iter()
                .any(|c| l.starts_with(c))
        })
        .collect();
    if c_builders.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "the dependency graph compiles C: {}",
            c_builders.join(", ")
        ))
    }
}

/// `cargo build --release --target x86_64-unknown-linux-musl ARGS`, with the target added to the
/// toolchain first if it is missing; returns the build's `release` folder.
pub fn musl_build(args: &[&str]) -> Result<PathBuf, String> {
    let installed = output_of({
        let mut c = Command::new("rustup");
        c.args(["target", "list", "--installed"]);
        c
    })?;
    if !installed.lines().any(|l| l.trim() == MUSL) {
        let mut add = Command::new("rustup");
        add.args(["target", "add", MUSL]);
        check(add)?;
    }
    let mut build = vec!["build", "--release", "--target", MUSL];
    build.extend_from_slice(args);
    check(cargo(&build))?;
    Ok(target_dir(&root()).join(MUSL).join("release"))
}

/// Builds the examples and pkcat for musl, checks they are static, and runs the producer and
/// pkcat once.
fn musl_examples(cluster: &kafka::Cluster) -> Result<(), String> {
    let release = musl_build(&["--examples", "--bin", "pkcat", "--features", "cli"])?;
    let dir = release.join("examples");
    for path in [
        dir.join("producer"),
        dir.join("consumer"),
        release.join("pkcat"),
    ] {
        if has_interpreter(&path)? {
            return Err(format!("{} is dynamically linked", path.display()));
        }
        let size = std::fs::metadata(&path).map_err(|e| e.to_string())?.len();
        eprintln!(
            "{}: static musl executable, {} KiB",
            path.display(),
            size / 1024
        );
    }
    let mut pkcat = Command::new(release.join("pkcat"));
    pkcat.args(["-b", &cluster.plaintext_bootstrap(), "-L", "-t", "test"]);
    let config = root().join("fixtures/ckafka.json");
    crate::demo::create_topics(&config)?;
    let metadata = output_of(pkcat)?;
    if !metadata.contains("topic \"test\" with") {
        return Err(format!(
            "the musl pkcat did not list the topic test: {metadata}"
        ));
    }
    let mut producer = Command::new(dir.join("producer"));
    producer
        .args([
            "--config",
            &config.to_string_lossy(),
            "static musl producer",
        ])
        .current_dir(root());
    let out = output_of(producer)?;
    print!("{out}");
    if !out.starts_with("Delivered message to ") {
        return Err(format!("the musl producer did not deliver: {out}"));
    }
    Ok(())
}

/// True if the ELF file at `path` names a program interpreter (PT_INTERP), i.e. it needs the
/// dynamic loader. A static executable, static-pie included, has none.
pub fn has_interpreter(path: &Path) -> Result<bool, String> {
    let elf = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let bad = || format!("{} is not a 64-bit little-endian ELF file", path.display());
    if elf.len() < 64 || &elf[..4] != b"\x7fELF" || elf[4] != 2 || elf[5] != 1 {
        return Err(bad());
    }
    let u16_at = |o: usize| u16::from_le_bytes([elf[o], elf[o + 1]]) as usize;
    let phoff = u64::from_le_bytes(elf[32..40].try_into().expect("8 bytes")) as usize;
    let (phentsize, phnum) = (u16_at(54), u16_at(56));
    for i in 0..phnum {
        let at = phoff + i * phentsize;
        let p_type = elf.get(at..at + 4).ok_or_else(bad)?;
        if u32::from_le_bytes(p_type.try_into().expect("4 bytes")) == 3 {
            return Ok(true);
        }
    }
    Ok(false)
}
