//! The playback-token rule every service that plays a stream applies
//! (HLS, DASH and recordings in playback, WHEP in webrtc): a token where
//! the config wants one, or for a stream the origin marked as an
//! `authorized` channel's.

use crate::error::EdgeError;
use crate::serve::Conn;
use crate::state::Edge;
use http::{header, Request};
use livecdn_shared::auth::playback as playback_auth;

/// Checks the token `req` presents (query or cookie) for `stream`, which
/// needs one of its own when `this_stream`. `Ok(Some(cookie))`: the token
/// came in the query, and the answer should set this cookie.
pub fn check(
    edge: &Edge,
    req: &Request<()>,
    conn: Conn,
    stream: &str,
    this_stream: bool,
) -> Result<Option<String>, EdgeError> {
    let now_unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let cookies = req
        .headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok());
    let presented = playback_auth::Presented {
        query: req.uri().query(),
        cookies,
        secure: conn.secure,
    };
    Ok(playback_auth::check(
        &edge.config.auth,
        this_stream,
        stream,
        presented,
        now_unix,
    )?)
}
