//! The thin I/O half of the publisher: one TCP connection driving rml_rtmp's
//! client `Handshake` and `ClientSession`, with media paced by [`Schedule`].
//!
//! Every wait is bounded: TCP connect and handshake by
//! [`PublishOptions::connect_timeout`], each of the server's answers
//! (connect, publish) by [`PublishOptions::response_timeout`], each socket
//! write by [`PublishOptions::write_timeout`]. While publishing, the socket
//! is read continuously so acknowledgements and pings flow both ways.

use std::time::Duration;

use bytes::Bytes;
use rml_rtmp::handshake::{Handshake, HandshakeError, HandshakeProcessResult, PeerType};
use rml_rtmp::rml_amf0::Amf0Value;
use rml_rtmp::sessions::{
    ClientSession, ClientSessionConfig, ClientSessionError, ClientSessionEvent,
    ClientSessionResult, PublishRequestType,
};
use rml_rtmp::time::RtmpTimestamp;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::{sleep_until, timeout, timeout_at, Instant};

use super::schedule::{Action, Schedule, ScheduleError};
use super::url::RtmpUrl;

/// How to publish.
#[derive(Debug, Clone)]
pub struct PublishOptions {
    /// Stop after this long of media; `None` publishes until shutdown.
    pub duration: Option<Duration>,
    /// The FLV clip to loop; defaults to [`crate::sample_flv`].
    pub clip: Bytes,
    /// Bound on TCP connect plus the RTMP handshake.
    pub connect_timeout: Duration,
    /// Bound on each wait for the server's answer to `connect` and `publish`.
    pub response_timeout: Duration,
    /// Bound on each socket write (a stalled server ends the publish).
    pub write_timeout: Duration,
}

impl Default for PublishOptions {
    fn default() -> PublishOptions {
        PublishOptions {
            duration: None,
            clip: crate::sample_flv(),
            connect_timeout: Duration::from_secs(5),
            response_timeout: Duration::from_secs(5),
            write_timeout: Duration::from_secs(5),
        }
    }
}

/// What a publish sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PublishStats {
    /// Video messages sent, sequence header included.
    pub video_tags: u64,
    /// Audio messages sent, sequence header included.
    pub audio_tags: u64,
    /// Bytes written to the socket, handshake included.
    pub bytes_sent: u64,
    /// RTMP timestamp of the last media message.
    pub last_timestamp_ms: u32,
    /// Time from the publish being accepted to the end.
    pub elapsed: Duration,
}

/// Why a publish failed. Refusals carry the server's own words.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PublishError {
    /// The clip cannot be looped.
    #[error(transparent)]
    Schedule(#[from] ScheduleError),
    /// TCP connect failed.
    #[error("connecting to {addr}: {source}")]
    Connect {
        /// `host:port` dialled.
        addr: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// Reading or writing the socket failed.
    #[error("socket error: {0}")]
    Io(#[from] std::io::Error),
    /// A bounded wait ran out.
    #[error("timed out {0}")]
    Timeout(&'static str),
    /// The server broke the RTMP handshake.
    #[error("RTMP handshake failed: {0}")]
    Handshake(#[from] HandshakeError),
    /// The server sent something the RTMP session could not process.
    #[error("RTMP session error: {0}")]
    Session(#[from] ClientSessionError),
    /// The server refused `connect` (wrong application, ...).
    #[error("server refused connect: {reason}")]
    ConnectRejected {
        /// The server's description.
        reason: String,
    },
    /// The server refused `publish` (bad or expired key, stream busy, ...).
    #[error("server refused publish ({code}): {reason}")]
    PublishRejected {
        /// The status code, e.g. `NetStream.Publish.BadName`.
        code: String,
        /// The server's description (empty when it gave none).
        reason: String,
    },
    /// The server closed the connection.
    #[error("server closed the connection {0}")]
    Closed(&'static str),
}

/// Publishes the looped clip to `url` until `options.duration` has passed
/// or `shutdown` turns `true` (dropping its sender counts as shutdown), then
/// sends `deleteStream` and closes the connection.
pub async fn publish(
    url: &RtmpUrl,
    options: PublishOptions,
    mut shutdown: watch::Receiver<bool>,
) -> Result<PublishStats, PublishError> {
    // Reject a clip that cannot loop before touching the network.
    Schedule::from_flv(options.clip.clone(), std::time::Instant::now())?;
    let mut conn = connect(url, &options).await?;

    let limit = options.response_timeout;
    let packet = conn.session.request_connection(url.app.clone())?;
    conn.send_results(vec![packet]).await?;
    conn.wait_for(Phase::Connect, limit).await?;
    let packet = conn
        .session
        .request_publishing(url.key.clone(), PublishRequestType::Live)?;
    conn.send_results(vec![packet]).await?;
    conn.wait_for(Phase::Publish, limit).await?;
    tracing::debug!(server = %url.tc_url(), "publish accepted");

    let started = Instant::now();
    let mut schedule = Schedule::from_flv(options.clip, started.into_std())?;
    let end = options.duration.map(|d| started + d);
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        if *shutdown.borrow() {
            break;
        }
        let now = Instant::now();
        if end.is_some_and(|end| now >= end) {
            break;
        }
        let mut out = Vec::new();
        while let Some(action) = schedule.poll(now.into_std()) {
            out.push(conn.media_packet(action)?);
        }
        conn.send_results(out).await?;

        let deadline = Instant::from_std(schedule.next_deadline());
        let wake = end.map_or(deadline, |end| end.min(deadline));
        tokio::select! {
            read = conn.stream.read(&mut buf) => {
                let n = read?;
                if n == 0 {
                    return Err(PublishError::Closed("while publishing"));
                }
                let results = conn.session.handle_input(&buf[..n])?;
                conn.send_results(results).await?;
            }
            changed = shutdown.changed() => {
                if changed.is_err() {
                    break;
                }
            }
            () = sleep_until(wake) => {}
        }
    }
    conn.stats.elapsed = started.elapsed();
    let results = conn.session.stop_publishing()?;
    conn.send_results(results).await?;
    timeout(options.write_timeout, conn.stream.shutdown())
        .await
        .map_err(|_| PublishError::Timeout("closing the connection"))??;
    tracing::debug!(server = %url.tc_url(), stats = ?conn.stats, "publish ended");
    Ok(conn.stats)
}

/// Which answer [`Conn::wait_for`] waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Connect,
    Publish,
}

struct Conn {
    stream: TcpStream,
    session: ClientSession,
    write_timeout: Duration,
    stats: PublishStats,
}

/// TCP connect, RTMP handshake and a fresh client session, within
/// `connect_timeout`.
async fn connect(url: &RtmpUrl, options: &PublishOptions) -> Result<Conn, PublishError> {
    let deadline = Instant::now() + options.connect_timeout;
    let addr = url.authority();
    let stream = timeout_at(deadline, TcpStream::connect(&addr))
        .await
        .map_err(|_| PublishError::Timeout("connecting"))?
        .map_err(|source| PublishError::Connect { addr, source })?;
    stream.set_nodelay(true)?;
    let mut config = ClientSessionConfig::new();
    config.tc_url = Some(url.tc_url());
    let (session, _) = ClientSession::new(config)?;
    let mut conn = Conn {
        stream,
        session,
        write_timeout: options.write_timeout,
        stats: PublishStats::default(),
    };

    let mut handshake = Handshake::new(PeerType::Client);
    let p0_p1 = handshake.generate_outbound_p0_and_p1()?;
    conn.write(&p0_p1).await?;
    let mut buf = vec![0u8; 8 * 1024];
    let leftover = loop {
        let n = timeout_at(deadline, conn.stream.read(&mut buf))
            .await
            .map_err(|_| PublishError::Timeout("in the RTMP handshake"))??;
        if n == 0 {
            return Err(PublishError::Closed("during the RTMP handshake"));
        }
        match handshake.process_bytes(&buf[..n])? {
            HandshakeProcessResult::InProgress { response_bytes } => {
                conn.write(&response_bytes).await?;
            }
            HandshakeProcessResult::Completed {
                response_bytes,
                remaining_bytes,
            } => {
                conn.write(&response_bytes).await?;
                break remaining_bytes;
            }
        }
    };
    if !leftover.is_empty() {
        let results = conn.session.handle_input(&leftover)?;
        conn.pending_events(results, Phase::Connect).await?;
    }
    Ok(conn)
}

impl Conn {
    async fn write(&mut self, bytes: &[u8]) -> Result<(), PublishError> {
        timeout(self.write_timeout, self.stream.write_all(bytes))
            .await
            .map_err(|_| PublishError::Timeout("writing to the server"))??;
        self.stats.bytes_sent += bytes.len() as u64;
        Ok(())
    }

    /// Writes every outbound packet, in order, as one write.
    async fn send_results(
        &mut self,
        results: Vec<ClientSessionResult>,
    ) -> Result<(), PublishError> {
        let mut out = Vec::new();
        for result in results {
            if let ClientSessionResult::OutboundResponse(packet) = result {
                out.extend_from_slice(&packet.bytes);
            }
        }
        if out.is_empty() {
            return Ok(());
        }
        self.write(&out).await
    }

    /// Serialises one scheduled tag and counts it.
    fn media_packet(&mut self, action: Action) -> Result<ClientSessionResult, PublishError> {
        self.stats.last_timestamp_ms = action.tag().timestamp_ms;
        Ok(match action {
            Action::Video(tag) => {
                self.stats.video_tags += 1;
                let ts = RtmpTimestamp::new(tag.timestamp_ms);
                self.session.publish_video_data(tag.body, ts, false)?
            }
            Action::Audio(tag) => {
                self.stats.audio_tags += 1;
                let ts = RtmpTimestamp::new(tag.timestamp_ms);
                self.session.publish_audio_data(tag.body, ts, false)?
            }
        })
    }

    /// Reads until the server accepts `phase`, refuses it, or `limit` passes.
    async fn wait_for(&mut self, phase: Phase, limit: Duration) -> Result<(), PublishError> {
        let deadline = Instant::now() + limit;
        let what = match phase {
            Phase::Connect => "waiting for the server to accept connect",
            Phase::Publish => "waiting for the server to accept publish",
        };
        let mut buf = vec![0u8; 8 * 1024];
        loop {
            let n = timeout_at(deadline, self.stream.read(&mut buf))
                .await
                .map_err(|_| PublishError::Timeout(what))??;
            if n == 0 {
                return Err(PublishError::Closed(what));
            }
            let results = match self.session.handle_input(&buf[..n]) {
                Err(ClientSessionError::CreateStreamFailed) => {
                    return Err(PublishError::PublishRejected {
                        code: "createStream".to_owned(),
                        reason: "the server refused createStream".to_owned(),
                    })
                }
                other => other?,
            };
            if self.pending_events(results, phase).await? {
                return Ok(());
            }
        }
    }

    /// Sends outbound packets and checks events; `Ok(true)` once `phase` is
    /// accepted.
    async fn pending_events(
        &mut self,
        results: Vec<ClientSessionResult>,
        phase: Phase,
    ) -> Result<bool, PublishError> {
        let mut accepted = false;
        let mut outbound = Vec::new();
        for result in results {
            match result {
                ClientSessionResult::RaisedEvent(event) => {
                    accepted |= check_event(event, phase)?;
                }
                other => outbound.push(other),
            }
        }
        self.send_results(outbound).await?;
        Ok(accepted)
    }
}

/// `Ok(true)` if `event` accepts `phase`, an error if it refuses it.
fn check_event(event: ClientSessionEvent, phase: Phase) -> Result<bool, PublishError> {
    match event {
        ClientSessionEvent::ConnectionRequestAccepted => Ok(phase == Phase::Connect),
        ClientSessionEvent::PublishRequestAccepted => Ok(phase == Phase::Publish),
        ClientSessionEvent::ConnectionRequestRejected { description } => {
            Err(PublishError::ConnectRejected {
                reason: description,
            })
        }
        // rml_rtmp servers refuse `publish` with `_error` on transaction 0,
        // which the client session does not track: the status object is
        // in the additional values.
        ClientSessionEvent::UnknownTransactionResultReceived {
            additional_values, ..
        } if phase == Phase::Publish => {
            let (code, reason) = status_fields(&additional_values);
            Err(PublishError::PublishRejected { code, reason })
        }
        // Other servers (nginx-rtmp, ...) answer with an onStatus code.
        ClientSessionEvent::UnhandleableOnStatusCode { code }
            if phase == Phase::Publish && code.starts_with("NetStream.Publish.") =>
        {
            Err(PublishError::PublishRejected {
                code,
                reason: String::new(),
            })
        }
        other => {
            tracing::trace!(event = ?other, "ignored rtmp event");
            Ok(false)
        }
    }
}

/// `code` and `description` of an AMF0 status object.
fn status_fields(values: &[Amf0Value]) -> (String, String) {
    let field = |name: &str| {
        values.iter().find_map(|value| match value {
            Amf0Value::Object(props) => match props.get(name) {
                Some(Amf0Value::Utf8String(s)) => Some(s.clone()),
                _ => None,
            },
            _ => None,
        })
    };
    (
        field("code").unwrap_or_else(|| "_error".to_owned()),
        field("description").unwrap_or_default(),
    )
}

#[cfg(test)]
mod tests;
