//! Fuzz body for RTMP input as the origin takes it: the handshake, then the
//! chunk stream through the [`ChunkGuard`] into rml_rtmp's `ServerSession`,
//! before any publish is authorised (what an anonymous client reaches).
//!
//! The session in `session.rs` also catches a panic inside rml_rtmp, so one
//! bad client cannot take the process down; here a panic is a finding, to
//! be fixed in the guard.

use livecdn_shared::rtmp::ChunkGuard;
use rml_rtmp::handshake::{Handshake, PeerType};
use rml_rtmp::sessions::{ServerSession, ServerSessionConfig};

/// Any bytes as the handshake, and as the chunk stream after it (split in
/// reads of a size the first byte picks). Must never panic.
pub fn fuzz_rtmp_session(data: &[u8]) {
    let mut hs = Handshake::new(PeerType::Server);
    let _ = hs.process_bytes(data);
    let Ok((mut session, _)) = ServerSession::new(ServerSessionConfig::new()) else {
        return;
    };
    let mut guard = ChunkGuard::new();
    let read = usize::from(data.first().copied().unwrap_or(0)).max(1) * 16;
    for chunk in data.get(1..).unwrap_or_default().chunks(read) {
        if guard.inspect(chunk).is_err() {
            return;
        }
        if session.handle_input(chunk).is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A connect command as ffmpeg sends it, after the chunk size.
    fn connect() -> Vec<u8> {
        let mut p = vec![0x02, 0x00, 0x07];
        p.extend_from_slice(b"connect");
        p.extend_from_slice(&[0x00, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0, 0x03]);
        for (k, v) in [("app", "live"), ("type", "nonprivate")] {
            p.extend_from_slice(&(k.len() as u16).to_be_bytes());
            p.extend_from_slice(k.as_bytes());
            p.push(0x02);
            p.extend_from_slice(&(v.len() as u16).to_be_bytes());
            p.extend_from_slice(v.as_bytes());
        }
        p.extend_from_slice(&[0, 0, 9]);
        let mut m = vec![0x03, 0, 0, 0];
        m.extend_from_slice(&(p.len() as u32).to_be_bytes()[1..]);
        m.push(20);
        m.extend_from_slice(&[0, 0, 0, 0]);
        // Default chunk size 128: continuation headers every 128 bytes.
        for (i, c) in p.chunks(128).enumerate() {
            if i > 0 {
                m.push(0xC3);
            }
            m.extend_from_slice(c);
        }
        m
    }

    /// Inputs `fuzz/run.sh` found, replayed on every test run.
    const FOUND: [&[u8]; 1] = [
        // rtmp_session: a chunk whose message rml_rtmp's parser panics on.
        &[
            7, 2, 0, 0, 0, 0, 0, 14, 17, 0, 0, 7, 2, 9, 1, 0, 0, 7, 2, 0, 0, 216, 0, 0, 4, 1, 0, 0,
            0, 0, 37, 0, 0, 0, 1, 0, 0, 0, 0, 0, 16, 0,
        ],
    ];

    #[test]
    fn inputs_fuzzing_found_are_handled() {
        for input in FOUND {
            fuzz_rtmp_session(input);
        }
    }

    #[test]
    fn fuzz_rtmp_session_survives_seeds_and_mutations() {
        let mut seed = vec![7u8];
        seed.extend(connect());
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for i in 0..3000 {
            let mut m = seed.clone();
            for _ in 0..(i % 5) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let at = (x as usize) % m.len();
                m[at] = (x >> 40) as u8;
            }
            if i % 7 == 0 {
                m.truncate((x as usize) % m.len());
            }
            fuzz_rtmp_session(&m);
        }
        // A handshake-sized prefix of C0+C1 too.
        let mut c0c1 = vec![3u8];
        c0c1.extend((0..1536u32).map(|i| i as u8));
        fuzz_rtmp_session(&c0c1);
    }
}
