//! Virtual-clock scenarios: the player against the scripted server in
//! `server.rs`, time jumping to the next deadline, every loop step-bounded.

#![allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]

mod abr_delta;
mod audio;
mod catch_up;
mod errors;
mod recorded;
mod server;
mod steady;
mod units;

use std::time::{Duration, Instant};

use server::{Server, BASE};

use super::{Event, Player, PlayerConfig, Request, RequestKind, Track};

/// Most clock steps in one `run_until`.
const STEP_BOUND: usize = 200_000;

/// A player, the server, and everything that passed between them.
pub struct Sim {
    pub player: Player,
    pub server: Server,
    pub now: Instant,
    /// Every request, with the instant it was sent.
    pub sent: Vec<(Instant, Request)>,
    /// Every event, with the instant it was polled.
    pub events: Vec<(Instant, Event)>,
    /// Requests not answered yet.
    pub outstanding: Vec<Request>,
    /// Most blocking reloads in flight at once for one rendition (or the
    /// audio).
    pub max_blocking_in_flight: usize,
}

impl Sim {
    pub fn new(config: PlayerConfig, bandwidths: Vec<u64>) -> Sim {
        Sim::with_server(config, bandwidths, |_| {})
    }

    /// A player against a server whose master names an audio rendition.
    pub fn with_audio(config: PlayerConfig, bandwidths: Vec<u64>) -> Sim {
        Sim::with_server(config, bandwidths, |s| s.audio = true)
    }

    /// A player against a server set up by `setup` before the first request.
    pub fn with_server(
        config: PlayerConfig,
        bandwidths: Vec<u64>,
        setup: impl FnOnce(&mut Server),
    ) -> Sim {
        let now = Instant::now();
        let mut server = Server::new(now, bandwidths);
        setup(&mut server);
        let url = format!("{BASE}/master.m3u8");
        let player = Player::new(&url, config, now, server.wall(now));
        Sim {
            player,
            server,
            now,
            sent: Vec::new(),
            events: Vec::new(),
            outstanding: Vec::new(),
            max_blocking_in_flight: 0,
        }
    }

    pub fn at(&self, secs: f64) -> Instant {
        self.server.t0 + Duration::from_secs_f64(secs)
    }

    fn pump(&mut self) {
        while let Some(request) = self.player.poll_request() {
            self.server.accept(self.now, &request);
            self.outstanding.push(request.clone());
            self.sent.push((self.now, request));
        }
        for rendition in 0..self.server.bandwidths.len() {
            for track in Track::ALL {
                let blocking = self
                    .outstanding
                    .iter()
                    .filter(|r| r.kind == RequestKind::BlockingPlaylist && r.track == track)
                    .filter(|r| track == Track::Audio || r.rendition == rendition)
                    .count();
                self.max_blocking_in_flight = self.max_blocking_in_flight.max(blocking);
            }
        }
        while let Some(event) = self.player.poll_event() {
            self.events.push((self.now, event));
        }
    }

    /// Runs the virtual clock to `end`.
    pub fn run_until(&mut self, end: Instant) {
        for _ in 0..STEP_BOUND {
            self.pump();
            let next = [self.player.poll_timeout(), self.server.next_due()]
                .into_iter()
                .flatten()
                .min();
            let Some(next) = next.filter(|&t| t <= end) else {
                self.now = end;
                self.player.handle_timeout(end, self.server.wall(end));
                self.pump();
                return;
            };
            self.now = next.max(self.now);
            let wall = self.server.wall(self.now);
            for (id, outcome) in self.server.take_due(self.now) {
                self.outstanding.retain(|r| r.id != id);
                self.player.handle_response(self.now, wall, id, outcome);
                self.pump();
            }
            self.player.handle_timeout(self.now, wall);
        }
        panic!("step bound reached before {end:?}");
    }

    pub fn run_secs(&mut self, secs: f64) {
        let end = self.now + Duration::from_secs_f64(secs);
        self.run_until(end);
    }

    /// Requests sent in `[from, to)`.
    pub fn sent_between(&self, from: Instant, to: Instant) -> Vec<&Request> {
        self.sent
            .iter()
            .filter(|(t, _)| *t >= from && *t < to)
            .map(|(_, r)| r)
            .collect()
    }

    /// The URL path after the base, e.g. `v0/p10.2.m4s`.
    pub fn path(request: &Request) -> &str {
        request
            .url
            .strip_prefix(BASE)
            .unwrap_or(&request.url)
            .trim_start_matches('/')
    }

    pub fn events_matching(&self, f: impl Fn(&Event) -> bool) -> Vec<(Instant, Event)> {
        self.events.iter().filter(|(_, e)| f(e)).cloned().collect()
    }

    /// Asserts exactly one stall, lasting `expected` within half a second.
    pub fn assert_one_stall_of(&self, expected: Duration) {
        let starts = self.events_matching(|e| matches!(e, Event::StallStart));
        let ends: Vec<Duration> = self
            .events
            .iter()
            .filter_map(|(_, e)| match e {
                Event::StallEnd { duration } => Some(*duration),
                _ => None,
            })
            .collect();
        assert_eq!((starts.len(), ends.len()), (1, 1), "{:?}", self.events);
        let error = ends[0].as_secs_f64() - expected.as_secs_f64();
        assert!(
            error.abs() <= 0.5,
            "stalled {:?}, expected about {expected:?}",
            ends[0]
        );
    }
}

/// Default config with ABR off, so request sequences are deterministic.
pub fn fixed() -> PlayerConfig {
    PlayerConfig {
        abr: false,
        ..PlayerConfig::default()
    }
}
