//! TLS settings (`ssl.*`) for `security.protocol` SSL and SASL_SSL, under librdkafka's names and,
//! for PEM and PKCS#12 stores, the Java client's.
//!
//! Only settings live here: the files are read, and the rustls configuration made, when a client
//! is built (`conn::tls`), so that a missing or unreadable file, or a password that does not
//! open it, is reported then, by its key.

use std::path::PathBuf;

use super::properties::Value;
use super::Secret;
use crate::error::ConfigError;

/// TLS settings, used when `security.protocol` is `SSL` or `SASL_SSL` (the `tls` feature).
///
/// Certificates and keys are PEM, from a file or inline, or a PKCS#12 store. A PEM key may be
/// encrypted PKCS#8 (`-----BEGIN ENCRYPTED PRIVATE KEY-----`), opened with `ssl.key.password`.
/// With neither `ssl.ca.location` nor `ssl.ca.pem`, the system's trust store is used, as
/// librdkafka uses OpenSSL's.
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
    /// `ssl.ca.location` (Java: `ssl.truststore.location`): a PEM file of trusted CA
    /// certificates, or a folder of such files; or, as a file, a PKCS#12 truststore (see
    /// [`truststore_type`](Self::truststore_type)). `probe` means the system's trust store, as
    /// when unset.
    pub ca_location: Option<PathBuf>,
    /// `ssl.ca.pem` (Java: `ssl.truststore.certificates`): trusted CA certificates as PEM text.
    pub ca_pem: Option<String>,
    /// `ssl.certificate.location`: the client's certificate chain (PEM), for listeners that
    /// require client authentication (`ssl.client.auth=required`).
    pub certificate_location: Option<PathBuf>,
    /// `ssl.certificate.pem` (Java: `ssl.keystore.certificate.chain`): the same as PEM text.
    pub certificate_pem: Option<String>,
    /// `ssl.key.location`: the client's private key, PEM: PKCS#8, PKCS#1 or SEC1, or encrypted
    /// PKCS#8 with [`key_password`](Self::key_password).
    pub key_location: Option<PathBuf>,
    /// `ssl.key.pem` (Java: `ssl.keystore.key`): the private key as PEM text. Never printed.
    pub key_pem: Option<Secret>,
    /// `ssl.key.password` (librdkafka's and Java's name): the password of an encrypted PKCS#8
    /// key in `ssl.key.location`, `ssl.key.pem` or a PEM keystore. Ignored when the key is not
    /// encrypted, as librdkafka ignores it. Never printed.
    pub key_password: Option<Secret>,
    /// `ssl.keystore.location`: one file holding the client's key and certificate chain, a
    /// PKCS#12 store (librdkafka's meaning) or a PEM file (Java's `ssl.keystore.type=PEM`).
    /// Which of the two is [`keystore_type`](Self::keystore_type), or when that is unset, the
    /// file's contents: PEM text is read as PEM, anything else as PKCS#12. It cannot be combined
    /// with `ssl.key.*` or `ssl.certificate.*`, which name the same key.
    pub keystore_location: Option<PathBuf>,
    /// `ssl.keystore.type` (Java's name; librdkafka has none): `PEM` or `PKCS12`. Unset, the
    /// keystore's contents decide.
    pub keystore_type: Option<StoreType>,
    /// `ssl.keystore.password`: the password of a PKCS#12 keystore, which also decrypts its key
    /// (one password for both, as librdkafka and `openssl pkcs12 -export` use). Never printed.
    pub keystore_password: Option<Secret>,
    /// `ssl.truststore.type` (Java's name): `PEM` or `PKCS12`, how a file in `ssl.ca.location`
    /// (`ssl.truststore.location`) is read. Unset, its contents decide, as for the keystore.
    pub truststore_type: Option<StoreType>,
    /// `ssl.truststore.password`: the password of a PKCS#12 truststore. Unset, the store is
    /// opened with the empty password. Never printed.
    pub truststore_password: Option<Secret>,
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
            key_password: None,
            keystore_location: None,
            keystore_type: None,
            keystore_password: None,
            truststore_type: None,
            truststore_password: None,
            verify_hostname: true,
            verify_certificate: true,
        }
    }
}

/// How a keystore or truststore file is encoded (`ssl.keystore.type`, `ssl.truststore.type`).
/// Java's third type, JKS, is refused: `keytool -importkeystore -deststoretype PKCS12` converts
/// it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreType {
    /// PEM text: `-----BEGIN CERTIFICATE-----` and, in a keystore, the private key.
    Pem,
    /// A PKCS#12 store (`.p12`, `.pfx`), as `openssl pkcs12 -export` and Java's keytool write.
    Pkcs12,
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
        "ssl.keystore.location" => tls.keystore_location = path(),
        "ssl.key.pem" | "ssl.keystore.key" => tls.key_pem = Some(Secret::new(v.value)),
        "ssl.key.password" => tls.key_password = Some(Secret::new(v.value)),
        "ssl.keystore.password" => tls.keystore_password = Some(Secret::new(v.value)),
        "ssl.truststore.password" => tls.truststore_password = Some(Secret::new(v.value)),
        "ssl.keystore.type" => tls.keystore_type = Some(store_type(v)?),
        "ssl.truststore.type" => tls.truststore_type = Some(store_type(v)?),
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

/// `PEM` or `PKCS12`, in any case. (Not a `match` on the names: the docs test reads the arms of
/// `apply` as property names.)
fn store_type(v: &Value) -> Result<StoreType, ConfigError> {
    let is = |name: &str| v.value.eq_ignore_ascii_case(name);
    if is("PEM") {
        Ok(StoreType::Pem)
    } else if is("PKCS12") {
        Ok(StoreType::Pkcs12)
    } else if is("JKS") {
        Err(v.invalid(
            "purekafka reads PEM and PKCS12 stores, not JKS; convert it with keytool \
             -importkeystore -srckeystore STORE.jks -destkeystore STORE.p12 -deststoretype \
             PKCS12, and set PKCS12",
        ))
    } else {
        Err(v.invalid("expected PEM or PKCS12"))
    }
}

#[cfg(test)]
mod tests {
    use super::StoreType;
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
        // One file holding the key and its chain, PEM or PKCS#12: read when a client is built.
        let tls = set("ssl.keystore.location", "/client.p12")
            .unwrap()
            .common
            .tls;
        assert_eq!(
            tls.keystore_location.as_deref(),
            Some("/client.p12".as_ref())
        );
        assert_eq!(tls.key_location, None);
        for (value, kind) in [("PEM", StoreType::Pem), ("pkcs12", StoreType::Pkcs12)] {
            let tls = set("ssl.keystore.type", value).unwrap().common.tls;
            assert_eq!(tls.keystore_type, Some(kind));
            let tls = set("ssl.truststore.type", value).unwrap().common.tls;
            assert_eq!(tls.truststore_type, Some(kind));
        }
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
        for key in ["ssl.truststore.type", "ssl.keystore.type"] {
            let err = set(key, "JKS").unwrap_err();
            assert!(err.to_string().contains(key), "{err}");
            assert!(err.to_string().contains("-deststoretype PKCS12"), "{err}");
            let err = set(key, "BKS").unwrap_err();
            assert!(err.to_string().contains("expected PEM or PKCS12"), "{err}");
        }
        let err = set("ssl.endpoint.identification.algorithm", "http").unwrap_err();
        assert!(err.to_string().contains("https or none"), "{err}");
        // The private key never shows in a config's Debug.
        let config = set("ssl.key.pem", "-----BEGIN PRIVATE KEY-----\nSECRETKEY").unwrap();
        assert!(!format!("{config:?}").contains("SECRETKEY"));
    }

    #[test]
    fn passwords_are_taken_and_never_printed() {
        let config = ClientConfig::new()
            .set("ssl.key.password", "hunter2-key")
            .unwrap()
            .set("ssl.keystore.password", "hunter2-keystore")
            .unwrap()
            .set("ssl.truststore.password", "hunter2-truststore")
            .unwrap();
        let tls = &config.common.tls;
        assert_eq!(tls.key_password.as_ref().unwrap().expose(), "hunter2-key");
        assert_eq!(
            tls.keystore_password.as_ref().unwrap().expose(),
            "hunter2-keystore"
        );
        assert_eq!(
            tls.truststore_password.as_ref().unwrap().expose(),
            "hunter2-truststore"
        );
        assert!(!format!("{config:?}").contains("hunter2"));
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
