//! RTMP attacks: handshake abuse, crafted chunks and AMF, floods.

use super::*;

/// Completes the original-spec handshake: C0+C1, read S0+S1+S2, C2 = S1.
pub(crate) async fn rtmp_handshake(addr: SocketAddr, rng: &mut Rng) -> Option<TcpStream> {
    let mut s = connect(addr).await?;
    let mut c0c1 = vec![3u8];
    c0c1.extend_from_slice(&[0; 8]); // time, zero
    c0c1.extend(rng.bytes(1536 - 8));
    if !send(&mut s, &c0c1).await {
        return None;
    }
    let mut s0s1s2 = vec![0u8; 1 + 1536 + 1536];
    tokio::time::timeout(READ_LIMIT, s.read_exact(&mut s0s1s2))
        .await
        .ok()?
        .ok()?;
    let s1 = s0s1s2[1..1537].to_vec();
    send(&mut s, &s1).await.then_some(s)
}

/// One message as a type-0 chunk followed by type-3 continuation chunks.
pub(crate) fn chunked(
    csid: u8,
    type_id: u8,
    stream_id: u32,
    payload: &[u8],
    chunk: usize,
) -> Vec<u8> {
    assert!((2..64).contains(&csid));
    let len = payload.len() as u32;
    let mut out = vec![csid, 0, 0, 0];
    out.extend_from_slice(&len.to_be_bytes()[1..]);
    out.push(type_id);
    out.extend_from_slice(&stream_id.to_le_bytes());
    for (i, piece) in payload.chunks(chunk.max(1)).enumerate() {
        if i > 0 {
            out.push(0xC0 | csid);
        }
        out.extend_from_slice(piece);
    }
    out
}

pub(crate) fn set_chunk_size(size: u32) -> Vec<u8> {
    chunked(2, 1, 0, &size.to_be_bytes(), 128)
}

pub(crate) fn amf_str(s: &str) -> Vec<u8> {
    let mut v = vec![0x02];
    v.extend_from_slice(&(s.len() as u16).to_be_bytes());
    v.extend_from_slice(s.as_bytes());
    v
}

pub(crate) fn amf_num(n: f64) -> Vec<u8> {
    let mut v = vec![0x00];
    v.extend_from_slice(&n.to_be_bytes());
    v
}

pub(crate) const AMF_NULL: u8 = 0x05;

pub(crate) fn amf_obj(props: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut v = vec![0x03];
    for (k, val) in props {
        v.extend_from_slice(&(k.len() as u16).to_be_bytes());
        v.extend_from_slice(k.as_bytes());
        v.extend_from_slice(val);
    }
    v.extend_from_slice(&[0, 0, 9]);
    v
}

pub(crate) fn command(parts: &[Vec<u8>], stream_id: u32) -> Vec<u8> {
    let payload: Vec<u8> = parts.concat();
    chunked(3, 20, stream_id, &payload, 128)
}

pub(crate) fn connect_cmd(app: &str) -> Vec<u8> {
    command(
        &[
            amf_str("connect"),
            amf_num(1.0),
            amf_obj(&[
                ("app", amf_str(app)),
                ("type", amf_str("nonprivate")),
                ("tcUrl", amf_str(&format!("rtmp://127.0.0.1/{app}"))),
            ]),
        ],
        0,
    )
}

pub(crate) fn create_stream_cmd() -> Vec<u8> {
    command(&[amf_str("createStream"), amf_num(2.0), vec![AMF_NULL]], 0)
}

pub(crate) fn publish_cmd(key: &str) -> Vec<u8> {
    command(
        &[
            amf_str("publish"),
            amf_num(3.0),
            vec![AMF_NULL],
            amf_str(key),
            amf_str("live"),
        ],
        1,
    )
}

/// Handshake, connect to `live`, createStream; `None` if the server balked.
pub(crate) async fn rtmp_connected(addr: SocketAddr, rng: &mut Rng) -> Option<TcpStream> {
    let mut s = rtmp_handshake(addr, rng).await?;
    send(&mut s, &connect_cmd("live")).await;
    let a = read_answer(&mut s, READ_LIMIT, Some(b"NetConnection.Connect.Success")).await;
    if !a.contains(b"NetConnection.Connect.Success") {
        return None;
    }
    send(&mut s, &create_stream_cmd()).await;
    let a = read_answer(&mut s, READ_LIMIT, Some(b"_result")).await;
    a.contains(b"_result").then_some(s)
}

/// Connected and publishing `key`; `None` unless the origin said Publish.Start.
pub(crate) async fn rtmp_publishing(
    addr: SocketAddr,
    rng: &mut Rng,
    key: &str,
) -> Option<TcpStream> {
    let mut s = rtmp_connected(addr, rng).await?;
    send(&mut s, &publish_cmd(key)).await;
    let a = read_answer(&mut s, READ_LIMIT, Some(b"NetStream.Publish.Start")).await;
    a.contains(b"NetStream.Publish.Start").then_some(s)
}

// ---------------------------------------------------------------------------
// The attacks. Each returns the expectations it saw broken (not panics in
// the test, so one run reports every finding).

pub(crate) async fn rtmp_garbage_after_connect(addr: SocketAddr) -> Findings {
    let mut f = Vec::new();
    let mut rng = Rng::new(0x5eed_0001);
    for i in 0..10 {
        let Some(mut s) = connect(addr).await else {
            f.push(format!("connection {i} refused"));
            continue;
        };
        let mut junk = rng.junk(1, 8192);
        // A first byte other than 3 is a bad RTMP version: closed at once.
        if junk[0] == 3 {
            junk[0] = 0xFF;
        }
        send(&mut s, &junk).await;
        let a = read_answer(&mut s, READ_LIMIT, None).await;
        if !a.closed {
            f.push(format!(
                "garbage #{i} (first byte {:#04x}) not closed within {READ_LIMIT:?}",
                junk[0]
            ));
        }
    }
    f
}

pub(crate) async fn rtmp_c0c1_then_garbage(addr: SocketAddr) -> Findings {
    let mut rng = Rng::new(0x5eed_0002);
    for _ in 0..10 {
        let Some(mut s) = connect(addr).await else {
            continue;
        };
        let mut bytes = vec![3u8];
        bytes.extend(rng.bytes(1536));
        bytes.extend(rng.junk(1536, 16 * 1024));
        send(&mut s, &bytes).await;
        // Garbage after the handshake may look like a half-received huge
        // message, so the server need not close at once: just hang up.
        read_answer(&mut s, Duration::from_millis(200), None).await;
    }
    Vec::new()
}

pub(crate) async fn rtmp_truncated_handshake(addr: SocketAddr) -> Findings {
    let mut rng = Rng::new(0x5eed_0003);
    for cut in [0usize, 1, 2, 700, 1536, 1537, 1537 + 1000] {
        let Some(mut s) = connect(addr).await else {
            continue;
        };
        let mut bytes = vec![3u8];
        bytes.extend(rng.bytes(1536 + 1536));
        send(&mut s, &bytes[..cut]).await;
        drop(s);
    }
    Vec::new()
}

/// Chunk-level abuse to send after a good handshake, one connection each.
pub(crate) fn bad_chunk_cases() -> Vec<(String, Vec<u8>)> {
    let mut rng = Rng::new(0x5eed_0004);
    let mut cases: Vec<(&str, Vec<u8>)> = Vec::new();

    // A message header announcing 0xFFFFFF bytes, then a little of it.
    let mut huge = vec![3, 0, 0, 0, 0xFF, 0xFF, 0xFF, 20, 0, 0, 0, 0];
    huge.extend(rng.bytes(4000));
    cases.push(("message length 0xFFFFFF", huge));

    // Chunk size 0x7FFFFFFF, then a 0xFFFFFF-byte message cut short.
    let mut big = set_chunk_size(0x7FFF_FFFF);
    big.extend_from_slice(&[3, 0, 0, 0, 0xFF, 0xFF, 0xFF, 9, 1, 0, 0, 0]);
    big.extend(rng.bytes(64 * 1024));
    cases.push(("set chunk size 0x7fffffff", big));

    // Chunk size 0x80000000 and 0xFFFFFFFF (out of range).
    cases.push(("set chunk size 0x80000000", set_chunk_size(0x8000_0000)));
    cases.push(("set chunk size 0xffffffff", set_chunk_size(0xFFFF_FFFF)));

    // Chunk size 0, then ordinary messages.
    let mut zero = set_chunk_size(0);
    zero.extend(connect_cmd("live"));
    zero.extend(chunked(4, 9, 1, &rng.bytes(300), 128));
    cases.push(("set chunk size 0", zero));

    // Basic headers with 2- and 3-byte chunk stream ids.
    let mut wide = vec![0x00, 0xFF]; // csid 319
    wide.extend_from_slice(&[0, 0, 0, 0, 0, 4, 3, 0, 0, 0, 0, 0, 0, 0, 1]);
    wide.extend_from_slice(&[0x01, 0xFF, 0xFF]); // csid 65599
    wide.extend_from_slice(&[0, 0, 0, 0, 0, 4, 3, 0, 0, 0, 0, 0, 0, 0, 1]);
    wide.extend_from_slice(&[0x41, 0xFF, 0xFF]); // type 1 on csid 65599
    wide.extend_from_slice(&[0, 0, 1, 0, 0, 4, 3, 0, 0, 0, 2]);
    cases.push(("3-byte basic header csid 65599", wide));

    // Type 1, 2 and 3 chunks on streams with no previous header.
    cases.push(("type-3 chunk without prior header", {
        let mut v = vec![0xC3];
        v.extend(rng.bytes(200));
        v
    }));
    cases.push(("type-1 chunk without prior header", {
        let mut v = vec![0x45, 0, 0, 1, 0, 0, 10, 20];
        v.extend(rng.bytes(10));
        v
    }));
    cases.push(("type-2 chunk without prior header", {
        let mut v = vec![0x86, 0, 0, 1];
        v.extend(rng.bytes(10));
        v
    }));

    // A type-2 header whose 0xFFFFFF delta promises an extended timestamp
    // smaller than 0xFFFFFF.
    cases.push(("extended timestamp below 0xFFFFFF", {
        let mut v = chunked(3, 3, 0, &[0, 0, 0, 1], 128);
        v.extend_from_slice(&[0x83, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0]);
        v
    }));

    // Half of a 200-byte message on csid 3, then a short message on csid 4.
    cases.push(("interleaved chunk streams", {
        let mut v = vec![3, 0, 0, 0, 0, 0, 200, 18, 0, 0, 0, 0];
        v.extend(rng.bytes(128));
        v.extend(chunked(4, 3, 0, &[0, 0, 0, 1], 128));
        v
    }));

    // Random AMF0 garbage as command messages, and random message types.
    for i in 0..20 {
        let mut payload = rng.junk(0, 120);
        if i % 2 == 0 && !payload.is_empty() {
            // Start like a real command so the parser goes deeper.
            payload.splice(0..0, amf_str("connect"));
        }
        let type_id = if i < 15 { 20 } else { rng.below(32) as u8 };
        cases.push(("random AMF command", chunked(3, type_id, 0, &payload, 128)));
    }
    // Commands with wrong argument types and shapes.
    cases.push((
        "connect with non-object",
        command(&[amf_str("connect"), amf_num(1.0), amf_num(7.0)], 0),
    ));
    cases.push((
        "connect without app",
        command(&[amf_str("connect"), amf_num(1.0), amf_obj(&[])], 0),
    ));
    cases.push((
        "publish before connect",
        [create_stream_cmd(), publish_cmd(&key("early"))].concat(),
    ));
    cases.push((
        "AMF string longer than message",
        chunked(3, 20, 0, &[2, 0xFF, 0xFF, b'c'], 128),
    ));

    cases
        .into_iter()
        .enumerate()
        .map(|(i, (name, bytes))| (format!("rtmp chunks #{i}: {name}"), bytes))
        .collect()
}

/// Handshake, send `bytes`, linger briefly, hang up.
pub(crate) async fn rtmp_after_handshake(addr: SocketAddr, seed: u64, bytes: Vec<u8>) -> Findings {
    let mut rng = Rng::new(seed);
    let Some(mut s) = rtmp_handshake(addr, &mut rng).await else {
        return vec!["handshake failed".into()];
    };
    send(&mut s, &bytes).await;
    read_answer(&mut s, Duration::from_millis(300), None).await;
    Vec::new()
}

pub(crate) async fn rtmp_wrong_app_and_bad_key(addr: SocketAddr) -> Findings {
    let mut f = Vec::new();
    let mut rng = Rng::new(0x5eed_0005);
    // A connect to another application is refused and the session closed.
    if let Some(mut s) = rtmp_handshake(addr, &mut rng).await {
        send(&mut s, &connect_cmd("not-live")).await;
        let a = read_answer(&mut s, READ_LIMIT, None).await;
        if !a.closed || a.contains(b"NetConnection.Connect.Success") {
            f.push("connect to wrong app not refused and closed".into());
        }
    }
    // Bad keys: refused with BadName, then closed; never Publish.Start.
    let expired = livecdn_shared::auth::sign_key(support::SECRET.as_bytes(), "good", 1);
    let forged = key("good").replace('.', "x");
    let other_secret = livecdn_shared::auth::sign_key(b"another-secret-entirely", "good", u64::MAX);
    let long = "k".repeat(60_000);
    for bad in [
        "nonsense",
        "",
        "good.1.00",
        expired.as_str(),
        forged.as_str(),
        other_secret.as_str(),
        "../../etc/passwd.9999999999.aa",
        long.as_str(),
    ] {
        let Some(mut s) = rtmp_connected(addr, &mut rng).await else {
            f.push("connect for bad-key publish failed".into());
            continue;
        };
        send(&mut s, &publish_cmd(bad)).await;
        let a = read_answer(&mut s, READ_LIMIT, None).await;
        if a.contains(b"NetStream.Publish.Start") {
            f.push(format!("publish with bad key {:.40?} accepted", bad));
        } else if !a.closed {
            f.push(format!("publish with bad key {:.40?} not closed", bad));
        }
    }
    // A valid key for the live stream "good" is refused (already live).
    if let Some(mut s) = rtmp_connected(addr, &mut rng).await {
        send(&mut s, &publish_cmd(&key("good"))).await;
        let a = read_answer(&mut s, READ_LIMIT, None).await;
        if a.contains(b"NetStream.Publish.Start") {
            f.push("second publisher took over the live stream good".into());
        }
    }
    f
}

/// FLV bodies: crafted headers with random tails, and pure noise.
pub(crate) fn flv_body(rng: &mut Rng, i: usize) -> (u8, Vec<u8>) {
    let tail = rng.junk(0, 600);
    let head: &[u8] = match i % 10 {
        0 => &[0x17, 0x00, 0, 0, 0],          // AVC sequence header
        1 => &[0x17, 0x01, 0xFF, 0xFF, 0xFF], // AVC NALUs, cts -1
        2 => &[0x27, 0x01, 0x7F, 0xFF, 0xFF], // inter frame, huge cts
        3 => &[
            0x17, 0x00, 0, 0, 0, 1, 0x64, 0, 0x1F, 0xFF, 0xE1, 0xFF, 0xFF,
        ],
        4 => &[0x1C, 0x00], // HEVC-ish codec id 12
        5 => &[0x97, 0x00], // enhanced RTMP header bit
        6 => &[],           // empty body
        7 => &[0x17, 0x02], // end of sequence
        _ => &[],           // pure noise
    };
    (9, [head, &tail].concat())
}

pub(crate) fn audio_body(rng: &mut Rng, i: usize) -> (u8, Vec<u8>) {
    let tail = rng.junk(0, 300);
    let head: &[u8] = match i % 5 {
        0 => &[0xAF, 0x00],             // AAC sequence header
        1 => &[0xAF, 0x00, 0xF8, 0xFF], // ASC with escape object type
        2 => &[0xAF, 0x01],             // AAC raw
        3 => &[0x2F],                   // MP3
        _ => &[],
    };
    (8, [head, &tail].concat())
}

pub(crate) async fn rtmp_media_before_and_after_publish(addr: SocketAddr) -> Findings {
    let mut f = Vec::new();
    let mut rng = Rng::new(0x5eed_0006);
    // Before publish: rml_rtmp drops media for a stream that is not
    // publishing (no event reaches the origin), so the session may stay
    // open; nothing may be packaged and nothing may panic.
    for i in 0..5 {
        let Some(mut s) = rtmp_connected(addr, &mut rng).await else {
            f.push("connect for media-before-publish failed".into());
            continue;
        };
        for j in 0..10 {
            let (t, body) = if j % 2 == 0 {
                flv_body(&mut rng, i + j)
            } else {
                audio_body(&mut rng, i + j)
            };
            send(&mut s, &chunked(4, t, 1, &body, 128)).await;
        }
        read_answer(&mut s, Duration::from_millis(200), None).await;
    }
    // After publish: each connection publishes its own stream and then
    // sends bad media; it may be closed, others must not notice.
    let mut accepted = 0;
    for i in 0..30 {
        let stream = format!("evil{i}");
        let Some(mut s) = rtmp_publishing(addr, &mut rng, &key(&stream)).await else {
            continue;
        };
        accepted += 1;
        for j in 0..20 {
            let (t, body) = if j % 3 == 2 {
                audio_body(&mut rng, i + j)
            } else {
                flv_body(&mut rng, i + j)
            };
            let csid = if t == 9 { 6 } else { 4 };
            if !send(&mut s, &chunked(csid, t, 1, &body, 128)).await {
                break;
            }
        }
        read_answer(&mut s, Duration::from_millis(100), None).await;
    }
    if accepted < 25 {
        f.push(format!("only {accepted}/30 evil publishes were accepted"));
    }
    f
}

pub(crate) async fn rtmp_idle_flood(addr: SocketAddr) -> Findings {
    let mut conns = Vec::new();
    for _ in 0..200 {
        if let Some(s) = connect(addr).await {
            conns.push(s);
        }
    }
    let mut f = Vec::new();
    if conns.len() < 200 {
        f.push(format!(
            "only {}/200 idle connections accepted",
            conns.len()
        ));
    }
    drop(conns);
    // Past the per-address cap the origin closed the rest at accept; the
    // slots it did give come back once it sees the closes. Wait for that
    // (bounded) so the next attack starts from a clean slate.
    let mut rng = Rng::new(0x5eed_000b);
    let deadline = Instant::now() + Duration::from_secs(5);
    while rtmp_handshake(addr, &mut rng).await.is_none() {
        if Instant::now() > deadline {
            f.push("no handshake possible 5 s after the idle flood ended".into());
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    f
}

/// Last RTMP attack: deeply nested AMF0 in a command message. rml_amf0's
/// parser recurses once per level with no depth limit.
pub(crate) async fn rtmp_amf_nesting(addr: SocketAddr) -> Findings {
    let mut rng = Rng::new(0x5eed_000a);
    let mut f = Vec::new();
    let levels = 250_000;
    let mut objects = [amf_str("connect"), amf_num(1.0)].concat();
    for _ in 0..levels {
        objects.extend_from_slice(&[0x03, 0x00, 0x01, b'a']);
    }
    let mut arrays = [amf_str("connect"), amf_num(1.0)].concat();
    for _ in 0..levels {
        arrays.extend_from_slice(&[0x0A, 0, 0, 0, 1]);
    }
    for (name, payload) in [("objects", objects), ("strict arrays", arrays)] {
        let Some(mut s) = rtmp_handshake(addr, &mut rng).await else {
            f.push(format!("nested {name}: handshake failed"));
            continue;
        };
        let mut bytes = set_chunk_size(1 << 24);
        bytes.extend(chunked(3, 20, 0, &payload, 1 << 24));
        send(&mut s, &bytes).await;
        read_answer(&mut s, Duration::from_secs(2), None).await;
    }
    f
}

// ---------------------------------------------------------------------------
