//! The client's private key and the PKCS#12 stores: what `ssl.key.*`, `ssl.keystore.*` and a
//! PKCS#12 `ssl.truststore.location` hold, turned into the DER that rustls takes.
//!
//! ```text
//!  PEM key ──unencrypted (PKCS#8, PKCS#1, SEC1)──────────────────────────► PrivateKeyDer
//!          ──ENCRYPTED PRIVATE KEY──pkcs8 + ssl.key.password──► PKCS#8 ──► PrivateKeyDer
//!          ──Proc-Type: 4,ENCRYPTED (OpenSSL's legacy form)──► refused, with how to convert
//!  PKCS#12 keystore ──p12-keystore + ssl.keystore.password──► (chain, PKCS#8 key)
//!  PKCS#12 truststore ──p12-keystore + ssl.truststore.password──► certificates
//! ```
//!
//! Every failure is a [`ConfigError`] naming the property to change: the password's key when
//! the password is missing or wrong, the file's key when its format is one purekafka does not
//! read. Passwords never appear in an error or a log line.

use base64::Engine;
use p12_keystore::error::Error as P12Error;
use p12_keystore::{KeyStore, KeyStoreEntry, Pkcs12Archive, Pkcs12ImportPolicy};
use pkcs8::der::{Decode, Header, SliceReader};
use pkcs8::pkcs5::pbes2::Kdf;
use pkcs8::pkcs5::{self, EncryptionScheme};
use pkcs8::{AlgorithmIdentifierRef, EncryptedPrivateKeyInfoRef, ObjectIdentifier};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::config::Secret;
use crate::error::ConfigError;

/// Where a PEM key or a store came from, for errors: its property and the value to show (a path,
/// or `[redacted]` for inline PEM).
#[derive(Clone, Copy)]
pub(super) struct Origin<'a> {
    pub key: &'a str,
    pub shown: &'a str,
}

/// The most PBKDF2 iterations an encrypted key may ask for (OpenSSL writes 2048, Java 10000,
/// current advice is some hundred thousands): a bound, so that a damaged file cannot stall
/// building a client for hours.
const MAX_PBKDF2_ITERATIONS: u32 = 10_000_000;
/// The most memory scrypt may need, 128 · r · N bytes (OpenSSL's `-scrypt` needs 16 MiB).
const MAX_SCRYPT_BYTES: u128 = 1 << 30;

const BEGIN_ENCRYPTED: &str = "-----BEGIN ENCRYPTED PRIVATE KEY-----";
const END_ENCRYPTED: &str = "-----END ENCRYPTED PRIVATE KEY-----";

/// How to turn a key purekafka cannot decrypt into one it can.
const CONVERT_KEY: &str = "openssl pkcs8 -topk8 -v2 aes-256-cbc -in KEY.pem -out KEY.p8.pem \
                           (it asks for the old password and a new one; then point the key \
                           setting at KEY.p8.pem and set ssl.key.password to the new password)";

/// The private key in `pem`: unencrypted PEM (PKCS#8, PKCS#1 or SEC1), or encrypted PKCS#8
/// decrypted with `password` (`ssl.key.password`).
pub(super) fn private_key(
    pem: &[u8],
    origin: Origin<'_>,
    password: Option<&Secret>,
) -> Result<PrivateKeyDer<'static>, ConfigError> {
    let text = String::from_utf8_lossy(pem);
    if let Some(block) = encrypted_block(&text) {
        return decrypt_pkcs8(block, origin, password);
    }
    if text.contains("Proc-Type: 4,ENCRYPTED") {
        return Err(invalid(
            origin.key,
            origin.shown,
            format!(
                "the key is encrypted in OpenSSL's legacy PEM form (Proc-Type: 4,ENCRYPTED), \
                 which purekafka does not read; convert it to encrypted PKCS#8: {CONVERT_KEY}"
            ),
        ));
    }
    let key = PrivateKeyDer::from_pem_slice(pem).map_err(|e| {
        invalid(
            origin.key,
            origin.shown,
            format!("no PEM private key (PKCS#8, PKCS#1 or SEC1) in it: {e}"),
        )
    })?;
    if password.is_some() {
        tracing::debug!(
            key = origin.key,
            "ssl.key.password is set but the key is not encrypted; the password is not used"
        );
    }
    Ok(key)
}

/// The `-----BEGIN ENCRYPTED PRIVATE KEY-----` block of `text`, with its boundaries.
fn encrypted_block(text: &str) -> Option<&str> {
    let start = text.find(BEGIN_ENCRYPTED)?;
    let end = text[start..]
        .find(END_ENCRYPTED)
        .map_or(text.len(), |end| start + end + END_ENCRYPTED.len());
    Some(&text[start..end])
}

fn decrypt_pkcs8(
    block: &str,
    origin: Origin<'_>,
    password: Option<&Secret>,
) -> Result<PrivateKeyDer<'static>, ConfigError> {
    // Base64 of any line width and line ending, as OpenSSL reads it (RFC 7468's strict parser
    // would refuse Java's 76 columns).
    let base64: String = block
        .lines()
        .filter(|line| !line.starts_with("-----"))
        .flat_map(|line| line.split_whitespace())
        .collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(base64)
        .map_err(|e| {
            invalid(
                origin.key,
                origin.shown,
                format!("its ENCRYPTED PRIVATE KEY block is not valid base64: {e}"),
            )
        })?;
    let unsupported = |scheme: String| {
        invalid(
            origin.key,
            origin.shown,
            format!(
                "the key is encrypted with {scheme}, which purekafka does not read (it reads \
                 PBES2: PBKDF2 or scrypt, with AES-CBC or 3DES-CBC); re-encrypt it: \
                 {CONVERT_KEY}"
            ),
        )
    };
    let info = match EncryptedPrivateKeyInfoRef::try_from(der.as_slice()) {
        Ok(info) => info,
        Err(e) => {
            return Err(match scheme_oid(&der) {
                Some(oid) => unsupported(scheme_name(oid)),
                None => invalid(
                    origin.key,
                    origin.shown,
                    format!("its ENCRYPTED PRIVATE KEY is not PKCS#8: {e}"),
                ),
            })
        }
    };
    let EncryptionScheme::Pbes2(params) = &info.encryption_algorithm else {
        let oid = info.encryption_algorithm.oid();
        return Err(unsupported(scheme_name(oid)));
    };
    let too_costly = match &params.kdf {
        Kdf::Pbkdf2(p) => (p.iteration_count > MAX_PBKDF2_ITERATIONS).then(|| {
            format!(
                "{} PBKDF2 iterations, more than purekafka's limit of {MAX_PBKDF2_ITERATIONS}",
                p.iteration_count
            )
        }),
        Kdf::Scrypt(p) => {
            let bytes = 128 * u128::from(p.block_size) * u128::from(p.cost_parameter);
            (bytes > MAX_SCRYPT_BYTES || p.parallelization > 16).then(|| {
                format!(
                    "scrypt with N={}, r={}, p={}, beyond purekafka's limits (1 GiB, p at most \
                     16)",
                    p.cost_parameter, p.block_size, p.parallelization
                )
            })
        }
        _ => None,
    };
    if let Some(cost) = too_costly {
        return Err(unsupported(cost));
    }
    let Some(password) = password else {
        return Err(invalid(
            "ssl.key.password",
            "(unset)",
            format!(
                "the key in {} ({}) is encrypted (ENCRYPTED PRIVATE KEY); set ssl.key.password \
                 to its password",
                origin.key, origin.shown
            ),
        ));
    };
    let wrong_password = || {
        invalid(
            "ssl.key.password",
            "[redacted]",
            format!(
                "the password does not decrypt the key in {} ({})",
                origin.key, origin.shown
            ),
        )
    };
    let plain = match info.decrypt(password.expose()) {
        Ok(plain) => plain,
        Err(pkcs8::Error::EncryptedPrivateKey(pkcs5::Error::UnsupportedAlgorithm { oid })) => {
            return Err(unsupported(format!("PBES2 using {}", scheme_name(oid))))
        }
        Err(pkcs8::Error::EncryptedPrivateKey(pkcs5::Error::AlgorithmParametersInvalid {
            oid,
        })) => {
            return Err(invalid(
                origin.key,
                origin.shown,
                format!("the key's encryption parameters for {oid} are invalid"),
            ))
        }
        // A wrong password shows as bad padding or, rarely, as plaintext that is no DER.
        Err(_) => return Err(wrong_password()),
    };
    // A wrong password whose padding happened to check out decrypts to noise: the result must be
    // a PKCS#8 PrivateKeyInfo.
    if pkcs8::PrivateKeyInfoRef::try_from(plain.as_bytes()).is_err() {
        return Err(wrong_password());
    }
    Ok(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        plain.as_bytes().to_vec(),
    )))
}

/// The OID of the encryption algorithm of an EncryptedPrivateKeyInfo that did not decode as
/// one purekafka reads.
fn scheme_oid(der: &[u8]) -> Option<ObjectIdentifier> {
    let mut reader = SliceReader::new(der).ok()?;
    Header::decode(&mut reader).ok()?;
    Some(AlgorithmIdentifierRef::decode(&mut reader).ok()?.oid)
}

/// A readable name for the password-based encryption algorithms keys are found in.
fn scheme_name(oid: ObjectIdentifier) -> String {
    let name = match oid.to_string().as_str() {
        "1.2.840.113549.1.5.1" => "PBES1 pbeWithMD2AndDES-CBC",
        "1.2.840.113549.1.5.3" => "PBES1 pbeWithMD5AndDES-CBC",
        "1.2.840.113549.1.5.4" => "PBES1 pbeWithMD2AndRC2-CBC",
        "1.2.840.113549.1.5.6" => "PBES1 pbeWithMD5AndRC2-CBC",
        "1.2.840.113549.1.5.10" => "PBES1 pbeWithSHA1AndDES-CBC",
        "1.2.840.113549.1.5.11" => "PBES1 pbeWithSHA1AndRC2-CBC",
        "1.2.840.113549.1.12.1.1" => "PKCS#12 pbeWithSHAAnd128BitRC4",
        "1.2.840.113549.1.12.1.2" => "PKCS#12 pbeWithSHAAnd40BitRC4",
        "1.2.840.113549.1.12.1.3" => "PKCS#12 pbeWithSHAAnd3-KeyTripleDES-CBC",
        "1.2.840.113549.1.12.1.4" => "PKCS#12 pbeWithSHAAnd2-KeyTripleDES-CBC",
        "1.2.840.113549.1.12.1.5" => "PKCS#12 pbeWithSHAAnd128BitRC2-CBC",
        "1.2.840.113549.1.12.1.6" => "PKCS#12 pbeWithSHAAnd40BitRC2-CBC",
        "1.3.14.3.2.7" => "DES-CBC (single DES)",
        _ => return format!("the algorithm {oid}"),
    };
    format!("{name} ({oid})")
}

/// Which setting holds a store's password, for errors.
#[derive(Clone, Copy)]
pub(super) struct Store<'a> {
    /// The file: `ssl.keystore.location` or `ssl.ca.location`.
    pub origin: Origin<'a>,
    /// `ssl.keystore.password` or `ssl.truststore.password`.
    pub password_key: &'static str,
    /// How to turn the store into PEM, and what to set then.
    pub convert: &'static str,
}

/// How to turn a PKCS#12 keystore purekafka cannot open into PEM.
pub(super) const CONVERT_KEYSTORE: &str =
    "openssl pkcs12 -in STORE.p12 -nodes -out client.pem (add -legacy for RC2 or 3DES stores), \
     then ssl.keystore.location=client.pem with ssl.keystore.type=PEM";
/// How to turn a PKCS#12 truststore purekafka cannot open into PEM.
pub(super) const CONVERT_TRUSTSTORE: &str =
    "openssl pkcs12 -in STORE.p12 -nokeys -out ca.pem (add -legacy for RC2 or 3DES stores), \
     then ssl.ca.location=ca.pem";

/// The client's certificate chain and key in a PKCS#12 keystore: its one private key, with the
/// certificate that shares the key's local key id and that certificate's issuers in the store.
pub(super) fn pkcs12_identity(
    der: &[u8],
    store: Store<'_>,
    password: Option<&Secret>,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), ConfigError> {
    let keystore = open(store, password, |pw| {
        KeyStore::from_pkcs12(der, pw, Pkcs12ImportPolicy::Strict)
    })?;
    let chains: Vec<_> = keystore
        .entries()
        .filter_map(|(alias, entry)| match entry {
            KeyStoreEntry::PrivateKeyChain(chain) => Some((alias, chain)),
            _ => None,
        })
        .collect();
    let (_, chain) = match chains.as_slice() {
        [one] => *one,
        [] => {
            return Err(invalid(
                store.origin.key,
                store.origin.shown,
                "the PKCS#12 store holds no private key together with its certificate".to_owned(),
            ))
        }
        many => {
            let aliases: Vec<&str> = many.iter().map(|(alias, _)| alias.as_str()).collect();
            return Err(invalid(
                store.origin.key,
                store.origin.shown,
                format!(
                    "the PKCS#12 store holds {} private keys ({}); purekafka takes a store \
                     with one, so export the client's alone",
                    many.len(),
                    aliases.join(", ")
                ),
            ));
        }
    };
    let certs: Vec<_> = chain
        .certs()
        .iter()
        .map(|cert| CertificateDer::from(cert.as_der().to_vec()))
        .collect();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(chain.key().as_der().to_vec()));
    let Some(leaf) = certs.first() else {
        return Err(invalid(
            store.origin.key,
            store.origin.shown,
            "the PKCS#12 store's private key has no certificate".to_owned(),
        ));
    };
    let key = with_public_key(key, leaf);
    Ok((certs, key))
}

/// Every certificate of a PKCS#12 truststore: Java's trusted-certificate entries and, as
/// `openssl pkcs12 -export -nokeys` writes no trust mark, any other certificate bag too.
pub(super) fn pkcs12_certificates(
    der: &[u8],
    store: Store<'_>,
    password: Option<&Secret>,
) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    let archive = open(store, password, |pw| Pkcs12Archive::from_pkcs12(der, pw))?;
    Ok(archive
        .certs
        .iter()
        .map(|bag| CertificateDer::from(bag.cert.as_der().to_vec()))
        .collect())
}

/// Runs `read` with the store's password (the empty one when unset), turning its failures into
/// errors that name the setting to change.
fn open<T>(
    store: Store<'_>,
    password: Option<&Secret>,
    read: impl FnOnce(&str) -> Result<T, P12Error>,
) -> Result<T, ConfigError> {
    let error = match read(password.map_or("", Secret::expose)) {
        Ok(read) => return Ok(read),
        Err(e) => e,
    };
    let Origin { key, shown } = store.origin;
    let bad_password = |how: &str| match password {
        Some(_) => invalid(
            store.password_key,
            "[redacted]",
            format!("the password does not open the PKCS#12 store in {key} ({shown}): {how}"),
        ),
        None => invalid(
            store.password_key,
            "(unset)",
            format!(
                "the PKCS#12 store in {key} ({shown}) does not open without a password \
                 ({how}); set {} to its password",
                store.password_key
            ),
        ),
    };
    Err(match error {
        P12Error::MacError(_) => bad_password("its integrity check fails"),
        // A store without an integrity check shows a wrong password when it decrypts.
        P12Error::UnpadError | P12Error::InvalidPrivateKey => {
            bad_password("it decrypts to nothing readable")
        }
        P12Error::DerError(_) | P12Error::InvalidVersion | P12Error::UnsupportedContentType => {
            invalid(
                key,
                shown,
                format!(
                    "not a PKCS#12 store ({error}); purekafka reads PEM and PKCS#12 (see \
                     {})",
                    match store.password_key {
                        "ssl.keystore.password" => "ssl.keystore.type",
                        _ => "ssl.truststore.type",
                    }
                ),
            )
        }
        P12Error::UnsupportedEncryptionScheme
        | P12Error::UnsupportedMacAlgorithm
        | P12Error::Pkcs5Error(_) => invalid(
            key,
            shown,
            format!(
                "the PKCS#12 store uses an encryption or integrity scheme purekafka does not \
                 read ({error}); convert it to PEM: {}",
                store.convert
            ),
        ),
        P12Error::InvalidParameters => invalid(
            key,
            shown,
            format!(
                "the PKCS#12 store asks for more key-derivation work than purekafka allows \
                 (over 1000000 iterations, or scrypt over 1 GiB); convert it to PEM: {}",
                store.convert
            ),
        ),
        other => invalid(
            key,
            shown,
            format!("the PKCS#12 store could not be read: {other}"),
        ),
    })
}

/// `key` as ring reads it, given the certificate `leaf` it belongs to. Java writes EC keys in
/// PKCS#8 without their public key (the optional `publicKey` of SEC1's ECPrivateKey), which ring
/// requires; the certificate holds that public key, so it is copied in. ring then checks that the
/// two belong together, as for any key. Every other key is returned as it is.
pub(super) fn with_public_key(
    key: PrivateKeyDer<'static>,
    leaf: &CertificateDer<'_>,
) -> PrivateKeyDer<'static> {
    let PrivateKeyDer::Pkcs8(pkcs8) = &key else {
        return key;
    };
    match ec_key_with_public_key(pkcs8.secret_pkcs8_der(), leaf) {
        Some(completed) => PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(completed)),
        None => key,
    }
}

/// id-ecPublicKey (1.2.840.10045.2.1), as DER.
const EC_PUBLIC_KEY_OID: &[u8] = &[0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];

/// The PKCS#8 EC key `pkcs8` with the public key of `cert` added, when it lacks one.
fn ec_key_with_public_key(pkcs8: &[u8], cert: &[u8]) -> Option<Vec<u8>> {
    // PrivateKeyInfo: version, algorithm, privateKey (an OCTET STRING holding ECPrivateKey), ...
    let info = der_fields(contents(pkcs8, 0x30)?)?;
    let algorithm = contents(info.get(1)?, 0x30)?;
    if !algorithm.starts_with(EC_PUBLIC_KEY_OID) {
        return None;
    }
    let ec = contents(info.get(2)?, 0x04)?;
    let ec_fields = contents(ec, 0x30)?;
    if der_fields(ec_fields)?.iter().any(|field| field[0] == 0xa1) {
        return None;
    }
    // Certificate: tbsCertificate: [0] version, serial, signature, issuer, validity, subject,
    // subjectPublicKeyInfo: algorithm, subjectPublicKey (a BIT STRING).
    let tbs = der_fields(contents(cert, 0x30)?)?;
    let tbs = der_fields(contents(tbs.first()?, 0x30)?)?;
    let skip = usize::from(tbs.first()?[0] == 0xa0);
    let spki = der_fields(contents(tbs.get(skip + 5)?, 0x30)?)?;
    let public_key = spki.get(1).filter(|bits| bits[0] == 0x03)?;
    let mut completed_ec = ec_fields.to_vec();
    completed_ec.extend(tlv(0xa1, public_key));
    let mut completed = Vec::new();
    for (i, field) in info.iter().enumerate() {
        match i {
            2 => completed.extend(tlv(0x04, &tlv(0x30, &completed_ec))),
            _ => completed.extend_from_slice(field),
        }
    }
    Some(tlv(0x30, &completed))
}

/// The DER elements (each with its tag and length) that `der` holds one after another.
fn der_fields(mut der: &[u8]) -> Option<Vec<&[u8]>> {
    let mut fields = Vec::new();
    while !der.is_empty() {
        let len = element_len(der)?;
        fields.push(&der[..len]);
        der = &der[len..];
    }
    Some(fields)
}

/// The length of the DER element at the start of `der`, header included.
fn element_len(der: &[u8]) -> Option<usize> {
    let first = *der.get(1)?;
    let (header, len) = if first < 0x80 {
        (2, usize::from(first))
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 {
            return None;
        }
        let bytes = der.get(2..2 + count)?;
        let len = bytes.iter().fold(0usize, |n, b| (n << 8) | usize::from(*b));
        (2 + count, len)
    };
    let total = header.checked_add(len)?;
    (total <= der.len()).then_some(total)
}

/// The contents of the single DER element `der`, which must have the tag `tag`.
fn contents(der: &[u8], tag: u8) -> Option<&[u8]> {
    if *der.first()? != tag || element_len(der)? != der.len() {
        return None;
    }
    let header = match der[1] {
        n if n < 0x80 => 2,
        n => 2 + usize::from(n & 0x7f),
    };
    Some(&der[header..])
}

/// A DER element of tag `tag` holding `content`.
fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let len = content.len();
    let mut out = vec![tag];
    match len {
        0..=0x7f => out.push(len as u8),
        0x80..=0xff => out.extend([0x81, len as u8]),
        0x100..=0xffff => out.extend([0x82, (len >> 8) as u8, len as u8]),
        _ => out.extend([0x83, (len >> 16) as u8, (len >> 8) as u8, len as u8]),
    }
    out.extend_from_slice(content);
    out
}

/// Whether a keystore or truststore file is PEM text (else it is read as PKCS#12).
pub(super) fn is_pem(bytes: &[u8]) -> bool {
    bytes.windows(11).any(|w| w == b"-----BEGIN ")
}

fn invalid(key: &str, value: &str, reason: String) -> ConfigError {
    ConfigError::InvalidValue {
        key: key.to_owned(),
        value: value.to_owned(),
        reason,
    }
}

#[cfg(test)]
mod tests;
