//! Detached JVM processes, pid files, liveness and readiness probes (std only, Linux /proc).

use std::fs::{self, OpenOptions};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A process we started: its pid plus a path that must appear in its command
/// line (the properties file), which guards against a recycled pid.
#[derive(Debug, Clone)]
pub struct Proc {
    pub label: String,
    pub pid: u32,
    pub marker: PathBuf,
}

impl Proc {
    pub fn alive(&self) -> bool {
        alive(self.pid, &self.marker)
    }
}

fn find_in_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    })
}

pub fn java() -> PathBuf {
    if let Some(home) = std::env::var_os("JAVA_HOME") {
        let j = Path::new(&home).join("bin/java");
        if j.is_file() {
            return j;
        }
    }
    PathBuf::from("java")
}

/// `javac` of the same JDK as [`java`].
pub fn javac() -> PathBuf {
    java().with_file_name("javac")
}

/// Start `program args...` detached from this process: own session (via the
/// `setsid` tool, which execs in place, so the pid is the JVM's), stdin from
/// /dev/null, stdout+stderr appended to `log`. It outlives xtask.
///
/// Returns once the child has exec'd (its command line shows `marker`), so that
/// [`alive`] is meaningful right away: between fork and exec, /proc still shows
/// xtask's own command line.
pub fn spawn_detached(
    program: &Path,
    args: &[String],
    marker: &Path,
    log: &Path,
    cwd: &Path,
) -> Result<u32, String> {
    let out = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|e| format!("cannot open {}: {e}", log.display()))?;
    let err = out.try_clone().map_err(|e| e.to_string())?;
    let mut cmd = match find_in_path("setsid") {
        Some(setsid) => {
            let mut c = Command::new(setsid);
            c.arg(program);
            c
        }
        None => {
            // No setsid(1): at least leave our process group so Ctrl-C on
            // xtask does not reach the broker.
            use std::os::unix::process::CommandExt;
            let mut c = Command::new(program);
            c.process_group(0);
            c
        }
    };
    cmd.args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err);
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", program.display()))?;
    let pid = child.id();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !alive(pid, marker) {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!(
                "{} exited at once ({status}); see {}",
                program.display(),
                log.display()
            ));
        }
        if Instant::now() > deadline {
            return Err(format!("{} (pid {pid}) did not start", program.display()));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(pid)
}

/// Run a command to completion, returning combined output on failure.
pub fn run(program: &Path, args: &[String], cwd: &Path) -> Result<(), String> {
    let out = Command::new(program)
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", program.display()))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{} {} failed ({}):\n{}{}",
            program.display(),
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// Alive = /proc entry exists, is not a zombie, and its command line mentions `marker`.
///
/// A process in the middle of `execve` (`setsid` becoming the JVM) is not what its command
/// line says for a moment, and on a loaded machine the moment lasts. The kernel shows an empty
/// command line between installing the new address space and writing the arguments into it;
/// and a long command line, read in several reads, may be torn, its start from before the
/// exec and its end from after. Taking either for "gone" once made a starting broker look
/// dead. So a command line without the marker is read again, for up to 200 ms, before it
/// counts.
pub fn alive(pid: u32, marker: &Path) -> bool {
    let proc_dir = PathBuf::from(format!("/proc/{pid}"));
    let marker = marker.to_string_lossy();
    for attempt in 0..20 {
        if attempt > 0 {
            std::thread::sleep(Duration::from_millis(10));
        }
        if matches!(state(&proc_dir.join("stat")), Some('Z' | 'X') | None) {
            return false;
        }
        let Ok(cmdline) = fs::read(proc_dir.join("cmdline")) else {
            return false;
        };
        if cmdline
            .split(|b| *b == 0)
            .any(|arg| String::from_utf8_lossy(arg) == marker)
        {
            return true;
        }
    }
    false
}

/// The fields of a /proc `stat` file after the command name, which may hold spaces and
/// parentheses: "pid (comm) S ppid ..." gives "S ppid ...".
fn stat_fields(stat: &Path) -> Option<String> {
    let text = fs::read_to_string(stat).ok()?;
    Some(text.rsplit_once(')')?.1.to_owned())
}

/// A process's or a thread's state letter (R, S, D, Z, ...).
fn state(stat: &Path) -> Option<char> {
    stat_fields(stat)?.trim_start().chars().next()
}

/// When a process started, in clock ticks since boot (`stat` field 22): with the pid, it
/// names one process even after the pid is reused.
fn start_time(pid: u32) -> Option<String> {
    let fields = stat_fields(Path::new(&format!("/proc/{pid}/stat")))?;
    fields.split_whitespace().nth(19).map(str::to_owned)
}

/// A process of ours that has been sent a signal that ends it.
pub struct Ending {
    pub label: String,
    pub pid: u32,
    start_time: String,
}

impl Ending {
    /// Whether it has ended: every one of its threads has exited, or its pid is gone or names
    /// another process now.
    ///
    /// Its main thread is not enough. A JVM's main thread turns zombie as soon as it is
    /// killed, while another thread is still tearing down the heap; that thread closes the
    /// process's files only then, its listening sockets and its data directory's lock among
    /// them. A broker started again before that cannot bind its ports, and exits.
    pub fn ended(&self) -> bool {
        if start_time(self.pid).as_ref() != Some(&self.start_time) {
            return true;
        }
        let Ok(tasks) = fs::read_dir(format!("/proc/{}/task", self.pid)) else {
            return true;
        };
        tasks
            .flatten()
            .all(|task| matches!(state(&task.path().join("stat")), Some('Z' | 'X') | None))
    }
}

impl Proc {
    /// Sends `sig` (TERM, KILL) if the process is alive, and returns it as ending.
    pub fn signal(&self, sig: &str) -> Option<Ending> {
        let start_time = start_time(self.pid).filter(|_| self.alive())?;
        signal(self.pid, sig);
        Some(Ending {
            label: self.label.clone(),
            pid: self.pid,
            start_time,
        })
    }
}

/// Waits until every one of `ending` has ended or `deadline` passes; returns those that have
/// not.
pub fn wait_ended(ending: Vec<Ending>, deadline: Instant) -> Vec<Ending> {
    let mut left = ending;
    loop {
        left.retain(|p| !p.ended());
        if left.is_empty() || Instant::now() >= deadline {
            return left;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// SIGTERM every process, wait up to `grace` for all of them to end, then SIGKILL the rest and
/// wait for them too.
pub fn stop(procs: &[Proc], grace: Duration) {
    let ending: Vec<Ending> = procs
        .iter()
        .filter_map(|p| {
            let ending = p.signal("TERM")?;
            eprintln!("stopping {} (pid {})", p.label, p.pid);
            Some(ending)
        })
        .collect();
    let left = wait_ended(ending, Instant::now() + grace);
    for p in &left {
        eprintln!(
            "{} (pid {}) still running after {:?}: SIGKILL",
            p.label, p.pid, grace
        );
        signal(p.pid, "KILL");
    }
    wait_ended(left, Instant::now() + Duration::from_secs(10));
}

pub fn read_pid(file: &Path) -> Option<u32> {
    fs::read_to_string(file).ok()?.trim().parse().ok()
}

pub fn write_pid(file: &Path, pid: u32) -> Result<(), String> {
    fs::write(file, format!("{pid}\n")).map_err(|e| format!("cannot write {}: {e}", file.display()))
}

pub fn port_open(addr: &str) -> bool {
    addr.parse::<SocketAddr>()
        .map(|a| TcpStream::connect_timeout(&a, Duration::from_millis(500)).is_ok())
        .unwrap_or(false)
}

/// Send a Kafka ApiVersions v0 request and check a response with our
/// correlation id comes back (an error code in it still means "answering").
pub fn kafka_answers(addr: &str) -> bool {
    let probe = || -> std::io::Result<bool> {
        let a: SocketAddr = addr
            .parse()
            .map_err(|_| std::io::Error::other("bad address"))?;
        let mut s = TcpStream::connect_timeout(&a, Duration::from_secs(1))?;
        s.set_read_timeout(Some(Duration::from_secs(3)))?;
        s.set_write_timeout(Some(Duration::from_secs(3)))?;
        let client_id = b"xtask";
        let mut body = Vec::new();
        body.extend_from_slice(&18i16.to_be_bytes()); // api_key: ApiVersions
        body.extend_from_slice(&0i16.to_be_bytes()); // api_version
        body.extend_from_slice(&0x7874_6b31i32.to_be_bytes()); // correlation_id
        body.extend_from_slice(&(client_id.len() as i16).to_be_bytes());
        body.extend_from_slice(client_id);
        let mut req = (body.len() as i32).to_be_bytes().to_vec();
        req.extend_from_slice(&body);
        s.write_all(&req)?;
        let mut head = [0u8; 8];
        s.read_exact(&mut head)?;
        Ok(head[4..8] == 0x7874_6b31i32.to_be_bytes())
    };
    probe().unwrap_or(false)
}

/// Last `n` lines of a log file, for error messages.
pub fn tail(file: &Path, n: usize) -> String {
    match fs::read(file) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let lines: Vec<&str> = text.lines().collect();
            let from = lines.len().saturating_sub(n);
            lines[from..].join("\n")
        }
        Err(e) => format!("(cannot read {}: {e})", file.display()),
    }
}

/// The last `n` lines of `file` from byte `from` on that Kafka logged at ERROR or FATAL, each
/// with the exceptions under it (their stack frames left out). The brokers' log layout is
/// `[time] LEVEL message`; an exception's lines follow without the brackets.
pub fn error_lines(file: &Path, from: u64, n: usize) -> Vec<String> {
    let bytes = fs::read(file).unwrap_or_default();
    let start = (from as usize).min(bytes.len());
    let text = String::from_utf8_lossy(&bytes[start..]);
    let mut shown: Vec<&str> = Vec::new();
    let mut in_error = false;
    for line in text.lines() {
        if line.starts_with('[') {
            in_error = line.contains("] ERROR ") || line.contains("] FATAL ");
        } else if line.starts_with(char::is_whitespace) {
            continue; // a stack frame
        }
        if in_error {
            shown.push(line);
        }
    }
    shown[shown.len().saturating_sub(n)..]
        .iter()
        .map(|l| l.to_string())
        .collect()
}

/// Current length of a file (0 if missing): where a restarted process's output begins.
pub fn file_len(file: &Path) -> u64 {
    fs::metadata(file).map(|m| m.len()).unwrap_or(0)
}

/// Whether the part of `file` from byte `from` on contains any of `needles`.
pub fn file_contains(file: &Path, from: u64, needles: &[&str]) -> bool {
    fs::read(file)
        .map(|b| {
            let start = (from as usize).min(b.len());
            let text = String::from_utf8_lossy(&b[start..]);
            needles.iter().any(|n| text.contains(n))
        })
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A child that is killed and reaped however the test ends.
    struct Child(std::process::Child);

    impl Drop for Child {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    #[test]
    fn a_killed_process_has_ended_once_it_is_a_zombie_and_not_before() {
        // Not reaped while the test looks, so it stays a zombie once killed, as a broker does
        // until init reaps it.
        let child = Child(
            Command::new("sleep")
                .arg("3600")
                .stdout(Stdio::null())
                .spawn()
                .unwrap(),
        );
        let proc = Proc {
            label: "sleep".into(),
            pid: child.0.id(),
            marker: PathBuf::from("3600"),
        };
        // Until the child has exec'd, /proc shows this test's command line.
        let deadline = Instant::now() + Duration::from_secs(10);
        while !proc.alive() {
            assert!(Instant::now() < deadline, "sleep did not start");
            std::thread::sleep(Duration::from_millis(10));
        }
        let other = Proc {
            marker: PathBuf::from("another command line"),
            ..proc.clone()
        };
        assert!(other.signal("KILL").is_none(), "not ours: not signalled");

        let stopped = proc.signal("STOP").unwrap();
        assert!(!stopped.ended(), "stopped is not ended");
        let ending = proc.signal("KILL").unwrap();
        let left = wait_ended(vec![ending], Instant::now() + Duration::from_secs(10));
        assert!(left.is_empty(), "still running after SIGKILL");
        assert!(!proc.alive());
        assert!(proc.signal("KILL").is_none(), "ended: nothing to signal");
    }

    #[test]
    fn a_process_is_alive_all_through_its_exec() {
        // `sh` execs another `sh` with the same arguments, as `setsid` execs the JVM. A long
        // command line (a broker's class path is about 20 KB) widens the moments in which the
        // kernel shows it empty, or a read of it is torn across the exec; `alive` must not
        // call the process gone then. (Run on a loaded machine, the check before this one
        // failed here within a few rounds.)
        let marker = format!("/marker/{}", std::process::id());
        let filler: Vec<String> = (0..2000)
            .map(|i| format!("--arg-{i:04}-{}", "x".repeat(40)))
            .collect();
        for round in 0..20 {
            let child = Child(
                Command::new("sh")
                    .arg("-c")
                    .arg("sleep 0.02; exec sh -c 'sleep 30' sh \"$@\"")
                    .arg("sh")
                    .arg(&marker)
                    .args(&filler)
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .unwrap(),
            );
            let pid = child.0.id();
            let deadline = Instant::now() + Duration::from_secs(10);
            while !alive(pid, Path::new(&marker)) {
                assert!(Instant::now() < deadline, "sh did not start");
            }
            // Watch through the exec and past it.
            let until = Instant::now() + Duration::from_millis(150);
            while Instant::now() < until {
                assert!(
                    alive(pid, Path::new(&marker)),
                    "round {round}: seen dead while it execs"
                );
            }
            drop(child);
        }
    }
}
