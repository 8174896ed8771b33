//! TLS settings (`ssl.*`) for `security.protocol` SSL and SASL_SSL, under librdkafka's names and,
//! for PEM stores, the Java client's.
//!
//! Only settings live here: the files are read, and the rustls configuration made, when a client
//! is built (`conn::tls`), so that a missing or unreadable file is reported then, by its key.

use std::path::PathBuf;

use super::properties::Value;
use super::Secret;
use crate::error::ConfigError;

/// TLS settings, used when `security.protocol` is `SSL` or `SASL_SSL` (the `tls` feature).
///
/// Certificates and keys are PEM, from a file or inline. With neither `ssl.ca.location` nor
/// `ssl.ca.pem`, the system's trust store is used, as librdkafka uses OpenSSL's.
///
/// ```
/// use purekafka::ClientConfig;
/// # fn main() -> Result<(), purekafka::ConfigError> {
/// let config = ClientConfig::new()
///     .set("ssl.ca.location", "/etc/kafka/ca.pem")?
///     .set("ssl.endpoint.identification.algorithm", "none")?;
/// assert!(!config.common.tls.verify_hostname);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TlsConfig {
    /// `ssl.ca.location` (Java: `ssl.truststore.location` with `ssl.truststore.type=PEM`): a PEM
    /// file of trusted CA certificates, or a folder of such files. `probe` means the system's
    /// trust store, as when unset.
    pub ca_location: Option<PathBuf>,
    /// `ssl.ca.pem` (Java: `ssl.truststore.certificates`): trusted CA certificates as PEM text.
    pub ca_pem: Option<String>,
    /// `ssl.certificate.location`: the client's certificate chain (PEM), for listeners that
    /// require client authentication (`ssl.client.auth=required`).
    pub certificate_location: Option<PathBuf>,
    /// `ssl.certificate.pem` (Java: `ssl.keystore.certificate.chain`): the same as PEM text.
    pub certificate_pem: Option<String>,
    /// `ssl.key.location`: the client's private key (PEM: PKCS#8, PKCS#1 or SEC1, unencrypted).
    /// Java's `ssl.keystore.location` with `ssl.keystore.type=PEM` sets this and
    /// `certificate_location` to the same file.
    pub key_location: Option<PathBuf>,
    /// `ssl.key.pem` (Java: `ssl.keystore.key`): the private key as PEM text. Never printed.
    pub key_pem: Option<Secret>,
    /// `ssl.endpoint.identification.algorithm`: `https` (the default) checks that the broker's
    /// certificate names the host connected to; `none` (or empty) skips that check only.
    pub verify_hostname: bool,
    /// `enable.ssl.certificate.verification`: `false` accepts any certificate the broker shows,
    /// trusting the network instead. For tests against throwaway brokers only.
    pub verify_certificate: bool,
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig {
            ca_location: None,
            ca_pem: None,
            certificate_location: None,
            certificate_pem: None,
            key_location: None,
            key_pem: None,
            verify_hostname: true,
            verify_certificate: true,
        }
    }
}

/// Applies `v` when it is a TLS property: `Ok(false)` when it is not one.
pub(super) fn apply(tls: &mut TlsConfig, v: &Value) -> Result<bool, ConfigError> {
    let path = || Some(PathBuf::from(v.value));
    match v.key {
        "ssl.ca.location" | "ssl.truststore.location" => {
            tls.ca_location = (v.value != "probe").then(|| PathBuf::from(v.value));
        }
        "ssl.ca.pem" | "ssl.truststore.certificates" => tls.ca_pem = Some(v.value.to_owned()),
        "ssl.certificate.location" => tls.certificate_location = path(),
        "ssl.certificate.pem" | "ssl.keystore.certificate.chain" => {
            tls.certificate_pem = Some(v.value.to_owned())
        }
        "ssl.key.location" => tls.key_location = path(),
        "ssl.keystore.location" => {
            tls.certificate_location = path();
            tls.key_location = path();
        }
        "ssl.key.pem" | "ssl.keystore.key" => tls.key_pem = Some(Secret::new(v.value)),
        "ssl.truststore.type" | "ssl.keystore.type" => {
            if !v.value.eq_ignore_ascii_case("PEM") {
                return Err(v.invalid(
                    "purekafka reads PEM only; convert a JKS or PKCS12 store to PEM \
                     (keytool -exportcert -rfc, openssl pkcs12 -nodes) and set PEM",
                ));
            }
        }
        "ssl.endpoint.identification.algorithm" => {
            tls.verify_hostname = match v.value.to_ascii_lowercase().as_str() {
                "https" => true,
                "none" | "" => false,
                _ => return Err(v.invalid("expected https or none")),
            }
        }
        "enable.ssl.certificate.verification" => tls.verify_certificate = v.boolean()?,
        _ => return Ok(false),
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use crate::config::{ClientConfig, SecurityProtocol};
    use crate::error::ConfigError;

    fn set(key: &str, value: &str) -> Result<ClientConfig, ConfigError> {
        ClientConfig::new().set(key, value)
    }

    #[test]
    fn librdkafka_and_java_names_set_the_same_settings() {
        let tls = set("ssl.ca.location", "/ca.pem").unwrap().common.tls;
        assert_eq!(tls.ca_location.as_deref(), Some("/ca.pem".as_ref()));
        let tls = set("ssl.truststore.location", "/ca.pem")
            .unwrap()
            .common
            .tls;
        assert_eq!(tls.ca_location.as_deref(), Some("/ca.pem".as_ref()));
        assert_eq!(
            set("ssl.ca.location", "probe")
                .unwrap()
                .common
                .tls
                .ca_location,
            None
        );
        // Java's PEM keystore is one file holding the key and its chain.
        let tls = set("ssl.keystore.location", "/client.pem")
            .unwrap()
            .common
            .tls;
        assert_eq!(tls.key_location, tls.certificate_location);
        assert!(set("ssl.keystore.type", "PEM").is_ok());
        for (value, on) in [("https", true), ("none", false), ("", false)] {
            let tls = set("ssl.endpoint.identification.algorithm", value)
                .unwrap()
                .common
                .tls;
            assert_eq!(tls.verify_hostname, on, "{value:?}");
        }
        let tls = set("enable.ssl.certificate.verification", "false")
            .unwrap()
            .common
            .tls;
        assert!(!tls.verify_certificate);
    }

    #[test]
    fn what_purekafka_cannot_read_is_refused_by_name() {
        let err = set("ssl.truststore.type", "JKS").unwrap_err();
        assert!(err.to_string().contains("PEM only"), "{err}");
        let err = set("ssl.key.password", "hunter2").unwrap_err();
        let shown = format!("{err} {err:?}");
        assert!(shown.contains("encrypted private keys"), "{shown}");
        assert!(!shown.contains("hunter2"), "{shown}");
        let err = set("ssl.endpoint.identification.algorithm", "http").unwrap_err();
        assert!(err.to_string().contains("https or none"), "{err}");
        // The private key never shows in a config's Debug.
        let config = set("ssl.key.pem", "-----BEGIN PRIVATE KEY-----\nSECRETKEY").unwrap();
        assert!(!format!("{config:?}").contains("SECRETKEY"));
    }

    #[cfg(feature = "tls")]
    #[test]
    fn ssl_and_sasl_ssl_are_taken() {
        let config = set("security.protocol", "ssl").unwrap();
        assert_eq!(config.common.security_protocol, SecurityProtocol::Ssl);
        let config = set("security.protocol", "SASL_SSL").unwrap();
        assert_eq!(config.common.security_protocol, SecurityProtocol::SaslSsl);
    }

    #[cfg(not(feature = "tls"))]
    #[test]
    fn without_the_feature_ssl_names_it() {
        for protocol in ["SSL", "SASL_SSL"] {
            let err = set("security.protocol", protocol).unwrap_err();
            assert!(err.to_string().contains("`tls` feature"), "{err}");
        }
        // Set through the typed API, it fails when a client is built.
        let config = ClientConfig::new()
            .bootstrap_servers(["localhost:9093"])
            .security_protocol(SecurityProtocol::Ssl);
        let err = config.validate().unwrap_err();
        assert!(err.to_string().contains("`tls` feature"), "{err}");
    }
}
