//! `rtmp://HOST[:PORT]/APP/KEY` publishing URLs, as OBS and ffmpeg take them.

use std::fmt;
use std::str::FromStr;

/// RTMP's registered port, used when the URL names none.
pub const DEFAULT_RTMP_PORT: u16 = 1935;

/// A parsed publishing URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtmpUrl {
    /// Host name or IP address; IPv6 without brackets.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// RTMP application (first path segment), e.g. `live`.
    pub app: String,
    /// Stream key: the rest of the path, query string included.
    pub key: String,
}

/// Why a string is not a usable RTMP publishing URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UrlError {
    /// The scheme is not `rtmp://` (`rtmps` and `rtmpt` are not spoken).
    #[error("unsupported scheme in {0:?}: expected rtmp://")]
    Scheme(String),
    /// No host before the path.
    #[error("missing host in {0:?}")]
    MissingHost(String),
    /// The port is not a number in 1..=65535.
    #[error("bad port in {0:?}")]
    BadPort(String),
    /// The path lacks the application or the stream key.
    #[error("expected rtmp://host[:port]/app/key, got {0:?}")]
    MissingAppOrKey(String),
}

impl RtmpUrl {
    /// Builds a URL from its parts.
    pub fn new(
        host: impl Into<String>,
        port: u16,
        app: impl Into<String>,
        key: impl Into<String>,
    ) -> RtmpUrl {
        RtmpUrl {
            host: host.into(),
            port,
            app: app.into(),
            key: key.into(),
        }
    }

    /// `host:port` for `TcpStream::connect` (IPv6 hosts bracketed).
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The `tcUrl` sent in `connect`: the URL without the stream key.
    pub fn tc_url(&self) -> String {
        format!("rtmp://{}/{}", self.authority(), self.app)
    }
}

/// Prints the URL with the key, which is a credential: log [`RtmpUrl::tc_url`]
/// instead.
impl fmt::Display for RtmpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.tc_url(), self.key)
    }
}

impl FromStr for RtmpUrl {
    type Err = UrlError;

    fn from_str(url: &str) -> Result<RtmpUrl, UrlError> {
        parse_rtmp_url(url)
    }
}

/// Parses `rtmp://HOST[:PORT]/APP/KEY`; HOST may be a bracketed IPv6
/// address, PORT defaults to 1935, and KEY is everything after APP's slash.
pub fn parse_rtmp_url(url: &str) -> Result<RtmpUrl, UrlError> {
    let rest = url
        .get(..7)
        .filter(|scheme| scheme.eq_ignore_ascii_case("rtmp://"))
        .and_then(|_| url.get(7..))
        .ok_or_else(|| UrlError::Scheme(url.to_owned()))?;
    let (authority, path) = rest
        .split_once('/')
        .ok_or_else(|| UrlError::MissingAppOrKey(url.to_owned()))?;
    let (host, port) = split_host_port(authority, url)?;
    if host.is_empty() {
        return Err(UrlError::MissingHost(url.to_owned()));
    }
    let (app, key) = path
        .split_once('/')
        .filter(|(app, key)| !app.is_empty() && !key.is_empty())
        .ok_or_else(|| UrlError::MissingAppOrKey(url.to_owned()))?;
    Ok(RtmpUrl::new(host, port, app, key))
}

fn split_host_port<'a>(authority: &'a str, url: &str) -> Result<(&'a str, u16), UrlError> {
    let bad_port = || UrlError::BadPort(url.to_owned());
    let parse_port = |port: &str| {
        port.parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(bad_port)
    };
    if let Some(bracketed) = authority.strip_prefix('[') {
        let (host, after) = bracketed
            .split_once(']')
            .ok_or_else(|| UrlError::MissingHost(url.to_owned()))?;
        return match after {
            "" => Ok((host, DEFAULT_RTMP_PORT)),
            _ => Ok((
                host,
                parse_port(after.strip_prefix(':').ok_or_else(bad_port)?)?,
            )),
        };
    }
    match authority.split_once(':') {
        Some((host, port)) => Ok((host, parse_port(port)?)),
        None => Ok((authority, DEFAULT_RTMP_PORT)),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
mod tests {
    use super::*;

    #[test]
    fn parses_host_port_app_and_key() {
        let url = parse_rtmp_url("rtmp://127.0.0.1:1936/live/cam.123.abc").unwrap();
        assert_eq!(url, RtmpUrl::new("127.0.0.1", 1936, "live", "cam.123.abc"));
        assert_eq!(url.authority(), "127.0.0.1:1936");
        assert_eq!(url.tc_url(), "rtmp://127.0.0.1:1936/live");
        assert_eq!(url.to_string(), "rtmp://127.0.0.1:1936/live/cam.123.abc");
    }

    #[test]
    fn defaults_port_and_keeps_key_remainder() {
        let url: RtmpUrl = "RTMP://example.com/live/a/b?x=1".parse().unwrap();
        assert_eq!(url, RtmpUrl::new("example.com", 1935, "live", "a/b?x=1"));
    }

    #[test]
    fn handles_bracketed_ipv6() {
        let url = parse_rtmp_url("rtmp://[::1]:1940/live/k").unwrap();
        assert_eq!(url, RtmpUrl::new("::1", 1940, "live", "k"));
        assert_eq!(url.authority(), "[::1]:1940");
        assert_eq!(parse_rtmp_url("rtmp://[::1]/live/k").unwrap().port, 1935);
    }

    #[test]
    fn rejects_malformed_urls() {
        let err = |s: &str| parse_rtmp_url(s).unwrap_err();
        assert!(matches!(err("http://h/live/k"), UrlError::Scheme(_)));
        assert!(matches!(err("rtmps://h/live/k"), UrlError::Scheme(_)));
        assert!(matches!(err("rtm"), UrlError::Scheme(_)));
        assert!(matches!(
            err("rtmp://:1935/live/k"),
            UrlError::MissingHost(_)
        ));
        assert!(matches!(err("rtmp://h:99999/live/k"), UrlError::BadPort(_)));
        assert!(matches!(err("rtmp://h:0/live/k"), UrlError::BadPort(_)));
        assert!(matches!(err("rtmp://[::1]x/live/k"), UrlError::BadPort(_)));
        assert!(matches!(err("rtmp://h/live"), UrlError::MissingAppOrKey(_)));
        assert!(matches!(
            err("rtmp://h/live/"),
            UrlError::MissingAppOrKey(_)
        ));
        assert!(matches!(err("rtmp://h"), UrlError::MissingAppOrKey(_)));
        assert!(matches!(err("rtmp://h//k"), UrlError::MissingAppOrKey(_)));
    }
}
