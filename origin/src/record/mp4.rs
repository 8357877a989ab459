//! `download.mp4`: a recording as one progressive MP4 (`ftyp`, `moov`
//! first, then one `mdat`), for players and tools that do not speak HLS.
//!
//! Nothing is re-encoded or copied into a new file: the sample tables are
//! built from the recorded fragments' `trun`s ([`super::fragment`]), the
//! sample entries from the init sections (one per init generation, so a
//! codec change mid-recording stays playable), and the `mdat` is the
//! recorded samples' bytes in place: a [`Layout`] is a list of pieces
//! (the header in memory, then runs of each segment file), which the HTTP
//! layer streams, one segment file read at a time, for any byte range.
//!
//! Tracks: the main video rendition (the source when recorded) as track 1
//! and the audio as track 2. Each starts at its first sample; an edit list
//! delays the later one so that both keep their recorded alignment, and
//! shifts video by its first composition offset (B-frames) so that
//! presentation starts at zero.

use super::fragment::{self, SampleRef};
use super::index::{Recording, RenditionIndex};
use super::journal::{MediaKind, Paths};
use bytes::{BufMut, Bytes, BytesMut};
use livecdn_disk::{Disk, DiskError};
use mp4_atom::{
    Co64, Ctts, CttsEntry, Decode, Edts, Elst, ElstEntry, Encode, FourCC, Ftyp, Moov, Mvhd, Stco,
    Stsc, StscEntry, Stss, Stsz, StszSamples, Stts, SttsEntry, Trak,
};
use std::path::PathBuf;

/// The movie timescale (`mvhd`, `tkhd`, `elst`): milliseconds.
const MOVIE_TIMESCALE: u32 = 1000;

/// Why no MP4 could be made.
#[derive(Debug, thiserror::Error)]
pub enum Mp4Error {
    #[error("nothing recorded")]
    Empty,
    #[error(transparent)]
    Disk(#[from] DiskError),
    #[error("init section of {rendition} (generation {gen}): {reason}")]
    Init {
        rendition: String,
        gen: u32,
        reason: String,
    },
    #[error("segment {msn} of {rendition}: {reason}")]
    Segment {
        rendition: String,
        msn: u64,
        reason: String,
    },
    #[error("mp4 encoding: {0}")]
    Encode(String),
}

/// One piece of the file.
#[derive(Debug, Clone)]
pub enum Piece {
    /// Bytes made here: `ftyp`, `moov` and the `mdat` header.
    Mem(Bytes),
    /// Runs of a segment file, `(offset, len)` each, in order.
    File {
        path: PathBuf,
        runs: Vec<(u64, u64)>,
    },
}

impl Piece {
    pub fn len(&self) -> u64 {
        match self {
            Piece::Mem(b) => b.len() as u64,
            Piece::File { runs, .. } => runs.iter().map(|r| r.1).sum(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The piece's bytes, as slices of one read (no copy).
    pub async fn read(&self, disk: &Disk) -> Result<Vec<Bytes>, DiskError> {
        match self {
            Piece::Mem(b) => Ok(vec![b.clone()]),
            Piece::File { path, runs } => {
                let (Some(first), Some(last)) = (runs.first(), runs.last()) else {
                    return Ok(Vec::new());
                };
                let from = first.0;
                let data = disk.read(path, from, Some(last.0 + last.1 - from)).await?;
                Ok(runs
                    .iter()
                    .map(|(o, l)| {
                        let s = ((o - from) as usize).min(data.len());
                        let e = (s + *l as usize).min(data.len());
                        data.slice(s..e)
                    })
                    .collect())
            }
        }
    }
}

/// The whole file as pieces.
#[derive(Debug, Clone)]
pub struct Layout {
    pub pieces: Vec<Piece>,
    /// Where each piece starts.
    pub starts: Vec<u64>,
    pub size: u64,
    /// Seconds of the longest track.
    pub duration_secs: f64,
}

impl Layout {
    fn new(pieces: Vec<Piece>, duration_secs: f64) -> Self {
        let mut starts = Vec::with_capacity(pieces.len());
        let mut at = 0;
        for p in &pieces {
            starts.push(at);
            at += p.len();
        }
        Self {
            pieces,
            starts,
            size: at,
            duration_secs,
        }
    }

    /// The pieces that overlap bytes `from..to`, with the part of each
    /// wanted as `(piece, skip, take)`.
    pub fn span(&self, from: u64, to: u64) -> Vec<(usize, u64, u64)> {
        let mut out = Vec::new();
        for (i, p) in self.pieces.iter().enumerate() {
            let (s, e) = (self.starts[i], self.starts[i] + p.len());
            if e <= from || s >= to {
                continue;
            }
            let skip = from.saturating_sub(s);
            let take = to.min(e) - s.max(from);
            out.push((i, skip, take));
        }
        out
    }
}

/// One chunk of a track: a run of samples contiguous in a segment file.
#[derive(Debug, Clone)]
struct Chunk {
    segment: usize,
    offset: u64,
    len: u64,
    samples: u32,
    desc: u32,
}

/// A track's samples and where they are.
struct TrackBuild {
    trak: Trak,
    timescale: u32,
    /// Segment files, in order, with the start of each in seconds.
    segments: Vec<(PathBuf, f64)>,
    chunks: Vec<Chunk>,
    samples: Vec<SampleRef>,
    start_ticks: u64,
}

/// Builds the layout of `rec`'s MP4 from its files.
pub async fn build(disk: &Disk, paths: &Paths, rec: &Recording) -> Result<Layout, Mp4Error> {
    let video = rec
        .renditions
        .iter()
        .find(|r| r.meta.kind == MediaKind::Video && !r.segments.is_empty());
    let audio = rec
        .renditions
        .iter()
        .find(|r| r.meta.kind == MediaKind::Audio && !r.segments.is_empty());
    let mut tracks = Vec::new();
    for (id, r) in video.into_iter().chain(audio).enumerate() {
        tracks.push(track(disk, paths, r, id as u32 + 1).await?);
    }
    if tracks.is_empty() {
        return Err(Mp4Error::Empty);
    }
    assemble(tracks)
}

async fn track(
    disk: &Disk,
    paths: &Paths,
    r: &RenditionIndex,
    track_id: u32,
) -> Result<TrackBuild, Mp4Error> {
    let name = &r.meta.name;
    let mut gens: Vec<u32> = Vec::new();
    for s in &r.segments {
        if !gens.contains(&s.gen) {
            gens.push(s.gen);
        }
    }
    let mut trak: Option<Trak> = None;
    let mut codecs = Vec::new();
    for gen in &gens {
        let bad = |reason: String| Mp4Error::Init {
            rendition: name.clone(),
            gen: *gen,
            reason,
        };
        let data = disk.read(paths.init(name, *gen), 0, None).await?;
        let mut buf = &data[..];
        Ftyp::decode(&mut buf).map_err(|e| bad(e.to_string()))?;
        let moov = Moov::decode(&mut buf).map_err(|e| bad(e.to_string()))?;
        let t = moov
            .trak
            .into_iter()
            .next()
            .ok_or_else(|| bad("no track".into()))?;
        codecs.extend(t.mdia.minf.stbl.stsd.codecs.iter().take(1).cloned());
        trak.get_or_insert(t);
    }
    let Some(mut trak) = trak else {
        return Err(Mp4Error::Empty);
    };
    trak.tkhd.track_id = track_id;
    trak.mdia.minf.stbl.stsd.codecs = codecs;
    let timescale = r.meta.timescale.max(1);
    let mut out = TrackBuild {
        trak,
        timescale,
        segments: Vec::new(),
        chunks: Vec::new(),
        samples: Vec::new(),
        start_ticks: r.segments.first().map_or(0, |s| s.start),
    };
    for s in &r.segments {
        let path = paths.segment(name, s.msn);
        let data = disk.read(&path, 0, None).await?;
        let scanned = fragment::scan(&data).map_err(|e| Mp4Error::Segment {
            rendition: name.clone(),
            msn: s.msn,
            reason: e.to_string(),
        })?;
        let desc = gens.iter().position(|g| *g == s.gen).unwrap_or(0) as u32 + 1;
        let seg = out.segments.len();
        out.segments
            .push((path, scanned.start as f64 / f64::from(timescale)));
        for sample in scanned.samples {
            let off = sample.offset as u64;
            match out.chunks.last_mut() {
                Some(c) if c.segment == seg && c.offset + c.len == off => {
                    c.len += u64::from(sample.size);
                    c.samples += 1;
                }
                _ => out.chunks.push(Chunk {
                    segment: seg,
                    offset: off,
                    len: u64::from(sample.size),
                    samples: 1,
                    desc,
                }),
            }
            out.samples.push(sample);
        }
    }
    Ok(out)
}

/// Lays the tracks' segments out in time order and writes the header.
fn assemble(mut tracks: Vec<TrackBuild>) -> Result<Layout, Mp4Error> {
    // Segment order in the mdat: by start time, video first on a tie.
    let mut order: Vec<(f64, usize, usize)> = tracks
        .iter()
        .enumerate()
        .flat_map(|(t, tb)| {
            tb.segments
                .iter()
                .enumerate()
                .map(move |(s, seg)| (seg.1, t, s))
        })
        .collect();
    order.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let media: u64 = tracks
        .iter()
        .flat_map(|t| t.chunks.iter().map(|c| c.len))
        .sum();
    let large = media > u64::from(u32::MAX) - (64 << 20);
    let mdat_header = if large { 16 } else { 8 };
    // Chunk offsets relative to the mdat payload, per track.
    let mut rel: Vec<Vec<u64>> = tracks.iter().map(|t| vec![0; t.chunks.len()]).collect();
    let mut pieces_rel: Vec<(PathBuf, Vec<(u64, u64)>)> = Vec::new();
    let mut at = 0u64;
    for (_, t, s) in &order {
        let tb = &tracks[*t];
        let mut runs = Vec::new();
        for (i, c) in tb
            .chunks
            .iter()
            .enumerate()
            .filter(|(_, c)| c.segment == *s)
        {
            rel[*t][i] = at;
            at += c.len;
            runs.push((c.offset, c.len));
        }
        if !runs.is_empty() {
            pieces_rel.push((tb.segments[*s].0.clone(), runs));
        }
    }
    let min_start = tracks
        .iter()
        .map(|t| t.start_ticks as f64 / f64::from(t.timescale))
        .fold(f64::INFINITY, f64::min);
    let mut duration_secs = 0f64;
    for tb in tracks.iter_mut() {
        let secs = tables(tb, min_start, large);
        duration_secs = duration_secs.max(secs);
    }
    // Encode once with placeholder offsets to learn the header's size (the
    // same tables with other values encode to the same size), then again.
    let header = |tracks: &[TrackBuild]| -> Result<Vec<u8>, Mp4Error> {
        let mut buf = Vec::new();
        ftyp()
            .encode(&mut buf)
            .map_err(|e| Mp4Error::Encode(e.to_string()))?;
        moov(tracks, duration_secs)
            .encode(&mut buf)
            .map_err(|e| Mp4Error::Encode(e.to_string()))?;
        Ok(buf)
    };
    let head_len = header(&tracks)?.len() as u64 + mdat_header;
    for (t, tb) in tracks.iter_mut().enumerate() {
        let offsets: Vec<u64> = rel[t].iter().map(|o| o + head_len).collect();
        let stbl = &mut tb.trak.mdia.minf.stbl;
        if large {
            stbl.co64 = Some(Co64 { entries: offsets });
        } else {
            stbl.stco = Some(Stco {
                entries: offsets.iter().map(|o| *o as u32).collect(),
            });
        }
    }
    let mut head = BytesMut::from(&header(&tracks)?[..]);
    if large {
        head.put_u32(1);
        head.put_slice(b"mdat");
        head.put_u64(media + 16);
    } else {
        head.put_u32(media as u32 + 8);
        head.put_slice(b"mdat");
    }
    debug_assert_eq!(head.len() as u64, head_len);
    let pieces = std::iter::once(Piece::Mem(head.freeze()))
        .chain(
            pieces_rel
                .into_iter()
                .map(|(path, runs)| Piece::File { path, runs }),
        )
        .collect();
    Ok(Layout::new(pieces, duration_secs))
}

/// Fills a track's sample tables (offsets zero) and durations; its
/// duration in seconds.
fn tables(tb: &mut TrackBuild, min_start: f64, large: bool) -> f64 {
    let n = tb.samples.len() as u32;
    let mut stts: Vec<SttsEntry> = Vec::new();
    let mut ctts: Vec<CttsEntry> = Vec::new();
    let mut stss = Vec::new();
    let mut ticks = 0u64;
    for (i, s) in tb.samples.iter().enumerate() {
        let duration = sample_duration(s, tb.samples.get(i + 1), tb.timescale);
        ticks += u64::from(duration);
        match stts.last_mut() {
            Some(e) if e.sample_delta == duration => e.sample_count += 1,
            _ => stts.push(SttsEntry {
                sample_count: 1,
                sample_delta: duration,
            }),
        }
        match ctts.last_mut() {
            Some(e) if e.sample_offset == i64::from(s.cts) => e.sample_count += 1,
            _ => ctts.push(CttsEntry {
                sample_count: 1,
                sample_offset: i64::from(s.cts),
            }),
        }
        if s.sync {
            stss.push(i as u32 + 1);
        }
    }
    let mut stsc: Vec<StscEntry> = Vec::new();
    for (i, c) in tb.chunks.iter().enumerate() {
        if stsc.last().is_some_and(|e| {
            e.samples_per_chunk == c.samples && e.sample_description_index == c.desc
        }) {
            continue;
        }
        stsc.push(StscEntry {
            first_chunk: i as u32 + 1,
            samples_per_chunk: c.samples,
            sample_description_index: c.desc,
        });
    }
    let stbl = &mut tb.trak.mdia.minf.stbl;
    stbl.stts = Stts { entries: stts };
    stbl.ctts = (ctts.iter().any(|e| e.sample_offset != 0)).then_some(Ctts { entries: ctts });
    stbl.stss = (stss.len() < n as usize).then_some(Stss { entries: stss });
    stbl.stsz = Stsz {
        samples: StszSamples::Different {
            sizes: tb.samples.iter().map(|s| s.size).collect(),
        },
    };
    stbl.stsc = Stsc { entries: stsc };
    let zeros = vec![0u64; tb.chunks.len()];
    if large {
        stbl.co64 = Some(Co64 { entries: zeros });
        stbl.stco = None;
    } else {
        stbl.stco = Some(Stco {
            entries: vec![0; zeros.len()],
        });
        stbl.co64 = None;
    }
    let ts = f64::from(tb.timescale);
    let secs = ticks as f64 / ts;
    let movie = |s: f64| (s * f64::from(MOVIE_TIMESCALE)).round() as u64;
    tb.trak.mdia.mdhd.timescale = tb.timescale;
    tb.trak.mdia.mdhd.duration = ticks;
    tb.trak.tkhd.duration = movie(secs);
    // Presentation starts at the first sample's composition time; a track
    // that starts later than the other waits in an empty edit.
    let first_cts = tb.samples.first().map_or(0, |s| s.cts.max(0) as u64);
    let delay = tb.start_ticks as f64 / ts - min_start;
    let mut entries = Vec::new();
    if movie(delay) > 0 {
        entries.push(ElstEntry {
            segment_duration: movie(delay),
            media_time: None,
            media_rate: 1i16.into(),
        });
    }
    entries.push(ElstEntry {
        segment_duration: movie(secs),
        media_time: Some(first_cts),
        media_rate: 1i16.into(),
    });
    tb.trak.edts = Some(Edts {
        elst: Some(Elst { entries }),
    });
    secs + delay
}

/// A sample's duration: up to the next sample's decode time, which is
/// exact where the written duration is an estimate, unless that is a jump
/// (a publisher's reconnect, missing segments), which the file does not
/// keep: playback goes straight on.
fn sample_duration(s: &SampleRef, next: Option<&SampleRef>, timescale: u32) -> u32 {
    let own = s.duration;
    let Some(d) = next.and_then(|n| n.dts.checked_sub(s.dts)) else {
        return own;
    };
    let limit = match own {
        0 => u64::from(timescale),
        o => u64::from(o) * 4,
    };
    match u32::try_from(d) {
        Ok(d) if d > 0 && u64::from(d) <= limit => d,
        _ => own,
    }
}

fn ftyp() -> Ftyp {
    Ftyp {
        major_brand: FourCC::new(b"isom"),
        minor_version: 512,
        compatible_brands: [b"isom", b"iso2", b"avc1", b"mp41"]
            .iter()
            .map(|b| FourCC::new(b))
            .collect(),
    }
}

fn moov(tracks: &[TrackBuild], duration_secs: f64) -> Moov {
    Moov {
        mvhd: Mvhd {
            timescale: MOVIE_TIMESCALE,
            duration: (duration_secs * f64::from(MOVIE_TIMESCALE)).round() as u64,
            rate: 1u16.into(),
            volume: 1u8.into(),
            next_track_id: tracks.len() as u32 + 1,
            ..Mvhd::default()
        },
        trak: tracks.iter().map(|t| t.trak.clone()).collect(),
        ..Moov::default()
    }
}

#[cfg(test)]
#[path = "mp4_tests.rs"]
mod tests;
