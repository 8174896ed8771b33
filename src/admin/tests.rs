//! The admin client against the in-memory cluster: what needs no broker to check.

use crate::testing::MemCluster;
use crate::{Admin, ClientConfig, Consumer};

async fn admin(cluster: &MemCluster) -> Admin {
    let config = ClientConfig::new().bootstrap_servers([cluster.addr(1)]);
    Admin::builder(config).build().await.unwrap()
}

/// A KIP-848 group is described by ConsumerGroupDescribe even where DescribeGroups answers for
/// it with an empty Stable group (as one Kafka-compatible service did), and a classic group by
/// DescribeGroups, where ConsumerGroupDescribe does not know it.
#[tokio::test(start_paused = true)]
async fn each_group_is_described_by_the_api_that_knows_it() {
    let cluster = MemCluster::new(1);
    cluster.topic("t", &[1]);
    cluster.kip848_group("new", &["m1", "m2"]);
    let config = ClientConfig::new()
        .bootstrap_servers([cluster.addr(1)])
        .group_id("old");
    let mut member = Consumer::builder(config).build().await.unwrap();
    member.subscribe(&["t"]).unwrap();
    while member.assignment().is_empty() {
        let _ = tokio::time::timeout(std::time::Duration::from_millis(100), member.recv()).await;
    }

    let admin = admin(&cluster).await;
    let described = admin
        .describe_groups(&["new", "old", "none"])
        .await
        .unwrap();
    let new = described[0].1.as_ref().unwrap();
    let ids: Vec<&str> = new.members.iter().map(|m| m.member_id.as_str()).collect();
    assert_eq!((new.assignor.as_str(), ids), ("uniform", vec!["m1", "m2"]));
    let old = described[1].1.as_ref().unwrap();
    assert_eq!((old.state.as_str(), old.members.len()), ("Stable", 1));
    assert_eq!(described[2].1.as_ref().unwrap().state, "Dead");
    member.close().await.unwrap();
}

/// Each request runs in a span of target `purekafka::conn::request` that names its API,
/// version, broker and correlation id.
#[tokio::test(start_paused = true)]
async fn each_request_has_a_span_with_its_api_broker_and_correlation_id() {
    use std::sync::{Arc, Mutex};
    use tracing_subscriber::fmt::format::FmtSpan;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    // A second dispatcher alive makes tracing ask each callsite anew rather than trust the
    // interest cached while other tests ran with no subscriber (see bad_credentials.rs).
    let _idle = tracing::Dispatch::new(tracing::subscriber::NoSubscriber::default());
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_span_events(FmtSpan::CLOSE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let cluster = MemCluster::new(1);
    cluster.topic("t", &[1]);
    let admin = admin(&cluster).await;
    admin.describe_cluster().await.unwrap();
    let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let spans: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("purekafka::conn::request") && l.contains("close"))
        .collect();
    let broker = cluster.addr(1);
    assert!(
        spans.iter().any(|l| l.contains("api=\"Metadata\"")
            && l.contains(&format!("broker={broker}"))
            && l.contains("correlation_id=")),
        "{text}"
    );
}
