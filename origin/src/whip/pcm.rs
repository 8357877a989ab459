//! A WHIP publisher's Opus as one continuous PCM stream, and the times of
//! the AAC frames an encoder makes from it. Sans-IO.
//!
//! HLS players (Safari's above all) want AAC, and a browser publishes
//! Opus, so a WHIP stream's audio is transcoded once: [`OpusPcm`] decodes
//! each packet (ropus) into 48 kHz stereo PCM, filling a gap that lost or
//! silent (DTX) packets left with the decoder's concealment, so the
//! encoder sees time pass as the publisher's clock does. A gap too long to
//! fill (the publisher paused, its clock jumped) starts a new run of
//! samples instead.
//!
//! The encoder (an ffmpeg process, [`super::aac`]) gets bare samples and
//! gives back frames of 1024 samples each, so their times are counted, not
//! read: [`Timeline`] remembers where each run of samples starts on the
//! stream's clock and turns the Nth frame back into milliseconds. An AAC
//! encoder's output is one frame late (its priming frame, which only
//! prepares the decoder, and is dropped here), so frame N holds samples
//! from N-1 frames in.

use std::collections::VecDeque;

/// The rate of Opus and of the AAC made from it.
pub const RATE: u32 = 48_000;
/// WebRTC's Opus is stereo; the AAC is too.
pub const CHANNELS: usize = 2;
/// Samples per channel in one AAC-LC frame.
const AAC_FRAME: u64 = 1024;
/// 20 ms, the usual packet time: the unit gaps are concealed in.
const PACKET: usize = 960;
/// The largest packet duration Opus allows (120 ms), per channel.
const MAX_PACKET: usize = 5760;
/// A gap up to this long is filled; a longer one starts a new run.
const MAX_FILL_US: u64 = 1_000_000;
/// A packet this much earlier than expected is a late duplicate.
const EARLY_SLACK_US: u64 = 1_000;
/// Runs remembered while their frames are still on their way.
const MAX_MARKS: usize = 64;

/// Samples to encode, and where on the stream's clock they start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PcmBlock {
    /// Interleaved stereo, 48 kHz.
    pub samples: Vec<i16>,
    pub start_ms: u32,
    /// False when the block does not follow the previous one in time.
    pub contiguous: bool,
}

impl PcmBlock {
    /// Samples per channel.
    pub fn per_channel(&self) -> usize {
        self.samples.len() / CHANNELS
    }

    /// The samples as the encoder reads them (s16le).
    pub fn to_le_bytes(&self) -> Vec<u8> {
        self.samples.iter().flat_map(|s| s.to_le_bytes()).collect()
    }
}

/// Why a packet gave no samples.
#[derive(Debug, thiserror::Error)]
pub enum PcmError {
    #[error("opus decoder: {0}")]
    Init(#[from] ropus::DecoderInitError),
    #[error("opus packet: {0}")]
    Decode(#[from] ropus::DecodeError),
}

/// Opus packets in, PCM blocks out.
pub struct OpusPcm {
    decoder: ropus::Decoder,
    /// The publisher's time (µs) where the next packet should start.
    next_us: Option<u64>,
    out: Vec<i16>,
}

impl std::fmt::Debug for OpusPcm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpusPcm")
            .field("next_us", &self.next_us)
            .finish_non_exhaustive()
    }
}

fn samples_to_us(n: usize) -> u64 {
    n as u64 * 1_000_000 / u64::from(RATE)
}

fn us_to_samples(us: u64) -> usize {
    (us * u64::from(RATE) / 1_000_000) as usize
}

impl OpusPcm {
    pub fn new() -> Result<Self, PcmError> {
        Ok(Self {
            decoder: ropus::Decoder::new(RATE, ropus::Channels::Stereo)?,
            next_us: None,
            out: vec![0; MAX_PACKET * CHANNELS],
        })
    }

    /// One packet at `time_us` on the publisher's RTP clock, `dts_ms` on
    /// the stream's. `None` for a late duplicate; an error for a packet
    /// that does not decode (the next one conceals its place).
    pub fn push(
        &mut self,
        time_us: u64,
        dts_ms: u32,
        packet: &[u8],
    ) -> Result<Option<PcmBlock>, PcmError> {
        let mut samples = Vec::new();
        let mut contiguous = false;
        if let Some(next) = self.next_us {
            if time_us + EARLY_SLACK_US < next {
                return Ok(None);
            }
            let gap = time_us.saturating_sub(next);
            if gap <= MAX_FILL_US {
                contiguous = true;
                self.conceal(us_to_samples(gap), &mut samples);
            }
        }
        let filled = samples.len() / CHANNELS;
        let n = self
            .decoder
            .decode(packet, &mut self.out, ropus::DecodeMode::Normal)?;
        samples.extend_from_slice(&self.out[..n * CHANNELS]);
        self.next_us = Some(time_us + samples_to_us(n));
        let start_ms = dts_ms.wrapping_sub((samples_to_us(filled) / 1000) as u32);
        Ok(Some(PcmBlock {
            samples,
            start_ms,
            contiguous,
        }))
    }

    /// `n` samples per channel of the decoder's concealment, 20 ms at a
    /// time (it fades to silence over a long gap).
    fn conceal(&mut self, mut n: usize, into: &mut Vec<i16>) {
        while n > 0 {
            let take = n.min(PACKET);
            let buf = &mut self.out[..take * CHANNELS];
            match self.decoder.decode(&[], buf, ropus::DecodeMode::Normal) {
                Ok(got) => into.extend_from_slice(&buf[..got.min(take) * CHANNELS]),
                Err(_) => into.resize(into.len() + take * CHANNELS, 0),
            }
            n -= take;
        }
    }
}

/// Where each run of samples fed to the encoder starts on the stream's
/// clock, and which frame comes back next.
#[derive(Debug, Default)]
pub struct Timeline {
    /// (first sample, its milliseconds), oldest first.
    marks: VecDeque<(u64, u32)>,
    /// Samples per channel fed so far.
    fed: u64,
    /// Frames come back so far.
    frames: u64,
}

impl Timeline {
    /// A block went to the encoder.
    pub fn fed(&mut self, block: &PcmBlock) {
        if !block.contiguous || self.marks.is_empty() {
            if self.marks.len() == MAX_MARKS {
                self.marks.pop_front();
            }
            self.marks.push_back((self.fed, block.start_ms));
        }
        self.fed += block.per_channel() as u64;
    }

    /// A frame came back: its decode time, or `None` for the priming one.
    pub fn frame(&mut self) -> Option<u32> {
        let k = self.frames;
        self.frames += 1;
        let first = k.checked_sub(1)? * AAC_FRAME;
        while self.marks.get(1).is_some_and(|m| m.0 <= first) {
            self.marks.pop_front();
        }
        let &(at, ms) = self.marks.front()?;
        let off = first.saturating_sub(at) * 1000 / u64::from(RATE);
        Some(ms.wrapping_add(off as u32))
    }
}

/// Fuzz body: records of a 2-byte time step (ms, so the publisher's clock
/// may stall, repeat or jump), a length byte and that many bytes of
/// packet. Never a panic; blocks stay whole stereo samples and bounded,
/// and every frame the timeline gives back has a time.
pub fn fuzz_whip_pcm(mut data: &[u8]) {
    let Ok(mut pcm) = OpusPcm::new() else {
        return;
    };
    let mut timeline = Timeline::default();
    let (mut us, mut ms) = (0u64, 0u32);
    while let Some((head, rest)) = data.split_first_chunk::<3>() {
        let step = u16::from_be_bytes([head[0], head[1]]);
        let len = usize::from(head[2]).min(rest.len());
        let (packet, rest) = rest.split_at(len);
        data = rest;
        us += u64::from(step) * 1000;
        ms = ms.wrapping_add(u32::from(step));
        if let Ok(Some(block)) = pcm.push(us, ms, packet) {
            assert_eq!(block.samples.len() % CHANNELS, 0);
            assert!(block.per_channel() <= us_to_samples(MAX_FILL_US) + MAX_PACKET + PACKET);
            timeline.fed(&block);
            while timeline.frames * AAC_FRAME + AAC_FRAME <= timeline.fed {
                let at = timeline.frame();
                assert!(at.is_some() || timeline.frames == 1);
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
mod tests {
    use super::*;

    /// 20 ms Opus packets of a 440 Hz tone.
    fn packets(n: usize) -> Vec<Vec<u8>> {
        let mut enc =
            ropus::Encoder::builder(RATE, ropus::Channels::Stereo, ropus::Application::Audio)
                .build()
                .unwrap();
        (0..n)
            .map(|i| {
                let pcm: Vec<i16> = (0..PACKET * CHANNELS)
                    .map(|j| {
                        let t = (i * PACKET + j / 2) as f64 / f64::from(RATE);
                        ((t * 440.0 * std::f64::consts::TAU).sin() * 8000.0) as i16
                    })
                    .collect();
                let mut out = vec![0; 1500];
                let len = enc.encode(&pcm, &mut out).unwrap();
                out.truncate(len);
                out
            })
            .collect()
    }

    #[test]
    fn packets_in_order_make_one_run_and_gaps_are_filled() {
        let p = packets(6);
        let mut d = OpusPcm::new().unwrap();
        let first = d.push(5_000_000, 100, &p[0]).unwrap().unwrap();
        assert!(!first.contiguous && first.per_channel() == PACKET && first.start_ms == 100);
        let next = d.push(5_020_000, 120, &p[1]).unwrap().unwrap();
        assert!(next.contiguous && next.per_channel() == PACKET);
        // Two packets lost: their 40 ms are concealed before the third.
        let after = d.push(5_080_000, 180, &p[4]).unwrap().unwrap();
        assert!(after.contiguous);
        assert_eq!(after.per_channel(), 3 * PACKET);
        assert_eq!(after.start_ms, 140);
        // A late duplicate is dropped; a bad packet is an error.
        assert!(d.push(5_020_000, 120, &p[1]).unwrap().is_none());
        assert!(d.push(5_100_000, 200, &[0xff, 0xff, 0xff]).is_err());
        // A pause too long to fill starts a new run.
        let resumed = d.push(9_000_000, 4_100, &p[5]).unwrap().unwrap();
        assert!(!resumed.contiguous && resumed.start_ms == 4_100);
        // The tone survives decoding.
        let peak = first
            .samples
            .iter()
            .map(|s| s.unsigned_abs())
            .max()
            .unwrap();
        assert!(peak > 2000, "peak {peak}");
    }

    fn block(len: usize, start_ms: u32, contiguous: bool) -> PcmBlock {
        PcmBlock {
            samples: vec![0; len * CHANNELS],
            start_ms,
            contiguous,
        }
    }

    #[test]
    fn frames_are_timed_from_the_run_their_samples_start_in() {
        let mut t = Timeline::default();
        t.fed(&block(2048, 1_000, false));
        t.fed(&block(2048, 0, true));
        // The priming frame has no time of its own.
        assert_eq!(t.frame(), None);
        assert_eq!(t.frame(), Some(1_000));
        assert_eq!(t.frame(), Some(1_021));
        assert_eq!(t.frame(), Some(1_042));
        // A new run at sample 4096 (after a pause).
        t.fed(&block(1024, 9_000, false));
        assert_eq!(t.frame(), Some(1_064));
        assert_eq!(t.frame(), Some(9_000));
        assert_eq!(t.marks.len(), 1, "runs behind the frames are let go");
    }

    #[test]
    fn fuzz_body_takes_odd_input() {
        let p = packets(3);
        let mut data = Vec::new();
        for (step, packet) in [(0u16, &p[0][..]), (20, &p[1]), (0, &p[1]), (60_000, &p[2])] {
            data.extend_from_slice(&step.to_be_bytes());
            data.push(packet.len() as u8);
            data.extend_from_slice(packet);
        }
        data.extend_from_slice(&[0, 20, 3, 0xff, 0xff, 0xff, 0, 20, 200, 1]);
        fuzz_whip_pcm(&data);
        fuzz_whip_pcm(&[]);
    }
}
