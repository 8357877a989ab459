//! WHEP's HTTP side (draft-ietf-wish-whep, on RFC 9725's model): the
//! resource `/live/STREAM/whep` takes an SDP offer by POST and answers 201
//! with the SDP answer, the session's URL in `Location` and the ICE
//! servers in `Link` headers; the session URL takes trickle ICE by PATCH
//! and ends by DELETE. Origin and edge both serve it through [`serve`],
//! which knows HTTP but no HTTP server.

use crate::server::{RtcServer, ServerError};
use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use http_body_util::{BodyExt, Limited};

/// Content type of offers and answers.
pub const SDP: &str = "application/sdp";
/// Content type of trickle ICE fragments (RFC 8840).
pub const TRICKLE: &str = "application/trickle-ice-sdpfrag";
/// The response headers a WHEP client must be able to read cross-origin.
pub const EXPOSE: &str = "Location, Link, ETag";

/// A WHEP request refused, with its status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WhepError {
    #[error("content type must be {0}")]
    ContentType(&'static str),
    #[error("body over {0} bytes")]
    TooLarge(usize),
    #[error("reading the body: {0}")]
    Body(String),
    #[error("{0}")]
    Server(#[from] ServerError),
    #[error("POST to the stream's whep URL, PATCH or DELETE its session")]
    Method,
}

impl WhepError {
    pub fn status(&self) -> StatusCode {
        match self {
            WhepError::ContentType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            WhepError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            WhepError::Body(_) => StatusCode::BAD_REQUEST,
            WhepError::Method => StatusCode::METHOD_NOT_ALLOWED,
            WhepError::Server(e) => match e {
                ServerError::BadOffer(_) | ServerError::BadCandidate(_) | ServerError::NoVideo => {
                    StatusCode::BAD_REQUEST
                }
                ServerError::NoCodec => StatusCode::NOT_ACCEPTABLE,
                ServerError::UnknownStream | ServerError::UnknownSession => StatusCode::NOT_FOUND,
                ServerError::Full | ServerError::Stopped => StatusCode::SERVICE_UNAVAILABLE,
            },
        }
    }
}

impl WhepError {
    /// The refusal as an answer: its status, a line of text, and `Allow`
    /// for a wrong method.
    pub fn reply(&self) -> Reply {
        let mut reply = Reply::empty(self.status());
        let h = &mut reply.headers;
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        if self.status() == StatusCode::METHOD_NOT_ALLOWED {
            h.insert(
                header::ALLOW,
                HeaderValue::from_static("POST, PATCH, DELETE, OPTIONS"),
            );
        }
        reply.body = Bytes::from(format!("{self}\n"));
        reply
    }
}

/// A WHEP answer, for the HTTP layer to send.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn empty(status: StatusCode) -> Reply {
        Reply {
            status,
            headers: HeaderMap::new(),
            body: Bytes::new(),
        }
    }
}

/// Reads a request body of at most `limit` bytes.
pub async fn read_body<B>(body: B, limit: usize) -> Result<Bytes, WhepError>
where
    B: http_body::Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    match Limited::new(body, limit).collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(WhepError::TooLarge(limit)),
        Err(e) => Err(WhepError::Body(e.to_string())),
    }
}

/// Whether the request says its body is of content type `want`.
pub fn is_type(headers: &HeaderMap, want: &str) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case(want))
}

/// The declared length, when over `limit`: refused before reading.
pub fn declared_too_large(headers: &HeaderMap, limit: usize) -> bool {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|n| n > limit as u64)
}

/// Serves one WHEP request: `session` is `None` for the stream's resource
/// (`/live/STREAM/whep`) and the id for a session's (`.../whep/ID`).
pub async fn serve<B>(
    server: &RtcServer,
    method: &Method,
    stream: &str,
    session: Option<&str>,
    headers: &HeaderMap,
    body: B,
) -> Result<Reply, WhepError>
where
    B: http_body::Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let limit = server.max_body();
    match (method, session) {
        (&Method::POST, None) => {
            if !is_type(headers, SDP) {
                return Err(WhepError::ContentType(SDP));
            }
            if declared_too_large(headers, limit) {
                return Err(WhepError::TooLarge(limit));
            }
            let offer = read_body(body, limit).await?;
            let offer = std::str::from_utf8(&offer)
                .map_err(|_| ServerError::BadOffer("not UTF-8".into()))?;
            let answer = server.offer(stream, offer).await?;
            let mut reply = Reply::empty(StatusCode::CREATED);
            let h = &mut reply.headers;
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static(SDP));
            let location = format!("/live/{stream}/whep/{}", answer.session);
            if let Ok(v) = HeaderValue::from_str(&location) {
                h.insert(header::LOCATION, v);
            }
            if let Ok(v) = HeaderValue::from_str(&format!("\"{}\"", answer.session)) {
                h.insert(header::ETAG, v);
            }
            for url in server.ice_servers() {
                let link = format!("<{url}>; rel=\"ice-server\"");
                if let Ok(v) = HeaderValue::from_str(&link) {
                    h.append(header::LINK, v);
                }
            }
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            reply.body = Bytes::from(answer.sdp);
            Ok(reply)
        }
        (&Method::PATCH, Some(id)) => {
            if !is_type(headers, TRICKLE) {
                return Err(WhepError::ContentType(TRICKLE));
            }
            if declared_too_large(headers, limit) {
                return Err(WhepError::TooLarge(limit));
            }
            let frag = read_body(body, limit).await?;
            let frag = String::from_utf8_lossy(&frag);
            let candidates = candidate_lines(&frag);
            server.trickle(Some(stream), id, candidates).await?;
            Ok(Reply::empty(StatusCode::NO_CONTENT))
        }
        (&Method::DELETE, Some(id)) => {
            server.close(Some(stream), id).await?;
            Ok(Reply::empty(StatusCode::OK))
        }
        _ => Err(WhepError::Method),
    }
}

/// The `a=candidate:` lines of a trickle fragment, as candidate strings
/// (the end-of-candidates line and everything else is ignored).
pub fn candidate_lines(frag: &str) -> Vec<String> {
    frag.lines()
        .filter_map(|l| l.trim().strip_prefix("a="))
        .filter(|l| l.starts_with("candidate:"))
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_and_lengths_are_read_from_headers() {
        let mut h = HeaderMap::new();
        assert!(!is_type(&h, SDP));
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("Application/SDP; charset=utf-8"),
        );
        assert!(is_type(&h, SDP) && !is_type(&h, TRICKLE));
        h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("70000"));
        assert!(declared_too_large(&h, 65_536) && !declared_too_large(&h, 70_000));
    }

    #[test]
    fn trickle_fragments_give_their_candidates() {
        let frag = "a=ice-ufrag:EsAw\r\na=ice-pwd:P2uYro0UCOQ4zxjKXaWCBui1\r\nm=audio 9 RTP/AVP 0\r\n\
                    a=mid:0\r\na=candidate:1387637174 1 udp 2122260223 192.0.2.1 61764 typ host generation 0\r\n\
                    a=end-of-candidates\r\n";
        assert_eq!(
            candidate_lines(frag),
            ["candidate:1387637174 1 udp 2122260223 192.0.2.1 61764 typ host generation 0"]
        );
    }

    #[test]
    fn every_refusal_has_its_status() {
        let s = |e: ServerError| WhepError::from(e).status().as_u16();
        assert_eq!(s(ServerError::BadOffer("x".into())), 400);
        assert_eq!(s(ServerError::NoCodec), 406);
        assert_eq!(s(ServerError::UnknownStream), 404);
        assert_eq!(s(ServerError::Full), 503);
        assert_eq!(WhepError::TooLarge(1).status().as_u16(), 413);
        assert_eq!(WhepError::ContentType(SDP).status().as_u16(), 415);
    }
}
