//! One task per origin push endpoint: connect (lazily, once a stream is
//! wanted; reconnect with backoff), keep the control stream's subscriptions
//! in line with what viewers watch, report viewer counts every second, and
//! store every pushed object in the cache.

use super::order::{Order, Ticket};
use super::verify::client_config;
use super::{Feeds, Push};
use crate::cache::{CacheKey, ObjectKind};
use crate::live::PartId;
use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue};
use livecdn_shared::cmaf::{ChunkSplitter, SplitError};
use livecdn_shared::playlist::MediaPlaylist;
use livecdn_shared::push::{self, Message, ObjectHeader, PushKind, WireError};
use livecdn_shared::route::Route;
use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::task::JoinSet;

/// A whole object stream must arrive within this time.
const OBJECT_TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const REPORT_EVERY: Duration = Duration::from_secs(1);
/// The origin's close code for a refused cluster credential.
const REFUSED: quinn::VarInt = quinn::VarInt::from_u32(2);
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// Why a push connection or an object failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PushClientError {
    #[error("resolve {0}: no address")]
    Resolve(String),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[error("connect: {0}")]
    Connect(#[from] quinn::ConnectError),
    #[error("connection: {0}")]
    Connection(#[from] quinn::ConnectionError),
    #[error("timed out")]
    Timeout,
    #[error("write: {0}")]
    Write(#[from] quinn::WriteError),
    #[error("read: {0}")]
    ReadChunk(#[from] quinn::ReadError),
    /// A part whose chunks do not add up (its fault).
    #[error("part: {0}")]
    Split(#[from] SplitError),
    #[error("part ended inside a chunk ({0} bytes left over)")]
    Torn(usize),
    /// The origin sent a malformed object (its fault).
    #[error("malformed object: {0}")]
    Wire(#[from] WireError),
    /// The object's path is not one the edge serves, or does not match its kind.
    #[error("refused object path {0:?}")]
    Path(String),
}

/// Push endpoints one edge connects to at most (memory bound).
const MAX_ORIGINS: usize = 256;
/// How often the stream map is read again for the subscribed streams.
const MAP_REFRESH: Duration = Duration::from_millis(500);

/// Runs one subscriber per push endpoint until `shutdown`: the configured
/// `upstream.push` addresses and, with a stream map, every endpoint it
/// names for a watched stream (read again every [`MAP_REFRESH`], so a
/// stream that moved origin is followed within it).
pub async fn run(feeds: Feeds, push: Arc<Push>, mut shutdown: watch::Receiver<bool>) {
    let config = match client_config(&push.config.push_spki, push.config.push_insecure) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "push client config; push disabled");
            return;
        }
    };
    let mut tasks = JoinSet::new();
    let mut started: HashSet<String> = HashSet::new();
    let stop = shutdown.clone();
    let mut spawn = |tasks: &mut JoinSet<()>, addr: String| {
        if started.len() < MAX_ORIGINS && started.insert(addr.clone()) {
            let (feeds, push, config) = (feeds.clone(), push.clone(), config.clone());
            tasks.spawn(origin_loop(feeds, push, addr, config, stop.clone()));
        }
    };
    for addr in push.config.push.clone() {
        spawn(&mut tasks, addr);
    }
    if let Some(map) = push.map.clone() {
        let mut tick = tokio::time::interval(MAP_REFRESH);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = push.wanted_changed.notified() => {}
                _ = shutdown.changed() => break,
            }
            let wanted = push.wanted(Instant::now());
            let names: Vec<&str> = wanted.iter().map(String::as_str).collect();
            let before: Vec<_> = names.iter().map(|s| map.last(s)).collect();
            if let Err(e) = map.refresh(&names).await {
                tracing::debug!(error = %e, "stream map refresh failed");
                continue;
            }
            let mut moved = false;
            for (s, was) in names.iter().zip(before) {
                let now = map.last(s);
                if was.is_some() && now.as_ref().map(|e| &e.node) != was.as_ref().map(|e| &e.node) {
                    // Nothing more comes from the old origin: requests go
                    // upstream until the new one pushes.
                    push.purged(s);
                    moved = true;
                }
                moved |= was.is_none() && now.is_some();
                if let Some(addr) = now.and_then(|e| e.push.clone()) {
                    spawn(&mut tasks, addr);
                }
            }
            if moved {
                // Sessions re-subscribe now rather than at their next tick.
                push.wanted_changed.notify_waiters();
            }
        }
    }
    while tasks.join_next().await.is_some() {}
}

async fn origin_loop(
    feeds: Feeds,
    push: Arc<Push>,
    addr: String,
    config: quinn::ClientConfig,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut backoff = Duration::from_millis(250);
    loop {
        if *shutdown.borrow() {
            return;
        }
        // Connect only when some stream is wanted.
        if push.wanted_at(&addr, Instant::now()).is_empty() {
            tokio::select! {
                _ = push.wanted_changed.notified() => {}
                _ = tokio::time::sleep(REPORT_EVERY) => {}
                _ = shutdown.changed() => return,
            }
            continue;
        }
        let started = Instant::now();
        match connect(&addr, &config).await {
            Ok(conn) => {
                push.connected.fetch_add(1, Ordering::Relaxed);
                tracing::info!(origin = %addr, "push connected");
                let r = session(&feeds, &push, &addr, &conn, &mut shutdown).await;
                push.connected.fetch_sub(1, Ordering::Relaxed);
                conn.close(0u32.into(), b"bye");
                match r {
                    Err(PushClientError::Connection(
                        quinn::ConnectionError::ApplicationClosed(close),
                    )) if close.error_code == REFUSED => tracing::warn!(
                        origin = %addr,
                        "push refused: the origin did not accept this edge's cluster credential \
                         (upstream.credential, LIVECDN_CLUSTER_CREDENTIAL)"
                    ),
                    r => tracing::info!(origin = %addr, result = ?r.err(), "push disconnected"),
                }
            }
            Err(e) => tracing::debug!(origin = %addr, error = %e, "push connect failed"),
        }
        if started.elapsed() > Duration::from_secs(10) {
            backoff = Duration::from_millis(250);
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = shutdown.changed() => return,
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

async fn connect(
    addr: &str,
    config: &quinn::ClientConfig,
) -> Result<quinn::Connection, PushClientError> {
    let target = tokio::net::lookup_host(addr)
        .await?
        .next()
        .ok_or_else(|| PushClientError::Resolve(addr.to_string()))?;
    let bind: std::net::SocketAddr = if target.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        ([0u16; 8], 0).into()
    };
    // Advertises the socket's payload bound so pushed parts may come in
    // large packets where the path allows (livecdn_shared::quic).
    let (socket, caps) = livecdn_shared::quic::bind(bind)?;
    let runtime = quinn::default_runtime()
        .ok_or_else(|| std::io::Error::other("no async runtime for QUIC"))?;
    let endpoint_config = livecdn_shared::quic::endpoint_config(caps);
    let mut endpoint = quinn::Endpoint::new(endpoint_config, None, socket, runtime)?;
    endpoint.set_default_client_config(config.clone());
    let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let connecting = endpoint.connect(target, host)?;
    tokio::time::timeout(CONNECT_TIMEOUT, connecting)
        .await
        .map_err(|_| PushClientError::Timeout)?
        .map_err(PushClientError::from)
}

async fn send(ctl: &mut quinn::SendStream, msg: &Message) -> Result<(), PushClientError> {
    let mut buf = Vec::new();
    push::encode(msg, &mut buf)?;
    ctl.write_all(&buf).await?;
    Ok(())
}

/// One connection: subscriptions, reports and received objects.
async fn session(
    feeds: &Feeds,
    push: &Arc<Push>,
    addr: &str,
    conn: &quinn::Connection,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<(), PushClientError> {
    let (mut ctl, _unused) = conn.open_bi().await?;
    // The origin takes nothing before the cluster credential. Without one
    // configured the Hello still goes out (as "-"), so the origin's refusal
    // is logged on both sides rather than a silent wait.
    let credential = push
        .config
        .credential
        .clone()
        .unwrap_or_else(|| "-".to_string());
    send(&mut ctl, &Message::Hello { credential }).await?;
    let mut subscribed: HashSet<String> = HashSet::new();
    let mut receives = JoinSet::new();
    let order = Arc::new(Order::default());
    let mut tick = tokio::time::interval(REPORT_EVERY);
    loop {
        let report = tokio::select! {
            _ = tick.tick() => true,
            _ = push.wanted_changed.notified() => false,
            uni = conn.accept_uni() => {
                let recv = uni?;
                let ticket = order.ticket();
                let (feeds, push) = (feeds.clone(), push.clone());
                receives.spawn(async move {
                    if let Err(e) = receive(&feeds, &push, recv, &ticket).await {
                        tracing::debug!(error = %e, "pushed object dropped");
                    }
                });
                while receives.try_join_next().is_some() {}
                continue;
            }
            _ = shutdown.changed() => return Ok(()),
        };
        let now = Instant::now();
        let wanted: HashSet<String> = push.wanted_at(addr, now).into_iter().collect();
        for stream in wanted.difference(&subscribed) {
            send(
                &mut ctl,
                &Message::Subscribe {
                    stream: stream.clone(),
                },
            )
            .await?;
        }
        for stream in subscribed.difference(&wanted) {
            send(
                &mut ctl,
                &Message::Unsubscribe {
                    stream: stream.clone(),
                },
            )
            .await?;
        }
        subscribed = wanted;
        // The live tap keeps every watched stream, whichever connection
        // feeds it.
        let watched: HashSet<String> = push.wanted(now).into_iter().collect();
        feeds.live.retain(|s| watched.contains(s));
        if report {
            let counts =
                crate::viewers::with_webrtc(feeds.viewers.counts(now), feeds.webrtc.as_deref());
            for (stream, n, rtc) in counts.into_iter().filter(|(s, ..)| subscribed.contains(s)) {
                let n = u64::try_from(n).unwrap_or(u64::MAX).saturating_add(rtc);
                let viewers = u32::try_from(n).unwrap_or(u32::MAX);
                send(&mut ctl, &Message::ViewerReport { stream, viewers }).await?;
            }
        }
    }
}

/// Reads one object stream and stores it; a purge first waits for the
/// streams the origin opened before it (see `order`). A part's chunks go
/// to the live tap as they arrive (the origin writes a part while it is
/// made); the cache gets the part once it is whole.
async fn receive(
    feeds: &Feeds,
    push: &Push,
    mut recv: quinn::RecvStream,
    ticket: &Ticket,
) -> Result<(), PushClientError> {
    let deadline = tokio::time::Instant::now() + OBJECT_TIMEOUT;
    let mut head: Vec<u8> = Vec::new();
    let (message, used) = loop {
        if let Some(found) = push::decode(&Bytes::copy_from_slice(&head))? {
            break found;
        }
        match read(&mut recv, deadline).await? {
            Some(bytes) => head.extend_from_slice(&bytes),
            None => return Err(PushClientError::Wire(WireError::NotAnObject)),
        }
    };
    let rest = Bytes::from(head).slice(used..);
    let header = match message {
        Message::Purge { stream } => {
            ticket.earlier_done().await;
            push.purged(&stream);
            feeds.live.ended(&stream);
            let prefix = format!("/live/{stream}/");
            push.arrivals.forget(&prefix);
            let n = feeds.cache.purge(&prefix).await;
            tracing::info!(%stream, objects = n, "purged: the origin stopped the stream");
            return Ok(());
        }
        Message::Object(header) => header,
        _ => return Err(PushClientError::Wire(WireError::NotAnObject)),
    };
    let (stream, rendition) = media_of(&header.path)
        .map(|(s, r)| (s.to_string(), r.to_string()))
        .ok_or_else(|| PushClientError::Path(header.path.clone()))?;
    let part = match (header.kind, header.part) {
        (PushKind::Part, Some(p)) => Some((header.msn, p)),
        _ => None,
    };
    let body = match part {
        Some(id) => {
            let got = tap(feeds, &mut recv, rest, deadline, (&stream, &rendition, id)).await;
            feeds.live.part_ended(&stream, &rendition, id);
            got?
        }
        None => {
            let mut body = rest.to_vec();
            while let Some(bytes) = read(&mut recv, deadline).await? {
                if body.len() + bytes.len() > push::MAX_OBJECT_BODY {
                    return Err(PushClientError::Wire(WireError::BodyTooLarge(body.len())));
                }
                body.extend_from_slice(&bytes);
            }
            vec![Bytes::from(body)]
        }
    };
    if header.kind == PushKind::Init {
        if let Some(init) = body.first() {
            feeds.live.init(&stream, &rendition, init.clone());
        }
    }
    store(feeds, push, header, body).await
}

/// The next bytes of an object stream (`None` at its end), by `deadline`.
async fn read(
    recv: &mut quinn::RecvStream,
    deadline: tokio::time::Instant,
) -> Result<Option<Bytes>, PushClientError> {
    match tokio::time::timeout_at(deadline, recv.read_chunk(64 * 1024, true)).await {
        Err(_) => Err(PushClientError::Timeout),
        Ok(Err(e)) => Err(PushClientError::ReadChunk(e)),
        Ok(Ok(chunk)) => Ok(chunk.map(|c| c.bytes)),
    }
}

/// A part's body, cut into its chunks as they arrive; each goes to the
/// live tap at once. A torn last chunk fails the part.
async fn tap(
    feeds: &Feeds,
    recv: &mut quinn::RecvStream,
    first: Bytes,
    deadline: tokio::time::Instant,
    (stream, rendition, id): (&str, &str, PartId),
) -> Result<Vec<Bytes>, PushClientError> {
    let mut split = ChunkSplitter::new(push::MAX_OBJECT_BODY);
    let mut chunks = Vec::new();
    let mut total = 0usize;
    let mut next = Some(first);
    while let Some(bytes) = next {
        total += bytes.len();
        if total > push::MAX_OBJECT_BODY {
            return Err(PushClientError::Wire(WireError::BodyTooLarge(total)));
        }
        split.push(&bytes);
        while let Some(chunk) = split.next_chunk()? {
            feeds.live.chunk(stream, rendition, id, chunk.clone());
            chunks.push(chunk);
        }
        next = read(recv, deadline).await?;
    }
    if split.pending() > 0 {
        return Err(PushClientError::Torn(split.pending()));
    }
    Ok(chunks)
}

/// `/live/STREAM/RENDITION/FILE`: the stream and the rendition.
fn media_of(path: &str) -> Option<(&str, &str)> {
    let route = Route::parse(path)?;
    Some((route.stream()?, route.media()?.rendition))
}

/// The cache entries one pushed object fills: (key, kind, max-age).
fn entries(
    header: &ObjectHeader,
    parsed: Option<&MediaPlaylist>,
) -> Vec<(CacheKey, ObjectKind, String)> {
    let path = header.path.as_str();
    let plain = CacheKey::from_request(path, None);
    if header.kind != PushKind::Playlist {
        let kind = ObjectKind::from_request(path, None);
        return vec![(plain, kind, IMMUTABLE.to_string())];
    }
    let target = parsed.map_or(2, |p| p.target_duration.max(1));
    let blocking = format!("public, max-age={}", 6 * target);
    let mut out = vec![(plain, ObjectKind::Playlist, "public, max-age=1".to_string())];
    let Some(part) = header.part else { return out };
    let mut add = |q: String| {
        let key = CacheKey::from_request(path, Some(&q));
        out.push((key, ObjectKind::BlockingPlaylist, blocking.clone()));
    };
    let msn = header.msn;
    add(format!("_HLS_msn={msn}&_HLS_part={part}"));
    // The first part of segment M also completes segment M-1: it answers
    // "all of M-1" and "the part after M-1's last".
    if part == 0 && msn > 0 {
        let prev = parsed.and_then(|p| {
            let idx = usize::try_from((msn - 1).checked_sub(p.media_sequence)?).ok()?;
            p.segments.get(idx).map(|s| s.parts.len())
        });
        add(format!("_HLS_msn={}", msn - 1));
        if let Some(n) = prev.filter(|n| *n > 0) {
            add(format!("_HLS_msn={}&_HLS_part={n}", msn - 1));
        }
    }
    out
}

async fn store(
    feeds: &Feeds,
    push: &Push,
    header: ObjectHeader,
    body: Vec<Bytes>,
) -> Result<(), PushClientError> {
    let refused = || PushClientError::Path(header.path.clone());
    let (stream, rendition) = media_of(&header.path).ok_or_else(refused)?;
    let kind = ObjectKind::from_request(&header.path, None);
    let matches = matches!(
        (header.kind, kind),
        (PushKind::Init, ObjectKind::Init)
            | (PushKind::Part, ObjectKind::Part)
            | (PushKind::Segment, ObjectKind::Segment)
            | (PushKind::Playlist, ObjectKind::Playlist)
    );
    if !matches {
        return Err(refused());
    }
    let ctype = HeaderValue::from_str(&header.content_type)
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    let parsed = (header.kind == PushKind::Playlist)
        .then(|| body.first().and_then(|b| std::str::from_utf8(b).ok()))
        .flatten()
        .and_then(|t| MediaPlaylist::parse(t).ok());
    if let Some(playlist) = &parsed {
        feeds
            .streams
            .learn(stream, rendition, playlist, Instant::now());
    }
    let policy = feeds.streams.policy(stream);
    for (key, kind, max_age) in entries(&header, parsed.as_ref()) {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, ctype.clone());
        if let Ok(v) = HeaderValue::from_str(&max_age) {
            headers.insert(header::CACHE_CONTROL, v);
        }
        let object = feeds.cache.new_object_with(policy, 200, headers, kind);
        for piece in &body {
            if object.body.append(piece.clone()).is_err() {
                let len = body.iter().map(Bytes::len).sum();
                return Err(PushClientError::Wire(WireError::BodyTooLarge(len)));
            }
        }
        object.body.finish();
        let object = Arc::new(object);
        if feeds.cache.insert(key.clone(), object.clone()).await {
            push.arrivals.arrived(&key, &object);
        }
        if kind == ObjectKind::Playlist && parsed.as_ref().is_some_and(|p| p.end_list) {
            push.arrivals.ended(&header.path, &object);
            feeds.live.ended(stream);
        }
    }
    push.pushed(stream, Instant::now());
    tracing::trace!(path = %header.path, kind = header.kind.as_str(), "pushed object stored");
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
mod tests {
    use super::*;

    #[test]
    fn only_plain_live_paths_are_accepted() {
        assert_eq!(
            media_of("/live/cam/source/1.2.m4s"),
            Some(("cam", "source"))
        );
        for bad in [
            "/live/cam/x",
            "/live/../a/b",
            "/etc/passwd",
            "/live/a/b/c/d",
            "/live/cam/master.m3u8",
        ] {
            assert_eq!(media_of(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_playlist_fills_its_blocking_keys() {
        let text = "#EXTM3U\n#EXT-X-VERSION:9\n#EXT-X-TARGETDURATION:2\n#EXT-X-PART-INF:PART-TARGET=0.336\n#EXT-X-MEDIA-SEQUENCE:4\n#EXT-X-MAP:URI=\"init.mp4\"\n#EXT-X-PART:DURATION=0.333,URI=\"4.0.m4s\",INDEPENDENT=YES\n#EXT-X-PART:DURATION=0.333,URI=\"4.1.m4s\"\n#EXTINF:0.666,\n4.m4s\n#EXT-X-PART:DURATION=0.333,URI=\"5.0.m4s\",INDEPENDENT=YES\n";
        let header = ObjectHeader {
            kind: PushKind::Playlist,
            path: "/live/cam/source/index.m3u8".into(),
            msn: 5,
            part: Some(0),
            content_type: "application/vnd.apple.mpegurl".into(),
        };
        let parsed = MediaPlaylist::parse(text).unwrap();
        let keys: Vec<String> = entries(&header, Some(&parsed))
            .iter()
            .map(|(k, _, _)| k.as_str().to_string())
            .collect();
        let want = |q: &str| {
            CacheKey::from_request("/live/cam/source/index.m3u8", Some(q))
                .as_str()
                .to_string()
        };
        assert_eq!(keys[0], "/live/cam/source/index.m3u8");
        assert!(keys.contains(&want("_HLS_msn=5&_HLS_part=0")), "{keys:?}");
        assert!(keys.contains(&want("_HLS_msn=4")), "{keys:?}");
        assert!(keys.contains(&want("_HLS_msn=4&_HLS_part=2")), "{keys:?}");
    }
}
