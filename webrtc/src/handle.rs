//! The handle HTTP handlers hold: [`RtcServer`] sends the session task
//! (`crate::server`) a [`Command`] per request and waits for its answer.

use crate::ingest::IngestSink;
use crate::metrics::RtcMetrics;
use crate::session::OfferError;
use livecdn_shared::config::WebRtcConfig;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// Why a WHEP request could not be carried out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServerError {
    #[error("malformed SDP offer: {0}")]
    BadOffer(String),
    #[error("malformed ICE candidate: {0}")]
    BadCandidate(String),
    #[error("the offer receives no video")]
    NoVideo,
    #[error("no codec in common: the offer must accept H.264 (packetization-mode=1)")]
    NoCodec,
    #[error("no such stream")]
    UnknownStream,
    #[error("no such session")]
    UnknownSession,
    #[error("too many WebRTC sessions")]
    Full,
    #[error("the WebRTC server has stopped")]
    Stopped,
}

impl From<OfferError> for ServerError {
    fn from(e: OfferError) -> Self {
        match e {
            OfferError::Sdp(m) => ServerError::BadOffer(m),
            OfferError::NoVideo => ServerError::NoVideo,
            OfferError::NoCodec => ServerError::NoCodec,
        }
    }
}

/// An accepted offer.
#[derive(Debug, Clone)]
pub struct Answer {
    pub session: String,
    pub sdp: String,
}

pub(crate) enum Command {
    Offer {
        stream: String,
        sdp: String,
        reply: oneshot::Sender<Result<Answer, ServerError>>,
    },
    Publish {
        stream: String,
        sdp: String,
        sink: Box<dyn IngestSink>,
        reply: oneshot::Sender<Result<Answer, ServerError>>,
    },
    /// `stream: None`: a publisher's session (its URL names no stream).
    Trickle {
        stream: Option<String>,
        id: String,
        candidates: Vec<String>,
        reply: oneshot::Sender<Result<(), ServerError>>,
    },
    Close {
        stream: Option<String>,
        id: String,
        reply: oneshot::Sender<Result<(), ServerError>>,
    },
}

/// The handle HTTP handlers use.
#[derive(Clone)]
pub struct RtcServer {
    pub(crate) cmd: mpsc::Sender<Command>,
    pub(crate) config: Arc<WebRtcConfig>,
    pub(crate) local: Arc<[SocketAddr]>,
    pub metrics: Arc<RtcMetrics>,
}

impl RtcServer {
    /// The host candidates offered to viewers.
    pub fn candidates(&self) -> &[SocketAddr] {
        &self.local
    }

    pub fn max_body(&self) -> usize {
        self.config.max_body
    }

    pub fn ice_servers(&self) -> &[String] {
        &self.config.ice_servers
    }

    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, ServerError>>) -> Command,
    ) -> Result<T, ServerError> {
        let (tx, rx) = oneshot::channel();
        self.cmd
            .send(make(tx))
            .await
            .map_err(|_| ServerError::Stopped)?;
        rx.await.map_err(|_| ServerError::Stopped)?
    }

    /// A viewer's offer for `stream`: the answer and the session's id.
    pub async fn offer(&self, stream: &str, sdp: &str) -> Result<Answer, ServerError> {
        self.ask(|reply| Command::Offer {
            stream: stream.to_string(),
            sdp: sdp.to_string(),
            reply,
        })
        .await
    }

    /// A publisher's (WHIP) offer for `stream`, already authorised: its
    /// media go to `sink`, which is dropped when the session ends.
    pub async fn publish(
        &self,
        stream: &str,
        sdp: &str,
        sink: Box<dyn IngestSink>,
    ) -> Result<Answer, ServerError> {
        self.ask(|reply| Command::Publish {
            stream: stream.to_string(),
            sdp: sdp.to_string(),
            sink,
            reply,
        })
        .await
    }

    /// Remote candidates trickled in (`candidate:...` strings), for a
    /// viewer's session of `stream` or (`None`) a publisher's.
    pub async fn trickle(
        &self,
        stream: Option<&str>,
        id: &str,
        candidates: Vec<String>,
    ) -> Result<(), ServerError> {
        self.ask(|reply| Command::Trickle {
            stream: stream.map(str::to_string),
            id: id.to_string(),
            candidates,
            reply,
        })
        .await
    }

    /// Ends a viewer's session of `stream` or (`None`) a publisher's.
    pub async fn close(&self, stream: Option<&str>, id: &str) -> Result<(), ServerError> {
        self.ask(|reply| Command::Close {
            stream: stream.map(str::to_string),
            id: id.to_string(),
            reply,
        })
        .await
    }
}
