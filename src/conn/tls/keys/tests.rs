//! Encrypted keys and PKCS#12 stores made by the real tools (fixtures/tls/README.md has the
//! commands): OpenSSL 3 and Java 17's keytool. Each password is `purekafka`.

use std::path::PathBuf;
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::super::Tls;
use crate::config::{ClientConfig, Secret, TlsConfig};
use crate::error::ConfigError;

const PASSWORD: &str = "purekafka";

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/tls")).join(name)
}

/// The settings of `properties`, as an application sets them.
fn tls(properties: &[(&str, &str)]) -> TlsConfig {
    let mut config = ClientConfig::new();
    for (key, value) in properties {
        config = config.set(key, *value).unwrap();
    }
    let mut tls = config.common.tls;
    // Nothing here reaches a broker; the trust store is beside the point.
    tls.verify_certificate = false;
    tls
}

/// `client.pem` with the key in `key` decrypted by `password`.
fn pem_client(key: &str, password: Option<&str>) -> TlsConfig {
    let cert = fixture("client.pem").display().to_string();
    let key = fixture(key).display().to_string();
    let mut properties = vec![
        ("ssl.certificate.location", cert.as_str()),
        ("ssl.key.location", key.as_str()),
    ];
    if let Some(password) = password {
        properties.push(("ssl.key.password", password));
    }
    tls(&properties)
}

/// The key, in its unencrypted PKCS#8 form as OpenSSL wrote it.
fn plain_key() -> Vec<u8> {
    let key = PrivateKeyDer::from_pem_file(fixture("client.key")).unwrap();
    assert!(matches!(key, PrivateKeyDer::Pkcs8(_)));
    key.secret_der().to_vec()
}

/// The chain and key [`Tls::new`] would hand to rustls.
fn identity(config: &TlsConfig) -> super::super::Identity {
    super::super::client_identity(config)
        .unwrap()
        .expect("an identity")
}

/// The key and value of an `InvalidValue` error.
fn invalid(err: &ConfigError) -> (&str, &str, &str) {
    match err {
        ConfigError::InvalidValue { key, value, reason } => (key, value, reason),
        other => panic!("expected InvalidValue, got {other:?}"),
    }
}

/// `err` shows no password, in its message or its Debug.
fn shows_no_password(err: &ConfigError, password: &str) {
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains(password), "{shown}");
}

#[test]
fn encrypted_pkcs8_keys_decrypt_with_the_right_password() {
    // AES-256-CBC with PBKDF2-HMAC-SHA256 (OpenSSL 3's default), AES-128-CBC with
    // PBKDF2-HMAC-SHA1 (older OpenSSL and Java), and scrypt.
    for key in [
        "client.enc.key",
        "client.sha1-aes128.key",
        "client.scrypt.key",
    ] {
        let config = pem_client(key, Some(PASSWORD));
        let (chain, decrypted) = identity(&config);
        assert_eq!(decrypted.secret_der(), plain_key(), "{key}");
        assert_eq!(chain.len(), 1);
        // rustls takes the key with its certificate (it checks that they are a pair).
        Tls::new(&config).unwrap_or_else(|e| panic!("{key}: {e}"));
    }
}

/// What rustls says of `chain` with `key`.
fn rustls_takes(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<(), rustls::Error> {
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_client_auth_cert(chain, key)
        .map(drop)
}

#[test]
fn a_key_that_does_not_fit_the_certificate_is_refused_by_rustls() {
    // The check the test above relies on: Java's key with OpenSSL's certificate.
    let mut config = tls(&[]);
    config.keystore_location = Some(fixture("client.java.p12"));
    config.keystore_password = Some(Secret::new(PASSWORD));
    let (_, java_key) = identity(&config);
    let chain = vec![CertificateDer::from_pem_file(fixture("client.pem")).unwrap()];
    let err = rustls_takes(chain, java_key).unwrap_err();
    assert!(matches!(err, rustls::Error::InconsistentKeys(_)), "{err:?}");
}

#[test]
fn java_ec_keys_get_their_public_key_from_the_certificate() {
    // keytool writes EC keys without the public key, which ring requires.
    let der = std::fs::read(fixture("client.java.p12")).unwrap();
    let archive = p12_keystore::Pkcs12Archive::from_pkcs12(&der, PASSWORD).unwrap();
    let java_key = archive.keys[0].key.as_der().to_vec();
    let leaf = CertificateDer::from(archive.certs[0].cert.as_der().to_vec());
    let as_java_wrote_it = PrivateKeyDer::Pkcs8(java_key.clone().into());
    assert!(rustls_takes(vec![leaf.clone()], as_java_wrote_it).is_err());
    let completed = super::with_public_key(PrivateKeyDer::Pkcs8(java_key.into()), &leaf);
    rustls_takes(vec![leaf.clone()], completed.clone_key()).unwrap();
    // Done once is enough: a key that has its public key is left as it is, and so is
    // OpenSSL's, which always had it.
    let again = super::with_public_key(completed.clone_key(), &leaf);
    assert_eq!(again.secret_der(), completed.secret_der());
    let openssl_key = PrivateKeyDer::from_pem_file(fixture("client.key")).unwrap();
    let cert = CertificateDer::from_pem_file(fixture("client.pem")).unwrap();
    assert_eq!(
        super::with_public_key(openssl_key, &cert).secret_der(),
        plain_key()
    );
}

#[test]
fn a_wrong_password_names_ssl_key_password_and_never_shows() {
    for key in ["client.enc.key", "client.scrypt.key"] {
        let err = Tls::new(&pem_client(key, Some("not-the-password"))).unwrap_err();
        let (name, value, reason) = invalid(&err);
        assert_eq!(name, "ssl.key.password");
        assert_eq!(value, "[redacted]");
        assert!(reason.contains("does not decrypt the key"), "{reason}");
        assert!(reason.contains(key), "{reason}");
        shows_no_password(&err, "not-the-password");
    }
}

#[test]
fn an_encrypted_key_without_a_password_names_ssl_key_password() {
    let err = Tls::new(&pem_client("client.enc.key", None)).unwrap_err();
    let (name, value, reason) = invalid(&err);
    assert_eq!((name, value), ("ssl.key.password", "(unset)"));
    assert!(reason.contains("is encrypted"), "{reason}");
    assert!(reason.contains("ssl.key.location"), "{reason}");
}

#[test]
fn openssl_legacy_encrypted_pem_is_refused_with_how_to_convert_it() {
    let err = Tls::new(&pem_client("client.legacy.key", Some(PASSWORD))).unwrap_err();
    let (name, value, reason) = invalid(&err);
    assert_eq!(name, "ssl.key.location");
    assert!(value.ends_with("client.legacy.key"), "{value}");
    assert!(reason.contains("Proc-Type: 4,ENCRYPTED"), "{reason}");
    assert!(
        reason.contains("openssl pkcs8 -topk8 -v2 aes-256-cbc"),
        "{reason}"
    );
}

#[test]
fn a_scheme_purekafka_lacks_is_named_with_how_to_convert_it() {
    // `openssl pkcs8 -v1 PBE-SHA1-3DES`: PKCS#12's password-based encryption, not PBES2.
    let err = Tls::new(&pem_client("client.pbes1.key", Some(PASSWORD))).unwrap_err();
    let (name, _, reason) = invalid(&err);
    assert_eq!(name, "ssl.key.location");
    assert!(
        reason.contains("pbeWithSHAAnd3-KeyTripleDES-CBC (1.2.840.113549.1.12.1.3)"),
        "{reason}"
    );
    assert!(
        reason.contains("openssl pkcs8 -topk8 -v2 aes-256-cbc"),
        "{reason}"
    );
}

#[test]
fn a_password_with_an_unencrypted_key_is_ignored() {
    let config = pem_client("client.key", Some("unused"));
    let (_, key) = identity(&config);
    assert_eq!(key.secret_der(), plain_key());
    Tls::new(&config).unwrap();
}

#[test]
fn inline_encrypted_keys_and_pem_keystores_decrypt_too() {
    let encrypted = std::fs::read_to_string(fixture("client.enc.key")).unwrap();
    let cert = std::fs::read_to_string(fixture("client.pem")).unwrap();
    let inline = tls(&[
        ("ssl.certificate.pem", cert.as_str()),
        ("ssl.key.pem", encrypted.as_str()),
        ("ssl.key.password", PASSWORD),
    ]);
    assert_eq!(identity(&inline).1.secret_der(), plain_key());
    let mut wrong = inline.clone();
    wrong.key_password = Some(Secret::new("wrong"));
    let err = Tls::new(&wrong).unwrap_err();
    let (name, _, reason) = invalid(&err);
    assert_eq!(name, "ssl.key.password");
    assert!(reason.contains("ssl.key.pem ([redacted])"), "{reason}");

    // Java's PEM keystore: the encrypted key and the certificate in one file, the type
    // given or read from the contents.
    let dir = std::env::temp_dir().join(format!("purekafka-pem-keystore-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let keystore = dir.join("keystore.pem");
    std::fs::write(&keystore, format!("{encrypted}{cert}")).unwrap();
    let shown = keystore.display().to_string();
    for typed in [None, Some("PEM")] {
        let mut properties = vec![
            ("ssl.keystore.location", shown.as_str()),
            ("ssl.key.password", PASSWORD),
        ];
        properties.extend(typed.map(|t| ("ssl.keystore.type", t)));
        let config = tls(&properties);
        assert_eq!(identity(&config).1.secret_der(), plain_key());
        Tls::new(&config).unwrap();
    }
    let err = Tls::new(&tls(&[("ssl.keystore.location", shown.as_str())])).unwrap_err();
    assert_eq!(invalid(&err).0, "ssl.key.password");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A client whose keystore is the PKCS#12 file `name`.
fn pkcs12_client(name: &str, password: Option<&str>) -> TlsConfig {
    let path = fixture(name).display().to_string();
    let mut properties = vec![("ssl.keystore.location", path.as_str())];
    properties.extend(password.map(|p| ("ssl.keystore.password", p)));
    tls(&properties)
}

#[test]
fn pkcs12_keystores_from_openssl_and_java_open_with_their_password() {
    // OpenSSL's holds the fixture's key and certificate.
    let config = pkcs12_client("client.openssl.p12", Some(PASSWORD));
    let (chain, key) = identity(&config);
    assert_eq!(key.secret_der(), plain_key());
    let cert = CertificateDer::from_pem_file(fixture("client.pem")).unwrap();
    assert_eq!(chain, vec![cert]);
    Tls::new(&config).unwrap();
    // keytool's own key pairs: JDK 17's defaults (PBES2, AES-256, HmacPBESHA256) and its
    // legacy ones (RC2-40 and 3DES, MAC SHA-1); also with the type given.
    for name in ["client.java.p12", "client.java-legacy.p12"] {
        let config = pkcs12_client(name, Some(PASSWORD));
        let (chain, _) = identity(&config);
        assert_eq!(chain.len(), 1, "{name}");
        Tls::new(&config).unwrap_or_else(|e| panic!("{name}: {e}"));
        let mut typed = config.clone();
        typed.keystore_type = Some(crate::config::StoreType::Pkcs12);
        Tls::new(&typed).unwrap();
    }
}

#[test]
fn a_wrong_or_missing_keystore_password_names_ssl_keystore_password() {
    for name in [
        "client.openssl.p12",
        "client.java.p12",
        "client.java-legacy.p12",
    ] {
        let err = Tls::new(&pkcs12_client(name, Some("not-the-password"))).unwrap_err();
        let (key, value, reason) = invalid(&err);
        assert_eq!((key, value), ("ssl.keystore.password", "[redacted]"));
        assert!(
            reason.contains("the password does not open the PKCS#12 store"),
            "{reason}"
        );
        shows_no_password(&err, "not-the-password");

        let err = Tls::new(&pkcs12_client(name, None)).unwrap_err();
        let (key, value, reason) = invalid(&err);
        assert_eq!((key, value), ("ssl.keystore.password", "(unset)"));
        assert!(reason.contains("set ssl.keystore.password"), "{reason}");
    }
}

#[test]
fn a_keystore_and_a_key_location_conflict() {
    let mut config = pkcs12_client("client.openssl.p12", Some(PASSWORD));
    config.key_location = Some(fixture("client.key"));
    let err = Tls::new(&config).unwrap_err();
    assert!(
        matches!(&err, ConfigError::Conflict(m) if m.contains("ssl.keystore.location and ssl.key.location")),
        "{err}"
    );
}

#[test]
fn a_file_that_is_neither_pem_nor_pkcs12_is_named() {
    // The DER form of the certificate: not PEM, so read as PKCS#12, which it is not.
    let dir = std::env::temp_dir().join(format!("purekafka-der-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let der = dir.join("client.der");
    let cert = CertificateDer::from_pem_file(fixture("client.pem")).unwrap();
    std::fs::write(&der, cert.as_ref()).unwrap();
    let err = Tls::new(&pkcs12_client(der.to_str().unwrap(), Some(PASSWORD))).unwrap_err();
    let (key, _, reason) = invalid(&err);
    assert_eq!(key, "ssl.keystore.location");
    assert!(reason.contains("not a PKCS#12 store"), "{reason}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The roots `Tls::new` would trust for `properties`.
fn trusted(properties: &[(&str, &str)]) -> Result<usize, ConfigError> {
    let mut config = tls(properties);
    config.verify_certificate = true;
    super::super::trusted_roots(&config).map(|roots| roots.len())
}

#[test]
fn pkcs12_truststores_from_openssl_and_java() {
    for name in ["truststore.openssl.p12", "truststore.java.p12"] {
        let path = fixture(name).display().to_string();
        for typed in [None, Some("PKCS12")] {
            let mut properties = vec![
                ("ssl.truststore.location", path.as_str()),
                ("ssl.truststore.password", PASSWORD),
            ];
            properties.extend(typed.map(|t| ("ssl.truststore.type", t)));
            assert_eq!(trusted(&properties).unwrap(), 1, "{name} {typed:?}");
        }
        let err = trusted(&[
            ("ssl.truststore.location", path.as_str()),
            ("ssl.truststore.password", "not-the-password"),
        ])
        .unwrap_err();
        let (key, _, reason) = invalid(&err);
        assert_eq!(key, "ssl.truststore.password", "{name}");
        assert!(reason.contains("does not open"), "{reason}");
        shows_no_password(&err, "not-the-password");
    }
    // PEM stays PEM, the type given or not.
    let pem = fixture("client.pem").display().to_string();
    assert_eq!(trusted(&[("ssl.ca.location", pem.as_str())]).unwrap(), 1);
    let typed = [
        ("ssl.truststore.location", pem.as_str()),
        ("ssl.truststore.type", "PEM"),
    ];
    assert_eq!(trusted(&typed).unwrap(), 1);
}

#[tokio::test]
async fn a_wrong_password_fails_building_a_client_before_it_connects() {
    // Nothing listens on port 1: the error comes from reading the key, not from a broker.
    let config = ClientConfig::new()
        .set("bootstrap.servers", "localhost:1")
        .unwrap()
        .set("security.protocol", "SSL")
        .unwrap()
        .set(
            "ssl.keystore.location",
            fixture("client.openssl.p12").display(),
        )
        .unwrap()
        .set("ssl.keystore.password", "not-the-password")
        .unwrap();
    let err = crate::Producer::builder(config)
        .build()
        .await
        .expect_err("the build fails");
    let crate::Error::Config(config_error) = &err else {
        panic!("expected Error::Config, got {err:?}");
    };
    assert_eq!(invalid(config_error).0, "ssl.keystore.password");
    assert!(!format!("{err} {err:?}").contains("not-the-password"));
}

/// A server's check of client certificates that takes any certificate but checks the
/// handshake's signature with it: so the client proves it holds the certificate's key.
#[derive(Debug)]
struct SignatureOnly(Arc<rustls::crypto::CryptoProvider>);

impl rustls::server::danger::ClientCertVerifier for SignatureOnly {
    fn root_hint_subjects(&self) -> &[rustls::DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: rustls_pki_types::UnixTime,
    ) -> Result<rustls::server::danger::ClientCertVerified, rustls::Error> {
        Ok(rustls::server::danger::ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.0.signature_verification_algorithms;
        rustls::crypto::verify_tls12_signature(message, cert, dss, algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.0.signature_verification_algorithms;
        rustls::crypto::verify_tls13_signature(message, cert, dss, algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// A TLS handshake on loopback between a client of `config` and a server that requires a client
/// certificate: the certificate chain the server received.
async fn handshake(config: &TlsConfig) -> Vec<CertificateDer<'static>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(Arc::new(SignatureOnly(provider)))
        .with_single_cert(
            vec![CertificateDer::from_pem_file(fixture("client.pem")).unwrap()],
            PrivateKeyDer::from_pem_file(fixture("client.key")).unwrap(),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut tls = acceptor.accept(tcp).await.expect("the server's handshake");
        // The client's first byte: sent after its Finished, so its certificate was checked.
        let mut byte = [0u8];
        tokio::io::AsyncReadExt::read_exact(&mut tls, &mut byte)
            .await
            .unwrap();
        tls.get_ref().1.peer_certificates().unwrap().to_vec()
    });
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut tls = Tls::new(config)
        .unwrap()
        .connect(&format!("localhost:{}", addr.port()), tcp)
        .await
        .expect("the client's handshake");
    tokio::io::AsyncWriteExt::write_all(&mut tls, b"!")
        .await
        .unwrap();
    tokio::io::AsyncWriteExt::flush(&mut tls).await.unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(10), accepted)
        .await
        .expect("the server within 10 s")
        .unwrap()
}

#[tokio::test]
async fn decrypted_keys_and_pkcs12_keys_sign_the_handshake() {
    let openssl_cert = CertificateDer::from_pem_file(fixture("client.pem")).unwrap();
    let seen = handshake(&pem_client("client.enc.key", Some(PASSWORD))).await;
    assert_eq!(seen, vec![openssl_cert.clone()]);
    let seen = handshake(&pkcs12_client("client.openssl.p12", Some(PASSWORD))).await;
    assert_eq!(seen, vec![openssl_cert]);
    // Java's EC key, completed with the public key from its certificate.
    for name in ["client.java.p12", "client.java-legacy.p12"] {
        let config = pkcs12_client(name, Some(PASSWORD));
        let (chain, _) = identity(&config);
        assert_eq!(handshake(&config).await, chain, "{name}");
    }
}

#[test]
fn pem_that_openssl_reads_is_read_whatever_its_line_width_and_endings() {
    // The encrypted key as Java's MIME base64 (76 columns) and Windows (CRLF) would write it;
    // OpenSSL reads both.
    let pem = std::fs::read_to_string(fixture("client.enc.key")).unwrap();
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(76)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    let wide = format!(
        "-----BEGIN ENCRYPTED PRIVATE KEY-----\n{}\n-----END ENCRYPTED PRIVATE KEY-----\n",
        lines.join("\n")
    );
    let crlf = pem.replace('\n', "\r\n");
    for (what, text) in [("76 columns", wide), ("CRLF", crlf)] {
        let origin = super::Origin {
            key: "ssl.key.pem",
            shown: "[redacted]",
        };
        let key = super::private_key(text.as_bytes(), origin, Some(&Secret::new(PASSWORD)))
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(key.secret_der(), plain_key(), "{what}");
    }
}
