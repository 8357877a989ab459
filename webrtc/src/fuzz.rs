//! The fuzz body for what a WHEP viewer sends: any bytes as an SDP offer
//! (parsed and negotiated by str0m), as a trickle ICE fragment, and as a
//! CMAF chunk an edge could be pushed. Must never panic. The unit test
//! runs it over seeds and mutations; `fuzz/` runs it under libFuzzer.

use crate::feed::Feed;
use crate::session::Session;
use crate::video::VideoTrack;
use crate::whep::candidate_lines;
use bytes::Bytes;
use std::time::Instant;

/// One input, every way a WHEP server reads network bytes.
pub fn fuzz_whep(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let now = Instant::now();
    let candidates = [std::net::SocketAddr::from(([127, 0, 0, 1], 9))];
    if let Ok((mut s, answer)) =
        Session::accept("f".into(), "f".into(), &text, &candidates, None, now)
    {
        assert!(answer.starts_with("v=0"));
        let mut out = Vec::new();
        s.drain(&mut out);
    }
    for line in candidate_lines(&text) {
        let _ = str0m::Candidate::from_sdp_string(&line);
    }
    let mut feed = Feed::new();
    // A fixed, valid record: the chunk is the input.
    let avcc = Bytes::from_static(&[
        1, 0x42, 0xc0, 0x1e, 0xff, 0xe1, 0, 4, 0x67, 0x42, 0xc0, 0x1e, 1, 0, 2, 0x68, 0xce,
    ]);
    if let Ok(t) = VideoTrack::from_record(90_000, avcc) {
        feed.set_track(t);
        if let Ok(frames) = feed.chunk(&[Bytes::copy_from_slice(data)], now) {
            for f in frames {
                assert!(f.data.len() >= 4);
            }
        }
    }
    let _ = VideoTrack::from_init(data);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// xorshift: deterministic mutations, so a failure reproduces.
    fn mutations(seed: &[u8], n: usize, mut x: u64, out: &mut Vec<Vec<u8>>) {
        for i in 0..n {
            let mut m = seed.to_vec();
            for _ in 0..(i % 7) + 1 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                if m.is_empty() {
                    break;
                }
                let at = (x as usize) % m.len();
                m[at] = (x >> 40) as u8;
            }
            if i % 4 == 0 && !m.is_empty() {
                m.truncate((x as usize) % m.len());
            }
            out.push(m);
        }
    }

    #[test]
    fn fuzz_whep_survives_offers_fragments_and_chunks_mutated() {
        let offer = b"v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n\
a=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n\
a=fingerprint:sha-256 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF\r\n\
a=setup:actpass\r\nm=video 9 UDP/TLS/RTP/SAVPF 102\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=recvonly\r\na=rtcp-mux\r\n\
a=rtpmap:102 H264/90000\r\na=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f\r\n\
a=candidate:1 1 udp 2122260223 127.0.0.1 5000 typ host\r\n";
        static SAMPLE: [u8; 6] = [0, 0, 0, 2, 0x65, 1];
        let sample = &SAMPLE;
        let s = livecdn_shared::cmaf::Sample {
            duration: 3000,
            size: sample.len() as u32,
            cts_offset: 0,
            sync: true,
        };
        let chunk = livecdn_shared::cmaf::chunk(1, 0, &[s], &[Bytes::from_static(sample)])
            .map(|c| c.concat())
            .unwrap_or_default();
        // The seed offer is a whole one: the mutations start from an
        // accepted negotiation.
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], 9));
        let seed = String::from_utf8_lossy(offer);
        let accepted =
            Session::accept("s".into(), "s".into(), &seed, &[addr], None, Instant::now());
        assert!(accepted.is_ok(), "{:?}", accepted.err());
        let mut inputs = Vec::new();
        for (i, seed) in [&offer[..], &chunk[..]].into_iter().enumerate() {
            inputs.push(seed.to_vec());
            mutations(seed, 400, 0x9E37_79B9_7F4A_7C15 + i as u64, &mut inputs);
        }
        for input in &inputs {
            fuzz_whep(input);
        }
    }
}
