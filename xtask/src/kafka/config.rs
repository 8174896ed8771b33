//! Cluster layout (versions, ports, paths) and the files the brokers read.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::tls::Material;

pub const DEFAULT_VERSION: &str = "4.4.0";
pub const HOST: &str = "127.0.0.1";
pub const ZOOKEEPER_PORT: u16 = 2181;

/// How the brokers of a Kafka line are coordinated and fetched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Combined broker+controller KRaft nodes (3.9.x, 4.x).
    Kraft,
    /// Brokers plus one ZooKeeper from the same jars (2.8.x).
    Zookeeper,
}

/// What `up` is asked to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    pub version: String,
    pub brokers: u8,
}

impl Layout {
    pub fn new(version: &str, brokers: u8) -> Result<Layout, String> {
        if brokers != 1 && brokers != 3 {
            return Err(format!("--brokers must be 1 or 3, got {brokers}"));
        }
        let layout = Layout {
            version: version.to_string(),
            brokers,
        };
        layout.mode()?;
        Ok(layout)
    }

    /// Supported: 4.x and 3.9.x (KRaft); 3.0–3.8 and 2.4–2.8 (ZooKeeper, as CKafka runs
    /// 2.4.1, 2.8.1 and 3.2.3). Others are refused rather than half-working.
    pub fn mode(&self) -> Result<Mode, String> {
        let parts: Vec<&str> = self.version.split('.').collect();
        let numeric = parts.len() == 3
            && parts
                .iter()
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
        match (numeric, parts.first(), parts.get(1)) {
            (true, Some(&"4"), _) => Ok(Mode::Kraft),
            (true, Some(&"3"), Some(&"9")) => Ok(Mode::Kraft),
            (true, Some(&"3"), Some(&("0" | "1" | "2" | "3" | "4" | "5" | "6" | "7" | "8"))) => {
                Ok(Mode::Zookeeper)
            }
            (true, Some(&"2"), Some(&("4" | "5" | "6" | "7" | "8"))) => Ok(Mode::Zookeeper),
            _ => Err(format!(
                "unsupported Kafka version {:?}: use 4.x.y, 3.x.y or 2.4.y to 2.8.y (e.g. \
                 {DEFAULT_VERSION}, 3.9.2, 3.2.3, 2.8.2, 2.4.1)",
                self.version
            )),
        }
    }

    /// Maven profile in xtask/kafka/pom.xml.
    pub fn maven_profile(&self) -> &'static str {
        let mut parts = self.version.split('.');
        match (parts.next(), parts.next()) {
            (Some("4"), _) => "kafka4",
            (Some("3"), Some("9")) => "kafka3",
            // Before 3.9 the console tools are in the core jar, and there is no kafka-tools.
            (Some("3"), _) => "kafka3zk",
            _ => "kafka2",
        }
    }

    /// (major, minor) of the version.
    fn major_minor(&self) -> (u32, u32) {
        let mut parts = self
            .version
            .split('.')
            .map(|p| p.parse::<u32>().unwrap_or(0));
        (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
    }

    /// Whether the brokers read PEM key and trust stores (KIP-651, Kafka 2.7 and later);
    /// older ones get PKCS12 stores made from the same PEM files.
    pub fn reads_pem_stores(&self) -> bool {
        self.major_minor() >= (2, 7)
    }

    /// The server callback handler that validates signed JWTs against a JWKS (KIP-768), which
    /// the OIDC listener uses; `None` before Kafka 3.1, which has none, and no OIDC listener.
    /// 3.1 to 3.3 have it in the `secured` package only; 3.4 added the public name (and kept
    /// the old one, deprecated, through 3.9); 4.x has the public one only.
    pub fn oidc_validator(&self) -> Option<&'static str> {
        match self.major_minor() {
            v if v < (3, 1) => None,
            v if v < (3, 4) => Some(
                "org.apache.kafka.common.security.oauthbearer.secured.\
                 OAuthBearerValidatorCallbackHandler",
            ),
            _ => Some(
                "org.apache.kafka.common.security.oauthbearer.OAuthBearerValidatorCallbackHandler",
            ),
        }
    }

    pub fn uses_log4j2(&self) -> bool {
        self.maven_profile() == "kafka4"
    }

    pub fn nodes(&self) -> Vec<Node> {
        (1..=self.brokers).map(Node::new).collect()
    }

    pub fn describe(&self) -> String {
        let mode = match self.mode() {
            Ok(Mode::Zookeeper) => "ZooKeeper",
            _ => "KRaft",
        };
        format!(
            "Kafka {} ({mode}, {} broker(s))",
            self.version, self.brokers
        )
    }
}

/// One broker (in KRaft also a controller). Node `n` uses ports
/// 9092+100(n-1) (PLAINTEXT), +1 (CONTROLLER), +2 (SASL_PLAINTEXT), +3 (PROXIED), +4 (SSL),
/// +5 (SASL_SSL), +6 (MTLS), +7 (EXPIRED), +8 (OAUTH), +9 (OIDC), +10 (REAUTH).
///
/// PROXIED is a PLAINTEXT listener that advertises port +10003 instead of its own: a test puts a
/// TCP proxy there (one that cuts, stalls or resets connections) and every connection the client
/// makes, after bootstrap too, goes through it.
///
/// The TLS listeners bind 127.0.0.1 but advertise `localhost`, the one name their certificate
/// holds (`tls.rs`): a client that bootstraps through 127.0.0.1 meets a certificate for another
/// name. MTLS is SSL with `ssl.client.auth=required`; EXPIRED is SSL with an expired
/// certificate.
///
/// OAUTH, OIDC and REAUTH are SASL_PLAINTEXT listeners (see [`sasl_listeners`]): OAUTHBEARER
/// with unsecured JWTs; OAUTHBEARER with JWTs signed by the key in `run/oauth` (Kafka 3.1 and
/// later only); every mechanism, with sessions that must re-authenticate every 10 s (KIP-368).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Node {
    pub id: u8,
}

impl Node {
    pub fn new(id: u8) -> Node {
        Node { id }
    }
    fn base(self) -> u16 {
        9092 + 100 * (self.id as u16 - 1)
    }
    pub fn plaintext_port(self) -> u16 {
        self.base()
    }
    pub fn controller_port(self) -> u16 {
        self.base() + 1
    }
    pub fn sasl_port(self) -> u16 {
        self.base() + 2
    }
    pub fn plaintext(self) -> String {
        format!("{HOST}:{}", self.plaintext_port())
    }
    pub fn sasl_plaintext(self) -> String {
        format!("{HOST}:{}", self.sasl_port())
    }
    pub fn proxied_port(self) -> u16 {
        self.base() + 3
    }
    /// Where the PROXIED listener tells clients to connect: the test's proxy.
    pub fn proxy_port(self) -> u16 {
        self.proxied_port() + 10_000
    }
    pub fn ssl_port(self) -> u16 {
        self.base() + 4
    }
    pub fn sasl_ssl_port(self) -> u16 {
        self.base() + 5
    }
    pub fn mtls_port(self) -> u16 {
        self.base() + 6
    }
    pub fn expired_port(self) -> u16 {
        self.base() + 7
    }
    pub fn oauth_port(self) -> u16 {
        self.base() + 8
    }
    pub fn oidc_port(self) -> u16 {
        self.base() + 9
    }
    pub fn reauth_port(self) -> u16 {
        self.base() + 10
    }
    /// The TLS listeners: name, port.
    pub fn tls_listeners(self) -> [(&'static str, u16); 4] {
        [
            ("SSL", self.ssl_port()),
            ("SASL_SSL", self.sasl_ssl_port()),
            ("MTLS", self.mtls_port()),
            ("EXPIRED", self.expired_port()),
        ]
    }
    /// `localhost:port` of a TLS listener, as it advertises itself.
    pub fn tls_addr(port: u16) -> String {
        format!("{}:{port}", super::tls::TLS_HOST)
    }
}

/// Everything lives under `<workspace>/target/kafka`.
#[derive(Debug, Clone)]
pub struct Paths {
    pub root: PathBuf,
}

impl Paths {
    pub fn from_workspace() -> Paths {
        let xtask = Path::new(env!("CARGO_MANIFEST_DIR"));
        Paths {
            root: xtask.parent().unwrap_or(xtask).to_path_buf(),
        }
    }
    pub fn pom(&self) -> PathBuf {
        self.root.join("xtask/kafka/pom.xml")
    }
    pub fn log_config(&self, layout: &Layout) -> PathBuf {
        let name = if layout.uses_log4j2() {
            "log4j2.properties"
        } else {
            "log4j.properties"
        };
        self.root.join("xtask/kafka").join(name)
    }
    pub fn fixtures(&self) -> PathBuf {
        self.root.join("fixtures/ckafka.json")
    }
    pub fn dist(&self, version: &str) -> PathBuf {
        self.root.join("target/kafka/dist").join(version)
    }
    pub fn libs(&self, version: &str) -> PathBuf {
        self.dist(version).join("libs")
    }
    pub fn run(&self) -> PathBuf {
        self.root.join("target/kafka/run")
    }
    pub fn state_file(&self) -> PathBuf {
        self.run().join("cluster.properties")
    }
    pub fn node_dir(&self, node: Node) -> PathBuf {
        self.run().join(format!("broker-{}", node.id))
    }
    pub fn zookeeper_dir(&self) -> PathBuf {
        self.run().join("zookeeper")
    }
}

/// A SASL/PLAIN user the brokers accept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub password: String,
}

/// Users: the fixture's `instanceId#username` (what the client sends) plus `admin`.
pub fn users(paths: &Paths) -> Result<Vec<User>, String> {
    let ckafka = purekafka::CKafkaConfig::load(paths.fixtures()).map_err(|e| e.to_string())?;
    Ok(vec![
        User {
            name: ckafka.sasl_username(),
            password: ckafka.sasl.password.expose().to_owned(),
        },
        User {
            name: "admin".into(),
            password: "admin-secret".into(),
        },
    ])
}

/// The SCRAM mechanisms the SASL_PLAINTEXT listener enables besides PLAIN.
pub const SCRAM_MECHANISMS: [&str; 2] = ["SCRAM-SHA-256", "SCRAM-SHA-512"];

/// The SCRAM user, with credentials for both mechanisms (proto-tests/scram.rs logs in as it).
/// SCRAM credentials live in the cluster metadata, not in JAAS: KRaft gets them when the storage
/// is formatted, ZooKeeper mode from `kafka-configs` before the brokers start.
pub fn scram_user() -> User {
    User {
        name: "alice".into(),
        password: "alice-secret".into(),
    }
}

/// `kafka-storage format` arguments that create `user`'s SCRAM credentials (KRaft).
pub fn storage_scram_args(user: &User) -> Vec<String> {
    SCRAM_MECHANISMS
        .iter()
        .flat_map(|m| {
            [
                "--add-scram".to_string(),
                format!("{m}=[name={},password={}]", user.name, user.password),
            ]
        })
        .collect()
}

/// `kafka-configs --add-config` value for `user`'s SCRAM credentials (ZooKeeper mode).
pub fn zookeeper_scram_config(user: &User) -> String {
    SCRAM_MECHANISMS
        .iter()
        .map(|m| format!("{m}=[password={}]", user.password))
        .collect::<Vec<_>>()
        .join(",")
}

/// A double-quoted string for Kafka's JAAS parser (java.io.StreamTokenizer):
/// inside quotes any character is literal, `\` escapes.
fn jaas_quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Server-side PLAIN JAAS config. The option keys are quoted on purpose:
/// Kafka's JaasConfig tokenizer treats `#` (and `.`, `@`, ...) as an ordinary
/// character, so `user_ckafka-local#purekafka=...` fails with "Value not
/// specified for key 'user_ckafka-local'", while `"user_ckafka-local#purekafka"`
/// is one token whose text becomes the option key.
pub fn server_jaas(users: &[User]) -> String {
    let mut s = String::from("org.apache.kafka.common.security.plain.PlainLoginModule required");
    for u in users {
        let _ = write!(
            s,
            " {}={}",
            jaas_quote(&format!("user_{}", u.name)),
            jaas_quote(&u.password)
        );
    }
    s.push(';');
    s
}

pub fn client_jaas(user: &User) -> String {
    format!(
        "org.apache.kafka.common.security.plain.PlainLoginModule required username={} password={};",
        jaas_quote(&user.name),
        jaas_quote(&user.password)
    )
}

/// Escape a java.util.Properties value.
fn prop_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for (i, c) in v.chars().enumerate() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            ' ' if i == 0 => out.push_str("\\ "),
            _ => out.push(c),
        }
    }
    out
}

fn render(props: &[(&str, String)]) -> String {
    let mut s =
        String::from("# Generated by `cargo xtask kafka up`; rewritten on every fresh start.\n");
    for (k, v) in props {
        let _ = writeln!(s, "{k}={}", prop_value(v));
    }
    s
}

/// The OAUTHBEARER and re-authentication listeners of `node` (all SASL_PLAINTEXT): name, port.
/// OIDC only where the version can validate signed tokens ([`Layout::oidc_validator`]).
pub fn sasl_listeners(layout: &Layout, node: Node) -> Vec<(&'static str, u16)> {
    let mut listeners = vec![("OAUTH", node.oauth_port())];
    if layout.oidc_validator().is_some() {
        listeners.push(("OIDC", node.oidc_port()));
    }
    listeners.push(("REAUTH", node.reauth_port()));
    listeners
}

/// How long a session on the REAUTH listener lasts before the client must re-authenticate
/// (KIP-368's `connections.max.reauth.ms`).
pub const REAUTH_MS: u32 = 10_000;

/// The broker's own login for OAUTHBEARER: Kafka's unsecured login module, which a broker
/// needs even when it only validates, and which must name a subject.
const OAUTHBEARER_SERVER_LOGIN: &str = "org.apache.kafka.common.security.oauthbearer.\
                                        OAuthBearerLoginModule required \
                                        unsecuredLoginStringClaim_sub=\"broker\";";

/// The settings of the OAUTH, OIDC and REAUTH listeners. Keys under `listener.name.<listener>.`
/// hold for that listener only; `<mechanism>.` after it, for that mechanism only (the JAAS
/// configuration and the server callback handler must have one).
///
/// OAUTH and REAUTH set no server callback handler for OAUTHBEARER, so Kafka validates with its
/// unsecured validator: any JWT with `alg` `none` and a `sub` is accepted. OIDC validates the
/// signature against `jwks` (a `file:` URL, read when the broker starts), the audience and the
/// issuer.
///
/// `connections.max.reauth.ms` under the listener's prefix alone holds for every mechanism on
/// it: the SASL channel builder takes the mechanism's own value if there is one, else the
/// listener's (the same from 2.2, when KIP-368 came, to 4.x).
pub fn oauth_properties(
    layout: &Layout,
    users: &[User],
    scram_login: &str,
    jwks: &str,
) -> Vec<(String, String)> {
    let mut p: Vec<(String, String)> = Vec::new();
    let mut set = |k: &str, v: &str| p.push((k.to_owned(), v.to_owned()));
    set("listener.name.oauth.sasl.enabled.mechanisms", "OAUTHBEARER");
    set(
        "listener.name.oauth.oauthbearer.sasl.jaas.config",
        OAUTHBEARER_SERVER_LOGIN,
    );
    if let Some(validator) = layout.oidc_validator() {
        let oidc = "listener.name.oidc.oauthbearer.";
        set("listener.name.oidc.sasl.enabled.mechanisms", "OAUTHBEARER");
        set(&format!("{oidc}sasl.jaas.config"), OAUTHBEARER_SERVER_LOGIN);
        set(
            &format!("{oidc}sasl.server.callback.handler.class"),
            validator,
        );
        set(&format!("{oidc}sasl.oauthbearer.jwks.endpoint.url"), jwks);
        set(
            &format!("{oidc}sasl.oauthbearer.expected.audience"),
            super::oauth::EXPECTED_AUDIENCE,
        );
        set(
            &format!("{oidc}sasl.oauthbearer.expected.issuer"),
            super::oauth::EXPECTED_ISSUER,
        );
    }
    let mechanisms = format!("PLAIN,{},OAUTHBEARER", SCRAM_MECHANISMS.join(","));
    set("listener.name.reauth.sasl.enabled.mechanisms", &mechanisms);
    set(
        "listener.name.reauth.plain.sasl.jaas.config",
        &server_jaas(users),
    );
    for m in SCRAM_MECHANISMS {
        set(
            &format!("listener.name.reauth.{}.sasl.jaas.config", m.to_lowercase()),
            scram_login,
        );
    }
    set(
        "listener.name.reauth.oauthbearer.sasl.jaas.config",
        OAUTHBEARER_SERVER_LOGIN,
    );
    set(
        "listener.name.reauth.connections.max.reauth.ms",
        &REAUTH_MS.to_string(),
    );
    p
}

pub fn server_properties(
    layout: &Layout,
    node: Node,
    data_dir: &Path,
    users: &[User],
    tls: &Material,
    jwks: &str,
) -> String {
    let n = layout.brokers;
    let kraft = layout.mode() == Ok(Mode::Kraft);
    let mut p: Vec<(&str, String)> = Vec::new();
    let mut listeners = format!(
        "PLAINTEXT://{},SASL_PLAINTEXT://{},PROXIED://{HOST}:{}",
        node.plaintext(),
        node.sasl_plaintext(),
        node.proxied_port()
    );
    let mut advertised = format!(
        "PLAINTEXT://{},SASL_PLAINTEXT://{},PROXIED://{HOST}:{}",
        node.plaintext(),
        node.sasl_plaintext(),
        node.proxy_port()
    );
    for (name, port) in node.tls_listeners() {
        let _ = write!(listeners, ",{name}://{HOST}:{port}");
        let _ = write!(advertised, ",{name}://{}", Node::tls_addr(port));
    }
    let mut other_protocols = String::from("SSL:SSL,SASL_SSL:SASL_SSL,MTLS:SSL,EXPIRED:SSL");
    for (name, port) in sasl_listeners(layout, node) {
        let _ = write!(listeners, ",{name}://{HOST}:{port}");
        let _ = write!(advertised, ",{name}://{HOST}:{port}");
        let _ = write!(other_protocols, ",{name}:SASL_PLAINTEXT");
    }
    if kraft {
        let voters: Vec<String> = layout
            .nodes()
            .iter()
            .map(|v| format!("{}@{HOST}:{}", v.id, v.controller_port()))
            .collect();
        listeners.push_str(&format!(",CONTROLLER://{HOST}:{}", node.controller_port()));
        p.push(("process.roles", "broker,controller".into()));
        p.push(("node.id", node.id.to_string()));
        p.push(("controller.quorum.voters", voters.join(",")));
        p.push(("controller.listener.names", "CONTROLLER".into()));
        p.push((
            "listener.security.protocol.map",
            format!(
                "PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT,PROXIED:PLAINTEXT,\
                 CONTROLLER:PLAINTEXT,{other_protocols}"
            ),
        ));
    } else {
        p.push((
            "listener.security.protocol.map",
            format!(
                "PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT,PROXIED:PLAINTEXT,{other_protocols}"
            ),
        ));
        p.push(("broker.id", node.id.to_string()));
        p.push(("zookeeper.connect", format!("{HOST}:{ZOOKEEPER_PORT}")));
        p.push(("zookeeper.connection.timeout.ms", "18000".into()));
    }
    p.push(("listeners", listeners));
    p.push(("advertised.listeners", advertised));
    p.push(("inter.broker.listener.name", "PLAINTEXT".into()));
    // A rack per broker, and followers that serve consumers of their rack (KIP-392): the
    // client.rack tests read from the replica in their rack.
    p.push(("broker.rack", format!("rack-{}", node.id)));
    p.push((
        "replica.selector.class",
        "org.apache.kafka.common.replica.RackAwareReplicaSelector".into(),
    ));
    let mechanisms = format!("PLAIN,{}", SCRAM_MECHANISMS.join(","));
    p.push(("sasl.enabled.mechanisms", mechanisms.clone()));
    // The same logins on SASL_PLAINTEXT and SASL_SSL. SCRAM's server side needs no options:
    // the credentials come from the cluster metadata.
    const SCRAM_LOGIN: &str = "org.apache.kafka.common.security.scram.ScramLoginModule required;";
    for (enabled, plain, sha256, sha512) in [
        (
            "listener.name.sasl_plaintext.sasl.enabled.mechanisms",
            "listener.name.sasl_plaintext.plain.sasl.jaas.config",
            "listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config",
            "listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config",
        ),
        (
            "listener.name.sasl_ssl.sasl.enabled.mechanisms",
            "listener.name.sasl_ssl.plain.sasl.jaas.config",
            "listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config",
            "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config",
        ),
    ] {
        p.push((enabled, mechanisms.clone()));
        p.push((plain, server_jaas(users)));
        p.push((sha256, SCRAM_LOGIN.into()));
        p.push((sha512, SCRAM_LOGIN.into()));
    }
    let oauth = oauth_properties(layout, users, SCRAM_LOGIN, jwks);
    p.extend(oauth.iter().map(|(k, v)| (k.as_str(), v.clone())));
    // TLS: every TLS listener shows the brokers' certificate but EXPIRED, which shows the
    // expired one; MTLS asks for a client certificate signed by the CA.
    if layout.reads_pem_stores() {
        p.push(("ssl.keystore.type", "PEM".into()));
        p.push(("ssl.keystore.certificate.chain", tls.broker_chain.clone()));
        p.push(("ssl.keystore.key", tls.broker_key.clone()));
        p.push(("ssl.truststore.type", "PEM".into()));
        p.push(("ssl.truststore.certificates", tls.ca.clone()));
        p.push((
            "listener.name.expired.ssl.keystore.certificate.chain",
            tls.expired_chain.clone(),
        ));
        p.push((
            "listener.name.expired.ssl.keystore.key",
            tls.expired_key.clone(),
        ));
    } else {
        // Before Kafka 2.7: the same certificates, in PKCS12 stores (tls::pkcs12).
        let store = |name: &str| tls.dir.join(name).display().to_string();
        let password = super::tls::STORE_PASSWORD.to_owned();
        p.push(("ssl.keystore.type", "PKCS12".into()));
        p.push(("ssl.keystore.location", store("broker.p12")));
        p.push(("ssl.keystore.password", password.clone()));
        p.push(("ssl.key.password", password.clone()));
        p.push(("ssl.truststore.type", "PKCS12".into()));
        p.push(("ssl.truststore.location", store("truststore.p12")));
        p.push(("ssl.truststore.password", password.clone()));
        p.push(("listener.name.expired.ssl.keystore.type", "PKCS12".into()));
        p.push((
            "listener.name.expired.ssl.keystore.location",
            store("expired.p12"),
        ));
        p.push((
            "listener.name.expired.ssl.keystore.password",
            password.clone(),
        ));
        p.push(("listener.name.expired.ssl.key.password", password));
    }
    p.push(("listener.name.mtls.ssl.client.auth", "required".into()));
    // An authorizer, for the ACL tests. A resource without ACLs stays open to everyone, so no
    // other test sees a difference; the brokers' own principal (ANONYMOUS, on the inter-broker
    // and controller listeners) is a super user, so no ACL a test creates can stop the
    // cluster. The tests' plaintext admin is ANONYMOUS too; they test ACLs on a SASL user.
    let authorizer = match kraft {
        true => "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        false => "kafka.security.authorizer.AclAuthorizer",
    };
    p.push(("authorizer.class.name", authorizer.into()));
    p.push(("allow.everyone.if.no.acl.found", "true".into()));
    p.push(("super.users", "User:ANONYMOUS".into()));
    p.push(("log.dirs", data_dir.display().to_string()));
    p.push(("auto.create.topics.enable", "false".into()));
    p.push(("num.partitions", "1".into()));
    p.push(("group.initial.rebalance.delay.ms", "0".into()));
    // KIP-848 groups: the coordinator sets the heartbeat interval (5 s by default, and no
    // less than the minimum), and each assignment step waits for a heartbeat. Quick heartbeats
    // let the group tests see rebalances within a second, as for classic groups. Brokers
    // before KIP-848 ignore the keys.
    p.push(("group.consumer.min.heartbeat.interval.ms", "500".into()));
    p.push(("group.consumer.heartbeat.interval.ms", "500".into()));
    p.push(("offsets.topic.replication.factor", n.to_string()));
    p.push(("transaction.state.log.replication.factor", n.to_string()));
    p.push(("transaction.state.log.min.isr", n.min(2).to_string()));
    // Three brokers: acks=all needs two in-sync replicas, so one broker down loses nothing.
    p.push(("min.insync.replicas", n.min(2).to_string()));
    p.push(("default.replication.factor", n.to_string()));
    if layout.uses_log4j2() {
        p.push((
            "share.coordinator.state.topic.replication.factor",
            n.to_string(),
        ));
        p.push((
            "share.coordinator.state.topic.min.isr",
            n.min(2).to_string(),
        ));
        // Share groups (KIP-932): quick heartbeats, as for KIP-848 groups, and acquisition
        // locks a test may shorten to a second or two with the group config
        // share.record.lock.duration.ms (the default stays 30 s). Brokers before share
        // groups ignore the keys.
        p.push(("group.share.min.heartbeat.interval.ms", "500".into()));
        p.push(("group.share.heartbeat.interval.ms", "500".into()));
        p.push(("group.share.min.record.lock.duration.ms", "1000".into()));
    }
    p.push(("num.network.threads", "2".into()));
    p.push(("num.io.threads", "4".into()));
    // Which SCRAM users the metadata holds is fixed at format time, so it is part of the file:
    // a running cluster whose file differs from this one was set up otherwise (`ensure_up`).
    let mut text = render(&p);
    let _ = writeln!(text, "# SCRAM users: {}", scram_user().name);
    text
}

pub fn zookeeper_properties(data_dir: &Path) -> String {
    render(&[
        ("dataDir", data_dir.display().to_string()),
        ("clientPort", ZOOKEEPER_PORT.to_string()),
        ("clientPortAddress", HOST.into()),
        ("maxClientCnxns", "0".into()),
        ("admin.enableServer", "false".into()),
    ])
}

/// Client config for the Java tools (`--command-config`).
pub fn client_properties(user: &User) -> String {
    render(&[
        ("security.protocol", "SASL_PLAINTEXT".into()),
        ("sasl.mechanism", "PLAIN".into()),
        ("sasl.jaas.config", client_jaas(user)),
    ])
}

/// A fresh KRaft cluster id: 16 bytes, base64url without padding (Kafka's Uuid format).
pub fn new_cluster_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut bytes = Vec::with_capacity(16);
    for i in 0..2u64 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(i);
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0),
        );
        h.write_u32(std::process::id());
        bytes.extend_from_slice(&h.finish().to_be_bytes());
    }
    super::oauth::base64url(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jaas_keys_are_quoted() {
        let users = vec![User {
            name: "ckafka-local#purekafka".into(),
            password: "p\"w".into(),
        }];
        assert_eq!(
            server_jaas(&users),
            "org.apache.kafka.common.security.plain.PlainLoginModule required \
             \"user_ckafka-local#purekafka\"=\"p\\\"w\";"
        );
    }

    #[test]
    fn cluster_id_is_22_chars() {
        let id = new_cluster_id();
        assert_eq!(id.len(), 22, "{id}");
    }

    #[test]
    fn the_oidc_validator_by_version() {
        let validator = |v: &str| Layout::new(v, 1).unwrap().oidc_validator();
        assert_eq!(validator("2.4.1"), None);
        assert_eq!(validator("2.8.2"), None);
        assert_eq!(validator("3.0.2"), None);
        let secured = "org.apache.kafka.common.security.oauthbearer.secured.\
                       OAuthBearerValidatorCallbackHandler";
        let public =
            "org.apache.kafka.common.security.oauthbearer.OAuthBearerValidatorCallbackHandler";
        assert_eq!(validator("3.1.0"), Some(secured));
        assert_eq!(validator("3.3.2"), Some(secured));
        assert_eq!(validator("3.4.0"), Some(public));
        assert_eq!(validator("3.9.2"), Some(public));
        assert_eq!(validator("4.4.0"), Some(public));
    }

    fn properties(version: &str, node: u8) -> Vec<(String, String)> {
        let users = vec![User {
            name: "u".into(),
            password: "p".into(),
        }];
        let tls = Material {
            dir: PathBuf::from("/tls"),
            ca: "CA".into(),
            broker_chain: "CHAIN".into(),
            broker_key: "KEY".into(),
            expired_chain: "OLD CHAIN".into(),
            expired_key: "OLD KEY".into(),
        };
        let layout = Layout::new(version, 3).unwrap();
        let text = server_properties(
            &layout,
            Node::new(node),
            Path::new("/data"),
            &users,
            &tls,
            "file:///run/oauth/jwks.json",
        );
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }

    fn get<'a>(props: &'a [(String, String)], key: &str) -> Option<&'a str> {
        props
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn the_oauth_listeners_are_sasl_plaintext_on_ports_8_to_10() {
        let props = properties("4.4.0", 2);
        let listeners = get(&props, "listeners").unwrap();
        for l in [
            "OAUTH://127.0.0.1:9200",
            "OIDC://127.0.0.1:9201",
            "REAUTH://127.0.0.1:9202",
        ] {
            assert!(listeners.contains(l), "{listeners}");
            assert!(get(&props, "advertised.listeners").unwrap().contains(l));
        }
        let map = get(&props, "listener.security.protocol.map").unwrap();
        assert!(
            map.ends_with("OAUTH:SASL_PLAINTEXT,OIDC:SASL_PLAINTEXT,REAUTH:SASL_PLAINTEXT"),
            "{map}"
        );
        assert_eq!(
            get(&props, "listener.name.oauth.sasl.enabled.mechanisms"),
            Some("OAUTHBEARER")
        );
        assert_eq!(
            get(&props, "listener.name.oauth.oauthbearer.sasl.jaas.config"),
            Some(
                "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required \
                 unsecuredLoginStringClaim_sub=\"broker\";"
            )
        );
        assert_eq!(
            get(
                &props,
                "listener.name.oauth.oauthbearer.sasl.server.callback.handler.class"
            ),
            None,
            "OAUTH validates with Kafka's unsecured validator"
        );
    }

    #[test]
    fn the_oidc_listener_checks_signature_audience_and_issuer() {
        let props = properties("3.2.3", 1);
        let oidc = |key: &str| get(&props, &format!("listener.name.oidc.oauthbearer.{key}"));
        assert!(oidc("sasl.server.callback.handler.class")
            .unwrap()
            .contains(".secured."));
        assert_eq!(
            oidc("sasl.oauthbearer.jwks.endpoint.url"),
            Some("file:///run/oauth/jwks.json")
        );
        assert_eq!(
            oidc("sasl.oauthbearer.expected.audience"),
            Some("purekafka-tests")
        );
        assert_eq!(
            oidc("sasl.oauthbearer.expected.issuer"),
            Some("purekafka-test-issuer")
        );
        assert!(get(&props, "listeners")
            .unwrap()
            .contains("OIDC://127.0.0.1:9101"));
    }

    #[test]
    fn before_3_1_there_is_no_oidc_listener() {
        let props = properties("2.8.2", 1);
        assert!(props.iter().all(|(k, _)| !k.contains("oidc")));
        let listeners = get(&props, "listeners").unwrap();
        assert!(!listeners.contains("OIDC"), "{listeners}");
        assert!(listeners.contains("OAUTH://127.0.0.1:9100"), "{listeners}");
        assert!(listeners.contains("REAUTH://127.0.0.1:9102"), "{listeners}");
        let map = get(&props, "listener.security.protocol.map").unwrap();
        assert!(!map.contains("OIDC"), "{map}");
    }

    #[test]
    fn reauth_takes_every_mechanism_with_ten_second_sessions() {
        let props = properties("2.4.1", 1);
        let reauth = |key: &str| get(&props, &format!("listener.name.reauth.{key}"));
        assert_eq!(
            reauth("sasl.enabled.mechanisms"),
            Some("PLAIN,SCRAM-SHA-256,SCRAM-SHA-512,OAUTHBEARER")
        );
        assert_eq!(reauth("connections.max.reauth.ms"), Some("10000"));
        for m in ["plain", "scram-sha-256", "scram-sha-512", "oauthbearer"] {
            assert!(
                reauth(&format!("{m}.sasl.jaas.config")).is_some(),
                "{m} has no JAAS configuration"
            );
        }
        assert_eq!(
            reauth("plain.sasl.jaas.config"),
            get(
                &props,
                "listener.name.sasl_plaintext.plain.sasl.jaas.config"
            ),
            "the same PLAIN users as SASL_PLAINTEXT"
        );
        assert_eq!(get(&props, "connections.max.reauth.ms"), None);
    }

    #[test]
    fn versions() {
        assert_eq!(Layout::new("4.4.0", 1).unwrap().mode(), Ok(Mode::Kraft));
        assert_eq!(Layout::new("3.9.2", 3).unwrap().mode(), Ok(Mode::Kraft));
        assert_eq!(Layout::new("2.8.2", 1).unwrap().mode(), Ok(Mode::Zookeeper));
        assert_eq!(Layout::new("3.2.3", 1).unwrap().mode(), Ok(Mode::Zookeeper));
        assert_eq!(Layout::new("2.4.1", 1).unwrap().mode(), Ok(Mode::Zookeeper));
        assert!(!Layout::new("2.4.1", 1).unwrap().reads_pem_stores());
        assert!(Layout::new("2.8.2", 1).unwrap().reads_pem_stores());
        assert_eq!(Layout::new("3.2.3", 1).unwrap().maven_profile(), "kafka3zk");
        assert_eq!(Layout::new("3.7.0", 1).unwrap().mode(), Ok(Mode::Zookeeper));
        assert!(Layout::new("2.3.1", 1).is_err());
        assert!(Layout::new("4.4.0/../x", 1).is_err());
        assert!(Layout::new("4.4.0", 2).is_err());
    }
}
