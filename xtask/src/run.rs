//! Running cargo and other programs from xtask.

use std::path::PathBuf;
use std::process::{Command, Stdio};

/// The workspace root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask sits in the workspace")
        .to_path_buf()
}

/// Where cargo puts what it builds for the workspace at `root`: `$CARGO_TARGET_DIR` when set
/// (cargo obeys it), else `root/target`.
pub fn target_dir(root: &std::path::Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from)
}

/// `cargo ARGS` in the workspace root.
pub fn cargo(args: &[&str]) -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.args(args).current_dir(root());
    cmd
}

/// Runs `cmd`, echoing it, and fails when it fails.
pub fn check(mut cmd: Command) -> Result<(), String> {
    eprintln!("+ {}", describe(&cmd));
    let status = cmd
        .status()
        .map_err(|e| format!("cannot run {}: {e}", describe(&cmd)))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{} failed ({status})", describe(&cmd)))
    }
}

/// Runs `cmd` and returns its standard output; standard error passes through.
pub fn output_of(mut cmd: Command) -> Result<String, String> {
    eprintln!("+ {}", describe(&cmd));
    let out = cmd
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", describe(&cmd)))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.success() {
        Ok(stdout)
    } else {
        Err(format!(
            "{} failed ({}):\n{stdout}",
            describe(&cmd),
            out.status
        ))
    }
}

fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for arg in cmd.get_args() {
        s.push(' ');
        s.push_str(&arg.to_string_lossy());
    }
    s
}

/// Runs `work` to completion on a runtime of its own, for the tasks that use purekafka.
pub fn block_on<T>(
    work: impl std::future::Future<Output = Result<T, String>>,
) -> Result<T, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?
        .block_on(work)
}

/// An admin client for `config`, its error as text.
pub async fn admin(config: purekafka::ClientConfig) -> Result<purekafka::Admin, String> {
    purekafka::Admin::builder(config)
        .build()
        .await
        .map_err(|e| e.to_string())
}
