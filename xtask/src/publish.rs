//! The gates that keep purekafka publishable: `cargo package --workspace` (every crate packs and
//! builds from its package alone, purekafka against the packed kafka-protocol copy), and the
//! `rust-version` that Cargo.toml declares, built with that very toolchain.

use std::path::Path;
use std::process::Command;

use crate::run::{cargo, check, root, target_dir};

/// `cargo package --workspace`: what `cargo publish` would upload, each package verified by a
/// build from its own archive.
pub fn package() -> Result<(), String> {
    // The working tree may hold uncommitted changes while a developer runs the gates; CI runs on
    // a clean clone, where the flag changes nothing.
    check(cargo(&["package", "--workspace", "--allow-dirty"]))
}

/// Builds the library the way an application on the oldest supported Rust would: a scratch
/// application depending on purekafka (default features, then `tls`, `metrics` and `oidc`), its
/// dependencies resolved to the newest versions that declare that Rust (cargo's MSRV-aware
/// fallback), checked with the toolchain of Cargo.toml's `rust-version`, which rustup installs
/// if it is missing. Where rustup cannot, clippy's `incompatible_msrv` lint stands in, as it
/// does in every build.
pub fn msrv() -> Result<(), String> {
    let root = root();
    let manifest = std::fs::read_to_string(root.join("Cargo.toml"))
        .map_err(|e| format!("cannot read Cargo.toml: {e}"))?;
    let version = rust_version(&manifest)?;
    let mut install = Command::new("rustup");
    install.args(["toolchain", "install", version, "--profile", "minimal"]);
    if let Err(e) = check(install) {
        // The fallback for a machine that cannot download toolchains: clippy's
        // `incompatible_msrv` lint (on by default, denied by the clippy gate) has already checked
        // purekafka's own use of std against the declared version; the dependencies' go unchecked.
        eprintln!(
            "warning: {e}: Rust {version} could not be installed, so the rust-version is checked \
             only by clippy's incompatible_msrv lint, not by a build"
        );
        return Ok(());
    }

    let app = target_dir(&root).join("msrv-app");
    std::fs::create_dir_all(app.join("src")).map_err(|e| format!("cannot create {app:?}: {e}"))?;
    write(
        &app.join("Cargo.toml"),
        &format!(
            "[package]\nname = \"msrv-app\"\nversion = \"0.0.0\"\nedition = \"2021\"\n\
             rust-version = \"{version}\"\npublish = false\n\n[dependencies]\n\
             purekafka = {{ path = {:?} }}\n\n[features]\ntls = [\"purekafka/tls\"]\n\
             metrics = [\"purekafka/metrics\"]\noidc = [\"purekafka/oidc\"]\n\n\
             # Its own workspace, not a member of purekafka's.\n[workspace]\n",
            root.display().to_string()
        ),
    )?;
    write(&app.join("src/main.rs"), "fn main() {}\n")?;

    // Resolved by this (newer) cargo, which knows the MSRV-aware fallback; cargo 1.87 would pick
    // the newest versions whatever Rust they need.
    let mut lock = cargo(&["generate-lockfile"]);
    lock.current_dir(&app)
        .env("CARGO_RESOLVER_INCOMPATIBLE_RUST_VERSIONS", "fallback");
    check(lock)?;
    for features in [&[][..], &["--features", "tls,metrics,oidc"]] {
        let mut build = Command::new("rustup");
        build
            .args(["run", version, "cargo", "check", "--locked"])
            .args(features)
            .current_dir(&app)
            // The outer cargo's own variables would point the inner one at the newer toolchain.
            .env_remove("CARGO")
            .env_remove("RUSTC")
            .env_remove("RUSTUP_TOOLCHAIN")
            .env("CARGO_TARGET_DIR", app.join("target"));
        check(build)?;
    }
    Ok(())
}

/// The `rust-version` of the `[package]` table.
fn rust_version(manifest: &str) -> Result<&str, String> {
    manifest
        .lines()
        .find_map(|line| {
            let value = line
                .strip_prefix("rust-version")?
                .trim_start()
                .strip_prefix('=')?;
            Some(value.trim().trim_matches('"'))
        })
        .ok_or_else(|| "Cargo.toml declares no rust-version".to_string())
}

fn write(path: &Path, contents: &str) -> Result<(), String> {
    std::fs::write(path, contents).map_err(|e| format!("cannot write {path:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::rust_version;

    #[test]
    fn reads_the_declared_rust_version() {
        let manifest = "[package]\nname = \"x\"\n# rust-version = \"1.0\" in a comment\n\
                        rust-version = \"1.87\"\n";
        assert_eq!(rust_version(manifest), Ok("1.87"));
        assert!(rust_version("[package]\nname = \"x\"\n").is_err());
    }
}
