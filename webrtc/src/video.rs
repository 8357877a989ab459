//! From CMAF to what an H.264 RTP packetizer takes: the track's parameter
//! sets from its init section, and each sample rewritten from
//! length-prefixed NAL units (ISO 14496-15, as fMP4 carries them) to Annex
//! B start codes (as str0m's packetizer splits them), with the SPS and PPS
//! in front of every keyframe so a viewer can decode from any of them.

use bytes::{BufMut, Bytes, BytesMut};
use livecdn_shared::avc::{nal_units, AvcDecoderConfig, AvcError};
use mp4_atom::{Decode, Ftyp, Moov};

const START_CODE: [u8; 4] = [0, 0, 0, 1];
const NAL_SPS: u8 = 7;
const NAL_PPS: u8 = 8;
const NAL_AUD: u8 = 9;

/// Why an init section or sample cannot be sent as H.264 RTP.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VideoError {
    #[error("init section: {0}")]
    Init(String),
    #[error("not H.264 (avc1/avc3)")]
    NotH264,
    #[error("{0}")]
    Avc(#[from] AvcError),
}

/// One H.264 rendition as its init section describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoTrack {
    /// Ticks per second of its decode times.
    pub timescale: u32,
    pub config: AvcDecoderConfig,
}

impl VideoTrack {
    /// Reads the first track of an init section (`ftyp` + `moov`).
    pub fn from_init(init: &[u8]) -> Result<VideoTrack, VideoError> {
        let mut buf = init;
        let bad = |e: mp4_atom::Error| VideoError::Init(e.to_string());
        Ftyp::decode(&mut buf).map_err(bad)?;
        let moov = Moov::decode(&mut buf).map_err(bad)?;
        let trak = moov
            .trak
            .first()
            .ok_or_else(|| VideoError::Init("no track".into()))?;
        let avcc = match trak.mdia.minf.stbl.stsd.codecs.first() {
            Some(mp4_atom::Codec::Avc1(a)) => &a.avcc,
            _ => return Err(VideoError::NotH264),
        };
        let mut record = Vec::new();
        mp4_atom::Encode::encode(avcc, &mut record).map_err(bad)?;
        // The encoded box has an 8-byte header; the record follows it.
        let body = record
            .get(8..)
            .ok_or_else(|| VideoError::Init("short avcC".into()))?;
        Ok(VideoTrack {
            timescale: trak.mdia.mdhd.timescale.max(1),
            config: AvcDecoderConfig::parse(Bytes::copy_from_slice(body))?,
        })
    }

    /// The track from a decoder configuration record received directly.
    pub fn from_record(timescale: u32, avcc: Bytes) -> Result<VideoTrack, VideoError> {
        Ok(VideoTrack {
            timescale: timescale.max(1),
            config: AvcDecoderConfig::parse(avcc)?,
        })
    }

    /// The RFC 6184 `profile-level-id` of the stream (profile, constraint
    /// flags, level), e.g. `0x42e01f`.
    pub fn profile_level_id(&self) -> u32 {
        u32::from(self.config.profile_idc) << 16
            | u32::from(self.config.profile_compat) << 8
            | u32::from(self.config.level_idc)
    }

    /// `sample` (length-prefixed NAL units) as one Annex B access unit.
    /// Access unit delimiters are left out (they carry nothing a WebRTC
    /// decoder needs); a keyframe without its own SPS gets the track's.
    pub fn annex_b(&self, sample: &Bytes, keyframe: bool) -> Result<Bytes, VideoError> {
        let mut out = BytesMut::with_capacity(sample.len() + 64);
        let mut nals = Vec::new();
        let mut has_sps = false;
        for nal in nal_units(sample, self.config.nal_length_size) {
            let nal = nal?;
            let Some(&first) = nal.first() else { continue };
            match first & 0x1f {
                NAL_AUD => continue,
                NAL_SPS => has_sps = true,
                _ => {}
            }
            nals.push(nal);
        }
        if keyframe && !has_sps {
            for ps in self.config.sps.iter().chain(&self.config.pps) {
                out.put_slice(&START_CODE);
                out.put_slice(ps);
            }
        }
        for nal in &nals {
            out.put_slice(&START_CODE);
            out.put_slice(nal);
        }
        Ok(out.freeze())
    }
}

/// Whether an Annex B access unit holds a parameter set: what a test
/// checks a keyframe starts with.
pub fn has_parameter_sets(au: &[u8]) -> bool {
    au.windows(5)
        .any(|w| w[..4] == START_CODE && matches!(w[4] & 0x1f, NAL_SPS | NAL_PPS))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
pub(crate) mod tests {
    use super::*;
    use livecdn_shared::cmaf::{init_segment, TrackInit, VideoInit};

    /// A real 64x64 High-profile record (SPS and PPS from x264).
    pub(crate) fn record() -> Bytes {
        let sps = [
            0x67, 0x64, 0x00, 0x0a, 0xac, 0xd9, 0x44, 0x26, 0xc0, 0x44, 0x00, 0x00, 0x03, 0x00,
            0x04, 0x00, 0x00, 0x03, 0x00, 0xc8, 0x3c, 0x48, 0x96, 0x58,
        ];
        let pps = [0x68, 0xeb, 0xe3, 0xcb, 0x22, 0xc0];
        let mut r = vec![1, 0x64, 0x00, 0x0a, 0xff, 0xe1];
        r.extend_from_slice(&(sps.len() as u16).to_be_bytes());
        r.extend_from_slice(&sps);
        r.push(1);
        r.extend_from_slice(&(pps.len() as u16).to_be_bytes());
        r.extend_from_slice(&pps);
        Bytes::from(r)
    }

    fn sample(nals: &[&[u8]]) -> Bytes {
        let mut s = Vec::new();
        for n in nals {
            s.extend_from_slice(&(n.len() as u32).to_be_bytes());
            s.extend_from_slice(n);
        }
        Bytes::from(s)
    }

    #[test]
    fn the_init_section_gives_timescale_and_parameter_sets() {
        let avcc = record();
        let init = init_segment(&TrackInit::Video(VideoInit {
            timescale: 90_000,
            width: 64,
            height: 64,
            avcc: avcc.clone(),
        }));
        let t = VideoTrack::from_init(&init).unwrap();
        assert_eq!(t.timescale, 90_000);
        assert_eq!(t, VideoTrack::from_record(90_000, avcc).unwrap());
        assert_eq!(t.profile_level_id(), 0x64000a);
        assert_eq!(t.config.sps.len(), 1);
        assert!(VideoTrack::from_init(b"\0\0\0\x08free").is_err());
    }

    #[test]
    fn keyframes_carry_parameter_sets_and_delimiters_go() {
        let t = VideoTrack::from_record(90_000, record()).unwrap();
        let idr = sample(&[&[0x09, 0xf0], &[0x65, 1, 2, 3]]);
        let au = t.annex_b(&idr, true).unwrap();
        let sps = &t.config.sps[0];
        let pps = &t.config.pps[0];
        let mut want = Vec::new();
        for n in [&sps[..], &pps[..], &[0x65, 1, 2, 3][..]] {
            want.extend_from_slice(&START_CODE);
            want.extend_from_slice(n);
        }
        assert_eq!(&au[..], &want[..]);
        assert!(has_parameter_sets(&au));
        let p = t.annex_b(&sample(&[&[0x41, 9, 9]]), false).unwrap();
        assert_eq!(&p[..], &[0, 0, 0, 1, 0x41, 9, 9]);
        assert!(!has_parameter_sets(&p));
        // A keyframe with its own SPS is not given a second one.
        let own = sample(&[&sps[..], &pps[..], &[0x65, 7]]);
        let au = t.annex_b(&own, true).unwrap();
        assert_eq!(au.len(), 4 * 3 + sps.len() + pps.len() + 2);
    }

    #[test]
    fn a_nal_length_past_the_sample_is_an_error() {
        let t = VideoTrack::from_record(90_000, record()).unwrap();
        let bad = Bytes::from_static(&[0, 0, 0, 9, 0x65, 1]);
        assert!(t.annex_b(&bad, true).is_err());
    }
}
