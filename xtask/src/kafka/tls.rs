//! The certificates of the local Kafka's TLS listeners, made with rcgen when a cluster starts
//! afresh and kept in `target/kafka/run/tls/` for the proto-tests:
//!
//! | file | what |
//! |---|---|
//! | `ca.pem` | the CA every certificate below is signed by; the clients trust it |
//! | `other-ca.pem` | a CA that signed nothing: trusting it alone must fail |
//! | `broker.pem`, `broker.key` | the brokers' certificate, for `localhost` only (not 127.0.0.1) |
//! | `expired.pem`, `expired.key` | the same name, expired in 2001 (the EXPIRED listener) |
//! | `client.pem`, `client.key` | a client certificate, for the MTLS listener |
//! | `client.enc.key` | `client.key` encrypted: PKCS#8 PEM (`ENCRYPTED PRIVATE KEY`), PBES2 with PBKDF2-HMAC-SHA256 and AES-256-CBC |
//! | `client.p12` | `client.pem` and `client.key` in a PKCS12 store |
//! | `truststore.p12`, `broker.p12`, `expired.p12` | the CA, and the brokers' keys with their chains, in PKCS12 stores |
//!
//! The brokers from Kafka 2.7 on read the PEM files inline (`ssl.keystore.key`), so those keys
//! need no password; older ones read the PKCS12 stores. The encrypted and PKCS12 files are
//! protected by [`STORE_PASSWORD`] and written by the JDK ([`pkcs12`]), for every version: the
//! tests load them as a client would. (Kafka's Java client cannot load `client.enc.key` on
//! JDK 17: its PEM reader asks for a `SecretKeyFactory` named after the key's algorithm, and
//! the JDK has none for PBES2, JDK-8231581. Java clients take `client.p12`.)

use std::fs;
use std::path::{Path, PathBuf};

use rcgen::{
    date_time_ymd, BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};

/// The host name the brokers' certificates are for, and that the TLS listeners advertise.
pub const TLS_HOST: &str = "localhost";

/// The PEM files of one run, read back by `server_properties`.
#[derive(Debug, Clone)]
pub struct Material {
    /// Where the files are: brokers before Kafka 2.7 read the PKCS12 stores of [`pkcs12`].
    pub dir: PathBuf,
    pub ca: String,
    pub broker_chain: String,
    pub broker_key: String,
    pub expired_chain: String,
    pub expired_key: String,
}

pub fn dir(run: &Path) -> PathBuf {
    run.join("tls")
}

/// Makes every certificate and key anew in `dir`.
pub fn generate(dir: &Path) -> Result<(), String> {
    fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let fail = |e: rcgen::Error| format!("making the TLS certificates: {e}");

    let ca_key = KeyPair::generate().map_err(fail)?;
    let ca_params = ca("purekafka test CA");
    let ca_cert = ca_params.self_signed(&ca_key).map_err(fail)?;
    let issuer = Issuer::new(ca_params, ca_key);

    let other_key = KeyPair::generate().map_err(fail)?;
    let other = ca("purekafka stranger CA")
        .self_signed(&other_key)
        .map_err(fail)?;

    let mut files = vec![
        ("ca.pem".to_owned(), ca_cert.pem()),
        ("other-ca.pem".to_owned(), other.pem()),
    ];
    for (name, params) in [
        (
            "broker",
            leaf(TLS_HOST, ExtendedKeyUsagePurpose::ServerAuth, false)?,
        ),
        (
            "expired",
            leaf(TLS_HOST, ExtendedKeyUsagePurpose::ServerAuth, true)?,
        ),
        (
            "client",
            leaf(
                "purekafka-client",
                ExtendedKeyUsagePurpose::ClientAuth,
                false,
            )?,
        ),
    ] {
        let key = KeyPair::generate().map_err(fail)?;
        let cert = params.signed_by(&key, &issuer).map_err(fail)?;
        // The chain a broker presents: its certificate, then the CA's.
        files.push((format!("{name}.pem"), cert.pem() + &ca_cert.pem()));
        files.push((format!("{name}.key"), key.serialize_pem()));
    }
    for (name, text) in files {
        let path = dir.join(name);
        fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    Ok(())
}

/// The password of the PKCS12 stores (test material only).
pub const STORE_PASSWORD: &str = "purekafka";

/// Writes `truststore.p12`, `broker.p12`, `expired.p12` (for brokers that read no PEM stores,
/// before Kafka 2.7), `client.p12` and `client.enc.key` from the PEM files in `dir`: with the
/// JDK the brokers run on (`xtask/kafka/Pkcs12.java`, launched as a single source file), so
/// nothing else (no openssl) is needed.
pub fn pkcs12(dir: &Path, root: &Path) -> Result<(), String> {
    let program = root.join("xtask/kafka/Pkcs12.java");
    let out = std::process::Command::new(super::process::java())
        .arg(&program)
        .arg(dir)
        .arg(STORE_PASSWORD)
        .output()
        .map_err(|e| format!("cannot run java {}: {e}", program.display()))?;
    if !out.status.success() {
        return Err(format!(
            "making the PKCS12 stores failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(())
}

/// Reads what [`generate`] wrote.
pub fn read(dir: &Path) -> Result<Material, String> {
    let file = |name: &str| {
        let path = dir.join(name);
        fs::read_to_string(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))
    };
    Ok(Material {
        dir: dir.to_owned(),
        ca: file("ca.pem")?,
        broker_chain: file("broker.pem")?,
        broker_key: file("broker.key")?,
        expired_chain: file("expired.pem")?,
        expired_key: file("expired.key")?,
    })
}

fn ca(name: &str) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.not_before = date_time_ymd(2024, 1, 1);
    params.not_after = date_time_ymd(2099, 12, 31);
    params
}

/// A certificate for `name` (a DNS name in the subject alternative names, and the common
/// name); `expired` ones ended in 2001.
fn leaf(
    name: &str,
    usage: ExtendedKeyUsagePurpose,
    expired: bool,
) -> Result<CertificateParams, String> {
    let mut params = CertificateParams::new(vec![name.to_owned()])
        .map_err(|e| format!("certificate for {name}: {e}"))?;
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![usage];
    (params.not_before, params.not_after) = if expired {
        (date_time_ymd(2000, 1, 1), date_time_ymd(2001, 1, 1))
    } else {
        (date_time_ymd(2024, 1, 1), date_time_ymd(2099, 12, 31))
    };
    Ok(params)
}
