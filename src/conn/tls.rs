//! TLS for `security.protocol` SSL and SASL_SSL (the `tls` feature): rustls on ring, reached
//! through tokio-rustls.
//!
//! ```text
//!  TlsConfig (ssl.*) ──Tls::new──► rustls ClientConfig (trust, client cert, verifier), once
//!  TcpStream ──Tls::connect(addr)──► TlsStream ──tokio::io::split──► Wire's reader and writer
//! ```
//!
//! Files are read when the client is built, so a missing or unreadable one, or a password that
//! does not open it, is a [`ConfigError`] naming its key; encrypted keys and PKCS#12 stores are
//! read in [`keys`]. Certificate failures and the broker's TLS alerts become
//! [`Error::Tls`]; another broker or attempt would fail the same way, so the client does not
//! retry them.

use std::borrow::Cow;
use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::{AlertDescription, CertificateError, DigitallySignedStruct, RootCertStore};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use crate::config::{StoreType, TlsConfig};
use crate::error::{ConfigError, Error};

mod keys;

use keys::{Origin, Store};

/// The TLS side of every connection of a client: its rustls configuration, made once.
#[derive(Clone)]
pub(crate) struct Tls {
    connector: TlsConnector,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tls")
    }
}

impl Tls {
    /// Reads the certificates and key `config` names and makes the rustls configuration.
    pub fn new(config: &TlsConfig) -> Result<Tls, ConfigError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = verifier(config, provider.clone())?;
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| ConfigError::Conflict(format!("TLS: {e}")))?
            .dangerous()
            .with_custom_certificate_verifier(verifier);
        let tls = match client_identity(config)? {
            Some((chain, key)) => builder.with_client_auth_cert(chain, key).map_err(|e| {
                let (key, value) = match &config.keystore_location {
                    Some(path) => ("ssl.keystore.location", path.display().to_string()),
                    None => ("ssl.key.location", describe(&config.key_location)),
                };
                ConfigError::InvalidValue {
                    key: key.into(),
                    value,
                    reason: format!("the key does not fit the certificate: {e}"),
                }
            })?,
            None => builder.with_no_client_auth(),
        };
        Ok(Tls {
            connector: TlsConnector::from(Arc::new(tls)),
        })
    }

    /// The TLS handshake with the broker at `addr` (`host:port`) over `tcp`. The certificate is
    /// checked against `host`; an IP address is checked as one.
    pub async fn connect(&self, addr: &str, tcp: TcpStream) -> Result<TlsStream<TcpStream>, Error> {
        let host = host_of(addr);
        let name = ServerName::try_from(host.to_owned()).map_err(|_| Error::Tls {
            broker: addr.to_owned(),
            message: format!("{host:?} is neither a DNS name nor an IP address"),
        })?;
        self.connector
            .connect(name, tcp)
            .await
            .map_err(|e| handshake_error(addr, e))
    }
}

/// `host` of `host:port`, without the brackets of an IPv6 address.
fn host_of(addr: &str) -> &str {
    let host = addr.rsplit_once(':').map_or(addr, |(host, _)| host);
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
}

/// The TLS failure inside an I/O error, if it holds one: a certificate, an alert or a cipher
/// mismatch. `first` says no record had been read on the connection yet: a record that does not
/// decrypt is then most likely the broker's refusal of the session.
pub(crate) fn tls_error(broker: &str, error: &std::io::Error, first: bool) -> Option<Error> {
    let message = match error.get_ref()?.downcast_ref::<rustls::Error>()? {
        rustls::Error::InvalidCertificate(e) => certificate_message(e),
        rustls::Error::AlertReceived(alert) => alert_message(*alert),
        e @ rustls::Error::PeerIncompatible(_) => {
            format!("the broker shares no TLS version or cipher suite with purekafka: {e}")
        }
        // Kafka 2.8 (on Java 17) answers a TLS 1.3 client that lacks the certificate it
        // requires with a record that does not decrypt, not with an alert that reads.
        rustls::Error::DecryptError if first => format!(
            "the broker's first TLS record after the handshake could not be decrypted, which is \
             how some brokers refuse the session{}",
            alert_hint(AlertDescription::CertificateRequired)
        ),
        // Kafka 2.4 (on Java 17) answers it with a handshake message out of place (a second
        // ServerHello where TLS 1.3 allows only a NewSessionTicket).
        e @ rustls::Error::InappropriateHandshakeMessage { .. } if first => format!(
            "the broker's first TLS message after the handshake was out of place ({e}), which \
             is how some brokers refuse the session{}",
            alert_hint(AlertDescription::CertificateRequired)
        ),
        _ => return None,
    };
    Some(Error::Tls {
        broker: broker.to_owned(),
        message,
    })
}

/// The error for a failed TLS handshake: a TLS failure, or a listener without TLS closing
/// the connection on the ClientHello.
fn handshake_error(broker: &str, error: std::io::Error) -> Error {
    if let Some(tls) = tls_error(broker, &error, true) {
        return tls;
    }
    match error.kind() {
        // A TLS failure, like a refused certificate: waiting and trying again does not mend
        // it, and building a client fails on it.
        std::io::ErrorKind::UnexpectedEof => Error::Tls {
            broker: broker.to_owned(),
            message: "the broker closed the connection during the TLS handshake: a listener \
                      without TLS does that; security.protocol is SSL or SASL_SSL, so use the \
                      broker's SSL or SASL_SSL listener, or PLAINTEXT / SASL_PLAINTEXT"
                .to_owned(),
        },
        _ => Error::Io {
            broker: broker.to_owned(),
            message: error.to_string(),
            outcome_unknown: false,
        },
    }
}

fn certificate_message(error: &CertificateError) -> String {
    let hint = match error {
        CertificateError::UnknownIssuer => {
            "; it is not signed by a CA in ssl.ca.location / ssl.ca.pem (or, with neither, \
             in the system's trust store)"
        }
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            "; ssl.endpoint.identification.algorithm=none skips the check of the name only"
        }
        _ => "",
    };
    format!("the broker's certificate was refused: {error}{hint}")
}

fn alert_message(alert: AlertDescription) -> String {
    format!(
        "the broker ended the TLS session with the alert {alert:?}{}",
        alert_hint(alert)
    )
}

fn alert_hint(alert: AlertDescription) -> &'static str {
    match alert {
        AlertDescription::CertificateRequired
        | AlertDescription::BadCertificate
        | AlertDescription::UnknownCA
        | AlertDescription::HandshakeFailure => {
            ": does the listener require a client certificate (ssl.client.auth=required)? \
             Set ssl.certificate.location and ssl.key.location to one its truststore accepts"
        }
        _ => "",
    }
}

/// How the broker's certificate is checked: against the trusted CAs, the name too unless
/// `ssl.endpoint.identification.algorithm=none`, not at all with
/// `enable.ssl.certificate.verification=false`.
fn verifier(
    config: &TlsConfig,
    provider: Arc<CryptoProvider>,
) -> Result<Arc<dyn ServerCertVerifier>, ConfigError> {
    if !config.verify_certificate {
        return Ok(Arc::new(Lenient {
            chain: None,
            provider,
        }));
    }
    let roots = trusted_roots(config)?;
    let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| ConfigError::InvalidValue {
            key: "ssl.ca.location".into(),
            value: describe(&config.ca_location),
            reason: e.to_string(),
        })?;
    Ok(if config.verify_hostname {
        webpki
    } else {
        Arc::new(Lenient {
            chain: Some(webpki),
            provider,
        })
    })
}

/// The CAs of `ssl.ca.location` and `ssl.ca.pem`, or the system's when neither is set.
fn trusted_roots(config: &TlsConfig) -> Result<RootCertStore, ConfigError> {
    let mut roots = RootCertStore::empty();
    let mut add = |certs: Vec<CertificateDer<'static>>, key: &str, value: String| {
        let (added, _) = roots.add_parsable_certificates(certs);
        if added == 0 {
            return Err(ConfigError::InvalidValue {
                key: key.to_owned(),
                value,
                reason: "no usable CA certificate in it (purekafka reads PEM, \
                         -----BEGIN CERTIFICATE-----)"
                    .to_owned(),
            });
        }
        Ok(())
    };
    if let Some(path) = &config.ca_location {
        let files = if path.is_dir() {
            let entries = std::fs::read_dir(path).map_err(|e| file_error(path, e))?;
            let mut files = Vec::new();
            for entry in entries {
                let file = entry.map_err(|e| file_error(path, e))?.path();
                if file.is_file() {
                    files.push(file);
                }
            }
            files
        } else {
            vec![path.clone()]
        };
        let shown = path.display().to_string();
        let mut certs = Vec::new();
        for file in &files {
            let bytes = std::fs::read(file).map_err(|e| file_error(file, e))?;
            // A file named on its own may be a PKCS#12 truststore: by ssl.truststore.type or,
            // unset, when it is not PEM. A folder's files are PEM.
            let pkcs12 = !path.is_dir()
                && match config.truststore_type {
                    Some(kind) => kind == StoreType::Pkcs12,
                    None => !keys::is_pem(&bytes),
                };
            if pkcs12 {
                let store = Store {
                    origin: Origin {
                        key: "ssl.ca.location",
                        shown: &shown,
                    },
                    password_key: "ssl.truststore.password",
                    convert: keys::CONVERT_TRUSTSTORE,
                };
                let password = config.truststore_password.as_ref();
                certs.extend(keys::pkcs12_certificates(&bytes, store, password)?);
            } else {
                // In a folder, files that hold no certificate (an index, a key) are skipped.
                certs.extend(CertificateDer::pem_slice_iter(&bytes).filter_map(Result::ok));
            }
        }
        add(certs, "ssl.ca.location", shown)?;
    }
    if let Some(pem) = &config.ca_pem {
        let certs = CertificateDer::pem_slice_iter(pem.as_bytes()).filter_map(Result::ok);
        add(certs.collect(), "ssl.ca.pem", "[PEM text]".to_owned())?;
    }
    if config.ca_location.is_none() && config.ca_pem.is_none() {
        let system = rustls_native_certs::load_native_certs();
        let (added, _) = roots.add_parsable_certificates(system.certs);
        if added == 0 {
            let why = system
                .errors
                .first()
                .map(|e| format!(" ({e})"))
                .unwrap_or_default();
            return Err(invalid(
                "ssl.ca.location",
                "(unset)",
                format!(
                    "unset, so the system's trust store is used, and it holds no \
                     certificate{why}; set ssl.ca.location to the CA of the brokers"
                ),
            ));
        }
    }
    Ok(roots)
}

/// A client certificate chain and its private key.
type Identity = (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>);

/// The client's certificate chain and key, when one of them is configured; both must be.
fn client_identity(config: &TlsConfig) -> Result<Option<Identity>, ConfigError> {
    if let Some(path) = &config.keystore_location {
        return keystore_identity(config, path).map(Some);
    }
    let chain = pem_bytes(
        config.certificate_pem.as_deref().map(str::as_bytes),
        ("ssl.certificate.pem", "[PEM text]"),
        config.certificate_location.as_deref(),
        "ssl.certificate.location",
    )?
    .map(|pem| certificates(&pem.bytes, pem.key, &pem.shown))
    .transpose()?;
    let key = pem_bytes(
        config.key_pem.as_ref().map(|k| k.expose().as_bytes()),
        ("ssl.key.pem", "[redacted]"),
        config.key_location.as_deref(),
        "ssl.key.location",
    )?
    .map(|pem| {
        let origin = Origin {
            key: pem.key,
            shown: &pem.shown,
        };
        keys::private_key(&pem.bytes, origin, config.key_password.as_ref())
    })
    .transpose()?;
    match (chain, key) {
        (Some(chain), Some(key)) => {
            let key = keys::with_public_key(key, &chain[0]);
            Ok(Some((chain, key)))
        }
        (None, None) => Ok(None),
        (Some(_), None) => Err(ConfigError::Conflict(
            "ssl.certificate.location is set without ssl.key.location: a client certificate \
             needs its private key"
                .into(),
        )),
        (None, Some(_)) => Err(ConfigError::Conflict(
            "ssl.key.location is set without ssl.certificate.location: a client key needs its \
             certificate"
                .into(),
        )),
    }
}

/// The chain and key of `ssl.keystore.location`: a PEM file holding both (Java's PEM keystore)
/// or a PKCS#12 store (librdkafka's keystore), as `ssl.keystore.type` says or, unset, as the
/// file's contents show.
fn keystore_identity(config: &TlsConfig, path: &Path) -> Result<Identity, ConfigError> {
    let others = [
        ("ssl.key.location", config.key_location.is_some()),
        ("ssl.key.pem", config.key_pem.is_some()),
        (
            "ssl.certificate.location",
            config.certificate_location.is_some(),
        ),
        ("ssl.certificate.pem", config.certificate_pem.is_some()),
    ];
    if let Some((other, _)) = others.iter().find(|(_, set)| *set) {
        return Err(ConfigError::Conflict(format!(
            "ssl.keystore.location and {other} both name the client's key or certificate; \
             set one of them"
        )));
    }
    let bytes = std::fs::read(path).map_err(|e| file_error(path, e))?;
    let shown = path.display().to_string();
    let origin = Origin {
        key: "ssl.keystore.location",
        shown: &shown,
    };
    let pem = match config.keystore_type {
        Some(kind) => kind == StoreType::Pem,
        None => keys::is_pem(&bytes),
    };
    if pem {
        let chain = certificates(&bytes, origin.key, origin.shown)?;
        let key = keys::private_key(&bytes, origin, config.key_password.as_ref())?;
        let key = keys::with_public_key(key, &chain[0]);
        return Ok((chain, key));
    }
    let store = Store {
        origin,
        password_key: "ssl.keystore.password",
        convert: keys::CONVERT_KEYSTORE,
    };
    keys::pkcs12_identity(&bytes, store, config.keystore_password.as_ref())
}

/// The PEM bytes of a setting, with the key and value to name in errors about them.
struct Pem<'a> {
    bytes: Cow<'a, [u8]>,
    key: &'static str,
    shown: String,
}

/// A PEM setting's bytes, given inline (`inline`, named and shown as `inline_names` says) or as
/// a file (`location`, under `location_key`).
fn pem_bytes<'a>(
    inline: Option<&'a [u8]>,
    inline_names: (&'static str, &'static str),
    location: Option<&Path>,
    location_key: &'static str,
) -> Result<Option<Pem<'a>>, ConfigError> {
    Ok(match (inline, location) {
        (Some(pem), _) => Some(Pem {
            bytes: Cow::Borrowed(pem),
            key: inline_names.0,
            shown: inline_names.1.to_owned(),
        }),
        (None, Some(path)) => Some(Pem {
            bytes: Cow::Owned(std::fs::read(path).map_err(|e| file_error(path, e))?),
            key: location_key,
            shown: path.display().to_string(),
        }),
        (None, None) => None,
    })
}

fn certificates(
    pem: &[u8],
    key: &str,
    value: &str,
) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    let chain: Vec<_> = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<_, _>>()
        .map_err(|e| invalid(key, value, format!("not PEM certificates: {e}")))?;
    if chain.is_empty() {
        return Err(invalid(key, value, "no PEM certificate in it".to_owned()));
    }
    Ok(chain)
}

fn invalid(key: &str, value: &str, reason: String) -> ConfigError {
    ConfigError::InvalidValue {
        key: key.to_owned(),
        value: value.to_owned(),
        reason,
    }
}

fn file_error(path: &Path, error: std::io::Error) -> ConfigError {
    ConfigError::File {
        path: path.display().to_string(),
        reason: error.to_string(),
    }
}

fn describe(path: &Option<std::path::PathBuf>) -> String {
    path.as_ref()
        .map_or_else(|| "(unset)".to_owned(), |p| p.display().to_string())
}

/// The verifier of `ssl.endpoint.identification.algorithm=none` (`chain` set: the chain is
/// checked as usual, only a certificate for another name is accepted) and of
/// `enable.ssl.certificate.verification=false` (no chain: any certificate is accepted). Either
/// way the handshake's signatures are checked, so the session is with whoever holds the
/// certificate's key.
#[derive(Debug)]
struct Lenient {
    chain: Option<Arc<WebPkiServerVerifier>>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Lenient {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(chain) = &self.chain else {
            return Ok(ServerCertVerified::assertion());
        };
        match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.provider.signature_verification_algorithms;
        verify_tls12_signature(message, cert, dss, algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.provider.signature_verification_algorithms;
        verify_tls13_signature(message, cert, dss, algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// The rustls configuration for the OIDC token endpoint (`https.ca.location`, `https.ca.pem`,
/// else the system's CAs), on ring as the brokers' connections are, its certificate checked
/// against the endpoint's host name.
#[cfg(feature = "oidc")]
pub(crate) fn https_config(
    ca_location: &Option<std::path::PathBuf>,
    ca_pem: &Option<String>,
) -> Result<rustls::ClientConfig, ConfigError> {
    // PEM only, as librdkafka reads https.ca.location: never taken for a PKCS#12 store.
    let settings = TlsConfig {
        ca_location: ca_location.clone(),
        ca_pem: ca_pem.clone(),
        truststore_type: Some(StoreType::Pem),
        ..TlsConfig::default()
    };
    // The same checks as for the brokers' CAs, reported under the https.* names.
    let renamed = |e: ConfigError| match e {
        ConfigError::InvalidValue { key, value, reason } => ConfigError::InvalidValue {
            key: key.replacen("ssl.", "https.", 1),
            value,
            reason,
        },
        other => other,
    };
    let roots = trusted_roots(&settings).map_err(renamed)?;
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| ConfigError::Conflict(format!("TLS: {e}")))
        .map(|builder| builder.with_root_certificates(roots).with_no_client_auth())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_of_addresses() {
        assert_eq!(host_of("broker-1.example:9093"), "broker-1.example");
        assert_eq!(host_of("127.0.0.1:9093"), "127.0.0.1");
        assert_eq!(host_of("[::1]:9093"), "::1");
    }

    #[test]
    fn files_that_are_missing_or_not_pem_name_their_key() {
        let mut config = TlsConfig {
            ca_location: Some("/nonexistent/ca.pem".into()),
            ..TlsConfig::default()
        };
        let err = Tls::new(&config).unwrap_err();
        assert!(
            matches!(&err, ConfigError::File { path, .. } if path == "/nonexistent/ca.pem"),
            "{err}"
        );

        config.ca_location = None;
        config.ca_pem = Some("not a certificate".into());
        let err = Tls::new(&config).unwrap_err();
        assert!(
            matches!(&err, ConfigError::InvalidValue { key, .. } if key == "ssl.ca.pem"),
            "{err}"
        );
    }

    #[test]
    fn a_client_key_without_its_certificate_is_refused() {
        let config = TlsConfig {
            key_pem: Some(crate::config::Secret::new(
                "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
            )),
            verify_certificate: false,
            ..TlsConfig::default()
        };
        let err = Tls::new(&config).unwrap_err();
        assert!(
            err.to_string().contains("ssl.certificate.location"),
            "{err}"
        );
        assert!(
            !format!("{err} {err:?}").contains("AAAA"),
            "the key is never shown"
        );
    }
}
