//! Reading back a recorded CMAF segment: the scan itself is
//! [`livecdn_shared::cmaf::scan`]; here is the fuzz body for what a start
//! reads back from disk.

pub use livecdn_shared::cmaf::{scan, SampleRef, ScanError, Scanned};

/// Fuzz body for what a start reads back from disk after a crash or a
/// corrupted disk: any bytes as a segment file, and as a journal. Must
/// never panic.
pub fn fuzz_recorded(data: &[u8]) {
    if let Ok(s) = scan(data) {
        for x in &s.samples {
            // Every sample the scan reports lies inside the file.
            assert!(x.offset + x.size as usize <= data.len());
        }
    }
    let meta = super::journal::RecordingMeta {
        stream: "fuzz".into(),
        id: "fuzz".into(),
        started_ms: 0,
    };
    let text = String::from_utf8_lossy(data);
    let (mut rec, used) = super::index::Recording::rebuild(meta, &text);
    assert!(used <= text.len());
    let names: Vec<String> = rec.renditions.iter().map(|r| r.meta.name.clone()).collect();
    for name in names {
        let _ = rec.recover_segment(&name, u64::MAX, data);
    }
    let _ = rec.media_end_ms();
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
    use super::*;
    use bytes::Bytes;
    use livecdn_shared::cmaf::{chunk, Sample};

    /// A segment file of three one-frame chunks.
    fn segment() -> Vec<u8> {
        let mut file = Vec::new();
        for i in 0..3u8 {
            let p = Bytes::from(vec![i; 12]);
            let s = Sample {
                duration: 3000,
                size: 12,
                cts_offset: 0,
                sync: i == 0,
            };
            for b in chunk(u32::from(i) + 1, 3000 * u64::from(i), &[s], &[p]).unwrap() {
                file.extend_from_slice(&b);
            }
        }
        file
    }

    #[test]
    fn fuzz_recorded_survives_mutations() {
        let file = segment();
        let journal = b"{\"event\":\"rendition\",\"name\":\"source\",\"kind\":\"video\",\"codecs\":\"avc1\",\"timescale\":0}\n{\"event\":\"segment\",\"rendition\":\"source\",\"msn\":18446744073709551615,\"gen\":0,\"start\":18446744073709551615,\"duration\":18446744073709551615,\"pdt_ms\":18446744073709551615,\"discontinuity\":false,\"bytes\":1}\n";
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for seed in [&file[..], &journal[..]] {
            for i in 0..2000 {
                let mut m = seed.to_vec();
                for _ in 0..(i % 6) {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let at = (x as usize) % m.len();
                    m[at] = (x >> 40) as u8;
                }
                if i % 5 == 0 {
                    m.truncate((x as usize) % m.len());
                }
                fuzz_recorded(&m);
            }
        }
    }
}
