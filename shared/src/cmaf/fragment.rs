//! CMAF chunks: `moof` + `mdat` for one LL-HLS part (or part of a part).
//!
//! Only the headers are built here. Sample payloads are `Bytes` sliced from
//! the ingest buffers; copying them into one contiguous `mdat` would cost a
//! memcpy per frame per rendition, so the caller writes the header returned
//! by [`fragment_header`] and then the untouched payloads ([`chunk`] returns
//! exactly that list).

use bytes::Bytes;

use super::boxes::BoxWriter;
use super::init::TRACK_ID;

/// One access unit as the fragment describes it. Times are in the track
/// timescale of the matching [`super::init_segment`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    /// Ticks until the next sample's decode time.
    pub duration: u32,
    /// Payload length in bytes (AVCC NAL units or one raw AAC frame).
    pub size: u32,
    /// pts - dts in ticks; negative values are legal because `trun` is v1.
    pub cts_offset: i32,
    /// Random access point (IDR for video; every AAC frame).
    pub sync: bool,
}

impl Sample {
    /// `trun` sample_flags: players seek and start parts (`INDEPENDENT=YES`)
    /// on samples without the non-sync bit.
    fn flags(&self) -> u32 {
        if self.sync {
            SAMPLE_FLAGS_SYNC
        } else {
            SAMPLE_FLAGS_NON_SYNC
        }
    }
}

/// sample_depends_on = 2 (depends on no other sample), sync.
const SAMPLE_FLAGS_SYNC: u32 = 0x0200_0000;
/// sample_depends_on = 1 (depends on others), sample_is_non_sync_sample = 1.
const SAMPLE_FLAGS_NON_SYNC: u32 = 0x0101_0000;

/// `tfhd` flags: default-base-is-moof, so `trun.data_offset` is relative to
/// this `moof` and chunks can be cut and concatenated freely (CMAF requires it).
const TFHD_DEFAULT_BASE_IS_MOOF: u32 = 0x02_0000;
/// `trun` flags: data-offset, then duration, size, flags and composition
/// offset per sample. Every field per sample keeps the writer free of
/// default-value bookkeeping; it costs 16 bytes per sample.
const TRUN_FLAGS: u32 = 0x00_0001 | 0x00_0100 | 0x00_0200 | 0x00_0400 | 0x00_0800;

/// Bytes of `moof` that do not depend on the sample count:
/// moof 8 + mfhd 16 + traf 8 + tfhd 16 + tfdt 20 + trun 20.
const MOOF_FIXED_LEN: usize = 88;
/// Bytes each sample adds to `trun`.
const TRUN_ENTRY_LEN: usize = 16;

/// The most samples one fragment can carry: `trun.data_offset` is a signed
/// 32-bit distance from the `moof` start to the first payload byte, so the
/// `moof` (16 bytes per sample) plus the 16-byte `mdat` header must fit.
pub const MAX_SAMPLES_PER_FRAGMENT: usize =
    (i32::MAX as usize - MOOF_FIXED_LEN - 16) / TRUN_ENTRY_LEN;

/// Why [`chunk`] refused its input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FragmentError {
    /// Each sample needs exactly one payload; anything else would make the
    /// `trun` describe bytes that are not there.
    #[error("{samples} samples but {payloads} payloads")]
    CountMismatch { samples: usize, payloads: usize },
    /// A sample's declared size differs from its payload, which would shift
    /// every later sample boundary and corrupt decoding.
    #[error("sample {index} declares {declared} bytes but its payload has {actual}")]
    SizeMismatch {
        index: usize,
        declared: u32,
        actual: usize,
    },
    /// More samples than `trun.data_offset` can address.
    #[error("{count} samples exceed the {max} one fragment can address")]
    TooManySamples { count: usize, max: usize },
}

/// `moof` + the `mdat` header for `samples`; the caller sends the sample
/// payloads (unchanged Bytes, zero-copy) right after these bytes.
///
/// The `mdat` header is 8 bytes, or 16 (64-bit `largesize`) in the
/// theoretical case of more than 4 GiB of payload. `trun.data_offset` points
/// at the first payload byte either way.
///
/// `samples.len()` must not exceed [`MAX_SAMPLES_PER_FRAGMENT`] (far beyond
/// any real part); [`chunk`] checks this and the payload sizes, this function
/// trusts its caller so the packager's hot path does no extra pass.
pub fn fragment_header(sequence_number: u32, base_decode_time: u64, samples: &[Sample]) -> Bytes {
    debug_assert!(samples.len() <= MAX_SAMPLES_PER_FRAGMENT);
    let payload_len: u64 = samples.iter().map(|s| u64::from(s.size)).sum();
    let mdat_small = payload_len <= u64::from(u32::MAX) - 8;
    let mdat_header_len = if mdat_small { 8 } else { 16 };

    let moof_len = MOOF_FIXED_LEN + TRUN_ENTRY_LEN * samples.len();
    let mut w = BoxWriter::with_capacity(moof_len + mdat_header_len);
    let mut data_offset_at = 0;
    w.write_box(b"moof", |w| {
        w.write_full_box(b"mfhd", 0, 0, |w| w.u32(sequence_number));
        w.write_box(b"traf", |w| {
            w.write_full_box(b"tfhd", 0, TFHD_DEFAULT_BASE_IS_MOOF, |w| w.u32(TRACK_ID));
            // v1: a 64-bit decode time never wraps (32 bits at 90 kHz wrap
            // after 13 hours, well within a long live event).
            w.write_full_box(b"tfdt", 1, 0, |w| w.u64(base_decode_time));
            // v1: composition offsets are signed, so B-frame streams need no
            // edit list to start at pts 0.
            w.write_full_box(b"trun", 1, TRUN_FLAGS, |w| {
                // Lossless under the MAX_SAMPLES_PER_FRAGMENT precondition.
                w.u32(u32::try_from(samples.len()).unwrap_or(u32::MAX));
                data_offset_at = w.len();
                w.u32(0); // data_offset, patched once the moof size is known
                for sample in samples {
                    w.u32(sample.duration);
                    w.u32(sample.size);
                    w.u32(sample.flags());
                    w.i32(sample.cts_offset);
                }
            });
        });
    });
    let data_offset = w.len() + mdat_header_len;
    debug_assert_eq!(w.len(), moof_len);
    // Lossless under the MAX_SAMPLES_PER_FRAGMENT precondition.
    w.patch_u32(
        data_offset_at,
        u32::try_from(data_offset).unwrap_or(u32::MAX),
    );

    if mdat_small {
        // Lossless: checked by `mdat_small`.
        w.u32(u32::try_from(payload_len + 8).unwrap_or(u32::MAX));
        w.bytes(b"mdat");
    } else {
        w.u32(1); // size 1: the real size follows as a 64-bit largesize
        w.bytes(b"mdat");
        w.u64(payload_len + 16);
    }
    w.finish()
}

/// A whole CMAF chunk as a list of buffers: `[header, payloads...]`.
///
/// The payloads are the same `Bytes` handles the caller passed in (cloning a
/// `Bytes` bumps a reference count), ready for vectored writes or for an
/// HTTP body that streams a list of chunks. Checks that each sample's size
/// matches its payload, because a mismatch would silently corrupt the stream.
pub fn chunk(
    sequence_number: u32,
    base_decode_time: u64,
    samples: &[Sample],
    payloads: &[Bytes],
) -> Result<Vec<Bytes>, FragmentError> {
    if samples.len() != payloads.len() {
        return Err(FragmentError::CountMismatch {
            samples: samples.len(),
            payloads: payloads.len(),
        });
    }
    if samples.len() > MAX_SAMPLES_PER_FRAGMENT {
        return Err(FragmentError::TooManySamples {
            count: samples.len(),
            max: MAX_SAMPLES_PER_FRAGMENT,
        });
    }
    for (index, (sample, payload)) in samples.iter().zip(payloads).enumerate() {
        if usize::try_from(sample.size).ok() != Some(payload.len()) {
            return Err(FragmentError::SizeMismatch {
                index,
                declared: sample.size,
                actual: payload.len(),
            });
        }
    }
    let mut out = Vec::with_capacity(payloads.len() + 1);
    out.push(fragment_header(sequence_number, base_decode_time, samples));
    out.extend(payloads.iter().cloned());
    Ok(out)
}
