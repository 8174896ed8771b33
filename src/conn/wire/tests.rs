//! The wire against a scripted peer on a real loopback socket.

use super::*;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};

const HEAD: RequestHead = RequestHead {
    api_key: 3,
    api_version: 1,
    header_version: 1,
};

/// Reads one request frame and returns its correlation id.
async fn read_request(sock: &mut TcpStream) -> i32 {
    let size = sock.read_i32().await.unwrap();
    let mut frame = vec![0; size as usize];
    sock.read_exact(&mut frame).await.unwrap();
    i32::from_be_bytes(frame[4..8].try_into().unwrap())
}

async fn respond(sock: &mut TcpStream, correlation_id: i32, body: &[u8]) {
    sock.write_i32(4 + body.len() as i32).await.unwrap();
    sock.write_i32(correlation_id).await.unwrap();
    sock.write_all(body).await.unwrap();
}

/// A wire connected to a peer that runs `script`.
async fn wire_with<F, Fut>(script: F) -> Wire
where
    F: FnOnce(TcpStream) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (sock, _) = listener.accept().await.unwrap();
        script(sock).await;
    });
    let stream = TcpStream::connect(addr).await.unwrap();
    Wire::spawn(stream.into_split(), "peer", "test", 1024, None)
}

fn call(wire: &Wire, body: &'static [u8]) -> tokio::task::JoinHandle<Result<Bytes, Error>> {
    let wire = wire.clone();
    tokio::spawn(async move {
        wire.call(HEAD, 0, Bytes::from_static(body).into(), None)
            .await
    })
}

#[tokio::test]
async fn pipelined_requests_get_their_own_answers() {
    let wire = wire_with(|mut sock| async move {
        let ids = [
            read_request(&mut sock).await,
            read_request(&mut sock).await,
            read_request(&mut sock).await,
        ];
        for id in ids {
            respond(&mut sock, id, &id.to_be_bytes()).await;
        }
        let _ = sock.read_u8().await; // hold the socket open
    })
    .await;
    let calls: Vec<_> = (0..3).map(|_| call(&wire, b"req")).collect();
    let mut answers = Vec::new();
    for c in calls {
        let body = c.await.unwrap().unwrap();
        answers.push(i32::from_be_bytes(body[..].try_into().unwrap()));
    }
    answers.sort();
    assert_eq!(answers, [1, 2, 3]);
    assert!(!wire.is_closed());
}

#[tokio::test]
async fn a_wrong_correlation_id_poisons_every_request_in_flight() {
    let wire = wire_with(|mut sock| async move {
        let first = read_request(&mut sock).await;
        read_request(&mut sock).await;
        respond(&mut sock, first + 7, b"").await;
        let _ = sock.read_u8().await;
    })
    .await;
    let (a, b) = (call(&wire, b"a"), call(&wire, b"b"));
    let (a, b) = (a.await.unwrap().unwrap_err(), b.await.unwrap().unwrap_err());
    let Error::Disconnected {
        broker,
        cause,
        outcome_unknown: true,
    } = &a
    else {
        panic!("expected a disconnection with unknown outcome, got {a:?}")
    };
    assert_eq!(broker, "peer");
    let Error::Protocol { message, .. } = &**cause else {
        panic!("expected a protocol error as the cause, got {cause:?}")
    };
    assert!(
        message.contains("correlation id mismatch: expected 1, got 8"),
        "{message}"
    );
    assert_eq!(a.to_string(), b.to_string());
    assert!(b.is_outcome_unknown());
    assert!(wire.is_closed());
    // Later requests fail at once, with the same cause, and were never written.
    let late = wire
        .call(HEAD, 0, Bytes::from_static(b"c").into(), None)
        .await
        .unwrap_err();
    assert_eq!(late.to_string(), a.to_string());
    assert!(!late.is_outcome_unknown());
}

#[tokio::test]
async fn a_frame_over_the_ceiling_is_refused() {
    let wire = wire_with(|mut sock| async move {
        read_request(&mut sock).await;
        sock.write_i32(i32::MAX).await.unwrap();
        let _ = sock.read_u8().await;
    })
    .await;
    let err = call(&wire, b"x").await.unwrap().unwrap_err();
    assert!(
        err.to_string()
            .contains("exceeds receive.message.max.bytes (1024)"),
        "{err}"
    );
}

#[tokio::test]
async fn a_frame_too_short_for_a_correlation_id_is_named() {
    let wire = wire_with(|mut sock| async move {
        read_request(&mut sock).await;
        sock.write_all(&[0, 0, 0, 2, 0, 0]).await.unwrap();
        let _ = sock.read_u8().await;
    })
    .await;
    let err = call(&wire, b"x").await.unwrap().unwrap_err();
    assert!(
        err.to_string()
            .contains("response frame of 2 bytes is too short for a correlation id"),
        "{err}"
    );
}

#[test]
fn an_end_of_file_names_the_frame_it_cut() {
    assert_eq!(closed_message(&[]), "connection closed by the broker");
    assert_eq!(
        closed_message(&[0, 0]),
        "connection closed by the broker in the middle of a frame size (2 of 4 bytes)"
    );
    assert_eq!(
        closed_message(&[0, 0, 0, 10, 1, 2, 3]),
        "connection closed by the broker in the middle of a response frame (3 of 10 bytes)"
    );
}

#[tokio::test]
async fn a_closed_socket_fails_requests_as_outcome_unknown() {
    let wire = wire_with(|mut sock| async move {
        read_request(&mut sock).await;
    })
    .await;
    let err = call(&wire, b"x").await.unwrap().unwrap_err();
    assert!(
        matches!(
            err,
            Error::Io {
                outcome_unknown: true,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.is_outcome_unknown());
}
