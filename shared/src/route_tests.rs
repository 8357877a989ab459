use super::*;

fn media(rendition: &str, file: MediaFile) -> LiveObject<'_> {
    LiveObject::Media(MediaPath { rendition, file })
}

#[test]
fn parses_and_renders_every_route() {
    let live = |object| Route::Live {
        stream: "cam",
        object,
    };
    let table: &[(&str, Route<'_>, RouteKind)] = &[
        ("/", Route::Player, RouteKind::Page),
        (
            "/player/hls.min.js",
            Route::PlayerScript(Script::HlsJs),
            RouteKind::Page,
        ),
        (
            "/player/shaka-player.compiled.js",
            Route::PlayerScript(Script::Shaka),
            RouteKind::Page,
        ),
        (
            "/player/dash.all.min.js",
            Route::PlayerScript(Script::DashJs),
            RouteKind::Page,
        ),
        (
            "/player/chat.js",
            Route::PlayerScript(Script::Chat),
            RouteKind::Page,
        ),
        ("/healthz", Route::Healthz, RouteKind::Health),
        ("/readyz", Route::Readyz, RouteKind::Health),
        ("/metrics", Route::Metrics, RouteKind::Metrics),
        ("/time", Route::Time, RouteKind::Health),
        ("/api/streams", Route::ApiStreams, RouteKind::Api),
        ("/api/streams/cam", Route::ApiStream("cam"), RouteKind::Api),
        ("/api/channels", Route::ApiChannels, RouteKind::Api),
        ("/api/purge", Route::ApiPurge, RouteKind::Api),
        ("/api/recordings", Route::ApiRecordings, RouteKind::Api),
        (
            "/api/recordings/cam/20261206T195000Z-2",
            Route::ApiRecording {
                stream: "cam",
                recording: "20261206T195000Z-2",
            },
            RouteKind::Api,
        ),
        (
            "/api/channels/cam",
            Route::ApiChannel {
                name: "cam",
                object: ChannelObject::Record,
            },
            RouteKind::Api,
        ),
        (
            "/api/channels/cam/stream",
            Route::ApiChannel {
                name: "cam",
                object: ChannelObject::Stream,
            },
            RouteKind::Api,
        ),
        (
            "/api/channels/cam/keys",
            Route::ApiChannel {
                name: "cam",
                object: ChannelObject::Keys,
            },
            RouteKind::Api,
        ),
        (
            "/api/channels/cam/keys/k_1a",
            Route::ApiChannel {
                name: "cam",
                object: ChannelObject::Key("k_1a"),
            },
            RouteKind::Api,
        ),
        (
            "/api/channels/cam/stop",
            Route::ApiChannel {
                name: "cam",
                object: ChannelObject::Stop,
            },
            RouteKind::Api,
        ),
        (
            "/api/chat/cam/tokens",
            Route::ApiChat {
                stream: "cam",
                object: ChatApiObject::Tokens,
            },
            RouteKind::Api,
        ),
        (
            "/api/chat/cam/messages/1733000000000-12",
            Route::ApiChat {
                stream: "cam",
                object: ChatApiObject::Message("1733000000000-12"),
            },
            RouteKind::Api,
        ),
        (
            "/api/chat/cam/bans/ada@example.org",
            Route::ApiChat {
                stream: "cam",
                object: ChatApiObject::Ban("ada@example.org"),
            },
            RouteKind::Api,
        ),
        ("/live/whip", Route::Whip, RouteKind::WebRtc),
        (
            "/live/whip/0123456789abcdef0123456789abcdef",
            Route::WhipSession("0123456789abcdef0123456789abcdef"),
            RouteKind::WebRtc,
        ),
        (
            "/live/cam/master.m3u8",
            live(LiveObject::Master),
            RouteKind::Master,
        ),
        (
            "/live/cam/manifest.mpd",
            live(LiveObject::Mpd),
            RouteKind::Mpd,
        ),
        ("/live/cam/whep", live(LiveObject::Whep), RouteKind::WebRtc),
        (
            "/live/cam/whep/0123456789abcdef0123456789abcdef",
            live(LiveObject::WhepSession("0123456789abcdef0123456789abcdef")),
            RouteKind::WebRtc,
        ),
        ("/live/cam/chat", live(LiveObject::Chat), RouteKind::Chat),
        (
            "/live/cam/source/index.m3u8",
            live(media("source", MediaFile::Playlist)),
            RouteKind::Playlist,
        ),
        (
            "/live/cam/audio/init.mp4",
            live(media("audio", MediaFile::Init { gen: 0 })),
            RouteKind::Init,
        ),
        (
            "/live/cam/audio/init-2.mp4",
            live(media("audio", MediaFile::Init { gen: 2 })),
            RouteKind::Init,
        ),
        (
            "/live/cam/720p/12.m4s",
            live(media("720p", MediaFile::Segment { msn: 12 })),
            RouteKind::Segment,
        ),
        (
            "/live/cam/720p/0.0.m4s",
            live(media("720p", MediaFile::Part { msn: 0, part: 0 })),
            RouteKind::Part,
        ),
        (
            "/live/cam/720p/18446744073709551615.4294967295.m4s",
            live(media(
                "720p",
                MediaFile::Part {
                    msn: u64::MAX,
                    part: u32::MAX,
                },
            )),
            RouteKind::Part,
        ),
        (
            "/vod/cam/rec-1/master.m3u8",
            Route::Vod {
                stream: "cam",
                recording: "rec-1",
                object: VodObject::Master,
            },
            RouteKind::Master,
        ),
        (
            "/vod/cam/rec-1/download.mp4",
            Route::Vod {
                stream: "cam",
                recording: "rec-1",
                object: VodObject::Download,
            },
            RouteKind::Download,
        ),
        (
            "/vod/cam/rec-1/source/3.m4s",
            Route::Vod {
                stream: "cam",
                recording: "rec-1",
                object: VodObject::Media(MediaPath {
                    rendition: "source",
                    file: MediaFile::Segment { msn: 3 },
                }),
            },
            RouteKind::Segment,
        ),
    ];
    for (path, want, kind) in table {
        let got = Route::parse(path);
        assert_eq!(got, Some(*want), "{path}");
        assert_eq!(want.kind(), *kind, "{path}");
        assert_eq!(want.to_string(), *path, "{path}");
    }
    assert_eq!(Route::parse("/index.html"), Some(Route::Player));
}

#[test]
fn accessors_name_the_stream_and_media() {
    let r = Route::parse("/live/cam/source/5.1.m4s");
    assert_eq!(r.and_then(|r| r.stream()), Some("cam"));
    assert_eq!(
        r.and_then(|r| r.media()),
        Some(MediaPath {
            rendition: "source",
            file: MediaFile::Part { msn: 5, part: 1 }
        })
    );
    assert_eq!(Route::Metrics.stream(), None);
    assert_eq!(Route::parse("/live/cam/whep").and_then(|r| r.media()), None);
    assert!(RouteKind::Part.is_immutable() && !RouteKind::Playlist.is_immutable());
}

#[test]
fn rejects_traversal_aliases_and_junk() {
    let long = format!("/live/{}/master.m3u8", "a".repeat(300));
    let mut bad = vec![
        "",
        "/live",
        "/live/",
        "/live/cam",
        "/live/cam/",
        "/live/../etc/passwd",
        "/live/cam/../source/index.m3u8",
        "/live/cam/source/-1.m4s",
        "/live/cam/source/+1.m4s",
        "/live/cam/source/1.-1.m4s",
        "/live/cam/source/01.m4s",
        "/live/cam/source/1.02.m4s",
        "/live/cam/source/init-0.mp4",
        "/live/cam/source/init-01.mp4",
        "/live/cam/source/99999999999999999999.m4s",
        "/live/cam/source/1.4294967296.m4s",
        "/live/cam/source/1.2.3.m4s",
        "/live/cam/source/.m4s",
        "/live/cam/source/index.m3u8/x",
        "/live/cam/source/index.m3u8?x",
        "/live/ca m/master.m3u8",
        "/live//master.m3u8",
        "/live/cam//index.m3u8",
        "/live/cam/master.m3u8/",
        "/live/cam/whep/x",
        "/live/cam/whep/0123456789ABCDEF0123456789ABCDEF",
        "/live/cam/whep/0123456789abcdef0123456789abcdef/x",
        "/LIVE/cam/master.m3u8",
        "/api/streams/",
        "/api/streams/../../x",
        "/api/streams/a/b",
        "/api/channels/",
        "/api/channels/cam/",
        "/api/channels/cam/keys/",
        "/api/channels/cam/keys/a/b",
        "/api/channels/c.m/stream",
        "/api/channels/cam/other",
        "/api/chat/cam",
        "/api/chat/cam/tokens/x",
        "/api/chat/cam/messages/1",
        "/api/chat/cam/messages/1-",
        "/api/chat/cam/messages/-1",
        "/api/chat/cam/messages/1-2-3",
        "/api/chat/cam/bans/",
        "/api/chat/cam/bans/a b",
        "/api/chat/c.m/tokens",
        "/api/recordings/",
        "/api/recordings/cam",
        "/api/recordings/cam/",
        "/api/recordings/cam/a/b",
        "/api/recordings/../x",
        "/vod/cam/master.m3u8",
        "/vod/cam/rec/",
        "/vod/cam/r.1/master.m3u8",
        "/player/other.js",
    ];
    bad.push(&long);
    for p in bad {
        assert_eq!(Route::parse(p), None, "{p}");
    }
}

#[test]
fn fuzz_route_survives_seeds_and_mutations() {
    let seeds: &[&[u8]] = &[
        b"/live/cam/source/12.3.m4s",
        b"/live/cam/audio/init-2.mp4",
        b"/live/cam/master.m3u8",
        b"/vod/cam/rec/720p/index.m3u8",
        b"/api/streams/cam",
        b"/api/channels/cam/keys/k1",
        b"/live/whip",
    ];
    let alphabet = b"/.-_0123456789livecamsourceinitm4s3u8pdvodwhep";
    let mut rng = crate::playlist::test_rng::XorShift::new(0x2545_f491_4f6c_dd1d);
    for seed in seeds {
        fuzz_route(seed);
    }
    for _ in 0..20_000 {
        let Some(seed) = rng.pick(seeds) else {
            continue;
        };
        let mutated = rng.mutate(seed, alphabet);
        fuzz_route(&mutated);
    }
}
