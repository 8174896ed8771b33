//! Local Apache Kafka cluster for tests: `cargo xtask kafka up|down|status|kill|start`.
//!
//! Jars come from Maven (xtask/kafka/pom.xml) into `target/kafka/dist/<version>/libs`;
//! each broker runs as a detached `java -cp 'libs/*' kafka.Kafka server.properties`
//! with its config, data, log (`kafka.log`) and pid file in `target/kafka/run/broker-<id>/`.
//! The running layout is recorded in `target/kafka/run/cluster.properties`.
//!
//! `up` semantics:
//! * nothing running: wipe `target/kafka/run`, write configs, format KRaft storage
//!   (or start ZooKeeper for 2.8), start every broker, wait until each answers;
//! * the same layout (version + broker count) running: restart any node that
//!   died (keeping its data) and wait; if all are up this is a no-op;
//! * a different layout running: fail with a message asking for `kafka down`
//!   (we never silently destroy a cluster someone may be using).

mod config;
mod dist;
mod oauth;
mod process;
mod tls;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub use config::DEFAULT_VERSION;
use config::{Layout, Mode, Node, Paths, ZOOKEEPER_PORT};
use process::Proc;

/// Options for [`ensure_up`].
#[derive(Debug, Clone)]
pub struct UpOptions {
    pub version: String,
    pub brokers: u8,
    /// How long to wait for the brokers to answer.
    pub timeout: Duration,
}

impl Default for UpOptions {
    fn default() -> Self {
        UpOptions {
            version: DEFAULT_VERSION.to_string(),
            brokers: 1,
            timeout: Duration::from_secs(90),
        }
    }
}

/// One running broker's client addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broker {
    pub id: u8,
    pub plaintext: String,
    pub sasl_plaintext: String,
    /// The TLS listeners, as they advertise themselves (`localhost:port`).
    pub ssl: String,
    pub sasl_ssl: String,
    pub mtls: String,
    pub expired: String,
    /// The SASL_PLAINTEXT listeners for OAUTHBEARER (`config::sasl_listeners`): unsecured
    /// JWTs; JWTs signed with the key in `run/oauth` (none before Kafka 3.1); every mechanism
    /// with sessions of `config::REAUTH_MS`.
    pub oauth: String,
    pub oidc: Option<String>,
    pub reauth: String,
}

/// The brokers that are up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cluster {
    pub version: String,
    pub brokers: Vec<Broker>,
}

impl Cluster {
    fn new(layout: &Layout, nodes: impl IntoIterator<Item = Node>) -> Cluster {
        let addr = |port: u16| format!("{}:{port}", config::HOST);
        Cluster {
            version: layout.version.clone(),
            brokers: nodes
                .into_iter()
                .map(|n| Broker {
                    id: n.id,
                    plaintext: n.plaintext(),
                    sasl_plaintext: n.sasl_plaintext(),
                    ssl: Node::tls_addr(n.ssl_port()),
                    sasl_ssl: Node::tls_addr(n.sasl_ssl_port()),
                    mtls: Node::tls_addr(n.mtls_port()),
                    expired: Node::tls_addr(n.expired_port()),
                    oauth: addr(n.oauth_port()),
                    oidc: layout.oidc_validator().map(|_| addr(n.oidc_port())),
                    reauth: addr(n.reauth_port()),
                })
                .collect(),
        }
    }

    /// `host:port,host:port` of one listener of every broker.
    pub fn bootstrap(&self, listener: impl Fn(&Broker) -> &str) -> String {
        self.brokers
            .iter()
            .map(listener)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// `host:port,host:port` of the PLAINTEXT listeners.
    pub fn plaintext_bootstrap(&self) -> String {
        self.bootstrap(|b| &b.plaintext)
    }

    /// `host:port,host:port` of the SASL_PLAINTEXT listeners.
    pub fn sasl_bootstrap(&self) -> String {
        self.bootstrap(|b| &b.sasl_plaintext)
    }

    /// Each listener: its name in `kafka status`, the variable that tells the proto-tests, and
    /// `host:port,host:port` of it on every broker. OIDC is left out where the brokers have
    /// none (before Kafka 3.1).
    fn listeners(&self) -> Vec<(&'static str, &'static str, String)> {
        let mut listeners = vec![
            (
                "plaintext",
                "PUREKAFKA_PLAINTEXT",
                self.plaintext_bootstrap(),
            ),
            ("sasl_plaintext", "PUREKAFKA_SASL", self.sasl_bootstrap()),
            ("ssl", "PUREKAFKA_SSL", self.bootstrap(|b| &b.ssl)),
            (
                "sasl_ssl",
                "PUREKAFKA_SASL_SSL",
                self.bootstrap(|b| &b.sasl_ssl),
            ),
            ("mtls", "PUREKAFKA_MTLS", self.bootstrap(|b| &b.mtls)),
            (
                "expired",
                "PUREKAFKA_SSL_EXPIRED",
                self.bootstrap(|b| &b.expired),
            ),
            ("oauth", "PUREKAFKA_OAUTH", self.bootstrap(|b| &b.oauth)),
        ];
        if self.brokers.iter().all(|b| b.oidc.is_some()) {
            let oidc = self.bootstrap(|b| b.oidc.as_deref().unwrap_or_default());
            listeners.push(("oidc", "PUREKAFKA_OIDC", oidc));
        }
        listeners.push(("reauth", "PUREKAFKA_REAUTH", self.bootstrap(|b| &b.reauth)));
        listeners
    }

    /// The lines `cargo xtask kafka status` prints, a listener each, and a comment line when
    /// the OIDC listener is missing.
    pub fn status_lines(&self) -> String {
        let mut lines: Vec<String> = self
            .listeners()
            .into_iter()
            .map(|(name, _, addrs)| format!("{name}={addrs}"))
            .collect();
        if !lines.iter().any(|l| l.starts_with("oidc=")) {
            lines.push(format!(
                "# no oidc listener: Kafka {} cannot validate signed OAUTHBEARER tokens \
                 (KIP-768 came in 3.1)",
                self.version
            ));
        }
        lines.join("\n")
    }

    /// Environment variables that tell the tests where this cluster is: each listener, the TLS
    /// certificates, the OIDC signing key with the audience and issuer tokens must name, the
    /// REAUTH listener's session lifetime, the version (`4.4.0`), broker 1's data and the jars
    /// (for the Java tools).
    pub fn test_env(&self) -> Vec<(&'static str, String)> {
        let paths = Paths::from_workspace();
        let mut env: Vec<(&'static str, String)> = self
            .listeners()
            .into_iter()
            .map(|(_, var, addrs)| (var, addrs))
            .collect();
        let shown = |path: PathBuf| path.display().to_string();
        env.push(("PUREKAFKA_TLS_DIR", shown(tls::dir(&paths.run()))));
        env.push(("PUREKAFKA_OAUTH_DIR", shown(oauth::dir(&paths.run()))));
        env.push(("PUREKAFKA_OIDC_AUDIENCE", oauth::EXPECTED_AUDIENCE.into()));
        env.push(("PUREKAFKA_OIDC_ISSUER", oauth::EXPECTED_ISSUER.into()));
        env.push(("PUREKAFKA_REAUTH_MS", config::REAUTH_MS.to_string()));
        env.push(("PUREKAFKA_KAFKA_VERSION", self.version.clone()));
        env.push((
            "PUREKAFKA_DATA_DIR",
            shown(paths.node_dir(Node::new(1)).join("data")),
        ));
        env.push(("PUREKAFKA_KAFKA_LIBS", shown(paths.libs(&self.version))));
        env
    }
}

/// Bring the requested cluster up (or check it already is) and return its addresses.
pub fn ensure_up(opts: &UpOptions) -> Result<Cluster, String> {
    let paths = Paths::from_workspace();
    let layout = Layout::new(&opts.version, opts.brokers)?;

    if let Some(running) = read_state(&paths) {
        if procs(&paths, &running).iter().any(Proc::alive) {
            if running != layout {
                return Err(format!(
                    "{} is already running, but {} was requested; run `cargo xtask kafka down` first",
                    running.describe(),
                    layout.describe()
                ));
            }
            stale_config(&paths, &layout)?;
            return heal(&paths, &layout, opts.timeout);
        }
    }
    fresh_start(&paths, &layout, opts.timeout)
}

/// Stop every process the harness started (brokers, then ZooKeeper). Returns
/// whether anything was running. Jars, data and logs stay in target/.
pub fn down() -> Result<bool, String> {
    let paths = Paths::from_workspace();
    let Some(layout) = read_state(&paths) else {
        return Ok(false);
    };
    let all = procs(&paths, &layout);
    let was_up = all.iter().any(Proc::alive);
    let (zk, brokers): (Vec<Proc>, Vec<Proc>) =
        all.into_iter().partition(|p| p.label == "zookeeper");
    process::stop(&brokers, Duration::from_secs(30));
    process::stop(&zk, Duration::from_secs(15));
    for node in layout.nodes() {
        let _ = fs::remove_file(pid_file(&paths, node));
    }
    let _ = fs::remove_file(paths.zookeeper_dir().join("zookeeper.pid"));
    let _ = fs::remove_file(paths.state_file());
    Ok(was_up)
}

/// The last `n` lines each broker of the recorded cluster logged at ERROR or FATAL, with its
/// log's path: what a failed run prints last, where a CI summary still shows it.
pub fn broker_errors(n: usize) -> Vec<String> {
    let paths = Paths::from_workspace();
    let Some(layout) = read_state(&paths) else {
        return Vec::new();
    };
    layout
        .nodes()
        .into_iter()
        .map(|node| {
            let log = log_file(&paths, node);
            format!(
                "broker {}, the last ERROR and FATAL lines of {}:\n{}",
                node.id,
                log.display(),
                process::error_lines(&log, 0, n).join("\n")
            )
        })
        .collect()
}

/// The brokers whose process is alive and whose listeners accept connections;
/// `None` when no broker is up.
pub fn status() -> Option<Cluster> {
    let paths = Paths::from_workspace();
    let layout = read_state(&paths)?;
    let up: Vec<Node> = layout
        .nodes()
        .into_iter()
        .filter(|&n| {
            broker_proc(&paths, n).is_some_and(|p| p.alive())
                && process::port_open(&n.plaintext())
                && process::port_open(&n.sasl_plaintext())
        })
        .collect();
    if up.is_empty() {
        None
    } else {
        Some(Cluster::new(&layout, up))
    }
}

/// Whether a Kafka broker answers on `addr` (`host:port`), whoever started it.
pub fn answers(addr: &str) -> bool {
    process::kafka_answers(addr)
}

/// The `java` to run Kafka's tools with (`$JAVA_HOME/bin/java`, else the one on PATH).
pub fn java() -> PathBuf {
    process::java()
}

/// The `javac` beside [`java`].
pub fn javac() -> PathBuf {
    process::javac()
}

/// `target/kafka/dist/<version>/libs`, fetched with Maven the first time: the broker's jars,
/// which also hold the Java client and its tools (`org.apache.kafka.tools.*`).
pub fn libs(version: &str) -> Result<PathBuf, String> {
    dist::ensure_libs(&Paths::from_workspace(), &Layout::new(version, 1)?)
}

/// Fault injection: SIGKILL one broker (a crash, no controlled shutdown).
pub fn kill_broker(id: u8) -> Result<(), String> {
    end_broker(id, "KILL", Duration::from_secs(10))?;
    eprintln!("killed broker {id}");
    Ok(())
}

/// Stops one broker cleanly (SIGTERM: a controlled shutdown that moves its leaderships away
/// first), waiting up to a minute for it to exit.
pub fn stop_broker(id: u8) -> Result<(), String> {
    end_broker(id, "TERM", Duration::from_secs(60))?;
    eprintln!("stopped broker {id}");
    Ok(())
}

fn end_broker(id: u8, signal: &str, wait: Duration) -> Result<(), String> {
    let paths = Paths::from_workspace();
    let layout = read_state(&paths).ok_or("no Kafka cluster is recorded as running")?;
    let node = node_of(&layout, id)?;
    let ending = broker_proc(&paths, node)
        .and_then(|p| p.signal(signal))
        .ok_or_else(|| format!("broker {id} is not running"))?;
    let pid = ending.pid;
    if !process::wait_ended(vec![ending], Instant::now() + wait).is_empty() {
        return Err(format!("broker {id} (pid {pid}) is still running"));
    }
    Ok(())
}

/// Restart one broker with its existing data and wait until it answers.
pub fn start_broker(id: u8, timeout: Duration) -> Result<Cluster, String> {
    let paths = Paths::from_workspace();
    let layout = read_state(&paths).ok_or("no Kafka cluster is recorded; use `kafka up`")?;
    let node = node_of(&layout, id)?;
    if broker_proc(&paths, node).is_some_and(|p| p.alive()) {
        return Err(format!("broker {id} is already running"));
    }
    let libs = dist::ensure_libs(&paths, &layout)?;
    start_nodes(&paths, &layout, &libs, &[node], &[], timeout)?;
    Ok(Cluster::new(&layout, [node]))
}

/// Starts `start` and waits until they and `running` are ready.
///
/// A node's ports must be free before it starts: a process of ours that is still ending may
/// hold them. A node that exits during startup is started again, up to three times in all
/// within `timeout`, with what it logged shown: a broker can fail to come back for a while
/// after a crash, for reasons of the machine's rather than of the client's under test.
fn start_nodes(
    paths: &Paths,
    layout: &Layout,
    libs: &Path,
    start: &[Node],
    running: &[Node],
    timeout: Duration,
) -> Result<(), String> {
    const ATTEMPTS: u32 = 3;
    const PAUSE: Duration = Duration::from_secs(3);
    let mode = layout.mode()?;
    let deadline = Instant::now() + timeout;
    let mut waits: Vec<(Node, u64)> = running.iter().map(|&n| (n, 0)).collect();
    let mut to_start = start.to_vec();
    let mut attempt = 1;
    loop {
        for node in to_start.drain(..) {
            while let Some(busy) = busy_port(&node_ports(layout, node, mode)) {
                if Instant::now() > deadline {
                    return Err(format!(
                        "broker {}'s port {}:{busy} is still in use by another process",
                        node.id,
                        config::HOST
                    ));
                }
                std::thread::sleep(Duration::from_millis(250));
            }
            let offset = process::file_len(&log_file(paths, node));
            start_node(paths, layout, libs, node)?;
            waits.retain(|&(n, _)| n != node);
            waits.push((node, offset));
        }
        let left = deadline.saturating_duration_since(Instant::now());
        let Err(e) = wait_ready(paths, &waits, left) else {
            return Ok(());
        };
        let exited: Vec<(Node, u64)> = waits
            .iter()
            .copied()
            .filter(|&(n, _)| !broker_proc(paths, n).is_some_and(|p| p.alive()))
            .collect();
        let left = deadline.saturating_duration_since(Instant::now());
        if exited.is_empty() || attempt == ATTEMPTS || left <= PAUSE {
            return Err(e);
        }
        for &(node, offset) in &exited {
            let log = log_file(paths, node);
            let mut why = process::error_lines(&log, offset, 20).join("\n");
            if why.is_empty() {
                why = process::tail(&log, 20);
            }
            eprintln!(
                "broker {} exited during startup (attempt {attempt} of {ATTEMPTS}); starting it \
                 again in {PAUSE:?}. It logged:\n{why}",
                node.id
            );
        }
        std::thread::sleep(PAUSE);
        to_start = exited.into_iter().map(|(n, _)| n).collect();
        attempt += 1;
    }
}

/// Every port a node listens on.
fn node_ports(layout: &Layout, node: Node, mode: Mode) -> Vec<u16> {
    let mut ports = vec![node.plaintext_port(), node.sasl_port(), node.proxied_port()];
    ports.extend(node.tls_listeners().map(|(_, port)| port));
    ports.extend(
        config::sasl_listeners(layout, node)
            .into_iter()
            .map(|(_, port)| port),
    );
    if mode == Mode::Kraft {
        ports.push(node.controller_port());
    }
    ports
}

/// The first of `ports` that something on this machine listens on.
fn busy_port(ports: &[u16]) -> Option<u16> {
    ports
        .iter()
        .copied()
        .find(|p| process::port_open(&format!("{}:{p}", config::HOST)))
}

fn node_of(layout: &Layout, id: u8) -> Result<Node, String> {
    layout
        .nodes()
        .into_iter()
        .find(|n| n.id == id)
        .ok_or_else(|| format!("no broker {id} in {}", layout.describe()))
}

// ---------------------------------------------------------------------------

fn fresh_start(paths: &Paths, layout: &Layout, timeout: Duration) -> Result<Cluster, String> {
    let mode = layout.mode()?;
    let mut ports: Vec<u16> = Vec::new();
    for n in layout.nodes() {
        ports.extend(node_ports(layout, n, mode));
    }
    if mode == Mode::Zookeeper {
        ports.push(ZOOKEEPER_PORT);
    }
    if let Some(busy) = busy_port(&ports) {
        return Err(format!(
            "port {}:{busy} is already in use by a process this harness did not start; stop it first",
            config::HOST
        ));
    }

    let libs = dist::ensure_libs(paths, layout)?;
    let users = config::users(paths)?;
    let started = Instant::now();
    eprintln!("starting {} ...", layout.describe());

    let run = paths.run();
    if run.exists() {
        fs::remove_dir_all(&run).map_err(|e| format!("cannot clear {}: {e}", run.display()))?;
    }
    mkdir(&run)?;
    tls::generate(&tls::dir(&run))?;
    tls::pkcs12(&tls::dir(&run), &paths.root)?;
    let tls = tls::read(&tls::dir(&run))?;
    oauth::generate(&oauth::dir(&run))?;
    let jwks = oauth::jwks_url(&oauth::dir(&run));
    for (file, user) in [
        ("client-sasl.properties", &users[0]),
        ("client-admin.properties", &users[1]),
    ] {
        write(&run.join(file), &config::client_properties(user))?;
    }
    for node in layout.nodes() {
        let dir = paths.node_dir(node);
        mkdir(&dir.join("data"))?;
        let props = config::server_properties(layout, node, &dir.join("data"), &users, &tls, &jwks);
        write(&dir.join("server.properties"), &props)?;
    }
    if mode == Mode::Kraft {
        let cluster_id = config::new_cluster_id();
        for node in layout.nodes() {
            let mut args = jvm_args(paths, layout, &libs, &paths.node_dir(node), "256m");
            args.extend(
                [
                    "kafka.tools.StorageTool",
                    "format",
                    "-t",
                    cluster_id.as_str(),
                    "-c",
                ]
                .map(String::from),
            );
            args.push(props_file(paths, node).display().to_string());
            args.extend(config::storage_scram_args(&config::scram_user()));
            process::run(&process::java(), &args, &paths.node_dir(node))?;
        }
    }
    write_state(paths, layout)?;

    let result = (|| {
        if mode == Mode::Zookeeper {
            start_zookeeper(paths, layout, &libs, timeout)?;
            add_zookeeper_scram_user(paths, layout, &libs)?;
        }
        start_nodes(paths, layout, &libs, &layout.nodes(), &[], timeout)
    })();
    if let Err(e) = result {
        // Do not leave half a cluster behind; logs stay for inspection.
        process::stop(&procs(paths, layout), Duration::from_secs(10));
        let _ = fs::remove_file(paths.state_file());
        return Err(e);
    }
    eprintln!(
        "{} is up ({:.1}s)",
        layout.describe(),
        started.elapsed().as_secs_f64()
    );
    Ok(Cluster::new(layout, layout.nodes()))
}

/// Same layout already (partly) running: restart dead nodes, keep their data.
fn heal(paths: &Paths, layout: &Layout, timeout: Duration) -> Result<Cluster, String> {
    let libs = dist::ensure_libs(paths, layout)?;
    if layout.mode()? == Mode::Zookeeper && !zk_proc(paths).is_some_and(|p| p.alive()) {
        start_zookeeper(paths, layout, &libs, timeout)?;
    }
    let (running, stopped): (Vec<Node>, Vec<Node>) = layout
        .nodes()
        .into_iter()
        .partition(|&n| broker_proc(paths, n).is_some_and(|p| p.alive()));
    start_nodes(paths, layout, &libs, &stopped, &running, timeout)?;
    if stopped.is_empty() {
        eprintln!("{} is already up", layout.describe());
    } else {
        let ids: Vec<u8> = stopped.iter().map(|n| n.id).collect();
        eprintln!("{}: restarted broker(s) {ids:?}", layout.describe());
    }
    Ok(Cluster::new(layout, layout.nodes()))
}

/// Refuses to keep a running cluster whose broker configuration is not what this xtask writes
/// (say, one started before the SCRAM users existed): healing it would test against the old
/// setup. The user decides when to stop it, as for a different layout.
fn stale_config(paths: &Paths, layout: &Layout) -> Result<(), String> {
    let users = config::users(paths)?;
    let stale = |node: Node| {
        format!(
            "{} is running with another broker configuration than this xtask writes \
             (broker {}); run `cargo xtask kafka down` so that it starts afresh",
            layout.describe(),
            node.id
        )
    };
    // A cluster from before the TLS listeners has no certificates.
    let tls = tls::read(&tls::dir(&paths.run())).map_err(|_| stale(Node::new(1)))?;
    let jwks = oauth::jwks_url(&oauth::dir(&paths.run()));
    for node in layout.nodes() {
        let dir = paths.node_dir(node);
        let expected =
            config::server_properties(layout, node, &dir.join("data"), &users, &tls, &jwks);
        if fs::read_to_string(props_file(paths, node)).ok().as_deref() != Some(expected.as_str()) {
            return Err(stale(node));
        }
    }
    Ok(())
}

fn jvm_args(
    paths: &Paths,
    layout: &Layout,
    libs: &Path,
    log_dir: &Path,
    heap: &str,
) -> Vec<String> {
    let log_config = paths.log_config(layout);
    let log_prop = if layout.uses_log4j2() {
        format!("-Dlog4j2.configurationFile={}", log_config.display())
    } else {
        format!("-Dlog4j.configuration=file:{}", log_config.display())
    };
    vec![
        format!("-Xmx{heap}"),
        "-Xms128m".into(),
        "-XX:+UseG1GC".into(),
        "-XX:MaxGCPauseMillis=20".into(),
        "-XX:+ExplicitGCInvokesConcurrent".into(),
        "-Djava.awt.headless=true".into(),
        format!("-Dkafka.logs.dir={}", log_dir.join("logs").display()),
        log_prop,
        "-cp".into(),
        format!("{}/*", libs.display()),
    ]
}

fn start_node(paths: &Paths, layout: &Layout, libs: &Path, node: Node) -> Result<(), String> {
    let dir = paths.node_dir(node);
    let mut args = jvm_args(paths, layout, libs, &dir, "512m");
    if layout.oidc_validator().is_some() {
        // The OIDC listener's JWKS is the one URL the brokers' OAuth code may read.
        let jwks = oauth::jwks_url(&oauth::dir(&paths.run()));
        args.insert(0, format!("-D{}={jwks}", oauth::ALLOWED_URLS_PROPERTY));
    }
    args.push("kafka.Kafka".into());
    args.push(props_file(paths, node).display().to_string());
    let props = props_file(paths, node);
    let pid = process::spawn_detached(
        &process::java(),
        &args,
        &props,
        &log_file(paths, node),
        &dir,
    )?;
    process::write_pid(&pid_file(paths, node), pid)?;
    eprintln!(
        "broker {} started (pid {pid}), log {}",
        node.id,
        log_file(paths, node).display()
    );
    Ok(())
}

fn start_zookeeper(
    paths: &Paths,
    layout: &Layout,
    libs: &Path,
    timeout: Duration,
) -> Result<(), String> {
    let dir = paths.zookeeper_dir();
    mkdir(&dir.join("data"))?;
    let props = dir.join("zookeeper.properties");
    write(&props, &config::zookeeper_properties(&dir.join("data")))?;
    let mut args = jvm_args(paths, layout, libs, &dir, "256m");
    args.push("org.apache.zookeeper.server.quorum.QuorumPeerMain".into());
    args.push(props.display().to_string());
    let log = dir.join("zookeeper.log");
    let pid = process::spawn_detached(&process::java(), &args, &props, &log, &dir)?;
    process::write_pid(&dir.join("zookeeper.pid"), pid)?;
    eprintln!("zookeeper started (pid {pid}), log {}", log.display());
    let zk = Proc {
        label: "zookeeper".into(),
        pid,
        marker: props,
    };
    let addr = format!("{}:{ZOOKEEPER_PORT}", config::HOST);
    let deadline = Instant::now() + timeout;
    while !process::port_open(&addr) {
        if !zk.alive() {
            return Err(format!(
                "ZooKeeper exited during startup; last log lines:\n{}",
                process::tail(&log, 40)
            ));
        }
        if Instant::now() > deadline {
            return Err(format!(
                "ZooKeeper not listening on {addr} after {timeout:?}:\n{}",
                process::tail(&log, 40)
            ));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok(())
}

/// Creates the SCRAM user in ZooKeeper (2.8), before any broker starts: `kafka-configs
/// --zookeeper`, which KRaft clusters get from `kafka-storage format --add-scram` instead.
fn add_zookeeper_scram_user(paths: &Paths, layout: &Layout, libs: &Path) -> Result<(), String> {
    let dir = paths.zookeeper_dir();
    let user = config::scram_user();
    let mut args = jvm_args(paths, layout, libs, &dir, "256m");
    args.extend([
        "kafka.admin.ConfigCommand".to_string(),
        "--zookeeper".into(),
        format!("{}:{ZOOKEEPER_PORT}", config::HOST),
        "--alter".into(),
        "--add-config".into(),
        config::zookeeper_scram_config(&user),
        "--entity-type".into(),
        "users".into(),
        "--entity-name".into(),
        user.name,
    ]);
    process::run(&process::java(), &args, &dir)
}

/// Lines a broker logs once it serves clients (ZooKeeper mode, KRaft mode).
const STARTED: &[&str] = &[
    "] started (kafka.server.KafkaServer)",
    "Kafka Server started",
];

/// Wait until each node (with the log offset its current run starts at) is
/// ready: process alive, "started" logged, both listeners accepting, and an
/// ApiVersions request on PLAINTEXT answered.
fn wait_ready(paths: &Paths, nodes: &[(Node, u64)], timeout: Duration) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    let mut pending: Vec<(Node, u64)> = nodes.to_vec();
    loop {
        let mut still = Vec::new();
        for &(node, offset) in &pending {
            let log = log_file(paths, node);
            if !broker_proc(paths, node).is_some_and(|p| p.alive()) {
                return Err(format!(
                    "broker {} exited during startup; last lines of {}:\n{}",
                    node.id,
                    log.display(),
                    process::tail(&log, 40)
                ));
            }
            let ready = process::file_contains(&log, offset, STARTED)
                && process::port_open(&node.sasl_plaintext())
                && process::kafka_answers(&node.plaintext());
            if !ready {
                still.push((node, offset));
            }
        }
        if still.is_empty() {
            return Ok(());
        }
        if Instant::now() > deadline {
            let (node, _) = still[0];
            let log = log_file(paths, node);
            return Err(format!(
                "broker(s) {:?} not ready after {timeout:?}; last lines of {}:\n{}",
                still.iter().map(|(n, _)| n.id).collect::<Vec<_>>(),
                log.display(),
                process::tail(&log, 40)
            ));
        }
        pending = still;
        std::thread::sleep(Duration::from_millis(250));
    }
}

// --- state and per-node files ------------------------------------------------

fn props_file(paths: &Paths, node: Node) -> PathBuf {
    paths.node_dir(node).join("server.properties")
}
fn log_file(paths: &Paths, node: Node) -> PathBuf {
    paths.node_dir(node).join("kafka.log")
}
fn pid_file(paths: &Paths, node: Node) -> PathBuf {
    paths.node_dir(node).join("kafka.pid")
}

fn broker_proc(paths: &Paths, node: Node) -> Option<Proc> {
    Some(Proc {
        label: format!("broker {}", node.id),
        pid: process::read_pid(&pid_file(paths, node))?,
        marker: props_file(paths, node),
    })
}

fn zk_proc(paths: &Paths) -> Option<Proc> {
    let dir = paths.zookeeper_dir();
    Some(Proc {
        label: "zookeeper".into(),
        pid: process::read_pid(&dir.join("zookeeper.pid"))?,
        marker: dir.join("zookeeper.properties"),
    })
}

/// Every recorded process of the layout: brokers, then ZooKeeper.
fn procs(paths: &Paths, layout: &Layout) -> Vec<Proc> {
    let mut all: Vec<Proc> = layout
        .nodes()
        .into_iter()
        .filter_map(|n| broker_proc(paths, n))
        .collect();
    all.extend(zk_proc(paths));
    all
}

fn write_state(paths: &Paths, layout: &Layout) -> Result<(), String> {
    let cluster = Cluster::new(layout, layout.nodes());
    let text = format!(
        "# Written by `cargo xtask kafka up`; pids are in broker-<id>/kafka.pid.\n\
         version={}\nbrokers={}\nmode={}\n{}\n",
        layout.version,
        layout.brokers,
        if layout.mode()? == Mode::Kraft {
            "kraft"
        } else {
            "zookeeper"
        },
        cluster.status_lines()
    );
    write(&paths.state_file(), &text)
}

fn read_state(paths: &Paths) -> Option<Layout> {
    let text = fs::read_to_string(paths.state_file()).ok()?;
    let kv: BTreeMap<&str, &str> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim(), v.trim()))
        .collect();
    Layout::new(kv.get("version")?, kv.get("brokers")?.parse().ok()?).ok()
}

fn mkdir(dir: &Path) -> Result<(), String> {
    fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))
}

fn write(file: &Path, text: &str) -> Result<(), String> {
    fs::write(file, text).map_err(|e| format!("cannot write {}: {e}", file.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster(version: &str) -> Cluster {
        let layout = Layout::new(version, 3).unwrap();
        Cluster::new(&layout, layout.nodes())
    }

    fn var(env: &[(&str, String)], name: &str) -> Option<String> {
        env.iter().find(|(k, _)| *k == name).map(|(_, v)| v.clone())
    }

    #[test]
    fn the_oauth_listeners_are_told_to_the_tests() {
        let env = cluster("4.4.0").test_env();
        assert_eq!(
            var(&env, "PUREKAFKA_OAUTH").as_deref(),
            Some("127.0.0.1:9100,127.0.0.1:9200,127.0.0.1:9300")
        );
        assert_eq!(
            var(&env, "PUREKAFKA_OIDC").as_deref(),
            Some("127.0.0.1:9101,127.0.0.1:9201,127.0.0.1:9301")
        );
        assert_eq!(
            var(&env, "PUREKAFKA_REAUTH").as_deref(),
            Some("127.0.0.1:9102,127.0.0.1:9202,127.0.0.1:9302")
        );
        assert_eq!(
            var(&env, "PUREKAFKA_KAFKA_VERSION").as_deref(),
            Some("4.4.0")
        );
        assert!(var(&env, "PUREKAFKA_OAUTH_DIR")
            .unwrap()
            .ends_with("target/kafka/run/oauth"));
        assert_eq!(var(&env, "PUREKAFKA_REAUTH_MS").as_deref(), Some("10000"));
        let status = cluster("4.4.0").status_lines();
        assert!(status.contains("\noidc=127.0.0.1:9101,"), "{status}");
        assert!(!status.contains('#'), "{status}");
    }

    #[test]
    fn without_kip_768_there_is_no_oidc_and_status_says_so() {
        let c = cluster("2.8.2");
        let env = c.test_env();
        assert_eq!(var(&env, "PUREKAFKA_OIDC"), None);
        assert!(var(&env, "PUREKAFKA_OAUTH").is_some());
        assert!(var(&env, "PUREKAFKA_REAUTH").is_some());
        let status = c.status_lines();
        assert!(!status.contains("oidc="), "{status}");
        assert!(
            status.ends_with(
                "# no oidc listener: Kafka 2.8.2 cannot validate signed OAUTHBEARER \
                              tokens (KIP-768 came in 3.1)"
            ),
            "{status}"
        );
    }
}
