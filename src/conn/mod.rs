//! One broker connection: TCP, the ApiVersions and SASL handshake, then requests pipelined on
//! one socket and matched to their responses.
//!
//! ```text
//!  Connection::connect(addr) ── TCP (─ TLS) ──► Wire (writer + reader tasks)
//!        │                                 ▲
//!        └── handshake: ApiVersions ───────┤  (v3, falling back to what the broker offers)
//!                       SaslHandshake ─────┤  (when SASL is configured)
//!                       SaslAuthenticate ──┘  (or raw tokens on pre-1.0 brokers)
//!  Connection::request::<R>(&req) ─ negotiated version ─► Wire::call ─► R::Response
//!
//!  session lifetime from the broker (KIP-368) ─► reauth task: at 85-95% of it, SaslHandshake
//!  and SaslAuthenticate again on the same socket, the write half held meanwhile
//! ```

mod backoff;
mod handshake;
mod reauth;
#[cfg(test)]
mod scripted;
#[cfg(feature = "tls")]
mod tls;
mod wire;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::MetadataRequest;
use kafka_protocol::protocol::{HeaderVersion, VersionRange};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tracing::Instrument;

pub(crate) use backoff::Backoff;

use crate::config::{
    ClientConfig, SaslConfig, SaslCredentials, SaslMechanism, Secret, SocketOptions, TokenSpec,
};
use crate::error::{ConfigError, Error};
use crate::oauth::TokenSource;
use crate::protocol::api::ApiRequest;
use crate::protocol::frame::{self, Body, RequestHead};
use crate::protocol::versions::{self, ApiVersionTable};
use crate::stats::BrokerCounters;
use wire::Wire;

/// The target of the span of each request.
const REQUEST_SPAN_TARGET: &str = "purekafka::conn::request";

/// How a client authenticates its connections: the mechanism and its credentials.
#[derive(Debug, Clone)]
pub(crate) struct Sasl {
    pub mechanism: SaslMechanism,
    pub credentials: Credentials,
}

/// The credentials of [`Sasl`].
#[derive(Debug, Clone)]
pub(crate) enum Credentials {
    /// PLAIN and SCRAM.
    Password { username: String, password: Secret },
    /// OAUTHBEARER: the client's one source of tokens, shared by its connections.
    Token(Arc<TokenSource>),
}

impl Sasl {
    /// The checked settings made ready for connections: an OAUTHBEARER client gets its token
    /// source here, once (and its token endpoint's HTTP client, for OIDC).
    fn new(config: SaslConfig) -> Result<Sasl, ConfigError> {
        let credentials = match config.credentials {
            SaslCredentials::Password { username, password } => {
                Credentials::Password { username, password }
            }
            SaslCredentials::Token(spec) => {
                let provider: Arc<dyn crate::oauth::TokenProvider> = match spec {
                    TokenSpec::Provider(provider) => provider.0,
                    TokenSpec::Unsecured(unsecured) => Arc::new(unsecured),
                    #[cfg(feature = "oidc")]
                    TokenSpec::Oidc(oidc) => {
                        let https = tls::https_config(&oidc.ca_location, &oidc.ca_pem)?;
                        let endpoint = oidc.endpoint.clone();
                        Arc::new(crate::oauth::OidcProvider::new(oidc, https).map_err(
                            |reason| ConfigError::InvalidValue {
                                key: "sasl.oauthbearer.token.endpoint.url".into(),
                                value: endpoint,
                                reason,
                            },
                        )?)
                    }
                };
                Credentials::Token(Arc::new(TokenSource::new(provider)))
            }
        };
        Ok(Sasl {
            mechanism: config.mechanism,
            credentials,
        })
    }
}

/// What a connection needs from the configuration.
#[derive(Debug, Clone)]
pub(crate) struct ConnectionSettings {
    pub client_id: String,
    pub sasl: Option<Sasl>,
    /// The TLS configuration, for `security.protocol` SSL and SASL_SSL.
    #[cfg(feature = "tls")]
    pub tls: Option<tls::Tls>,
    /// `socket.timeout.ms`: how long any request may wait for its answer.
    pub socket_timeout: Duration,
    /// `socket.connection.setup.timeout.ms`: connecting, TLS, SASL and ApiVersions together.
    pub setup_timeout: Duration,
    /// `api.version.request.timeout.ms`.
    pub api_versions_timeout: Duration,
    pub socket: SocketOptions,
    pub max_frame: usize,
    pub reconnect_backoff: Duration,
    pub reconnect_backoff_max: Duration,
    /// Whether the connections keep counters for the statistics.
    pub statistics: bool,
}

impl ConnectionSettings {
    #[cfg(feature = "tls")]
    fn tls(&self) -> Option<&tls::Tls> {
        self.tls.as_ref()
    }

    /// Without the `tls` feature, never TLS.
    #[cfg(not(feature = "tls"))]
    fn tls(&self) -> Option<std::convert::Infallible> {
        None
    }

    pub fn from_config(config: &ClientConfig) -> Result<Self, ConfigError> {
        let sasl = config.validate()?.map(Sasl::new).transpose()?;
        let c = &config.common;
        Ok(ConnectionSettings {
            client_id: c.client_id.clone(),
            sasl,
            #[cfg(feature = "tls")]
            tls: match c.security_protocol.uses_tls() {
                true => Some(tls::Tls::new(&c.tls)?),
                false => None,
            },
            socket_timeout: c.socket_timeout,
            setup_timeout: c.connection_setup_timeout,
            api_versions_timeout: c.api_version_request_timeout,
            socket: c.socket,
            max_frame: c.receive_message_max_bytes,
            reconnect_backoff: c.reconnect_backoff,
            reconnect_backoff_max: c.reconnect_backoff_max,
            statistics: !c.statistics_interval.is_zero(),
        })
    }
}

/// A ready connection to one broker: handshaken, authenticated, versions negotiated. Cheap to
/// clone; the socket closes when the last clone is dropped.
#[derive(Clone)]
pub struct Connection {
    wire: Wire,
    versions: Arc<ApiVersionTable>,
    socket_timeout: Duration,
}

/// A [`Connection`] that does not keep it open: the connection closes when its last
/// [`Connection`] is dropped.
struct WeakConnection {
    wire: wire::WeakWire,
    versions: Arc<ApiVersionTable>,
    socket_timeout: Duration,
}

impl WeakConnection {
    fn upgrade(&self) -> Option<Connection> {
        Some(Connection {
            wire: self.wire.upgrade()?,
            versions: self.versions.clone(),
            socket_timeout: self.socket_timeout,
        })
    }
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("broker", &self.wire.broker())
            .field("closed", &self.wire.is_closed())
            .finish()
    }
}

impl Connection {
    /// Connects to `addr` (`host:port`) and performs the handshake, all within
    /// `socket.connection.setup.timeout.ms`.
    pub(crate) async fn connect(
        addr: &str,
        settings: &ConnectionSettings,
    ) -> Result<Connection, Error> {
        Self::connect_counted(addr, settings, None).await
    }

    /// As [`Connection::connect`], the connection counting what it does in `counters`.
    pub(crate) async fn connect_counted(
        addr: &str,
        settings: &ConnectionSettings,
        counters: Option<Arc<BrokerCounters>>,
    ) -> Result<Connection, Error> {
        let timeout = settings.setup_timeout;
        let attempt = async {
            let wire = Self::open(addr, settings, counters).await?;
            let versions = handshake::api_versions(&wire, settings.api_versions_timeout).await?;
            let conn = Connection {
                wire,
                versions: Arc::new(versions),
                socket_timeout: settings.socket_timeout,
            };
            if let Some(sasl) = &settings.sasl {
                let session = handshake::authenticate(&conn, sasl).await?;
                reauth::keep(&conn, sasl, session);
            }
            // Every client starts with Metadata, from any broker: one that shares no version of
            // it with us is of no use, and keeping the connection would keep its answer too.
            // Failing here drops the socket and lets the reconnect backoff run. (After SASL, so
            // that a refused login says so rather than this.)
            conn.version_of::<MetadataRequest>()?;
            tracing::debug!(broker = addr, "connected");
            Ok(conn)
        };
        tokio::time::timeout(timeout, attempt)
            .await
            .unwrap_or_else(|_| {
                Err(Error::Timeout {
                    what: format!("connecting to {addr} (socket.connection.setup.timeout.ms)"),
                    after_ms: timeout.as_millis() as u64,
                    outcome_unknown: false,
                })
            })
    }

    /// The socket to `addr`, TCP (and TLS when configured), taken over by a [`Wire`]. In the
    /// unit tests, an address of an in-memory cluster (`crate::testing`) gets a pipe to it.
    async fn open(
        addr: &str,
        settings: &ConnectionSettings,
        counters: Option<Arc<BrokerCounters>>,
    ) -> Result<Wire, Error> {
        let (client_id, max_frame) = (&settings.client_id, settings.max_frame);
        #[cfg(test)]
        if let Some(pipe) = crate::testing::dial(addr) {
            return Ok(Wire::spawn(
                tokio::io::split(pipe),
                addr,
                client_id,
                max_frame,
                counters,
            ));
        }
        let io_error = |e: std::io::Error| Error::Io {
            broker: addr.to_owned(),
            message: e.to_string(),
            outcome_unknown: false,
        };
        let stream = Self::dial(addr, &settings.socket).await.map_err(io_error)?;
        Ok(match settings.tls() {
            #[cfg(feature = "tls")]
            Some(tls) => {
                let stream = tls.connect(addr, stream).await?;
                Wire::spawn(
                    tokio::io::split(stream),
                    addr,
                    client_id,
                    max_frame,
                    counters,
                )
            }
            _ => Wire::spawn(stream.into_split(), addr, client_id, max_frame, counters),
        })
    }

    /// A TCP connection to `addr` with `options`: each address its name resolves to in turn
    /// (those of `broker.address.family`), the error of the last one tried if none answers.
    async fn dial(addr: &str, options: &SocketOptions) -> std::io::Result<TcpStream> {
        let mut last = None;
        for ip in tokio::net::lookup_host(addr).await? {
            if !options.address_family.admits(&ip) {
                continue;
            }
            let socket = match ip {
                std::net::SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
                std::net::SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
            };
            socket.set_keepalive(options.keepalive)?;
            socket.set_nodelay(options.nodelay)?;
            if options.send_buffer_bytes > 0 {
                socket.set_send_buffer_size(options.send_buffer_bytes)?;
            }
            if options.receive_buffer_bytes > 0 {
                socket.set_recv_buffer_size(options.receive_buffer_bytes)?;
            }
            match socket.connect(ip).await {
                Ok(stream) => return Ok(stream),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!(
                    "{addr} resolves to no address{}",
                    match options.address_family {
                        crate::config::AddressFamily::Any => "",
                        crate::config::AddressFamily::V4 => " of IPv4 (broker.address.family=v4)",
                        crate::config::AddressFamily::V6 => " of IPv6 (broker.address.family=v6)",
                    }
                ),
            )
        }))
    }

    /// The broker address this connection goes to.
    pub fn broker(&self) -> &str {
        self.wire.broker()
    }

    /// A handle that does not keep the connection open.
    fn downgrade(&self) -> WeakConnection {
        WeakConnection {
            wire: self.wire.downgrade(),
            versions: self.versions.clone(),
            socket_timeout: self.socket_timeout,
        }
    }

    /// True once the connection failed or was closed; a new one must be made.
    pub fn is_closed(&self) -> bool {
        self.wire.is_closed()
    }

    /// The versions the broker announced.
    pub fn versions(&self) -> &ApiVersionTable {
        &self.versions
    }

    /// The version of `R` this connection uses, or an error naming the API when none is shared.
    pub fn version_of<R: ApiRequest>(&self) -> Result<i16, Error> {
        self.versions
            .negotiate::<R>()
            .ok_or_else(|| Error::UnsupportedApi {
                broker: self.broker().to_owned(),
                api: R::NAME,
                ours: versions::our_range(R::KEY).map_or_else(
                    || "none".to_owned(),
                    |VersionRange { min, max }| format!("v{min}-v{max}"),
                ),
            })
    }

    /// Sends `request` at the highest shared version and waits for the response, up to
    /// `socket.timeout.ms`.
    pub async fn request<R: ApiRequest>(&self, request: &R) -> Result<(R::Response, i16), Error> {
        let version = self.version_of::<R>()?;
        let response = self
            .request_at(request, version, self.socket_timeout)
            .await?;
        Ok((response, version))
    }

    /// Sends `request` at `version`, waiting up to `timeout` for the response.
    pub async fn request_at<R: ApiRequest>(
        &self,
        request: &R,
        version: i16,
        timeout: Duration,
    ) -> Result<R::Response, Error> {
        let body =
            frame::encode_body(request, version).map_err(|e| Error::protocol(self.broker(), e))?;
        let response = self.call::<R>(version, body.into(), timeout).await?;
        self.decode::<R>(response, version)
    }

    /// Sends an encoded body of `R` at `version` and returns the raw response body, waiting
    /// up to `timeout`; on expiry the connection is closed (see [`Wire::call`]).
    pub(crate) async fn call<R: ApiRequest>(
        &self,
        version: i16,
        body: Body,
        timeout: Duration,
    ) -> Result<Bytes, Error> {
        let head = RequestHead::of::<R>(version);
        let deadline = Instant::now() + timeout;
        self.wire
            .call(
                head,
                R::Response::header_version(version),
                body,
                Some(deadline),
            )
            .instrument(self.span::<R>(version))
            .await
    }

    /// The span of one request of `R` at `version` (target `purekafka::conn::request`, level
    /// debug): the API, its version, the broker, and the correlation id once it has one. It
    /// covers the request from its write to its answer where the caller waits for the answer,
    /// and the write alone where a completion takes the answer (the producer's Produce).
    fn span<R: ApiRequest>(&self, version: i16) -> tracing::Span {
        tracing::debug_span!(
            target: REQUEST_SPAN_TARGET,
            "request",
            api = R::NAME,
            version,
            broker = %self.broker(),
            correlation_id = tracing::field::Empty,
        )
    }

    /// Writes an encoded body of `R` at `version` whose response `on_reply` takes: on the
    /// connection's reader task, as soon as it arrives, or with the connection's error (the
    /// connection closed by a timeout when it is not there by `deadline`). Not for `select!`
    /// (see [`Wire::submit`]).
    pub(crate) async fn submit<R: ApiRequest>(
        &self,
        version: i16,
        body: Body,
        deadline: Instant,
        on_reply: impl FnOnce(Result<Bytes, Error>) + Send + 'static,
    ) {
        let head = RequestHead::of::<R>(version);
        let response_header_version = R::Response::header_version(version);
        self.wire
            .submit(head, response_header_version, body, deadline, on_reply)
            .instrument(self.span::<R>(version))
            .await
    }

    /// As [`Connection::submit`], without waiting (see [`Wire::try_submit`]): `on_reply` comes
    /// back when another request is being written on the connection this moment.
    pub(crate) fn try_submit<R: ApiRequest, F>(
        &self,
        version: i16,
        body: &Body,
        deadline: Instant,
        on_reply: F,
    ) -> Result<(), F>
    where
        F: FnOnce(Result<Bytes, Error>) + Send + 'static,
    {
        let head = RequestHead::of::<R>(version);
        let response_header_version = R::Response::header_version(version);
        let _span = self.span::<R>(version).entered();
        self.wire
            .try_submit(head, response_header_version, body, deadline, on_reply)
    }

    /// Decodes a response to `R` at `version`. Bytes that do not decode poison the connection:
    /// what follows them cannot be trusted. The request failed as one the connection lost after
    /// writing it: the broker may have acted on it (a Produce may have been written).
    pub(crate) fn decode<R: ApiRequest>(
        &self,
        mut response: Bytes,
        version: i16,
    ) -> Result<R::Response, Error> {
        frame::decode_body::<R>(&mut response, version).map_err(|e| {
            let error = Error::protocol(self.broker(), e);
            self.poison(error.clone());
            Error::Disconnected {
                broker: self.broker().to_owned(),
                cause: Arc::new(error),
                outcome_unknown: true,
            }
        })
    }

    /// Closes the connection because of `error` (say, bytes in an answer that do not decode):
    /// every request in flight on it fails, and the next caller opens a new one.
    pub(crate) fn poison(&self, error: Error) {
        self.wire.poison(error);
    }

    /// Sends an encoded body of `R` that the broker does not answer (Produce with acks=0),
    /// waiting up to the request timeout for it to be written.
    pub(crate) async fn send_only<R: ApiRequest>(
        &self,
        version: i16,
        body: Body,
    ) -> Result<(), Error> {
        let deadline = Instant::now() + self.socket_timeout;
        self.wire
            .send(RequestHead::of::<R>(version), body, deadline)
            .await
    }

    /// How long a request on this connection may wait for its answer (`socket.timeout.ms`);
    /// a request the broker may hold adds that time to it.
    pub fn socket_timeout(&self) -> Duration {
        self.socket_timeout
    }
}

#[cfg(test)]
mod tests {
    //! The handshake against a scripted pre-1.0 broker on a real loopback socket: no ApiVersions
    //! v3, SaslHandshake v0 only, and SASL tokens as raw frames.

    use bytes::{BufMut, BytesMut};
    use tokio::io::AsyncReadExt;
    use tokio::net::TcpListener;

    use super::scripted::{read_frame, settings, write_frame};
    use super::*;

    /// The socket options of the configuration, read back from the connected socket.
    #[tokio::test]
    async fn sockets_take_the_configured_options() {
        use crate::config::{AddressFamily, ClientConfig};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move { while listener.accept().await.is_ok() {} });
        let options = |pairs: &[(&str, &str)]| {
            ClientConfig::from_properties(pairs.iter().copied())
                .unwrap()
                .common
                .socket
        };
        let read_back = |stream: TcpStream| {
            let socket = tokio::net::TcpSocket::from_std_stream(stream.into_std().unwrap());
            (
                socket.keepalive().unwrap(),
                socket.nodelay().unwrap(),
                socket.send_buffer_size().unwrap(),
                socket.recv_buffer_size().unwrap(),
            )
        };
        let addr = format!("127.0.0.1:{port}");
        let (keepalive, nodelay, _, _) =
            read_back(Connection::dial(&addr, &options(&[])).await.unwrap());
        assert!(!keepalive && nodelay, "librdkafka's defaults");
        let set = options(&[
            ("socket.keepalive.enable", "true"),
            ("socket.nagle.disable", "false"),
            ("socket.send.buffer.bytes", "200000"),
            ("socket.receive.buffer.bytes", "300000"),
        ]);
        let (keepalive, nodelay, send, receive) =
            read_back(Connection::dial(&addr, &set).await.unwrap());
        assert!(keepalive && !nodelay);
        // Linux doubles what it is given, for its own bookkeeping.
        assert!(send >= 200_000 && receive >= 300_000, "{send} {receive}");
        // broker.address.family: `localhost` resolves to 127.0.0.1 (and maybe ::1); with
        // v6 only, the IPv4 listener is not tried.
        let v6 = options(&[("broker.address.family", "v6")]);
        assert_eq!(v6.address_family, AddressFamily::V6);
        let err = Connection::dial(&addr, &v6).await.unwrap_err();
        assert!(
            err.to_string().contains("broker.address.family=v6"),
            "{err}"
        );
        let v4 = options(&[("broker.address.family", "v4")]);
        assert!(Connection::dial(&format!("localhost:{port}"), &v4)
            .await
            .is_ok());
    }

    /// A Kafka 0.10-like broker: answers ApiVersions v3 with UNSUPPORTED_VERSION and its list in
    /// the v0 layout, takes SaslHandshake v0, then one raw PLAIN token, which it accepts when it
    /// equals `accept` and answers by closing the connection otherwise.
    async fn old_broker(accept: &'static [u8]) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            let (mut sock, _) = listener.accept().await.unwrap();
            let request = read_frame(&mut sock).await;
            assert_eq!(&request[..4], &[0, 18, 0, 3], "ApiVersions v3 first");
            let mut answer = BytesMut::new();
            answer.put_slice(&request[4..8]); // correlation id
            answer.put_i16(35);
            // ApiVersions 0..0, SaslHandshake 0..0, Metadata 0..2: no SaslAuthenticate.
            answer.put_i32(3);
            for (key, min, max) in [(18i16, 0i16, 0i16), (17, 0, 0), (3, 0, 2)] {
                answer.put_i16(key);
                answer.put_i16(min);
                answer.put_i16(max);
            }
            write_frame(&mut sock, &answer).await;

            let request = read_frame(&mut sock).await;
            assert_eq!(&request[..4], &[0, 17, 0, 0], "SaslHandshake v0");
            let mut answer = BytesMut::new();
            answer.put_slice(&request[4..8]);
            answer.put_i16(0);
            answer.put_i32(1);
            answer.put_i16(5);
            answer.put_slice(b"PLAIN");
            write_frame(&mut sock, &answer).await;

            let token = read_frame(&mut sock).await;
            if token == accept {
                write_frame(&mut sock, b"").await;
                let _ = sock.read_u8().await;
            }
        });
        addr
    }

    #[tokio::test]
    async fn a_broker_sharing_no_metadata_version_is_refused() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let broker = tokio::spawn(async move {
            let (mut sock, _) = listener.accept().await.unwrap();
            let request = read_frame(&mut sock).await;
            // ApiVersions v3, listing nothing: correlation id, no error, an empty compact array,
            // throttle time, no tagged fields.
            let mut answer = BytesMut::new();
            answer.put_slice(&request[4..8]);
            answer.put_i16(0);
            answer.put_u8(1);
            answer.put_i32(0);
            answer.put_u8(0);
            write_frame(&mut sock, &answer).await;
            // The client closes the connection rather than keep it.
            sock.read(&mut [0; 1]).await.unwrap()
        });
        let plain = ConnectionSettings {
            sasl: None,
            ..settings()
        };
        let err = Connection::connect(&addr, &plain).await.unwrap_err();
        assert!(
            matches!(
                err,
                Error::UnsupportedApi {
                    api: "Metadata",
                    ..
                }
            ),
            "{err:?}"
        );
        assert_eq!(broker.await.unwrap(), 0, "end of file");
    }

    #[tokio::test]
    async fn raw_token_sasl_on_a_pre_1_0_broker() {
        let addr = old_broker(b"\0inst#user\0pw-never-shown").await;
        let conn = Connection::connect(&addr, &settings()).await.unwrap();
        assert_eq!(conn.versions().negotiate_key(3), Some(2));
        assert!(conn
            .version_of::<kafka_protocol::messages::ProduceRequest>()
            .is_err());
    }

    #[tokio::test]
    async fn raw_token_refusal_is_an_authentication_error() {
        let addr = old_broker(b"something else").await;
        let err = Connection::connect(&addr, &settings()).await.unwrap_err();
        match err {
            Error::Authentication {
                broker, mechanism, ..
            } => {
                assert_eq!(
                    (broker.as_str(), mechanism.as_str()),
                    (addr.as_str(), "PLAIN")
                );
            }
            other => panic!("expected an authentication error, got {other:?}"),
        }
    }
}
