//! The URL grammar of every path livecdn serves (DESIGN.md section 3), in
//! one place: the origin's router, the edge's cache key, object kind and
//! metric labels, and the load-test harness all parse with [`Route::parse`]
//! and build paths with [`Route`]'s `Display`, so a new path (the MPD, WHEP,
//! chat, VOD) is added here once.
//!
//! Parsing is strict and allocation-free: names are restricted to
//! `[A-Za-z0-9_-]` ([`valid_stream_name`]), numbers are plain decimal digits
//! that fit their type, and anything else is `None` (a 404). So no path can
//! reach outside the routes below, and two spellings never name one object
//! (`/live/s/v/01.m4s` is not `1.m4s`), which keeps cache keys canonical.
//!
//! ```
//! use livecdn_shared::route::{MediaFile, Route, RouteKind};
//! let r = Route::parse("/live/cam/720p/12.3.m4s").expect("a part");
//! assert_eq!(r.stream(), Some("cam"));
//! assert_eq!(r.kind(), RouteKind::Part);
//! assert_eq!(r.media().map(|m| m.file), Some(MediaFile::Part { msn: 12, part: 3 }));
//! assert_eq!(r.to_string(), "/live/cam/720p/12.3.m4s");
//! ```

use crate::auth::valid_stream_name;
use std::fmt;

/// One request path, parsed. Names borrow from the path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Route<'a> {
    /// `/` (also `/index.html`): the player page.
    Player,
    /// `/player/FILE`: a player engine's script for the page.
    PlayerScript(Script),
    /// `/healthz`
    Healthz,
    /// `/readyz`
    Readyz,
    /// `/metrics`
    Metrics,
    /// `/time`: the server's clock (ISO 8601), the MPD's `UTCTiming`.
    Time,
    /// `/api/streams`
    ApiStreams,
    /// `/api/streams/STREAM`
    ApiStream(&'a str),
    /// `/api/channels`: list (GET) and create (POST) channels.
    ApiChannels,
    /// `/api/recordings[?stream=NAME]`: list recordings (GET).
    ApiRecordings,
    /// `/api/recordings/STREAM/RECORDING`: one recording (GET, DELETE).
    ApiRecording { stream: &'a str, recording: &'a str },
    /// `/api/purge?stream=NAME` or `?prefix=/PATH`: an edge drops cached
    /// objects (POST).
    ApiPurge,
    /// `/api/channels/NAME[/...]`: one channel of the control plane.
    ApiChannel {
        /// The channel's name, which is its public stream name.
        name: &'a str,
        /// What of the channel.
        object: ChannelObject<'a>,
    },
    /// `/api/chat/STREAM/...`: moderation and chat tokens of a room (edges).
    ApiChat {
        /// The room's stream name.
        stream: &'a str,
        /// What of the room.
        object: ChatApiObject<'a>,
    },
    /// `/live/whip`: WebRTC publish (WHIP), the stream key as bearer token.
    Whip,
    /// `/live/whip/SESSION`: one WHIP session (PATCH trickle ICE, DELETE
    /// ends the publish); the id is 32 lowercase hex digits.
    WhipSession(&'a str),
    /// `/live/STREAM/...`
    Live {
        /// The public stream name.
        stream: &'a str,
        /// What of the stream.
        object: LiveObject<'a>,
    },
    /// `/vod/STREAM/RECORDING/...`: a finished recording.
    Vod {
        /// The public stream name.
        stream: &'a str,
        /// The recording's id.
        recording: &'a str,
        /// What of the recording.
        object: VodObject<'a>,
    },
}

/// The player engines the page can load, each from its npm package.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Script {
    /// hls.js (the default engine).
    HlsJs,
    /// Shaka Player (HLS and DASH).
    Shaka,
    /// dash.js (LL-DASH).
    DashJs,
    /// The page's chat (`player/chat.js`, built into the binary like the
    /// page).
    Chat,
}

impl Script {
    /// The name under `/player/`.
    pub fn file_name(self) -> &'static str {
        match self {
            Script::HlsJs => "hls.min.js",
            Script::Shaka => "shaka-player.compiled.js",
            Script::DashJs => "dash.all.min.js",
            Script::Chat => "chat.js",
        }
    }

    /// Where the file is inside `player/node_modules`; `None` for the
    /// page's own script.
    pub fn package_path(self) -> Option<&'static str> {
        match self {
            Script::HlsJs => Some("hls.js/dist/hls.min.js"),
            Script::Shaka => Some("shaka-player/dist/shaka-player.compiled.js"),
            Script::DashJs => Some("dashjs/dist/modern/umd/dash.all.min.js"),
            Script::Chat => None,
        }
    }
}

/// What a `/live/STREAM/` path names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LiveObject<'a> {
    /// `master.m3u8`: the multivariant playlist.
    Master,
    /// `manifest.mpd`: LL-DASH over the same CMAF.
    Mpd,
    /// `whep`: WebRTC playback (POST an SDP offer).
    Whep,
    /// `whep/SESSION`: one WHEP session (PATCH trickle ICE, DELETE); the id
    /// is 32 lowercase hex digits.
    WhepSession(&'a str),
    /// `chat`: the stream's chat room (WebSocket).
    Chat,
    /// `RENDITION/...`: one rendition's playlist or media.
    Media(MediaPath<'a>),
}

/// What a `/api/channels/NAME/` path names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChannelObject<'a> {
    /// `/api/channels/NAME`: the channel record.
    Record,
    /// `.../stream`: the live stream's state and health.
    Stream,
    /// `.../keys`: its stream keys (POST rotates).
    Keys,
    /// `.../keys/ID`: one stream key (DELETE revokes).
    Key(&'a str),
    /// `.../stop`: end the live stream now (POST).
    Stop,
}

/// What an `/api/chat/STREAM/` path names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChatApiObject<'a> {
    /// `.../tokens`: mint a chat token (POST).
    Tokens,
    /// `.../messages/ID`: one message (DELETE removes it for everyone).
    Message(&'a str),
    /// `.../bans/USER`: a ban (PUT bans, DELETE lifts).
    Ban(&'a str),
}

/// Whether `id` has the form of a chat message id (`MS-SEQ`, decimal).
fn is_message_id(id: &str) -> bool {
    let digits = |s: &str| (1..=20).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit());
    matches!(id.split_once('-'), Some((ms, seq)) if digits(ms) && digits(seq))
}

/// What a `/vod/STREAM/RECORDING/` path names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VodObject<'a> {
    /// `master.m3u8`
    Master,
    /// `download.mp4`: the whole recording as one progressive MP4.
    Download,
    /// `RENDITION/...`
    Media(MediaPath<'a>),
}

/// A rendition's file: `RENDITION/FILE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MediaPath<'a> {
    /// The rendition name (`source`, `audio`, a rung such as `720p`).
    pub rendition: &'a str,
    /// Which file of it.
    pub file: MediaFile,
}

/// A rendition's files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaFile {
    /// `index.m3u8`: the media playlist.
    Playlist,
    /// `init.mp4` (generation 0) or `init-GEN.mp4`: the CMAF header.
    Init {
        /// Codec configuration generation.
        gen: u32,
    },
    /// `MSN.m4s`: a whole segment.
    Segment {
        /// Media sequence number.
        msn: u64,
    },
    /// `MSN.PART.m4s`: a partial segment.
    Part {
        /// Media sequence number of the parent segment.
        msn: u64,
        /// Part index within it.
        part: u32,
    },
}

/// What a route serves, as a closed set: metric labels, cache policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RouteKind {
    /// The player page and its script.
    Page,
    /// Liveness, readiness and the clock.
    Health,
    /// Prometheus text.
    Metrics,
    /// JSON API.
    Api,
    /// Multivariant playlist.
    Master,
    /// Media playlist.
    Playlist,
    /// DASH manifest.
    Mpd,
    /// CMAF header.
    Init,
    /// Segment.
    Segment,
    /// Part.
    Part,
    /// WebRTC signalling (WHEP, WHIP).
    WebRtc,
    /// Chat WebSocket.
    Chat,
    /// A progressive download of a recording.
    Download,
}

impl RouteKind {
    /// A fixed label for metrics and span fields.
    pub fn as_str(self) -> &'static str {
        match self {
            RouteKind::Page => "page",
            RouteKind::Health => "health",
            RouteKind::Metrics => "metrics",
            RouteKind::Api => "api",
            RouteKind::Master => "master",
            RouteKind::Playlist => "playlist",
            RouteKind::Mpd => "mpd",
            RouteKind::Init => "init",
            RouteKind::Segment => "segment",
            RouteKind::Part => "part",
            RouteKind::WebRtc => "webrtc",
            RouteKind::Chat => "chat",
            RouteKind::Download => "download",
        }
    }

    /// Whether the object never changes once served (media and headers).
    pub fn is_immutable(self) -> bool {
        matches!(
            self,
            RouteKind::Init | RouteKind::Segment | RouteKind::Part | RouteKind::Download
        )
    }
}

/// The longest path worth parsing; longer ones are not ours.
pub const MAX_PATH: usize = 256;

impl<'a> Route<'a> {
    /// Parses a request path (without the query). `None` for anything that is
    /// not exactly one of the routes above.
    pub fn parse(path: &'a str) -> Option<Route<'a>> {
        if path.len() > MAX_PATH {
            return None;
        }
        match path {
            "/" | "/index.html" => return Some(Route::Player),
            "/player/hls.min.js" => return Some(Route::PlayerScript(Script::HlsJs)),
            "/player/shaka-player.compiled.js" => return Some(Route::PlayerScript(Script::Shaka)),
            "/player/dash.all.min.js" => return Some(Route::PlayerScript(Script::DashJs)),
            "/player/chat.js" => return Some(Route::PlayerScript(Script::Chat)),
            "/healthz" => return Some(Route::Healthz),
            "/readyz" => return Some(Route::Readyz),
            "/metrics" => return Some(Route::Metrics),
            "/time" => return Some(Route::Time),
            "/api/streams" => return Some(Route::ApiStreams),
            "/api/channels" => return Some(Route::ApiChannels),
            "/api/purge" => return Some(Route::ApiPurge),
            "/api/recordings" => return Some(Route::ApiRecordings),
            "/live/whip" => return Some(Route::Whip),
            p => {
                if let Some(id) = p.strip_prefix("/live/whip/").filter(|id| is_session_id(id)) {
                    return Some(Route::WhipSession(id));
                }
            }
        }
        if let Some(name) = path.strip_prefix("/api/streams/") {
            return valid_stream_name(name).then_some(Route::ApiStream(name));
        }
        if let Some(rest) = path.strip_prefix("/api/recordings/") {
            let (stream, recording) = rest.split_once('/')?;
            return (valid_stream_name(stream) && valid_stream_name(recording))
                .then_some(Route::ApiRecording { stream, recording });
        }
        if let Some(rest) = path.strip_prefix("/api/chat/") {
            let (stream, rest) = rest.split_once('/')?;
            if !valid_stream_name(stream) {
                return None;
            }
            let object = match rest.split_once('/') {
                None if rest == "tokens" => ChatApiObject::Tokens,
                Some(("messages", id)) if is_message_id(id) => ChatApiObject::Message(id),
                Some(("bans", user)) if crate::auth::valid_chat_user(user) => {
                    ChatApiObject::Ban(user)
                }
                _ => return None,
            };
            return Some(Route::ApiChat { stream, object });
        }
        if let Some(rest) = path.strip_prefix("/api/channels/") {
            let (name, rest) = match rest.split_once('/') {
                Some((name, rest)) => (name, Some(rest)),
                None => (rest, None),
            };
            if !valid_stream_name(name) {
                return None;
            }
            let Some(rest) = rest else {
                return Some(Route::ApiChannel {
                    name,
                    object: ChannelObject::Record,
                });
            };
            let object = match rest {
                "stream" => ChannelObject::Stream,
                "keys" => ChannelObject::Keys,
                "stop" => ChannelObject::Stop,
                _ => {
                    let id = rest.strip_prefix("keys/")?;
                    if !valid_stream_name(id) {
                        return None;
                    }
                    ChannelObject::Key(id)
                }
            };
            return Some(Route::ApiChannel { name, object });
        }
        if let Some(rest) = path.strip_prefix("/live/") {
            let (stream, rest) = rest.split_once('/')?;
            if !valid_stream_name(stream) {
                return None;
            }
            let object = match rest {
                "master.m3u8" => LiveObject::Master,
                "manifest.mpd" => LiveObject::Mpd,
                "whep" => LiveObject::Whep,
                "chat" => LiveObject::Chat,
                _ => match rest.strip_prefix("whep/") {
                    Some(id) if is_session_id(id) => LiveObject::WhepSession(id),
                    Some(_) => return None,
                    None => LiveObject::Media(MediaPath::parse(rest)?),
                },
            };
            return Some(Route::Live { stream, object });
        }
        let rest = path.strip_prefix("/vod/")?;
        let (stream, rest) = rest.split_once('/')?;
        let (recording, rest) = rest.split_once('/')?;
        if !valid_stream_name(stream) || !valid_stream_name(recording) {
            return None;
        }
        let object = match rest {
            "master.m3u8" => VodObject::Master,
            "download.mp4" => VodObject::Download,
            _ => VodObject::Media(MediaPath::parse(rest)?),
        };
        Some(Route::Vod {
            stream,
            recording,
            object,
        })
    }

    /// The stream a route belongs to, if any.
    pub fn stream(&self) -> Option<&'a str> {
        match self {
            Route::ApiStream(s)
            | Route::ApiChannel { name: s, .. }
            | Route::ApiRecording { stream: s, .. }
            | Route::ApiChat { stream: s, .. }
            | Route::Live { stream: s, .. }
            | Route::Vod { stream: s, .. } => Some(s),
            _ => None,
        }
    }

    /// The rendition file a route names, live or recorded.
    pub fn media(&self) -> Option<MediaPath<'a>> {
        match self {
            Route::Live {
                object: LiveObject::Media(m),
                ..
            }
            | Route::Vod {
                object: VodObject::Media(m),
                ..
            } => Some(*m),
            _ => None,
        }
    }

    /// What the route serves.
    pub fn kind(&self) -> RouteKind {
        match self {
            Route::Player | Route::PlayerScript(_) => RouteKind::Page,
            Route::Healthz | Route::Readyz | Route::Time => RouteKind::Health,
            Route::Metrics => RouteKind::Metrics,
            Route::ApiStreams
            | Route::ApiStream(_)
            | Route::ApiChannels
            | Route::ApiPurge
            | Route::ApiRecordings
            | Route::ApiRecording { .. }
            | Route::ApiChannel { .. }
            | Route::ApiChat { .. } => RouteKind::Api,
            Route::Whip | Route::WhipSession(_) => RouteKind::WebRtc,
            Route::Live { object, .. } => match object {
                LiveObject::Master => RouteKind::Master,
                LiveObject::Mpd => RouteKind::Mpd,
                LiveObject::Whep | LiveObject::WhepSession(_) => RouteKind::WebRtc,
                LiveObject::Chat => RouteKind::Chat,
                LiveObject::Media(m) => m.file.kind(),
            },
            Route::Vod { object, .. } => match object {
                VodObject::Master => RouteKind::Master,
                VodObject::Download => RouteKind::Download,
                VodObject::Media(m) => m.file.kind(),
            },
        }
    }
}

/// A WHEP session id: 32 lowercase hex digits (128 random bits).
pub fn is_session_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

impl<'a> MediaPath<'a> {
    /// Parses `RENDITION/FILE`.
    pub fn parse(s: &'a str) -> Option<MediaPath<'a>> {
        let (rendition, file) = s.split_once('/')?;
        if !valid_stream_name(rendition) {
            return None;
        }
        Some(MediaPath {
            rendition,
            file: MediaFile::parse(file)?,
        })
    }
}

impl MediaFile {
    /// Parses a rendition's file name.
    pub fn parse(file: &str) -> Option<MediaFile> {
        match file {
            "index.m3u8" => return Some(MediaFile::Playlist),
            "init.mp4" => return Some(MediaFile::Init { gen: 0 }),
            _ => {}
        }
        if let Some(g) = file
            .strip_prefix("init-")
            .and_then(|f| f.strip_suffix(".mp4"))
        {
            // `init-0.mp4` would alias `init.mp4`.
            let gen = u32::try_from(number(g)?).ok().filter(|g| *g > 0)?;
            return Some(MediaFile::Init { gen });
        }
        let stem = file.strip_suffix(".m4s")?;
        match stem.split_once('.') {
            None => Some(MediaFile::Segment { msn: number(stem)? }),
            Some((m, p)) => Some(MediaFile::Part {
                msn: number(m)?,
                part: u32::try_from(number(p)?).ok()?,
            }),
        }
    }

    /// What the file is.
    pub fn kind(self) -> RouteKind {
        match self {
            MediaFile::Playlist => RouteKind::Playlist,
            MediaFile::Init { .. } => RouteKind::Init,
            MediaFile::Segment { .. } => RouteKind::Segment,
            MediaFile::Part { .. } => RouteKind::Part,
        }
    }
}

/// Plain decimal digits, no leading zero (one spelling per number), that
/// fit in a u64.
fn number(s: &str) -> Option<u64> {
    let plain = !s.is_empty()
        && s.len() <= 20
        && s.bytes().all(|b| b.is_ascii_digit())
        && (s == "0" || !s.starts_with('0'));
    plain.then(|| s.parse().ok()).flatten()
}

impl fmt::Display for MediaFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MediaFile::Playlist => f.write_str("index.m3u8"),
            MediaFile::Init { gen: 0 } => f.write_str("init.mp4"),
            MediaFile::Init { gen } => write!(f, "init-{gen}.mp4"),
            MediaFile::Segment { msn } => write!(f, "{msn}.m4s"),
            MediaFile::Part { msn, part } => write!(f, "{msn}.{part}.m4s"),
        }
    }
}

impl fmt::Display for MediaPath<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.rendition, self.file)
    }
}

impl fmt::Display for Route<'_> {
    /// The canonical path (`/index.html` renders as `/`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Route::Player => f.write_str("/"),
            Route::PlayerScript(s) => write!(f, "/player/{}", s.file_name()),
            Route::Healthz => f.write_str("/healthz"),
            Route::Readyz => f.write_str("/readyz"),
            Route::Metrics => f.write_str("/metrics"),
            Route::Time => f.write_str("/time"),
            Route::ApiStreams => f.write_str("/api/streams"),
            Route::ApiStream(s) => write!(f, "/api/streams/{s}"),
            Route::ApiChannels => f.write_str("/api/channels"),
            Route::ApiPurge => f.write_str("/api/purge"),
            Route::ApiRecordings => f.write_str("/api/recordings"),
            Route::ApiRecording { stream, recording } => {
                write!(f, "/api/recordings/{stream}/{recording}")
            }
            Route::ApiChannel { name, object } => {
                write!(f, "/api/channels/{name}")?;
                match object {
                    ChannelObject::Record => Ok(()),
                    ChannelObject::Stream => f.write_str("/stream"),
                    ChannelObject::Keys => f.write_str("/keys"),
                    ChannelObject::Key(id) => write!(f, "/keys/{id}"),
                    ChannelObject::Stop => f.write_str("/stop"),
                }
            }
            Route::ApiChat { stream, object } => {
                write!(f, "/api/chat/{stream}/")?;
                match object {
                    ChatApiObject::Tokens => f.write_str("tokens"),
                    ChatApiObject::Message(id) => write!(f, "messages/{id}"),
                    ChatApiObject::Ban(user) => write!(f, "bans/{user}"),
                }
            }
            Route::Whip => f.write_str("/live/whip"),
            Route::WhipSession(id) => write!(f, "/live/whip/{id}"),
            Route::Live { stream, object } => {
                write!(f, "/live/{stream}/")?;
                match object {
                    LiveObject::Master => f.write_str("master.m3u8"),
                    LiveObject::Mpd => f.write_str("manifest.mpd"),
                    LiveObject::Whep => f.write_str("whep"),
                    LiveObject::WhepSession(id) => write!(f, "whep/{id}"),
                    LiveObject::Chat => f.write_str("chat"),
                    LiveObject::Media(m) => m.fmt(f),
                }
            }
            Route::Vod {
                stream,
                recording,
                object,
            } => {
                write!(f, "/vod/{stream}/{recording}/")?;
                match object {
                    VodObject::Master => f.write_str("master.m3u8"),
                    VodObject::Download => f.write_str("download.mp4"),
                    VodObject::Media(m) => m.fmt(f),
                }
            }
        }
    }
}

/// Fuzz body: a path either does not parse, or parses to a route whose
/// canonical rendering parses back to the same route and stays within the
/// grammar's characters.
pub fn fuzz_route(data: &[u8]) {
    let Ok(path) = std::str::from_utf8(data) else {
        return;
    };
    let Some(route) = Route::parse(path) else {
        return;
    };
    let rendered = route.to_string();
    assert_eq!(Route::parse(&rendered), Some(route), "{rendered:?}");
    assert!(
        rendered
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-".contains(&b)),
        "{rendered:?}"
    );
    assert!(!rendered.contains(".."), "{rendered:?}");
}

#[cfg(test)]
#[path = "route_tests.rs"]
mod tests;
