//! Finding recordings at start: every `DIR/STREAM/RECORDING/` with a
//! `recording.json` is read back from its journal, and one that was still
//! being written when the process died (no `end` or `error` line) is
//! closed: segment files the journal does not list yet are parsed and
//! listed if whole, a torn last journal line is cut off, and a `recovered`
//! line ends it. What a crash leaves therefore plays as VOD up to the last
//! whole segment.
//!
//! This runs once, before the origin serves, on the blocking pool: plain
//! `std::fs` is right for a one-off scan.

use super::index::Recording;
use super::journal::{Line, Paths, RecordingMeta, META_FILE};
use livecdn_shared::auth::valid_stream_name;
use std::fs;
use std::io::{Seek as _, Write as _};
use std::path::Path;

/// Every recording under `root`, oldest first per stream, each with
/// whether this scan closed it (it was unfinished). Unreadable entries are
/// logged and left alone.
pub fn scan(root: &Path, now_ms: u64) -> Vec<(Recording, bool)> {
    let mut out = Vec::new();
    let Ok(streams) = fs::read_dir(root) else {
        return out;
    };
    for stream in streams.flatten() {
        let name = stream.file_name().to_string_lossy().into_owned();
        if !valid_stream_name(&name) {
            continue;
        }
        let Ok(recordings) = fs::read_dir(stream.path()) else {
            continue;
        };
        let mut found: Vec<(Recording, bool)> = recordings
            .flatten()
            .filter_map(|r| {
                let id = r.file_name().to_string_lossy().into_owned();
                let paths = Paths::new(root, &name, &id);
                match load(&paths, now_ms) {
                    Ok(rec) => rec,
                    Err(e) => {
                        tracing::warn!(stream = %name, recording = %id, error = %e, "recording not readable; left alone");
                        None
                    }
                }
            })
            .collect();
        found.sort_by(|a, b| a.0.meta.id.cmp(&b.0.meta.id));
        out.extend(found);
    }
    out
}

/// One recording directory, and whether it was closed now; `None` if it
/// is not one (no metadata) or was empty (removed).
fn load(paths: &Paths, now_ms: u64) -> std::io::Result<Option<(Recording, bool)>> {
    let meta = match fs::read(paths.meta()) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let meta: RecordingMeta = serde_json::from_slice(&meta)
        .map_err(|e| std::io::Error::other(format!("{META_FILE}: {e}")))?;
    let journal = match fs::read(paths.journal()) {
        Ok(b) => String::from_utf8_lossy(&b).into_owned(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e),
    };
    let (mut rec, used) = Recording::rebuild(meta, &journal);
    if rec.state.is_final() {
        return Ok(Some((rec, false)));
    }
    let mut lines = Vec::new();
    let names: Vec<String> = rec.renditions.iter().map(|r| r.meta.name.clone()).collect();
    for name in names {
        let on_disk = segment_files(&paths.dir.join(&name));
        for msn in rec.unlisted(&name, &on_disk) {
            let file = fs::read(paths.segment(&name, msn))?;
            match rec.recover_segment(&name, msn, &file) {
                Some(line) => lines.push(line),
                // A torn file ends what this rendition can play.
                None => break,
            }
        }
    }
    if rec.segment_count() == 0 {
        fs::remove_dir_all(&paths.dir)?;
        tracing::info!(stream = %rec.meta.stream, recording = %rec.meta.id, "empty unfinished recording removed");
        return Ok(None);
    }
    let end = Line::Recovered {
        at_ms: rec.media_end_ms().min(now_ms),
    };
    rec.apply(&end);
    lines.push(end);
    // Cut a torn last line, then close the journal.
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(paths.journal())?;
    file.set_len(used as u64)?;
    file.seek(std::io::SeekFrom::End(0))?;
    let text: String = lines.iter().map(Line::to_line).collect();
    file.write_all(text.as_bytes())?;
    tracing::info!(
        stream = %rec.meta.stream,
        recording = %rec.meta.id,
        segments = rec.segment_count(),
        seconds = rec.duration_secs(),
        "unfinished recording recovered"
    );
    Ok(Some((rec, true)))
}

/// The MSNs of a rendition directory's segment files.
fn segment_files(dir: &Path) -> Vec<u64> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name();
            let name = name.to_str()?;
            name.strip_suffix(".m4s")?.parse().ok()
        })
        .collect()
}
