//! SASL/PLAIN against the SASL_PLAINTEXT listener, with CKafka's `instanceId#username`.

use std::time::{Duration, Instant};

use purekafka::{Admin, CKafkaConfig, Error, Producer};

use crate::common::{ckafka, plaintext_addr, Proxy};

#[tokio::test]
async fn plain_with_ckafka_username_succeeds() {
    let cfg = ckafka();
    assert!(cfg.sasl_username().contains('#'));
    let admin = Admin::builder(cfg.client_config().unwrap())
        .build()
        .await
        .expect("SASL/PLAIN login");
    let versions = admin.negotiated_versions().await.unwrap();
    assert!(versions
        .iter()
        .any(|(api, v)| *api == "SaslAuthenticate" && v.is_some()));
}

#[tokio::test]
async fn wrong_password_fails_fast_without_reconnecting() {
    let mut cfg = ckafka();
    let proxy = Proxy::start(cfg.bootstrap_servers[0].clone()).await;
    cfg.bootstrap_servers = vec![proxy.addr.clone()];
    let config = cfg
        .client_config()
        .unwrap()
        .set("sasl.password", "not-the-password")
        .unwrap();
    let started = Instant::now();
    let err = Producer::builder(config)
        .build()
        .await
        .expect_err("wrong password must fail");
    let elapsed = started.elapsed();
    match &err {
        Error::Authentication {
            broker,
            mechanism,
            message,
        } => {
            assert_eq!(broker, &proxy.addr);
            assert_eq!(mechanism, "PLAIN");
            assert!(!message.is_empty());
        }
        other => panic!("expected an authentication error, got {other:?}"),
    }
    let text = format!("{err} {err:?}");
    assert!(
        !text.contains("not-the-password"),
        "the password leaked: {text}"
    );
    assert!(elapsed < Duration::from_secs(2), "took {elapsed:?}");
    // One connection: an authentication failure is final, not a reason to reconnect.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(proxy.count(), 1);
}

#[tokio::test]
async fn unknown_user_is_refused() {
    let mut cfg = ckafka();
    cfg.sasl.instance_id = "no-such-instance".into();
    let err = admin_error(&cfg).await;
    assert!(matches!(err, Error::Authentication { .. }), "{err:?}");
}

#[tokio::test]
async fn sasl_against_a_plaintext_listener_is_a_clear_error() {
    let mut cfg = ckafka();
    cfg.bootstrap_servers = vec![plaintext_addr()];
    let started = Instant::now();
    let err = admin_error(&cfg).await;
    assert!(matches!(err, Error::Authentication { .. }), "{err:?}");
    assert!(err.to_string().contains("PLAINTEXT"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(2));
}

/// The error building an admin client with `cfg` must give.
async fn admin_error(cfg: &CKafkaConfig) -> Error {
    match Admin::builder(cfg.client_config().unwrap()).build().await {
        Ok(_) => panic!("building a client with {cfg:?} must fail"),
        Err(e) => e,
    }
}
