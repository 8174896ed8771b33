//! The `ckafka.json` file of Tencent CKafka's client guides:
//!
//! ```json
//! { "topic": ["test"],
//!   "sasl": { "username": "user", "password": "pw", "instanceId": "ckafka-xyz" },
//!   "bootstrapServers": ["host:6000"],
//!   "consumerGroupId": "group" }
//! ```
//!
//! CKafka's SASL user name is `instanceId#username`; [`CKafkaConfig::client_config`] builds it.

use std::fmt;
use std::path::Path;

use serde::Deserialize;

use super::{ClientConfig, Secret};
use crate::error::ConfigError;

/// The contents of a `ckafka.json` file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CKafkaConfig {
    /// The topics to produce to (the first one) and to consume from.
    pub topic: Vec<String>,
    /// The SASL credentials.
    pub sasl: CKafkaSasl,
    /// The SASL access points, `host:port`.
    pub bootstrap_servers: Vec<String>,
    /// The consumer group.
    pub consumer_group_id: String,
}

/// The `sasl` object of `ckafka.json`. Its `Debug` never shows the password.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CKafkaSasl {
    /// The user created in the CKafka console.
    pub username: String,
    /// That user's password.
    #[serde(deserialize_with = "secret")]
    pub password: Secret,
    /// The CKafka instance id.
    pub instance_id: String,
}

fn secret<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Secret, D::Error> {
    String::deserialize(d).map(Secret::new)
}

impl fmt::Debug for CKafkaSasl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CKafkaSasl")
            .field("username", &self.username)
            .field("password", &self.password)
            .field("instance_id", &self.instance_id)
            .finish()
    }
}

impl CKafkaConfig {
    /// Reads and checks a `ckafka.json` file. Errors name the file and the field at fault.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let path = path.as_ref();
        let file_error = |reason: String| ConfigError::File {
            path: path.display().to_string(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| file_error(e.to_string()))?;
        Self::parse(&text).map_err(file_error)
    }

    /// Parses and checks the JSON text of a `ckafka.json` file. Errors name the field; a value
    /// from the `sasl` object is never repeated in them, since it may be the password.
    pub fn parse(text: &str) -> Result<Self, String> {
        let value: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
        match value.get("sasl") {
            None => return Err("missing field `sasl`".into()),
            Some(sasl) if !sasl.is_object() => return Err("field `sasl` must be an object".into()),
            Some(sasl) => {
                if let Some(other) = sasl.as_object().and_then(|o| {
                    o.keys()
                        .find(|k| !["username", "password", "instanceId"].contains(&k.as_str()))
                }) {
                    return Err(format!("unknown field `sasl.{other}`"));
                }
                for field in ["username", "password", "instanceId"] {
                    match sasl.get(field) {
                        None => return Err(format!("missing field `sasl.{field}`")),
                        Some(v) if !v.is_string() => {
                            return Err(format!("field `sasl.{field}` must be a string"))
                        }
                        Some(_) => {}
                    }
                }
            }
        }
        let config: CKafkaConfig = serde_json::from_value(value).map_err(|e| e.to_string())?;
        let nonempty = [
            ("topic", config.topic.is_empty()),
            ("bootstrapServers", config.bootstrap_servers.is_empty()),
            ("sasl.username", config.sasl.username.is_empty()),
            ("sasl.instanceId", config.sasl.instance_id.is_empty()),
            ("consumerGroupId", config.consumer_group_id.is_empty()),
        ];
        if let Some((field, _)) = nonempty.iter().find(|(_, empty)| *empty) {
            return Err(format!("field `{field}` must not be empty"));
        }
        if let Some(t) = config.topic.iter().find(|t| t.is_empty()) {
            return Err(format!("field `topic` holds an empty name {t:?}"));
        }
        if let Some(server) = config
            .bootstrap_servers
            .iter()
            .find(|s| super::properties::bootstrap_address(s).is_err())
        {
            return Err(format!(
                "field `bootstrapServers` holds {server:?}, expected host or host:port"
            ));
        }
        Ok(config)
    }

    /// The SASL user name CKafka expects: `instanceId#username`.
    pub fn sasl_username(&self) -> String {
        format!("{}#{}", self.sasl.instance_id, self.sasl.username)
    }

    /// A client configuration as the CKafka guide sets it: SASL_PLAINTEXT with PLAIN, the
    /// `instanceId#username` user name, and the consumer group.
    pub fn client_config(&self) -> Result<ClientConfig, ConfigError> {
        ClientConfig::from_properties(self.properties())
    }

    /// The same settings as librdkafka properties, for tools that apply them in turn with
    /// others (`pkcat -F ckafka.json -X …`). The password is among them.
    pub fn properties(&self) -> Vec<(&'static str, String)> {
        vec![
            ("bootstrap.servers", self.bootstrap_servers.join(",")),
            ("security.protocol", "SASL_PLAINTEXT".to_owned()),
            ("sasl.mechanism", "PLAIN".to_owned()),
            ("sasl.username", self.sasl_username()),
            ("sasl.password", self.sasl.password.expose().to_owned()),
            ("group.id", self.consumer_group_id.clone()),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED: &str = r#"{
      "topic": ["test"],
      "sasl": {"username": "yourUserName", "password": "yourPassword", "instanceId": "instanceId"},
      "bootstrapServers": ["xxx.ap-changsha-ec.ckafka.tencentcloudmq.com:6000"],
      "consumerGroupId": "yourConsumerId"
    }"#;

    #[test]
    fn parses_the_seed_file() {
        let c = CKafkaConfig::parse(SEED).unwrap();
        assert_eq!(c.topic, ["test"]);
        assert_eq!(c.sasl_username(), "instanceId#yourUserName");
        let client = c.client_config().unwrap();
        assert_eq!(
            client.common.bootstrap_servers,
            ["xxx.ap-changsha-ec.ckafka.tencentcloudmq.com:6000"]
        );
        assert_eq!(client.consumer.group_id.as_deref(), Some("yourConsumerId"));
        assert!(!format!("{c:?} {client:?}").contains("yourPassword"));
    }

    #[test]
    fn fixture_file_loads() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/ckafka.json");
        let c = CKafkaConfig::load(path).unwrap();
        assert_eq!(c.sasl_username(), "ckafka-local#purekafka");
    }

    #[test]
    fn malformed_files_name_the_field() {
        let cases = [
            (
                SEED.replace(r#""consumerGroupId": "yourConsumerId""#, r#""x": 1"#),
                "x",
            ),
            (
                SEED.replace(r#""instanceId": "instanceId""#, r#""instanceid": "i""#),
                "instanceid",
            ),
            (SEED.replace(r#"["test"]"#, "\"test\""), "invalid type"),
            (
                SEED.replace(r#""yourPassword""#, "7"),
                "`sasl.password` must be a string",
            ),
            (SEED.replace(r#"["test"]"#, "[]"), "topic"),
            (SEED.replace(r#""yourUserName""#, r#""""#), "sasl.username"),
            (SEED.replace(":6000", ":"), "`bootstrapServers`"),
            (SEED.replace(":6000", ":70000"), "`bootstrapServers`"),
            (SEED.replace(r#""test""#, "1"), "invalid type: integer"),
            ("{".to_owned(), "EOF"),
        ];
        for (text, needle) in cases {
            let err = CKafkaConfig::parse(&text).unwrap_err();
            assert!(err.contains(needle), "{err:?} should mention {needle:?}");
        }
        let missing = r#"{"topic": ["t"], "sasl": {"username": "u", "password": "p", "instanceId": "i"},
            "bootstrapServers": ["h:1"]}"#;
        let err = CKafkaConfig::parse(missing).unwrap_err();
        assert!(err.contains("missing field `consumerGroupId`"), "{err}");
        // Nothing from the sasl object is echoed back: it may be the password.
        for sasl in [
            r#""u:hunter2""#,
            r#"{"username": "u", "password": 123456789, "instanceId": "i"}"#,
        ] {
            let text = SEED.replace(
                r#"{"username": "yourUserName", "password": "yourPassword", "instanceId": "instanceId"}"#,
                sasl,
            );
            assert_ne!(text, SEED);
            let err = CKafkaConfig::parse(&text).unwrap_err();
            assert!(
                !err.contains("hunter2") && !err.contains("123456789"),
                "{err}"
            );
        }
        let err = CKafkaConfig::load("/nonexistent/ckafka.json").unwrap_err();
        assert!(err.to_string().contains("/nonexistent/ckafka.json"));
    }

    #[test]
    fn load_names_the_file_and_the_field() {
        let dir = std::env::temp_dir().join(format!("purekafka-ckafka-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let cases = [
            (
                "missing.json",
                SEED.replace(r#""consumerGroupId": "yourConsumerId""#, r#""topic2": []"#),
                "unknown field `topic2`",
            ),
            ("malformed.json", SEED.replace('}', ""), "EOF while parsing"),
            (
                "nopassword.json",
                SEED.replace(r#""password": "yourPassword", "#, ""),
                "missing field `sasl.password`",
            ),
        ];
        for (name, text, needle) in cases {
            let path = dir.join(name);
            std::fs::write(&path, text).unwrap();
            let err = CKafkaConfig::load(&path).unwrap_err();
            assert!(matches!(err, ConfigError::File { .. }), "{err:?}");
            let shown = err.to_string();
            assert!(shown.contains(&path.display().to_string()), "{shown}");
            assert!(shown.contains(needle), "{shown} should mention {needle:?}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
