//! The transcoder on real AAC made by ffmpeg, checked by decoding its Opus
//! back: the tone must come out at its pitch and level, on a 20 ms clock.
//! Skips without ffmpeg, except under CI.

#![allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]

use super::*;
use std::process::Command;

/// ffmpeg's `sine` source: amplitude 1/8.
const TONE_RMS: f64 = 0.125 / std::f64::consts::SQRT_2;

fn ffmpeg() -> bool {
    let found = Command::new("ffmpeg")
        .arg("-version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found || std::env::var("CI").as_deref() != Ok("true"),
        "ffmpeg is needed under CI"
    );
    found
}

/// `secs` of a 440 Hz tone as AAC-LC: the config and the raw frames.
fn tone(rate: u32, channels: u8, secs: u32) -> (AudioConfig, Vec<Bytes>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.aac");
    let out = Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
        ])
        .arg(format!(
            "sine=frequency=440:sample_rate={rate}:duration={secs}"
        ))
        .args(["-ac", &channels.to_string(), "-c:a", "aac", "-b:a", "96k"])
        .args(["-f", "adts"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let data = std::fs::read(&path).unwrap();
    let mut frames = Vec::new();
    let mut i = 0;
    let mut asc = None;
    while i + 7 <= data.len() {
        let h = &data[i..];
        assert_eq!((h[0], h[1] & 0xf0), (0xff, 0xf0), "ADTS sync at {i}");
        let len = usize::from(h[3] & 3) << 11 | usize::from(h[4]) << 3 | usize::from(h[5]) >> 5;
        let header = if h[1] & 1 == 1 { 7 } else { 9 };
        // AudioSpecificConfig from the ADTS fields: object type, rate
        // index, channel configuration.
        let object = (h[2] >> 6) + 1;
        let index = (h[2] >> 2) & 0x0f;
        let chans = (h[2] & 1) << 2 | h[3] >> 6;
        asc.get_or_insert([object << 3 | index >> 1, (index & 1) << 7 | chans << 3]);
        frames.push(Bytes::copy_from_slice(&h[header..len]));
        i += len;
    }
    let config = AudioConfig {
        asc: Bytes::copy_from_slice(&asc.unwrap()),
        object_type: 2,
        sample_rate: rate,
        channels,
    };
    (config, frames)
}

/// Every frame through the transcoder, at its FLV time from `start_ms`.
fn transcode(
    t: &mut OpusTranscoder,
    rate: u32,
    frames: &[Bytes],
    start_ms: u32,
) -> Vec<OpusPacket> {
    let mut out = Vec::new();
    for (i, f) in frames.iter().enumerate() {
        let ms = start_ms + (i as u64 * 1024 * 1000 / u64::from(rate)) as u32;
        out.extend(t.push(ms, f).unwrap());
    }
    out
}

/// Decodes the packets; the RMS level and the zero crossings per second of
/// the first channel, after the first 200 ms (encoder start-up).
fn listen(packets: &[OpusPacket], channels: u8) -> (f64, f64) {
    let layout = if channels == 1 {
        Channels::Mono
    } else {
        Channels::Stereo
    };
    let mut d = ropus::Decoder::new(OPUS_RATE, layout).unwrap();
    let n = usize::from(channels);
    let mut pcm = vec![0i16; OPUS_FRAME * n];
    let mut first = Vec::new();
    for p in packets {
        let got = d
            .decode(&p.data, &mut pcm, ropus::DecodeMode::Normal)
            .unwrap();
        assert_eq!(got, OPUS_FRAME);
        first.extend(pcm.chunks(n).map(|s| f64::from(s[0]) / 32768.0));
    }
    let tail = &first[OPUS_RATE as usize / 5..];
    let rms = (tail.iter().map(|v| v * v).sum::<f64>() / tail.len() as f64).sqrt();
    let crossings = tail
        .windows(2)
        .filter(|w| (w[0] < 0.0) != (w[1] < 0.0))
        .count();
    let secs = tail.len() as f64 / f64::from(OPUS_RATE);
    (rms, crossings as f64 / secs)
}

#[test]
fn aac_at_48_khz_stereo_becomes_20_ms_opus_that_plays_the_same_tone() {
    if !ffmpeg() {
        return;
    }
    let (config, frames) = tone(48_000, 2, 2);
    let mut t = OpusTranscoder::new(&config).unwrap();
    assert_eq!(t.channels(), 2);
    assert!(t.pre_skip() > 0, "the encoder's lookahead is signalled");
    let packets = transcode(&mut t, 48_000, &frames, 5_000);
    // 2 s of input (plus the AAC priming frame) in 20 ms packets.
    let expected = frames.len() * 1024 / OPUS_FRAME;
    assert!(
        packets.len().abs_diff(expected) <= 1,
        "{} packets",
        packets.len()
    );
    assert_eq!(packets[0].dts_ms, 5_000);
    for w in packets.windows(2) {
        assert_eq!(w[1].dts_ms - w[0].dts_ms, 20);
    }
    let (rms, crossings) = listen(&packets, 2);
    // ffmpeg spreads the mono tone over two channels at -3 dB.
    let want = TONE_RMS * std::f64::consts::FRAC_1_SQRT_2;
    assert!((rms / want - 1.0).abs() < 0.15, "level {rms}");
    assert!((crossings / 880.0 - 1.0).abs() < 0.03, "pitch {crossings}");
}

#[test]
fn aac_at_44_1_khz_mono_is_resampled_to_opus_at_48_khz() {
    if !ffmpeg() {
        return;
    }
    let (config, frames) = tone(44_100, 1, 2);
    let mut t = OpusTranscoder::new(&config).unwrap();
    assert_eq!(t.channels(), 1);
    let packets = transcode(&mut t, 44_100, &frames, 0);
    let seconds = frames.len() as f64 * 1024.0 / 44_100.0;
    let expected = seconds * 50.0;
    assert!(
        (packets.len() as f64 - expected).abs() <= 2.0,
        "{} packets for {seconds} s",
        packets.len()
    );
    let (rms, crossings) = listen(&packets, 1);
    assert!((rms / TONE_RMS - 1.0).abs() < 0.15, "level {rms}");
    assert!((crossings / 880.0 - 1.0).abs() < 0.03, "pitch {crossings}");
}

#[test]
fn a_timestamp_jump_restarts_the_packet_clock_and_bad_frames_do_not_stop_it() {
    if !ffmpeg() {
        return;
    }
    let (config, frames) = tone(48_000, 2, 1);
    let mut t = OpusTranscoder::new(&config).unwrap();
    let before = transcode(&mut t, 48_000, &frames[..20], 1_000);
    assert!(before.last().unwrap().dts_ms < 1_500);
    // Garbage is an error or noise, never a panic, and good frames go on.
    for junk in [&[][..], &[0xff; 40], &[0x21, 0x00, 0x49], &[0x00; 700]] {
        let _ = t.push(1_427, junk);
    }
    // A reconnect: the publisher's clock starts again near 0.
    let after = transcode(&mut t, 48_000, &frames[20..], 40);
    assert_eq!(after[0].dts_ms, 40);
    for w in after.windows(2) {
        assert_eq!(w[1].dts_ms - w[0].dts_ms, 20);
    }
}

#[test]
fn layouts_the_decoder_does_not_take_are_refused_up_front() {
    let config = |asc: &[u8], channels| AudioConfig {
        asc: Bytes::copy_from_slice(asc),
        object_type: asc[0] >> 3,
        sample_rate: 48_000,
        channels,
    };
    // 5.1 AAC-LC.
    let six = OpusTranscoder::new(&config(&[0x11, 0xb0], 6));
    assert!(matches!(six, Err(OpusError::Unsupported(_))), "{six:?}");
    // HE-AAC (SBR, object type 5).
    let he = OpusTranscoder::new(&config(&[0x2b, 0x92, 0x08, 0x00], 2));
    assert!(matches!(he, Err(OpusError::Unsupported(_))), "{he:?}");
    // An ASC too short to read.
    let short = OpusTranscoder::new(&config(&[0x11], 2));
    assert!(matches!(short, Err(OpusError::Unsupported(_))), "{short:?}");
}

#[test]
fn the_fuzz_body_takes_junk_after_a_real_config() {
    // AAC-LC 48 kHz stereo, then frames of junk and silence.
    let mut data = vec![0x11, 0x90];
    for (i, len) in [0u8, 1, 7, 40, 200, 255, 3]
        .iter()
        .cycle()
        .take(400)
        .enumerate()
    {
        data.push(*len);
        data.extend((0..*len).map(|j| (i as u8).wrapping_mul(31).wrapping_add(j)));
    }
    fuzz_opus(&data);
    // 44.1 kHz mono (resampled), and configs it refuses.
    data[..2].copy_from_slice(&[0x12, 0x08]);
    fuzz_opus(&data);
    for asc in [[0x00, 0x00], [0xff, 0xff], [0x11, 0xb0]] {
        data[..2].copy_from_slice(&asc);
        fuzz_opus(&data);
    }
}
