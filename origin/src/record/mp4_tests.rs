#![allow(clippy::unwrap_used)]

use super::*;
use crate::packager::tests::Feed;
use crate::packager::{AUDIO, SOURCE};
use crate::record::follow::{Follower, Renditions, Write};
use crate::record::journal::{Line, RecordingMeta};
use livecdn_disk::DiskConfig;

/// Records `f`'s window to `dir` the way the recorder does; the index.
async fn record(disk: &Disk, paths: &Paths, f: &Feed) -> Recording {
    let mut rec = Recording::new(RecordingMeta {
        stream: "cam".into(),
        id: "t".into(),
        started_ms: 0,
    });
    for w in Follower::new(Renditions::Source).poll(&f.p) {
        let line = match w {
            Write::Rendition(m) => Line::Rendition(m),
            Write::Init {
                rendition,
                gen,
                body,
            } => {
                let bytes = disk
                    .write(paths.init(&rendition, gen), vec![body])
                    .await
                    .unwrap();
                Line::Init {
                    rendition,
                    gen,
                    bytes,
                }
            }
            Write::Segment { entry, body } => {
                disk.write(paths.segment(&entry.rendition, entry.msn), body)
                    .await
                    .unwrap();
                Line::Segment(entry)
            }
            Write::End => Line::End { at_ms: 0 },
        };
        rec.apply(&line);
    }
    rec
}

async fn whole(disk: &Disk, layout: &Layout) -> Vec<u8> {
    let mut out = Vec::new();
    for p in &layout.pieces {
        for b in p.read(disk).await.unwrap() {
            out.extend_from_slice(&b);
        }
    }
    out
}

#[tokio::test]
async fn builds_a_progressive_mp4_from_the_recorded_fragments() {
    let dir = tempfile::tempdir().unwrap();
    let disk = Disk::start(DiskConfig::default()).await;
    let paths = Paths::new(dir.path(), "cam", "t");
    let mut f = Feed::new(true, true);
    f.run_until(9_000.0);
    let rec = record(&disk, &paths, &f).await;
    let layout = build(&disk, &paths, &rec).await.unwrap();
    let file = whole(&disk, &layout).await;
    assert_eq!(file.len() as u64, layout.size);

    let mut buf = &file[..];
    let ftyp = Ftyp::decode(&mut buf).unwrap();
    assert_eq!(ftyp.major_brand, FourCC::new(b"isom"));
    let moov = Moov::decode(&mut buf).unwrap();
    assert!(moov.mvex.is_none(), "not fragmented");
    assert_eq!(moov.trak.len(), 2);
    assert_eq!(&buf[4..8], b"mdat");
    let mdat_start = file.len() - buf.len() + 8;

    for (trak, name) in moov.trak.iter().zip([SOURCE, AUDIO]) {
        let r = rec.rendition(name).unwrap();
        // Every sample of every recorded segment, in order.
        let mut sizes = Vec::new();
        let mut span: Option<(u64, u64)> = None;
        for s in &r.segments {
            let data = std::fs::read(paths.segment(name, s.msn)).unwrap();
            let scanned = fragment::scan(&data).unwrap();
            sizes.extend(scanned.samples.iter().map(|x| x.size));
            let (first, last) = (scanned.samples[0], *scanned.samples.last().unwrap());
            let end = last.dts + u64::from(last.duration);
            span = Some((span.map_or(first.dts, |s| s.0), end));
            // The first sample's bytes sit where the chunk table says.
            if s.msn == r.segments[0].msn {
                let first = scanned.samples[0];
                let stbl = &trak.mdia.minf.stbl;
                let at = stbl.stco.as_ref().unwrap().entries[0] as usize;
                assert!(at >= mdat_start);
                assert_eq!(
                    &file[at..at + first.size as usize],
                    &data[first.offset..first.offset + first.size as usize]
                );
            }
        }
        // Durations run from decode time to decode time: the file's
        // timeline is the recorded one, without the written estimates'
        // shortfall.
        let ticks = span.map(|(a, b)| b - a).unwrap();
        let stbl = &trak.mdia.minf.stbl;
        match &stbl.stsz.samples {
            StszSamples::Different { sizes: got } => assert_eq!(got, &sizes, "{name}"),
            other => panic!("{other:?}"),
        }
        let stts_total: u64 = stbl
            .stts
            .entries
            .iter()
            .map(|e| u64::from(e.sample_count) * u64::from(e.sample_delta))
            .sum();
        assert_eq!(stts_total, ticks, "{name}");
        assert_eq!(trak.mdia.mdhd.duration, ticks);
        let samples_in_chunks: u64 = {
            let chunks = stbl.stco.as_ref().unwrap().entries.len() as u32;
            let e = &stbl.stsc.entries;
            (0..e.len())
                .map(|i| {
                    let end = e.get(i + 1).map_or(chunks + 1, |n| n.first_chunk);
                    u64::from(end - e[i].first_chunk) * u64::from(e[i].samples_per_chunk)
                })
                .sum()
        };
        assert_eq!(samples_in_chunks, sizes.len() as u64, "{name}");
    }
    // Video: every other sample is not a keyframe, so there is a sync table.
    assert!(moov.trak[0].mdia.minf.stbl.stss.is_some());
    assert_eq!(moov.trak[1].tkhd.track_id, 2);
    let secs = layout.duration_secs;
    assert!((secs - rec.duration_secs()).abs() < 0.1, "{secs}");

    // A range anywhere in the file is the same bytes.
    for (from, to) in [(0, 10), (100, 5000), (layout.size - 77, layout.size)] {
        let mut got = Vec::new();
        for (i, skip, take) in layout.span(from, to) {
            let mut all = Vec::new();
            for b in layout.pieces[i].read(&disk).await.unwrap() {
                all.extend_from_slice(&b);
            }
            got.extend_from_slice(&all[skip as usize..(skip + take) as usize]);
        }
        assert_eq!(got, &file[from as usize..to as usize]);
    }
    ffprobe(&file, secs);
}

/// ffprobe reads the file: two streams and the duration. Skipped without
/// ffprobe, except under CI.
fn ffprobe(file: &[u8], secs: f64) {
    let probe = std::process::Command::new("ffprobe")
        .arg("-version")
        .output();
    if probe.is_err() {
        assert!(std::env::var("CI").is_err(), "ffprobe is needed under CI");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.mp4");
    std::fs::write(&path, file).unwrap();
    let out = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "format=duration:stream=codec_type,nb_frames",
            "-of",
            "json",
        ])
        .arg(&path)
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let kinds: Vec<&str> = v["streams"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["codec_type"].as_str())
        .collect();
    assert_eq!(kinds, ["video", "audio"], "{v}");
    let d: f64 = v["format"]["duration"].as_str().unwrap().parse().unwrap();
    assert!((d - secs).abs() < 0.2, "ffprobe says {d}, built {secs}");
}
