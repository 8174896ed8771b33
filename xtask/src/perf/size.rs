//! `cargo xtask perf size`: how big a purekafka program is. The producer example and pkcat
//! built in release for x86_64-unknown-linux-musl (static, as `cargo xtask test` checks them), as
//! built and stripped; for contrast the glibc peer binaries of `benches/peers` that link purekafka and
//! librdkafka (statically, from its bundled build), stripped too. Those are dynamic executables:
//! libc, libm, libgcc_s and, for librdkafka, zlib are not in them. Each peer holds all three
//! workloads, so the pair compares whole clients, not one producer.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::workload::thousands;
use crate::run::{check, root};
use crate::test::{has_interpreter, musl_build};

/// `cargo xtask perf size`.
pub fn size() -> Result<(), String> {
    super::compare::build_peers()?;
    print!("{}", table(&super::compare::peers_dir())?);
    Ok(())
}

/// Builds the musl producer and returns the Markdown table of sizes; the peers are read from
/// `peers` (already built).
pub fn table(peers: &Path) -> Result<String, String> {
    let producer = musl_build(&["--example", "producer"])?.join("examples/producer");
    let pkcat = musl_build(&["--bin", "pkcat", "--features", "cli"])?.join("pkcat");
    for path in [&producer, &pkcat] {
        if has_interpreter(path)? {
            return Err(format!("{} is dynamically linked", path.display()));
        }
    }
    let mut out = String::from(
        "| binary | linking | as built, bytes | stripped, bytes | stripped, MiB |\n\
         |---|---|---:|---:|---:|\n",
    );
    let binaries = [
        ("examples/producer.rs", "static, musl", producer),
        ("pkcat", "static, musl", pkcat),
        (
            "peer-purekafka",
            "dynamic, glibc",
            peers.join("peer-purekafka"),
        ),
        ("peer-rdkafka", "dynamic, glibc", peers.join("peer-rdkafka")),
    ];
    for (name, linking, path) in binaries {
        let built = len(&path)?;
        let stripped = len(&stripped_copy(&path)?)?;
        let _ = writeln!(
            out,
            "| {name} | {linking} | {} | {} | {:.2} |",
            thousands(built),
            thousands(stripped),
            stripped as f64 / (1024.0 * 1024.0)
        );
    }
    Ok(out)
}

fn len(path: &Path) -> Result<u64, String> {
    std::fs::metadata(path)
        .map(|m| m.len())
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// A copy of `path` in `target/perf-size/`, stripped of its symbols with binutils' `strip`.
fn stripped_copy(path: &Path) -> Result<PathBuf, String> {
    let dir = root().join("target/perf-size");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let copy = dir.join(path.file_name().unwrap_or_default());
    std::fs::copy(path, &copy).map_err(|e| format!("copy {}: {e}", path.display()))?;
    let mut strip = Command::new("strip");
    strip.arg(&copy);
    check(strip)?;
    Ok(copy)
}
