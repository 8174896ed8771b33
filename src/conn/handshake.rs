//! The start of every connection: ApiVersions, then SASL when configured.

use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::{
    ApiVersionsRequest, ApiVersionsResponse, SaslAuthenticateRequest, SaslHandshakeRequest,
};
use kafka_protocol::protocol::{HeaderVersion, StrBytes};

use tokio::time::Instant;

use super::wire::{Exclusive, Wire};
use super::{Connection, Credentials, Sasl};
use crate::error::{Error, KafkaCode, Resource};
use crate::protocol::api::ApiRequest;
use crate::protocol::codes;
use crate::protocol::frame::{self, RequestHead};
use crate::protocol::sasl::SaslClient;
use crate::protocol::versions::{
    parse_api_versions, ApiVersionTable, ApiVersionsAnswer, API_VERSIONS_FIRST,
};

/// Asks the broker which versions it speaks: v3 first; a broker without v3 answers
/// UNSUPPORTED_VERSION in the v0 format with its list, which is used as is (or, if empty, the
/// request is repeated at v0). Each request may take `timeout` (`api.version.request.timeout.ms`).
pub(super) async fn api_versions(wire: &Wire, timeout: Duration) -> Result<ApiVersionTable, Error> {
    let mut version = API_VERSIONS_FIRST;
    loop {
        let request = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("purekafka"))
            .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")));
        let body =
            frame::encode_body(&request, version).map_err(|e| Error::protocol(wire.broker(), e))?;
        let head = RequestHead::of::<ApiVersionsRequest>(version);
        // Connection::connect bounds the whole handshake by socket.connection.setup.timeout.ms.
        let response = wire
            .call(
                head,
                ApiVersionsResponse::header_version(version),
                body.into(),
                Some(tokio::time::Instant::now() + timeout),
            )
            .await?;
        match parse_api_versions(&response, version)
            .map_err(|e| Error::protocol(wire.broker(), e))?
        {
            ApiVersionsAnswer::Table(table) => return Ok(table),
            ApiVersionsAnswer::RetryAtV0 => version = 0,
            ApiVersionsAnswer::Error(code) => {
                return Err(Error::Broker {
                    api: "ApiVersions",
                    resource: Resource::Broker(wire.broker().to_owned()),
                    code: KafkaCode::from_code(code).expect("non-zero"),
                    message: None,
                })
            }
        }
    }
}

/// What a SASL exchange ended with: the session the broker granted.
#[derive(Debug, Clone, Copy)]
pub(super) struct Session {
    /// When the exchange began, before the broker started the session's clock.
    pub began: Instant,
    /// When the SaslHandshake was answered, after the broker took it: the broker refuses to
    /// begin another re-authentication within a second of that.
    pub handshake_answered: Instant,
    /// How long the broker keeps the session (KIP-368's `session_lifetime_ms`), when it
    /// closes connections whose session expired; the client re-authenticates before then.
    pub lifetime: Option<Duration>,
}

/// Where the requests of a SASL exchange go: a new connection's ordinary requests, or, to
/// re-authenticate, the write half held for the exchange.
pub(super) trait SaslChannel {
    /// Sends `request` at `version` and waits for its answer (`socket.timeout.ms`).
    async fn call<R: ApiRequest>(
        &mut self,
        request: &R,
        version: i16,
    ) -> Result<R::Response, Error>;

    /// Sends a raw token (brokers before SaslAuthenticate) and returns the raw answer.
    async fn call_raw(&mut self, token: Bytes) -> Result<Bytes, Error>;
}

/// A new connection: nothing else is sent on it until it is authenticated.
struct Fresh<'a>(&'a Connection);

impl SaslChannel for Fresh<'_> {
    async fn call<R: ApiRequest>(
        &mut self,
        request: &R,
        version: i16,
    ) -> Result<R::Response, Error> {
        self.0
            .request_at(request, version, self.0.socket_timeout())
            .await
    }

    async fn call_raw(&mut self, token: Bytes) -> Result<Bytes, Error> {
        self.0.wire.call_raw(token).await
    }
}

/// A connection in use, its write half held while it re-authenticates.
struct Held<'a> {
    conn: &'a Connection,
    exclusive: Exclusive,
}

impl SaslChannel for Held<'_> {
    async fn call<R: ApiRequest>(
        &mut self,
        request: &R,
        version: i16,
    ) -> Result<R::Response, Error> {
        let body = frame::encode_body(request, version)
            .map_err(|e| Error::protocol(self.conn.broker(), e))?;
        let head = RequestHead::of::<R>(version);
        let deadline = Instant::now() + self.conn.socket_timeout();
        let response = self
            .exclusive
            .call(
                head,
                R::Response::header_version(version),
                body.into(),
                deadline,
            )
            .await?;
        self.conn.decode::<R>(response, version)
    }

    /// Never reached: a session with a lifetime comes from SaslAuthenticate.
    async fn call_raw(&mut self, _: Bytes) -> Result<Bytes, Error> {
        Err(Error::Authentication {
            broker: self.conn.broker().to_owned(),
            mechanism: "none".to_owned(),
            message: "re-authentication needs SaslAuthenticate, which the broker lacks".to_owned(),
        })
    }
}

/// Authenticates a new connection.
pub(super) async fn authenticate(conn: &Connection, sasl: &Sasl) -> Result<Session, Error> {
    let client = sasl_client(conn.broker(), sasl).await?;
    exchange(conn, &mut Fresh(conn), sasl, client).await
}

/// Authenticates a connection in use again with `client`, before its session expires
/// (KIP-368). The write half is held for the exchange, so that no request comes between its
/// messages, and the requests already written are answered first, so that the exchange's own
/// time starts once the broker can take it: requests sent meanwhile wait.
pub(super) async fn reauthenticate(
    conn: &Connection,
    sasl: &Sasl,
    client: SaslClient,
) -> Result<Session, Error> {
    let mut exclusive = conn.wire.exclusive().await;
    exclusive.drained().await;
    let mut held = Held { conn, exclusive };
    match exchange(conn, &mut held, sasl, client).await {
        Ok(session) => {
            held.exclusive.finish();
            Ok(session)
        }
        Err(e) => {
            // The broker closes the connection after a failed exchange: its requests in flight
            // fail with this cause (before the held write half, dropped unfinished, says less).
            conn.poison(e.clone());
            Err(e)
        }
    }
}

/// How an authentication error begins when the token source had no token.
pub(super) const NO_TOKEN: &str = "no OAUTHBEARER token";

/// The mechanism's client, with the current token for OAUTHBEARER.
pub(super) async fn sasl_client(broker: &str, sasl: &Sasl) -> Result<SaslClient, Error> {
    let auth_error = |message: String| Error::Authentication {
        broker: broker.to_owned(),
        mechanism: sasl.mechanism.name().to_owned(),
        message,
    };
    match &sasl.credentials {
        Credentials::Password { username, password } => {
            // The user name is not a secret (the broker logs it too); the password never
            // leaves the client but in the token sent.
            tracing::trace!(broker, mechanism = sasl.mechanism.name(), username = %username, "SASL handshake");
            SaslClient::new(sasl.mechanism, username, password.expose())
                .map_err(|e| auth_error(e.to_string()))
        }
        Credentials::Token(source) => {
            let token = source
                .current()
                .await
                .map_err(|e| auth_error(format!("{NO_TOKEN}: {e}")))?;
            tracing::trace!(broker, principal = token.principal(), "SASL handshake");
            Ok(SaslClient::oauthbearer(token.value(), token.extensions()))
        }
    }
}

/// Runs the SASL exchange: SaslHandshake, then the mechanism's tokens in SaslAuthenticate
/// requests, or as raw frames when the broker predates SaslAuthenticate (Kafka before 1.0).
async fn exchange(
    conn: &Connection,
    channel: &mut impl SaslChannel,
    sasl: &Sasl,
    mut client: SaslClient,
) -> Result<Session, Error> {
    let broker = conn.broker().to_owned();
    let auth_error = |message: String| Error::Authentication {
        broker: broker.clone(),
        mechanism: sasl.mechanism.name().to_owned(),
        message,
    };
    let began = Instant::now();
    let handshake_version = conn.version_of::<SaslHandshakeRequest>()?;
    let request = SaslHandshakeRequest::default()
        .with_mechanism(StrBytes::from_static_str(client.mechanism()));
    let response = channel.call(&request, handshake_version).await?;
    let handshake_answered = Instant::now();
    match response.error_code {
        0 => {}
        codes::UNSUPPORTED_SASL_MECHANISM => {
            let offered: Vec<&str> = response.mechanisms.iter().map(|m| m.as_str()).collect();
            return Err(auth_error(format!(
                "the broker's listener does not enable this mechanism \
                 (UNSUPPORTED_SASL_MECHANISM); it enables [{}]",
                offered.join(", ")
            )));
        }
        codes::ILLEGAL_SASL_STATE => {
            return Err(auth_error(
                "the broker refused SaslHandshake with ILLEGAL_SASL_STATE: the listener does not \
                 expect SASL, as a PLAINTEXT listener does not. security.protocol is \
                 SASL_PLAINTEXT; use PLAINTEXT, or the broker's SASL listener"
                    .to_owned(),
            ))
        }
        code => {
            return Err(auth_error(format!(
                "SaslHandshake failed with error code {code}"
            )))
        }
    }
    let authenticate_version = conn.versions().negotiate::<SaslAuthenticateRequest>();
    let mut token = Bytes::copy_from_slice(client.initial_response());
    let mut lifetime = None;
    loop {
        let server = match authenticate_version {
            Some(version) if handshake_version >= 1 => {
                let request = SaslAuthenticateRequest::default().with_auth_bytes(token);
                let response = channel.call(&request, version).await?;
                if response.error_code != 0 {
                    let mut message = response
                        .error_message
                        .map(|m| m.to_string())
                        .unwrap_or_else(|| format!("error code {}", response.error_code));
                    // OAUTHBEARER: the broker's JSON error, which Kafka repeats as the
                    // message.
                    if let Some(refusal) = client.refusal() {
                        message = match message.contains(refusal) {
                            true => format!("the broker refused the token: {message}"),
                            false => format!("{message} (the broker refused the token: {refusal})"),
                        };
                    }
                    return Err(auth_error(message));
                }
                // v1 and later: how long the session lasts, 0 for as long as the connection.
                lifetime = u64::try_from(response.session_lifetime_ms)
                    .ok()
                    .filter(|ms| *ms > 0)
                    .map(Duration::from_millis);
                response.auth_bytes
            }
            _ => channel.call_raw(token).await.map_err(|e| match e {
                // Brokers answer failed raw-token authentication by closing the connection.
                Error::Io { .. } => {
                    auth_error("the broker closed the connection during authentication".to_owned())
                }
                other => other,
            })?,
        };
        match client
            .step(&server)
            .map_err(|e| auth_error(e.to_string()))?
        {
            Some(next) => token = Bytes::from(next),
            None => {
                tracing::debug!(broker = %broker, mechanism = sasl.mechanism.name(), session_lifetime_ms = lifetime.map(|l| l.as_millis() as u64), "authenticated");
                return Ok(Session {
                    began,
                    handshake_answered,
                    lifetime,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    //! Refusals of the SASL handshake, from a scripted broker on a loopback socket.

    use std::time::Duration;

    use bytes::{BufMut, BytesMut};
    use tokio::net::TcpListener;

    use super::*;
    use crate::conn::scripted::{read_frame, settings, write_frame, PASSWORD};

    /// A broker that offers SaslHandshake v1 and SaslAuthenticate, and answers the handshake
    /// with `code` and the mechanisms `enabled`. Returns its address and the number of
    /// connections it took, once it stops listening after a second.
    async fn refusing_broker(
        code: i16,
        enabled: &'static [&'static str],
    ) -> (String, tokio::task::JoinHandle<usize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let task = tokio::spawn(async move {
            let mut accepted = 0;
            let deadline = tokio::time::sleep(Duration::from_secs(1));
            tokio::pin!(deadline);
            loop {
                let mut sock = tokio::select! {
                    conn = listener.accept() => conn.unwrap().0,
                    _ = &mut deadline => return accepted,
                };
                accepted += 1;
                // ApiVersions v3: UNSUPPORTED_VERSION with the list in the v0 layout.
                let request = read_frame(&mut sock).await;
                let mut answer = BytesMut::new();
                answer.put_slice(&request[4..8]);
                answer.put_i16(35);
                answer.put_i32(3);
                for (key, min, max) in [(18i16, 0i16, 0i16), (17, 0, 1), (36, 0, 2)] {
                    answer.put_i16(key);
                    answer.put_i16(min);
                    answer.put_i16(max);
                }
                write_frame(&mut sock, &answer).await;
                let request = read_frame(&mut sock).await;
                assert_eq!(&request[..4], &[0, 17, 0, 1], "SaslHandshake v1");
                let mut answer = BytesMut::new();
                answer.put_slice(&request[4..8]);
                answer.put_i16(code);
                answer.put_i32(enabled.len() as i32);
                for mechanism in enabled {
                    answer.put_i16(mechanism.len() as i16);
                    answer.put_slice(mechanism.as_bytes());
                }
                write_frame(&mut sock, &answer).await;
            }
        });
        (addr, task)
    }

    #[tokio::test]
    async fn a_mechanism_the_listener_lacks_names_what_it_enables() {
        let (addr, broker) = refusing_broker(
            codes::UNSUPPORTED_SASL_MECHANISM,
            &["SCRAM-SHA-256", "SCRAM-SHA-512"],
        )
        .await;
        let err = Connection::connect(&addr, &settings()).await.unwrap_err();
        let Error::Authentication {
            mechanism, message, ..
        } = &err
        else {
            panic!("expected an authentication error, got {err:?}");
        };
        assert_eq!(mechanism, "PLAIN");
        assert!(
            message.contains("does not enable this mechanism")
                && message.contains("[SCRAM-SHA-256, SCRAM-SHA-512]"),
            "{message}"
        );
        assert!(!format!("{err} {err:?}").contains(PASSWORD));
        assert_eq!(broker.await.unwrap(), 1);
    }

    #[tokio::test]
    async fn sasl_on_a_listener_without_it_says_so() {
        let (addr, _broker) = refusing_broker(codes::ILLEGAL_SASL_STATE, &[]).await;
        let err = Connection::connect(&addr, &settings()).await.unwrap_err();
        assert!(matches!(err, Error::Authentication { .. }), "{err:?}");
        let shown = err.to_string();
        assert!(
            shown.contains("ILLEGAL_SASL_STATE") && shown.contains("use PLAINTEXT"),
            "{shown}"
        );
    }
}
