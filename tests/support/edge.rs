//! A real `livecdn edge` child process pulling from an origin.

use super::Origin;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

fn log_path() -> PathBuf {
    std::env::temp_dir().join(format!(
        "livecdn-e2e-edge-{}-{}.log",
        std::process::id(),
        super::rand_u64()
    ))
}

/// A free UDP port on localhost (bound, then released).
pub fn free_udp_port() -> u16 {
    let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    s.local_addr().unwrap().port()
}

/// An origin whose push endpoint uses a certificate written by the test, so
/// the test knows its pin; `config` is more origin TOML and `args` more
/// flags. Returns the origin, the push address and the pin.
pub fn origin_with_push(config: &str, args: &[&str]) -> (Origin, String, String) {
    let ck = livecdn_shared::tls::self_signed(&["origin"]).unwrap();
    let pin = livecdn_shared::tls::spki_sha256_base64(&ck.cert_der).unwrap();
    let dir = std::env::temp_dir().join(format!(
        "livecdn-e2e-push-{}-{}",
        std::process::id(),
        super::rand_u64()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, keyf, conf) = (
        dir.join("push.crt"),
        dir.join("push.key"),
        dir.join("origin.toml"),
    );
    std::fs::write(&cert, &ck.cert_pem).unwrap();
    std::fs::write(&keyf, &ck.key_pem).unwrap();
    std::fs::write(
        &conf,
        format!(
            "{config}\n[push]\ncert = {:?}\nkey = {:?}\n",
            cert.display().to_string(),
            keyf.display().to_string()
        ),
    )
    .unwrap();
    let push = format!("127.0.0.1:{}", free_udp_port());
    let mut all = vec!["--config", conf.to_str().unwrap(), "--push-listen", &push];
    all.extend_from_slice(args);
    let origin = Origin::start(&all);
    (origin, push, pin)
}

/// An origin with `config` pushing to an edge that serves WHEP (its
/// WebRTC on a port of its own).
#[allow(dead_code, reason = "not every test binary serves WHEP from an edge")]
pub fn origin_and_whep_edge(config: &str) -> (Origin, Edge) {
    let (o, push, pin) = origin_with_push(config, &[]);
    let webrtc = [
        "--push",
        &push,
        "--push-spki",
        &pin,
        "--webrtc-listen",
        "127.0.0.1:0",
    ];
    let e = Edge::start(&o, &webrtc);
    (o, e)
}

/// A cluster credential for `node` signed with `secret`, valid for a day.
pub fn cluster_credential(secret: &str, node: &str) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    livecdn_shared::auth::sign_cluster(secret.as_bytes(), node, now + 86_400)
}

/// A running `livecdn edge` child; killed on drop.
pub struct Edge {
    child: Child,
    pub http: SocketAddr,
    log: PathBuf,
}

impl Edge {
    /// Starts an edge in front of `origin`, with extra flags (`push`: e.g.
    /// `--push ADDR`), cleartext HTTP and HTTPS on ephemeral ports, no h3,
    /// and a valid cluster credential.
    pub fn start(origin: &Origin, push: &[&str]) -> Edge {
        let credential = cluster_credential(super::SECRET, "e2e-edge");
        Self::start_as(origin, push, Some(&credential))
    }

    /// [`Edge::start`] with the given cluster credential, or none.
    pub fn start_as(origin: &Origin, push: &[&str], credential: Option<&str>) -> Edge {
        Self::start_full(origin, push, credential, "127.0.0.1:0")
    }

    /// [`Edge::start`] with cleartext HTTP on `http` (a port the test
    /// reserved, so that it could name the edge before starting it).
    #[allow(dead_code, reason = "not every test binary names its edge's port")]
    pub fn start_on(origin: &Origin, push: &[&str], http: &str) -> Edge {
        let credential = cluster_credential(super::SECRET, "e2e-edge");
        Self::start_full(origin, push, Some(&credential), http)
    }

    fn start_full(origin: &Origin, push: &[&str], credential: Option<&str>, http: &str) -> Edge {
        Self::spawn(&format!("http://{}", origin.http), push, credential, http)
    }

    /// An edge in front of `origin_url` (which may be down: the chat
    /// tests need no origin) with the flags `args`.
    #[allow(dead_code, reason = "not every test binary starts an edge alone")]
    pub fn start_args(origin_url: &str, http: &str, args: &[&str]) -> Edge {
        Self::spawn(origin_url, args, None, http)
    }

    /// Kills the edge at once (SIGKILL), as a crash would.
    #[allow(dead_code, reason = "not every test binary kills an edge")]
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn spawn(origin_url: &str, push: &[&str], credential: Option<&str>, http: &str) -> Edge {
        let log = log_path();
        let mut child = Command::new(env!("CARGO_BIN_EXE_livecdn"))
            .arg("edge")
            .args(["--origin", origin_url])
            .args(["--http-listen", http, "--https-listen", "127.0.0.1:0"])
            .arg("--no-h3")
            .args(push)
            .args(credential.map(|c| format!("--cluster-credential={c}")))
            .env("LIVECDN_LOG", "info,livecdn_edge=debug")
            .env("LIVECDN_ADMIN_TOKEN", super::ADMIN_TOKEN)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut http = None;
        for _ in 0..16 {
            let mut line = String::new();
            if stdout.read_line(&mut line).unwrap_or(0) == 0 {
                break;
            }
            if let Some(a) = line
                .split_whitespace()
                .find_map(|w| w.strip_prefix("edge_http="))
            {
                http = Some(a.parse().unwrap());
                break;
            }
        }
        std::thread::spawn(move || {
            let mut sink = String::new();
            while stdout.read_line(&mut sink).unwrap_or(0) > 0 {
                sink.clear();
            }
        });
        let log_text = std::fs::read_to_string(&log).unwrap_or_default();
        Edge {
            http: http.unwrap_or_else(|| panic!("no edge_http line; log:\n{log_text}")),
            child,
            log,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.http, path)
    }

    /// The edge's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Edge {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            eprintln!("--- edge log ---\n{log}");
        }
        let _ = std::fs::remove_file(&self.log);
    }
}
