//! H.264 as it arrives over WebRTC (WHIP): Annex B access units, NAL units
//! behind start codes, with the parameter sets in band. The packager wants
//! what RTMP brings: length-prefixed (AVCC) access units and an
//! AVCDecoderConfigurationRecord. [`AnnexB`] splits an access unit into
//! its NAL units (zero-copy), keeps the SPS and PPS apart, and builds the
//! record from them with [`decoder_config_record`].

use bytes::{BufMut, Bytes, BytesMut};

use super::AvcError;

const NAL_SPS: u8 = 7;
const NAL_PPS: u8 = 8;
const NAL_AUD: u8 = 9;
const NAL_IDR: u8 = 5;

/// One access unit, split.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AnnexB {
    /// The first SPS and PPS it carries (keyframes repeat them).
    pub sps: Option<Bytes>,
    pub pps: Option<Bytes>,
    /// Whether an IDR slice is in it.
    pub idr: bool,
    /// Its other NAL units (no parameter sets, no delimiters), 4-byte
    /// length-prefixed: the sample the packager stores.
    pub avcc: Bytes,
}

/// The NAL units of an Annex B byte stream (start codes of three or four
/// bytes), as zero-copy slices; empty ones are skipped.
pub fn annex_b_units(data: &Bytes) -> Vec<Bytes> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= data.len() {
        if data[i] == 0 && data[i + 1] == 0 && data[i + 2] == 1 {
            starts.push((i, i + 3));
            i += 3;
        } else {
            i += 1;
        }
    }
    let mut out = Vec::with_capacity(starts.len());
    for (k, &(_, body)) in starts.iter().enumerate() {
        let mut end = starts.get(k + 1).map_or(data.len(), |&(at, _)| at);
        // The zero of a four-byte start code belongs to it, not to the
        // NAL before (trailing zeros are not part of a NAL anyway).
        while end > body && data[end - 1] == 0 {
            end -= 1;
        }
        if end > body {
            out.push(data.slice(body..end));
        }
    }
    out
}

/// Splits an Annex B access unit. An access unit without a start code is
/// an error (nothing in it can be framed).
pub fn split_access_unit(data: &Bytes) -> Result<AnnexB, AvcError> {
    let units = annex_b_units(data);
    if units.is_empty() {
        return Err(AvcError::NoStartCode);
    }
    let mut out = AnnexB::default();
    let mut avcc = BytesMut::with_capacity(data.len() + 4 * units.len());
    for nal in units {
        match nal[0] & 0x1f {
            NAL_SPS => {
                out.sps.get_or_insert(nal);
            }
            NAL_PPS => {
                out.pps.get_or_insert(nal);
            }
            NAL_AUD => {}
            t => {
                out.idr |= t == NAL_IDR;
                let len = u32::try_from(nal.len()).map_err(|_| AvcError::NoStartCode)?;
                avcc.put_u32(len);
                avcc.extend_from_slice(&nal);
            }
        }
    }
    out.avcc = avcc.freeze();
    Ok(out)
}

/// The AVCDecoderConfigurationRecord (`avcC`) for one SPS and one PPS,
/// with 4-byte NAL lengths.
pub fn decoder_config_record(sps: &[u8], pps: &[u8]) -> Result<Bytes, AvcError> {
    if sps.len() < 4 || pps.is_empty() || sps.len() > 0xffff || pps.len() > 0xffff {
        return Err(AvcError::NoStartCode);
    }
    let mut b = BytesMut::with_capacity(11 + sps.len() + pps.len());
    b.put_u8(1);
    // Profile, its compatibility flags and the level, from the SPS.
    b.put_slice(&sps[1..4]);
    b.put_u8(0xfc | 3); // 4-byte NAL lengths
    b.put_u8(0xe0 | 1); // one SPS
    b.put_u16(sps.len() as u16);
    b.put_slice(sps);
    b.put_u8(1); // one PPS
    b.put_u16(pps.len() as u16);
    b.put_slice(pps);
    Ok(b.freeze())
}

/// Fuzz body: any bytes as an Annex B access unit; what splits gives a
/// record that parses back, or an error; never a panic.
pub fn fuzz_annex_b(data: &[u8]) {
    let bytes = Bytes::copy_from_slice(data);
    if let Ok(au) = split_access_unit(&bytes) {
        assert!(au.avcc.len() <= data.len() + 4 * data.len() / 3 + 4);
        if let (Some(sps), Some(pps)) = (&au.sps, &au.pps) {
            if let Ok(record) = decoder_config_record(sps, pps) {
                assert!(super::AvcDecoderConfig::parse(record).is_ok());
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
mod tests {
    use super::*;
    use crate::avc::{nal_units, AvcDecoderConfig};

    /// x264's, baseline, 640x360.
    const SPS: &[u8] = &[
        0x67, 0x42, 0xc0, 0x1e, 0xd9, 0x00, 0xa0, 0x2f, 0xf9, 0x70, 0x11, 0x00, 0x00, 0x03, 0x00,
        0x01, 0x00, 0x00, 0x03, 0x00, 0x3c, 0x0f, 0x16, 0x2e, 0x48,
    ];
    const PPS: &[u8] = &[0x68, 0xcb, 0x83, 0xcb, 0x20];

    fn keyframe() -> Bytes {
        let mut v = vec![0, 0, 0, 1, 0x09, 0xf0];
        v.extend_from_slice(&[0, 0, 0, 1]);
        v.extend_from_slice(SPS);
        v.extend_from_slice(&[0, 0, 1]);
        v.extend_from_slice(PPS);
        v.extend_from_slice(&[0, 0, 0, 1, 0x65, 0x88, 0x80, 0x00, 0x10]);
        Bytes::from(v)
    }

    #[test]
    fn a_keyframe_splits_into_parameter_sets_and_a_length_prefixed_sample() {
        let au = split_access_unit(&keyframe()).unwrap();
        assert_eq!(au.sps.as_deref(), Some(SPS));
        assert_eq!(au.pps.as_deref(), Some(PPS));
        assert!(au.idr);
        // Trailing zeros belong to no NAL: the slice ends at 0x10.
        let nals: Vec<Bytes> = nal_units(&au.avcc, 4).map(Result::unwrap).collect();
        assert_eq!(nals, [Bytes::from_static(&[0x65, 0x88, 0x80, 0x00, 0x10])]);
        let p = Bytes::from_static(&[0, 0, 1, 0x41, 0x9a, 0x02]);
        let delta = split_access_unit(&p).unwrap();
        assert!(!delta.idr && delta.sps.is_none());
        assert_eq!(&delta.avcc[..], &[0, 0, 0, 3, 0x41, 0x9a, 0x02]);
        assert_eq!(
            split_access_unit(&Bytes::from_static(&[0x65, 1, 2])),
            Err(AvcError::NoStartCode)
        );
    }

    #[test]
    fn the_record_built_from_the_parameter_sets_parses_back() {
        let record = decoder_config_record(SPS, PPS).unwrap();
        let parsed = AvcDecoderConfig::parse(record.clone()).unwrap();
        assert_eq!(parsed.nal_length_size, 4);
        assert_eq!(&parsed.sps[0][..], SPS);
        assert_eq!(&parsed.pps[0][..], PPS);
        let config = crate::avc::video_config(record).unwrap();
        assert_eq!((config.width, config.height), (640, 360));
        assert!(decoder_config_record(&[0x67], PPS).is_err());
    }

    #[test]
    fn fuzz_body_holds_on_seeds_and_mutations() {
        let good = keyframe();
        fuzz_annex_b(&good);
        for i in 0..good.len() {
            let mut bad = good.to_vec();
            bad[i] ^= 0x5a;
            fuzz_annex_b(&bad);
            fuzz_annex_b(&good[..i]);
        }
    }
}
