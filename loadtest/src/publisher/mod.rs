//! Synthetic RTMP publishers: a bundled clip looped in real time and sent
//! to an RTMP server, as `livecdn up --demo` and `livecdn loadtest publish`
//! need.
//!
//! * [`Schedule`] (sans-IO) decides which FLV tag goes out when, with
//!   timestamps continuous across loops of the clip.
//! * [`publish`] is the thin tokio driver: TCP, RTMP handshake, `connect`,
//!   `publish`, then media paced by the schedule until a duration passes or
//!   shutdown is signalled.
//! * [`parse_rtmp_url`] reads `rtmp://host[:port]/app/key`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use livecdn_loadtest::publisher::{parse_rtmp_url, publish, PublishOptions};
//!
//! let url = parse_rtmp_url("rtmp://127.0.0.1:1935/live/STREAMKEY")?;
//! let (_stop, shutdown) = tokio::sync::watch::channel(false);
//! let stats = publish(&url, PublishOptions::default(), shutdown).await?;
//! println!("sent {} video tags", stats.video_tags);
//! # Ok(()) }
//! ```

mod rtmp;
mod schedule;
mod url;

pub use rtmp::{publish, PublishError, PublishOptions, PublishStats};
pub use schedule::{read_tags, Action, Schedule, ScheduleError, ScheduledTag};
pub use url::{parse_rtmp_url, RtmpUrl, UrlError, DEFAULT_RTMP_PORT};
