//! Running one client process and measuring what it cost: its user+system CPU time and peak
//! resident set, as the kernel accounted them when it exited (`wait4`), whatever threads or
//! runtime (tokio, librdkafka's threads, a JVM) it used.
//!
//! This is the one place in xtask with `unsafe`: `wait4(2)` through `libc`, which std does not
//! expose (`Child::wait` reaps the child and drops its `rusage`).

use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

/// What one finished process printed and cost.
#[derive(Debug, Clone)]
pub struct Finished {
    /// The exit code, or `None` when a signal ended it.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    /// User plus system CPU seconds of the process and its threads.
    pub cpu_s: f64,
    /// Peak resident set size, in KiB (`ru_maxrss`).
    pub max_rss_kib: u64,
}

/// Runs `cmd` to the end, with its output captured, and kills it (SIGKILL) after `limit`.
pub fn run(mut cmd: Command, limit: Duration) -> Result<Finished, String> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {:?}: {e}", cmd.get_program()))?;
    let stdout = drain(&mut child.stdout.take());
    let stderr = drain(&mut child.stderr.take());
    let pid = child.id() as libc::pid_t;

    // The watchdog kills the child if it outlives `limit`; it is told when the child is reaped,
    // so it never signals a pid that may have been reused.
    let (reaped_tx, reaped_rx) = mpsc::channel::<()>();
    let watchdog = thread::spawn(move || {
        if reaped_rx.recv_timeout(limit) == Err(mpsc::RecvTimeoutError::Timeout) {
            // SAFETY: `pid` is our child, not yet reaped (the main thread sends on the channel
            // only after wait4 returned, and blocks in wait4 until then).
            unsafe { libc::kill(pid, libc::SIGKILL) };
            true
        } else {
            false
        }
    });
    let (status, usage) = wait4(pid).map_err(|e| format!("wait4 on {pid}: {e}"))?;
    // The child is reaped: `Child` must not wait on it again (dropping it does not).
    drop(child);
    let _ = reaped_tx.send(());
    let killed = watchdog.join().unwrap_or(false);
    let mut finished = Finished {
        code: libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status)),
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
        cpu_s: seconds(usage.ru_utime) + seconds(usage.ru_stime),
        max_rss_kib: usage.ru_maxrss.max(0) as u64,
    };
    if killed {
        finished
            .stderr
            .push_str(&format!("\n(killed after {limit:?})"));
    }
    Ok(finished)
}

/// Reads a pipe to its end on a thread of its own, so neither pipe can fill and stall the child.
fn drain<R: Read + Send + 'static>(pipe: &mut Option<R>) -> thread::JoinHandle<String> {
    let pipe = pipe.take();
    thread::spawn(move || {
        let mut text = String::new();
        if let Some(mut p) = pipe {
            let mut bytes = Vec::new();
            let _ = p.read_to_end(&mut bytes);
            text = String::from_utf8_lossy(&bytes).into_owned();
        }
        text
    })
}

/// Waits for child `pid` to exit and returns its wait status and resource usage.
fn wait4(pid: libc::pid_t) -> std::io::Result<(libc::c_int, libc::rusage)> {
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain old data; all-zero is a valid value that wait4 overwrites.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: both pointers are to live locals of the right types.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if r == pid {
            return Ok((status, usage));
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

fn seconds(t: libc::timeval) -> f64 {
    t.tv_sec as f64 + t.tv_usec as f64 / 1e6
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_a_busy_child() {
        let mut cmd = Command::new("sh");
        // About 0.1 s of CPU in the shell itself, then a line and an exit code.
        cmd.args([
            "-c",
            "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; echo hi; exit 7",
        ]);
        let f = run(cmd, Duration::from_secs(60)).unwrap();
        assert_eq!(f.code, Some(7));
        assert_eq!(f.stdout.trim(), "hi");
        assert!(f.cpu_s > 0.0, "{f:?}");
        assert!(f.max_rss_kib > 0, "{f:?}");
    }

    #[test]
    fn kills_a_child_past_its_limit() {
        let mut cmd = Command::new("sleep");
        cmd.arg("30");
        let f = run(cmd, Duration::from_millis(200)).unwrap();
        assert_eq!(f.code, None);
        assert!(f.stderr.contains("killed"));
    }
}
