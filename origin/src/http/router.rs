//! Request paths to typed routes. Anything that does not parse is a 404:
//! stream and rendition names are restricted to `[A-Za-z0-9_-]`, so no path
//! can reach outside the routes below.

use livecdn_shared::auth::valid_stream_name;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Player,
    HlsJs,
    Healthz,
    Readyz,
    Metrics,
    ApiStreams,
    ApiStream(String),
    Master(String),
    Playlist {
        stream: String,
        rendition: String,
    },
    Init {
        stream: String,
        rendition: String,
        gen: u32,
    },
    Segment {
        stream: String,
        rendition: String,
        msn: u64,
    },
    Part {
        stream: String,
        rendition: String,
        msn: u64,
        part: u32,
    },
}

impl Route {
    /// Object kind, for metrics labels and cache headers.
    pub fn kind(&self) -> &'static str {
        match self {
            Route::Player | Route::HlsJs => "page",
            Route::Healthz | Route::Readyz => "health",
            Route::Metrics => "metrics",
            Route::ApiStreams | Route::ApiStream(_) => "api",
            Route::Master(_) => "master",
            Route::Playlist { .. } => "playlist",
            Route::Init { .. } => "init",
            Route::Segment { .. } => "segment",
            Route::Part { .. } => "part",
        }
    }

    pub fn parse(path: &str) -> Option<Route> {
        match path {
            "/" | "/index.html" => return Some(Route::Player),
            "/player/hls.min.js" => return Some(Route::HlsJs),
            "/healthz" => return Some(Route::Healthz),
            "/readyz" => return Some(Route::Readyz),
            "/metrics" => return Some(Route::Metrics),
            "/api/streams" => return Some(Route::ApiStreams),
            _ => {}
        }
        if let Some(name) = path.strip_prefix("/api/streams/") {
            return valid_stream_name(name).then(|| Route::ApiStream(name.to_string()));
        }
        let rest = path.strip_prefix("/live/")?;
        let mut it = rest.split('/');
        let stream = it.next().filter(|s| valid_stream_name(s))?.to_string();
        let second = it.next()?;
        let third = it.next();
        if it.next().is_some() {
            return None;
        }
        let Some(file) = third else {
            return (second == "master.m3u8").then_some(Route::Master(stream));
        };
        if !valid_stream_name(second) {
            return None;
        }
        let rendition = second.to_string();
        if file == "index.m3u8" {
            return Some(Route::Playlist { stream, rendition });
        }
        if file == "init.mp4" {
            return Some(Route::Init {
                stream,
                rendition,
                gen: 0,
            });
        }
        if let Some(g) = file
            .strip_prefix("init-")
            .and_then(|f| f.strip_suffix(".mp4"))
        {
            let gen = parse_num(g)?;
            return Some(Route::Init {
                stream,
                rendition,
                gen: u32::try_from(gen).ok()?,
            });
        }
        let stem = file.strip_suffix(".m4s")?;
        match stem.split_once('.') {
            None => Some(Route::Segment {
                stream,
                rendition,
                msn: parse_num(stem)?,
            }),
            Some((m, p)) => Some(Route::Part {
                stream,
                rendition,
                msn: parse_num(m)?,
                part: u32::try_from(parse_num(p)?).ok()?,
            }),
        }
    }
}

/// Digits only (no sign, no spaces), at most 19 of them so it fits u64.
fn parse_num(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 19 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_route() {
        let r = |s: &str| Route::parse(s);
        assert_eq!(r("/"), Some(Route::Player));
        assert_eq!(
            r("/live/cam/master.m3u8"),
            Some(Route::Master("cam".into()))
        );
        assert_eq!(
            r("/live/cam/source/index.m3u8"),
            Some(Route::Playlist {
                stream: "cam".into(),
                rendition: "source".into()
            })
        );
        assert_eq!(
            r("/live/cam/audio/init-2.mp4"),
            Some(Route::Init {
                stream: "cam".into(),
                rendition: "audio".into(),
                gen: 2
            })
        );
        assert_eq!(
            r("/live/cam/source/12.m4s"),
            Some(Route::Segment {
                stream: "cam".into(),
                rendition: "source".into(),
                msn: 12
            })
        );
        assert_eq!(
            r("/live/cam/source/12.3.m4s"),
            Some(Route::Part {
                stream: "cam".into(),
                rendition: "source".into(),
                msn: 12,
                part: 3
            })
        );
        assert_eq!(r("/api/streams/cam"), Some(Route::ApiStream("cam".into())));
    }

    #[test]
    fn rejects_traversal_and_junk() {
        for p in [
            "/live/../etc/passwd",
            "/live/cam/../source/index.m3u8",
            "/live/cam/source/-1.m4s",
            "/live/cam/source/1.-1.m4s",
            "/live/cam/source/99999999999999999999.m4s",
            "/live/cam/source/1.2.3.m4s",
            "/live/cam/source/index.m3u8/x",
            "/live/ca m/master.m3u8",
            "/live//master.m3u8",
            "/api/streams/../../x",
            "/live/cam/source/+1.m4s",
        ] {
            assert_eq!(Route::parse(p), None, "{p}");
        }
    }
}
