//! Origin-to-edge push (DESIGN.md section 5): a QUIC endpoint on
//! `push.listen` where edges subscribe to streams and receive every new
//! init section, part, segment and playlist, each on its own unidirectional
//! stream. The wire format is [`livecdn_shared::push`].
//!
//! * [`server`]: the endpoint, one task per edge connection reading its
//!   control stream, one task per subscription sending objects.
//! * `send`: each object on its own stream; a part still being made on
//!   a stream that stays open for its chunks as they come.
//! * [`tracker`]: the pure diff "what is new in the window since the last
//!   send", run under the stream's lock after every window change.
//! * [`PushViewers`]: the viewer counts edges report, summed per stream for
//!   `/api/streams`.

mod send;
pub mod server;
pub mod tracker;

pub use server::{PushError, PushServer};

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A report older than this no longer counts (edges report every second).
const REPORT_TTL: Duration = Duration::from_secs(5);
/// Upper bound on remembered (edge, stream) reports: a memory bound against
/// an edge that reports for made-up streams.
const MAX_REPORTS: usize = 100_000;

/// Viewer counts reported by edges: (connection, stream) → (viewers, when).
#[derive(Debug, Default)]
pub struct PushViewers {
    reports: Mutex<HashMap<(u64, String), (u32, Instant)>>,
}

impl PushViewers {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(u64, String), (u32, Instant)>> {
        // Every update is a single insert/remove: a poisoned map is consistent.
        self.reports.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Edge connection `conn` says `viewers` watch `stream` there.
    pub fn report(&self, conn: u64, stream: &str, viewers: u32, now: Instant) {
        let mut map = self.lock();
        if map.len() >= MAX_REPORTS {
            map.retain(|_, (_, at)| now.saturating_duration_since(*at) < REPORT_TTL);
            if map.len() >= MAX_REPORTS {
                return;
            }
        }
        map.insert((conn, stream.to_string()), (viewers, now));
    }

    /// Drops everything edge connection `conn` reported (it closed).
    pub fn forget(&self, conn: u64) {
        self.lock().retain(|(c, _), _| *c != conn);
    }

    /// Viewers of `stream` over all edges with a fresh report; `None` when no
    /// edge reports on it.
    pub fn total(&self, stream: &str, now: Instant) -> Option<u64> {
        let map = self.lock();
        let mut fresh = map
            .iter()
            .filter(|((_, s), (_, at))| {
                s == stream && now.saturating_duration_since(*at) < REPORT_TTL
            })
            .map(|(_, (n, _))| u64::from(*n))
            .peekable();
        fresh.peek()?;
        Some(fresh.sum())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn viewer_reports_sum_over_edges_and_expire() {
        let v = PushViewers::default();
        let t0 = Instant::now();
        assert_eq!(v.total("cam", t0), None);
        v.report(1, "cam", 3, t0);
        v.report(2, "cam", 4, t0);
        v.report(2, "other", 9, t0);
        v.report(1, "cam", 5, t0 + Duration::from_secs(1));
        assert_eq!(v.total("cam", t0 + Duration::from_secs(1)), Some(9));
        v.forget(2);
        assert_eq!(v.total("cam", t0 + Duration::from_secs(1)), Some(5));
        assert_eq!(v.total("other", t0), None);
        assert_eq!(v.total("cam", t0 + Duration::from_secs(10)), None);
    }
}
