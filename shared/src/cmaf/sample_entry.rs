//! Sample entries (`stsd` children): how a decoder is configured.
//!
//! `avc1` wraps the AVCDecoderConfigurationRecord and `mp4a` wraps the
//! AudioSpecificConfig, both copied byte for byte from the FLV sequence
//! headers: re-encoding them would risk dropping fields we do not model.

use super::boxes::BoxWriter;
use super::init::{AudioInit, OpusInit, VideoInit, OPUS_TIMESCALE};

/// `avc1` (parameter sets only out of band, in `avcC`), the form HLS
/// players require; `avc3` (in-band SPS/PPS) is not universally supported.
pub(super) fn write_video_sample_entry(w: &mut BoxWriter, video: &VideoInit) {
    w.write_box(b"avc1", |w| {
        write_sample_entry_header(w);
        w.u16(0); // pre_defined
        w.u16(0); // reserved
        w.zeros(12); // pre_defined
        w.u16(pixels_u16(video.width));
        w.u16(pixels_u16(video.height));
        w.u32(0x0048_0000); // horizresolution 72 dpi
        w.u32(0x0048_0000); // vertresolution 72 dpi
        w.u32(0); // reserved
        w.u16(1); // frame_count: one frame per sample
        w.zeros(32); // compressorname: empty Pascal string
        w.u16(0x0018); // depth: colour, no alpha
        w.i16(-1); // pre_defined
        w.write_box(b"avcC", |w| w.bytes(&video.avcc));
    });
}

/// `mp4a` with an `esds` carrying MPEG-4 descriptors (ISO 14496-1 §7.2.6).
pub(super) fn write_audio_sample_entry(w: &mut BoxWriter, audio: &AudioInit) {
    w.write_box(b"mp4a", |w| {
        write_sample_entry_header(w);
        w.zeros(8); // version, revision level, vendor (all 0 in ISO files)
        w.u16(u16::from(audio.channels));
        w.u16(16); // samplesize
        w.u16(0); // pre_defined
        w.u16(0); // reserved
        w.u32(sample_rate_16_16(audio.sample_rate));
        w.write_full_box(b"esds", 0, 0, |w| {
            write_descriptor(w, TAG_ES, |w| {
                w.u16(0); // ES_ID: unused in MP4, the track ID identifies it
                w.u8(0); // no dependsOn, URL or OCR stream; priority 0
                write_descriptor(w, TAG_DECODER_CONFIG, |w| {
                    w.u8(OBJECT_TYPE_AAC);
                    // streamType audio, upStream 0, reserved 1.
                    w.u8(STREAM_TYPE_AUDIO << 2 | 1);
                    // Buffer size and bitrates are advisory; 0 = unknown, as
                    // the origin repackages without knowing the encoder's
                    // rate control. The ASC is all a decoder needs.
                    w.u24(0); // bufferSizeDB
                    w.u32(0); // maxBitrate
                    w.u32(0); // avgBitrate
                    write_descriptor(w, TAG_DECODER_SPECIFIC, |w| w.bytes(&audio.asc));
                });
                // SLConfigDescriptor predefined = 2: "reserved for MP4 files".
                write_descriptor(w, TAG_SL_CONFIG, |w| w.u8(0x02));
            });
        });
    });
}

/// `Opus` with its `dOps` (OpusSpecificBox, ISO/IEC 23003-5 §4.3.2): the
/// fields of the Ogg `OpusHead` without its magic, big-endian.
pub(super) fn write_opus_sample_entry(w: &mut BoxWriter, opus: &OpusInit) {
    w.write_box(b"Opus", |w| {
        write_sample_entry_header(w);
        w.zeros(8); // version, revision level, vendor
        w.u16(u16::from(opus.channels));
        w.u16(16); // samplesize
        w.u16(0); // pre_defined
        w.u16(0); // reserved
        w.u32(sample_rate_16_16(OPUS_TIMESCALE));
        w.write_box(b"dOps", |w| {
            w.u8(0); // Version
            w.u8(opus.channels); // OutputChannelCount
            w.u16(opus.pre_skip); // PreSkip
            w.u32(OPUS_TIMESCALE); // InputSampleRate (informative)
            w.i16(0); // OutputGain
            w.u8(0); // ChannelMappingFamily 0: mono or stereo, no table
        });
    });
}

const TAG_ES: u8 = 0x03;
const TAG_DECODER_CONFIG: u8 = 0x04;
const TAG_DECODER_SPECIFIC: u8 = 0x05;
const TAG_SL_CONFIG: u8 = 0x06;
/// objectTypeIndication for MPEG-4 Audio; the ASC then says which AAC.
const OBJECT_TYPE_AAC: u8 = 0x40;
const STREAM_TYPE_AUDIO: u8 = 0x05;

/// The largest length the 4-byte, 7-bits-per-byte descriptor size encodes.
const MAX_DESCRIPTOR_LEN: usize = (1 << 28) - 1;

/// The 8 bytes every SampleEntry starts with.
fn write_sample_entry_header(w: &mut BoxWriter) {
    w.zeros(6); // reserved
    w.u16(1); // data_reference_index: the single `url ` entry in `dref`
}

/// Writes `tag`, a 4-byte length and the body, back-patching the length.
///
/// Always the 4-byte form (`0x80 0x80 0x80 len` for short bodies): ISO 14496-1
/// allows any number of continuation bytes, a fixed width lets the length be
/// patched in place like a box size, and it is the form ffmpeg and most
/// encoders write, so every demuxer accepts it.
fn write_descriptor(w: &mut BoxWriter, tag: u8, body: impl FnOnce(&mut BoxWriter)) {
    w.u8(tag);
    let len_at = w.len();
    w.u32(0);
    body(w);
    let len = w.len() - len_at - 4;
    // Config records come from FLV tags (< 16 MiB), far below 2^28.
    debug_assert!(len <= MAX_DESCRIPTOR_LEN, "descriptor too long");
    let len = u32::try_from(len.min(MAX_DESCRIPTOR_LEN)).unwrap_or(0);
    let encoded = 0x8080_8000
        | (len >> 21 & 0x7F) << 24
        | (len >> 14 & 0x7F) << 16
        | (len >> 7 & 0x7F) << 8
        | (len & 0x7F);
    w.patch_u32(len_at, encoded);
}

/// `width`/`height` in a visual sample entry are 16-bit; see
/// `init::fixed_16_16` for why saturating is right.
fn pixels_u16(pixels: u32) -> u16 {
    u16::try_from(pixels).unwrap_or(u16::MAX)
}

/// The sample entry's rate is 16.16 fixed point, so it cannot hold rates
/// above 65535 Hz (88.2/96 kHz). ISO 14496-12 then says to write 0 (or the
/// rate in `srat`); AAC decoders take the real rate from the ASC either way.
fn sample_rate_16_16(rate: u32) -> u32 {
    if rate <= 0xFFFF {
        rate << 16
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptor_length_uses_four_byte_form() {
        let mut w = BoxWriter::new();
        write_descriptor(&mut w, 0x05, |w| w.bytes(&[0x12, 0x10]));
        assert_eq!(&w.finish()[..], &[0x05, 0x80, 0x80, 0x80, 0x02, 0x12, 0x10]);

        let mut w = BoxWriter::new();
        write_descriptor(&mut w, 0x05, |w| w.zeros(300));
        // 300 = 0b10_0101100 -> 0x02, 0x2C in the last two 7-bit groups.
        assert_eq!(&w.finish()[..5], &[0x05, 0x80, 0x80, 0x82, 0x2C]);
    }

    #[test]
    fn rates_above_16_bits_are_written_as_zero() {
        assert_eq!(sample_rate_16_16(48_000), 48_000 << 16);
        assert_eq!(sample_rate_16_16(96_000), 0);
        assert_eq!(pixels_u16(70_000), u16::MAX);
    }
}
