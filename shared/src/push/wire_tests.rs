//! Unit tests of the push wire format: round trips, truncation, garbage.

#![allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]

use super::*;
use crate::bytes_reader::fuzz_input::exercise;

fn samples() -> Vec<Message> {
    vec![
        Message::Subscribe {
            stream: "cam".into(),
        },
        Message::Unsubscribe {
            stream: "cam_2-b".into(),
        },
        Message::ViewerReport {
            stream: "cam".into(),
            viewers: 123_456,
        },
        Message::Object(ObjectHeader {
            kind: PushKind::Part,
            path: "/live/cam/source/3.2.m4s".into(),
            msn: 3,
            part: Some(2),
            content_type: "video/mp4".into(),
        }),
        Message::Object(ObjectHeader {
            kind: PushKind::Init,
            path: "/live/cam/audio/init.mp4".into(),
            msn: u64::MAX,
            part: None,
            content_type: String::new(),
        }),
        Message::Hello {
            credential: "edge-1.2000000000.0123456789abcdef".into(),
        },
        Message::Purge {
            stream: "cam".into(),
        },
    ]
}

#[test]
fn a_uni_stream_is_an_object_or_a_lone_purge() {
    let purge = encoded(&Message::Purge {
        stream: "cam".into(),
    });
    assert_eq!(decode_uni(&purge).unwrap(), Uni::Purge("cam".into()));
    // A purge with bytes after it is not a purge, nor an object.
    let mut longer = purge.to_vec();
    longer.extend_from_slice(b"body");
    assert!(decode_uni(&Bytes::from(longer)).is_err());
    let header = ObjectHeader {
        kind: PushKind::Part,
        path: "/live/cam/source/3.2.m4s".into(),
        msn: 3,
        part: Some(2),
        content_type: "video/mp4".into(),
    };
    let mut object = encoded(&Message::Object(header.clone())).to_vec();
    object.extend_from_slice(b"media");
    assert_eq!(
        decode_uni(&Bytes::from(object)).unwrap(),
        Uni::Object(header, Bytes::from_static(b"media"))
    );
    assert!(matches!(
        encode(
            &Message::Purge {
                stream: "../x".into()
            },
            &mut Vec::new()
        ),
        Err(WireError::StreamName)
    ));
}

fn encoded(m: &Message) -> Bytes {
    let mut v = Vec::new();
    encode(m, &mut v).unwrap();
    Bytes::from(v)
}

#[test]
fn every_message_round_trips() {
    for m in samples() {
        let b = encoded(&m);
        assert_eq!(decode(&b), Ok(Some((m, b.len()))));
    }
}

#[test]
fn a_truncated_frame_needs_more_bytes_at_every_cut() {
    for m in samples() {
        let b = encoded(&m);
        for cut in 0..b.len() {
            assert_eq!(decode(&b.slice(..cut)), Ok(None), "{m:?} cut at {cut}");
        }
    }
}

#[test]
fn frames_follow_each_other_in_one_buffer() {
    let mut v = Vec::new();
    for m in samples() {
        encode(&m, &mut v).unwrap();
    }
    let b = Bytes::from(v);
    let mut at = 0;
    let mut got = Vec::new();
    while let Some((m, used)) = decode(&b.slice(at..)).unwrap() {
        got.push(m);
        at += used;
    }
    assert_eq!(got, samples());
    assert_eq!(at, b.len());
}

#[test]
fn garbage_is_refused_with_typed_errors() {
    let cases: &[(&[u8], WireError)] = &[
        (&[0x7f, 0, 0, 0, 0], WireError::UnknownType(0x7f)),
        (&[0x01, 0, 0, 0x10, 0], WireError::FrameTooLong(4096)),
        (&[0x01, 0, 0, 0, 2, b'a', b'/'], WireError::StreamName),
        (&[0x01, 0, 0, 0, 0], WireError::StreamName),
        (
            &[0x03, 0, 0, 0, 2, 0, 1],
            ReadError::Truncated {
                needed: 4,
                available: 2,
            }
            .into(),
        ),
        (&[0x10, 0, 0, 0, 1, 9], WireError::Kind(9)),
        (&[0x04, 0, 0, 0, 0], WireError::Credential),
        (&[0x04, 0, 0, 0, 2, b'a', b' '], WireError::Credential),
        (&[0x04, 0, 0, 0, 1, 0xff], WireError::Credential),
    ];
    for (input, want) in cases {
        assert_eq!(
            decode(&Bytes::copy_from_slice(input)).as_ref(),
            Err(want),
            "{input:?}"
        );
    }
    // A bad part flag; paths without a leading '/' or too long.
    let mut obj = vec![0x10, 0, 0, 0, 10, 1];
    obj.extend_from_slice(&[0; 8]);
    obj.push(7);
    assert_eq!(decode(&Bytes::from(obj)), Err(WireError::PartFlag(7)));
    let bad_path = Message::Object(ObjectHeader {
        kind: PushKind::Part,
        path: "live/x".into(),
        msn: 0,
        part: None,
        content_type: String::new(),
    });
    assert_eq!(encode(&bad_path, &mut Vec::new()), Err(WireError::Path));
    let long = Message::Object(ObjectHeader {
        kind: PushKind::Part,
        path: format!("/{}", "a".repeat(MAX_PATH)),
        msn: 0,
        part: None,
        content_type: String::new(),
    });
    assert_eq!(encode(&long, &mut Vec::new()), Err(WireError::Path));
    let huge = Message::Hello {
        credential: "a".repeat(MAX_CREDENTIAL + 1),
    };
    assert_eq!(encode(&huge, &mut Vec::new()), Err(WireError::Credential));
}

#[test]
fn trailing_bytes_inside_a_frame_are_refused() {
    // A Subscribe whose declared body holds the name; a ViewerReport with
    // an extra byte in the name is a bad name, not ignored.
    let b = Bytes::from_static(&[0x03, 0, 0, 0, 5, 0, 0, 0, 1, b'!']);
    assert_eq!(decode(&b), Err(WireError::StreamName));
    let mut obj = encoded(&samples()[3]).to_vec();
    obj.push(0xaa);
    let len = u32::try_from(obj.len() - FRAME_HEADER).unwrap();
    obj[1..5].copy_from_slice(&len.to_be_bytes());
    assert!(matches!(
        decode(&Bytes::from(obj)),
        Err(WireError::Read(ReadError::TrailingData { remaining: 1 }))
    ));
}

#[test]
fn object_streams_split_into_header_and_body() {
    let mut v = encoded(&samples()[3]).to_vec();
    v.extend_from_slice(b"moof mdat");
    let (h, body) = decode_object(&Bytes::from(v)).unwrap();
    assert_eq!(h.path, "/live/cam/source/3.2.m4s");
    assert_eq!(&body[..], b"moof mdat");
    assert_eq!(
        decode_object(&encoded(&samples()[0])),
        Err(WireError::NotAnObject)
    );
    assert!(decode_object(&Bytes::from_static(&[0x10, 0])).is_err());
}

#[test]
fn fuzz_push_wire_survives_seeds_and_mutations() {
    let seeds: Vec<Bytes> = samples().iter().map(encoded).collect();
    let seeds: Vec<&[u8]> = seeds.iter().map(|b| &b[..]).collect();
    exercise(&seeds, 4000, fuzz_push_wire);
}
