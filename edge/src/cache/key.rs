//! Cache keys and object kinds.
//!
//! A key is the request path plus the LL-HLS delivery directives (`_HLS_msn`,
//! `_HLS_part`, `_HLS_skip`) in sorted order, and nothing else from the query.
//! Tokens and cache busters differ per viewer; keeping them would give every
//! viewer its own entry and its own upstream fetch, which defeats coalescing.
//! The edge checks tokens before it builds the key (DESIGN.md section 5).

use std::fmt;
use std::sync::Arc;

use livecdn_shared::playlist::HlsQuery;
use livecdn_shared::priority::ResourceKind;
use livecdn_shared::route::{Route, RouteKind};

/// The delivery directives that belong in a key, sorted by name.
const HLS_DIRECTIVES: [&str; 3] = ["_HLS_msn", "_HLS_part", "_HLS_skip"];

/// A normalised cache key; cloning is a reference-count increment.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CacheKey(Arc<str>);

impl CacheKey {
    /// Builds the key for a request: `path`, then `?` and the `_HLS_*` directives
    /// sorted by name if there are any.
    ///
    /// Well-formed directives are written in the canonical form of
    /// [`HlsQuery::cache_key_suffix`], so `_HLS_msn=005` and `_HLS_msn=5` share an
    /// entry. A malformed query (which the caller should already have answered
    /// with 400) still gets a deterministic key: its `_HLS_*` pairs verbatim,
    /// sorted, so it can never alias a well-formed request.
    pub fn from_request(path: &str, query: Option<&str>) -> CacheKey {
        let suffix = match query {
            None => String::new(),
            Some(query) => match HlsQuery::parse(query) {
                Ok(parsed) => parsed.cache_key_suffix(),
                Err(_) => raw_suffix(query),
            },
        };
        if suffix.is_empty() {
            CacheKey(Arc::from(path))
        } else {
            CacheKey(Arc::from(format!("{path}?{suffix}")))
        }
    }

    /// The key text, e.g. `/live/s/720p/index.m3u8?_HLS_msn=5&_HLS_part=1`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The path part of the key (everything before `?`).
    pub fn path(&self) -> &str {
        self.0.split_once('?').map_or(&self.0, |(path, _)| path)
    }
}

impl fmt::Display for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The `_HLS_*` pairs of a query that [`HlsQuery`] rejects, verbatim and sorted.
/// The `~` marker keeps these keys apart from canonical ones.
fn raw_suffix(query: &str) -> String {
    let query = query.strip_prefix('?').unwrap_or(query);
    let mut pairs: Vec<&str> = query
        .split('&')
        .filter(|pair| {
            let name = pair.split_once('=').map_or(*pair, |(name, _)| name);
            HLS_DIRECTIVES.contains(&name)
        })
        .collect();
    if pairs.is_empty() {
        return String::new();
    }
    pairs.sort_unstable();
    format!("~{}", pairs.join("&"))
}

/// Fuzz body: any bytes as a request target `PATH[?QUERY]` (as a client
/// sends it). Never a panic; the key keeps the path as is, ignores the
/// order of query pairs and everything but `_HLS_*` directives, and only
/// paths of the URL grammar classify as media or playlists.
pub fn fuzz_cache_key(data: &[u8]) {
    let Ok(target) = std::str::from_utf8(data) else {
        return;
    };
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (target, None),
    };
    let key = CacheKey::from_request(path, query);
    assert_eq!(key.path(), path);
    assert_eq!(
        key,
        CacheKey::from_request(path, query),
        "not deterministic"
    );
    if let Some(q) = query {
        // A leading `?` is tolerated by the parser (a doubled `??`), so
        // it is taken off before the pairs are reversed, and the reversed
        // query starts with a pair that is no directive: a later pair that
        // begins with `?` must not become the leading one and lose it.
        let bare = q.strip_prefix('?').unwrap_or(q);
        let reversed: Vec<&str> = bare.split('&').rev().collect();
        let reordered = format!("x=1&{}", reversed.join("&"));
        assert_eq!(
            key,
            CacheKey::from_request(path, Some(&reordered)),
            "order of {q:?} matters"
        );
        let extra = format!("{q}&token=abc&x=1");
        assert_eq!(
            key,
            CacheKey::from_request(path, Some(&extra)),
            "non-directive pairs reach the key"
        );
    }
    let kind = ObjectKind::from_request(path, query);
    if Route::parse(path).is_none() {
        assert_eq!(kind, ObjectKind::Other, "{path:?}");
    }
}

/// What a cached object is; decides its TTL and whether stale-if-error applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ObjectKind {
    /// A media playlist without `_HLS_msn`: changes every part.
    Playlist,
    /// A media playlist request with `_HLS_msn` (a blocking reload): the answer for
    /// one `msn`/`part` never changes once given.
    BlockingPlaylist,
    /// The multivariant playlist `master.m3u8`.
    Master,
    /// The LL-DASH manifest `manifest.mpd`: changes with every segment.
    Manifest,
    /// An LL-HLS part `MSN.PART.m4s`: immutable.
    Part,
    /// A segment `MSN.m4s`: immutable.
    Segment,
    /// A CMAF header `init*.mp4`: immutable.
    Init,
    /// A recording's playlist (`/vod/...` master or media): a finished
    /// recording's never changes, one still written gains a segment every
    /// target duration; no blocking reloads.
    RecordedPlaylist,
    /// Anything else.
    Other,
}

impl ObjectKind {
    /// Classifies a request by its route (the one URL grammar,
    /// [`livecdn_shared::route`]) and, for playlists, whether the query asks
    /// for a blocking reload.
    pub fn from_request(path: &str, query: Option<&str>) -> ObjectKind {
        let Some(route) = Route::parse(path) else {
            return ObjectKind::Other;
        };
        ObjectKind::from_route(&route, query)
    }

    /// [`ObjectKind::from_request`] for a parsed route.
    pub fn from_route(route: &Route<'_>, query: Option<&str>) -> ObjectKind {
        let kind = ObjectKind::of(route.kind(), query);
        match (route, kind) {
            (
                Route::Vod { .. },
                ObjectKind::Playlist | ObjectKind::BlockingPlaylist | ObjectKind::Master,
            ) => ObjectKind::RecordedPlaylist,
            _ => kind,
        }
    }

    /// How urgent a response of this kind is (RFC 9218), for the HTTP/3
    /// scheduler and intermediaries; `None` for what is not media.
    pub fn priority(self) -> Option<ResourceKind> {
        match self {
            ObjectKind::Playlist
            | ObjectKind::BlockingPlaylist
            | ObjectKind::Master
            | ObjectKind::RecordedPlaylist => Some(ResourceKind::Playlist),
            ObjectKind::Part | ObjectKind::Init | ObjectKind::Manifest => Some(ResourceKind::Part),
            ObjectKind::Segment => Some(ResourceKind::Segment),
            ObjectKind::Other => None,
        }
    }

    /// The kind of an already parsed route.
    pub fn of(kind: RouteKind, query: Option<&str>) -> ObjectKind {
        match kind {
            RouteKind::Master => ObjectKind::Master,
            RouteKind::Mpd => ObjectKind::Manifest,
            RouteKind::Playlist => {
                let blocking = query.is_some_and(|q| {
                    q.strip_prefix('?')
                        .unwrap_or(q)
                        .split('&')
                        .any(|pair| pair == "_HLS_msn" || pair.starts_with("_HLS_msn="))
                });
                if blocking {
                    ObjectKind::BlockingPlaylist
                } else {
                    ObjectKind::Playlist
                }
            }
            RouteKind::Part => ObjectKind::Part,
            RouteKind::Segment => ObjectKind::Segment,
            RouteKind::Init => ObjectKind::Init,
            _ => ObjectKind::Other,
        }
    }

    /// Whether the object never changes once published (parts, segments, init),
    /// so a copy may be served stale when upstream fails.
    pub fn is_immutable(self) -> bool {
        matches!(
            self,
            ObjectKind::Part | ObjectKind::Segment | ObjectKind::Init
        )
    }

    /// A fixed label for metrics and span fields.
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectKind::Playlist => "playlist",
            ObjectKind::BlockingPlaylist => "blocking_playlist",
            ObjectKind::Master => "master",
            ObjectKind::Manifest => "mpd",
            ObjectKind::Part => "part",
            ObjectKind::Segment => "segment",
            ObjectKind::Init => "init",
            ObjectKind::RecordedPlaylist => "recorded_playlist",
            ObjectKind::Other => "other",
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn fuzz_cache_key_survives_seeds_and_mutations() {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let seeds: [&[u8]; 6] = [
            b"/live/cam/source/index.m3u8?_HLS_msn=5&_HLS_part=1&_HLS_skip=YES",
            b"/live/cam/source/12.3.m4s",
            b"/live/cam/master.m3u8?token=x",
            b"/live/cam/720p/index.m3u8?_HLS_msn=005&_HLS_msn=6",
            b"/metrics?",
            // Found by `fuzz/run.sh` (cache_key): a pair starting with `?`
            // that the reversal moved to the front.
            b"live//iu8?_HLS_mMMMMsn=5&_HLS_pa&\x00:S_pa&tokMS_pa&?_HLS_msn=ve/c8token=x",
        ];
        for seed in seeds {
            fuzz_cache_key(seed);
        }
        for i in 0..5000 {
            let mut m = seeds[i % seeds.len()].to_vec();
            for _ in 0..(i % 4) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let at = (x as usize) % m.len().max(1);
                if let Some(b) = m.get_mut(at) {
                    *b = b"?&=_HLSmsnpart0123456789/."[(x >> 32) as usize % 26];
                }
            }
            fuzz_cache_key(&m);
        }
    }

    use super::*;

    #[test]
    fn key_normalisation_table() {
        let p = "/live/s/720p/index.m3u8";
        let table: &[(Option<&str>, &str)] = &[
            (None, p),
            (Some(""), p),
            (Some("token=abc"), p),
            (Some("foo=1&bar=2"), p),
            (Some("_HLS_msn=5"), "/live/s/720p/index.m3u8?_HLS_msn=5"),
            (
                Some("token=x&_HLS_part=2&_HLS_msn=5"),
                "/live/s/720p/index.m3u8?_HLS_msn=5&_HLS_part=2",
            ),
            (
                Some("?_HLS_skip=YES&_HLS_part=0&_HLS_msn=7&cb=123"),
                "/live/s/720p/index.m3u8?_HLS_msn=7&_HLS_part=0&_HLS_skip=YES",
            ),
            (
                Some("_HLS_msn=005&_HLS_foo=1"),
                "/live/s/720p/index.m3u8?_HLS_msn=5",
            ),
            (
                Some("_HLS_part=2&token=t"),
                "/live/s/720p/index.m3u8?~_HLS_part=2",
            ),
            (
                Some("_HLS_msn=x&_HLS_msn=1"),
                "/live/s/720p/index.m3u8?~_HLS_msn=1&_HLS_msn=x",
            ),
        ];
        for (query, want) in table {
            assert_eq!(
                CacheKey::from_request(p, *query).as_str(),
                *want,
                "{query:?}"
            );
        }
        let a = CacheKey::from_request(p, Some("_HLS_part=1&_HLS_msn=2&token=a"));
        let b = CacheKey::from_request(p, Some("token=b&_HLS_msn=2&_HLS_part=1"));
        assert_eq!(a, b);
        assert_eq!(a.path(), p);
    }

    #[test]
    fn kind_table() {
        use ObjectKind::*;
        let table: &[(&str, Option<&str>, ObjectKind)] = &[
            ("/live/s/master.m3u8", None, Master),
            ("/live/s/master.m3u8", Some("_HLS_msn=1"), Master),
            ("/live/s/manifest.mpd", None, Manifest),
            ("/live/s/720p/index.m3u8", None, Playlist),
            ("/live/s/720p/index.m3u8", Some("token=1"), Playlist),
            (
                "/live/s/720p/index.m3u8",
                Some("_HLS_msn=3"),
                BlockingPlaylist,
            ),
            (
                "/live/s/720p/index.m3u8",
                Some("?t=1&_HLS_msn=3&_HLS_part=1"),
                BlockingPlaylist,
            ),
            ("/live/s/720p/12.3.m4s", None, Part),
            ("/live/s/720p/12.m4s", None, Segment),
            ("/live/s/720p/a.m4s", None, Other),
            ("/live/s/720p/1.2.3.m4s", None, Other),
            ("/live/s/720p/init.mp4", None, Init),
            ("/live/s/720p/init-1.mp4", None, Init),
            ("/live/s/720p/init_1.mp4", None, Other),
            ("/live/s/720p/01.m4s", None, Other),
            ("/live/s/720p/video.mp4", None, Other),
            ("/api/streams", None, Other),
        ];
        for (path, query, want) in table {
            let got = ObjectKind::from_request(path, *query);
            assert_eq!(got, *want, "{path} {query:?}");
        }
        assert!(Part.is_immutable() && Segment.is_immutable() && Init.is_immutable());
        assert!(!Playlist.is_immutable() && !BlockingPlaylist.is_immutable());
        assert_eq!(BlockingPlaylist.as_str(), "blocking_playlist");
    }
}
