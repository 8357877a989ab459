#![allow(clippy::unwrap_used)]

use super::*;

/// A format-0 chunk header on `csid` for a message of `len` bytes.
fn header0(csid: u8, ts: u32, len: u32, kind: u8) -> Vec<u8> {
    let mut v = vec![csid];
    v.extend_from_slice(&ts.to_be_bytes()[1..]);
    v.extend_from_slice(&len.to_be_bytes()[1..]);
    v.push(kind);
    v.extend_from_slice(&1u32.to_le_bytes());
    v
}

fn amf_string(s: &str) -> Vec<u8> {
    let mut v = vec![0x02];
    v.extend_from_slice(&(s.len() as u16).to_be_bytes());
    v.extend_from_slice(s.as_bytes());
    v
}

fn connect_payload() -> Vec<u8> {
    let mut m = amf_string("connect");
    m.extend_from_slice(&[0x00, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0]);
    m.extend_from_slice(&[0x03, 0, 3]);
    m.extend_from_slice(b"app");
    m.extend_from_slice(&amf_string("live"));
    m.extend_from_slice(&[0, 0, 9]);
    m
}

/// A whole message split into chunks of `chunk` bytes, as encoders send it.
fn message(csid: u8, kind: u8, payload: &[u8], chunk: usize) -> Vec<u8> {
    let mut out = header0(csid, 0, payload.len() as u32, kind);
    for (i, c) in payload.chunks(chunk).enumerate() {
        if i > 0 {
            out.push(0xC0 | csid);
        }
        out.extend_from_slice(c);
    }
    out
}

#[test]
fn a_normal_publish_session_passes_in_any_split() {
    let mut s = Vec::new();
    s.extend(message(2, 1, &4096u32.to_be_bytes(), 128));
    s.extend(message(3, 20, &connect_payload(), 128));
    s.extend(message(6, 9, &vec![0x17; 10_000], 4096));
    // (The publish was accepted by here: media messages of full size.)
    s.extend(message(4, 8, &vec![0xAF; 300], 4096));
    // Type-1 and type-2 headers continuing a stream with a prior header.
    let mut t1 = vec![0x40 | 6, 0, 0, 33];
    t1.extend_from_slice(&500u32.to_be_bytes()[1..]);
    t1.push(9);
    t1.extend(vec![0x27; 500]);
    s.extend(t1);
    s.extend([0x80 | 6, 0, 0, 33]);
    s.extend(vec![0x27; 500]);
    assert_eq!(ChunkGuard::authorised().inspect(&s), Ok(()));
    let mut g = ChunkGuard::authorised();
    for piece in s.chunks(7) {
        assert_eq!(g.inspect(piece), Ok(()));
    }
}

#[test]
fn deeply_nested_connect_is_refused() {
    let mut p = amf_string("connect");
    p.extend_from_slice(&[0x00, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0]);
    for _ in 0..5000 {
        p.extend_from_slice(&[0x03, 0x00, 0x01, b'a']);
    }
    let mut s = message(2, 1, &65536u32.to_be_bytes(), 128);
    s.extend(message(3, 20, &p, 65536));
    assert!(matches!(
        ChunkGuard::authorised().inspect(&s),
        Err(GuardError::Amf0(_))
    ));
}

#[test]
fn the_inputs_that_broke_the_session_parser_are_refused() {
    // Type-2 chunk with delta 0xFFFFFF and extended timestamp 0.
    let mut s = message(3, 3, &1u32.to_be_bytes(), 128);
    s.extend([0x83, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0]);
    assert_eq!(
        ChunkGuard::new().inspect(&s),
        Err(GuardError::ExtendedTimestamp(0))
    );
    // A message started on stream 3 interrupted by stream 4.
    let mut s = header0(3, 0, 200, 18);
    s.extend(vec![0x05; 128]);
    s.extend(header0(4, 0, 4, 3));
    assert_eq!(
        ChunkGuard::new().inspect(&s),
        Err(GuardError::Interleaved { open: 3, next: 4 })
    );
    // A command with one AMF value.
    let s = message(3, 20, &[0x02, 0x00, 0x01, b'c'], 128);
    assert_eq!(
        ChunkGuard::new().inspect(&s),
        Err(GuardError::ShortCommand(1))
    );
    // Continuation with no header.
    assert_eq!(
        ChunkGuard::new().inspect(&[0xC3, 1, 2]),
        Err(GuardError::NoPriorHeader(3))
    );
    // Absurd lengths and chunk sizes.
    assert!(matches!(
        ChunkGuard::new().inspect(&header0(3, 0, 0xFF_FFFF, 20)),
        Err(GuardError::TooLong { .. })
    ));
    for size in [0u32, 0x7FFF_FFFF] {
        let s = message(2, 1, &size.to_be_bytes(), 128);
        assert_eq!(
            ChunkGuard::new().inspect(&s),
            Err(GuardError::ChunkSize(size))
        );
    }
    // Control message of the wrong size.
    assert!(matches!(
        ChunkGuard::new().inspect(&header0(2, 0, 100, 5)),
        Err(GuardError::BadControl { .. })
    ));
}

#[test]
fn amf3_flagged_messages_are_checked_as_the_session_decodes_them() {
    // Found by fuzzing: an "AMF3" command whose first byte is not 0x00 is
    // decoded whole by the session; here that byte is an object-end marker,
    // so the session sees no value at all (and used to panic).
    let mut p = vec![0x09];
    p.extend(amf_string("connect"));
    p.extend_from_slice(&[0x00, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0, 0x05]);
    assert_eq!(
        ChunkGuard::new().inspect(&message(3, 17, &p, 128)),
        Err(GuardError::ShortCommand(0))
    );
    // With the customary 0x00 in front, the rest is the command.
    p[0] = 0x00;
    assert_eq!(ChunkGuard::new().inspect(&message(3, 17, &p, 128)), Ok(()));
    // Values after a top-level object end are never decoded: not counted.
    let mut q = amf_string("connect");
    q.push(0x09);
    q.extend_from_slice(&[0x05, 0x05]);
    assert_eq!(
        ChunkGuard::new().inspect(&message(3, 20, &q, 128)),
        Err(GuardError::ShortCommand(1))
    );
    // An "AMF3" data message is decoded from its first byte: nesting that
    // starts there is seen.
    let mut d = Vec::new();
    for _ in 0..100 {
        d.extend_from_slice(&[0x03, 0x00, 0x01, b'a']);
    }
    assert!(matches!(
        ChunkGuard::authorised().inspect(&message(3, 15, &d, 128)),
        Err(GuardError::Amf0(_))
    ));
}

#[test]
fn before_authorisation_no_message_may_declare_more_than_a_few_kib() {
    // The largest length RTMP can declare (24 bits, 16 MiB) and 1 MiB, as
    // video, audio and a command: refused at the header, before any payload
    // byte arrives, so nothing downstream reserves room for them.
    for len in [0xFF_FFFF, 1024 * 1024, MAX_PRE_AUTH + 1] {
        for kind in [9u8, 8, 20] {
            assert_eq!(
                ChunkGuard::new().inspect(&header0(6, 0, len, kind)),
                Err(GuardError::TooLong {
                    kind,
                    len,
                    max: MAX_PRE_AUTH
                }),
                "len {len} kind {kind}"
            );
        }
    }
    // A normal connect fits; after authorise() a 1 MiB keyframe does too,
    // and the media limit still holds.
    let mut g = ChunkGuard::new();
    assert_eq!(g.inspect(&message(3, 20, &connect_payload(), 128)), Ok(()));
    g.authorise();
    assert_eq!(g.inspect(&header0(6, 0, 1024 * 1024, 9)), Ok(()));
    assert!(matches!(
        ChunkGuard::authorised().inspect(&header0(6, 0, 0xFF_FFFF, 9)),
        Err(GuardError::TooLong { max, .. }) if max == 8 * 1024 * 1024
    ));
}

#[test]
fn too_many_chunk_streams_are_refused() {
    let mut s = Vec::new();
    for i in 0..70u8 {
        s.extend([0x00, i]); // 2-byte basic header, csid 64 + i, format 0
        s.extend_from_slice(&[0, 0, 0, 0, 0, 4, 3, 1, 0, 0, 0]);
        s.extend_from_slice(&[0, 0, 0, 1]);
    }
    assert_eq!(
        ChunkGuard::new().inspect(&s),
        Err(GuardError::TooManyStreams)
    );
}

#[test]
fn fuzz_body_runs_on_seeds_and_mutations() {
    let mut seeds = vec![
        message(3, 20, &connect_payload(), 128),
        vec![],
        vec![0xC3],
        message(2, 1, &4096u32.to_be_bytes(), 128),
    ];
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut rnd = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for i in 0..3000 {
        let base = seeds[i % seeds.len()].clone();
        let mut m = base;
        for _ in 0..(rnd() % 4) {
            if m.is_empty() {
                m.push(rnd() as u8);
            } else {
                let at = (rnd() as usize) % m.len();
                m[at] = rnd() as u8;
            }
        }
        if rnd() % 5 == 0 {
            m.extend((0..rnd() % 64).map(|_| rnd() as u8));
        }
        fuzz_chunk_guard(&m);
        if i % 500 == 0 {
            seeds.push(m);
        }
    }
}
