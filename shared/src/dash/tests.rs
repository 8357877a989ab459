//! The MPD rules livecdn relies on, one test each, checked on the rendered
//! XML with an independent parser (roxmltree): ISO/IEC 23009-1 (the MPD
//! schema's required attributes, SegmentTimeline arithmetic) and the
//! DASH-IF low-latency rules.

#![allow(clippy::unwrap_used)]

use super::*;
use std::time::{Duration, SystemTime};

fn template(timescale: u32, start_number: u64, t0: u64, durations: &[u64]) -> SegmentTemplate {
    let mut tpl = SegmentTemplate {
        timescale,
        media: "$RepresentationID$/$Number$.m4s".into(),
        initialization: "$RepresentationID$/init.mp4".into(),
        start_number,
        presentation_time_offset: 0,
        availability_time_offset: 1.666,
        availability_time_complete: false,
        timeline: Vec::new(),
    };
    let mut t = t0;
    for d in durations {
        tpl.push(t, *d);
        t += d;
    }
    tpl
}

fn sample() -> Mpd {
    let video = |id: &str, w, h, bw| Representation {
        id: id.into(),
        codecs: "avc1.64001f".into(),
        bandwidth: bw,
        resolution: Some((w, h)),
        frame_rate: Some(30.0),
        audio: None,
        template: template(90_000, 40, 3_600_000, &[180_000, 180_000, 183_000, 180_000]),
    };
    Mpd {
        availability_start: SystemTime::UNIX_EPOCH,
        publish_time: SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000),
        minimum_update_period: Duration::from_secs(2),
        min_buffer_time: Duration::from_secs(1),
        time_shift_buffer_depth: Duration::from_secs(20),
        suggested_presentation_delay: Duration::from_millis(1500),
        max_segment_duration: Duration::from_secs(3),
        latency_target: Duration::from_millis(1500),
        latency_range: (Duration::from_millis(1000), Duration::from_millis(6000)),
        playback_rate: (0.96, 1.04),
        utc_timing: "/time".into(),
        periods: vec![Period {
            id: "p0".into(),
            start: Duration::from_secs(1_799_999_960),
            adaptation_sets: vec![
                AdaptationSet {
                    id: 0,
                    content_type: ContentType::Video,
                    representations: vec![
                        video("source", 1280, 720, 3_000_000),
                        video("360p", 640, 360, 800_000),
                    ],
                },
                AdaptationSet {
                    id: 1,
                    content_type: ContentType::Audio,
                    representations: vec![Representation {
                        id: "audio".into(),
                        codecs: "mp4a.40.2".into(),
                        bandwidth: 96_000,
                        resolution: None,
                        frame_rate: None,
                        audio: Some((48_000, 2)),
                        template: template(
                            48_000,
                            40,
                            1_920_256,
                            &[96_256, 95_232, 97_280, 96_256],
                        ),
                    }],
                },
            ],
        }],
    }
}

fn with_doc(mpd: &Mpd, check: impl FnOnce(&roxmltree::Document)) {
    let text = mpd.to_string();
    let doc = roxmltree::Document::parse(&text).unwrap_or_else(|e| panic!("{e}:\n{text}"));
    check(&doc);
}

fn all<'a>(doc: &'a roxmltree::Document, name: &str) -> Vec<roxmltree::Node<'a, 'a>> {
    doc.descendants().filter(|n| n.has_tag_name(name)).collect()
}

#[test]
fn a_dynamic_mpd_has_its_required_attributes() {
    // 23009-1 5.3.1.2: @type dynamic needs @availabilityStartTime and
    // @publishTime; a live MPD that updates has @minimumUpdatePeriod;
    // @minBufferTime and @profiles are mandatory.
    with_doc(&sample(), |doc| {
        let mpd = doc.root_element();
        assert_eq!(
            mpd.tag_name().namespace(),
            Some("urn:mpeg:dash:schema:mpd:2011")
        );
        assert_eq!(mpd.attribute("type"), Some("dynamic"));
        for a in [
            "availabilityStartTime",
            "publishTime",
            "minimumUpdatePeriod",
            "minBufferTime",
            "profiles",
            "timeShiftBufferDepth",
            "suggestedPresentationDelay",
        ] {
            assert!(mpd.attribute(a).is_some(), "{a}");
        }
        assert_eq!(
            mpd.attribute("availabilityStartTime"),
            Some("1970-01-01T00:00:00.000Z")
        );
        assert!(mpd.attribute("profiles").unwrap().contains("isoff-live"));
    });
}

#[test]
fn durations_are_xs_durations() {
    assert_eq!(
        XsDuration(Duration::from_millis(1500)).to_string(),
        "PT1.500S"
    );
    assert_eq!(XsDuration(Duration::from_secs(20)).to_string(), "PT20.000S");
    assert_eq!(XsDuration(Duration::ZERO).to_string(), "PT0.000S");
}

#[test]
fn segment_timeline_entries_follow_on_and_fold_repeats() {
    // 23009-1 5.3.9.6: each S starts where the previous ends (no overlap);
    // @r counts repeats of the same @d.
    let tpl = template(90_000, 40, 3_600_000, &[180_000, 180_000, 183_000, 180_000]);
    assert_eq!(tpl.timeline.len(), 3);
    assert_eq!(tpl.timeline[0].r, 1);
    assert_eq!(tpl.len(), 4);
    let segs: Vec<_> = tpl.segments().collect();
    assert_eq!(segs[0], (40, 3_600_000, 180_000));
    assert_eq!(segs[3], (43, 3_600_000 + 543_000, 180_000));
    for w in segs.windows(2) {
        assert_eq!(w[0].1 + w[0].2, w[1].1, "gap or overlap");
        assert_eq!(w[0].0 + 1, w[1].0, "numbers follow on");
    }
    with_doc(&sample(), |doc| {
        for tl in all(doc, "SegmentTimeline") {
            let mut end = None;
            for s in tl.children().filter(|n| n.is_element()) {
                let t: u64 = s.attribute("t").unwrap().parse().unwrap();
                let d: u64 = s.attribute("d").unwrap().parse().unwrap();
                let r: u64 = s.attribute("r").map_or(0, |r| r.parse().unwrap());
                if let Some(e) = end {
                    assert_eq!(t, e);
                }
                end = Some(t + d * (r + 1));
            }
        }
    });
}

#[test]
fn numbers_are_the_hls_media_sequence() {
    // $Number$ starts at @startNumber, the MSN of the first listed
    // segment, and the media template names the HLS segment URI.
    with_doc(&sample(), |doc| {
        for t in all(doc, "SegmentTemplate") {
            assert_eq!(t.attribute("startNumber"), Some("40"));
            assert_eq!(
                t.attribute("media"),
                Some("$RepresentationID$/$Number$.m4s")
            );
        }
    });
}

#[test]
fn low_latency_attributes_are_present_and_consistent() {
    // DASH-IF IOP LL: availabilityTimeComplete="false" with an
    // availabilityTimeOffset no larger than a segment; a ServiceDescription
    // with a Latency target within [min, max] and playback rates around 1.
    with_doc(&sample(), |doc| {
        for t in all(doc, "SegmentTemplate") {
            assert_eq!(t.attribute("availabilityTimeComplete"), Some("false"));
            let ato: f64 = t
                .attribute("availabilityTimeOffset")
                .unwrap()
                .parse()
                .unwrap();
            let ts: f64 = t.attribute("timescale").unwrap().parse().unwrap();
            let shortest = t
                .descendants()
                .filter(|n| n.has_tag_name("S"))
                .map(|s| s.attribute("d").unwrap().parse::<f64>().unwrap() / ts)
                .fold(f64::MAX, f64::min);
            assert!(ato > 0.0 && ato <= shortest, "{ato} vs {shortest}");
        }
        let lat = all(doc, "Latency")[0];
        let get = |a| lat.attribute(a).unwrap().parse::<u64>().unwrap();
        assert!(get("min") <= get("target") && get("target") <= get("max"));
        let rate = all(doc, "PlaybackRate")[0];
        let min: f64 = rate.attribute("min").unwrap().parse().unwrap();
        let max: f64 = rate.attribute("max").unwrap().parse().unwrap();
        assert!(min < 1.0 && max > 1.0);
    });
}

#[test]
fn utc_timing_is_declared() {
    // DASH-IF IOP 4.7: a dynamic MPD carries at least one UTCTiming.
    with_doc(&sample(), |doc| {
        let u = all(doc, "UTCTiming");
        assert_eq!(u.len(), 1);
        assert_eq!(
            u[0].attribute("schemeIdUri"),
            Some("urn:mpeg:dash:utc:http-iso:2014")
        );
    });
}

#[test]
fn representations_are_unique_and_described() {
    // 23009-1 5.3.5.2: @id unique within the Period, no whitespace;
    // @bandwidth mandatory; video has width/height, audio a sampling rate
    // and a channel configuration.
    with_doc(&sample(), |doc| {
        let reps = all(doc, "Representation");
        let mut ids: Vec<_> = reps.iter().map(|r| r.attribute("id").unwrap()).collect();
        assert!(ids.iter().all(|i| !i.contains(char::is_whitespace)));
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), reps.len());
        for r in &reps {
            assert!(r.attribute("bandwidth").unwrap().parse::<u64>().unwrap() > 0);
            assert!(r.attribute("codecs").is_some());
            let set = r.parent().unwrap();
            match set.attribute("contentType") {
                Some("video") => {
                    assert!(r.attribute("width").is_some() && r.attribute("height").is_some())
                }
                Some("audio") => {
                    assert!(r.attribute("audioSamplingRate").is_some());
                    assert_eq!(all_children(r, "AudioChannelConfiguration"), 1);
                }
                other => panic!("{other:?}"),
            }
        }
    });
}

fn all_children(n: &roxmltree::Node, name: &str) -> usize {
    n.children().filter(|c| c.has_tag_name(name)).count()
}

#[test]
fn attribute_text_is_escaped() {
    let mut m = sample();
    m.utc_timing = "/time?a=1&b=\"2\"".into();
    with_doc(&m, |doc| {
        assert_eq!(
            all(doc, "UTCTiming")[0].attribute("value"),
            Some("/time?a=1&b=\"2\"")
        );
    });
}
