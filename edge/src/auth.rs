//! Playback tokens at the edge: checked, then stripped (the cache key never
//! contains them).
//!
//! A player is given `.../master.m3u8?token=T` (`livecdn token STREAM`). The
//! edge verifies T for STREAM and answers with a cookie scoped to
//! `/live/STREAM/`, so the variant playlists, parts and segments the player
//! fetches next (relative URIs, without the token) carry it as the cookie.

use livecdn_shared::auth::verify_token;
use livecdn_shared::config::PlaybackAuthConfig;

/// Why a request was refused (403).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No token in the query or the stream's cookie.
    #[error("playback token required")]
    Missing,
    /// A token that does not verify, has expired, or is for another stream.
    #[error("invalid playback token")]
    Invalid,
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

/// Checks a request for `stream`. `Ok(Some(cookie))` means the token came in
/// the query and the response should set this cookie.
pub fn check<'a>(
    config: &PlaybackAuthConfig,
    stream: &str,
    query: Option<&str>,
    cookies: impl Iterator<Item = &'a str>,
    now_unix: u64,
) -> Result<Option<String>, AuthError> {
    let (true, Some(secret)) = (config.required, &config.secret) else {
        return Ok(None);
    };
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
    Ok(Some(format!(
        "{name}={token}; Path=/live/{stream}/; Max-Age={}; HttpOnly; SameSite=Lax",
        expiry.saturating_sub(now_unix)
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use livecdn_shared::auth::sign_token;

    const SECRET: &str = "a-playback-secret-of-some-length";

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
        let cookie = check(&on(), "cam", Some(&q), std::iter::empty(), 1_000).expect("valid");
        let cookie = cookie.expect("set-cookie");
        assert!(
            cookie.starts_with(&format!("livecdn_token_cam={t};")),
            "{cookie}"
        );
        assert!(cookie.contains("Path=/live/cam/") && cookie.contains("Max-Age=1000"));
        let header = format!("other=1; livecdn_token_cam={t}");
        assert_eq!(
            check(&on(), "cam", None, [header.as_str()].into_iter(), 1_500),
            Ok(None)
        );
    }

    #[test]
    fn missing_wrong_expired_or_foreign_tokens_are_refused() {
        let none = std::iter::empty();
        assert_eq!(
            check(&on(), "cam", None, none, 1_000),
            Err(AuthError::Missing)
        );
        let other = sign_token(SECRET.as_bytes(), "other", 2_000);
        let q = format!("token={other}");
        assert_eq!(
            check(&on(), "cam", Some(&q), std::iter::empty(), 1_000),
            Err(AuthError::Invalid)
        );
        let expired = sign_token(SECRET.as_bytes(), "cam", 999);
        let q = format!("token={expired}");
        assert_eq!(
            check(&on(), "cam", Some(&q), std::iter::empty(), 1_000),
            Err(AuthError::Invalid)
        );
        let forged = sign_token(b"another-secret-entirely!", "cam", 2_000);
        let q = format!("token={forged}");
        assert_eq!(
            check(&on(), "cam", Some(&q), std::iter::empty(), 1_000),
            Err(AuthError::Invalid)
        );
        // A stream key is not a playback token.
        let key = livecdn_shared::auth::sign_key(SECRET.as_bytes(), "cam", 2_000);
        let q = format!("token={key}");
        assert_eq!(
            check(&on(), "cam", Some(&q), std::iter::empty(), 1_000),
            Err(AuthError::Invalid)
        );
    }

    #[test]
    fn off_by_default() {
        let cfg = PlaybackAuthConfig::default();
        assert_eq!(check(&cfg, "cam", None, std::iter::empty(), 0), Ok(None));
    }
}
