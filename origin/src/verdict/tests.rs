#![allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]

use super::*;

const TICK: Duration = Duration::from_millis(500);

fn normal() -> Sample {
    Sample {
        bitrate_bps: 1_500_000.0,
        fps: 30.0,
        video_age: Some(Duration::from_millis(30)),
    }
}

/// Runs `m` for `secs` of ticks with `sample`; the transitions seen.
fn run(m: &mut Monitor, t: &mut Instant, secs: f64, sample: Option<Sample>) -> Vec<Transition> {
    let mut out = Vec::new();
    for _ in 0..(secs / TICK.as_secs_f64()).round() as usize {
        *t += TICK;
        out.extend(m.observe(*t, sample));
    }
    out
}

#[test]
fn a_steady_stream_is_healthy_without_a_report() {
    let (mut m, mut t) = (Monitor::default(), Instant::now());
    assert_eq!(m.verdict(), Verdict::Unknown);
    assert!(run(&mut m, &mut t, 30.0, Some(normal())).is_empty());
    assert_eq!(m.verdict(), Verdict::Healthy);
    let (bitrate, fps) = m.averages();
    assert!((bitrate.unwrap() - 1_500_000.0).abs() < 1.0 && (fps.unwrap() - 30.0).abs() < 0.01);
}

#[test]
fn a_tenth_of_the_bitrate_starves_within_seconds_once_and_recovers_once() {
    let (mut m, mut t) = (Monitor::default(), Instant::now());
    run(&mut m, &mut t, 20.0, Some(normal()));
    let low = Sample {
        bitrate_bps: 150_000.0,
        ..normal()
    };
    // Reported once, BAD_FOR after the drop, however long it lasts.
    let start = t;
    let mut seen = Vec::new();
    while m.verdict() != Verdict::Starving {
        seen.extend(run(&mut m, &mut t, 0.5, Some(low)));
        assert!(
            t - start <= BAD_FOR + TICK,
            "not starving after {:?}",
            t - start
        );
    }
    seen.extend(run(&mut m, &mut t, 30.0, Some(low)));
    assert_eq!(
        seen,
        [Transition {
            from: Verdict::Healthy,
            to: Verdict::Starving,
            reasons: vec!["bitrate_drop"],
        }]
    );
    // The starving stretch did not become the new normal.
    assert!(m.averages().0.unwrap() > 1_000_000.0);
    let back = run(&mut m, &mut t, 10.0, Some(normal()));
    assert_eq!(
        back,
        [Transition {
            from: Verdict::Starving,
            to: Verdict::Healthy,
            reasons: vec!["bitrate_drop"],
        }]
    );
}

#[test]
fn video_that_stops_while_audio_goes_on_starves() {
    let (mut m, mut t) = (Monitor::default(), Instant::now());
    run(&mut m, &mut t, 20.0, Some(normal()));
    let mut seen = Vec::new();
    for i in 1..=10 {
        let audio_only = Sample {
            bitrate_bps: 96_000.0,
            fps: 0.0,
            video_age: Some(TICK * i),
        };
        seen.extend(run(&mut m, &mut t, 0.5, Some(audio_only)));
    }
    assert_eq!(m.verdict(), Verdict::Starving);
    assert_eq!(seen.len(), 1);
    assert!(seen[0].reasons.contains(&"no_video"), "{seen:?}");
}

#[test]
fn flapping_reports_a_few_changes_not_one_per_second() {
    let (mut m, mut t) = (Monitor::default(), Instant::now());
    run(&mut m, &mut t, 20.0, Some(normal()));
    let low = Sample {
        bitrate_bps: 100_000.0,
        ..normal()
    };
    // Bad for a second, good for a second: never long enough to turn.
    let mut seen = Vec::new();
    for _ in 0..30 {
        seen.extend(run(&mut m, &mut t, 1.0, Some(low)));
        seen.extend(run(&mut m, &mut t, 1.0, Some(normal())));
    }
    assert!(seen.is_empty(), "{seen:?}");
    // Bad for three seconds, good for three: starving once, and it stays
    // so until five good seconds in a row.
    for _ in 0..10 {
        seen.extend(run(&mut m, &mut t, 3.0, Some(low)));
        seen.extend(run(&mut m, &mut t, 3.0, Some(normal())));
    }
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(m.verdict(), Verdict::Starving);
}

#[test]
fn no_verdict_on_averages_before_warm_up_and_offline_is_unknown() {
    let (mut m, mut t) = (Monitor::default(), Instant::now());
    run(&mut m, &mut t, 2.0, Some(normal()));
    let low = Sample {
        bitrate_bps: 10_000.0,
        ..normal()
    };
    assert!(run(&mut m, &mut t, 5.0, Some(low)).is_empty());
    assert_eq!(m.verdict(), Verdict::Healthy);
    assert!(run(&mut m, &mut t, 1.0, None).is_empty());
    assert_eq!(m.verdict(), Verdict::Unknown);
    assert_eq!(m.averages(), (None, None));
}
