//! What a DVR window costs a playlist request at the origin: the live
//! playlist with two hours of recorded segments put in front (3,600 of
//! 2 s), rendered, against the same request as a delta update
//! (`_HLS_skip=YES`, which a player sends on every reload) and against the
//! live playlist alone.

use criterion::{criterion_group, criterion_main, Criterion};
use livecdn_origin::record::dvr::extend;
use livecdn_origin::record::index::Recording;
use livecdn_origin::record::journal::{
    Line, MediaKind, RecordingMeta, RenditionMeta, SegmentEntry,
};
use livecdn_shared::playlist::{MediaPlaylist, SkipRequest};
use std::time::{Duration, UNIX_EPOCH};

const BASE_MS: u64 = 1_800_000_000_000;
const RECORDED: u64 = 3_600;

/// Ten live segments from `RECORDED` on, the last one open with parts.
fn live() -> MediaPlaylist {
    let mut text = format!(
        "#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-TARGETDURATION:2\n\
         #EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.0,CAN-SKIP-UNTIL=12.0\n\
         #EXT-X-PART-INF:PART-TARGET=0.33334\n#EXT-X-MEDIA-SEQUENCE:{RECORDED}\n\
         #EXT-X-INDEPENDENT-SEGMENTS\n#EXT-X-MAP:URI=\"init.mp4\"\n"
    );
    for msn in RECORDED..RECORDED + 9 {
        if msn >= RECORDED + 6 {
            for p in 0..6 {
                text.push_str(&format!(
                    "#EXT-X-PART:DURATION=0.33333,URI=\"{msn}.{p}.m4s\"{}\n",
                    if p == 0 { ",INDEPENDENT=YES" } else { "" }
                ));
            }
        }
        text.push_str(&format!("#EXTINF:2.00000,\n{msn}.m4s\n"));
    }
    text.push_str(&format!(
        "#EXT-X-PART:DURATION=0.33333,URI=\"{0}.0.m4s\",INDEPENDENT=YES\n\
         #EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"{0}.1.m4s\"\n",
        RECORDED + 9
    ));
    let mut pl = MediaPlaylist::parse(&text).expect("live playlist");
    for (i, s) in pl.segments.iter_mut().enumerate() {
        let msn = RECORDED + i as u64;
        s.program_date_time = Some(UNIX_EPOCH + Duration::from_millis(BASE_MS + msn * 2000));
    }
    pl
}

fn recording() -> Recording {
    let mut r = Recording::new(RecordingMeta {
        stream: "cam".into(),
        id: "20261206T000000Z".into(),
        started_ms: BASE_MS,
    });
    r.apply(&Line::Rendition(RenditionMeta {
        name: "source".into(),
        kind: MediaKind::Video,
        codecs: "avc1.64001f".into(),
        timescale: 90_000,
        width: Some(1280),
        height: Some(720),
        frame_rate: Some(30.0),
        channels: None,
    }));
    for msn in 0..RECORDED + 6 {
        r.apply(&Line::Segment(SegmentEntry {
            rendition: "source".into(),
            msn,
            gen: 0,
            start: msn * 180_000,
            duration: 180_000,
            pdt_ms: BASE_MS + msn * 2000,
            discontinuity: false,
            bytes: 700_000,
        }));
    }
    r
}

fn bench(c: &mut Criterion) {
    let rec = recording();
    let source = rec.rendition("source").expect("recorded");
    let window = Duration::from_secs(2 * 3600 + 60);
    let base = live();
    let mut group = c.benchmark_group("dvr_playlist");
    group.bench_function("live_only", |b| b.iter(|| base.clone().to_string().len()));
    group.bench_function("dvr_2h_full", |b| {
        b.iter(|| {
            let mut pl = base.clone();
            extend(&mut pl, source, window, None);
            pl.to_string().len()
        })
    });
    group.bench_function("dvr_2h_delta", |b| {
        b.iter(|| {
            let mut pl = base.clone();
            extend(&mut pl, source, window, Some(SkipRequest::Yes));
            pl.to_string().len()
        })
    });
    group.finish();
    let mut full = base.clone();
    extend(&mut full, source, window, None);
    let mut delta = base.clone();
    extend(&mut delta, source, window, Some(SkipRequest::Yes));
    eprintln!(
        "bytes: live {} full {} delta {}",
        base.to_string().len(),
        full.to_string().len(),
        delta.to_string().len()
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
