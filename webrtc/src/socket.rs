//! The UDP side of the server: one socket per candidate address (so the
//! destination of each datagram is known), a reader task per socket, and
//! the GSO batches a frame's packets to one viewer leave in.

use crate::metrics::RtcMetrics;
use livecdn_shared::config::WebRtcConfig;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use str0m::net::Transmit;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Largest datagram read.
pub(crate) const MAX_DATAGRAM: usize = 2048;
/// Largest GSO send: the kernel's 64 KiB less IPv6 and UDP headers.
pub(crate) const MAX_GSO_SEND: usize = 65_535 - 48;

pub(crate) struct Bound {
    pub(crate) socket: Arc<UdpSocket>,
    /// The address viewers are told (and that datagrams arrive at).
    pub(crate) candidate: SocketAddr,
    /// quinn-udp's view of the socket: how many datagrams one send takes.
    pub(crate) udp: quinn::udp::UdpSocketState,
}

impl Bound {
    /// Binds `addr` with QUIC's socket buffers, for `candidate` (its own
    /// address unless one is advertised).
    fn bind(addr: SocketAddr, advertised: Option<IpAddr>) -> std::io::Result<Bound> {
        let (std, _) = livecdn_shared::quic::bind(addr)?;
        std.set_nonblocking(true)?;
        let udp = quinn::udp::UdpSocketState::new(quinn::udp::UdpSockRef::from(&std))?;
        let socket = UdpSocket::from_std(std)?;
        let local = socket.local_addr()?;
        let candidate = advertised.map_or(local, |ip| SocketAddr::new(ip, local.port()));
        Ok(Bound {
            socket: Arc::new(socket),
            candidate,
            udp,
        })
    }

    /// Sends `count` datagrams of `segment` bytes (the last may be
    /// shorter), packed in `contents`, to `to` in one send; false if the
    /// socket took none of it now.
    pub(crate) fn send_batch(
        &self,
        to: SocketAddr,
        contents: &[u8],
        segment: usize,
        count: usize,
    ) -> bool {
        let t = quinn::udp::Transmit {
            destination: to,
            ecn: None,
            contents,
            segment_size: (count > 1).then_some(segment),
            src_ip: None,
        };
        let sock = quinn::udp::UdpSockRef::from(&*self.socket);
        match self.udp.try_send(sock, &t) {
            Ok(()) => true,
            // A kernel that refuses the segmented send: one by one.
            Err(e) if count > 1 && e.kind() != std::io::ErrorKind::WouldBlock => contents
                .chunks(segment)
                .all(|d| self.socket.try_send_to(d, to).is_ok()),
            Err(_) => false,
        }
    }
}

/// The sockets and their candidates (see [`WebRtcConfig::advertise`]).
pub(crate) fn bind(config: &WebRtcConfig) -> std::io::Result<Vec<Bound>> {
    let listen = config.listen;
    if !config.advertise.is_empty() || !listen.ip().is_unspecified() {
        // One socket: datagrams are taken as sent to the first address.
        return Ok(vec![Bound::bind(
            listen,
            config.advertise.first().copied(),
        )?]);
    }
    // Unspecified and nothing advertised: loopback, and the interface
    // that routes outward, each on its own socket so a datagram's
    // destination is known.
    let mut ips = vec![IpAddr::V4(Ipv4Addr::LOCALHOST)];
    if let Some(ip) = outward_ip() {
        if !ips.contains(&ip) {
            ips.push(ip);
        }
    }
    let mut out = Vec::new();
    let mut port = listen.port();
    for ip in ips {
        match Bound::bind(SocketAddr::new(ip, port), None) {
            Ok(b) => {
                port = b.candidate.port();
                out.push(b);
            }
            Err(e) if out.is_empty() => return Err(e),
            Err(e) => tracing::warn!(%ip, error = %e, "webrtc: address left out"),
        }
    }
    Ok(out)
}

/// The local address of the interface with the default route (no packet
/// is sent: connecting a UDP socket only picks a route).
fn outward_ip() -> Option<IpAddr> {
    let s = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    s.connect("192.0.2.1:9").ok()?;
    let ip = s.local_addr().ok()?.ip();
    (!ip.is_unspecified() && !ip.is_loopback()).then_some(ip)
}

pub(crate) struct Datagram {
    pub(crate) source: SocketAddr,
    pub(crate) destination: SocketAddr,
    pub(crate) data: Vec<u8>,
}

pub(crate) async fn read_socket(
    socket: Arc<UdpSocket>,
    destination: SocketAddr,
    tx: mpsc::Sender<Datagram>,
    metrics: Arc<RtcMetrics>,
    shutdown: CancellationToken,
) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let got = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = socket.recv_from(&mut buf) => r,
        };
        match got {
            Ok((n, source)) => {
                metrics.datagrams_in.fetch_add(1, Ordering::Relaxed);
                let d = Datagram {
                    source,
                    destination,
                    data: buf[..n].to_vec(),
                };
                if tx.try_send(d).is_err() {
                    metrics.datagrams_dropped.fetch_add(1, Ordering::Relaxed);
                    if tx.is_closed() {
                        return;
                    }
                }
            }
            // ICMP errors from a viewer that went away surface here.
            Err(e) => tracing::trace!(error = %e, "webrtc recv"),
        }
    }
}

/// How many of `out`'s first transmits go in one GSO send (at most
/// `room`): same source and destination, each as long as the first but
/// the last, which may be shorter.
pub(crate) fn batch_len(out: &[Transmit], room: usize) -> usize {
    let Some(first) = out.first() else {
        return 0;
    };
    let size = first.contents.len();
    let mut n = 1;
    while n < out.len().min(room) {
        let (prev, next) = (&out[n - 1], &out[n]);
        let same_way = next.source == first.source && next.destination == first.destination;
        if !same_way || prev.contents.len() != size || next.contents.len() > size {
            break;
        }
        n += 1;
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use str0m::net::Protocol;

    fn t(to: u16, len: usize) -> Transmit {
        Transmit {
            proto: Protocol::Udp,
            source: SocketAddr::from(([127, 0, 0, 1], 1)),
            destination: SocketAddr::from(([127, 0, 0, 1], to)),
            contents: vec![0u8; len].into(),
        }
    }

    #[test]
    fn a_frame_to_one_viewer_is_one_batch() {
        // Four packets of a frame to viewer 5, then one to viewer 6.
        let out = [t(5, 1200), t(5, 1200), t(5, 1200), t(5, 300), t(6, 1200)];
        assert_eq!(batch_len(&out, 10), 4);
        assert_eq!(batch_len(&out[4..], 10), 1);
        // The room bounds it; a shorter datagram ends it.
        assert_eq!(batch_len(&out, 2), 2);
        assert_eq!(batch_len(&[t(5, 300), t(5, 1200)], 10), 1);
        assert_eq!(batch_len(&[t(5, 1200), t(5, 1300)], 10), 1);
        assert_eq!(batch_len(&[], 10), 0);
    }
}
