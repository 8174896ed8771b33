//! `pkcat -L`: the brokers, and every topic (or `-t`'s) with its partitions' leaders, replicas
//! and in-sync replicas, laid out as kcat prints them, or as JSON with `-J`.

use std::fmt::Write as _;
use std::io::Write as _;

use purekafka::{Admin, ClusterDescription, TopicDescription};
use serde_json::json;

use crate::args::Command;
use crate::format::Output;
use crate::Failure;

pub async fn run(c: Command) -> Result<(), Failure> {
    let admin = Admin::builder(c.config.clone()).build().await?;
    let cluster = admin.describe_cluster().await?;
    let names: Vec<String> = match &c.topic {
        Some(topic) => vec![topic.clone()],
        None => admin
            .list_topics()
            .await?
            .into_iter()
            .map(|t| t.name)
            .collect(),
    };
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let topics = admin.describe_topics(&names).await?;
    let text = match c.output {
        Output::Json => json_text(&cluster, &topics),
        _ => kcat_text(&cluster, &topics, c.topic.is_none()),
    };
    std::io::stdout().write_all(text.as_bytes())?;
    Ok(())
}

type Described = Vec<(String, Result<TopicDescription, purekafka::Error>)>;

fn ids(ids: &[i32]) -> String {
    ids.iter().map(i32::to_string).collect::<Vec<_>>().join(",")
}

fn kcat_text(cluster: &ClusterDescription, topics: &Described, all: bool) -> String {
    let mut s = String::new();
    let which = if all { "all topics" } else { "one topic" };
    let id = cluster.cluster_id.as_deref().unwrap_or("-");
    let _ = writeln!(s, "Metadata for {which} (cluster {id}):");
    let _ = writeln!(s, " {} brokers:", cluster.brokers.len());
    for b in &cluster.brokers {
        let role = if cluster.controller == Some(b.id) {
            " (controller)"
        } else {
            ""
        };
        let _ = writeln!(s, "  broker {} at {}:{}{role}", b.id, b.host, b.port);
    }
    let _ = writeln!(s, " {} topics:", topics.len());
    for (name, topic) in topics {
        match topic {
            Err(e) => {
                let _ = writeln!(s, "  topic \"{name}\" error: {e}");
            }
            Ok(t) => {
                let _ = writeln!(
                    s,
                    "  topic \"{name}\" with {} partitions:",
                    t.partitions.len()
                );
                for p in &t.partitions {
                    let leader = p.leader.map_or("-1".to_owned(), |l| l.to_string());
                    let _ = writeln!(
                        s,
                        "    partition {}, leader {leader}, replicas: {}, isrs: {}",
                        p.id,
                        ids(&p.replicas),
                        ids(&p.isr)
                    );
                }
            }
        }
    }
    s
}

fn json_text(cluster: &ClusterDescription, topics: &Described) -> String {
    let brokers: Vec<_> = cluster
        .brokers
        .iter()
        .map(|b| json!({"id": b.id, "name": format!("{}:{}", b.host, b.port)}))
        .collect();
    let topics: Vec<_> = topics
        .iter()
        .map(|(name, topic)| match topic {
            Err(e) => json!({"topic": name, "error": e.to_string()}),
            Ok(t) => json!({
                "topic": name,
                "partitions": t.partitions.iter().map(|p| json!({
                    "partition": p.id,
                    "leader": p.leader.unwrap_or(-1),
                    "replicas": p.replicas.iter().map(|id| json!({"id": id})).collect::<Vec<_>>(),
                    "isrs": p.isr.iter().map(|id| json!({"id": id})).collect::<Vec<_>>(),
                })).collect::<Vec<_>>(),
            }),
        })
        .collect();
    let object = json!({
        "cluster_id": cluster.cluster_id,
        "controllerid": cluster.controller,
        "brokers": brokers,
        "topics": topics,
    });
    format!("{object}\n")
}
