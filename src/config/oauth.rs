//! The settings of SASL/OAUTHBEARER (`sasl.oauthbearer.*`, `https.ca.*`), under librdkafka's
//! names, and the choice among the three sources of tokens they make.
//!
//! Only settings live here; the provider is made when a client is built (`conn`), where the
//! token endpoint's TLS configuration is made too.

use std::path::PathBuf;

use super::properties::Value;
use super::Secret;
use crate::error::ConfigError;
use crate::oauth::{check_extension, SharedTokenProvider, UnsecuredProvider};

/// How OAUTHBEARER tokens are had (`sasl.oauthbearer.method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OAuthBearerMethod {
    /// `default`: the application's token provider
    /// ([`ClientConfig::oauthbearer_token_provider`](super::ClientConfig::oauthbearer_token_provider)),
    /// or unsecured tokens with `enable.sasl.oauthbearer.unsecure.jwt=true`.
    #[default]
    Default,
    /// `oidc`: the client-credentials grant at `sasl.oauthbearer.token.endpoint.url` (the
    /// `oidc` feature).
    Oidc,
}

/// The OAUTHBEARER settings, used with `sasl.mechanism=OAUTHBEARER`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct OAuthBearerConfig {
    /// `sasl.oauthbearer.method`.
    pub method: OAuthBearerMethod,
    /// `sasl.oauthbearer.config`: the unsecured token's description (`principal=alice
    /// scope=a,b lifeSeconds=600 extension_NAME=value`).
    pub config: Option<String>,
    /// `enable.sasl.oauthbearer.unsecure.jwt`: make unsecured tokens from `config` when no
    /// token provider is set. For development only.
    pub unsecure_jwt: bool,
    /// `sasl.oauthbearer.client.id` (alias `sasl.oauthbearer.client.credentials.client.id`).
    pub client_id: Option<String>,
    /// `sasl.oauthbearer.client.secret` (alias `...client.credentials.client.secret`).
    pub client_secret: Option<Secret>,
    /// `sasl.oauthbearer.scope`: the scope asked of the token endpoint.
    pub scope: Option<String>,
    /// `sasl.oauthbearer.extensions`: SASL extensions sent with OIDC tokens, from
    /// `key=value,key=value`.
    pub extensions: Vec<(String, String)>,
    /// `sasl.oauthbearer.token.endpoint.url`.
    pub token_endpoint_url: Option<String>,
    /// `sasl.oauthbearer.sub.claim.name`: the claim of an OIDC token that names the principal.
    pub sub_claim_name: String,
    /// `https.ca.location`: CA certificates (PEM file or folder) for the token endpoint;
    /// `probe` or unset means the system's.
    pub https_ca_location: Option<PathBuf>,
    /// `https.ca.pem`: the same as PEM text.
    pub https_ca_pem: Option<String>,
    /// The application's token provider, which takes precedence over the rest.
    pub provider: Option<SharedTokenProvider>,
}

impl Default for OAuthBearerConfig {
    fn default() -> Self {
        OAuthBearerConfig {
            method: OAuthBearerMethod::Default,
            config: None,
            unsecure_jwt: false,
            client_id: None,
            client_secret: None,
            scope: None,
            extensions: Vec::new(),
            token_endpoint_url: None,
            sub_claim_name: "sub".to_owned(),
            https_ca_location: None,
            https_ca_pem: None,
            provider: None,
        }
    }
}

/// Where a client's tokens come from, once the settings are checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TokenSpec {
    Provider(SharedTokenProvider),
    Unsecured(UnsecuredProvider),
    #[cfg(feature = "oidc")]
    Oidc(crate::oauth::OidcSettings),
}

/// Applies `v` when it is an OAUTHBEARER property: `Ok(false)` when it is not one.
pub(super) fn apply(o: &mut OAuthBearerConfig, v: &Value) -> Result<bool, ConfigError> {
    let text = || (!v.value.is_empty()).then(|| v.value.to_owned());
    match v.key {
        "sasl.oauthbearer.config" => o.config = text(),
        "enable.sasl.oauthbearer.unsecure.jwt" => o.unsecure_jwt = v.boolean()?,
        "sasl.oauthbearer.method" => {
            o.method = v.one_of(&[
                ("default", OAuthBearerMethod::Default),
                ("oidc", OAuthBearerMethod::Oidc),
            ])?;
            if o.method == OAuthBearerMethod::Oidc && !cfg!(feature = "oidc") {
                return Err(v.invalid(NO_OIDC));
            }
        }
        "sasl.oauthbearer.client.id" | "sasl.oauthbearer.client.credentials.client.id" => {
            o.client_id = text()
        }
        "sasl.oauthbearer.client.secret" | "sasl.oauthbearer.client.credentials.client.secret" => {
            o.client_secret = Some(Secret::new(v.value))
        }
        "sasl.oauthbearer.scope" => o.scope = text(),
        "sasl.oauthbearer.extensions" => o.extensions = extensions(v)?,
        "sasl.oauthbearer.token.endpoint.url" => {
            let scheme = v
                .value
                .split_once("://")
                .map(|(s, _)| s.to_ascii_lowercase());
            if !matches!(scheme.as_deref(), Some("https" | "http")) {
                return Err(v.invalid("expected an https:// (or http://) URL"));
            }
            o.token_endpoint_url = Some(v.value.to_owned());
        }
        "sasl.oauthbearer.sub.claim.name" => {
            o.sub_claim_name = text().ok_or_else(|| v.invalid("expected a claim name"))?
        }
        "https.ca.location" => {
            o.https_ca_location =
                (v.value != "probe" && !v.value.is_empty()).then(|| PathBuf::from(v.value))
        }
        "https.ca.pem" => o.https_ca_pem = text(),
        _ => return Ok(false),
    }
    Ok(true)
}

/// The Java client's login callback handler for OIDC (KIP-768), under its name from Kafka 3.4
/// and its earlier one: naming it in `sasl.login.callback.handler.class` means the OIDC method.
const JAVA_OIDC_HANDLERS: [&str; 2] = [
    "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginCallbackHandler",
    "org.apache.kafka.common.security.oauthbearer.secured.OAuthBearerLoginCallbackHandler",
];

/// Applies the Java client's `sasl.login.callback.handler.class` when it names the OIDC login
/// handler; any other class is left to the catalogue, which refuses it.
pub(super) fn apply_java_handler(
    o: &mut OAuthBearerConfig,
    v: &Value,
) -> Result<bool, ConfigError> {
    if v.key != "sasl.login.callback.handler.class" || !JAVA_OIDC_HANDLERS.contains(&v.value.trim())
    {
        return Ok(false);
    }
    if !cfg!(feature = "oidc") {
        return Err(v.invalid(NO_OIDC));
    }
    o.method = OAuthBearerMethod::Oidc;
    Ok(true)
}

/// Applies the options of the Java client's `OAuthBearerLoginModule` entry in
/// `sasl.jaas.config`: `clientId`, `clientSecret`, `scope` and `extension_NAME` for OIDC (with
/// the OIDC login handler), and the unsecured login's `unsecuredLoginStringClaim_sub`,
/// `unsecuredLoginLifetimeSeconds`, `unsecuredLoginPrincipalClaimName` and
/// `unsecuredLoginExtension_NAME`, which, as in the Java client, make unsecured tokens when no
/// login handler is named. The error names the option; it never holds a value.
pub(super) fn apply_jaas(
    o: &mut OAuthBearerConfig,
    options: &[(String, String)],
) -> Result<(), String> {
    let mut unsecured: Vec<String> = Vec::new();
    for (name, value) in options {
        match name.as_str() {
            "clientId" => o.client_id = Some(value.clone()),
            "clientSecret" => o.client_secret = Some(Secret::new(value.as_str())),
            "scope" => o.scope = Some(value.clone()),
            "unsecuredLoginStringClaim_sub" => unsecured.push(format!("principal={value}")),
            "unsecuredLoginLifetimeSeconds" => unsecured.push(format!("lifeSeconds={value}")),
            "unsecuredLoginPrincipalClaimName" => {
                unsecured.push(format!("principalClaimName={value}"))
            }
            _ => {
                if let Some(key) = name.strip_prefix("extension_") {
                    check_extension(key, value).map_err(|e| e.to_string())?;
                    o.extensions.push((key.to_owned(), value.clone()));
                } else if let Some(key) = name.strip_prefix("unsecuredLoginExtension_") {
                    check_extension(key, value).map_err(|e| e.to_string())?;
                    unsecured.push(format!("extension_{key}={value}"));
                } else {
                    return Err(format!(
                        "the OAuthBearerLoginModule option `{name}` is not read by purekafka; it \
                         reads clientId, clientSecret, scope and extension_NAME (OIDC), and \
                         unsecuredLoginStringClaim_sub, unsecuredLoginLifetimeSeconds, \
                         unsecuredLoginPrincipalClaimName and unsecuredLoginExtension_NAME"
                    ));
                }
            }
        }
    }
    if unsecured.iter().any(|u| u.contains(char::is_whitespace)) {
        return Err("an unsecured login option holds a space".to_owned());
    }
    if !unsecured.is_empty() {
        o.unsecure_jwt = true;
        o.config = Some(unsecured.join(" "));
    }
    Ok(())
}

/// Why `sasl.oauthbearer.method=oidc` is refused by a build without the `oidc` feature.
const NO_OIDC: &str = "the OIDC method needs purekafka's `oidc` feature, which this build lacks";

/// `key=value,key=value`, each checked as RFC 7628 wants.
fn extensions(v: &Value) -> Result<Vec<(String, String)>, ConfigError> {
    v.value
        .split(',')
        .filter(|pair| !pair.trim().is_empty())
        .map(|pair| {
            let (key, value) = pair
                .split_once('=')
                .ok_or_else(|| v.invalid("expected key=value pairs separated by commas"))?;
            let key = key.trim();
            check_extension(key, value).map_err(|e| v.invalid(&e.to_string()))?;
            Ok((key.to_owned(), value.to_owned()))
        })
        .collect()
}

impl OAuthBearerConfig {
    /// The source of tokens these settings choose, or what is missing for one.
    pub(crate) fn token_spec(&self) -> Result<TokenSpec, ConfigError> {
        if let Some(provider) = &self.provider {
            return Ok(TokenSpec::Provider(provider.clone()));
        }
        // As librdkafka: each pair names one thing twice.
        if self.method == OAuthBearerMethod::Oidc && self.unsecure_jwt {
            return Err(ConfigError::Conflict(
                "enable.sasl.oauthbearer.unsecure.jwt=true and sasl.oauthbearer.method=oidc \
                 each choose where tokens come from; set one of them"
                    .into(),
            ));
        }
        if self.https_ca_location.is_some() && self.https_ca_pem.is_some() {
            return Err(ConfigError::Conflict(
                "https.ca.location and https.ca.pem both name the token endpoint's CAs; set one \
                 of them"
                    .into(),
            ));
        }
        match self.method {
            OAuthBearerMethod::Oidc => self.oidc(),
            OAuthBearerMethod::Default if self.unsecure_jwt => {
                let config = self.config.as_deref().unwrap_or_default();
                UnsecuredProvider::parse(config)
                    .map(TokenSpec::Unsecured)
                    .map_err(|reason| ConfigError::InvalidValue {
                        key: "sasl.oauthbearer.config".into(),
                        value: config.to_owned(),
                        reason,
                    })
            }
            OAuthBearerMethod::Default => Err(ConfigError::Conflict(
                "sasl.mechanism=OAUTHBEARER needs a source of tokens: \
                 sasl.oauthbearer.method=oidc with sasl.oauthbearer.token.endpoint.url, \
                 sasl.oauthbearer.client.id and sasl.oauthbearer.client.secret; a token \
                 provider (ClientConfig::oauthbearer_token_provider); or, for development, \
                 enable.sasl.oauthbearer.unsecure.jwt=true with sasl.oauthbearer.config \
                 (principal=NAME)"
                    .into(),
            )),
        }
    }

    #[cfg(feature = "oidc")]
    fn oidc(&self) -> Result<TokenSpec, ConfigError> {
        let missing = |key: &str| ConfigError::Missing { key: key.into() };
        Ok(TokenSpec::Oidc(crate::oauth::OidcSettings {
            endpoint: self
                .token_endpoint_url
                .clone()
                .ok_or_else(|| missing("sasl.oauthbearer.token.endpoint.url"))?,
            client_id: self
                .client_id
                .clone()
                .ok_or_else(|| missing("sasl.oauthbearer.client.id"))?,
            client_secret: self
                .client_secret
                .clone()
                .ok_or_else(|| missing("sasl.oauthbearer.client.secret"))?,
            scope: self.scope.clone(),
            extensions: self.extensions.clone(),
            principal_claim: self.sub_claim_name.clone(),
            ca_location: self.https_ca_location.clone(),
            ca_pem: self.https_ca_pem.clone(),
        }))
    }

    #[cfg(not(feature = "oidc"))]
    fn oidc(&self) -> Result<TokenSpec, ConfigError> {
        Err(ConfigError::InvalidValue {
            key: "sasl.oauthbearer.method".into(),
            value: "oidc".into(),
            reason: NO_OIDC.into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{ClientConfig, SaslMechanism};
    use crate::error::ConfigError;

    use super::*;

    fn oauth() -> ClientConfig {
        ClientConfig::new()
            .set("bootstrap.servers", "localhost:9092")
            .unwrap()
            .set("security.protocol", "SASL_PLAINTEXT")
            .unwrap()
            .set("sasl.mechanism", "OAUTHBEARER")
            .unwrap()
    }

    #[test]
    fn unsecured_tokens_need_librdkafkas_switch() {
        let config = oauth()
            .set("sasl.oauthbearer.config", "principal=alice")
            .unwrap();
        assert_eq!(config.common.sasl_mechanism, SaslMechanism::OAuthBearer);
        let err = config.common.oauthbearer.token_spec().unwrap_err();
        assert!(
            matches!(&err, ConfigError::Conflict(m) if m.contains("enable.sasl.oauthbearer.unsecure.jwt")),
            "{err}"
        );
        let config = config
            .set("enable.sasl.oauthbearer.unsecure.jwt", "true")
            .unwrap();
        assert!(matches!(
            config.common.oauthbearer.token_spec(),
            Ok(TokenSpec::Unsecured(_))
        ));
        // No sasl.username or sasl.password is asked for.
        assert!(config.validate().unwrap().is_some());
    }

    #[test]
    fn a_bad_unsecured_description_names_its_key() {
        let config = oauth()
            .set("enable.sasl.oauthbearer.unsecure.jwt", "true")
            .unwrap()
            .set("sasl.oauthbearer.config", "principal=alice lifeSeconds=-1")
            .unwrap();
        let err = config.validate().unwrap_err();
        assert!(
            matches!(&err, ConfigError::InvalidValue { key, reason, .. }
                if key == "sasl.oauthbearer.config" && reason.contains("lifeSeconds")),
            "{err}"
        );
    }

    #[test]
    fn extensions_and_urls_are_checked_when_set() {
        let o = oauth()
            .set(
                "sasl.oauthbearer.extensions",
                "logicalCluster=lkc-1, identityPoolId=pool-2",
            )
            .unwrap();
        assert_eq!(
            o.common.oauthbearer.extensions,
            vec![
                ("logicalCluster".to_owned(), "lkc-1".to_owned()),
                ("identityPoolId".to_owned(), "pool-2".to_owned()),
            ]
        );
        for (key, value) in [
            ("sasl.oauthbearer.extensions", "auth=x"),
            ("sasl.oauthbearer.extensions", "novalue"),
            ("sasl.oauthbearer.token.endpoint.url", "ftp://idp/token"),
            ("sasl.oauthbearer.method", "kerberos"),
        ] {
            let err = oauth().set(key, value).unwrap_err();
            assert!(
                matches!(&err, ConfigError::InvalidValue { key: k, .. } if k == key),
                "{key}={value}: {err}"
            );
        }
    }

    #[cfg(feature = "oidc")]
    #[test]
    fn oidc_names_what_is_missing() {
        let config = oauth().set("sasl.oauthbearer.method", "oidc").unwrap();
        let err = config.validate().unwrap_err();
        assert_eq!(
            err,
            ConfigError::Missing {
                key: "sasl.oauthbearer.token.endpoint.url".into()
            }
        );
        let config = config
            .set(
                "sasl.oauthbearer.token.endpoint.url",
                "https://idp.example/token",
            )
            .unwrap()
            .set("sasl.oauthbearer.client.credentials.client.id", "app")
            .unwrap();
        let err = config.validate().unwrap_err();
        assert_eq!(
            err,
            ConfigError::Missing {
                key: "sasl.oauthbearer.client.secret".into()
            }
        );
        let config = config
            .set("sasl.oauthbearer.client.secret", "s3cr3t")
            .unwrap();
        assert!(config.validate().is_ok());
        assert!(!format!("{config:?}").contains("s3cr3t"));
    }

    #[test]
    fn the_java_clients_unsecured_login_makes_unsecured_tokens() {
        let config = oauth()
            .set(
                "sasl.jaas.config",
                "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required \
                 unsecuredLoginStringClaim_sub=\"alice\" unsecuredLoginLifetimeSeconds=\"600\" \
                 unsecuredLoginExtension_traceId=\"42\";",
            )
            .unwrap();
        let o = &config.common.oauthbearer;
        assert!(o.unsecure_jwt);
        assert_eq!(
            o.config.as_deref(),
            Some("principal=alice lifeSeconds=600 extension_traceId=42")
        );
        assert!(matches!(o.token_spec(), Ok(TokenSpec::Unsecured(_))));
        let err = oauth()
            .set(
                "sasl.jaas.config",
                "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required \
                 unsecuredLoginNumberClaim_age=\"7\";",
            )
            .unwrap_err();
        assert!(
            err.to_string().contains("`unsecuredLoginNumberClaim_age`"),
            "{err}"
        );
    }

    /// The Java client's OIDC login: its handler class, JAAS options and endpoint property.
    #[cfg(feature = "oidc")]
    #[test]
    fn the_java_clients_oidc_login_is_the_oidc_method() {
        let config = oauth()
            .set(
                "sasl.login.callback.handler.class",
                "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginCallbackHandler",
            )
            .unwrap()
            .set(
                "sasl.oauthbearer.token.endpoint.url",
                "https://idp.example/token",
            )
            .unwrap()
            .set(
                "sasl.jaas.config",
                "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required \
                 clientId=\"app\" clientSecret=\"s3cr3t\" scope=\"kafka\" \
                 extension_logicalCluster=\"lkc-1\";",
            )
            .unwrap();
        let Ok(TokenSpec::Oidc(oidc)) = config.common.oauthbearer.token_spec() else {
            panic!("the OIDC method");
        };
        assert_eq!(oidc.client_id, "app");
        assert_eq!(oidc.client_secret.expose(), "s3cr3t");
        assert_eq!(oidc.scope.as_deref(), Some("kafka"));
        assert_eq!(
            oidc.extensions,
            vec![("logicalCluster".to_owned(), "lkc-1".to_owned())]
        );
        assert!(!format!("{config:?}").contains("s3cr3t"));
        // Any other class is still refused.
        assert!(oauth()
            .set("sasl.login.callback.handler.class", "com.example.MyHandler")
            .is_err());
    }

    #[cfg(feature = "oidc")]
    #[test]
    fn settings_that_contradict_each_other_are_refused() {
        let oidc = || {
            oauth()
                .set("sasl.oauthbearer.method", "oidc")
                .unwrap()
                .set(
                    "sasl.oauthbearer.token.endpoint.url",
                    "https://idp.example/token",
                )
                .unwrap()
                .set("sasl.oauthbearer.client.id", "app")
                .unwrap()
                .set("sasl.oauthbearer.client.secret", "s")
                .unwrap()
        };
        let unsecured = oidc()
            .set("enable.sasl.oauthbearer.unsecure.jwt", "true")
            .unwrap();
        let both_cas = oidc()
            .set("https.ca.location", "/etc/ca.pem")
            .unwrap()
            .set("https.ca.pem", "-----BEGIN CERTIFICATE-----")
            .unwrap();
        for (config, names) in [
            (unsecured, "enable.sasl.oauthbearer.unsecure.jwt"),
            (both_cas, "https.ca.pem"),
        ] {
            let err = config.validate().unwrap_err();
            assert!(
                matches!(&err, ConfigError::Conflict(m) if m.contains(names)),
                "{err}"
            );
        }
    }

    #[cfg(not(feature = "oidc"))]
    #[test]
    fn oidc_without_the_feature_says_so() {
        let err = oauth().set("sasl.oauthbearer.method", "oidc").unwrap_err();
        assert!(err.to_string().contains("`oidc` feature"), "{err}");
    }
}
