//! One viewer: a [`Player`] driven by a tokio task until the run's deadline.
//!
//! The loop: send every request the player wants (it bounds them itself by
//! `max_parallel` per track; they run concurrently inside this task, so no
//! spawn and no channel per request), hand the batch of events to the
//! recorder, then wait for whichever comes first: a response, the player's
//! timeout, or the deadline. Requests still in flight at the deadline are
//! dropped.
//!
//! Both tracks' requests (the variant's and a separate audio rendition's) go
//! through the viewer's one [`HttpClient`], as a browser tab's do: over h1 the
//! viewer's own keep-alive connections, over h2/h3 streams of the viewer's
//! shared connection.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::stream::{FuturesUnordered, StreamExt};
use tokio::time::{sleep_until, Instant};

use super::monitor::Live;
use super::recorder::Recorder;
use crate::client::HttpClient;
use crate::player::{Event, Failure, Outcome, ParseCache, Player, PlayerConfig, Request};

/// What every viewer of a run shares.
#[derive(Debug)]
pub(crate) struct ViewerContext {
    pub(crate) url: String,
    pub(crate) player: PlayerConfig,
    pub(crate) request_timeout: Duration,
    pub(crate) deadline: Instant,
    pub(crate) recorder: Recorder,
    /// Playlist parses shared by viewers sent the same bytes.
    pub(crate) parses: Arc<ParseCache>,
}

/// Plays until the deadline.
pub(crate) async fn run(ctx: Arc<ViewerContext>, index: usize, client: HttpClient) {
    let live = &ctx.recorder.live;
    Live::add(&live.viewers, 1);
    let mut player = Player::new(
        &ctx.url,
        ctx.player.clone(),
        Instant::now().into_std(),
        SystemTime::now(),
    );
    player.share_parses(ctx.parses.clone());
    let mut flights = FuturesUnordered::new();
    let mut events: Vec<Event> = Vec::new();
    // One timer for the viewer's life, moved only when the player's next
    // timeout changes: a fresh `sleep_until` per wakeup (every body chunk of
    // every request) would register and cancel a timer entry each time.
    let timer = sleep_until(ctx.deadline);
    tokio::pin!(timer);
    let mut armed = Some(ctx.deadline);
    loop {
        while let Some(request) = player.poll_request() {
            flights.push(fetch(&client, request, ctx.request_timeout));
        }
        while let Some(event) = player.poll_event() {
            events.push(event);
        }
        if !events.is_empty() {
            ctx.recorder.record(index, &events);
            events.clear();
        }
        let wake = player
            .poll_timeout()
            .map_or(ctx.deadline, Instant::from_std)
            .min(ctx.deadline);
        if armed != Some(wake) {
            timer.as_mut().reset(wake);
            armed = Some(wake);
        }
        tokio::select! {
            Some((id, outcome)) = flights.next(), if !flights.is_empty() => {
                // The run is over: what arrives now is not measured. Every
                // viewer stops at the same deadline, and the first to drop
                // its requests resets their h2 streams; a server that limits
                // reset streams (hyper: 20) then closes the shared
                // connection, failing the requests of viewers whose timers
                // have not fired yet. Those are the run's end, not errors.
                if Instant::now() >= ctx.deadline {
                    break;
                }
                player.handle_response(Instant::now().into_std(), SystemTime::now(), id, outcome);
            }
            () = &mut timer => {
                if Instant::now() >= ctx.deadline {
                    break;
                }
                // Fired: re-arm on the next turn even for the same instant.
                armed = None;
                player.handle_timeout(Instant::now().into_std(), SystemTime::now());
            }
        }
    }
    live.viewers
        .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
}

/// Sends one request, bounded by `limit`.
async fn fetch(client: &HttpClient, request: Request, limit: Duration) -> (u64, Outcome) {
    // Media bodies are only counted by the player: do not keep them.
    let keep = !request.kind.is_media();
    let outcome = match tokio::time::timeout(limit, client.get(&request.url, keep)).await {
        Ok(outcome) => outcome,
        Err(_) => Outcome::Failed {
            kind: Failure::Timeout,
            error: format!("no answer within {limit:?}"),
        },
    };
    (request.id, outcome)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
mod tests {
    use super::*;
    use crate::client::{ClientFactory, ClientOptions, Protocol};
    use crate::player::{RequestKind, Track};

    /// Every in-flight request's future is stored per viewer (up to four at
    /// once), so 10,000 viewers multiply its size by 40,000; the dial path
    /// with its TLS handshake is boxed to keep it out (it made the future
    /// 14 KB).
    #[tokio::test]
    async fn a_request_in_flight_stays_small() {
        for (protocol, url) in [
            (Protocol::H1, "http://127.0.0.1:9/live/a.m4s"),
            (Protocol::H2, "https://127.0.0.1:9/live/a.m4s"),
            (Protocol::H3, "https://127.0.0.1:9/live/a.m4s"),
        ] {
            let options = ClientOptions {
                protocol,
                ..ClientOptions::default()
            };
            let client = ClientFactory::new(url, options).unwrap().client(0);
            let request = Request {
                id: 1,
                url: url.to_owned(),
                kind: RequestKind::Part,
                track: Track::Main,
                rendition: 0,
            };
            let flight = fetch(&client, request, Duration::from_secs(1));
            let size = std::mem::size_of_val(&flight);
            assert!(
                size <= 3072,
                "{protocol:?}: {size} bytes per request in flight"
            );
        }
    }

    fn part(url: &str) -> Request {
        Request {
            id: 7,
            url: url.to_owned(),
            kind: RequestKind::Part,
            track: Track::Main,
            rendition: 0,
        }
    }

    /// The report counts failures by what went wrong: a refused connection
    /// is `connect`, a server that accepts but never answers is `timeout`,
    /// one that answers garbage is `protocol`.
    #[tokio::test]
    async fn failures_are_counted_by_kind() {
        // A port with nothing listening: bind, note the port, close.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let refused = format!("http://{}/live/a.m4s", closed.local_addr().unwrap());
        drop(closed);
        // Accepts and reads, never answers.
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let silent_url = format!("http://{}/live/a.m4s", silent.local_addr().unwrap());
        // Answers with bytes that are not HTTP.
        let garbage = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let garbage_url = format!("http://{}/live/a.m4s", garbage.local_addr().unwrap());
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = silent.accept().await {
                held.push(socket);
            }
        });
        tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            while let Ok((mut socket, _)) = garbage.accept().await {
                let _ = socket.write_all(b"\x00\x01 not http at all\r\n\r\n").await;
                let _ = socket.shutdown().await;
            }
        });
        for (url, want) in [
            (refused, Failure::Connect),
            (silent_url, Failure::Timeout),
            (garbage_url, Failure::Protocol),
        ] {
            let client = ClientFactory::new(&url, ClientOptions::default())
                .unwrap()
                .client(0);
            let (id, outcome) = fetch(&client, part(&url), Duration::from_millis(300)).await;
            assert_eq!(id, 7);
            match outcome {
                Outcome::Failed { kind, error } => {
                    assert_eq!(kind, want, "{url}: {error}");
                }
                other => panic!("{url}: expected a failure, got {other:?}"),
            }
        }
    }
}
