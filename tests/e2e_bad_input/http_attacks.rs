//! HTTP attacks and slow clients.

use super::*;

/// `prefix`, then one byte of `trickle` every 100 ms for 3 s (30 bytes).
pub(crate) async fn slowloris(addr: SocketAddr, prefix: &[u8], trickle: &[u8]) {
    let Some(mut s) = connect(addr).await else {
        return;
    };
    send(&mut s, prefix).await;
    for b in trickle.iter().cycle().take(30) {
        if !send(&mut s, std::slice::from_ref(b)).await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The good stream's video playlist (with an optional `_HLS_` query).
pub(crate) async fn good_playlist(
    o_http: SocketAddr,
    query: &str,
) -> Result<MediaPlaylist, String> {
    let f = get(&format!(
        "http://{o_http}/live/good/source/index.m3u8{query}"
    ))
    .await;
    if f.status != 200 {
        return Err(format!("good playlist: {} {}", f.status, f.text()));
    }
    MediaPlaylist::parse(&f.text()).map_err(|e| format!("good playlist: {e}"))
}

/// While slow clients hold connections open, the good stream still plays.
pub(crate) async fn slow_clients(rtmp: SocketAddr, http: SocketAddr) -> Findings {
    let mut rng = Rng::new(0x5eed_0007);
    let c1 = rng.bytes(1536);
    let mut tasks = Vec::new();
    tasks.push(tokio::spawn(async move {
        slowloris(rtmp, &[], &[&[3u8][..], &c1].concat()).await
    }));
    for _ in 0..20 {
        tasks.push(tokio::spawn(slowloris(
            http,
            b"GET /live/good/master.m3u8 HTTP/1.1\r\nHost: x\r\nX-Slow: ",
            b"a",
        )));
    }
    let mut f = Vec::new();
    let start = Instant::now();
    let mut fetched = 0;
    while start.elapsed() < Duration::from_millis(2500) {
        let t = Instant::now();
        match good_playlist(http, "").await {
            Ok(_) => fetched += 1,
            Err(e) => f.push(format!("during slowloris: {e}")),
        }
        if t.elapsed() > Duration::from_secs(1) {
            f.push(format!("playlist took {:?} during slowloris", t.elapsed()));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    if fetched < 5 {
        f.push(format!("only {fetched} playlist fetches during slowloris"));
    }
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
    }
    f
}

/// Sends a raw request and checks the answer: one of `ok` statuses, or (if
/// `close_ok`) a closed connection without a status.
pub(crate) async fn raw_http(
    addr: SocketAddr,
    name: &str,
    req: &[u8],
    ok: &[u16],
    close_ok: bool,
    f: &mut Findings,
) -> Answer {
    let Some(mut s) = connect(addr).await else {
        f.push(format!("{name}: connect failed"));
        return Answer {
            bytes: Vec::new(),
            closed: true,
        };
    };
    send(&mut s, req).await;
    // Up to the end of the response head, then whatever follows shortly
    // (the small error bodies), or the close.
    let mut a = read_answer(&mut s, Duration::from_secs(5), Some(b"\r\n\r\n")).await;
    if !a.closed {
        let rest = read_answer(&mut s, Duration::from_millis(200), None).await;
        a.bytes.extend(rest.bytes);
        a.closed = rest.closed;
    }
    match a.status() {
        Some(st) if ok.contains(&st) => {}
        Some(st) => f.push(format!("{name}: status {st}, wanted one of {ok:?}")),
        None if a.closed && close_ok => {}
        None => f.push(format!(
            "{name}: no status (closed={}, {} bytes: {:?})",
            a.closed,
            a.bytes.len(),
            String::from_utf8_lossy(&a.bytes[..a.bytes.len().min(80)])
        )),
    }
    a
}

pub(crate) fn get_req(target: &str) -> Vec<u8> {
    format!("GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").into_bytes()
}

pub(crate) async fn http_malformed(addr: SocketAddr) -> Findings {
    let mut f = Vec::new();
    let mut rng = Rng::new(0x5eed_0008);
    let parse_err = [400, 404, 405, 414, 431, 501, 505];

    // Garbage request lines.
    let mut lines: Vec<Vec<u8>> = vec![
        b"GARBAGE\r\n\r\n".to_vec(),
        b"GET\r\n\r\n".to_vec(),
        b"GET / HTTP/9.9\r\nHost: x\r\n\r\n".to_vec(),
        b"GET / FTP/1.0\r\n\r\n".to_vec(),
        b"G\x00T / HTTP/1.1\r\n\r\n".to_vec(),
        b"GET /\x7f\xff HTTP/1.1\r\n\r\n".to_vec(),
        b"GET  /  HTTP/1.1\r\n\r\n".to_vec(),
        b"\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_vec(),
        b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n".to_vec(),
        b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n".to_vec(),
        b"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzzz\r\n\r\n".to_vec(),
        b"GET / HTTP/1.1\r\nNo colon here\r\n\r\n".to_vec(),
    ];
    for _ in 0..10 {
        let mut junk = rng.junk(1, 2000);
        junk.extend_from_slice(b"\r\n\r\n");
        lines.push(junk);
    }
    for (i, req) in lines.iter().enumerate() {
        // Some of these are valid enough to be served: 200 is fine too.
        let mut ok = parse_err.to_vec();
        ok.push(200);
        raw_http(addr, &format!("garbage line #{i}"), req, &ok, true, &mut f).await;
    }

    // Oversize requests.
    let big_header = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(100 * 1024)
    );
    raw_http(
        addr,
        "100 KB header",
        big_header.as_bytes(),
        &[400, 431],
        true,
        &mut f,
    )
    .await;
    let mut many = String::from("GET / HTTP/1.1\r\nHost: x\r\n");
    for i in 0..10_000 {
        many.push_str(&format!("X-H{i}: v\r\n"));
    }
    many.push_str("\r\n");
    raw_http(
        addr,
        "10000 headers",
        many.as_bytes(),
        &[400, 431],
        true,
        &mut f,
    )
    .await;
    let long_line = format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(1 << 20));
    raw_http(
        addr,
        "1 MB request line",
        long_line.as_bytes(),
        &[400, 414, 431],
        true,
        &mut f,
    )
    .await;

    // Path traversal: never a file from outside the routes.
    for path in [
        "/live/../../etc/passwd",
        "/live/good/source/..%2f..%2fetc/passwd",
        "/live/good/source/../../../../etc/passwd",
        "/%2e%2e/",
        "/%2e%2e/%2e%2e/etc/passwd",
        "/live/%2e%2e/source/index.m3u8",
        "/live/good/%2e%2e/index.m3u8",
        "/live/good/source/%00.m4s",
        "//etc/passwd",
        "/player/../../../etc/passwd",
        "/live/good\\..\\..\\etc\\passwd/source/index.m3u8",
    ] {
        let a = raw_http(addr, path, &get_req(path), &[400, 404], true, &mut f).await;
        if a.contains(b"root:") {
            f.push(format!("{path}: served /etc/passwd"));
        }
    }
    f
}

pub(crate) async fn http_bad_queries(addr: SocketAddr, last_msn: u64) -> Findings {
    let mut f = Vec::new();
    let pl = "/live/good/source/index.m3u8";
    let m = last_msn;
    let bad = [
        "?_HLS_msn=99999999999999999999".to_string(),
        "?_HLS_msn=18446744073709551615".to_string(),
        "?_HLS_msn=18446744073709551615&_HLS_part=4294967295".to_string(),
        "?_HLS_msn=-1".to_string(),
        "?_HLS_msn=+1".to_string(),
        "?_HLS_msn=abc".to_string(),
        "?_HLS_msn=1.5".to_string(),
        "?_HLS_msn=".to_string(),
        "?_HLS_msn".to_string(),
        "?_HLS_msn=%31".to_string(),
        "?_HLS_msn=1&_HLS_msn=2".to_string(),
        "?_HLS_part=3".to_string(),
        format!("?_HLS_msn={m}&_HLS_part=-1"),
        format!("?_HLS_msn={m}&_HLS_part=4294967296"),
        format!("?_HLS_msn={m}&_HLS_part=18446744073709551615"),
        format!("?_HLS_msn={m}&_HLS_part=99999999999999999999999"),
        format!("?_HLS_msn={m}&_HLS_part=0&_HLS_part=1"),
        format!("?_HLS_msn={m}&_HLS_part=zz"),
        "?_HLS_skip=MAYBE".to_string(),
        "?_HLS_skip=YES&_HLS_skip=v2".to_string(),
        format!("?_HLS_msn={}", m + 1000),
    ];
    for q in &bad {
        let target = format!("{pl}{q}");
        raw_http(addr, &target, &get_req(&target), &[400], false, &mut f).await;
    }
    // Harmless oddities: the plain playlist (or a 4xx), quickly.
    let many = "a=b&".repeat(3000);
    let odd = [
        format!("?{many}"),
        "?_HLS_unknown=1&token=x".to_string(),
        "?&&&==&".to_string(),
        format!("?_HLS_msn={m}&_HLS_part=0"),
    ];
    for q in &odd {
        let target = format!("{pl}{q}");
        raw_http(
            addr,
            &target[..target.len().min(80)],
            &get_req(&target),
            &[200, 400, 414, 431],
            false,
            &mut f,
        )
        .await;
    }
    // Media URLs with absurd numbers.
    for path in [
        "/live/good/source/99999999999999999999.m4s",
        "/live/good/source/18446744073709551615.m4s",
        "/live/good/source/18446744073709551615.4294967295.m4s",
        "/live/good/source/1.4294967296.m4s",
        "/live/good/source/-1.m4s",
        "/live/good/source/init-4294967296.mp4",
        "/live/good/source/init-99.mp4",
        "/live/good/nosuch/index.m3u8",
        "/live/nosuch/source/index.m3u8",
        "/api/streams/..",
        "/api/streams/%00",
    ] {
        raw_http(addr, path, &get_req(path), &[400, 404], false, &mut f).await;
    }
    f
}

pub(crate) async fn http_methods_and_h2(addr: SocketAddr) -> Findings {
    let mut f = Vec::new();
    let mut rng = Rng::new(0x5eed_0009);
    for (name, req) in [
        (
            "POST",
            &b"POST /live/good/master.m3u8 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello"[..],
        ),
        (
            "PUT",
            b"PUT /live/good/source/0.m4s HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc",
        ),
        (
            "DELETE",
            b"DELETE /live/good/source/index.m3u8 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        ),
        (
            "BREW",
            b"BREW /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        ),
        (
            "POST chunked",
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        ),
    ] {
        raw_http(addr, name, req, &[405], false, &mut f).await;
    }
    // A write to an admin path without the admin token is refused before
    // its method is looked at.
    raw_http(
        addr,
        "PATCH",
        b"PATCH /api/streams/good HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        &[401],
        false,
        &mut f,
    )
    .await;
    raw_http(
        addr,
        "CONNECT",
        b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
        &[400, 404, 405],
        true,
        &mut f,
    )
    .await;

    // HTTP/2 preface, then garbage frames: GOAWAY and close, never a hang.
    for i in 0..5 {
        let mut req = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
        if i % 2 == 1 {
            req.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 0, 0]); // empty SETTINGS
        }
        req.extend(rng.junk(64, 4096));
        let Some(mut s) = connect(addr).await else {
            f.push("h2 garbage: connect failed".into());
            continue;
        };
        send(&mut s, &req).await;
        let t = Instant::now();
        let a = read_answer(&mut s, Duration::from_secs(5), None).await;
        eprintln!(
            "h2 garbage #{i}: closed={} after {:?}",
            a.closed,
            t.elapsed()
        );
        if !a.closed {
            f.push(format!("h2 preface + garbage #{i}: connection left open"));
        }
    }
    // A half preface then close.
    if let Some(mut s) = connect(addr).await {
        send(&mut s, b"PRI * HTTP/2.0\r\n").await;
    }
    f
}
