#![allow(clippy::unwrap_used)]

use super::index::Recording;
use super::journal::{Line, RecordingMeta};
use super::*;

const H: u64 = 3_600_000;

fn rec(stream: &str, started_ms: u64, bytes: u64, done: bool) -> Arc<Recording> {
    let mut r = Recording::new(RecordingMeta {
        stream: stream.into(),
        id: format!("r{started_ms}"),
        started_ms,
    });
    r.bytes = bytes;
    if done {
        r.apply(&Line::End {
            at_ms: started_ms + H / 2,
        });
    }
    Arc::new(r)
}

fn ids(v: Vec<Key>) -> Vec<String> {
    v.into_iter().map(|(s, id)| format!("{s}/{id}")).collect()
}

#[test]
fn age_deletes_old_finished_recordings_only() {
    let all = [
        rec("a", 0, 10, true),
        rec("a", H, 10, false),
        rec("b", 10 * H, 10, true),
    ];
    let config = RecordingConfig {
        max_age: Some(Duration::from_secs(5 * 3600)),
        ..RecordingConfig::default()
    };
    // The one in progress is old too, but still being written.
    assert_eq!(ids(retention_victims(&all, &config, 12 * H)), ["a/r0"]);
}

#[test]
fn bytes_delete_the_oldest_first_until_under() {
    let mb = 1 << 20;
    let all = [
        rec("b", 2 * H, 3 * mb, true),
        rec("a", 0, 2 * mb, true),
        rec("a", H, 2 * mb, true),
        rec("c", 3 * H, 2 * mb, false),
    ];
    let total = RecordingConfig {
        max_bytes: 5 * mb,
        ..RecordingConfig::default()
    };
    // 9 MiB: the two oldest go (5 MiB left).
    assert_eq!(
        ids(retention_victims(&all, &total, 4 * H)),
        ["a/r0", format!("a/r{H}").as_str()]
    );
    let per_stream = RecordingConfig {
        max_stream_bytes: 3 * mb,
        ..RecordingConfig::default()
    };
    // Stream a holds 4 MiB: its oldest goes; b (3 MiB) is at the limit.
    assert_eq!(ids(retention_victims(&all, &per_stream, 4 * H)), ["a/r0"]);
    assert!(retention_victims(&all, &RecordingConfig::default(), 4 * H).is_empty());
}

/// Writes a finished recording's metadata and journal under `root`.
fn write_recording(root: &std::path::Path, stream: &str, id: &str, started_ms: u64, bytes: u64) {
    let paths = Paths::new(root, stream, id);
    std::fs::create_dir_all(&paths.dir).unwrap();
    let meta = RecordingMeta {
        stream: stream.into(),
        id: id.into(),
        started_ms,
    };
    std::fs::write(paths.meta(), serde_json::to_vec(&meta).unwrap()).unwrap();
    let lines = [
        Line::Rendition(super::journal::RenditionMeta {
            name: "source".into(),
            kind: super::journal::MediaKind::Video,
            codecs: "avc1.64001f".into(),
            timescale: 90_000,
            width: None,
            height: None,
            frame_rate: None,
            channels: None,
        }),
        Line::Segment(super::journal::SegmentEntry {
            rendition: "source".into(),
            msn: 0,
            gen: 0,
            start: 0,
            duration: 180_000,
            pdt_ms: started_ms,
            discontinuity: false,
            bytes,
        }),
        Line::End {
            at_ms: started_ms + 2000,
        },
    ];
    let text: String = lines.iter().map(Line::to_line).collect();
    std::fs::write(paths.journal(), text).unwrap();
}

#[tokio::test]
async fn the_recorder_deletes_the_oldest_recording_when_over_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let mb = 1 << 20;
    write_recording(dir.path(), "cam", "20261201T000000Z", 1_000, 2 * mb);
    write_recording(dir.path(), "cam", "20261202T000000Z", 2_000, 2 * mb);
    write_recording(dir.path(), "lobby", "20261203T000000Z", 3_000, 2 * mb);
    let rec = Recorder::open(RecordingConfig {
        dir: dir.path().to_path_buf(),
        max_bytes: 5 * mb,
        ..RecordingConfig::default()
    })
    .await;
    assert_eq!(rec.list().len(), 3);
    assert_eq!(rec.total_bytes(), 6 * mb);
    assert_eq!(rec.enforce_retention(now_ms()).await, 1);
    assert!(!dir.path().join("cam/20261201T000000Z").exists());
    assert!(dir.path().join("cam/20261202T000000Z").exists());
    assert!(rec.get("cam", "20261201T000000Z").is_none());
    assert_eq!(rec.total_bytes(), 4 * mb);
    assert_eq!(rec.stats.expired.load(Ordering::Relaxed), 1);
    // Under the limit now: nothing more goes.
    assert_eq!(rec.enforce_retention(now_ms()).await, 0);
    // Finished recordings found at a start are not reported again.
    let mut finished = rec.take_finished().unwrap();
    assert!(finished.try_recv().is_err());
}
