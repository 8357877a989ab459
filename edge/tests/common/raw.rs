//! Raw sockets for bad-input tests: write bytes, see what comes back.

use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

/// What the server did with some raw bytes.
#[derive(Debug)]
pub struct Outcome {
    /// The HTTP/1.1 status code, if a response head came back.
    pub status: Option<u16>,
    /// The server closed (or reset) the connection within the wait.
    pub closed: bool,
    /// Bytes received.
    pub received: Vec<u8>,
    /// Time from the last byte written to the close (or the end of the wait).
    pub elapsed: Duration,
}

impl Outcome {
    /// A response with one of `statuses`, or a closed connection.
    pub fn refused(&self, statuses: &[u16]) -> bool {
        match self.status {
            Some(s) => statuses.contains(&s),
            None => self.closed,
        }
    }
}

/// Parses `HTTP/1.x NNN` at the start of `bytes`.
pub fn status_of(bytes: &[u8]) -> Option<u16> {
    let text = std::str::from_utf8(bytes.get(..12)?).ok()?;
    let rest = text.strip_prefix("HTTP/1.")?;
    rest.get(2..5)?.parse().ok()
}

/// Connects, writes `bytes` (a write error means the server already gave
/// up on us, which is fine), then reads until the server closes or `wait`
/// passes.
pub async fn exchange(addr: SocketAddr, bytes: &[u8], wait: Duration) -> Outcome {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let _ = tokio::time::timeout(wait, tcp.write_all(bytes)).await;
    let start = Instant::now();
    let mut received = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    let deadline = tokio::time::Instant::now() + wait;
    let closed = loop {
        match tokio::time::timeout_at(deadline, tcp.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break true,
            Ok(Ok(n)) => received.extend_from_slice(&buf[..n]),
            Err(_) => break false,
        }
    };
    Outcome {
        status: status_of(&received),
        closed,
        received,
        elapsed: start.elapsed(),
    }
}

/// Sends a request head slowly, `header` by `header` every `gap`, never
/// ending it; returns how long the server let this go on before closing,
/// or `None` if it was still open after `limit`.
pub async fn slowloris(addr: SocketAddr, gap: Duration, limit: Duration) -> Option<Duration> {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let start = Instant::now();
    if tcp
        .write_all(b"GET /live/cam/source/1.0.m4s HTTP/1.1\r\nHost: x\r\n")
        .await
        .is_err()
    {
        return Some(start.elapsed());
    }
    let mut buf = [0u8; 1024];
    let mut i = 0u32;
    while start.elapsed() < limit {
        match tokio::time::timeout(gap, tcp.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return Some(start.elapsed()),
            Ok(Ok(_)) => {} // e.g. a 408 head; keep reading for the close
            Err(_) => {
                i += 1;
                let line = format!("X-Slow-{i}: {i}\r\n");
                if tcp.write_all(line.as_bytes()).await.is_err() {
                    return Some(start.elapsed());
                }
            }
        }
    }
    None
}

/// Deterministic pseudo-random bytes (xorshift64).
pub fn garbage(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.max(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Sends `count` random datagrams to `addr`; every fourth starts like a
/// QUIC v1 long-header Initial packet, so it gets past the first checks.
pub async fn udp_garbage(addr: SocketAddr, count: u64) {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    for seed in 1..=count {
        let len = 1 + (seed as usize * 37) % 1400;
        let mut datagram = garbage(seed, len);
        if seed % 4 == 0 && len > 6 {
            datagram[0] = 0xc0;
            datagram[1..5].copy_from_slice(&1u32.to_be_bytes());
        }
        let _ = socket.send_to(&datagram, addr).await;
    }
}
