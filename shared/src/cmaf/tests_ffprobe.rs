//! End-to-end check against ffmpeg's demuxer and H.264 decoder.
//!
//! x264 encodes a tiny clip with B-frames into a plain MP4; its samples and
//! avcC are re-muxed with our `init_segment` + two `chunk`s, then ffprobe must
//! report the same packets (size, keyframe flag, pts - dts, dts steps) and
//! ffmpeg must decode every frame without complaint.
//!
//! Skips when ffmpeg/ffprobe are missing, unless `CI=true`, where a missing
//! tool is a broken CI image and fails the test.

use std::path::{Path, PathBuf};
use std::process::Command;

use bytes::Bytes;
use mp4_atom::{Codec, Decode, Encode, Header, Moov, StszSamples};

use super::*;

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// What the remux needs from the x264 file.
struct Source {
    samples: Vec<Sample>,
    payloads: Vec<Bytes>,
    avcc: Bytes,
    timescale: u32,
}

/// One ffprobe packet: size, keyframe, pts - dts, dts.
type Packet = (u64, bool, i64, i64);

const FRAMES: usize = 12;

fn tools_available() -> Result<bool, String> {
    let found = ["ffmpeg", "ffprobe"].iter().all(|tool| {
        Command::new(tool)
            .arg("-version")
            .output()
            .is_ok_and(|o| o.status.success())
    });
    match (found, std::env::var("CI").as_deref()) {
        (true, _) => Ok(true),
        (false, Ok("true")) => Err("ffmpeg/ffprobe missing on CI".into()),
        (false, _) => Ok(false),
    }
}

/// A temp directory removed on drop, unique per process and test.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> std::io::Result<Self> {
        let dir = std::env::temp_dir().join(format!("livecdn-cmaf-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        Ok(Self(dir))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn run(cmd: &mut Command) -> Result<String, Box<dyn std::error::Error>> {
    let out = cmd.output()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        return Err(format!("{cmd:?} failed: {stderr}").into());
    }
    if !stderr.trim().is_empty() {
        return Err(format!("{cmd:?} complained: {stderr}").into());
    }
    Ok(String::from_utf8(out.stdout)?)
}

/// Samples, payloads, avcC body and timescale of the first track of `file`.
fn read_source(file: &[u8]) -> Result<Source, Box<dyn std::error::Error>> {
    let mut pos = 0;
    let moov = loop {
        let mut buf = file.get(pos..).ok_or("no moov")?;
        let header = Header::decode(&mut buf)?;
        let header_len = file.len() - pos - buf.len();
        if header.kind == b"moov".into() {
            break Moov::decode(&mut file.get(pos..).ok_or("no moov")?)?;
        }
        pos += header_len + header.size.ok_or("unsized box")?;
    };
    let trak = moov.trak.first().ok_or("no trak")?;
    let stbl = &trak.mdia.minf.stbl;
    let Some(Codec::Avc1(avc1)) = stbl.stsd.codecs.first() else {
        return Err("not avc1".into());
    };
    let mut avcc = Vec::new();
    avc1.avcc.encode(&mut avcc)?;
    let avcc = Bytes::from(avcc).slice(8..); // drop the box header

    let sizes = match &stbl.stsz.samples {
        StszSamples::Different { sizes } => sizes.clone(),
        StszSamples::Identical { count, size } => vec![*size; *count as usize],
    };
    let expand = |pairs: Vec<(u32, i64)>| -> Vec<i64> {
        pairs
            .into_iter()
            .flat_map(|(n, v)| std::iter::repeat_n(v, n as usize))
            .collect()
    };
    let durations = expand(
        stbl.stts
            .entries
            .iter()
            .map(|e| (e.sample_count, i64::from(e.sample_delta)))
            .collect(),
    );
    let cts = match &stbl.ctts {
        Some(ctts) => expand(
            ctts.entries
                .iter()
                .map(|e| (e.sample_count, e.sample_offset))
                .collect(),
        ),
        None => vec![0; sizes.len()],
    };
    let stco = stbl.stco.as_ref().ok_or("no stco")?;
    if stco.entries.len() != 1 {
        return Err("test expects one chunk".into());
    }
    let mut offset = usize::try_from(stco.entries[0])?;
    let mut samples = Vec::new();
    let mut payloads = Vec::new();
    for (i, &size) in sizes.iter().enumerate() {
        let number = u32::try_from(i)? + 1; // stss counts from 1
        let sync = stbl
            .stss
            .as_ref()
            .is_none_or(|s| s.entries.contains(&number));
        samples.push(Sample {
            duration: u32::try_from(*durations.get(i).ok_or("stts short")?)?,
            size,
            cts_offset: i32::try_from(*cts.get(i).ok_or("ctts short")?)?,
            sync,
        });
        let end = offset + usize::try_from(size)?;
        payloads.push(Bytes::copy_from_slice(
            file.get(offset..end).ok_or("sample out of file")?,
        ));
        offset = end;
    }
    Ok(Source {
        samples,
        payloads,
        avcc,
        timescale: trak.mdia.mdhd.timescale,
    })
}

/// `size,K_,pts-dts,dts` per packet, via ffprobe.
fn probe_packets(path: &Path) -> Result<Vec<Packet>, Box<dyn std::error::Error>> {
    let out = run(Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0"])
        .args([
            "-show_entries",
            "packet=size,flags,pts,dts",
            "-of",
            "csv=p=0",
        ])
        .arg(path))?;
    let mut packets = Vec::new();
    for line in out.lines().filter(|l| !l.trim().is_empty()) {
        // Field order follows ffprobe's packet section: pts,dts,size,flags.
        let fields: Vec<&str> = line.split(',').collect();
        let [pts, dts, size, flags] = fields[..] else {
            return Err(format!("unexpected ffprobe line {line:?}").into());
        };
        let (pts, dts): (i64, i64) = (pts.parse()?, dts.parse()?);
        packets.push((size.parse()?, flags.starts_with('K'), pts - dts, dts));
    }
    Ok(packets)
}

#[test]
fn ffprobe_accepts_remuxed_h264() -> TestResult {
    if !tools_available()? {
        eprintln!("skipping: ffmpeg/ffprobe not on PATH (set CI=true to make this fail)");
        return Ok(());
    }
    let dir = TempDir::new("ffprobe")?;
    let source = dir.0.join("source.mp4");
    run(Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg("testsrc=size=160x96:rate=25")
        .args([
            "-frames:v",
            &FRAMES.to_string(),
            "-c:v",
            "libx264",
            "-bf",
            "2",
            "-g",
            "6",
        ])
        .args(["-pix_fmt", "yuv420p", "-movflags", "+faststart"])
        .arg(&source))?;

    let Source {
        samples,
        payloads,
        avcc,
        timescale,
    } = read_source(&std::fs::read(&source)?)?;
    assert_eq!(samples.len(), FRAMES);
    assert!(samples.iter().any(|s| !s.sync), "want non-sync samples too");

    let mut out = init_segment(&TrackInit::Video(VideoInit {
        timescale,
        width: 160,
        height: 96,
        avcc,
    }))
    .to_vec();
    let split = FRAMES / 2; // GOP of 6: the second chunk starts on an IDR
    let mut decode_time = 0u64;
    for (seq, range) in [(1, 0..split), (2, split..FRAMES)] {
        for part in chunk(
            seq,
            decode_time,
            &samples[range.clone()],
            &payloads[range.clone()],
        )? {
            out.extend_from_slice(&part);
        }
        decode_time += samples[range]
            .iter()
            .map(|s| u64::from(s.duration))
            .sum::<u64>();
    }
    let remuxed = dir.0.join("remuxed.mp4");
    std::fs::write(&remuxed, &out)?;

    let ours = probe_packets(&remuxed)?;
    let theirs = probe_packets(&source)?;
    assert_eq!(ours.len(), FRAMES);
    for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
        assert_eq!(
            (a.0, a.1, a.2),
            (b.0, b.1, b.2),
            "packet {i}: size, key, pts-dts"
        );
    }
    for (i, pair) in ours.windows(2).zip(theirs.windows(2)).enumerate() {
        assert_eq!(
            pair.0[1].3 - pair.0[0].3,
            pair.1[1].3 - pair.1[0].3,
            "dts step {i}"
        );
    }

    // Every frame must decode: catches a wrong avcC or a misplaced data_offset.
    let decoded = run(Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-select_streams", "v:0"])
        .args(["-show_entries", "stream=nb_read_frames", "-of", "csv=p=0"])
        .arg(&remuxed))?;
    assert_eq!(decoded.trim(), FRAMES.to_string());
    Ok(())
}
