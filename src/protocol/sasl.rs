//! SASL mechanisms as pure state machines: bytes in, bytes out. The connection layer carries
//! their tokens in SaslAuthenticate requests (or, on brokers before Kafka 1.0, as raw frames).

/// A SASL mechanism (`sasl.mechanism`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SaslMechanism {
    /// RFC 4616 PLAIN: username and password in one message.
    Plain,
}

impl SaslMechanism {
    /// The mechanism's name as Kafka spells it.
    pub fn name(&self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
        }
    }
}

/// A client-side SASL exchange.
#[derive(Debug)]
pub enum SaslClient {
    /// PLAIN (RFC 4616): one message, no challenge.
    Plain(Plain),
}

impl SaslClient {
    /// Starts an exchange with `mechanism` for these credentials.
    pub fn new(mechanism: SaslMechanism, username: &str, password: &str) -> Self {
        match mechanism {
            SaslMechanism::Plain => SaslClient::Plain(Plain {
                message: plain_message(username, password),
            }),
        }
    }

    /// The mechanism's name, as sent in SaslHandshake.
    pub fn mechanism(&self) -> &'static str {
        match self {
            SaslClient::Plain(_) => SaslMechanism::Plain.name(),
        }
    }

    /// The first token the client sends.
    pub fn initial_response(&self) -> &[u8] {
        match self {
            SaslClient::Plain(p) => &p.message,
        }
    }

    /// Takes the server's answer to the last token. Returns the next token to send, or `None`
    /// when the exchange is complete.
    pub fn step(&mut self, _server: &[u8]) -> Result<Option<Vec<u8>>, String> {
        match self {
            // PLAIN is done once the server accepted the single message.
            SaslClient::Plain(_) => Ok(None),
        }
    }
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
        let mut client = SaslClient::new(SaslMechanism::Plain, "inst#user", "pw");
        assert_eq!(client.mechanism(), "PLAIN");
        assert_eq!(client.initial_response(), b"\0inst#user\0pw");
        assert_eq!(client.step(b""), Ok(None));
        assert!(!format!("{client:?}").contains("pw"));
    }
}
