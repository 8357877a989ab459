//! Counters of the WebRTC server, rendered by the origin's and the edge's
//! `/metrics` under their own prefix.

use livecdn_shared::exposition::{family, single, Kind};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Debug, Default)]
pub struct RtcMetrics {
    /// Sessions now, connected or connecting.
    pub sessions: AtomicU64,
    pub sessions_total: AtomicU64,
    pub connected_total: AtomicU64,
    pub connect_timeouts: AtomicU64,
    pub offers_refused: AtomicU64,
    pub frames_sent: AtomicU64,
    /// Opus packets written to sessions.
    pub audio_sent: AtomicU64,
    /// Frames a stream's feed could not queue for the session task.
    pub frames_dropped: AtomicU64,
    pub keyframe_requests: AtomicU64,
    /// NACKs received: packets viewers asked again (str0m resends them
    /// from its send buffer).
    pub nacks: AtomicU64,
    pub datagrams_in: AtomicU64,
    pub datagrams_out: AtomicU64,
    pub bytes_out: AtomicU64,
    /// Datagrams no session claimed.
    pub datagrams_unmatched: AtomicU64,
    /// Datagrams dropped on the way in (queue full).
    pub datagrams_dropped: AtomicU64,
    /// Datagrams the socket could not take at once.
    pub send_dropped: AtomicU64,
    /// Send calls (one per GSO batch): datagrams_out / sends is the batching.
    pub sends: AtomicU64,
    /// WHIP publishers now, and frames (video and audio) they sent.
    pub publishers: AtomicU64,
    pub publish_frames: AtomicU64,
    /// Keyframes asked of publishers (PLI).
    pub publish_plis: AtomicU64,
    /// Viewers moved to a lower or a higher rendition by their bandwidth
    /// estimate.
    pub moves_down: AtomicU64,
    pub moves_up: AtomicU64,
    /// Sessions per stream, for streams that have any (stream names are
    /// those of live streams: the label set stays bounded).
    per_stream: Mutex<BTreeMap<Arc<str>, u64>>,
}

impl RtcMetrics {
    pub fn set_sessions(&self, n: usize) {
        self.sessions.store(n as u64, Ordering::Relaxed);
    }

    /// `stream` has `n` sessions now.
    pub fn set_stream_sessions(&self, stream: &Arc<str>, n: usize) {
        let mut m = self.per_stream.lock().unwrap_or_else(|e| e.into_inner());
        if n == 0 {
            m.remove(stream);
        } else {
            m.insert(stream.clone(), n as u64);
        }
    }

    /// The sessions `stream` has now.
    pub fn stream_sessions(&self, stream: &str) -> u64 {
        let m = self.per_stream.lock().unwrap_or_else(|e| e.into_inner());
        m.get(stream).copied().unwrap_or(0)
    }

    /// Every stream with sessions now, and how many.
    pub fn streams(&self) -> Vec<(Arc<str>, u64)> {
        let m = self.per_stream.lock().unwrap_or_else(|e| e.into_inner());
        m.iter().map(|(s, n)| (s.clone(), *n)).collect()
    }

    /// The families, each named `PREFIX_webrtc_...`.
    pub fn render(&self, prefix: &str, out: &mut String) {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let rows: [(&str, Kind, &str, u64); 22] = [
            (
                "sessions",
                Kind::Gauge,
                "WHEP sessions, connected or connecting",
                g(&self.sessions),
            ),
            (
                "sessions_accepted_total",
                Kind::Counter,
                "WHEP offers accepted",
                g(&self.sessions_total),
            ),
            (
                "connected_total",
                Kind::Counter,
                "WHEP sessions that connected",
                g(&self.connected_total),
            ),
            (
                "connect_timeouts_total",
                Kind::Counter,
                "WHEP sessions dropped before connecting",
                g(&self.connect_timeouts),
            ),
            (
                "offers_refused_total",
                Kind::Counter,
                "WHEP offers refused",
                g(&self.offers_refused),
            ),
            (
                "frames_sent_total",
                Kind::Counter,
                "video frames written to sessions",
                g(&self.frames_sent),
            ),
            (
                "audio_packets_sent_total",
                Kind::Counter,
                "Opus packets written to sessions",
                g(&self.audio_sent),
            ),
            (
                "frames_dropped_total",
                Kind::Counter,
                "frames a feed could not queue",
                g(&self.frames_dropped),
            ),
            (
                "keyframe_requests_total",
                Kind::Counter,
                "PLI and FIR received",
                g(&self.keyframe_requests),
            ),
            (
                "nacks_total",
                Kind::Counter,
                "NACKs received (packets resent from the send buffer)",
                g(&self.nacks),
            ),
            (
                "datagrams_in_total",
                Kind::Counter,
                "UDP datagrams received",
                g(&self.datagrams_in),
            ),
            (
                "datagrams_out_total",
                Kind::Counter,
                "UDP datagrams sent",
                g(&self.datagrams_out),
            ),
            (
                "bytes_out_total",
                Kind::Counter,
                "UDP payload bytes sent",
                g(&self.bytes_out),
            ),
            (
                "datagrams_unmatched_total",
                Kind::Counter,
                "datagrams no session claimed",
                g(&self.datagrams_unmatched),
            ),
            (
                "datagrams_dropped_total",
                Kind::Counter,
                "datagrams dropped on the way in",
                g(&self.datagrams_dropped),
            ),
            (
                "send_dropped_total",
                Kind::Counter,
                "datagrams the socket could not take",
                g(&self.send_dropped),
            ),
            (
                "sends_total",
                Kind::Counter,
                "send calls (a GSO batch is one)",
                g(&self.sends),
            ),
            (
                "publishers",
                Kind::Gauge,
                "WHIP publishers, connected or connecting",
                g(&self.publishers),
            ),
            (
                "publish_frames_total",
                Kind::Counter,
                "Video frames and audio packets WHIP publishers sent",
                g(&self.publish_frames),
            ),
            (
                "publish_plis_total",
                Kind::Counter,
                "Keyframes asked of WHIP publishers",
                g(&self.publish_plis),
            ),
            (
                "moves_down_total",
                Kind::Counter,
                "Viewers moved to a lower rendition by their bandwidth estimate",
                g(&self.moves_down),
            ),
            (
                "moves_up_total",
                Kind::Counter,
                "Viewers moved to a higher rendition by their bandwidth estimate",
                g(&self.moves_up),
            ),
        ];
        for (name, kind, help, v) in rows {
            single(
                out,
                &format!("{prefix}_webrtc_{name}"),
                kind,
                help,
                v as f64,
            );
        }
        let mut f = family(
            out,
            &format!("{prefix}_webrtc_stream_sessions"),
            Kind::Gauge,
            "WHEP sessions of a stream",
        );
        let m = self.per_stream.lock().unwrap_or_else(|e| e.into_inner());
        for (stream, n) in m.iter() {
            f.sample(&[("stream", &**stream)], *n as f64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_counter_is_rendered_under_the_prefix() {
        let m = RtcMetrics::default();
        m.set_sessions(3);
        m.frames_sent.fetch_add(7, Ordering::Relaxed);
        let (cam, talk) = (Arc::from("cam"), Arc::from("talk"));
        m.set_stream_sessions(&cam, 2);
        m.set_stream_sessions(&talk, 1);
        m.set_stream_sessions(&talk, 0);
        let mut s = String::new();
        m.render("livecdn_origin", &mut s);
        assert!(s.contains("livecdn_origin_webrtc_sessions 3\n"));
        assert!(s.contains("livecdn_origin_webrtc_frames_sent_total 7\n"));
        assert!(s.contains("livecdn_origin_webrtc_stream_sessions{stream=\"cam\"} 2\n"));
        assert!(!s.contains("talk"), "a stream without sessions has no line");
        assert_eq!(m.stream_sessions("cam"), 2);
        assert_eq!(s.lines().filter(|l| !l.starts_with('#')).count(), 23);
    }
}
