//! Broker jars, fetched with Maven from xtask/kafka/pom.xml into target/kafka/dist/<version>/libs.

use std::fs;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Instant;

use super::config::{Layout, Paths};

/// Make sure `target/kafka/dist/<version>/libs` holds the jars; download them
/// with `mvn dependency:copy-dependencies` the first time. The copy goes to a
/// scratch directory that is renamed into place only when Maven succeeded, so
/// an interrupted download is never mistaken for a complete one.
pub fn ensure_libs(paths: &Paths, layout: &Layout) -> Result<PathBuf, String> {
    let libs = paths.libs(&layout.version);
    let core_jar = libs.join(format!("kafka_2.13-{}.jar", layout.version));
    if core_jar.is_file() {
        return Ok(libs);
    }
    let partial = paths.dist(&layout.version).join("libs.partial");
    let _ = fs::remove_dir_all(&partial);
    fs::create_dir_all(&partial)
        .map_err(|e| format!("cannot create {}: {e}", partial.display()))?;
    eprintln!(
        "fetching Kafka {} jars with Maven (profile {}) into {} ...",
        layout.version,
        layout.maven_profile(),
        libs.display()
    );
    let started = Instant::now();
    // Output is captured (Maven prints stray ANSI resets even with -q) and
    // shown only when it fails.
    let out = Command::new("mvn")
        .arg("-q")
        .arg("-B")
        .arg("-Dstyle.color=never")
        .arg("-f")
        .arg(paths.pom())
        .arg("-P")
        .arg(layout.maven_profile())
        .arg(format!("-Dkafka.version={}", layout.version))
        .arg("dependency:copy-dependencies")
        .arg("-DincludeScope=runtime")
        .arg(format!("-DoutputDirectory={}", partial.display()))
        .current_dir(&paths.root)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run mvn (is Maven installed and on PATH?): {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "mvn failed ({}) fetching Kafka {}; is that version on Maven Central?\n{}{}",
            out.status,
            layout.version,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    if !partial
        .join(format!("kafka_2.13-{}.jar", layout.version))
        .is_file()
    {
        return Err(format!(
            "mvn succeeded but kafka_2.13-{}.jar is not in {}",
            layout.version,
            partial.display()
        ));
    }
    let _ = fs::remove_dir_all(&libs);
    fs::rename(&partial, &libs).map_err(|e| format!("cannot move jars into place: {e}"))?;
    eprintln!("fetched in {:.1}s", started.elapsed().as_secs_f64());
    Ok(libs)
}
