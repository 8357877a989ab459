use super::*;
use crate::config::{parse_origin, ConfigError, OriginConfig};

fn names(l: &LadderConfig) -> Vec<&str> {
    l.rungs.iter().map(|r| r.name.as_str()).collect()
}

/// `[ladder]` text with a source rung followed by `rest`.
fn ladder(rest: &str) -> String {
    format!("[ladder]\n\n[[ladder.rungs]]\nname = \"source\"\n\n{rest}")
}

#[test]
fn default_ladder_is_source_and_three_renditions() {
    let c = parse_origin("", "t").expect("defaults");
    let l = &c.ladder;
    assert!(l.enabled);
    assert_eq!(l.encoder, Encoder::Libx264);
    assert_eq!(l.preset, "veryfast");
    assert_eq!(l.restart_backoff, Duration::from_millis(500));
    assert_eq!(l.restart_backoff_max, Duration::from_secs(10));
    assert_eq!(names(l), ["source", "720p", "480p", "360p"]);
    let summary: Vec<_> = l
        .transcoded()
        .map(|r| {
            (
                r.height,
                r.video_bitrate.map(Bitrate::bps),
                r.effective_max_rate().map(Bitrate::bps),
                r.effective_buffer().map(Bitrate::bps),
                r.effective_profile(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (
                Some(720),
                Some(3_000_000),
                Some(3_300_000),
                Some(6_000_000),
                H264Profile::High
            ),
            (
                Some(480),
                Some(1_500_000),
                Some(1_650_000),
                Some(3_000_000),
                H264Profile::High
            ),
            (
                Some(360),
                Some(800_000),
                Some(880_000),
                Some(1_600_000),
                H264Profile::Main
            ),
        ]
    );
    let source = &l.rungs[0];
    assert!(source.is_source());
    assert_eq!(source.effective_max_rate(), None);
}

#[test]
fn explicit_ladder_replaces_the_default() {
    let text = ladder(
        "[[ladder.rungs]]\nname = \"540p\"\nheight = 540\nvideo_bitrate = \"2M\"\n\
         max_rate = \"2500k\"\nbuffer = 4000000\nprofile = \"baseline\"\nfps_cap = 30\n",
    )
    .replace(
        "[ladder]\n",
        "[ladder]\nencoder = \"h264_nvenc\"\npreset = \"p4\"\nffmpeg = \"/opt/ffmpeg\"\n\
         restart_backoff = \"1s\"\nrestart_backoff_max = \"1m\"\n",
    );
    let l = parse_origin(&text, "t").expect("valid").ladder;
    assert_eq!(l.encoder, Encoder::H264Nvenc);
    assert_eq!(l.ffmpeg, Some(PathBuf::from("/opt/ffmpeg")));
    assert_eq!(l.restart_backoff_max, Duration::from_secs(60));
    assert_eq!(names(&l), ["source", "540p"]);
    let r = &l.rungs[1];
    assert_eq!(r.effective_max_rate(), Some(Bitrate::from_kbps(2500)));
    assert_eq!(r.effective_buffer(), Some(Bitrate::from_kbps(4000)));
    assert_eq!(r.effective_profile(), H264Profile::Baseline);
    assert_eq!(r.fps_cap, Some(30.0));
}

#[test]
fn source_alone_or_disabled_means_no_encoder() {
    let l = parse_origin(&ladder(""), "t").expect("source only").ladder;
    assert_eq!(names(&l), ["source"]);
    assert_eq!(l.transcoded().count(), 0);
    let l = parse_origin("[ladder]\nenabled = false\n", "t")
        .expect("disabled")
        .ladder;
    assert_eq!(l.rungs.len(), 4);
    assert_eq!(l.transcoded().count(), 0);
}

#[test]
fn serialised_config_parses_back_equal() {
    let mut c = OriginConfig::default();
    c.ladder.rungs[1].fps_cap = Some(29.97);
    c.ladder.rungs[2].video_bitrate = Some(Bitrate::from_bps(1_234_567));
    c.ladder.encoder = Encoder::H264Qsv;
    let text = toml::to_string(&c).expect("serialise");
    assert_eq!(parse_origin(&text, "t").expect("parse back"), c);
}

/// `(file text, "line:column: key: message start")` for refused ladders.
const REFUSED: &[(&str, &str)] = &[
    (
        "[ladder]\nrungs = []\n",
        "2:9: ladder.rungs: no \"source\" rung",
    ),
    (
        "[ladder]\npreset = \"Very Fast\"\n",
        "2:10: ladder.preset: \"Very Fast\" must match",
    ),
    (
        "[ladder]\npreset = \"\"\n",
        "2:10: ladder.preset: \"\" must match",
    ),
    ("[ladder]\nffmpeg = \"\"\n", "2:10: ladder.ffmpeg: is empty"),
    (
        "[ladder]\nrestart_backoff = \"0s\"\n",
        "2:19: ladder.restart_backoff: must be more than zero",
    ),
    (
        "[ladder]\nrestart_backoff = \"5s\"\nrestart_backoff_max = \"1s\"\n",
        "3:23: ladder.restart_backoff_max: 1s is less than restart_backoff (5s)",
    ),
    (
        "secret = \"0123456789abcdef\"\n[ladder]\nrestart_backoff = \"20s\"\n",
        "2:1: ladder.restart_backoff_max: 10s is less than restart_backoff (20s)",
    ),
];

/// Rung bodies (after the source rung, which ends on line 4) and the
/// expected "line:column: key: message start".
const REFUSED_RUNGS: &[(&str, &str)] = &[
    (
        "[[ladder.rungs]]\nname = \"720p\"\nheight = 481\nvideo_bitrate = \"1M\"\n",
        "8:10: ladder.rungs[1].height: 481 is odd (must be even)",
    ),
    (
        "[[ladder.rungs]]\nname = \"x\"\nheight = 32\nvideo_bitrate = \"1M\"\n",
        "8:10: ladder.rungs[1].height: 32 is outside 64..=4320",
    ),
    (
        "[[ladder.rungs]]\nname = \"x\"\nheight = 360\nvideo_bitrate = \"0k\"\n",
        "9:17: ladder.rungs[1].video_bitrate: must be more than 0",
    ),
    (
        "[[ladder.rungs]]\nname = \"x\"\nvideo_bitrate = \"1M\"\n",
        "ladder.rungs[1].height: required for a transcoded rung",
    ),
    (
        "[[ladder.rungs]]\nname = \"x\"\nheight = 360\n",
        "ladder.rungs[1].video_bitrate: required for a transcoded rung",
    ),
    (
        "[[ladder.rungs]]\nname = \"x\"\nheight = 360\nvideo_bitrate = \"1M\"\nmax_rate = \"900k\"\n",
        "10:12: ladder.rungs[1].max_rate: 900k is less than video_bitrate (1000k)",
    ),
    (
        "[[ladder.rungs]]\nname = \"x\"\nheight = 360\nvideo_bitrate = \"1M\"\nbuffer = 0\n",
        "10:10: ladder.rungs[1].buffer: must be more than 0",
    ),
    (
        "[[ladder.rungs]]\nname = \"x\"\nheight = 360\nvideo_bitrate = \"1M\"\nfps_cap = 0.0\n",
        "10:11: ladder.rungs[1].fps_cap: 0 is outside (0, 240]",
    ),
    (
        "[[ladder.rungs]]\nname = \"x\"\nheight = 360\nvideo_bitrate = \"1M\"\nfps_cap = 300\n",
        "10:11: ladder.rungs[1].fps_cap: 300 is outside (0, 240]",
    ),
    (
        "[[ladder.rungs]]\nname = \"audio\"\n",
        "7:8: ladder.rungs[1].name: \"audio\" is reserved",
    ),
    (
        "[[ladder.rungs]]\nname = \"HD\"\n",
        "7:8: ladder.rungs[1].name: \"HD\" must match [a-z0-9_-]{1,32}",
    ),
    (
        "[[ladder.rungs]]\nname = \"source\"\n",
        "7:8: ladder.rungs[1].name: \"source\" is already the name of rungs[0]",
    ),
    (
        "[[ladder.rungs]]\nname = \"a\"\nheight = 360\nvideo_bitrate = \"1M\"\n\n\
         [[ladder.rungs]]\nname = \"a\"\nheight = 240\nvideo_bitrate = \"500k\"\n",
        "12:8: ladder.rungs[2].name: \"a\" is already the name of rungs[1]",
    ),
];

#[test]
fn refused_ladders_name_line_column_key_and_reason() {
    let rungs = REFUSED_RUNGS.iter().map(|(t, w)| (ladder(t), *w));
    let cases = REFUSED
        .iter()
        .map(|(t, w)| (t.to_string(), *w))
        .chain(rungs);
    for (text, want) in cases {
        let err = parse_origin(&text, "o.toml").expect_err(&text);
        assert!(
            matches!(err, ConfigError::InvalidAt { .. }),
            "{text}: {err}"
        );
        let got = err.to_string();
        assert!(got.starts_with("o.toml:"), "{got}");
        assert!(got.contains(want), "{text}\nwant {want}\ngot  {got}");
    }
}

#[test]
fn source_rung_refuses_encoder_settings() {
    for field in [
        "height = 720",
        "video_bitrate = \"1M\"",
        "max_rate = \"1M\"",
        "buffer = \"1M\"",
        "profile = \"main\"",
        "fps_cap = 30",
    ] {
        let text = format!("[[ladder.rungs]]\nname = \"source\"\n{field}\n");
        let key = field.split(' ').next().unwrap_or_default();
        let want = "o.toml:3:";
        let err = parse_origin(&text, "o.toml").expect_err(field).to_string();
        assert!(err.starts_with(want), "{err}");
        assert!(
            err.contains(&format!("ladder.rungs[0].{key}: not allowed on \"source\"")),
            "{err}"
        );
    }
}

#[test]
fn unknown_encoder_profile_or_field_fails_at_its_line() {
    for (text, line) in [
        ("[ladder]\n\nencoder = \"h265\"\n", 3),
        ("[ladder]\npreset = \"fast\"\nbogus = 1\n", 3),
        (
            "[[ladder.rungs]]\nname = \"x\"\nprofile = \"extended\"\n",
            3,
        ),
        (
            "[[ladder.rungs]]\nname = \"x\"\nvideo_bitrate = \"3Mbps\"\n",
            3,
        ),
        ("[[ladder.rungs]]\nname = \"x\"\nwidth = 640\n", 3),
        (
            "[[ingest.static_keys]]\nkey = \"k\"\nstream = \"s\"\nladder = \"half\"\n",
            4,
        ),
    ] {
        match parse_origin(text, "o.toml") {
            Err(ConfigError::Syntax { line: l, .. }) => assert_eq!(l, line, "{text}"),
            other => panic!("{text}: expected a syntax error, got {other:?}"),
        }
    }
    let err = parse_origin("[ladder]\nencoder = \"h265\"\n", "o.toml").expect_err("encoder");
    assert!(err.to_string().contains("h265"), "{err}");
}

#[test]
fn static_keys_choose_their_ladder() {
    let text =
        "[[ingest.static_keys]]\nkey = \"key-one-long\"\nstream = \"a\"\nladder = \"source\"\n\
                [[ingest.static_keys]]\nkey = \"key-two-long\"\nstream = \"b\"\n";
    let keys = parse_origin(text, "t").expect("valid").ingest.static_keys;
    assert_eq!(keys[0].ladder, LadderChoice::SourceOnly);
    assert_eq!(keys[1].ladder, LadderChoice::Full);
    assert_eq!(LadderChoice::SourceOnly.as_str(), "source");
}

#[test]
fn encoder_names_match_ffmpeg_and_config_spelling() {
    for e in Encoder::ALL {
        assert_eq!(e.ffmpeg_name().parse::<Encoder>(), Ok(e));
        let text = format!("[ladder]\nencoder = \"{}\"\n", e.ffmpeg_name());
        assert_eq!(parse_origin(&text, "t").expect("valid").ladder.encoder, e);
    }
    assert_eq!(
        "x265".parse::<Encoder>(),
        Err(UnknownEncoder("x265".to_string()))
    );
}

#[test]
fn retain_rungs_keeps_named_rungs_in_config_order() {
    let mut l = LadderConfig::default();
    l.retain_rungs(&["360p", "source"]).expect("known names");
    assert_eq!(names(&l), ["source", "360p"]);
    let mut l = LadderConfig::default();
    l.retain_rungs(&["source"]).expect("source only");
    assert_eq!(l.transcoded().count(), 0);

    let mut l = LadderConfig::default();
    let err = l.retain_rungs(&["source", "1080p"]).expect_err("unknown");
    assert_eq!(
        err.to_string(),
        "unknown rung \"1080p\" (the ladder has: source, 720p, 480p, 360p)"
    );
    assert_eq!(l, LadderConfig::default(), "unchanged on error");
    let err = l.retain_rungs(&["720p"]).expect_err("no source");
    assert_eq!(err, RungFilterError::NoSource);
}
