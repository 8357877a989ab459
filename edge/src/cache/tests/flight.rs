//! Single flight: one fill per key, streaming to followers, re-election, timeouts.
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::HeaderMap;

use super::*;

/// Whether `part`'s bytes lie inside `whole`'s buffer.
fn within(part: &Bytes, whole: &Bytes) -> bool {
    let (p, w) = (part.as_ptr() as usize, whole.as_ptr() as usize);
    p >= w && p + part.len() <= w + whole.len()
}

enum Role {
    Leader,
    Follower {
        first_chunk_at: Instant,
        chunks: Vec<Bytes>,
    },
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thousand_concurrent_lookups_make_one_fill_and_all_stream_it() {
    const N: usize = 1000;
    bounded(async {
        let cache = Cache::new(config());
        let key = part_key();
        let appended: Arc<Vec<Bytes>> = Arc::new(
            (0u8..10)
                .map(|i| Bytes::from(vec![i; 1000 + usize::from(i)]))
                .collect(),
        );
        let last_append_at = Arc::new(Mutex::new(None::<Instant>));
        let barrier = Arc::new(tokio::sync::Barrier::new(N));
        let mut tasks = Vec::new();
        for _ in 0..N {
            let (cache, key, appended) = (cache.clone(), key.clone(), appended.clone());
            let (barrier, last_append_at) = (barrier.clone(), last_append_at.clone());
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                match cache.lookup(&key, ObjectKind::Part).await {
                    Lookup::Miss(permit) => {
                        let object = permit.publish(200, HeaderMap::new()).await;
                        for (i, chunk) in appended.iter().enumerate() {
                            if i > 0 {
                                tokio::time::sleep(Duration::from_millis(20)).await;
                            }
                            if i == appended.len() - 1 {
                                *last_append_at.lock().unwrap() = Some(Instant::now());
                            }
                            object.body.append(chunk.clone()).unwrap();
                        }
                        object.body.finish();
                        Role::Leader
                    }
                    Lookup::Coalesced { object } => {
                        let mut reader = object.body.reader();
                        let first = reader.next(IDLE).await.unwrap().unwrap();
                        let first_chunk_at = Instant::now();
                        let mut chunks = vec![first];
                        while let Some(chunk) = reader.next(IDLE).await {
                            chunks.push(chunk.unwrap());
                        }
                        Role::Follower {
                            first_chunk_at,
                            chunks,
                        }
                    }
                    other => panic!("unexpected lookup result {:?}", other.status()),
                }
            }));
        }
        let mut leaders = 0;
        let mut followers = Vec::new();
        for task in tasks {
            match task.await.unwrap() {
                Role::Leader => leaders += 1,
                Role::Follower {
                    first_chunk_at,
                    chunks,
                } => followers.push((first_chunk_at, chunks)),
            }
        }
        assert_eq!(leaders, 1);
        assert_eq!(followers.len(), N - 1);
        let last_append_at = last_append_at.lock().unwrap().unwrap();
        let whole = concat(&appended);
        // Once complete, the object is a plain hit, held as one joined chunk.
        let Lookup::Hit { object, .. } = cache.lookup(&key, ObjectKind::Part).await else {
            panic!("a complete object must be a hit");
        };
        let (joined, len) = object.body.complete_chunks().unwrap();
        assert_eq!((joined.len(), len), (1, whole.len() as u64));
        assert_eq!(joined[0].as_ref(), whole.as_slice());
        let shared: Vec<&Bytes> = appended.iter().chain(joined.iter()).collect();
        for (first_chunk_at, chunks) in &followers {
            assert!(
                *first_chunk_at < last_append_at,
                "a follower waited for the whole body"
            );
            assert_eq!(concat(chunks), whole);
            // Each chunk a follower got is a view of an appended chunk (while
            // the body was open) or of the joined one (after): never a copy
            // of its own.
            for got in chunks {
                assert!(shared.iter().any(|s| within(got, s)), "chunk was copied");
            }
        }
        let stats = cache.stats();
        assert_eq!((stats.misses, stats.coalesced), (1, N as u64 - 1));
    })
    .await;
}

async fn dropped_leader_hands_over_to_exactly_one_follower() {
    const FOLLOWERS: usize = 20;
    bounded(async {
        let cache = Cache::new(config());
        let key = part_key();
        let Lookup::Miss(first_leader) = cache.lookup(&key, ObjectKind::Part).await else {
            panic!("cold key must miss");
        };
        let mut tasks = Vec::new();
        for _ in 0..FOLLOWERS {
            let (cache, key) = (cache.clone(), key.clone());
            tasks.push(tokio::spawn(async move {
                match cache.lookup(&key, ObjectKind::Part).await {
                    Lookup::Miss(permit) => {
                        let object = permit.publish(200, HeaderMap::new()).await;
                        object.body.append(Bytes::from_static(b"abc")).unwrap();
                        // Keep the body growing so the others coalesce, not hit.
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        object.body.append(Bytes::from_static(b"def")).unwrap();
                        object.body.finish();
                        true
                    }
                    Lookup::Coalesced { object } => {
                        assert_eq!(concat(&read_all(&object).await.unwrap()), b"abcdef");
                        false
                    }
                    other => panic!("unexpected lookup result {:?}", other.status()),
                }
            }));
        }
        while cache.waiting(&key) < FOLLOWERS {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        drop(first_leader);
        let mut leaders = 0;
        for task in tasks {
            leaders += usize::from(task.await.unwrap());
        }
        assert_eq!(leaders, 1, "exactly one follower becomes the new leader");
        let stats = cache.stats();
        assert_eq!((stats.misses, stats.coalesced), (2, FOLLOWERS as u64 - 1));
    })
    .await;
}

#[tokio::test(flavor = "current_thread")]
async fn dropped_leader_re_elects_once_current_thread() {
    dropped_leader_hands_over_to_exactly_one_follower().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dropped_leader_re_elects_once_multi_thread() {
    dropped_leader_hands_over_to_exactly_one_follower().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permit_fail_before_publish_also_re_elects() {
    bounded(async {
        let cache = Cache::new(config());
        let key = part_key();
        let Lookup::Miss(leader) = cache.lookup(&key, ObjectKind::Part).await else {
            panic!("cold key must miss");
        };
        let follower = {
            let (cache, key) = (cache.clone(), key.clone());
            tokio::spawn(async move { cache.lookup(&key, ObjectKind::Part).await.status() })
        };
        while cache.waiting(&key) < 1 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        leader.fail("upstream refused");
        assert_eq!(follower.await.unwrap(), Some(CacheStatus::Miss));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_failure_after_publish_reaches_followers_as_error() {
    bounded(async {
        let cache = Cache::new(config());
        let key = part_key();
        let Lookup::Miss(leader) = cache.lookup(&key, ObjectKind::Part).await else {
            panic!("cold key must miss");
        };
        let mut followers = Vec::new();
        for _ in 0..5 {
            let (cache, key) = (cache.clone(), key.clone());
            followers.push(tokio::spawn(async move {
                let Lookup::Coalesced { object } = cache.lookup(&key, ObjectKind::Part).await
                else {
                    panic!("must coalesce");
                };
                read_all(&object).await
            }));
        }
        while cache.waiting(&key) < 5 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let object = leader.publish(200, HeaderMap::new()).await;
        object.body.append(Bytes::from_static(b"partial")).unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        object.body.fail("upstream reset");
        for follower in followers {
            let result = follower.await.unwrap();
            assert_eq!(result, Err(BodyError::Failed("upstream reset".into())));
        }
        // The failed object is not served again: the next request fetches.
        assert!(matches!(
            cache.lookup(&key, ObjectKind::Part).await,
            Lookup::Miss(_)
        ));
    })
    .await;
}

#[tokio::test(flavor = "current_thread")]
async fn follower_times_out_within_lock_timeout() {
    bounded(async {
        let lock_timeout = Duration::from_millis(100);
        let cache = Cache::new(CacheConfig {
            lock_timeout,
            ..config()
        });
        let key = part_key();
        let Lookup::Miss(_leader) = cache.lookup(&key, ObjectKind::Part).await else {
            panic!("cold key must miss");
        };
        let started = Instant::now();
        let result = cache.lookup(&key, ObjectKind::Part).await;
        let waited = started.elapsed();
        assert!(matches!(result, Lookup::TimedOut));
        assert!(waited >= lock_timeout, "gave up early: {waited:?}");
        assert!(waited < lock_timeout * 5, "waited too long: {waited:?}");
        assert_eq!(cache.stats().timeouts, 1);
    })
    .await;
}

#[tokio::test(flavor = "current_thread")]
async fn timed_out_follower_gets_stale_immutable_copy() {
    bounded(async {
        let cache = Cache::new(CacheConfig {
            lock_timeout: Duration::from_millis(50),
            ..config()
        });
        let key = part_key();
        // A part whose TTL has run out but whose stale-if-error grace has not.
        let body = GrowingBody::complete([Bytes::from_static(b"old")], 1024).unwrap();
        let ttl = Some(Duration::from_millis(10));
        let object = CachedObject::new(200, HeaderMap::new(), ObjectKind::Part, ttl, body);
        assert!(cache.insert(key.clone(), Arc::new(object)).await);
        tokio::time::sleep(Duration::from_millis(30)).await;
        let Lookup::Miss(leader) = cache.lookup(&key, ObjectKind::Part).await else {
            panic!("expired object must be refetched");
        };
        let Lookup::Stale { object } = cache.lookup(&key, ObjectKind::Part).await else {
            panic!("slow leader and a stale copy: serve stale");
        };
        assert_eq!(concat(&read_all(&object).await.unwrap()), b"old");
        leader.fail("upstream down");
        assert!(cache.get_stale(&key).await.is_some());
        assert_eq!(cache.stats().stale, 2);
    })
    .await;
}
