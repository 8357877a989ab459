//! A small HTTP client for tests (hyper, HTTP/1.1 or h2c), with timing of
//! the first body byte so tests can see streaming.

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::time::{Duration, Instant};

pub struct Fetched {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Bytes,
    /// From sending the request to the first body frame.
    pub first_byte: Option<Duration>,
    /// From sending the request to the end of the body.
    pub total: Duration,
    /// Body frames received (more than one means it was streamed).
    pub frames: usize,
}

impl Fetched {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }
}

pub async fn get(url: &str) -> Fetched {
    get_with(url, &[], false).await
}

pub async fn get_with(url: &str, headers: &[(&str, &str)], h2: bool) -> Fetched {
    request("GET", url, headers, Bytes::new(), h2).await
}

/// `method` with a JSON `body` over HTTP/1.1 (the admin token on admin
/// paths unless `headers` has an Authorization).
#[allow(dead_code, reason = "not every test binary writes")]
pub async fn send(method: &str, url: &str, headers: &[(&str, &str)], body: &str) -> Fetched {
    let mut all = vec![("content-type", "application/json")];
    all.extend_from_slice(headers);
    request(method, url, &all, Bytes::from(body.to_string()), false).await
}

/// A request with exactly the headers given (no default content type).
pub async fn send_raw(method: &str, url: &str, headers: &[(&str, &str)], body: Bytes) -> Fetched {
    request(method, url, headers, body, false).await
}

async fn request(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Bytes,
    h2: bool,
) -> Fetched {
    let client = Client::builder(TokioExecutor::new())
        .http2_only(h2)
        .build_http::<http_body_util::Full<Bytes>>();
    let mut req = http::Request::builder().method(method).uri(url);
    // Admin paths get the operator's token unless the test sets its own.
    let path = url.splitn(4, '/').nth(3).unwrap_or("");
    let admin = path.starts_with("metrics") || path.starts_with("api/");
    if admin
        && !headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("authorization"))
    {
        req = req.header("authorization", format!("Bearer {}", super::ADMIN_TOKEN));
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req.body(http_body_util::Full::new(body)).unwrap();
    let start = Instant::now();
    let resp = tokio::time::timeout(Duration::from_secs(30), client.request(req))
        .await
        .expect("response within 30 s")
        .expect("request");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let mut body = resp.into_body();
    let mut buf = Vec::new();
    let mut first_byte = None;
    let mut frames = 0;
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(30), body.frame())
            .await
            .expect("body frame within 30 s");
        match frame {
            None => break,
            Some(Ok(f)) => {
                if let Ok(data) = f.into_data() {
                    if !data.is_empty() {
                        first_byte.get_or_insert_with(|| start.elapsed());
                        frames += 1;
                        buf.extend_from_slice(&data);
                    }
                }
            }
            Some(Err(e)) => panic!("body error for {url}: {e}"),
        }
    }
    Fetched {
        status,
        headers,
        body: Bytes::from(buf),
        first_byte,
        total: start.elapsed(),
        frames,
    }
}

/// Polls `url` until it answers 200 (bounded).
pub async fn wait_ok(url: &str, limit: Duration) -> Fetched {
    let deadline = Instant::now() + limit;
    loop {
        let f = get(url).await;
        if f.status == 200 {
            return f;
        }
        assert!(
            Instant::now() < deadline,
            "{url} not 200 within {limit:?}: {} {}",
            f.status,
            f.text()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits (bounded) for a multivariant playlist; returns it parsed, with its
/// variants' NAMEs in order and its text.
#[allow(dead_code, reason = "not every test binary reads a master playlist")]
pub async fn wait_master(
    url: &str,
    limit: Duration,
) -> (
    livecdn_shared::playlist::MultivariantPlaylist,
    Vec<String>,
    String,
) {
    let text = wait_ok(url, limit).await.text();
    let mv = livecdn_shared::playlist::MultivariantPlaylist::parse(&text)
        .unwrap_or_else(|e| panic!("{e}: {text}"));
    let names = mv
        .variants
        .iter()
        .map(|v| v.name.clone().unwrap_or_default())
        .collect();
    (mv, names, text)
}

/// Polls a media playlist (bounded) until `done` holds for it; returns it.
/// What tests wait on instead of sleeping "until a few segments exist".
#[allow(dead_code, reason = "not every test binary waits on a playlist")]
pub async fn wait_playlist(
    url: &str,
    limit: Duration,
    what: &str,
    done: impl Fn(&livecdn_shared::playlist::MediaPlaylist) -> bool,
) -> livecdn_shared::playlist::MediaPlaylist {
    let deadline = Instant::now() + limit;
    loop {
        let f = get(url).await;
        let text = f.text();
        if f.status == 200 {
            if let Ok(pl) = livecdn_shared::playlist::MediaPlaylist::parse(&text) {
                if done(&pl) {
                    return pl;
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "{url}: not {what} within {limit:?}: {} {text}",
            f.status
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Complete segments a media playlist lists (those with a URI).
#[allow(dead_code, reason = "not every test binary waits on a playlist")]
pub fn complete_segments(pl: &livecdn_shared::playlist::MediaPlaylist) -> usize {
    pl.segments.iter().filter(|s| s.uri.is_some()).count()
}
