//! [`PlayerConfig`]: how a virtual player behaves.

use std::time::Duration;

/// How a player behaves. `Default` is hls.js in low-latency mode.
#[derive(Debug, Clone)]
pub struct PlayerConfig {
    /// Most requests in flight at once per track (hls.js: a playlist and a
    /// part for the variant, and the same for a separate audio rendition).
    pub max_parallel: usize,
    /// How far behind the live edge to start; `None` uses `PART-HOLD-BACK`
    /// (else `HOLD-BACK`, else three target durations).
    pub start_behind: Option<Duration>,
    /// Ask for delta updates (`_HLS_skip=YES`) when the server allows them.
    /// `livecdn loadtest` turns this on, as hls.js asks for them; off by
    /// default here so scripted request sequences read full playlists.
    pub use_delta: bool,
    /// Fetch the preload-hinted part before it is listed (LL-HLS's
    /// `EXT-X-PRELOAD-HINT`, as the spec and DESIGN ask of a player). Off,
    /// the player fetches each part once a playlist lists it, which is what
    /// hls.js 1.7 does in its own requests (the parts then arrive whole
    /// instead of streamed as they are produced).
    pub use_hints: bool,
    /// Switch renditions by measured throughput.
    pub abr: bool,
    /// Stop fetching media while this much is buffered.
    pub max_buffer: Duration,
    /// Variant to start with (index in ascending bandwidth order); `None` is the
    /// lowest.
    pub start_rendition: Option<usize>,
    /// Half-life of the throughput estimate, in media time.
    pub abr_half_life: Duration,
    /// Least time between two rendition switches.
    pub abr_min_interval: Duration,
    /// Buffer level required before switching up.
    pub abr_healthy_buffer: Duration,
    /// Wait before retrying after a 503 (the server's "try again").
    pub retry_503: Duration,
    /// First retry delay after a network failure or other error; doubles per
    /// consecutive failure up to `retry_max`.
    pub retry_base: Duration,
    /// Cap of the exponential retry delay.
    pub retry_max: Duration,
    /// Fastest playback rate used to catch up with the target latency
    /// (hls.js `maxLiveSyncPlaybackRate`; 1, the default, never catches up).
    pub max_live_sync_playback_rate: f64,
    /// Added to the target latency per stall, at most one target duration
    /// in all (hls.js `liveSyncOnStallIncrease`).
    pub live_sync_on_stall_increase: Duration,
}

impl Default for PlayerConfig {
    fn default() -> Self {
        PlayerConfig {
            max_parallel: 2,
            start_behind: None,
            use_delta: false,
            use_hints: true,
            abr: true,
            max_buffer: Duration::from_secs(30),
            start_rendition: None,
            abr_half_life: Duration::from_secs(1),
            abr_min_interval: Duration::from_secs(2),
            abr_healthy_buffer: Duration::from_millis(500),
            retry_503: Duration::from_millis(500),
            retry_base: Duration::from_millis(250),
            retry_max: Duration::from_secs(8),
            max_live_sync_playback_rate: 1.0,
            live_sync_on_stall_increase: Duration::from_secs(1),
        }
    }
}
