//! For tests of the connection layer against a scripted broker on a loopback socket: raw
//! frames, and connection settings with a PLAIN login.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::ConnectionSettings;
use super::{Credentials, Sasl};
use crate::config::{SaslMechanism, Secret};

/// The password of [`settings`], which no error or log may show.
pub const PASSWORD: &str = "pw-never-shown";

/// Reads one size-prefixed frame.
pub async fn read_frame(sock: &mut TcpStream) -> Vec<u8> {
    let size = sock.read_i32().await.unwrap();
    let mut frame = vec![0; size as usize];
    sock.read_exact(&mut frame).await.unwrap();
    frame
}

/// Writes one size-prefixed frame.
pub async fn write_frame(sock: &mut TcpStream, frame: &[u8]) {
    sock.write_i32(frame.len() as i32).await.unwrap();
    sock.write_all(frame).await.unwrap();
}

/// Settings for user `inst#user` with [`PASSWORD`] over PLAIN, quick to give up.
pub fn settings() -> ConnectionSettings {
    ConnectionSettings {
        client_id: "test".into(),
        sasl: Some(Sasl {
            mechanism: SaslMechanism::Plain,
            credentials: Credentials::Password {
                username: "inst#user".into(),
                password: Secret::new(PASSWORD),
            },
        }),
        #[cfg(feature = "tls")]
        tls: None,
        socket_timeout: Duration::from_secs(5),
        setup_timeout: Duration::from_secs(5),
        api_versions_timeout: Duration::from_secs(5),
        socket: Default::default(),
        max_frame: 1 << 20,
        reconnect_backoff: Duration::from_millis(10),
        reconnect_backoff_max: Duration::from_millis(100),
        statistics: false,
    }
}
