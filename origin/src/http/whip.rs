//! `/live/whip` at the origin (WHIP, RFC 9725): POST an SDP offer with the
//! stream key as the bearer token; the key is checked as an RTMP publish's
//! is (signature, channels, the publish webhook), the stream claimed, and
//! the publisher's media go to its hub ([`crate::whip::WhipSink`]). The
//! answer is 201 with the session's URL, `/live/whip/SESSION`, which takes
//! PATCH (trickle ICE) and DELETE (the publish ends).

use super::body::{self, Body};
use super::HttpError;
use crate::ingest::{auth, begin, NEXT_SESSION};
use crate::whip::{Offered, WhipSink};
use crate::OriginState;
use bytes::Bytes;
use http::{header, HeaderValue, Method, Response, StatusCode};
use hyper::body::Incoming;
use livecdn_webrtc::whep::{self, WhepError, SDP, TRICKLE};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::Instant;

/// A refusal with its status and a line of text.
fn refuse(status: StatusCode, text: &str) -> Response<Body> {
    let mut resp = Response::new(body::full(Bytes::from(format!("{text}\n"))));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    if status == StatusCode::UNAUTHORIZED {
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"livecdn publish\""),
        );
    }
    resp
}

fn refused(e: WhepError) -> Response<Body> {
    let reply = e.reply();
    let mut resp = Response::new(body::full(reply.body));
    *resp.status_mut() = reply.status;
    *resp.headers_mut() = reply.headers;
    resp
}

/// The ffmpeg that makes a WHIP stream's AAC, and H.264 from VP8 (the
/// ladder's), looked up on each publish; its absence is said once.
fn encoder(state: &OriginState) -> Option<std::path::PathBuf> {
    static MISSING: std::sync::Once = std::sync::Once::new();
    let found = crate::transcode::find_program(&state.transcode.encoder.ffmpeg);
    if found.is_none() {
        MISSING.call_once(|| {
            tracing::warn!(
                ffmpeg = %state.transcode.encoder.ffmpeg.display(),
                "ffmpeg not found: WHIP streams' HLS renditions have no audio and VP8 \
                 publishers are not packaged (install ffmpeg or set ladder.ffmpeg / LIVECDN_FFMPEG)"
            );
        });
    }
    found
}

/// `POST /live/whip`: a publisher's offer.
pub async fn publish(
    state: &OriginState,
    req: &http::request::Parts,
    peer: SocketAddr,
    body: Incoming,
) -> Response<Body> {
    let Some(server) = state.webrtc.get() else {
        return HttpError::NotFound("WebRTC is off").into_response();
    };
    let Some(key) = req
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| livecdn_shared::auth::bearer(v.as_bytes()))
        .map(str::to_string)
    else {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "the stream key goes in Authorization: Bearer KEY",
        );
    };
    if !whep::is_type(&req.headers, SDP) {
        return refused(WhepError::ContentType(SDP));
    }
    let limit = server.max_body();
    if whep::declared_too_large(&req.headers, limit) {
        return refused(WhepError::TooLarge(limit));
    }
    let offer = match whep::read_body(body, limit).await {
        Ok(b) => b,
        Err(e) => return refused(e),
    };
    let Ok(offer) = std::str::from_utf8(&offer) else {
        return refuse(StatusCode::BAD_REQUEST, "the offer is not UTF-8");
    };
    let app = state.config.ingest.app.clone();
    let grant = auth::authorize(
        &state.config,
        state.control.as_ref(),
        &state.webhooks,
        &app,
        &key,
        peer,
    )
    .await;
    let grant = match grant {
        Ok(g) => g,
        Err(refusal) => {
            state.metrics.publish(refusal.as_str());
            tracing::info!(%peer, reason = %refusal, "whip publish refused");
            return refuse(
                StatusCode::FORBIDDEN,
                &format!("publish refused: {}", refusal.as_str()),
            );
        }
    };
    let session = NEXT_SESSION.fetch_add(1, Ordering::Relaxed);
    let claim = state.registry.claim(
        &grant.stream,
        session,
        grant.backup,
        grant.low_latency,
        Instant::now(),
    );
    let (hub, role) = match claim {
        Ok(x) => x,
        Err(e) => {
            state.metrics.publish("already_live");
            return refuse(StatusCode::CONFLICT, &e.to_string());
        }
    };
    let done = state
        .config
        .webhooks
        .on_publish_done
        .clone()
        .map(|url| (url, state.webhooks.clone()));
    let mut kick = hub.watch_kick(session, grant.key_id.clone());
    let offered = Offered {
        video: offer.contains("\nm=video"),
        audio: offer.contains("\nm=audio"),
        encoder: encoder(state),
    };
    let sink = WhipSink::new(hub.clone(), session, peer, done, offered);
    // Refused here, the sink is dropped with the offer: the claim is let go.
    let answer = match server.publish(&grant.stream, offer, Box::new(sink)).await {
        Ok(a) => a,
        Err(e) => return refused(WhepError::Server(e)),
    };
    state.metrics.publish("accepted");
    tracing::info!(stream = %grant.stream, %peer, role = ?role, session = %answer.session, "whip publish accepted");
    begin(state, &hub, role, &grant);
    // The operator stopping the stream (or revoking its key) ends the
    // session, as it closes an RTMP publisher's connection.
    let (rtc, id) = (server.clone(), answer.session.clone());
    tokio::spawn(async move {
        while kick.changed().await.is_ok() {
            if *kick.borrow() {
                let _ = rtc.close(None, &id).await;
                return;
            }
        }
    });
    let mut resp = Response::new(body::full(Bytes::from(answer.sdp)));
    *resp.status_mut() = StatusCode::CREATED;
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(SDP));
    if let Ok(v) = HeaderValue::from_str(&format!("/live/whip/{}", answer.session)) {
        h.insert(header::LOCATION, v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!("\"{}\"", answer.session)) {
        h.insert(header::ETAG, v);
    }
    for url in server.ice_servers() {
        if let Ok(v) = HeaderValue::from_str(&format!("<{url}>; rel=\"ice-server\"")) {
            h.append(header::LINK, v);
        }
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// `PATCH` or `DELETE /live/whip/SESSION`.
pub async fn session(
    state: &OriginState,
    req: &http::request::Parts,
    id: &str,
    body: Incoming,
) -> Response<Body> {
    let Some(server) = state.webrtc.get() else {
        return HttpError::NotFound("WebRTC is off").into_response();
    };
    let result = match req.method {
        Method::DELETE => server.close(None, id).await.map(|()| StatusCode::OK),
        _ => {
            if !whep::is_type(&req.headers, TRICKLE) {
                return refused(WhepError::ContentType(TRICKLE));
            }
            let frag = match whep::read_body(body, server.max_body()).await {
                Ok(b) => b,
                Err(e) => return refused(e),
            };
            let lines = whep::candidate_lines(&String::from_utf8_lossy(&frag));
            server
                .trickle(None, id, lines)
                .await
                .map(|()| StatusCode::NO_CONTENT)
        }
    };
    match result {
        Ok(status) => {
            let mut resp = Response::new(body::full(Bytes::new()));
            *resp.status_mut() = status;
            resp
        }
        Err(e) => refused(WhepError::Server(e)),
    }
}
