//! A tiny webhook receiver for tests: an HTTP/1.1 server on 127.0.0.1
//! answering every request with a fixed status and body, handing each
//! request it read to the test.

#![allow(dead_code, reason = "not every test binary reads every field")]

use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// One request the hook server received.
#[derive(Debug)]
pub struct HookRequest {
    pub method: String,
    pub path: String,
    pub body: serde_json::Value,
}

/// A tiny HTTP/1.1 server answering every request with `status` and `body`
/// (then closing the connection); requests are sent to the receiver.
pub async fn hook_server(
    status: &'static str,
    body: &'static str,
) -> (String, mpsc::UnboundedReceiver<HookRequest>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let Ok(Some(req)) =
                    tokio::time::timeout(Duration::from_secs(5), read_request(&mut sock)).await
                else {
                    return;
                };
                let resp = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\n\
                     content-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(resp.as_bytes()).await;
                let _ = sock.shutdown().await;
                let _ = tx.send(req);
            });
        }
    });
    (url, rx)
}

async fn read_request(sock: &mut tokio::net::TcpStream) -> Option<HookRequest> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > 64 * 1024 {
            return None;
        }
        let n = sock.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut first = head.lines().next()?.split_whitespace();
    let method = first.next()?.to_string();
    let path = first.next()?.to_string();
    let len = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse::<usize>().ok())
                .flatten()
        })
        .unwrap_or(0);
    while buf.len() < head_end + len {
        let n = sock.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = serde_json::from_slice(&buf[head_end..head_end + len]).unwrap_or_default();
    Some(HookRequest { method, path, body })
}

/// The next request, within `limit`.
pub async fn next_hook(
    rx: &mut mpsc::UnboundedReceiver<HookRequest>,
    limit: Duration,
) -> HookRequest {
    tokio::time::timeout(limit, rx.recv())
        .await
        .unwrap_or_else(|_| panic!("no webhook request within {limit:?}"))
        .expect("hook server running")
}
