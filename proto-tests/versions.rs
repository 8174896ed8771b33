//! Version negotiation with the real broker.

use crate::common::admin;

#[tokio::test]
async fn negotiated_versions_are_printed_and_sane() {
    let versions = admin().await.negotiated_versions().await.unwrap();
    println!("API versions negotiated with the broker:");
    for (api, version) in &versions {
        println!(
            "  {api:<18} {}",
            version.map_or("none".to_owned(), |v| format!("v{v}"))
        );
    }
    let get = |name: &str| versions.iter().find(|(api, _)| *api == name).unwrap().1;
    // Every API the walking skeleton uses is shared with a 2.4+ broker.
    for api in [
        "Produce",
        "Fetch",
        "ListOffsets",
        "Metadata",
        "ApiVersions",
        "SaslHandshake",
        "SaslAuthenticate",
        "CreateTopics",
        "DeleteTopics",
    ] {
        assert!(get(api).is_some(), "{api} not negotiated");
    }
    // CKafka 2.4 already speaks Produce v8 and Fetch v11; our caps stop at v12.
    assert!((8..=12).contains(&get("Produce").unwrap()));
    assert!((11..=12).contains(&get("Fetch").unwrap()));
    assert!(get("ApiVersions").unwrap() >= 3);
}
