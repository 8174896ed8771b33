//! SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC 7677), client side, as Kafka speaks them:
//! no channel binding (`n,,`), no authorization id, the password's UTF-8 bytes as they are.
//!
//! ```text
//! client-first  n,,n=user,r=cnonce                     -> (SaslAuthenticate)
//! server-first  r=cnonce+snonce,s=salt,i=iterations    <-
//! client-final  c=biws,r=cnonce+snonce,p=proof         ->
//! server-final  v=server-signature  (or e=error)       <-
//! ```
//!
//! The nonce is an input, so the exchange is testable with the RFC's vectors; the connection
//! layer draws it from the operating system (see [`random_nonce`]).

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256, Sha512};

use super::SaslError;

/// Kafka's minimum iteration count for SCRAM credentials (`ScramMechanism.minIterations`): a
/// server asking for fewer is either misconfigured or trying to make the password cheap to crack
/// from what we send.
pub const MIN_ITERATIONS: u32 = 4096;

/// Kafka's maximum (`ScramMechanism.maxIterations`): a broker stores no credential with more. A
/// server asking for more, up to 2³² − 1, would keep the client hashing for hours.
pub const MAX_ITERATIONS: u32 = 16384;

/// The longest server `e=` text carried into an error: it comes from the network.
const MAX_SERVER_ERROR: usize = 200;

/// The hash of a SCRAM mechanism.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScramHash {
    /// SCRAM-SHA-256 (RFC 7677).
    Sha256,
    /// SCRAM-SHA-512.
    Sha512,
}

impl ScramHash {
    fn hash(self, data: &[u8]) -> Vec<u8> {
        match self {
            ScramHash::Sha256 => Sha256::digest(data).to_vec(),
            ScramHash::Sha512 => Sha512::digest(data).to_vec(),
        }
    }

    fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        match self {
            ScramHash::Sha256 => {
                let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key");
                mac.update(data);
                mac.finalize().into_bytes().to_vec()
            }
            ScramHash::Sha512 => {
                let mut mac = Hmac::<Sha512>::new_from_slice(key).expect("HMAC takes any key");
                mac.update(data);
                mac.finalize().into_bytes().to_vec()
            }
        }
    }

    /// Checks `HMAC(key, data) == expected` in constant time (hmac's `verify_slice`).
    fn hmac_verify(self, key: &[u8], data: &[u8], expected: &[u8]) -> bool {
        match self {
            ScramHash::Sha256 => {
                let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key");
                mac.update(data);
                mac.verify_slice(expected).is_ok()
            }
            ScramHash::Sha512 => {
                let mut mac = Hmac::<Sha512>::new_from_slice(key).expect("HMAC takes any key");
                mac.update(data);
                mac.verify_slice(expected).is_ok()
            }
        }
    }

    /// `Hi()` of RFC 5802: PBKDF2 with HMAC of this hash, one block.
    fn salted_password(self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        match self {
            ScramHash::Sha256 => {
                let mut out = [0u8; 32];
                pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, iterations, &mut out);
                out.to_vec()
            }
            ScramHash::Sha512 => {
                let mut out = [0u8; 64];
                pbkdf2::pbkdf2_hmac::<Sha512>(password, salt, iterations, &mut out);
                out.to_vec()
            }
        }
    }
}

/// The keys both sides derive from the salted password (RFC 5802 §3).
struct Proofs {
    /// `ClientKey XOR HMAC(StoredKey, AuthMessage)`.
    client_proof: Vec<u8>,
    /// `HMAC(ServerKey, AuthMessage)`.
    server_key: Vec<u8>,
}

/// Computes the client proof and the server key for `auth_message`.
fn proofs(
    hash: ScramHash,
    password: &[u8],
    salt: &[u8],
    iterations: u32,
    auth_message: &[u8],
) -> Proofs {
    let salted = hash.salted_password(password, salt, iterations);
    let client_key = hash.hmac(&salted, b"Client Key");
    let stored_key = hash.hash(&client_key);
    let client_signature = hash.hmac(&stored_key, auth_message);
    let client_proof = client_key
        .iter()
        .zip(&client_signature)
        .map(|(k, s)| k ^ s)
        .collect();
    Proofs {
        client_proof,
        server_key: hash.hmac(&salted, b"Server Key"),
    }
}

/// A fresh client nonce: 24 random bytes in base64 (printable, never a comma).
pub fn random_nonce() -> Result<String, SaslError> {
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes).map_err(|e| SaslError::Random(e.to_string()))?;
    Ok(BASE64.encode(bytes))
}

/// `saslname` of RFC 5802: `=` and `,` escaped as `=3D` and `=2C`.
fn sasl_name(username: &str) -> String {
    username.replace('=', "=3D").replace(',', "=2C")
}

/// Where a SCRAM exchange stands. Each step takes the state by value, so a finished state cannot
/// be stepped again.
enum State {
    /// client-first sent; the password waits for the salt.
    ClientFirstSent {
        client_first_bare: String,
        nonce: String,
        password: Vec<u8>,
    },
    /// client-final sent; the server must prove it knows the password too.
    ClientFinalSent {
        server_key: Vec<u8>,
        auth_message: String,
    },
    Done,
}

/// A SCRAM exchange. Its `Debug` shows the mechanism and nothing of the credentials.
pub struct Scram {
    hash: ScramHash,
    client_first: Vec<u8>,
    state: State,
}

impl std::fmt::Debug for Scram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Scram({:?}, [redacted])", self.hash)
    }
}

impl Scram {
    /// Starts an exchange with this client nonce (printable ASCII without `,`).
    pub fn new(hash: ScramHash, username: &str, password: &str, nonce: &str) -> Scram {
        let client_first_bare = format!("n={},r={nonce}", sasl_name(username));
        Scram {
            hash,
            client_first: format!("n,,{client_first_bare}").into_bytes(),
            state: State::ClientFirstSent {
                client_first_bare,
                nonce: nonce.to_owned(),
                password: password.as_bytes().to_vec(),
            },
        }
    }

    /// client-first-message.
    pub fn client_first(&self) -> &[u8] {
        &self.client_first
    }

    /// Takes the server's message: server-first gives client-final, server-final (verified)
    /// gives `None`.
    pub fn step(&mut self, server: &[u8]) -> Result<Option<Vec<u8>>, SaslError> {
        match std::mem::replace(&mut self.state, State::Done) {
            State::ClientFirstSent {
                client_first_bare,
                nonce,
                password,
            } => {
                let (next, state) =
                    self.client_final(server, &client_first_bare, &nonce, password)?;
                self.state = state;
                Ok(Some(next))
            }
            State::ClientFinalSent {
                server_key,
                auth_message,
            } => {
                self.verify_server_final(server, &server_key, &auth_message)?;
                Ok(None)
            }
            State::Done => Err(SaslError::AlreadyComplete),
        }
    }

    fn client_final(
        &self,
        server: &[u8],
        client_first_bare: &str,
        nonce: &str,
        password: Vec<u8>,
    ) -> Result<(Vec<u8>, State), SaslError> {
        const WHICH: &str = "server-first";
        let server_first =
            std::str::from_utf8(server).map_err(|_| malformed(WHICH, "not UTF-8"))?;
        let attrs = attributes(WHICH, server_first)?;
        if let Some(error) = attribute(&attrs, 'e') {
            return Err(server_error(error));
        }
        if attrs.first().map(|(k, _)| *k) == Some('m') {
            return Err(malformed(
                WHICH,
                "a mandatory extension (m=) we do not know",
            ));
        }
        let combined = attribute(&attrs, 'r').ok_or_else(|| malformed(WHICH, "no nonce (r=)"))?;
        if combined.len() <= nonce.len() || !combined.starts_with(nonce) {
            return Err(SaslError::NonceMismatch);
        }
        let salt = attribute(&attrs, 's').ok_or_else(|| malformed(WHICH, "no salt (s=)"))?;
        let salt = BASE64
            .decode(salt)
            .map_err(|_| malformed(WHICH, "the salt (s=) is not base64"))?;
        let iterations: u32 = attribute(&attrs, 'i')
            .ok_or_else(|| malformed(WHICH, "no iteration count (i=)"))?
            .parse()
            .map_err(|_| malformed(WHICH, "the iteration count (i=) is not a number"))?;
        if !(MIN_ITERATIONS..=MAX_ITERATIONS).contains(&iterations) {
            return Err(SaslError::IterationsOutOfRange {
                iterations,
                minimum: MIN_ITERATIONS,
                maximum: MAX_ITERATIONS,
            });
        }
        // c=biws is base64("n,,"): no channel binding, no authorization id.
        let without_proof = format!("c=biws,r={combined}");
        let auth_message = format!("{client_first_bare},{server_first},{without_proof}");
        let proofs = proofs(
            self.hash,
            &password,
            &salt,
            iterations,
            auth_message.as_bytes(),
        );
        let message = format!("{without_proof},p={}", BASE64.encode(&proofs.client_proof));
        Ok((
            message.into_bytes(),
            State::ClientFinalSent {
                server_key: proofs.server_key,
                auth_message,
            },
        ))
    }

    fn verify_server_final(
        &self,
        server: &[u8],
        server_key: &[u8],
        auth_message: &str,
    ) -> Result<(), SaslError> {
        const WHICH: &str = "server-final";
        let text = std::str::from_utf8(server).map_err(|_| malformed(WHICH, "not UTF-8"))?;
        let attrs = attributes(WHICH, text)?;
        if let Some(error) = attribute(&attrs, 'e') {
            return Err(server_error(error));
        }
        let verifier = attribute(&attrs, 'v')
            .ok_or_else(|| malformed(WHICH, "neither a verifier (v=) nor an error (e=)"))?;
        let verifier = BASE64
            .decode(verifier)
            .map_err(|_| malformed(WHICH, "the verifier (v=) is not base64"))?;
        if self
            .hash
            .hmac_verify(server_key, auth_message.as_bytes(), &verifier)
        {
            Ok(())
        } else {
            Err(SaslError::ServerSignatureMismatch)
        }
    }
}

fn malformed(message: &'static str, reason: &'static str) -> SaslError {
    SaslError::Malformed { message, reason }
}

fn server_error(value: &str) -> SaslError {
    SaslError::ServerError(value.chars().take(MAX_SERVER_ERROR).collect())
}

/// `k=value` pairs separated by commas. Values may hold `=` (base64 padding) but not `,`.
fn attributes<'a>(which: &'static str, text: &'a str) -> Result<Vec<(char, &'a str)>, SaslError> {
    text.split(',')
        .map(|part| {
            let mut chars = part.chars();
            match (chars.next(), chars.next()) {
                (Some(k), Some('=')) if k.is_ascii_alphabetic() => Ok((k, &part[2..])),
                _ => Err(malformed(which, "an attribute is not of the form k=value")),
            }
        })
        .collect()
}

fn attribute<'a>(attrs: &[(char, &'a str)], key: char) -> Option<&'a str> {
    attrs.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7677 §3.
    const RFC_SERVER_FIRST: &str =
        "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
    const RFC_CLIENT_FINAL: &str = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
         p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
    const RFC_SERVER_FINAL: &str = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

    fn rfc_client() -> Scram {
        Scram::new(ScramHash::Sha256, "user", "pencil", "rOprNGfwEbeRWgbNEkqO")
    }

    #[test]
    fn rfc7677_vector() {
        let mut scram = rfc_client();
        assert_eq!(scram.client_first(), b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        let client_final = scram.step(RFC_SERVER_FIRST.as_bytes()).unwrap().unwrap();
        assert_eq!(
            std::str::from_utf8(&client_final).unwrap(),
            RFC_CLIENT_FINAL
        );
        assert_eq!(scram.step(RFC_SERVER_FINAL.as_bytes()), Ok(None));
        assert_eq!(scram.step(b"v=again"), Err(SaslError::AlreadyComplete));
        assert!(!format!("{scram:?}").contains("pencil"));
    }

    #[test]
    fn a_forged_server_signature_is_refused() {
        let mut scram = rfc_client();
        scram.step(RFC_SERVER_FIRST.as_bytes()).unwrap();
        let forged = "v=7rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";
        assert_eq!(
            scram.step(forged.as_bytes()),
            Err(SaslError::ServerSignatureMismatch)
        );
        let mut scram = rfc_client();
        scram.step(RFC_SERVER_FIRST.as_bytes()).unwrap();
        assert_eq!(
            scram.step(b"v=AAAA"),
            Err(SaslError::ServerSignatureMismatch)
        );
    }

    #[test]
    fn a_server_nonce_that_does_not_extend_ours_is_refused() {
        for server_first in [
            "r=XOprNGfwEbeRWgbNEkqO%hvYDpWUa2R,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
            // Ours alone: the server added nothing.
            "r=rOprNGfwEbeRWgbNEkqO,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
        ] {
            assert_eq!(
                rfc_client().step(server_first.as_bytes()),
                Err(SaslError::NonceMismatch)
            );
        }
    }

    #[test]
    fn iteration_counts_outside_kafkas_range_are_refused() {
        for (count, sent) in [(4095, "4095"), (16385, "16385"), (u32::MAX, "4294967295")] {
            let first = format!("r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i={sent}");
            let err = rfc_client().step(first.as_bytes()).unwrap_err();
            assert_eq!(
                err,
                SaslError::IterationsOutOfRange {
                    iterations: count,
                    minimum: 4096,
                    maximum: 16384
                }
            );
            assert!(err.to_string().contains(sent), "{err}");
        }
    }

    #[test]
    fn a_server_error_is_named() {
        let err = rfc_client().step(b"e=unknown-user").unwrap_err();
        assert_eq!(err, SaslError::ServerError("unknown-user".into()));
        assert!(err.to_string().contains("e=unknown-user"), "{err}");
        let mut scram = rfc_client();
        scram.step(RFC_SERVER_FIRST.as_bytes()).unwrap();
        assert_eq!(
            scram.step(b"e=invalid-proof"),
            Err(SaslError::ServerError("invalid-proof".into()))
        );
    }

    #[test]
    fn malformed_server_messages_are_refused() {
        for server_first in [
            "",
            "r=rOprNGfwEbeRWgbNEkqOx,s=W22ZaJ0SNY7soEsUEjb6gQ==",
            "r=rOprNGfwEbeRWgbNEkqOx,s=!!,i=4096",
            "r=rOprNGfwEbeRWgbNEkqOx,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=many",
            "m=ext,r=rOprNGfwEbeRWgbNEkqOx,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
            "garbage",
        ] {
            let err = rfc_client().step(server_first.as_bytes()).unwrap_err();
            assert!(
                matches!(err, SaslError::Malformed { .. }),
                "{server_first}: {err:?}"
            );
        }
    }

    #[test]
    fn the_username_is_escaped() {
        let scram = Scram::new(ScramHash::Sha256, "a=b,c", "pw", "nonce");
        assert_eq!(scram.client_first(), b"n,,n=a=3Db=2Cc,r=nonce");
    }

    /// SHA-512 against the server side of the exchange computed here from the RFC's formulas.
    #[test]
    fn sha512_round_trip_with_a_server() {
        let (user, password, salt, iterations) = ("alice", "alice-secret", b"salty-salt", 4096);
        let nonce = random_nonce().unwrap();
        assert!(!nonce.contains(','));
        let mut scram = Scram::new(ScramHash::Sha512, user, password, &nonce);
        let client_first = String::from_utf8(scram.client_first().to_vec()).unwrap();
        let bare = client_first.strip_prefix("n,,").unwrap();
        assert_eq!(bare, format!("n=alice,r={nonce}"));

        // The server: its stored credential is (salt, StoredKey, ServerKey).
        let hash = ScramHash::Sha512;
        let salted = hash.salted_password(password.as_bytes(), salt, iterations);
        let stored_key = hash.hash(&hash.hmac(&salted, b"Client Key"));
        let server_key = hash.hmac(&salted, b"Server Key");
        let server_first = format!("r={nonce}srv,s={},i={iterations}", BASE64.encode(salt));

        let client_final = scram.step(server_first.as_bytes()).unwrap().unwrap();
        let client_final = String::from_utf8(client_final).unwrap();
        let (without_proof, proof) = client_final.rsplit_once(",p=").unwrap();
        assert_eq!(without_proof, format!("c=biws,r={nonce}srv"));
        let auth_message = format!("{bare},{server_first},{without_proof}");
        let signature = hash.hmac(&stored_key, auth_message.as_bytes());
        let client_key: Vec<u8> = BASE64
            .decode(proof)
            .unwrap()
            .iter()
            .zip(&signature)
            .map(|(p, s)| p ^ s)
            .collect();
        assert_eq!(hash.hash(&client_key), stored_key, "the proof checks out");

        let verifier = hash.hmac(&server_key, auth_message.as_bytes());
        let server_final = format!("v={}", BASE64.encode(verifier));
        assert_eq!(scram.step(server_final.as_bytes()), Ok(None));
    }
}
