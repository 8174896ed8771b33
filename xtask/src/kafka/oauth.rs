//! The signing key of the OIDC listener (SASL/OAUTHBEARER with signed JWTs, KIP-768), made with
//! rcgen when a cluster starts afresh and kept in `target/kafka/run/oauth/` for the proto-tests:
//!
//! | file | what |
//! |---|---|
//! | `signing.key` | an ECDSA P-256 private key, PKCS#8 PEM: the tests' token endpoint signs ES256 JWTs with it |
//! | `jwks.json` | its public half as a JWKS (one EC key, `kid` [`KEY_ID`]), which the brokers read |
//!
//! ```text
//!  test token endpoint ──(JWT signed with signing.key, kid purekafka-test)──▶ client
//!  client ──SASL/OAUTHBEARER──▶ OIDC listener ──checks it against──▶ jwks.json (file: URL)
//! ```
//!
//! A token passes when its signature checks out and it carries `aud` [`EXPECTED_AUDIENCE`],
//! `iss` [`EXPECTED_ISSUER`], `sub`, `iat` and `exp`. The brokers read the JWKS once, when they
//! start: a new key needs a fresh cluster.

use std::fs;
use std::path::{Path, PathBuf};

use rcgen::KeyPair;

/// The audience the OIDC listener expects in a token's `aud`.
pub const EXPECTED_AUDIENCE: &str = "purekafka-tests";

/// The issuer the OIDC listener expects in a token's `iss`.
pub const EXPECTED_ISSUER: &str = "purekafka-test-issuer";

/// The `kid` of the one key in `jwks.json`, which a token's header names.
pub const KEY_ID: &str = "purekafka-test";

/// The JVM system property that lists the URLs Kafka's OAuth code may read (JWKS and token
/// endpoints, `file:` ones too). Kafka 3.9.1 and later look at it; from 4.0 a URL it does not
/// list is refused, where 3.9 allows every URL while it is unset.
pub const ALLOWED_URLS_PROPERTY: &str = "org.apache.kafka.sasl.oauthbearer.allowed.urls";

pub fn dir(run: &Path) -> PathBuf {
    run.join("oauth")
}

/// `file:` URL of the JWKS in `dir`, as the brokers are told it (and as the allowed-URLs
/// property must list it, character for character).
pub fn jwks_url(dir: &Path) -> String {
    format!("file://{}", dir.join("jwks.json").display())
}

/// Makes a new signing key in `dir`: `signing.key` and `jwks.json`.
pub fn generate(dir: &Path) -> Result<(), String> {
    fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    // rcgen's default algorithm is ECDSA P-256 with SHA-256: ES256.
    let key = KeyPair::generate().map_err(|e| format!("making the OIDC signing key: {e}"))?;
    let jwks = jwks_json(key.public_key_raw())?;
    for (name, text) in [("signing.key", key.serialize_pem()), ("jwks.json", jwks)] {
        let path = dir.join(name);
        fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    Ok(())
}

/// A JWKS holding one P-256 public key, given as an uncompressed point (`0x04 || x || y`, what
/// rcgen's `public_key_raw` gives).
pub fn jwks_json(point: &[u8]) -> Result<String, String> {
    let (x, y) = match point {
        [0x04, xy @ ..] if xy.len() == 64 => xy.split_at(32),
        _ => {
            return Err(format!(
                "not an uncompressed P-256 point ({} bytes)",
                point.len()
            ))
        }
    };
    Ok(format!(
        "{{\"keys\":[{{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"{}\",\"y\":\"{}\",\
         \"kid\":\"{KEY_ID}\",\"use\":\"sig\",\"alg\":\"ES256\"}}]}}\n",
        base64url(x),
        base64url(y)
    ))
}

/// Base64url without padding (RFC 7515's encoding of the JWK coordinates).
pub fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let v = ((b[0] as u32) << 16) | ((b[1] as u32) << 8) | b[2] as u32;
        for k in 0..=chunk.len() {
            out.push(ALPHABET[((v >> (18 - 6 * k)) & 63) as usize] as char);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64url_has_no_padding() {
        // RFC 4648's test vectors, padding dropped, and the URL-safe letters.
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg"),
            ("fo", "Zm8"),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg"),
            ("fooba", "Zm9vYmE"),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64url(plain.as_bytes()), encoded);
        }
        assert_eq!(base64url(&[0xfb, 0xff]), "-_8");
    }

    #[test]
    fn jwks_holds_the_coordinates() {
        let mut point = vec![0x04];
        point.extend([0u8; 32]);
        point.extend([0xffu8; 32]);
        let x = "A".repeat(43);
        let y = format!("{}8", "_".repeat(42));
        assert_eq!(
            jwks_json(&point).unwrap(),
            format!(
                "{{\"keys\":[{{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"{x}\",\"y\":\"{y}\",\
                 \"kid\":\"purekafka-test\",\"use\":\"sig\",\"alg\":\"ES256\"}}]}}\n"
            )
        );
        assert!(jwks_json(&point[1..]).is_err(), "no 0x04 prefix");
        assert!(jwks_json(&point[..33]).is_err(), "too short");
    }

    #[test]
    fn a_generated_key_gives_a_jwks() {
        let key = KeyPair::generate().unwrap();
        let jwks = jwks_json(key.public_key_raw()).unwrap();
        assert!(jwks.contains("\"x\":\"") && !jwks.contains('='), "{jwks}");
    }
}
