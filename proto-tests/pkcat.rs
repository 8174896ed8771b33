//! pkcat, the built binary, against the real broker: files and stdin produced and consumed back
//! byte for byte, keys, headers, format strings and JSON, offsets from the end, a group member,
//! metadata, the CKafka file, perf, and the exit status of bad flags and properties.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use crate::common::{admin, new_topic, plaintext_addr, sasl_addr, unique_topic};

/// Runs pkcat with `args` (and `stdin`), within a minute.
fn pkcat(args: &[&str], stdin: &[u8]) -> Output {
    pkcat_with(args, stdin, &[])
}

/// [`pkcat`] with environment variables set for it.
fn pkcat_with(args: &[&str], stdin: &[u8], env: &[(&str, &str)]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_pkcat"))
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("pkcat runs");
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin).unwrap();
    drop(input);
    let (tx, rx) = std::sync::mpsc::channel();
    let pid = child.id();
    std::thread::spawn(move || tx.send(child.wait_with_output()));
    rx.recv_timeout(std::time::Duration::from_secs(60))
        .unwrap_or_else(|_| {
            let _ = Command::new("kill").arg(pid.to_string()).status();
            panic!("pkcat {args:?} did not finish within 60 s")
        })
        .unwrap()
}

/// pkcat that must succeed; its stdout.
fn ok(args: &[&str], stdin: &[u8]) -> Vec<u8> {
    let out = pkcat(args, stdin);
    assert!(
        out.status.success(),
        "pkcat {args:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[tokio::test]
async fn a_file_goes_in_line_by_line_and_comes_back_byte_for_byte() {
    let topic = new_topic("pkcat-file", 1).await;
    let b = plaintext_addr();
    // Empty lines, UTF-8, tabs and a last line without its newline.
    let text = "first line\n\nsecond\tline with tab\nünïcödé ✓\nlast line, no newline";
    let file = std::env::temp_dir().join(format!("{topic}.txt"));
    std::fs::write(&file, text).unwrap();
    ok(
        &["-b", &b, "-t", &topic, "-P", "-l", file.to_str().unwrap()],
        b"",
    );
    let out = ok(
        &["-b", &b, "-t", &topic, "-C", "-o", "beginning", "-e", "-q"],
        b"",
    );
    // Each record comes back followed by the delimiter, the last one too.
    assert_eq!(String::from_utf8(out).unwrap(), format!("{text}\n"));

    // The whole file as one record, binary bytes included.
    let binary: Vec<u8> = (0..=255u8).chain(0..=255u8).collect();
    std::fs::write(&file, &binary).unwrap();
    ok(
        &[
            "-b",
            &b,
            "-t",
            &topic,
            "-P",
            "-p",
            "0",
            file.to_str().unwrap(),
        ],
        b"",
    );
    let out = ok(
        &[
            "-b", &b, "-t", &topic, "-C", "-p", "0", "-o", "-1", "-e", "-D", "\\0",
        ],
        b"",
    );
    assert_eq!(out, [&binary[..], b"\0"].concat());
    std::fs::remove_file(&file).unwrap();
}

#[tokio::test]
async fn keys_headers_delimiters_formats_and_json() {
    let topic = new_topic("pkcat-keys", 1).await;
    let b = plaintext_addr();
    let input = b"k1:v1|k2:v2:with colon|no key here|";
    ok(
        &[
            "-b", &b, "-t", &topic, "-P", "-D", "|", "-K", ":", "-H", "h1=one", "-H", "h2=two",
        ],
        input,
    );
    let out = ok(
        &[
            "-b",
            &b,
            "-t",
            &topic,
            "-C",
            "-e",
            "-f",
            "%t/%p/%o %k=%s (%K,%S) [%h]\\n",
        ],
        b"",
    );
    let expected = format!(
        "{topic}/0/0 k1=v1 (2,2) [h1=one,h2=two]\n\
         {topic}/0/1 k2=v2:with colon (2,13) [h1=one,h2=two]\n\
         {topic}/0/2 =no key here (-1,11) [h1=one,h2=two]\n"
    );
    assert_eq!(String::from_utf8(out).unwrap(), expected);

    // The default output with -K: key, delimiter, value, delimiter.
    let out = ok(
        &["-b", &b, "-t", &topic, "-C", "-e", "-K", "=", "-c", "2"],
        b"",
    );
    assert_eq!(out, b"k1=v1\nk2=v2:with colon\n");

    let out = ok(&["-b", &b, "-t", &topic, "-C", "-e", "-J", "-o", "2"], b"");
    let json: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(json["topic"], topic.as_str());
    assert_eq!(
        (json["partition"].as_i64(), json["offset"].as_i64()),
        (Some(0), Some(2))
    );
    assert_eq!(json["key"], serde_json::Value::Null);
    assert_eq!(json["payload"], "no key here");
    assert_eq!(
        json["headers"],
        serde_json::json!(["h1", "one", "h2", "two"])
    );
    assert!(json["ts"].as_i64().unwrap() > 1_600_000_000_000);
    assert_eq!(json["tstype"], "create");
}

/// A topic that keeps the broker's append time: pkcat's JSON says `logappend`, as kcat's does,
/// with the broker's time rather than the one the record was sent with.
#[tokio::test]
async fn json_tells_log_append_time() {
    let topic = unique_topic("pkcat-logappend");
    let new =
        purekafka::NewTopic::new(&topic, 1, 1).config("message.timestamp.type", "LogAppendTime");
    let created = admin().await.create_topics(&[new]).await.unwrap();
    assert!(created[0].1.is_ok(), "{created:?}");
    let b = plaintext_addr();
    let producer = purekafka::Producer::builder(crate::common::plaintext())
        .build()
        .await
        .unwrap();
    let sent_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    producer
        .send(
            purekafka::ProducerRecord::new(&topic)
                .value("old")
                .timestamp(1_000_000_000_000),
        )
        .await
        .unwrap();
    producer.close().await;
    let out = ok(&["-b", &b, "-t", &topic, "-C", "-e", "-J"], b"");
    let json: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(json["tstype"], "logappend");
    assert!(json["ts"].as_i64().unwrap() >= sent_at - 60_000, "{json}");
    admin().await.delete_topic(&topic).await.unwrap();
}

#[tokio::test]
async fn offsets_from_the_end_a_count_and_a_group_member() {
    let topic = new_topic("pkcat-group", 3).await;
    let b = plaintext_addr();
    let lines: String = (0..30).map(|i| format!("{i}\n")).collect();
    ok(&["-b", &b, "-t", &topic, "-P", "-p", "1"], lines.as_bytes());
    let out = ok(
        &["-b", &b, "-t", &topic, "-C", "-p", "1", "-o", "-3", "-e"],
        b"",
    );
    assert_eq!(out, b"27\n28\n29\n");
    let out = ok(
        &[
            "-b", &b, "-t", &topic, "-C", "-p", "1", "-o", "10", "-c", "2",
        ],
        b"",
    );
    assert_eq!(out, b"10\n11\n");

    // A member of a new group reads everything, commits as it leaves; a second run has nothing
    // left to read.
    let group = unique_topic("pkcat-g");
    let out = ok(&["-b", &b, "-C", "-G", &group, &topic, "-e"], b"");
    assert_eq!(out.iter().filter(|&&c| c == b'\n').count(), 30);
    let committed = admin()
        .await
        .committed_offsets(&group, &topic)
        .await
        .unwrap();
    assert_eq!(committed, [(0, None), (1, Some(30)), (2, None)]);
    let out = ok(&["-b", &b, "-C", "-G", &group, &topic, "-e"], b"");
    assert!(out.is_empty(), "{}", String::from_utf8_lossy(&out));
}

#[tokio::test]
async fn metadata_as_kcat_prints_it_and_as_json() {
    let topic = new_topic("pkcat-meta", 2).await;
    let b = plaintext_addr();
    let out = String::from_utf8(ok(&["-b", &b, "-L", "-t", &topic], b"")).unwrap();
    assert!(
        out.contains(&format!("topic \"{topic}\" with 2 partitions:")),
        "{out}"
    );
    assert!(out.contains("    partition 1, leader "), "{out}");
    assert!(out.contains("(controller)"), "{out}");
    let json: serde_json::Value =
        serde_json::from_slice(&ok(&["-b", &b, "-L", "-J"], b"")).unwrap();
    let listed = json["topics"].as_array().unwrap();
    let ours = listed
        .iter()
        .find(|t| t["topic"] == topic.as_str())
        .unwrap();
    assert_eq!(ours["partitions"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn the_ckafka_file_logs_in_with_sasl() {
    // fixtures/ckafka.json, pointed at the SASL listener under test: its topic is the default.
    let topic = new_topic("pkcat-ckafka", 1).await;
    let mut ckafka: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/ckafka.json"))
            .unwrap(),
    )
    .unwrap();
    ckafka["bootstrapServers"] = serde_json::json!(sasl_addr().split(',').collect::<Vec<_>>());
    ckafka["topic"] = serde_json::json!([topic]);
    let file = std::env::temp_dir().join(format!("{topic}.json"));
    std::fs::write(&file, ckafka.to_string()).unwrap();
    let f = file.to_str().unwrap();
    ok(&["-F", f, "-P"], b"Confluent-Kafka\n");
    let out = ok(
        &["-F", f, "-C", "-e", "-f", "Message on %t[%p]@%o: %s\\n"],
        b"",
    );
    assert_eq!(
        String::from_utf8(out).unwrap(),
        format!("Message on {topic}[0]@0: Confluent-Kafka\n")
    );
    // -X after -F wins: a wrong password is refused by the broker.
    let out = pkcat(&["-F", f, "-X", "sasl.password=wrong", "-L"], b"");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("authentication"),
        "{out:?}"
    );
    std::fs::remove_file(&file).unwrap();
}

/// pkcat over SASL/OAUTHBEARER with unsecured tokens, all from -X properties as librdkafka
/// takes them.
#[tokio::test]
async fn oauthbearer_from_x_properties() {
    let topic = new_topic("pkcat-oauth", 1).await;
    let servers = crate::common::oauth_addr();
    let oauth = |config: &str| {
        vec![
            "-b".to_owned(),
            servers.clone(),
            "-X".to_owned(),
            "security.protocol=SASL_PLAINTEXT".to_owned(),
            "-X".to_owned(),
            "sasl.mechanism=OAUTHBEARER".to_owned(),
            "-X".to_owned(),
            "enable.sasl.oauthbearer.unsecure.jwt=true".to_owned(),
            "-X".to_owned(),
            format!("sasl.oauthbearer.config={config}"),
        ]
    };
    let args = |config: &str, more: &[&str]| {
        let mut all = oauth(config);
        all.extend(more.iter().map(|s| s.to_string()));
        all
    };
    let run = |all: Vec<String>, stdin: &[u8]| {
        let refs: Vec<&str> = all.iter().map(String::as_str).collect();
        pkcat(&refs, stdin)
    };
    let produced = run(
        args("principal=alice", &["-t", &topic, "-P"]),
        b"over OAUTHBEARER\n",
    );
    assert!(produced.status.success(), "{produced:?}");
    let consumed = run(
        args(
            "principal=alice scope=read",
            &["-t", &topic, "-C", "-e", "-f", "%s@%o\\n"],
        ),
        b"",
    );
    assert!(consumed.status.success(), "{consumed:?}");
    assert_eq!(
        String::from_utf8(consumed.stdout).unwrap(),
        "over OAUTHBEARER@0\n"
    );
    // A description without a principal is refused before any connection, naming its key, as
    // a usage error (exit status 2).
    let refused = run(args("scope=read", &["-L"]), b"");
    assert_eq!(refused.status.code(), Some(2));
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(
        said.contains("sasl.oauthbearer.config") && said.contains("principal"),
        "{said}"
    );
}

#[tokio::test]
async fn perf_produces_and_consumes_with_a_summary() {
    let topic = new_topic("pkcat-perf", 2).await;
    let b = plaintext_addr();
    let out = String::from_utf8(ok(
        &[
            "perf", "-P", "-b", &b, "-t", &topic, "-n", "20000", "-s", "64",
        ],
        b"",
    ))
    .unwrap();
    assert!(
        out.starts_with(&format!("20000 records of 64 B produced to {topic} in ")),
        "{out}"
    );
    assert!(
        out.contains("msgs/s") && out.contains("ack latency p50"),
        "{out}"
    );
    let out = String::from_utf8(ok(
        &["perf", "-C", "-b", &b, "-t", &topic, "-n", "20000"],
        b"",
    ))
    .unwrap();
    assert!(
        out.starts_with(&format!("20000 records (1.3 MB) consumed from {topic} in ")),
        "{out}"
    );
}

#[test]
fn bad_flags_and_properties_exit_2_naming_them() {
    for (args, named) in [
        (&["-C", "-b", "127.0.0.1:9092", "-t", "x", "-Y"][..], "-Y"),
        (
            &["-L", "-b", "127.0.0.1:9092", "-X", "no.such.property=1"][..],
            "no.such.property",
        ),
        (&["-L", "-b", "127.0.0.1:9092", "-X", "acks=2"][..], "acks"),
        (
            &["-C", "-b", "127.0.0.1:9092", "-t", "x", "-o", "soon"][..],
            "-o",
        ),
        (&["-P", "-b", "127.0.0.1:9092"][..], "-t TOPIC"),
        (
            &["-L", "-F", "/no/such/file.json"][..],
            "/no/such/file.json",
        ),
        (&[][..], "-P, -C and -L"),
    ] {
        let out = pkcat(args, b"");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(named), "{args:?}: {stderr}");
    }
}

/// Without ssl.ca.location the system's trust store decides, which reads `SSL_CERT_FILE` as
/// OpenSSL does: pointed at the test CA, the broker's certificate is trusted; the machine's own
/// store does not hold the test CA, so without it the certificate is refused (or, on a machine
/// with no trust store at all, the setting is refused for want of one).
#[cfg(feature = "tls")]
#[test]
fn tls_without_a_ca_location_trusts_the_system_store() {
    let ssl = crate::common::ssl_addr();
    let ca = crate::common::tls_file("ca.pem").display().to_string();
    let args = [
        "-b",
        &ssl,
        "-X",
        "security.protocol=SSL",
        "-L",
        "-t",
        "test",
    ];
    let out = pkcat_with(&args, b"", &[("SSL_CERT_FILE", &ca)]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(" brokers:"));
    let out = pkcat_with(&args, b"", &[("SSL_CERT_DIR", "/nonexistent")]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let refused = match out.status.code() {
        Some(1) => stderr.contains("UnknownIssuer"),
        Some(2) => stderr.contains("the system's trust store is used, and it holds no"),
        _ => false,
    };
    assert!(refused, "{:?}: {stderr}", out.status);
}

/// `-X statistics.interval.ms`: each statistics object goes to stderr as a line of
/// librdkafka's statistics JSON.
#[tokio::test]
async fn statistics_go_to_stderr_as_json_lines() {
    let topic = new_topic("pkcat-stats", 1).await;
    let b = plaintext_addr();
    // A producer that runs a while: its input comes a line at a time.
    let mut child = Command::new(env!("CARGO_BIN_EXE_pkcat"))
        .args([
            "-b",
            &b,
            "-t",
            &topic,
            "-P",
            "-X",
            "statistics.interval.ms=100",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("pkcat runs");
    let mut input = child.stdin.take().unwrap();
    for line in [&b"one\n"[..], b"two\n"] {
        input.write_all(line).unwrap();
        input.flush().unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    }
    drop(input);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let objects: Vec<serde_json::Value> = stderr
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).expect("each line is one JSON object"))
        .collect();
    assert!(objects.len() >= 2, "{stderr}");
    assert!(objects.iter().all(|o| o["type"] == "producer"), "{stderr}");
    // The first record was delivered before the last statistics.
    assert!(objects.iter().any(|o| o["txmsgs"] == 1), "{stderr}");
}

#[tokio::test]
async fn a_share_group_member_prints_and_accepts_each_record() {
    let topic = new_topic("pkcat-share", 1).await;
    let b = plaintext_addr();
    let lines: String = (0..20).map(|i| format!("r{i}\n")).collect();
    ok(&["-b", &b, "-t", &topic, "-P"], lines.as_bytes());
    if !crate::share::broker_has_share_groups() {
        let out = pkcat(
            &[
                "-b",
                &b,
                "-C",
                "--share",
                &unique_topic("sg"),
                "-c",
                "1",
                &topic,
            ],
            b"",
        );
        assert_eq!(out.status.code(), Some(1));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("share groups are not available"),
            "{stderr}"
        );
        return;
    }
    let group = crate::share::share_group(&[]).await;
    // Twelve printed and accepted; the rest released when pkcat stops.
    let first = ok(
        &[
            "-b", &b, "-C", "--share", &group, "-c", "12", "-f", "%s\\n", &topic,
        ],
        b"",
    );
    let first: Vec<String> = String::from_utf8(first)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(first.len(), 12);
    // A second member gets exactly the eight the first did not print.
    let second = ok(
        &[
            "-b", &b, "-C", "--share", &group, "-c", "8", "-f", "%s\\n", &topic,
        ],
        b"",
    );
    let mut all: Vec<String> = first;
    all.extend(
        String::from_utf8(second)
            .unwrap()
            .lines()
            .map(str::to_owned),
    );
    all.sort();
    let mut expected: Vec<String> = (0..20).map(|i| format!("r{i}")).collect();
    expected.sort();
    assert_eq!(all, expected, "every record printed once");
}
