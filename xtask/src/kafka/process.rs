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

/// Start `program args...` detached from this process: own session (via the
/// `setsid` tool, which execs in place, so the pid is the JVM's), stdin from
/// /dev/null, stdout+stderr appended to `log`. It outlives xtask.
///
/// Returns once the child has exec'd the JVM (its command line shows
/// `marker`), so that [`alive`] is meaningful right away: between fork and
/// exec, /proc still shows xtask's own command line.
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
pub fn alive(pid: u32, marker: &Path) -> bool {
    let proc_dir = PathBuf::from(format!("/proc/{pid}"));
    let Ok(stat) = fs::read_to_string(proc_dir.join("stat")) else {
        return false;
    };
    // Format: "pid (comm) S ...": the state follows the last ')'.
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next());
    if matches!(state, Some("Z") | Some("X") | None) {
        return false;
    }
    let Ok(cmdline) = fs::read(proc_dir.join("cmdline")) else {
        return false;
    };
    let marker = marker.to_string_lossy();
    cmdline
        .split(|b| *b == 0)
        .any(|arg| String::from_utf8_lossy(arg) == marker)
}

pub fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// SIGTERM every process, wait up to `grace` for all of them, then SIGKILL the rest.
pub fn stop(procs: &[Proc], grace: Duration) {
    let live: Vec<&Proc> = procs.iter().filter(|p| p.alive()).collect();
    for p in &live {
        eprintln!("stopping {} (pid {})", p.label, p.pid);
        signal(p.pid, "TERM");
    }
    let deadline = Instant::now() + grace;
    while live.iter().any(|p| p.alive()) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    for p in live.iter().filter(|p| p.alive()) {
        eprintln!(
            "{} (pid {}) still running after {:?}: SIGKILL",
            p.label, p.pid, grace
        );
        signal(p.pid, "KILL");
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while live.iter().any(|p| p.alive()) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
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
