//! QUIC transport settings every endpoint of the project uses: the edge's
//! HTTP/3 listener, origin-to-edge push, and the load-test harness.
//!
//! Per-request cost of HTTP/3 is dominated by per-packet work (building,
//! sealing, tracking and acknowledging each packet), so the number of
//! packets a response takes is what these settings act on:
//!
//! * **Packet size.** quinn discovers the path's MTU (RFC 8899 probes,
//!   black-hole detection falls back to 1200) but by default searches only
//!   up to 1452 bytes. On paths that carry more (loopback, jumbo-frame data
//!   centre links between edge tiers) that leaves most of the per-packet
//!   saving unused, while TCP on the same path sends 64 KiB segments. quinn
//!   documents any upper bound as safe: a probe that is lost costs only the
//!   probe. The bound here is the largest payload for which quinn's full
//!   GSO batch (ten datagrams in one `sendmsg`) still fits the kernel's
//!   64 KiB limit on one send; a larger payload makes the batched send fail
//!   with `EMSGSIZE`, which quinn counts as loss and answers by falling back
//!   to 1200-byte packets. Without GSO one datagram goes per send and the
//!   bound is just under UDP's own maximum. On an Internet path the discovered size is
//!   the path's (1452 or less); nothing changes there.
//! * **Receiving large packets.** A peer only sends what the receiver
//!   advertises (`max_udp_payload_size`); endpoints here advertise the same
//!   bound. quinn sizes each endpoint's receive buffer linearly with it.
//! * **Socket buffers.** Linux gives UDP sockets about 208 KiB each way;
//!   one GSO batch is up to 64 KiB, and a receiver that falls behind drops
//!   datagrams, which QUIC then retransmits. Sockets ask for
//!   [`SOCKET_BUFFER`] (the kernel caps it at `net.core.{r,w}mem_max`).
//!
//! The only socket calls in this crate are here: options on a socket the
//! caller has bound.

use std::net::UdpSocket;

/// Datagrams quinn puts in one GSO send (quinn's `MAX_TRANSMIT_SEGMENTS`).
pub const GSO_BATCH: usize = 10;

/// Largest UDP payload (RFC 9000 `max_udp_payload_size` upper limit).
pub const MAX_UDP_PAYLOAD: u16 = 65_527;

/// Largest payload of one send, IPv6 and UDP headers (48 bytes) included.
const MAX_SEND: usize = 65_535 - 48;

/// Send and receive buffer requested for every QUIC socket.
pub const SOCKET_BUFFER: usize = 4 << 20;

/// The largest UDP payload to probe for when one send carries up to
/// `gso_segments` datagrams (1 without GSO).
pub fn payload_bound(gso_segments: usize) -> u16 {
    let segments = gso_segments.clamp(1, GSO_BATCH);
    u16::try_from(MAX_SEND / segments)
        .unwrap_or(MAX_UDP_PAYLOAD)
        .min(MAX_UDP_PAYLOAD)
}

/// What a bound socket supports, read once before its endpoint is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SocketCaps {
    /// Datagrams the kernel accepts in one send (1 without GSO).
    pub gso_segments: usize,
    /// The payload bound that follows from it ([`payload_bound`]).
    pub max_payload: u16,
}

/// Sizes `socket`'s buffers ([`SOCKET_BUFFER`], best effort) and reads
/// whether the kernel segments sends for it (GSO).
pub fn prepare_socket(socket: &UdpSocket) -> std::io::Result<SocketCaps> {
    let sock = socket2::SockRef::from(socket);
    // Best effort: the kernel caps both at its sysctl maxima.
    let _ = sock.set_recv_buffer_size(SOCKET_BUFFER);
    let _ = sock.set_send_buffer_size(SOCKET_BUFFER);
    let state = quinn::udp::UdpSocketState::new(quinn::udp::UdpSockRef::from(socket))?;
    let gso_segments = state.max_gso_segments().max(1);
    Ok(SocketCaps {
        gso_segments,
        max_payload: payload_bound(gso_segments),
    })
}

/// The endpoint settings for a socket with `caps`: advertise that packets
/// up to its payload bound can be received.
pub fn endpoint_config(caps: SocketCaps) -> quinn::EndpointConfig {
    let mut config = quinn::EndpointConfig::default();
    // In range by construction (1200 ..= 65527); the default stays otherwise.
    let _ = config.max_udp_payload_size(caps.max_payload.max(1200));
    config
}

/// A transport config whose MTU discovery searches up to `caps`'s payload
/// bound; callers add their own stream and idle settings.
pub fn transport_config(caps: SocketCaps) -> quinn::TransportConfig {
    let mut mtu = quinn::MtuDiscoveryConfig::default();
    mtu.upper_bound(caps.max_payload);
    let mut transport = quinn::TransportConfig::default();
    transport.mtu_discovery_config(Some(mtu));
    transport
}

/// Binds a UDP socket on `addr`, prepared as [`prepare_socket`] says.
pub fn bind(addr: std::net::SocketAddr) -> std::io::Result<(UdpSocket, SocketCaps)> {
    let socket = UdpSocket::bind(addr)?;
    let caps = prepare_socket(&socket)?;
    Ok((socket, caps))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_gso_batch_fits_one_send() {
        let bound = payload_bound(GSO_BATCH);
        assert!(usize::from(bound) * GSO_BATCH + 48 <= 65_535);
        // ... and one byte more would not.
        assert!((usize::from(bound) + 1) * GSO_BATCH + 48 > 65_535);
        // More segments than quinn sends at once change nothing.
        assert_eq!(payload_bound(64), bound);
    }

    #[test]
    fn without_gso_one_datagram_may_be_nearly_as_large_as_udp_allows() {
        let bound = payload_bound(1);
        // Fits one IPv4 datagram (65,507 bytes of payload) and IPv6 alike.
        assert!(bound <= 65_507 && bound > 65_000);
        assert_eq!(payload_bound(0), bound);
    }

    #[test]
    fn a_bound_socket_reports_its_capabilities() {
        let (socket, caps) = bind("127.0.0.1:0".parse().expect("addr")).expect("bind");
        assert!(caps.gso_segments >= 1);
        assert_eq!(caps.max_payload, payload_bound(caps.gso_segments));
        let sock = socket2::SockRef::from(&socket);
        // Linux reports double the requested size, capped by rmem_max; the
        // request must at least not have shrunk the default.
        assert!(sock.recv_buffer_size().expect("rcvbuf") >= 200 * 1024);
        let config = endpoint_config(caps);
        assert_eq!(
            config.get_max_udp_payload_size(),
            u64::from(caps.max_payload)
        );
    }
}
