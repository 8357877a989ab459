//! Playback tokens where viewers are served (the edge, and the origin for
//! an `authorized` channel): checked, then stripped (a cache key never
//! contains them).
//!
//! A player is given `.../master.m3u8?token=T` (`livecdn token STREAM`). The
//! server verifies T for STREAM and answers with a cookie scoped to
//! `/live/STREAM/`, so the variant playlists, parts and segments the player
//! fetches next (relative URIs, without the token) carry it as the cookie.
//!
//! Tokens are needed where the config says so for every stream, or for one
//! stream whose channel is `authorized`: the origin marks that stream's
//! responses with [`ACCESS_HEADER`], and edges learn it from them.

use super::verify_token;
use crate::config::PlaybackAuthConfig;

/// The response header by which the origin tells edges that a stream's
/// playback needs tokens (value [`ACCESS_TOKEN`]).
pub const ACCESS_HEADER: &str = "livecdn-access";
/// [`ACCESS_HEADER`]'s value.
pub const ACCESS_TOKEN: &str = "token";

/// Why a request was refused (403).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No token in the query or the stream's cookie.
    #[error("playback token required")]
    Missing,
    /// A token that does not verify, has expired, or is for another stream.
    #[error("invalid playback token")]
    Invalid,
    /// Tokens are required but no secret is configured: nothing can
    /// verify, so everything is refused (config validation normally stops
    /// this before start; the check fails closed regardless).
    #[error("playback tokens required but no secret is configured")]
    NoSecret,
}

fn cookie_name(stream: &str) -> String {
    format!("livecdn_token_{stream}")
}

fn query_token(query: Option<&str>) -> Option<&str> {
    query?
        .split('&')
        .find_map(|kv| kv.strip_prefix("token="))
        .filter(|t| !t.is_empty())
}

fn cookie_token<'a>(cookies: impl Iterator<Item = &'a str>, name: &str) -> Option<&'a str> {
    cookies
        .flat_map(|h| h.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// What a request offers: its query and cookies, and whether it came over
/// TLS (the cookie is then marked `Secure`).
pub struct Presented<'a, C> {
    pub query: Option<&'a str>,
    pub cookies: C,
    pub secure: bool,
}

/// Checks a request for `stream`: tokens are needed when the config says
/// so, or `this_stream` (an `authorized` channel). `Ok(Some(cookie))`
/// means the token came in the query and the response should set this
/// cookie.
pub fn check<'a, C: Iterator<Item = &'a str>>(
    config: &PlaybackAuthConfig,
    this_stream: bool,
    stream: &str,
    presented: Presented<'a, C>,
    now_unix: u64,
) -> Result<Option<String>, AuthError> {
    if !config.required && !this_stream {
        return Ok(None);
    }
    let Some(secret) = &config.secret else {
        return Err(AuthError::NoSecret);
    };
    let Presented {
        query,
        cookies,
        secure,
    } = presented;
    let name = cookie_name(stream);
    let (token, from_query) = match query_token(query) {
        Some(t) => (t, true),
        None => (
            cookie_token(cookies, &name).ok_or(AuthError::Missing)?,
            false,
        ),
    };
    match verify_token(secret.as_bytes(), token, now_unix) {
        Ok(s) if s == stream => {}
        _ => return Err(AuthError::Invalid),
    }
    if !from_query {
        return Ok(None);
    }
    // The token carries its own expiry; the cookie lives as long as it may.
    let expiry = token
        .split('.')
        .nth(1)
        .and_then(|e| e.parse::<u64>().ok())
        .unwrap_or(now_unix);
    // Secure on TLS connections: the browser then never sends the token
    // back over cleartext. (Not on cleartext ones, where it would not be
    // stored at all.)
    Ok(Some(format!(
        "{name}={token}; Path=/live/{stream}/; Max-Age={}; HttpOnly; SameSite=Lax{}",
        expiry.saturating_sub(now_unix),
        if secure { "; Secure" } else { "" }
    )))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
mod tests {
    use super::*;
    use crate::auth::sign_token;

    const SECRET: &str = "a-playback-secret-of-some-length";

    fn offered<'a>(
        query: Option<&'a str>,
        cookies: &'a [&'a str],
    ) -> Presented<'a, impl Iterator<Item = &'a str>> {
        Presented {
            query,
            cookies: cookies.iter().copied(),
            secure: false,
        }
    }

    fn on() -> PlaybackAuthConfig {
        PlaybackAuthConfig {
            required: true,
            secret: Some(SECRET.into()),
        }
    }

    #[test]
    fn query_token_is_checked_and_becomes_a_cookie() {
        let t = sign_token(SECRET.as_bytes(), "cam", 2_000);
        let q = format!("_HLS_msn=1&token={t}");
        let cookie = check(&on(), false, "cam", offered(Some(&q), &[]), 1_000).expect("valid");
        let cookie = cookie.expect("set-cookie");
        assert!(
            cookie.starts_with(&format!("livecdn_token_cam={t};")),
            "{cookie}"
        );
        assert!(cookie.contains("Path=/live/cam/") && cookie.contains("Max-Age=1000"));
        assert!(!cookie.contains("Secure"), "{cookie}");
        let header = format!("other=1; livecdn_token_cam={t}");
        assert_eq!(
            check(
                &on(),
                false,
                "cam",
                offered(None, &[header.as_str()]),
                1_500
            ),
            Ok(None)
        );
        // Over TLS the cookie never goes back over cleartext.
        let tls = Presented {
            secure: true,
            ..offered(Some(&q), &[])
        };
        let cookie = check(&on(), false, "cam", tls, 1_000)
            .expect("valid")
            .expect("set-cookie");
        assert!(cookie.ends_with("; Secure"), "{cookie}");
    }

    #[test]
    fn missing_wrong_expired_or_foreign_tokens_are_refused() {
        assert_eq!(
            check(&on(), false, "cam", offered(None, &[]), 1_000),
            Err(AuthError::Missing)
        );
        let other = sign_token(SECRET.as_bytes(), "other", 2_000);
        let q = format!("token={other}");
        assert_eq!(
            check(&on(), false, "cam", offered(Some(&q), &[]), 1_000),
            Err(AuthError::Invalid)
        );
        let expired = sign_token(SECRET.as_bytes(), "cam", 999);
        let q = format!("token={expired}");
        assert_eq!(
            check(&on(), false, "cam", offered(Some(&q), &[]), 1_000),
            Err(AuthError::Invalid)
        );
        let forged = sign_token(b"another-secret-entirely!", "cam", 2_000);
        let q = format!("token={forged}");
        assert_eq!(
            check(&on(), false, "cam", offered(Some(&q), &[]), 1_000),
            Err(AuthError::Invalid)
        );
        // A stream key is not a playback token.
        let key = crate::auth::sign_key(SECRET.as_bytes(), "cam", 2_000);
        let q = format!("token={key}");
        assert_eq!(
            check(&on(), false, "cam", offered(Some(&q), &[]), 1_000),
            Err(AuthError::Invalid)
        );
    }

    #[test]
    fn off_by_default_and_closed_without_a_secret() {
        let cfg = PlaybackAuthConfig::default();
        assert_eq!(check(&cfg, false, "cam", offered(None, &[]), 0), Ok(None));
        // One authorized stream needs a token although the config does not.
        let with_secret = PlaybackAuthConfig {
            required: false,
            secret: Some(SECRET.into()),
        };
        assert_eq!(
            check(&with_secret, true, "cam", offered(None, &[]), 0),
            Err(AuthError::Missing)
        );
        let t = sign_token(SECRET.as_bytes(), "cam", 2_000);
        let q = format!("token={t}");
        assert!(check(&with_secret, true, "cam", offered(Some(&q), &[]), 1_000).is_ok());
        let t = sign_token(SECRET.as_bytes(), "cam", 2_000);
        let q = format!("token={t}");
        let no_secret = PlaybackAuthConfig {
            required: true,
            secret: None,
        };
        assert_eq!(
            check(&no_secret, false, "cam", offered(Some(&q), &[]), 1_000),
            Err(AuthError::NoSecret)
        );
    }
}
