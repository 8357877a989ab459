//! Reading CMAF fragments back: where each sample's bytes are and its
//! timing, from the `moof` boxes (decoded by mp4-atom). The recorder's
//! rebuild uses it for segments a crash left out of its journal, the
//! progressive MP4 for its sample tables, WebRTC to turn the chunks it is
//! fed back into frames.
//!
//! Bytes cut short (a crash mid-write, a truncated object) are an error,
//! not fewer samples.

use mp4_atom::{Decode, Moof};

/// One sample of a segment file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SampleRef {
    /// Decode time, ticks (the fragment's `tfdt` plus the durations before
    /// it in the fragment).
    pub dts: u64,
    /// Duration as written. For video that is an estimate (the packager
    /// writes a frame before the next one arrives), so the next sample's
    /// `dts` is the better measure where there is one.
    pub duration: u32,
    pub size: u32,
    /// Composition offset (pts - dts), ticks.
    pub cts: i32,
    pub sync: bool,
    /// Where its bytes start in the file.
    pub offset: usize,
}

/// A segment file's samples in decode order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scanned {
    /// Decode time of the first sample, ticks.
    pub start: u64,
    /// Sum of the sample durations, ticks.
    pub duration: u64,
    pub samples: Vec<SampleRef>,
}

/// Why a segment file could not be read back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScanError {
    #[error("file ends inside a box at byte {0}")]
    Torn(usize),
    #[error("not a CMAF fragment: {0}")]
    Invalid(String),
    #[error("no samples")]
    Empty,
}

/// `trun` sample flag: sample_is_non_sync_sample.
const NON_SYNC: u32 = 0x0001_0000;

/// Scans `data`, a whole segment file (`moof`+`mdat` pairs).
pub fn scan(data: &[u8]) -> Result<Scanned, ScanError> {
    let mut pos = 0usize;
    let mut start = None;
    let mut samples = Vec::new();
    let mut duration = 0u64;
    while pos < data.len() {
        let (header, size) = box_size(data, pos)?;
        let end = pos.checked_add(size).ok_or(ScanError::Torn(pos))?;
        if end > data.len() || size < header {
            return Err(ScanError::Torn(pos));
        }
        if &data[pos + 4..pos + 8] == b"moof" {
            let moof = Moof::decode(&mut &data[pos..end])
                .map_err(|e| ScanError::Invalid(e.to_string()))?;
            for traf in &moof.traf {
                let base = traf.tfdt.as_ref().map(|t| t.base_media_decode_time);
                if start.is_none() {
                    start = base;
                }
                let mut dts = base.unwrap_or_else(|| start.unwrap_or(0) + duration);
                for trun in &traf.trun {
                    let first = trun.data_offset.unwrap_or(0);
                    let mut at = usize::try_from(first)
                        .ok()
                        .and_then(|o| pos.checked_add(o))
                        .ok_or_else(|| ScanError::Invalid("negative data offset".into()))?;
                    for e in trun.samples.iter() {
                        let size = e.size.or(traf.tfhd.default_sample_size).unwrap_or(0);
                        let dur = e
                            .duration
                            .or(traf.tfhd.default_sample_duration)
                            .unwrap_or(0);
                        let flags = e.flags.or(traf.tfhd.default_sample_flags).unwrap_or(0);
                        let next = at.checked_add(size as usize).ok_or(ScanError::Torn(at))?;
                        if next > data.len() {
                            return Err(ScanError::Torn(at));
                        }
                        samples.push(SampleRef {
                            dts,
                            duration: dur,
                            size,
                            cts: e.cts.unwrap_or(0).clamp(i32::MIN.into(), i32::MAX.into()) as i32,
                            sync: flags & NON_SYNC == 0,
                            offset: at,
                        });
                        duration += u64::from(dur);
                        dts += u64::from(dur);
                        at = next;
                    }
                }
            }
        }
        pos = end;
    }
    if samples.is_empty() {
        return Err(ScanError::Empty);
    }
    Ok(Scanned {
        start: start.unwrap_or(0),
        duration,
        samples,
    })
}

/// Header length and total size of the box at `pos`.
fn box_size(data: &[u8], pos: usize) -> Result<(usize, usize), ScanError> {
    let word = |at: usize, n: usize| data.get(at..at + n).ok_or(ScanError::Torn(pos));
    let small = u32::from_be_bytes(word(pos, 4)?.try_into().map_err(|_| ScanError::Torn(pos))?);
    word(pos + 4, 4)?;
    match small {
        0 => Ok((8, data.len() - pos)),
        1 => {
            let large = word(pos + 8, 8)?;
            let large = u64::from_be_bytes(large.try_into().map_err(|_| ScanError::Torn(pos))?);
            Ok((
                16,
                usize::try_from(large).map_err(|_| ScanError::Torn(pos))?,
            ))
        }
        n => Ok((8, n as usize)),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
    use super::*;
    use crate::cmaf::{chunk, Sample};
    use bytes::Bytes;

    fn segment() -> (Vec<u8>, Vec<Bytes>) {
        let payloads: Vec<Bytes> = (0..5u8)
            .map(|i| Bytes::from(vec![i; 10 + i as usize]))
            .collect();
        let mut file = Vec::new();
        for (i, p) in payloads.iter().enumerate() {
            let s = Sample {
                duration: 3000,
                size: p.len() as u32,
                cts_offset: if i == 1 { -3000 } else { 6000 },
                sync: i == 0,
            };
            let c = chunk(
                i as u32 + 1,
                900_000 + 3000 * i as u64,
                &[s],
                std::slice::from_ref(p),
            )
            .unwrap();
            for b in c {
                file.extend_from_slice(&b);
            }
        }
        (file, payloads)
    }

    #[test]
    fn finds_every_sample_with_its_timing_and_bytes() {
        let (file, payloads) = segment();
        let s = scan(&file).unwrap();
        assert_eq!((s.start, s.duration, s.samples.len()), (900_000, 15_000, 5));
        for (r, p) in s.samples.iter().zip(&payloads) {
            assert_eq!(&file[r.offset..r.offset + r.size as usize], &p[..]);
        }
        assert!(s.samples[0].sync && !s.samples[1].sync);
        assert_eq!((s.samples[0].cts, s.samples[1].cts), (6000, -3000));
        let dts: Vec<u64> = s.samples.iter().map(|x| x.dts).collect();
        assert_eq!(dts, [900_000, 903_000, 906_000, 909_000, 912_000]);
    }

    #[test]
    fn a_torn_file_is_an_error_at_every_cut() {
        let (file, _) = segment();
        for cut in 1..file.len() {
            let r = scan(&file[..cut]);
            // A cut exactly between two chunks is a shorter, whole file.
            if let Ok(s) = r {
                let last = s.samples.last().unwrap();
                assert_eq!(last.offset + last.size as usize, cut, "cut {cut}");
            }
        }
        assert_eq!(scan(&[]), Err(ScanError::Empty));
        assert!(scan(b"\0\0\0\x10moofjunkjunk").is_err());
    }
}
