//! OAUTHBEARER tokens: what a token is, where it comes from, and how a client keeps one.
//!
//! ```text
//!  TokenProvider ── token() ──► OAuthBearerToken ──► TokenSource (one per client) ──► SASL
//!    ├─ Unsecured: sasl.oauthbearer.config, signed by no one (development only)
//!    ├─ Oidc: sasl.oauthbearer.method=oidc, the client-credentials grant (`oidc` feature)
//!    └─ the application's own (ClientConfig::oauthbearer_token_provider)
//! ```
//!
//! A client asks its [`TokenProvider`] for a token when it first authenticates, and again
//! once 80% of the token's lifetime has gone, as librdkafka does: every connection made or
//! re-authenticated after that point presents the new token. All connections of a client share
//! one token; two connections that need a new one at once ask the provider once, and a call
//! whose connection gave up on it runs on for the next. When a refresh fails while the old
//! token is still valid, the old one goes on being used, and the provider is asked again at the
//! next authentication, no sooner than a second later.

mod jwt;
#[cfg(feature = "oidc")]
mod oidc;
mod unsecured;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

#[cfg(feature = "oidc")]
pub(crate) use oidc::{OidcProvider, OidcSettings};
pub(crate) use unsecured::UnsecuredProvider;

use crate::config::Secret;

/// An OAUTHBEARER token, with what the client needs to know of it: the Go client's
/// `kafka.OAuthBearerToken`, the Java client's `OAuthBearerToken`.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use purekafka::oauth::OAuthBearerToken;
///
/// let token = OAuthBearerToken::new(
///     "eyJhbGciOi...",
///     "alice",
///     SystemTime::now() + Duration::from_secs(3600),
/// )
/// .with_extension("traceId", "123");
/// assert_eq!(token.principal(), "alice");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct OAuthBearerToken {
    value: Secret,
    principal: String,
    expires_at: SystemTime,
    extensions: Vec<(String, String)>,
}

impl OAuthBearerToken {
    /// A token: its value (often a JWT, sent as is), the principal it stands for, and when it
    /// expires.
    pub fn new(
        value: impl Into<String>,
        principal: impl Into<String>,
        expires_at: SystemTime,
    ) -> Self {
        OAuthBearerToken {
            value: Secret::new(value),
            principal: principal.into(),
            expires_at,
            extensions: Vec::new(),
        }
    }

    /// Adds a SASL extension (RFC 7628 section 3.1), sent with the token: say, a logical
    /// cluster or pool id a managed service asks for.
    pub fn with_extension(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.extensions.push((key.into(), value.into()));
        self
    }

    /// The token itself, as sent.
    pub fn value(&self) -> &str {
        self.value.expose()
    }

    /// The principal the token stands for (for logs and errors; the broker reads its own
    /// from the token).
    pub fn principal(&self) -> &str {
        &self.principal
    }

    /// When the token expires.
    pub fn expires_at(&self) -> SystemTime {
        self.expires_at
    }

    /// The SASL extensions sent with the token.
    pub fn extensions(&self) -> &[(String, String)] {
        &self.extensions
    }

    /// Checks what RFC 6750 and RFC 7628 allow, so that a bad token is refused here with a
    /// reason rather than by the broker without one: the value is a `b64token`, each
    /// extension key is letters only and not `auth`, and each value is printable.
    pub(crate) fn check(&self) -> Result<(), TokenError> {
        let value = self.value();
        let body = value.trim_end_matches('=');
        if body.is_empty()
            || !body
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b))
        {
            return Err(TokenError::new(
                "the token value is not an RFC 6750 b64token (letters, digits and -._~+/ \
                 followed by any =)",
            ));
        }
        if self.principal.is_empty() {
            return Err(TokenError::new("the token names no principal"));
        }
        for (key, value) in &self.extensions {
            check_extension(key, value)?;
        }
        Ok(())
    }
}

impl fmt::Debug for OAuthBearerToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuthBearerToken")
            .field("value", &self.value)
            .field("principal", &self.principal)
            .field("expires_at", &self.expires_at)
            .field("extensions", &self.extensions)
            .finish()
    }
}

/// Checks one SASL extension: the key is letters only and not the reserved `auth`, the value
/// is printable ASCII, spaces, tabs or line breaks (RFC 7628 section 3.1).
pub(crate) fn check_extension(key: &str, value: &str) -> Result<(), TokenError> {
    if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Err(TokenError::new(format!(
            "the SASL extension key `{key}` is not letters only (RFC 7628)"
        )));
    }
    if key == "auth" {
        return Err(TokenError::new(
            "`auth` is reserved for the token and cannot be a SASL extension",
        ));
    }
    if !value
        .bytes()
        .all(|b| (0x21..=0x7e).contains(&b) || b" \t\r\n".contains(&b))
    {
        return Err(TokenError::new(format!(
            "the value of the SASL extension `{key}` has characters RFC 7628 does not allow"
        )));
    }
    Ok(())
}

/// Why no token could be had: the provider's reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct TokenError {
    message: String,
}

impl TokenError {
    /// An error with this message. It ends up in [`crate::Error::Authentication`], so it must
    /// not hold a secret.
    pub fn new(message: impl fmt::Display) -> Self {
        TokenError {
            message: message.to_string(),
        }
    }
}

/// What [`TokenProvider::token`] returns.
pub type TokenFuture<'a> =
    Pin<Box<dyn Future<Output = Result<OAuthBearerToken, TokenError>> + Send + 'a>>;

/// Where a client's OAUTHBEARER tokens come from: librdkafka's `oauthbearer_token_refresh_cb`,
/// the Java client's login callback handler. Set with
/// [`ClientConfig::oauthbearer_token_provider`](crate::ClientConfig::oauthbearer_token_provider).
///
/// The client asks for a token when it first authenticates and again once 80% of the last
/// one's lifetime has gone; one call at a time. A call that fails while the last token is
/// still valid does no harm: that one is used until it expires.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use purekafka::oauth::{OAuthBearerToken, TokenFuture, TokenProvider};
///
/// struct FromVault;
///
/// impl TokenProvider for FromVault {
///     fn token(&self) -> TokenFuture<'_> {
///         Box::pin(async {
///             // Ask the identity provider here.
///             let expires = SystemTime::now() + Duration::from_secs(3600);
///             Ok(OAuthBearerToken::new("token-from-the-vault", "alice", expires))
///         })
///     }
/// }
///
/// let config = purekafka::ClientConfig::new()
///     .set("security.protocol", "SASL_PLAINTEXT").unwrap()
///     .set("sasl.mechanism", "OAUTHBEARER").unwrap()
///     .oauthbearer_token_provider(FromVault);
/// ```
pub trait TokenProvider: Send + Sync + 'static {
    /// A fresh token. Cancel-safe is expected: the client drops the future when the
    /// connection it was for gives up.
    fn token(&self) -> TokenFuture<'_>;
}

/// A configured provider, shared by the clients built from one configuration. Two configs are
/// equal when they hold the same provider.
#[derive(Clone)]
pub struct SharedTokenProvider(pub(crate) Arc<dyn TokenProvider>);

impl PartialEq for SharedTokenProvider {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for SharedTokenProvider {}

impl fmt::Debug for SharedTokenProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenProvider")
    }
}

/// The share of its lifetime after which a token is refreshed, as in librdkafka.
const REFRESH_AT: f64 = 0.8;
/// The least time between two calls to a provider after one failed.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// One client's token: the provider, and the token it last gave.
pub(crate) struct TokenSource {
    provider: Arc<dyn TokenProvider>,
    state: tokio::sync::Mutex<Held>,
}

/// The answer of a call to the provider.
type Fetched = Result<OAuthBearerToken, TokenError>;

#[derive(Default)]
struct Held {
    token: Option<OAuthBearerToken>,
    /// When the held token is to be replaced.
    refresh_at: Option<SystemTime>,
    /// When the provider last failed.
    failed_at: Option<tokio::time::Instant>,
    /// The call to the provider under way, on a task of its own: a caller that gives up (its
    /// connection timed out) leaves it to finish for the next.
    fetching: Option<tokio::task::JoinHandle<Fetched>>,
}

impl Drop for Held {
    /// The client is gone: so is the call to its provider.
    fn drop(&mut self) {
        if let Some(fetching) = self.fetching.take() {
            fetching.abort();
        }
    }
}

impl fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenSource")
    }
}

impl TokenSource {
    pub fn new(provider: Arc<dyn TokenProvider>) -> Self {
        TokenSource {
            provider,
            state: tokio::sync::Mutex::new(Held::default()),
        }
    }

    /// The token to authenticate with now: the one held while it is fresh, else a new one.
    /// Cancel-safe: dropped while the provider works, nothing is lost, and the provider's
    /// answer waits for the next caller.
    pub async fn current(&self) -> Result<OAuthBearerToken, TokenError> {
        self.current_at(SystemTime::now).await
    }

    /// As [`TokenSource::current`], with the wall clock `now` (the tests' own).
    async fn current_at(
        &self,
        now: impl Fn() -> SystemTime,
    ) -> Result<OAuthBearerToken, TokenError> {
        let mut held = self.state.lock().await;
        let asked = now();
        let valid = held
            .token
            .as_ref()
            .filter(|t| t.expires_at > asked)
            .cloned();
        if let (Some(token), Some(refresh_at)) = (&valid, held.refresh_at) {
            let resting = held.failed_at.is_some_and(|at| at.elapsed() < RETRY_AFTER);
            if held.fetching.is_none() && (asked < refresh_at || resting) {
                return Ok(token.clone());
            }
        }
        let provider = self.provider.clone();
        let fetching = held
            .fetching
            .get_or_insert_with(|| tokio::spawn(async move { provider.token().await }));
        let answer = fetching.await.unwrap_or_else(|e| {
            Err(TokenError::new(format!(
                "the token provider panicked or was cancelled: {e}"
            )))
        });
        held.fetching = None;
        let now = now();
        let fetched = answer.and_then(|token| {
            token.check()?;
            match token.expires_at.duration_since(now) {
                Ok(life) if !life.is_zero() => Ok((token, life)),
                _ => Err(TokenError::new(format!(
                    "the provider's token for `{}` has already expired",
                    token.principal
                ))),
            }
        });
        match fetched {
            Ok((token, life)) => {
                tracing::debug!(
                    principal = %token.principal,
                    lifetime_s = life.as_secs(),
                    "OAUTHBEARER token refreshed"
                );
                held.refresh_at = Some(now + life.mul_f64(REFRESH_AT));
                held.failed_at = None;
                held.token = Some(token.clone());
                Ok(token)
            }
            Err(e) => {
                held.failed_at = Some(tokio::time::Instant::now());
                match held.token.as_ref().filter(|t| t.expires_at > now) {
                    Some(token) => {
                        tracing::warn!(
                            error = %e,
                            "refreshing the OAUTHBEARER token failed; the current one is used \
                             until it expires"
                        );
                        Ok(token.clone())
                    }
                    None => Err(e),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;

    use super::*;

    /// Hands out the tokens it is given, in turn, counting the calls.
    struct Scripted {
        answers: Mutex<Vec<Result<OAuthBearerToken, TokenError>>>,
        calls: AtomicUsize,
    }

    impl TokenProvider for Scripted {
        fn token(&self) -> TokenFuture<'_> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            let next = self.answers.lock().unwrap().remove(0);
            Box::pin(async move { next })
        }
    }

    /// The tests' wall clock: tokens expire relative to it, and each call says when it is.
    fn base() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)
    }

    fn at(seconds: u64) -> impl Fn() -> SystemTime {
        move || base() + Duration::from_secs(seconds)
    }

    fn token(value: &str, life: Duration) -> OAuthBearerToken {
        OAuthBearerToken::new(value, "alice", base() + life)
    }

    fn source(answers: Vec<Result<OAuthBearerToken, TokenError>>) -> (Arc<Scripted>, TokenSource) {
        let provider = Arc::new(Scripted {
            answers: Mutex::new(answers),
            calls: AtomicUsize::new(0),
        });
        (provider.clone(), TokenSource::new(provider))
    }

    #[tokio::test(start_paused = true)]
    async fn a_fresh_token_is_reused_and_an_old_one_replaced() {
        let (provider, source) = source(vec![
            Ok(token("first", Duration::from_secs(100))),
            Ok(token("second", Duration::from_secs(3600))),
        ]);
        assert_eq!(source.current_at(at(0)).await.unwrap().value(), "first");
        assert_eq!(source.current_at(at(79)).await.unwrap().value(), "first");
        assert_eq!(provider.calls.load(Ordering::SeqCst), 1);
        // Past 80% of its 100 s.
        assert_eq!(source.current_at(at(81)).await.unwrap().value(), "second");
        assert_eq!(provider.calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_refresh_keeps_the_valid_token_and_rests() {
        let down = || Err(TokenError::new("identity provider down"));
        let (provider, source) = source(vec![
            Ok(token("first", Duration::from_secs(100))),
            down(),
            down(),
        ]);
        source.current_at(at(0)).await.unwrap();
        assert_eq!(source.current_at(at(85)).await.unwrap().value(), "first");
        // Within a second of the failure, the provider is not asked again.
        assert_eq!(source.current_at(at(86)).await.unwrap().value(), "first");
        assert_eq!(provider.calls.load(Ordering::SeqCst), 2);
        // Once the token has expired, the provider is asked, and its failure is the answer.
        let e = source.current_at(at(101)).await.unwrap_err();
        assert_eq!(e.to_string(), "identity provider down");
        assert_eq!(provider.calls.load(Ordering::SeqCst), 3);
    }

    /// A caller that gives up while the provider works (its connection's setup timed out)
    /// leaves the call running: the next caller gets its answer without asking again.
    #[tokio::test(start_paused = true)]
    async fn a_slow_provider_is_asked_once_across_callers_that_give_up() {
        struct Slow(AtomicUsize);
        impl TokenProvider for Slow {
            fn token(&self) -> TokenFuture<'_> {
                self.0.fetch_add(1, Ordering::SeqCst);
                Box::pin(async {
                    tokio::time::sleep(Duration::from_secs(40)).await;
                    Ok(OAuthBearerToken::new(
                        "slow",
                        "alice",
                        SystemTime::now() + Duration::from_secs(3600),
                    ))
                })
            }
        }
        let provider = Arc::new(Slow(AtomicUsize::new(0)));
        let source = TokenSource::new(provider.clone());
        let gave_up = tokio::time::timeout(Duration::from_secs(30), source.current()).await;
        assert!(gave_up.is_err());
        let token = tokio::time::timeout(Duration::from_secs(30), source.current())
            .await
            .expect("the first call's answer, 10 s later")
            .unwrap();
        assert_eq!(token.value(), "slow");
        assert_eq!(provider.0.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn expired_and_malformed_tokens_are_refused_with_the_reason() {
        let expired = OAuthBearerToken::new("abc", "alice", SystemTime::UNIX_EPOCH);
        let token = |value: &str, life: Duration| {
            OAuthBearerToken::new(value, "alice", SystemTime::now() + life)
        };
        let (_, s) = source(vec![Ok(expired)]);
        let e = s.current().await.unwrap_err().to_string();
        assert!(e.contains("already expired"), "{e}");

        let spaced = token("not a token", Duration::from_secs(60));
        let (_, s) = source(vec![Ok(spaced)]);
        let e = s.current().await.unwrap_err().to_string();
        assert!(e.contains("b64token"), "{e}");

        for (key, value, says) in [
            ("auth", "x", "reserved"),
            ("trace-id", "x", "letters only"),
            ("traceId", "\u{7f}", "does not allow"),
        ] {
            let t = token("abc", Duration::from_secs(60)).with_extension(key, value);
            let (_, s) = source(vec![Ok(t)]);
            let e = s.current().await.unwrap_err().to_string();
            assert!(e.contains(says), "{key}: {e}");
        }
    }

    #[test]
    fn the_token_value_is_never_printed() {
        let t = token("s3cr3t-token", Duration::from_secs(60));
        assert!(!format!("{t:?}").contains("s3cr3t"));
    }
}
