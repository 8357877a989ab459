//! `[webrtc]` on the origin and the edge: WHEP playback (see
//! `livecdn_webrtc`). One UDP port per process carries every session.

use serde::{Deserialize, Serialize};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// The WebRTC media port when none is configured (UDP). The edge of
/// `livecdn up`, in the same process as its origin, takes the next one.
pub const DEFAULT_WEBRTC_PORT: u16 = 8189;

/// `[webrtc]`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct WebRtcConfig {
    /// Serve `/live/STREAM/whep`; off: 404 and no UDP port.
    pub enabled: bool,
    /// The UDP address every session's media goes through. Port 0 takes
    /// any free port.
    pub listen: SocketAddr,
    /// The addresses offered to viewers as host candidates: the public IPs
    /// of a host behind 1:1 NAT. Unset: the listen address, or, when it is
    /// unspecified (0.0.0.0), 127.0.0.1 and the address of the interface
    /// that routes outward.
    pub advertise: Vec<IpAddr>,
    /// STUN/TURN servers sent to viewers as `Link` headers (RFC 9725
    /// section 4.6), e.g. `stun:stun.example.net:3478`.
    pub ice_servers: Vec<String>,
    /// Sessions at once, connected or still connecting; more get 503.
    pub max_sessions: usize,
    /// A session that has not connected by then is dropped (a flood of
    /// offers that never connect holds no state longer).
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// Largest SDP offer or trickle body taken.
    pub max_body: usize,
}

impl Default for WebRtcConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: SocketAddr::from(([0, 0, 0, 0], DEFAULT_WEBRTC_PORT)),
            advertise: Vec::new(),
            ice_servers: Vec::new(),
            max_sessions: 4096,
            connect_timeout: Duration::from_secs(10),
            max_body: 32 * 1024,
        }
    }
}

impl WebRtcConfig {
    /// What a config file may not say.
    pub fn check(&self) -> Result<(), String> {
        if self.max_sessions == 0 {
            return Err("max_sessions must be at least 1".into());
        }
        if !(1024..=1024 * 1024).contains(&self.max_body) {
            return Err("max_body must be between 1 KiB and 1 MiB".into());
        }
        if self.connect_timeout < Duration::from_secs(1) {
            return Err("connect_timeout must be at least 1s".into());
        }
        for s in &self.ice_servers {
            let scheme = s.split(':').next().unwrap_or_default();
            if !matches!(scheme, "stun" | "stuns" | "turn" | "turns") || !s.contains(':') {
                return Err(format!("ice server {s:?} is not a stun: or turn: URI"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
mod tests {
    use super::*;

    #[test]
    fn defaults_pass_and_bad_values_are_named() {
        assert_eq!(WebRtcConfig::default().check(), Ok(()));
        let c = WebRtcConfig {
            ice_servers: vec!["http://x".into()],
            ..Default::default()
        };
        assert!(c.check().unwrap_err().contains("http://x"));
        let c = WebRtcConfig {
            max_sessions: 0,
            ..Default::default()
        };
        assert!(c.check().is_err());
        let c: WebRtcConfig =
            toml::from_str("listen = \"127.0.0.1:0\"\nconnect_timeout = \"3s\"").unwrap();
        assert_eq!(c.listen.port(), 0);
        assert_eq!(c.connect_timeout, Duration::from_secs(3));
    }
}
