//! SASL/SCRAM-SHA-256 and SCRAM-SHA-512 against the SASL_PLAINTEXT listener, as the user
//! `cargo xtask kafka up` creates when it formats the cluster (`alice`, xtask/src/kafka/config.rs).

use purekafka::{Admin, ClientConfig, Error, SaslMechanism};

use crate::common::{round_trip, sasl_addr};

const USER: &str = "alice";
const PASSWORD: &str = "alice-secret";
const MECHANISMS: [SaslMechanism; 2] = [SaslMechanism::ScramSha256, SaslMechanism::ScramSha512];

fn scram(mechanism: SaslMechanism, user: &str, password: &str) -> ClientConfig {
    ClientConfig::new()
        .bootstrap_servers(sasl_addr().split(','))
        .sasl(mechanism, user, password)
}

/// Produces one record and fetches it back, both clients logged in with `mechanism`.
async fn scram_round_trip(mechanism: SaslMechanism) {
    round_trip(scram(mechanism, USER, PASSWORD), mechanism.name()).await;
}

#[tokio::test]
async fn scram_sha_256_round_trip() {
    scram_round_trip(SaslMechanism::ScramSha256).await;
}

#[tokio::test]
async fn scram_sha_512_round_trip() {
    scram_round_trip(SaslMechanism::ScramSha512).await;
}

/// Builds an admin client that must fail to log in, and checks the error names the mechanism
/// and SASL authentication, and holds no password.
async fn refused(mechanism: SaslMechanism, user: &str, password: &str) {
    let err = match Admin::builder(scram(mechanism, user, password))
        .build()
        .await
    {
        Ok(_) => panic!("{} as {user} must fail", mechanism.name()),
        Err(e) => e,
    };
    match &err {
        Error::Authentication {
            mechanism: named,
            message,
            ..
        } => {
            assert_eq!(named, mechanism.name());
            assert!(
                message.to_lowercase().contains("authentication failed"),
                "the broker's reason: {message}"
            );
        }
        other => panic!("expected an authentication error, got {other:?}"),
    }
    let text = format!("{err} {err:?}");
    assert!(text.contains("SASL mechanism"), "{text}");
    assert!(!text.contains(password), "the password leaked: {text}");
}

#[tokio::test]
async fn wrong_password_is_refused() {
    for mechanism in MECHANISMS {
        refused(mechanism, USER, "not-alice-secret").await;
    }
}

#[tokio::test]
async fn unknown_user_is_refused() {
    for mechanism in MECHANISMS {
        refused(mechanism, "mallory", "mallory-secret").await;
    }
}
