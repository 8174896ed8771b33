//! SASL mechanisms as pure state machines: bytes in, bytes out. The connection layer carries
//! their tokens in SaslAuthenticate requests (or, on brokers before Kafka 1.0, as raw frames).
//!
//! - PLAIN (RFC 4616): here, one message.
//! - [`scram`]: SCRAM-SHA-256 and SCRAM-SHA-512, two rounds.
//! - OAUTHBEARER (RFC 7628): a bearer token and its extensions in one message; a refusal
//!   comes back as the server's error, which the client acknowledges before the broker fails
//!   the exchange.

pub mod scram;

use scram::{Scram, ScramHash};

/// Why a SASL exchange failed on the client's side of it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SaslError {
    /// The operating system gave no random bytes for the SCRAM nonce.
    #[error("no random bytes for the SCRAM nonce: {0}")]
    Random(String),
    /// A server message does not parse.
    #[error("malformed SCRAM {message} message: {reason}")]
    Malformed {
        /// `server-first` or `server-final`.
        message: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The server's nonce does not start with ours followed by its own part.
    #[error("the SCRAM server nonce (r=) does not extend the client's nonce")]
    NonceMismatch,
    /// The server asks for fewer PBKDF2 iterations than Kafka allows, or more.
    #[error(
        "the SCRAM server asks for {iterations} iterations, outside Kafka's {minimum}..={maximum}"
    )]
    IterationsOutOfRange {
        /// What the server sent (`i=`).
        iterations: u32,
        /// The least accepted.
        minimum: u32,
        /// The most accepted.
        maximum: u32,
    },
    /// The server ended the exchange with `e=`.
    #[error("the SCRAM server refused the exchange: e={0}")]
    ServerError(String),
    /// The server's `v=` is not the ServerSignature: it does not know the password.
    #[error(
        "the SCRAM server signature (v=) does not match: the server could not prove it knows \
         the credentials"
    )]
    ServerSignatureMismatch,
    /// A server message arrived after the exchange was complete.
    #[error("a SASL message arrived after the exchange was complete")]
    AlreadyComplete,
    /// The OAUTHBEARER server refused the token; its answer (RFC 7628's JSON error) is given.
    #[error("the broker refused the OAUTHBEARER token: {0}")]
    TokenRefused(String),
}

/// A SASL mechanism (`sasl.mechanism`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SaslMechanism {
    /// RFC 4616 PLAIN: username and password in one message.
    Plain,
    /// SCRAM-SHA-256 (RFC 7677): a salted challenge, the password never sent.
    ScramSha256,
    /// SCRAM-SHA-512: as SCRAM-SHA-256 with SHA-512.
    ScramSha512,
    /// OAUTHBEARER (RFC 7628): a bearer token from a token provider, unsecured tokens for
    /// development, or an OpenID Connect token endpoint (`sasl.oauthbearer.*`).
    OAuthBearer,
}

impl SaslMechanism {
    /// The mechanism's name as Kafka spells it.
    pub fn name(&self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
            SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
            SaslMechanism::OAuthBearer => "OAUTHBEARER",
        }
    }

    /// The mechanism Kafka names `name` (`PLAIN`, `SCRAM-SHA-256`, `SCRAM-SHA-512`,
    /// `OAUTHBEARER`), if spoken.
    pub fn from_name(name: &str) -> Option<SaslMechanism> {
        [
            SaslMechanism::Plain,
            SaslMechanism::ScramSha256,
            SaslMechanism::ScramSha512,
            SaslMechanism::OAuthBearer,
        ]
        .into_iter()
        .find(|m| m.name() == name)
    }
}

/// A client-side SASL exchange.
#[derive(Debug)]
pub enum SaslClient {
    /// PLAIN (RFC 4616): one message, no challenge.
    Plain(Plain),
    /// SCRAM (RFC 5802): client-first, then client-final with the proof.
    Scram(SaslMechanism, Scram),
    /// OAUTHBEARER (RFC 7628): one message with the token.
    OAuthBearer(OAuthBearer),
}

impl SaslClient {
    /// Starts an exchange of a password mechanism (PLAIN or SCRAM) for these credentials;
    /// SCRAM draws its nonce from the operating system. OAUTHBEARER takes a token instead
    /// ([`SaslClient::oauthbearer`]).
    pub fn new(
        mechanism: SaslMechanism,
        username: &str,
        password: &str,
    ) -> Result<Self, SaslError> {
        let nonce = match mechanism {
            SaslMechanism::ScramSha256 | SaslMechanism::ScramSha512 => scram::random_nonce()?,
            SaslMechanism::Plain | SaslMechanism::OAuthBearer => String::new(),
        };
        Ok(Self::with_nonce(mechanism, username, password, &nonce))
    }

    /// As [`SaslClient::new`] with a given SCRAM client nonce (printable, no `,`); PLAIN
    /// ignores it. OAUTHBEARER given here sends the password as its token.
    pub fn with_nonce(
        mechanism: SaslMechanism,
        username: &str,
        password: &str,
        nonce: &str,
    ) -> Self {
        let hash = match mechanism {
            SaslMechanism::Plain => {
                return SaslClient::Plain(Plain {
                    message: plain_message(username, password),
                })
            }
            SaslMechanism::OAuthBearer => return SaslClient::oauthbearer(password, &[]),
            SaslMechanism::ScramSha256 => ScramHash::Sha256,
            SaslMechanism::ScramSha512 => ScramHash::Sha512,
        };
        SaslClient::Scram(mechanism, Scram::new(hash, username, password, nonce))
    }

    /// Starts an OAUTHBEARER exchange that presents `token` with `extensions` (key, value).
    /// Both are sent as given: their syntax is checked where they are made
    /// (`crate::oauth`).
    pub fn oauthbearer(token: &str, extensions: &[(String, String)]) -> Self {
        SaslClient::OAuthBearer(OAuthBearer {
            message: oauthbearer_message(token, extensions),
            refusal: None,
        })
    }

    /// The mechanism's name, as sent in SaslHandshake.
    pub fn mechanism(&self) -> &'static str {
        match self {
            SaslClient::Plain(_) => SaslMechanism::Plain.name(),
            SaslClient::Scram(mechanism, _) => mechanism.name(),
            SaslClient::OAuthBearer(_) => SaslMechanism::OAuthBearer.name(),
        }
    }

    /// The first token the client sends.
    pub fn initial_response(&self) -> &[u8] {
        match self {
            SaslClient::Plain(p) => &p.message,
            SaslClient::Scram(_, s) => s.client_first(),
            SaslClient::OAuthBearer(o) => &o.message,
        }
    }

    /// Takes the server's answer to the last token. Returns the next token to send, or `None`
    /// when the exchange is complete.
    pub fn step(&mut self, server: &[u8]) -> Result<Option<Vec<u8>>, SaslError> {
        match self {
            // PLAIN is done once the server accepted the single message.
            SaslClient::Plain(_) => Ok(None),
            SaslClient::Scram(_, s) => s.step(server),
            SaslClient::OAuthBearer(o) => o.step(server),
        }
    }

    /// What the server said when it refused the exchange, where the mechanism carries that
    /// (OAUTHBEARER's JSON error), for the error the broker's refusal becomes.
    pub fn refusal(&self) -> Option<&str> {
        match self {
            SaslClient::OAuthBearer(o) => o.refusal.as_deref(),
            _ => None,
        }
    }
}

/// The OAUTHBEARER exchange's state: the message to send, then the server's refusal if it
/// sends one. Its `Debug` hides the token.
pub struct OAuthBearer {
    message: Vec<u8>,
    refusal: Option<String>,
}

impl std::fmt::Debug for OAuthBearer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OAuthBearer([redacted])")
    }
}

impl OAuthBearer {
    /// An empty answer accepts the token. Anything else is the server's error (RFC 7628 3.2.2),
    /// which the client acknowledges with a lone separator so that the broker can end the
    /// exchange with its own error; the error is kept for that.
    fn step(&mut self, server: &[u8]) -> Result<Option<Vec<u8>>, SaslError> {
        match &self.refusal {
            None if server.is_empty() => Ok(None),
            None => {
                self.refusal = Some(String::from_utf8_lossy(server).into_owned());
                Ok(Some(vec![SEPARATOR]))
            }
            Some(refusal) => Err(SaslError::TokenRefused(refusal.clone())),
        }
    }
}

/// RFC 7628's key-value separator, `kvsep` (%x01).
const SEPARATOR: u8 = 0x01;

/// `n,,` `kvsep` `auth=Bearer <token>` `kvsep` (`key=value` `kvsep`)* `kvsep`: the GS2 header
/// without an authorization id, as Kafka's clients send it.
fn oauthbearer_message(token: &str, extensions: &[(String, String)]) -> Vec<u8> {
    let mut m = Vec::with_capacity(32 + token.len());
    m.extend_from_slice(b"n,,");
    m.push(SEPARATOR);
    m.extend_from_slice(b"auth=Bearer ");
    m.extend_from_slice(token.as_bytes());
    m.push(SEPARATOR);
    for (key, value) in extensions {
        m.extend_from_slice(key.as_bytes());
        m.push(b'=');
        m.extend_from_slice(value.as_bytes());
        m.push(SEPARATOR);
    }
    m.push(SEPARATOR);
    m
}

/// The PLAIN exchange's state: the message to send. Its `Debug` hides the message.
pub struct Plain {
    message: Vec<u8>,
}

impl std::fmt::Debug for Plain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Plain([redacted])")
    }
}

/// `authzid NUL authcid NUL passwd`, with an empty authorization id, as Kafka expects.
fn plain_message(username: &str, password: &str) -> Vec<u8> {
    let mut m = Vec::with_capacity(2 + username.len() + password.len());
    m.push(0);
    m.extend_from_slice(username.as_bytes());
    m.push(0);
    m.extend_from_slice(password.as_bytes());
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn plain_message_layout() {
        let mut client = SaslClient::new(SaslMechanism::Plain, "inst#user", "pw").unwrap();
        assert_eq!(client.mechanism(), "PLAIN");
        assert_eq!(client.initial_response(), b"\0inst#user\0pw");
        assert_eq!(client.step(b""), Ok(None));
        assert!(!format!("{client:?}").contains("pw"));
    }

    #[test]
    fn mechanisms_by_name() {
        for m in [
            SaslMechanism::Plain,
            SaslMechanism::ScramSha256,
            SaslMechanism::ScramSha512,
            SaslMechanism::OAuthBearer,
        ] {
            assert_eq!(SaslMechanism::from_name(m.name()), Some(m));
        }
        assert_eq!(SaslMechanism::from_name("scram-sha-256"), None);
        assert_eq!(SaslMechanism::from_name("GSSAPI"), None);
    }

    #[test]
    fn scram_client_names_its_mechanism_and_hides_the_password() {
        let client = SaslClient::new(SaslMechanism::ScramSha512, "alice", "alice-secret").unwrap();
        assert_eq!(client.mechanism(), "SCRAM-SHA-512");
        assert!(client.initial_response().starts_with(b"n,,n=alice,r="));
        assert!(!format!("{client:?}").contains("alice-secret"));
    }

    /// The message of RFC 7628's example 4.1 (without its authorization id and host/port
    /// entries, which Kafka's clients do not send), byte for byte as Kafka's Java client
    /// writes it: `OAuthBearerClientInitialResponse`'s layout.
    #[test]
    fn oauthbearer_message_layout() {
        let extensions = [("traceId".to_owned(), "123".to_owned())];
        let mut client = SaslClient::oauthbearer("vF9dft4qmT", &extensions);
        assert_eq!(client.mechanism(), "OAUTHBEARER");
        assert_eq!(
            client.initial_response(),
            b"n,,\x01auth=Bearer vF9dft4qmT\x01traceId=123\x01\x01"
        );
        assert!(!format!("{client:?}").contains("vF9dft4qmT"));
        assert_eq!(client.step(b""), Ok(None));
    }

    /// A refusal is acknowledged with a lone separator and kept for the error.
    #[test]
    fn oauthbearer_refusal_is_acknowledged_and_kept() {
        let mut client = SaslClient::oauthbearer("token", &[]);
        let refusal = br#"{"status":"invalid_token"}"#;
        assert_eq!(client.step(refusal), Ok(Some(vec![0x01])));
        assert_eq!(client.refusal(), Some(r#"{"status":"invalid_token"}"#));
        assert!(matches!(
            client.step(b"more"),
            Err(SaslError::TokenRefused(_))
        ));
    }
}
