//! Packager throughput: frames per second through `handle_frame` (CMAF chunk
//! writing, part/segment cutting, window trimming) and playlist rendering.

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use livecdn_origin::packager::{Packager, PackagerConfig, SOURCE};
use livecdn_shared::media::{AudioConfig, Frame, TrackKind, VideoConfig};
use std::time::{Duration, Instant, SystemTime};

const FRAMES: u32 = 3_000; // 100 s of 30 fps video, plus its audio

fn packager(now: Instant) -> Packager {
    let mut p = Packager::new(PackagerConfig::default(), now, SystemTime::now());
    p.handle_video_config(VideoConfig {
        avcc: Bytes::from_static(&[
            1, 0x64, 0, 0x1f, 0xff, 0xe1, 0, 4, 0x67, 0x64, 0, 0x1f, 1, 0, 1, 0x68,
        ]),
        width: 1280,
        height: 720,
        profile_idc: 0x64,
        constraint_flags: 0,
        level_idc: 0x1f,
        nal_length_size: 4,
        frame_rate: Some(30.0),
    });
    p.handle_audio_config(AudioConfig {
        asc: Bytes::from_static(&[0x11, 0x90]),
        object_type: 2,
        sample_rate: 48_000,
        channels: 2,
    });
    p
}

/// Interleaved frames in arrival order: 30 fps video (IDR every 60) and
/// 46.875 fps AAC, payloads shared (as the ingest path slices them).
fn frames() -> Vec<Frame> {
    let video = Bytes::from(vec![0x41; 12_000]);
    let idr = Bytes::from(vec![0x65; 60_000]);
    let audio = Bytes::from(vec![0x21; 380]);
    let mut out = Vec::new();
    let (mut v, mut a) = (0u32, 0u32);
    while v < FRAMES {
        let tv = f64::from(v) * 1000.0 / 30.0;
        let ta = f64::from(a) * 1024.0 * 1000.0 / 48_000.0;
        if tv <= ta {
            let key = v % 60 == 0;
            out.push(Frame {
                track: TrackKind::Video,
                dts_ms: tv.round() as u32,
                cts_ms: 0,
                keyframe: key,
                data: if key { idr.clone() } else { video.clone() },
            });
            v += 1;
        } else {
            out.push(Frame {
                track: TrackKind::Audio,
                dts_ms: ta.round() as u32,
                cts_ms: 0,
                keyframe: true,
                data: audio.clone(),
            });
            a += 1;
        }
    }
    out
}

fn bench(c: &mut Criterion) {
    let input = frames();
    let mut g = c.benchmark_group("packager");
    g.throughput(Throughput::Elements(input.len() as u64));
    g.bench_function("handle_frame (video+audio, frames/s)", |b| {
        b.iter_batched(
            || (packager(Instant::now()), input.clone()),
            |(mut p, frames)| {
                let t0 = Instant::now();
                for (i, f) in frames.into_iter().enumerate() {
                    p.handle_frame(t0 + Duration::from_millis(i as u64 * 13), f);
                }
                p
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();

    let mut p = packager(Instant::now());
    let t0 = Instant::now();
    for f in frames().into_iter().take(1_000) {
        p.handle_frame(t0, f);
    }
    c.bench_function("media playlist render (10-segment window)", |b| {
        b.iter(|| {
            p.media_playlist(SOURCE, None)
                .map(|pl| pl.to_string().len())
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
