//! Hosts on one machine: network namespaces joined by a bridge, made and
//! removed by the test, on a /24 of their own under 10.213.0.0/16. The
//! test process itself sits on the bridge at `.1` (a veth from the root
//! namespace), so it can reach every host and relay between them.
//!
//! This kernel has no netem qdisc: loss is an nftables `numgen random`
//! rule in a host's namespace, and delay is [`DelayRelay`], a relay in the
//! test process that holds each chunk (TCP) or datagram (UDP) for a fixed
//! time before passing it on.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("ip");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Whether namespaces can be made here (root, iproute2, nftables); under
/// CI a missing piece fails the test.
pub fn available() -> bool {
    if !super::have("ip") || !super::have("nft") {
        return false;
    }
    let name = format!("lcprobe{}", std::process::id());
    let ok = Command::new("ip")
        .args(["netns", "add", &name])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        let _ = Command::new("ip").args(["netns", "del", &name]).status();
    } else {
        assert!(
            !super::ci(),
            "network namespaces are required under CI (run as root)"
        );
        eprintln!("skipping: cannot create network namespaces (not root?)");
    }
    ok
}

/// A bridge and the hosts on it; everything is removed on drop.
pub struct Net {
    tag: String,
    subnet: [u8; 3],
    bridge_ns: String,
    hosts: Vec<String>,
    root_veth: String,
}

/// Distinct subnets for nets made by one test binary.
static NEXT: AtomicU8 = AtomicU8::new(0);

impl Net {
    pub fn new() -> Net {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        let tag = format!("{:x}{n}", pid % 0xfffff);
        // 10.213.X.0/24, X from the pid and the counter: parallel test
        // binaries do not collide.
        let subnet = [
            10,
            213,
            ((pid as u8).wrapping_mul(7)).wrapping_add(n.wrapping_mul(31)),
        ];
        let bridge_ns = format!("lc{tag}br");
        ip(&["netns", "add", &bridge_ns]);
        let mut net = Net {
            tag,
            subnet,
            bridge_ns,
            hosts: Vec::new(),
            root_veth: String::new(),
        };
        net.in_ns(
            &net.bridge_ns.clone(),
            &["link", "add", "br0", "type", "bridge"],
        );
        net.in_ns(&net.bridge_ns.clone(), &["link", "set", "br0", "up"]);
        net.in_ns(&net.bridge_ns.clone(), &["link", "set", "lo", "up"]);
        // The test process's own leg, .1.
        let (a, b) = (format!("lc{}r", net.tag), format!("lc{}rb", net.tag));
        ip(&["link", "add", &a, "type", "veth", "peer", "name", &b]);
        ip(&["link", "set", &b, "netns", &net.bridge_ns]);
        net.in_ns(
            &net.bridge_ns.clone(),
            &["link", "set", &b, "master", "br0", "up"],
        );
        ip(&["addr", "add", &format!("{}/24", net.addr(1)), "dev", &a]);
        ip(&["link", "set", &a, "up"]);
        net.root_veth = a;
        net
    }

    fn in_ns(&self, ns: &str, args: &[&str]) {
        let mut all = vec!["netns", "exec", ns, "ip"];
        all.extend_from_slice(args);
        ip(&all);
    }

    /// The address `.octet` on this net.
    pub fn addr(&self, octet: u8) -> Ipv4Addr {
        let [a, b, c] = self.subnet;
        Ipv4Addr::new(a, b, c, octet)
    }

    /// A host named `name` at `.octet`; returns its namespace's name.
    pub fn host(&mut self, name: &str, octet: u8) -> String {
        let ns = format!("lc{}{name}", self.tag);
        ip(&["netns", "add", &ns]);
        self.hosts.push(ns.clone());
        let (a, b) = (
            format!("lc{}{octet}", self.tag),
            format!("lc{}{octet}b", self.tag),
        );
        ip(&["link", "add", &a, "type", "veth", "peer", "name", &b]);
        ip(&["link", "set", &a, "netns", &ns]);
        ip(&["link", "set", &b, "netns", &self.bridge_ns]);
        self.in_ns(
            &self.bridge_ns.clone(),
            &["link", "set", &b, "master", "br0", "up"],
        );
        self.in_ns(
            &ns,
            &[
                "addr",
                "add",
                &format!("{}/24", self.addr(octet)),
                "dev",
                &a,
            ],
        );
        self.in_ns(&ns, &["link", "set", &a, "up"]);
        self.in_ns(&ns, &["link", "set", "lo", "up"]);
        ns
    }

    /// `program` run inside namespace `ns`.
    pub fn command(ns: &str, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", ns, program]);
        c
    }

    /// Drops `percent` % of the packets host `ns` exchanges with `peer`,
    /// each way, at random (nftables `numgen random`).
    pub fn loss(ns: &str, peer: Ipv4Addr, percent: u32) {
        let nft = |args: &str| {
            let out = Self::command(ns, "nft")
                .args(args.split(' '))
                .output()
                .expect("nft");
            assert!(
                out.status.success(),
                "nft {args}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        nft("add table inet loss");
        for (chain, hook, dir) in [("in", "input", "saddr"), ("out", "output", "daddr")] {
            nft(&format!(
                "add chain inet loss {chain} {{ type filter hook {hook} priority 0 ; }}"
            ));
            nft(&format!(
                "add rule inet loss {chain} ip {dir} {peer} numgen random mod 100 < {percent} drop"
            ));
        }
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        // Removing a namespace removes the veths in it, and their peers.
        for ns in self.hosts.iter().chain([&self.bridge_ns]) {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
        let _ = Command::new("ip")
            .args(["link", "del", &self.root_veth])
            .status();
    }
}

/// Forwards TCP connections (and, with [`DelayRelay::udp`], datagrams)
/// from `listen` to `target`, each way `delay` late: the delay between two
/// tiers. Runs until the runtime ends.
pub struct DelayRelay;

impl DelayRelay {
    /// Starts a TCP relay on `listen`; returns its address.
    pub async fn tcp(listen: SocketAddr, target: SocketAddr, delay: Duration) -> SocketAddr {
        let listener = TcpListener::bind(listen).await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((down, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let Ok(up) = TcpStream::connect(target).await else {
                        return;
                    };
                    let _ = down.set_nodelay(true);
                    let _ = up.set_nodelay(true);
                    let (dr, dw) = down.into_split();
                    let (ur, uw) = up.into_split();
                    tokio::join!(pipe(dr, uw, delay), pipe(ur, dw, delay));
                });
            }
        });
        addr
    }
}

/// Copies `from` into `to`, each chunk released `delay` after it was read
/// (order kept; a bounded queue, so a stalled side stalls the other).
async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    delay: Duration,
) {
    let (tx, mut rx) = mpsc::channel::<(Instant, Vec<u8>)>(1024);
    let writer = tokio::spawn(async move {
        while let Some((due, chunk)) = rx.recv().await {
            tokio::time::sleep_until(due.into()).await;
            if to.write_all(&chunk).await.is_err() {
                return;
            }
        }
        let _ = to.shutdown().await;
    });
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if tx
                    .send((Instant::now() + delay, buf[..n].to_vec()))
                    .await
                    .is_err()
                {
                    break;
                }
            }
        }
    }
    drop(tx);
    let _ = writer.await;
}

/// `addr:port` as a socket address.
pub fn sock(addr: Ipv4Addr, port: u16) -> SocketAddr {
    SocketAddr::V4(SocketAddrV4::new(addr, port))
}
