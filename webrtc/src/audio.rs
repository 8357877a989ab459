//! A stream's `opus` rendition (made once per stream by the origin from
//! the publisher's AAC) to Opus RTP payloads: RFC 7587 sends each Opus
//! packet as it is, so a CMAF sample is an RTP payload, on the 48 kHz
//! clock. Sans-IO, like [`crate::feed`].

use crate::feed::{joined, FeedError};
use bytes::Bytes;
use livecdn_shared::cmaf::scan;
use mp4_atom::{Decode, Ftyp, Moov};
use std::sync::Arc;
use std::time::Instant;

/// The RTP clock of Opus (RFC 7587 §4.1), whatever the input rate was.
pub const OPUS_CLOCK: u64 = 48_000;
/// A 20 ms packet on that clock.
pub const OPUS_FRAME: u64 = 960;

/// One Opus packet ready to send.
#[derive(Debug, Clone)]
pub struct AudioFrame {
    /// Presentation time on the stream's timeline, 48 kHz ticks.
    pub pts: u64,
    pub data: Arc<[u8]>,
    pub arrived: Instant,
}

/// Chunks of the Opus rendition in, packets out.
#[derive(Debug, Default)]
pub struct AudioFeed {
    timescale: Option<u32>,
}

impl AudioFeed {
    pub fn new() -> Self {
        Self::default()
    }

    /// The rendition's init section: it must hold an Opus track.
    pub fn set_init(&mut self, init: &[u8]) -> Result<(), FeedError> {
        let mut buf = init;
        let bad = |e: mp4_atom::Error| FeedError::Init(e.to_string());
        Ftyp::decode(&mut buf).map_err(bad)?;
        let moov = Moov::decode(&mut buf).map_err(bad)?;
        let trak = moov
            .trak
            .first()
            .ok_or_else(|| FeedError::Init("no track".into()))?;
        match trak.mdia.minf.stbl.stsd.codecs.first() {
            Some(mp4_atom::Codec::Opus(_)) => {}
            _ => return Err(FeedError::Init("not Opus".into())),
        }
        self.timescale = Some(trak.mdia.mdhd.timescale.max(1));
        Ok(())
    }

    /// One chunk, as the pieces it is held in: its packets in order.
    pub fn chunk(&mut self, pieces: &[Bytes], now: Instant) -> Result<Vec<AudioFrame>, FeedError> {
        let timescale = self.timescale.ok_or(FeedError::NoTrack)?;
        let data = joined(pieces);
        let scanned = scan(&data)?;
        Ok(scanned
            .samples
            .iter()
            .map(|s| AudioFrame {
                pts: (u128::from(s.dts) * u128::from(OPUS_CLOCK) / u128::from(timescale)) as u64,
                data: Arc::from(&data[s.offset..s.offset + s.size as usize]),
                arrived: now,
            })
            .collect())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
mod tests {
    use super::*;
    use livecdn_shared::cmaf::{chunk, init_segment, OpusInit, Sample, TrackInit};

    fn packet(seq: u32, dts: u64) -> Vec<Bytes> {
        let payload = Bytes::from(vec![0xfc, seq as u8, 0x01]);
        let s = Sample {
            duration: 960,
            size: payload.len() as u32,
            cts_offset: 0,
            sync: true,
        };
        chunk(seq, dts, &[s], &[payload]).unwrap()
    }

    #[test]
    fn the_opus_rendition_becomes_packets_on_the_48_khz_clock() {
        let now = Instant::now();
        let mut feed = AudioFeed::new();
        assert!(matches!(
            feed.chunk(&packet(1, 0), now),
            Err(FeedError::NoTrack)
        ));
        let init = init_segment(&TrackInit::Opus(OpusInit {
            channels: 2,
            pre_skip: 312,
        }));
        feed.set_init(&init).unwrap();
        let a = feed.chunk(&packet(1, 96_000), now).unwrap();
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].pts, 96_000);
        assert_eq!(&a[0].data[..], &[0xfc, 1, 0x01]);
        let joined = Bytes::from(packet(2, 96_960).concat());
        assert_eq!(feed.chunk(&[joined], now).unwrap()[0].pts, 96_960);
        // A torn chunk is an error, not a panic.
        let mut torn = packet(3, 97_920).concat();
        torn.truncate(torn.len() - 2);
        assert!(feed.chunk(&[Bytes::from(torn)], now).is_err());
    }

    #[test]
    fn an_init_that_is_not_opus_is_refused() {
        let video = init_segment(&TrackInit::Video(livecdn_shared::cmaf::VideoInit {
            timescale: 90_000,
            width: 2,
            height: 2,
            avcc: Bytes::from_static(&[1, 0x42, 0xc0, 0x1e, 0xff, 0xe0, 0x00]),
        }));
        let mut feed = AudioFeed::new();
        assert!(matches!(feed.set_init(&video), Err(FeedError::Init(_))));
        assert!(matches!(feed.set_init(b"junk"), Err(FeedError::Init(_))));
    }
}
