//! Source addresses for outgoing TCP connections.
//!
//! One client address and one server address allow about 28,000
//! connections (Linux's ephemeral port range): 10,000 HTTP/1.1 viewers with
//! several connections each run out of ports long before a server runs out
//! of capacity. Binding each connection to the next address of a set in
//! 127.0.0.0/8 (every address there reaches loopback) multiplies that.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Most addresses one `--source-addrs` may name.
pub const MAX_SOURCE_ADDRS: usize = 4096;

/// Why a `--source-addrs` value is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SourceAddrsError {
    /// An item is neither an address nor `A-B` of two IPv4 addresses.
    #[error("{0:?}: expected an IP address or a range FIRST-LAST of IPv4 addresses")]
    Item(String),
    /// A range's last address comes before its first.
    #[error("{0:?}: the range ends before it starts")]
    Backwards(String),
    /// More than [`MAX_SOURCE_ADDRS`] addresses.
    #[error("more than {MAX_SOURCE_ADDRS} source addresses")]
    TooMany,
}

/// Parses `127.0.0.2-127.0.0.17,127.0.1.1`: addresses and inclusive IPv4
/// ranges, comma-separated, in order, duplicates kept.
pub fn parse_source_addrs(spec: &str) -> Result<Vec<IpAddr>, SourceAddrsError> {
    let mut out = Vec::new();
    for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        if let Some((first, last)) = item.split_once('-') {
            let parse = |s: &str| {
                s.trim()
                    .parse::<Ipv4Addr>()
                    .map_err(|_| SourceAddrsError::Item(item.to_owned()))
            };
            let (first, last) = (u32::from(parse(first)?), u32::from(parse(last)?));
            if last < first {
                return Err(SourceAddrsError::Backwards(item.to_owned()));
            }
            let count = usize::try_from(last - first).unwrap_or(usize::MAX);
            if count >= MAX_SOURCE_ADDRS.saturating_sub(out.len()) {
                return Err(SourceAddrsError::TooMany);
            }
            out.extend((first..=last).map(|a| IpAddr::V4(Ipv4Addr::from(a))));
        } else {
            let addr = item
                .parse::<IpAddr>()
                .map_err(|_| SourceAddrsError::Item(item.to_owned()))?;
            if out.len() >= MAX_SOURCE_ADDRS {
                return Err(SourceAddrsError::TooMany);
            }
            out.push(addr);
        }
    }
    Ok(out)
}

/// Hands out the configured addresses in turn.
#[derive(Debug, Default)]
pub struct SourceAddrs {
    addrs: Vec<IpAddr>,
    next: AtomicUsize,
}

impl SourceAddrs {
    /// Rotates over `addrs` (none: the kernel chooses).
    pub fn new(addrs: Vec<IpAddr>) -> SourceAddrs {
        SourceAddrs {
            addrs,
            next: AtomicUsize::new(0),
        }
    }

    /// The local address the next connection to `peer` binds, if any:
    /// the next configured address of `peer`'s family.
    pub fn next_for(&self, peer: SocketAddr) -> Option<SocketAddr> {
        let len = self.addrs.len();
        if len == 0 {
            return None;
        }
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        (0..len)
            .map(|i| self.addrs[(start + i) % len])
            .find(|ip| ip.is_ipv4() == peer.is_ipv4())
            .map(|ip| SocketAddr::new(ip, 0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_and_addresses_parse_in_order() {
        let addrs = parse_source_addrs("127.0.0.2-127.0.0.4, ::1,127.0.1.1").expect("parses");
        let shown: Vec<String> = addrs.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            ["127.0.0.2", "127.0.0.3", "127.0.0.4", "::1", "127.0.1.1"]
        );
        assert_eq!(parse_source_addrs(""), Ok(vec![]));
    }

    #[test]
    fn bad_specs_are_refused_with_the_item() {
        assert_eq!(
            parse_source_addrs("127.0.0.9-127.0.0.2"),
            Err(SourceAddrsError::Backwards("127.0.0.9-127.0.0.2".into()))
        );
        assert_eq!(
            parse_source_addrs("127.0.0.1,localhost"),
            Err(SourceAddrsError::Item("localhost".into()))
        );
        assert_eq!(
            parse_source_addrs("::1-::2"),
            Err(SourceAddrsError::Item("::1-::2".into()))
        );
        assert_eq!(
            parse_source_addrs("10.0.0.0-10.1.0.0"),
            Err(SourceAddrsError::TooMany)
        );
    }

    #[test]
    fn connections_rotate_over_addresses_of_the_peers_family() {
        let set = SourceAddrs::new(parse_source_addrs("127.0.0.2,::1,127.0.0.3").expect("ok"));
        let v4: SocketAddr = "127.0.0.1:80".parse().expect("addr");
        let picked: Vec<String> = (0..4)
            .filter_map(|_| set.next_for(v4))
            .map(|a| a.ip().to_string())
            .collect();
        // The IPv6 entry is skipped for an IPv4 peer, never returned.
        assert!(picked
            .iter()
            .all(|ip| ip == "127.0.0.2" || ip == "127.0.0.3"));
        assert!(
            picked.contains(&"127.0.0.2".to_owned()) && picked.contains(&"127.0.0.3".to_owned())
        );
        assert_eq!(SourceAddrs::default().next_for(v4), None);
    }

    #[test]
    fn a_connection_from_another_loopback_address_reaches_the_server() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            let peer = listener.local_addr().expect("addr");
            let set = SourceAddrs::new(vec!["127.0.0.7".parse().expect("ip")]);
            let local = set.next_for(peer).expect("an address");
            let socket = tokio::net::TcpSocket::new_v4().expect("socket");
            socket.bind(local).expect("bind 127.0.0.7");
            let _stream = socket.connect(peer).await.expect("connect");
            let (_, from) = listener.accept().await.expect("accept");
            assert_eq!(from.ip().to_string(), "127.0.0.7");
        });
    }
}
