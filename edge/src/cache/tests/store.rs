//! Store: byte budget, re-weighing, TTL by kind, stale-if-error, body bounds.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use bytes::Bytes;
use http::HeaderMap;

use super::*;

#[tokio::test(flavor = "current_thread")]
async fn byte_budget_evicts() {
    bounded(async {
        let max_bytes = 20_000;
        let cache = Cache::new(CacheConfig {
            max_bytes,
            ..config()
        });
        let keys: Vec<CacheKey> = (0..50)
            .map(|i| CacheKey::from_request(&format!("/live/s/720p/{i}.m4s"), None))
            .collect();
        for key in &keys {
            insert_complete(
                &cache,
                key,
                ObjectKind::Segment,
                Bytes::from(vec![0u8; 1000]),
            )
            .await;
        }
        cache.run_pending_tasks().await;
        let stats = cache.stats();
        assert!(stats.bytes <= max_bytes, "{stats:?}");
        assert!(stats.entries > 0 && stats.entries < 50, "{stats:?}");
        // LRU: the newest object survives.
        let newest = keys.last().unwrap();
        assert!(matches!(
            cache.lookup(newest, ObjectKind::Segment).await,
            Lookup::Hit { .. }
        ));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn growing_object_is_reweighed_when_complete() {
    bounded(async {
        let cache = Cache::new(config());
        let key = part_key();
        let Lookup::Miss(leader) = cache.lookup(&key, ObjectKind::Part).await else {
            panic!("cold key must miss");
        };
        let object = leader.publish(200, HeaderMap::new()).await;
        cache.run_pending_tasks().await;
        assert!(cache.stats().bytes < 1000);
        object.body.append(Bytes::from(vec![1u8; 100_000])).unwrap();
        object.body.finish();
        loop {
            cache.run_pending_tasks().await;
            if cache.stats().bytes >= 100_000 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
}

#[tokio::test(flavor = "current_thread")]
async fn playlist_expires_after_half_a_part_target_but_part_does_not() {
    bounded(async {
        let cache = Cache::new(CacheConfig {
            policy: CachePolicy {
                part_target: Duration::from_millis(100),
                target_duration: Duration::from_secs(1),
            },
            ..config()
        });
        let playlist = CacheKey::from_request("/live/s/720p/index.m3u8", None);
        let part = part_key();
        insert_complete(
            &cache,
            &playlist,
            ObjectKind::Playlist,
            Bytes::from_static(b"#EXTM3U"),
        )
        .await;
        insert_complete(&cache, &part, ObjectKind::Part, Bytes::from_static(b"moof")).await;
        assert!(matches!(
            cache.lookup(&playlist, ObjectKind::Playlist).await,
            Lookup::Hit { .. }
        ));
        tokio::time::sleep(Duration::from_millis(120)).await;
        assert!(matches!(
            cache.lookup(&playlist, ObjectKind::Playlist).await,
            Lookup::Miss(_)
        ));
        match cache.lookup(&part, ObjectKind::Part).await {
            Lookup::Hit { age, .. } => assert!(age >= Duration::from_millis(120)),
            other => panic!("immutable part must still hit, got {:?}", other.status()),
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uncacheable_response_is_shared_with_waiters_but_not_stored() {
    bounded(async {
        let cache = Cache::new(config());
        let key = CacheKey::from_request("/live/s/720p/index.m3u8", Some("_HLS_msn=9"));
        let kind = ObjectKind::BlockingPlaylist;
        let Lookup::Miss(leader) = cache.lookup(&key, kind).await else {
            panic!("cold key must miss");
        };
        let follower = {
            let (cache, key) = (cache.clone(), key.clone());
            tokio::spawn(async move {
                match cache.lookup(&key, kind).await {
                    Lookup::Coalesced { object } => object.status,
                    other => panic!("must coalesce, got {:?}", other.status()),
                }
            })
        };
        while cache.waiting(&key) < 1 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let object = leader.publish(503, HeaderMap::new()).await;
        object.body.finish();
        assert_eq!(follower.await.unwrap(), 503);
        assert!(matches!(cache.lookup(&key, kind).await, Lookup::Miss(_)));
    })
    .await;
}

#[tokio::test(flavor = "current_thread")]
async fn body_bounds_and_idle_timeout() {
    bounded(async {
        let body = GrowingBody::new(10);
        body.append(Bytes::from_static(b"12345")).unwrap();
        assert_eq!(
            body.append(Bytes::from_static(b"678901")),
            Err(BodyError::TooLarge { max: 10 })
        );
        let mut reader = body.reader();
        assert_eq!(
            reader.next(IDLE).await,
            Some(Ok(Bytes::from_static(b"12345")))
        );
        assert_eq!(
            reader.next(IDLE).await,
            Some(Err(BodyError::TooLarge { max: 10 }))
        );
        assert_eq!(reader.next(IDLE).await, None);

        let stalled = GrowingBody::new(10);
        let idle = Duration::from_millis(30);
        let mut reader = stalled.reader();
        assert_eq!(reader.next(idle).await, Some(Err(BodyError::Idle(idle))));
        assert_eq!(stalled.settle(idle).await, Err(BodyError::Idle(idle)));
        assert!(stalled.error().is_some());

        let done = GrowingBody::complete([Bytes::from_static(b"a"), Bytes::new()], 10).unwrap();
        assert!(done.is_complete());
        assert_eq!(done.len(), 1);
        assert_eq!(
            done.append(Bytes::from_static(b"b")),
            Err(BodyError::Closed)
        );
        done.fail("late");
        assert!(done.is_complete(), "fail after finish has no effect");
    })
    .await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_finished_body_is_joined_and_readers_in_the_middle_continue() {
    bounded(async {
        let body = GrowingBody::new(1024);
        for part in [&b"abc"[..], b"defg", b"hi"] {
            body.append(Bytes::copy_from_slice(part)).unwrap();
        }
        let mut early = body.reader();
        assert_eq!(early.next(IDLE).await, Some(Ok(Bytes::from_static(b"abc"))));
        body.finish();

        // The reader that was mid-way gets the rest of the joined chunk.
        assert_eq!(
            early.next(IDLE).await,
            Some(Ok(Bytes::from_static(b"defghi")))
        );
        assert_eq!(early.next(IDLE).await, None);
        // A new reader and the complete snapshot share one joined buffer.
        let (snapshot, len) = body.complete_chunks().unwrap();
        assert_eq!((snapshot.len(), len), (1, 9));
        let mut late = body.reader();
        let all = late.next(IDLE).await.unwrap().unwrap();
        assert_eq!(all, Bytes::from_static(b"abcdefghi"));
        assert_eq!(all.as_ptr(), snapshot[0].as_ptr(), "joined once, shared");
        assert_eq!(late.next(IDLE).await, None);

        // A one-chunk body is kept as it is, not copied.
        let one = Bytes::from_static(b"single");
        let single = GrowingBody::complete([one.clone()], 1024).unwrap();
        assert_eq!(
            single.complete_chunks().unwrap().0[0].as_ptr(),
            one.as_ptr()
        );
    })
    .await;
}
