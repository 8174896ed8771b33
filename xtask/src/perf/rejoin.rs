//! `cargo xtask perf rejoin`: how soon a cooperative-sticky member joins again after giving up
//! partitions, read off the wire, for purekafka and librdkafka (rdkafka).
//!
//! ```text
//! member A (peer-<client> member) ── 127.0.0.1:19095 ── proxy: notes each request's API and
//!      │                                               │  the time of each frame ── PROXIED
//!      │                                                  listener (9095, advertises 19095)
//! member B ── 127.0.0.1:9092 (directly)
//!
//! A alone holds 6 partitions; B joins; A's SyncGroup answer takes 3 away (the revocation);
//! A's next JoinGroup lets them move. Measured: that JoinGroup's time − that SyncGroup's.
//! ```
//!
//! Every connection of A goes through the proxy (the PROXIED listener advertises it), so the
//! proxy sees all of A's group traffic and none of B's.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use super::compare::{build_peers, peers_dir};
use crate::kafka::{self, UpOptions};
use crate::run::check;

/// Kafka's API keys for JoinGroup and SyncGroup.
const JOIN_GROUP: i16 = 11;
const SYNC_GROUP: i16 = 14;
/// Where the single broker's PROXIED listener is, and where it tells clients to connect.
const PROXIED: &str = "127.0.0.1:9095";
const PROXY: &str = "127.0.0.1:19095";

/// One frame the proxy saw: when, and of which API; requests from A, answers to A.
#[derive(Debug, Clone, Copy)]
struct Frame {
    at: Instant,
    api: i16,
    request: bool,
}

type Frames = Arc<Mutex<Vec<Frame>>>;

pub fn rejoin(args: &[&str]) -> Result<(), String> {
    let mut rounds = 5;
    let mut clients = vec!["purekafka", "rdkafka"];
    let mut it = args.iter();
    while let Some(&flag) = it.next() {
        let value = *it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag {
            "--rounds" => rounds = value.parse().map_err(|_| "bad --rounds")?,
            "--clients" => clients = value.split(',').collect(),
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    let cluster = kafka::ensure_up(&UpOptions::default())?;
    let direct = cluster.plaintext_bootstrap();
    build_peers()?;
    let frames: Frames = Arc::default();
    proxy(frames.clone())?;
    let mut results: Vec<(&str, Vec<f64>)> = clients.iter().map(|&c| (c, Vec::new())).collect();
    for round in 0..rounds {
        for (client, gaps) in results.iter_mut() {
            let topic = format!("rejoin-{}-{round}-{client}", std::process::id());
            chore(&direct, "create-topic", &topic)?;
            frames.lock().unwrap().clear();
            let group = format!("{topic}-group");
            let mut a = member(client, PROXY, &topic, &group, 20)?;
            let joined = wait_for(&frames, Duration::from_secs(15), |f| {
                f.iter().any(|f| !f.request && f.api == SYNC_GROUP)
            });
            if !joined {
                let _ = a.kill();
                return Err(format!("{client}: member A did not join within 15 s"));
            }
            let b_joins = Instant::now();
            let mut b = member(client, &direct, &topic, &group, 10)?;
            let _ = wait_for(&frames, Duration::from_secs(15), |f| {
                follow_up(f, b_joins).is_some()
            });
            let gap = follow_up(&frames.lock().unwrap(), b_joins);
            for child in [&mut a, &mut b] {
                let _ = child.kill();
                let _ = child.wait();
            }
            chore(&direct, "delete-topic", &topic)?;
            match gap {
                Some(gap) => {
                    eprintln!("  round {}: {client}: {:.2} ms", round + 1, gap * 1e3);
                    gaps.push(gap * 1e3);
                }
                None => eprintln!("  round {}: {client}: no follow-up JoinGroup", round + 1),
            }
        }
    }
    println!("\n| client | rounds | revocation → follow-up JoinGroup: median | min | max |");
    println!("|---|---:|---:|---:|---:|");
    for (client, mut gaps) in results {
        gaps.sort_by(f64::total_cmp);
        if gaps.is_empty() {
            println!("| {client} | 0 | — | — | — |");
            continue;
        }
        println!(
            "| {client} | {} | {:.2} ms | {:.2} ms | {:.2} ms |",
            gaps.len(),
            gaps[gaps.len() / 2],
            gaps[0],
            gaps[gaps.len() - 1]
        );
    }
    Ok(())
}

/// The time from the first SyncGroup answer to A after `since` (the one that revokes) to A's
/// next JoinGroup request, in seconds.
fn follow_up(frames: &[Frame], since: Instant) -> Option<f64> {
    let synced = frames
        .iter()
        .find(|f| f.at > since && !f.request && f.api == SYNC_GROUP)?;
    let joined = frames
        .iter()
        .find(|f| f.at > synced.at && f.request && f.api == JOIN_GROUP)?;
    Some((joined.at - synced.at).as_secs_f64())
}

fn wait_for(frames: &Frames, within: Duration, done: impl Fn(&[Frame]) -> bool) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if done(&frames.lock().unwrap()) {
            return true;
        }
        thread::sleep(Duration::from_millis(50));
    }
    false
}

/// `peer-<client> member …` in the background.
fn member(
    client: &str,
    bootstrap: &str,
    topic: &str,
    group: &str,
    seconds: u64,
) -> Result<Child, String> {
    Command::new(peers_dir().join(format!("peer-{client}")))
        .args(["member", "--bootstrap", bootstrap, "--topic", topic])
        .args(["--group", group, "--seconds", &seconds.to_string()])
        .stdout(Stdio::null())
        .spawn()
        .map_err(|e| format!("peer-{client}: {e}"))
}

/// `peer-purekafka create-topic|delete-topic` with 6 partitions.
fn chore(bootstrap: &str, chore: &str, topic: &str) -> Result<(), String> {
    let mut cmd = Command::new(peers_dir().join("peer-purekafka"));
    cmd.args([chore, "--topic", topic, "--bootstrap", bootstrap]);
    if chore == "create-topic" {
        cmd.args(["--partitions", "6"]);
    }
    check(cmd)
}

/// The proxy in front of the PROXIED listener: relays every connection, noting each request's
/// API key and the time of each frame both ways in `frames`.
fn proxy(frames: Frames) -> Result<(), String> {
    let listener = TcpListener::bind(PROXY).map_err(|e| format!("proxy on {PROXY}: {e}"))?;
    thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let Ok(broker) = TcpStream::connect(PROXIED) else {
                continue;
            };
            let _ = (client.set_nodelay(true), broker.set_nodelay(true));
            // Correlation id → API key, for this connection's answers.
            let asked: Arc<Mutex<HashMap<i32, i16>>> = Arc::default();
            let (c2, b2) = (client.try_clone().unwrap(), broker.try_clone().unwrap());
            let (f1, a1) = (frames.clone(), asked.clone());
            thread::spawn(move || relay(client, broker, true, f1, a1));
            let f2 = frames.clone();
            thread::spawn(move || relay(b2, c2, false, f2, asked));
        }
    });
    Ok(())
}

/// Copies `from` to `to` frame by frame, noting each: requests carry their API key and
/// correlation id; answers, the correlation id of the request they answer.
fn relay(
    mut from: TcpStream,
    mut to: TcpStream,
    requests: bool,
    frames: Frames,
    asked: Arc<Mutex<HashMap<i32, i16>>>,
) {
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
        let at = Instant::now();
        while buf.len() >= 12 {
            let size = i32::from_be_bytes(buf[0..4].try_into().unwrap()) as usize;
            if buf.len() < 4 + size || size < 8 {
                break;
            }
            let frame = &buf[4..4 + size];
            if requests {
                let api = i16::from_be_bytes([frame[0], frame[1]]);
                let correlation = i32::from_be_bytes(frame[4..8].try_into().unwrap());
                asked.lock().unwrap().insert(correlation, api);
                frames.lock().unwrap().push(Frame {
                    at,
                    api,
                    request: true,
                });
            } else {
                let correlation = i32::from_be_bytes(frame[0..4].try_into().unwrap());
                if let Some(api) = asked.lock().unwrap().remove(&correlation) {
                    frames.lock().unwrap().push(Frame {
                        at,
                        api,
                        request: false,
                    });
                }
            }
            buf.drain(..4 + size);
        }
        if to.write_all(&chunk[..n]).is_err() {
            return;
        }
    }
}
