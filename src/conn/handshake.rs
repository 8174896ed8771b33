//! The start of every connection: ApiVersions, then SASL when configured.

use bytes::Bytes;
use kafka_protocol::messages::{
    ApiVersionsRequest, ApiVersionsResponse, SaslAuthenticateRequest, SaslHandshakeRequest,
};
use kafka_protocol::protocol::{HeaderVersion, StrBytes};

use super::wire::Wire;
use super::Connection;
use crate::config::SaslConfig;
use crate::error::Error;
use crate::protocol::codes;
use crate::protocol::frame::{self, RequestHead};
use crate::protocol::sasl::SaslClient;
use crate::protocol::versions::{
    parse_api_versions, ApiVersionTable, ApiVersionsAnswer, API_VERSIONS_FIRST,
};

/// Asks the broker which versions it speaks: v3 first; a broker without v3 answers
/// UNSUPPORTED_VERSION in the v0 format with its list, which is used as is (or, if empty, the
/// request is repeated at v0).
pub(super) async fn api_versions(wire: &Wire) -> Result<ApiVersionTable, Error> {
    let mut version = API_VERSIONS_FIRST;
    loop {
        let request = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("purekafka"))
            .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")));
        let body =
            frame::encode_body(&request, version).map_err(|e| Error::protocol(wire.broker(), e))?;
        let head = RequestHead::of::<ApiVersionsRequest>(version);
        // Connection::connect bounds the whole handshake by socket.timeout.ms.
        let response = wire
            .call(
                head,
                ApiVersionsResponse::header_version(version),
                body.into(),
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
                    resource: wire.broker().to_owned(),
                    code: crate::KafkaCode::from_code(code).expect("non-zero"),
                    message: None,
                })
            }
        }
    }
}

/// Runs the SASL exchange: SaslHandshake, then the mechanism's tokens in SaslAuthenticate
/// requests, or as raw frames when the broker predates SaslAuthenticate (Kafka before 1.0).
pub(super) async fn authenticate(conn: &Connection, sasl: &SaslConfig) -> Result<(), Error> {
    let mut client = SaslClient::new(sasl.mechanism, &sasl.username, sasl.password.expose());
    let broker = conn.broker().to_owned();
    let auth_error = |message: String| Error::Authentication {
        broker: broker.clone(),
        mechanism: sasl.mechanism.name().to_owned(),
        message,
    };
    let handshake_version = conn.version_of::<SaslHandshakeRequest>()?;
    let request = SaslHandshakeRequest::default()
        .with_mechanism(StrBytes::from_static_str(client.mechanism()));
    let response = conn
        .request_at(&request, handshake_version, conn.request_timeout())
        .await?;
    match response.error_code {
        0 => {}
        codes::UNSUPPORTED_SASL_MECHANISM => {
            let offered: Vec<&str> = response.mechanisms.iter().map(|m| m.as_str()).collect();
            return Err(auth_error(format!(
                "the broker does not enable this mechanism; it offers [{}]",
                offered.join(", ")
            )));
        }
        codes::ILLEGAL_SASL_STATE => {
            return Err(auth_error(
                "the listener does not expect SASL (is it a PLAINTEXT listener?)".to_owned(),
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
    loop {
        let server = match authenticate_version {
            Some(version) if handshake_version >= 1 => {
                let request = SaslAuthenticateRequest::default().with_auth_bytes(token);
                let response = conn
                    .request_at(&request, version, conn.request_timeout())
                    .await?;
                if response.error_code != 0 {
                    let message = response
                        .error_message
                        .map(|m| m.to_string())
                        .unwrap_or_else(|| format!("error code {}", response.error_code));
                    return Err(auth_error(message));
                }
                response.auth_bytes
            }
            _ => conn.wire.call_raw(token).await.map_err(|e| match e {
                // Brokers answer failed raw-token authentication by closing the connection.
                Error::Io { .. } => {
                    auth_error("the broker closed the connection during authentication".to_owned())
                }
                other => other,
            })?,
        };
        match client.step(&server).map_err(auth_error)? {
            Some(next) => token = Bytes::from(next),
            None => return Ok(()),
        }
    }
}
