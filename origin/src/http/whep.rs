//! `/live/STREAM/whep` at the origin: the request goes to the WebRTC
//! server through [`livecdn_webrtc::whep::serve`]; an `authorized`
//! channel's viewers show their playback token first, as for HLS.

use super::body::{self, Body};
use super::HttpError;
use crate::OriginState;
use http::{Method, Response};
use hyper::body::Incoming;
use livecdn_webrtc::whep;

/// Serves a WHEP request for `stream` (`session` for `.../whep/ID`).
pub async fn serve(
    state: &OriginState,
    req: &http::request::Parts,
    stream: &str,
    session: Option<&str>,
    body: Incoming,
) -> Response<Body> {
    let Some(server) = state.webrtc.get() else {
        return HttpError::NotFound("WebRTC is off").into_response();
    };
    let protected = state
        .control
        .as_ref()
        .is_some_and(|c| c.needs_token(stream));
    if protected && req.method == Method::POST {
        if let Err(e) = super::viewer_token(state, req, stream) {
            return e.into_response();
        }
    }
    let reply = match whep::serve(server, &req.method, stream, session, &req.headers, body).await {
        Ok(reply) => reply,
        Err(e) => {
            tracing::debug!(%stream, error = %e, "whep refused");
            e.reply()
        }
    };
    let mut resp = Response::new(body::full(reply.body));
    *resp.status_mut() = reply.status;
    *resp.headers_mut() = reply.headers;
    resp
}
