//! AAC to Opus, once per stream, in process: what WebRTC viewers hear.
//!
//! Browsers' WebRTC stacks play Opus, not AAC, so the origin decodes the
//! publisher's AAC (symphonia), brings it to 48 kHz when it is not already
//! (rubato), and encodes 20 ms Opus packets (ropus, a bit-exact port of
//! libopus that needs no C toolchain). It runs in the ingest task, on the
//! frames the packager already took, and the packets become the `opus`
//! rendition: pushed to edges with the rest of the stream, so neither an
//! edge nor a viewer session ever transcodes.
//!
//! Sans-IO: AAC frames with their FLV decode time in, Opus packets with
//! theirs out. A jump in the input's timestamps (a reconnect, a gap) starts
//! the packet clock again from the new frame.

use bytes::Bytes;
use livecdn_shared::media::AudioConfig;
use ropus::{Application, Bitrate, Channels};
use rubato::{Async, FixedAsync, PolynomialDegree, Resampler};
use symphonia_core::codecs::audio::well_known::CODEC_ID_AAC;
use symphonia_core::codecs::audio::{AudioCodecParameters, AudioDecoder, AudioDecoderOptions};
use symphonia_core::packet::PacketRef;
use symphonia_core::units::{Duration, Timestamp};

/// Opus's clock and the rate the encoder is fed.
pub const OPUS_RATE: u32 = 48_000;
/// Samples per channel in one packet: 20 ms, WebRTC's usual packet time.
pub const OPUS_FRAME: usize = 960;
/// Samples per channel in one AAC-LC access unit.
const AAC_FRAME: usize = 1024;
/// Bits per second per channel.
const BITRATE_PER_CHANNEL: u32 = 48_000;
/// The largest Opus packet (RFC 6716 §3.4: 1275 bytes per frame).
const MAX_PACKET: usize = 1275;
/// An input timestamp this far from where the packets have got to is a
/// jump: the buffered audio is dropped and the clock starts again.
const JUMP_MS: i64 = 200;

/// Why a stream gets no Opus track, or one frame was not transcoded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpusError {
    /// The AAC flavour or layout is one the decoder does not take (HE-AAC,
    /// more than two channels).
    #[error("unsupported audio: {0}")]
    Unsupported(String),
    #[error("aac decode: {0}")]
    Decode(String),
    #[error("opus encode: {0}")]
    Encode(String),
}

/// One Opus packet, timed on the publisher's FLV clock (milliseconds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpusPacket {
    pub dts_ms: u32,
    pub data: Bytes,
}

/// The per-stream AAC decoder, resampler and Opus encoder.
pub struct OpusTranscoder {
    decoder: symphonia_codec_aac::AacDecoder,
    resampler: Option<Async<f32>>,
    encoder: ropus::Encoder,
    channels: usize,
    /// Interleaved 48 kHz samples not yet encoded.
    pcm: Vec<f32>,
    decoded: Vec<f32>,
    resampled: Vec<f32>,
    /// FLV time of the first sample after the last reset, and the samples
    /// per channel encoded since.
    base_ms: Option<u32>,
    encoded: u64,
}

impl std::fmt::Debug for OpusTranscoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpusTranscoder")
            .field("channels", &self.channels)
            .field("resampling", &self.resampler.is_some())
            .finish_non_exhaustive()
    }
}

impl OpusTranscoder {
    /// A transcoder for the stream's AAC configuration.
    pub fn new(config: &AudioConfig) -> Result<Self, OpusError> {
        let channels = usize::from(config.channels);
        if !(1..=2).contains(&channels) {
            return Err(OpusError::Unsupported(format!("{channels} channels")));
        }
        let mut params = AudioCodecParameters::new();
        params
            .for_codec(CODEC_ID_AAC)
            .with_extra_data(config.asc.to_vec().into_boxed_slice());
        let decoder =
            symphonia_codec_aac::AacDecoder::try_new(&params, &AudioDecoderOptions::default())
                .map_err(|e| OpusError::Unsupported(e.to_string()))?;
        let resampler = if config.sample_rate == OPUS_RATE {
            None
        } else if (8_000..=96_000).contains(&config.sample_rate) {
            let ratio = f64::from(OPUS_RATE) / f64::from(config.sample_rate);
            let r = Async::<f32>::new_poly(
                ratio,
                1.0,
                PolynomialDegree::Cubic,
                AAC_FRAME,
                channels,
                FixedAsync::Input,
            )
            .map_err(|e| OpusError::Unsupported(e.to_string()))?;
            Some(r)
        } else {
            return Err(OpusError::Unsupported(format!("{} Hz", config.sample_rate)));
        };
        let layout = if channels == 1 {
            Channels::Mono
        } else {
            Channels::Stereo
        };
        let bits = BITRATE_PER_CHANNEL * u32::from(config.channels);
        let encoder = ropus::Encoder::builder(OPUS_RATE, layout, Application::Audio)
            .bitrate(Bitrate::Bits(bits))
            .build()
            .map_err(|e| OpusError::Encode(format!("{e:?}")))?;
        Ok(Self {
            decoder,
            resampler,
            encoder,
            channels,
            pcm: Vec::with_capacity(4 * OPUS_FRAME * channels),
            decoded: Vec::with_capacity(AAC_FRAME * channels),
            resampled: Vec::new(),
            base_ms: None,
            encoded: 0,
        })
    }

    /// 1 or 2.
    pub fn channels(&self) -> u8 {
        if self.channels == 1 {
            1
        } else {
            2
        }
    }

    /// Samples at 48 kHz a decoder drops at the start (the `dOps` PreSkip).
    pub fn pre_skip(&self) -> u16 {
        u16::try_from(self.encoder.lookahead()).unwrap_or(u16::MAX)
    }

    /// Where the next packet starts, on the FLV clock.
    fn packet_ms(&self, samples: u64) -> Option<u32> {
        let base = self.base_ms?;
        let offset = samples * 1000 / u64::from(OPUS_RATE);
        Some(base.wrapping_add(offset as u32))
    }

    /// One AAC access unit decoded at `dts_ms`: the Opus packets it
    /// completes (usually one, sometimes none or two).
    pub fn push(&mut self, dts_ms: u32, aac: &[u8]) -> Result<Vec<OpusPacket>, OpusError> {
        let buffered = (self.pcm.len() / self.channels) as u64;
        let expected = self.packet_ms(self.encoded + buffered);
        let jumped =
            expected.is_none_or(|e| i64::from(dts_ms.wrapping_sub(e) as i32).abs() > JUMP_MS);
        if jumped {
            self.pcm.clear();
            self.base_ms = Some(dts_ms);
            self.encoded = 0;
            if let Some(r) = self.resampler.as_mut() {
                r.reset();
            }
        }
        let packet = PacketRef::new(0, Timestamp::new(0), Duration::new(AAC_FRAME as u64), aac);
        let buf = self
            .decoder
            .decode_ref(&packet)
            .map_err(|e| OpusError::Decode(e.to_string()))?;
        buf.copy_to_vec_interleaved(&mut self.decoded);
        match self.resampler.as_mut() {
            None => self.pcm.extend_from_slice(&self.decoded),
            Some(r) => resample(
                r,
                &self.decoded,
                self.channels,
                &mut self.resampled,
                &mut self.pcm,
            )?,
        }
        let mut out = Vec::new();
        let mut packet = [0u8; MAX_PACKET];
        let step = OPUS_FRAME * self.channels;
        while self.pcm.len() >= step {
            let len = self
                .encoder
                .encode_float(&self.pcm[..step], &mut packet)
                .map_err(|e| OpusError::Encode(format!("{e:?}")))?;
            let dts_ms = self.packet_ms(self.encoded).unwrap_or(dts_ms);
            self.pcm.drain(..step);
            self.encoded += OPUS_FRAME as u64;
            out.push(OpusPacket {
                dts_ms,
                data: Bytes::copy_from_slice(&packet[..len]),
            });
        }
        Ok(out)
    }
}

/// `input` (one AAC frame, interleaved) to 48 kHz, appended to `pcm`. A
/// frame shorter than the resampler's chunk is padded (a decoder that
/// returned less than a full frame, which AAC-LC does not do).
fn resample(
    r: &mut Async<f32>,
    input: &[f32],
    channels: usize,
    scratch: &mut Vec<f32>,
    pcm: &mut Vec<f32>,
) -> Result<(), OpusError> {
    use audioadapter_buffers::direct::InterleavedSlice;
    let frames = input.len() / channels;
    let need = r.input_frames_next();
    let mut padded;
    let input = if frames < need {
        padded = input.to_vec();
        padded.resize(need * channels, 0.0);
        &padded[..]
    } else {
        &input[..need * channels]
    };
    let cap = r.output_frames_max();
    scratch.resize(cap * channels, 0.0);
    let bad = |e: &dyn std::fmt::Display| OpusError::Decode(format!("resample: {e}"));
    let src = InterleavedSlice::new(input, channels, need).map_err(|e| bad(&e))?;
    let mut dst =
        InterleavedSlice::new_mut(&mut scratch[..], channels, cap).map_err(|e| bad(&e))?;
    let (_, written) = r
        .process_into_buffer(&src, &mut dst, None)
        .map_err(|e| bad(&e))?;
    pcm.extend_from_slice(&scratch[..written * channels]);
    Ok(())
}

/// Fuzz body: the first two bytes are an AudioSpecificConfig (rate and
/// channels read from it as FLV would give them), the rest AAC frames of
/// up to 255 bytes, each prefixed by its length. Never a panic; every
/// packet is a whole 20 ms apart from the one before it.
pub fn fuzz_opus(data: &[u8]) {
    let Some((asc, mut rest)) = data.split_first_chunk::<2>() else {
        return;
    };
    const RATES: [u32; 13] = [
        96_000, 88_200, 64_000, 48_000, 44_100, 32_000, 24_000, 22_050, 16_000, 12_000, 11_025,
        8_000, 7_350,
    ];
    let index = usize::from((asc[0] & 0x07) << 1 | asc[1] >> 7);
    let config = AudioConfig {
        asc: Bytes::copy_from_slice(asc),
        object_type: asc[0] >> 3,
        sample_rate: RATES.get(index).copied().unwrap_or(48_000),
        channels: (asc[1] >> 3) & 0x0f,
    };
    let Ok(mut t) = OpusTranscoder::new(&config) else {
        return;
    };
    let mut ms = 0u32;
    let mut last: Option<u32> = None;
    while let Some((&len, tail)) = rest.split_first() {
        let len = usize::from(len).min(tail.len());
        let (frame, tail) = tail.split_at(len);
        rest = tail;
        if let Ok(packets) = t.push(ms, frame) {
            for p in packets {
                if let Some(prev) = last {
                    let step = p.dts_ms.wrapping_sub(prev);
                    assert!(step == 20 || step > 200 || p.dts_ms == ms, "step {step}");
                }
                last = Some(p.dts_ms);
            }
        }
        ms = ms.wrapping_add(21);
    }
}

#[cfg(test)]
#[path = "opus_tests.rs"]
mod tests;
