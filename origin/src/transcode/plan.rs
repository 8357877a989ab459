//! Which rungs a stream gets, and the one ffmpeg command that makes them.
//!
//! Sans-IO: the supervisor measures the source (size, bitrate, frame rate)
//! and asks for a plan; the plan skips rungs that would upscale or spend
//! more bits than the source has, and turns the rest into ffmpeg arguments.

use std::fmt;
use std::path::PathBuf;

/// A transcoded rung as configured (`[[ladder.rungs]]`).
#[derive(Debug, Clone, PartialEq)]
pub struct RungSpec {
    pub name: String,
    pub height: u32,
    /// Target video bitrate, bits per second.
    pub bitrate: u64,
    /// VBV maximum rate and buffer size, bits per second / bits.
    pub max_rate: u64,
    pub buffer: u64,
    /// H.264 profile: baseline, main or high.
    pub profile: String,
    pub fps_cap: Option<f64>,
}

/// The encoder to run.
#[derive(Debug, Clone, PartialEq)]
pub struct EncoderSpec {
    /// The ffmpeg binary (a path, or a name looked up on PATH).
    pub ffmpeg: PathBuf,
    /// ffmpeg's encoder name: libx264, h264_nvenc, h264_vaapi, h264_qsv.
    pub codec: String,
    pub preset: String,
}

/// What was measured about the source.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SourceInfo {
    pub width: u32,
    pub height: u32,
    /// Average video bitrate over what the window holds, if measured.
    pub bitrate: Option<u64>,
    pub fps: Option<f64>,
}

/// A rung the stream gets, with its output size.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedRung {
    pub spec: RungSpec,
    pub width: u32,
    pub height: u32,
    /// The frame rate the encoder is limited to, when the source is faster.
    pub fps: Option<f64>,
}

/// Why a configured rung is not made for this stream.
#[derive(Debug, Clone, PartialEq)]
pub enum SkipReason {
    /// The rung is not smaller than the source (no upscaling).
    NotBelowSource { height: u32, source_height: u32 },
    /// The rung would get at least the source's bitrate.
    BitrateNotBelowSource { bitrate: u64, source_bitrate: u64 },
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkipReason::NotBelowSource {
                height,
                source_height,
            } => write!(
                f,
                "{height}p is not below the source's {source_height}p (no upscaling)"
            ),
            SkipReason::BitrateNotBelowSource {
                bitrate,
                source_bitrate,
            } => write!(
                f,
                "{} kb/s is not below the source's {} kb/s",
                bitrate / 1000,
                source_bitrate / 1000
            ),
        }
    }
}

/// The ladder for a source: rungs in configured order (tallest first is
/// the usual config), and the ones skipped with the reason.
pub fn plan(rungs: &[RungSpec], src: &SourceInfo) -> (Vec<PlannedRung>, Vec<(String, SkipReason)>) {
    let mut made = Vec::new();
    let mut skipped = Vec::new();
    for r in rungs {
        if r.height >= src.height {
            skipped.push((
                r.name.clone(),
                SkipReason::NotBelowSource {
                    height: r.height,
                    source_height: src.height,
                },
            ));
            continue;
        }
        if let Some(source_bitrate) = src.bitrate.filter(|b| r.bitrate >= *b) {
            skipped.push((
                r.name.clone(),
                SkipReason::BitrateNotBelowSource {
                    bitrate: r.bitrate,
                    source_bitrate,
                },
            ));
            continue;
        }
        made.push(PlannedRung {
            spec: r.clone(),
            width: scaled_width(src.width, src.height, r.height),
            height: r.height,
            fps: match (r.fps_cap, src.fps) {
                (Some(cap), Some(fps)) if fps > cap + 0.01 => Some(cap),
                _ => None,
            },
        });
    }
    (made, skipped)
}

/// Width for `height` at the source's aspect ratio, rounded to even (4:2:0
/// chroma needs even sizes).
pub fn scaled_width(src_w: u32, src_h: u32, height: u32) -> u32 {
    if src_h == 0 {
        return 2;
    }
    let w = f64::from(src_w) * f64::from(height) / f64::from(src_h);
    ((w / 2.0).round() as u32 * 2).max(2)
}

fn kbps(bits: u64) -> String {
    format!("{}k", bits.div_ceil(1000))
}

/// ffmpeg arguments: FLV on stdin (timestamps kept), progress key=values on
/// `progress_fd`, rung `i` as FLV on fd `first_fd + i`.
///
/// Keyframes go exactly where the source has them (`-force_key_frames
/// source`, no scene-cut or GOP-length keyframes), there are no B-frames,
/// and the encoder is tuned for zero latency, so every rung cuts at the
/// source's IDRs and returns each frame as soon as it is encoded.
pub fn ffmpeg_args(
    enc: &EncoderSpec,
    rungs: &[PlannedRung],
    progress_fd: i32,
    first_fd: i32,
) -> Vec<String> {
    let mut a: Vec<String> = [
        "-hide_banner",
        "-nostdin",
        "-loglevel",
        "warning",
        "-nostats",
        "-progress",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    a.push(format!("pipe:{progress_fd}"));
    a.extend(
        [
            "-stats_period",
            "0.5",
            // Probe no further than the sequence header and first frame:
            // every probed millisecond is latency.
            "-probesize",
            "32",
            "-analyzeduration",
            "0",
            "-copyts",
            "-f",
            "flv",
            "-i",
            "pipe:0",
        ]
        .iter()
        .map(|s| s.to_string()),
    );
    if enc.codec == "h264_vaapi" {
        a.extend(["-vaapi_device".into(), "/dev/dri/renderD128".into()]);
    }
    a.push("-filter_complex".into());
    a.push(filter_graph(enc, rungs));
    for (i, r) in rungs.iter().enumerate() {
        a.extend(["-map".into(), format!("[v{i}]")]);
        a.extend(["-c:v".into(), enc.codec.clone()]);
        a.extend(encoder_tuning(enc));
        a.extend(["-profile:v".into(), r.spec.profile.clone()]);
        a.extend(["-b:v".into(), kbps(r.spec.bitrate)]);
        a.extend(["-maxrate".into(), kbps(r.spec.max_rate)]);
        a.extend(["-bufsize".into(), kbps(r.spec.buffer)]);
        a.extend(
            [
                "-bf",
                "0",
                "-g",
                "100000",
                "-force_key_frames",
                "source",
                "-fps_mode",
                "passthrough",
                "-flush_packets",
                "1",
                "-f",
                "flv",
                "-flvflags",
                "no_duration_filesize",
            ]
            .iter()
            .map(|s| s.to_string()),
        );
        a.push(format!("pipe:{}", first_fd + i as i32));
    }
    a
}

/// One decode, split once per rung, each scaled (and frame-rate capped).
fn filter_graph(enc: &EncoderSpec, rungs: &[PlannedRung]) -> String {
    let n = rungs.len();
    let mut g = format!("[0:v]split={n}");
    for i in 0..n {
        g.push_str(&format!("[s{i}]"));
    }
    for (i, r) in rungs.iter().enumerate() {
        g.push_str(&format!(";[s{i}]scale={}:{}", r.width, r.height));
        if let Some(fps) = r.fps {
            g.push_str(&format!(",fps={fps}"));
        }
        if enc.codec == "h264_vaapi" {
            g.push_str(",format=nv12,hwupload");
        }
        g.push_str(&format!("[v{i}]"));
    }
    g
}

/// Low-latency settings per encoder family.
fn encoder_tuning(enc: &EncoderSpec) -> Vec<String> {
    let mut a = vec!["-preset".to_string(), enc.preset.clone()];
    match enc.codec.as_str() {
        "libx264" => a.extend([
            "-tune".into(),
            "zerolatency".into(),
            "-sc_threshold".into(),
            "0".into(),
        ]),
        "h264_nvenc" => a.extend([
            "-tune".into(),
            "ll".into(),
            "-zerolatency".into(),
            "1".into(),
            "-no-scenecut".into(),
            "1".into(),
        ]),
        "h264_qsv" => a.extend(["-low_power".into(), "0".into()]),
        _ => {}
    }
    a
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
mod tests {
    use super::*;

    fn rung(name: &str, height: u32, kbps: u64) -> RungSpec {
        RungSpec {
            name: name.into(),
            height,
            bitrate: kbps * 1000,
            max_rate: kbps * 1100,
            buffer: kbps * 2000,
            profile: "high".into(),
            fps_cap: None,
        }
    }

    fn default_ladder() -> Vec<RungSpec> {
        vec![
            rung("720p", 720, 3000),
            rung("480p", 480, 1500),
            rung("360p", 360, 800),
        ]
    }

    #[test]
    fn a_720p_source_skips_the_720p_rung() {
        let src = SourceInfo {
            width: 1280,
            height: 720,
            bitrate: Some(4_000_000),
            fps: Some(30.0),
        };
        let (made, skipped) = plan(&default_ladder(), &src);
        let names: Vec<_> = made.iter().map(|r| r.spec.name.as_str()).collect();
        assert_eq!(names, ["480p", "360p"]);
        assert_eq!((made[0].width, made[0].height), (854, 480));
        assert_eq!((made[1].width, made[1].height), (640, 360));
        assert_eq!(skipped.len(), 1);
        assert_eq!(
            skipped[0].1.to_string(),
            "720p is not below the source's 720p (no upscaling)"
        );
    }

    #[test]
    fn rungs_above_the_source_bitrate_are_skipped() {
        let src = SourceInfo {
            width: 1920,
            height: 1080,
            bitrate: Some(1_200_000),
            fps: None,
        };
        let (made, skipped) = plan(&default_ladder(), &src);
        assert_eq!(made.len(), 1);
        assert_eq!(made[0].spec.name, "360p");
        assert_eq!(skipped.len(), 2);
        assert!(skipped[0].1.to_string().contains("3000 kb/s"));
    }

    #[test]
    fn widths_follow_the_source_aspect_and_are_even() {
        assert_eq!(scaled_width(1920, 1080, 360), 640);
        assert_eq!(scaled_width(1080, 1920, 360), 202);
        assert_eq!(scaled_width(720, 576, 240), 300);
        assert_eq!(scaled_width(1000, 0, 240), 2);
    }

    #[test]
    fn fps_cap_applies_only_to_faster_sources() {
        let mut r = rung("360p", 360, 800);
        r.fps_cap = Some(30.0);
        let mut src = SourceInfo {
            width: 1280,
            height: 720,
            bitrate: None,
            fps: Some(60.0),
        };
        assert_eq!(plan(&[r.clone()], &src).0[0].fps, Some(30.0));
        src.fps = Some(29.97);
        assert_eq!(plan(&[r], &src).0[0].fps, None);
    }

    #[test]
    fn args_map_each_rung_to_its_own_pipe_with_source_keyframes() {
        let src = SourceInfo {
            width: 1280,
            height: 720,
            bitrate: None,
            fps: Some(30.0),
        };
        let (made, _) = plan(&default_ladder(), &src);
        let enc = EncoderSpec {
            ffmpeg: "ffmpeg".into(),
            codec: "libx264".into(),
            preset: "veryfast".into(),
        };
        let args = ffmpeg_args(&enc, &made, 3, 4);
        let joined = args.join(" ");
        assert!(joined.contains("-copyts -f flv -i pipe:0"));
        assert!(joined.contains("-progress pipe:3"));
        assert!(joined.contains("[0:v]split=2[s0][s1];[s0]scale=854:480[v0];[s1]scale=640:360[v1]"));
        assert_eq!(args.iter().filter(|a| *a == "source").count(), 2);
        assert_eq!(joined.matches("-bf 0").count(), 2);
        assert!(joined.contains("-b:v 1500k -maxrate 1650k -bufsize 3000k"));
        assert!(args.ends_with(&["pipe:5".to_string()]));
        assert!(joined.contains("pipe:4 -map [v1]"));
    }
}
