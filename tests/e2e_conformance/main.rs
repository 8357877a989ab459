//! RFC 8216bis (draft-pantos-hls-rfc8216bis) server conformance of the
//! LL-HLS we serve, checked from outside over real HTTP.
//!
//! One fixture for the whole run (`fixture.rs`): an origin with the ladder
//! `source,360p`, two real `livecdn edge`s in front of it (one pulling, one
//! also fed by the origin's push), and ffmpeg publishing 720p30 H.264 +
//! 48 kHz AAC. Every rule is its own named trial, run against the origin
//! (`origin::RULE`), the pulling edge (`edge::RULE`) and the pushed-to edge
//! (`push_edge::RULE`), and inside each trial for every rendition of the
//! multivariant playlist (`source`, `360p`, `audio`). Playlists are read by
//! an independent parser (`m3u8.rs`), not the project's model.
//!
//! Rules, one concept per file: `blocking.rs` (6.2.5.2 blocking reload),
//! `directives.rs` (6.2.5.2 requests a server must refuse or answer at
//! once), `delta.rs` (6.2.5.1 delta updates), `tags.rs` (4.4 playlist
//! tags), `hints.rs` (6.2.6 preload hints, 4.4.5.4 rendition reports),
//! `media.rs` (parts and segments as served, timed by `mp4.rs`).
//!
//! Without ffmpeg every trial is ignored, except under `CI=true`, where that
//! fails. `--list` starts nothing.

#![allow(clippy::unwrap_used)]

mod blocking;
mod client;
mod delta;
mod directives;
mod fixture;
mod hints;
mod m3u8;
mod media;
mod mp4;
#[path = "../support/mod.rs"]
mod support;
mod tags;

use client::{Check, Server};
use libtest_mimic::{Arguments, Failed, Trial};
use std::sync::Arc;
use std::time::Duration;

/// Longest one trial may run before it fails as hung.
const TRIAL_LIMIT: Duration = Duration::from_secs(90);

/// The rules, in the order they run (the one that needs the live window to
/// have slid comes last).
#[derive(Debug, Clone, Copy)]
enum Rule {
    PartPastLastPart,
    PartsWithinPartTarget,
    PartHoldBack,
    DeltaUpdate,
    FarFutureMsn,
    AdvancePartLimit,
    PartWithoutMsn,
    BlockingHolds,
    PreloadHint,
    RenditionReports,
    Basics,
    PartsNearLiveEdge,
    SegmentIsItsParts,
    DurationsMatchMedia,
    OldMsn,
}

impl Rule {
    const ALL: [Rule; 15] = [
        Rule::PartPastLastPart,
        Rule::PartsWithinPartTarget,
        Rule::PartHoldBack,
        Rule::DeltaUpdate,
        Rule::FarFutureMsn,
        Rule::AdvancePartLimit,
        Rule::PartWithoutMsn,
        Rule::BlockingHolds,
        Rule::PreloadHint,
        Rule::RenditionReports,
        Rule::Basics,
        Rule::PartsNearLiveEdge,
        Rule::SegmentIsItsParts,
        Rule::DurationsMatchMedia,
        Rule::OldMsn,
    ];

    fn as_str(self) -> &'static str {
        match self {
            Rule::PartPastLastPart => "part_past_last_part_of_completed_segment_means_next_segment",
            Rule::PartsWithinPartTarget => "audio_parts_within_part_target",
            Rule::PartHoldBack => "part_hold_back_consistent_across_renditions",
            Rule::DeltaUpdate => "delta_update_keeps_segments_within_skip_boundary",
            Rule::FarFutureMsn => "far_future_msn_is_400",
            Rule::AdvancePartLimit => "part_beyond_advance_part_limit_is_400",
            Rule::PartWithoutMsn => "part_without_msn_is_400",
            Rule::BlockingHolds => "blocking_reload_holds_until_part_exists",
            Rule::PreloadHint => "preload_hint_names_next_part",
            Rule::RenditionReports => "rendition_reports_track_other_renditions",
            Rule::Basics => "media_playlist_basics",
            Rule::PartsNearLiveEdge => "parts_listed_only_near_live_edge",
            Rule::SegmentIsItsParts => "segment_is_concatenation_of_its_parts",
            Rule::DurationsMatchMedia => "listed_durations_match_media_timing",
            Rule::OldMsn => "msn_older_than_window_gets_current_playlist",
        }
    }

    async fn check(self, s: &Server) -> Check {
        match self {
            Rule::PartPastLastPart => blocking::part_past_last_part(s).await,
            Rule::PartsWithinPartTarget => tags::parts_within_part_target(s).await,
            Rule::PartHoldBack => tags::part_hold_back(s).await,
            Rule::DeltaUpdate => delta::keeps_skip_boundary(s).await,
            Rule::FarFutureMsn => directives::far_future_msn(s).await,
            Rule::AdvancePartLimit => directives::advance_part_limit(s).await,
            Rule::PartWithoutMsn => directives::part_without_msn(s).await,
            Rule::BlockingHolds => blocking::holds_until_part_exists(s).await,
            Rule::PreloadHint => hints::preload_hint(s).await,
            Rule::RenditionReports => hints::rendition_reports(s).await,
            Rule::Basics => tags::basics(s).await,
            Rule::PartsNearLiveEdge => tags::parts_near_live_edge(s).await,
            Rule::SegmentIsItsParts => media::segment_is_its_parts(s).await,
            Rule::DurationsMatchMedia => media::durations_match_media(s).await,
            Rule::OldMsn => directives::old_msn(s).await,
        }
    }
}

fn trial_name(side: &str, rule: Rule) -> String {
    format!("{side}::{}", rule.as_str())
}

/// Every (side, rule) as a trial that is never run (for `--list` and for
/// a machine without ffmpeg).
fn idle_trials(ignored: bool) -> Vec<Trial> {
    fixture::SIDES
        .into_iter()
        .flat_map(|side| Rule::ALL.map(|rule| trial_name(side, rule)))
        .map(|name| Trial::test(name, || Err("not run".into())).with_ignored_flag(ignored))
        .collect()
}

fn main() {
    let mut args = Arguments::from_args();
    if args.list {
        libtest_mimic::run(&args, idle_trials(false)).exit();
    }
    // `have` fails under CI=true when ffmpeg is missing.
    if !support::have("ffmpeg") {
        libtest_mimic::run(&args, idle_trials(true)).exit();
    }
    // The trials mostly wait on the live stream, not the CPU.
    args.test_threads.get_or_insert(4);

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let fixture = rt.block_on(fixture::Fixture::start());
    let servers = fixture.servers().map(Arc::new);
    let mut trials = Vec::new();
    for rule in Rule::ALL {
        for server in &servers {
            let server = Arc::clone(server);
            let handle = rt.handle().clone();
            trials.push(Trial::test(trial_name(server.side, rule), move || {
                let run = async { tokio::time::timeout(TRIAL_LIMIT, rule.check(&server)).await };
                match handle.block_on(run) {
                    Ok(result) => result.map_err(Failed::from),
                    Err(_) => {
                        Err(format!("{} did not finish in {TRIAL_LIMIT:?}", rule.as_str()).into())
                    }
                }
            }));
        }
    }
    let conclusion = libtest_mimic::run(&args, trials);
    // Kill the publisher, edge and origin before exiting (exit skips drops).
    drop(fixture);
    drop(rt);
    conclusion.exit();
}
