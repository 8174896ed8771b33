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
