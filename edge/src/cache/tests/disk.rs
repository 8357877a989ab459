//! The disk tier: what memory evicts comes back from disk, byte for byte,
//! and the tier keeps to its budget.

use super::*;
use livecdn_disk::Preference;
use std::path::Path;
use std::time::Instant;

const SEGMENT: usize = 200 * 1024;

fn segment_key(i: usize) -> CacheKey {
    CacheKey::from_request(&format!("/vod/s/20261206T000000Z/source/{i}.m4s"), None)
}

/// Distinct bytes per segment, so a mix-up shows.
fn body(i: usize, len: usize) -> Bytes {
    (0..len)
        .map(|n| (n.wrapping_mul(31) ^ i.wrapping_mul(7919)) as u8)
        .collect::<Vec<u8>>()
        .into()
}

async fn tier(dir: &Path, max_bytes: u64, preference: Preference) -> DiskTier {
    DiskTier::start(DiskTierConfig {
        dir: dir.to_path_buf(),
        max_bytes,
        preference,
    })
    .await
    .unwrap()
}

fn small_memory() -> CacheConfig {
    CacheConfig {
        max_bytes: 1024 * 1024,
        ..config()
    }
}

/// Fills `key` the way a request does: a miss, published, appended.
async fn fill(cache: &Cache, key: &CacheKey, kind: ObjectKind, status: u16, data: Bytes) {
    let Lookup::Miss(permit) = cache.lookup(key, kind).await else {
        panic!("{key} should miss");
    };
    let mut headers = HeaderMap::new();
    headers.insert(http::header::CONTENT_TYPE, "video/mp4".parse().unwrap());
    let object = permit.publish(status, headers).await;
    // The body arrives after the headers, as from upstream.
    tokio::task::yield_now().await;
    object.body.append(data).unwrap();
    object.body.finish();
}

/// Fills segment `i` with its distinct bytes.
async fn fill_segment(cache: &Cache, i: usize) {
    fill(
        cache,
        &segment_key(i),
        ObjectKind::Segment,
        200,
        body(i, SEGMENT),
    )
    .await;
}

/// A lookup of segment `i` that must miss memory, answered by the tier.
async fn from_disk(cache: &Cache, i: usize) -> Result<Arc<CachedObject>, FillPermit> {
    let Lookup::Miss(permit) = cache.lookup(&segment_key(i), ObjectKind::Segment).await else {
        panic!("segment {i} should have left memory");
    };
    cache.from_disk(permit).await
}

/// Waits (bounded) until memory holds only final weights within its
/// budget: a published object is weighed again by a watcher task once its
/// body ends, and evictions follow.
async fn memory_settled(cache: &Cache) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        cache.run_pending_tasks().await;
        let s = cache.stats();
        if s.bytes <= cache.config().max_bytes && s.bytes >= s.entries * SEGMENT as u64 {
            return;
        }
        assert!(Instant::now() < deadline, "memory never settled: {s:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Waits (bounded) until the tier has handled `n` demotions.
async fn demoted(tier: &DiskTier, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let s = tier.stats();
        if s.writes + s.dropped >= n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "demotions stuck at {s:?}, want {n}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn files_bytes(dir: &Path) -> (u64, Vec<std::path::PathBuf>) {
    let mut total = 0;
    let mut files = Vec::new();
    let mut stack = vec![dir.join("objects")];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let meta = e.metadata().unwrap();
            if meta.is_dir() {
                stack.push(e.path());
            } else {
                total += meta.len();
                files.push(e.path());
            }
        }
    }
    (total, files)
}

#[tokio::test]
async fn evicted_segments_come_back_from_disk_intact_on_both_paths() {
    for preference in [Preference::Auto, Preference::Std] {
        let dir = tempfile::tempdir().unwrap();
        // A file from an earlier run: the index that knew it is gone.
        std::fs::create_dir_all(dir.path().join("objects/01")).unwrap();
        std::fs::write(dir.path().join("objects/01/stray"), b"old").unwrap();
        let tier = tier(dir.path(), 64 * 1024 * 1024, preference).await;
        let cache = Cache::with_disk(small_memory(), Some(tier.clone()));
        bounded(async {
            // Cleared at start.
            assert_eq!(files_bytes(dir.path()).1.len(), 0);
            for i in 0..20 {
                fill_segment(&cache, i).await;
            }
            // Parts and failures are not worth a disk write.
            let part = CacheKey::from_request("/live/s/source/3.1.m4s", None);
            fill(&cache, &part, ObjectKind::Part, 200, body(99, SEGMENT)).await;
            let gone = CacheKey::from_request("/vod/s/x/source/404.m4s", None);
            fill(&cache, &gone, ObjectKind::Init, 404, body(98, SEGMENT)).await;
            for i in 20..30 {
                fill_segment(&cache, i).await;
            }
            memory_settled(&cache).await;
            let in_memory = cache.stats().entries;
            assert!(in_memory < 10, "memory should hold a few: {in_memory}");
            demoted(&tier, 30 - in_memory).await;
            tier.settle().await;
            let s = tier.stats();
            assert_eq!(s.read_errors, 0, "{s:?}");
            assert!(s.writes >= 20, "most segments went to disk: {s:?}");

            // The oldest are out of memory: from disk, intact, with headers.
            for i in 0..5 {
                let key = segment_key(i);
                let object = from_disk(&cache, i)
                    .await
                    .unwrap_or_else(|_| panic!("{key} not on disk: {:?}", tier.stats()));
                assert_eq!(object.status, 200);
                assert_eq!(object.headers[http::header::CONTENT_TYPE], "video/mp4");
                let bytes = concat(&read_all(&object).await.unwrap());
                assert!(bytes == body(i, SEGMENT), "{key}: bytes differ");
                // Back in memory now.
                assert!(matches!(
                    cache.lookup(&key, ObjectKind::Segment).await,
                    Lookup::Hit { .. }
                ));
            }
            assert!(tier.stats().hits >= 5);
            for key in [part, gone] {
                let kind = ObjectKind::from_request(key.as_str(), None);
                if let Lookup::Miss(permit) = cache.lookup(&key, kind).await {
                    assert!(cache.from_disk(permit).await.is_err(), "{key} is not kept");
                }
            }
        })
        .await;
    }
}

#[tokio::test]
async fn the_tier_keeps_to_its_budget_dropping_the_least_recent() {
    let dir = tempfile::tempdir().unwrap();
    let budget = 2 * 1024 * 1024;
    let tier = tier(dir.path(), budget, Preference::Auto).await;
    let cache = Cache::with_disk(small_memory(), Some(tier.clone()));
    bounded(async {
        let n = 40;
        for i in 0..n {
            fill_segment(&cache, i).await;
            // Evictions as they happen, not in one batch at the end.
            memory_settled(&cache).await;
        }
        let in_memory = cache.stats().entries;
        demoted(&tier, n as u64 - in_memory).await;
        tier.settle().await;
        let s = tier.stats();
        let (on_disk, files) = files_bytes(dir.path());
        assert!(s.bytes <= budget, "{s:?}");
        assert!(on_disk <= budget, "{on_disk} bytes on disk over {budget}");
        assert_eq!(files.len() as u64, s.entries, "a file per entry");
        assert!(s.entries >= 5, "the tier keeps what fits: {s:?}");

        // The first evicted are gone; the last evicted are there.
        assert!(from_disk(&cache, 0).await.is_err(), "oldest dropped");
        let last = n - in_memory as usize - 1;
        assert!(from_disk(&cache, last).await.is_ok(), "newest evicted kept");
    })
    .await;
}

#[tokio::test]
async fn a_torn_file_is_dropped_and_fetched_again() {
    let dir = tempfile::tempdir().unwrap();
    let tier = tier(dir.path(), 64 * 1024 * 1024, Preference::Auto).await;
    let cache = Cache::with_disk(small_memory(), Some(tier.clone()));
    bounded(async {
        for i in 0..10 {
            fill_segment(&cache, i).await;
        }
        memory_settled(&cache).await;
        demoted(&tier, 10 - cache.stats().entries).await;
        // Cut every file short, as a crashed disk might.
        for f in files_bytes(dir.path()).1 {
            let file = std::fs::OpenOptions::new().write(true).open(&f).unwrap();
            file.set_len(100).unwrap();
        }
        assert!(
            from_disk(&cache, 0).await.is_err(),
            "a torn file must not be served"
        );
        assert_eq!(tier.stats().read_errors, 1);
        tier.settle().await;
        assert!(tier.stats().entries < 10 - cache.stats().entries);
    })
    .await;
}

#[tokio::test]
async fn a_slow_disk_holds_at_most_the_queue_bytes_of_evicted_memory() {
    let dir = tempfile::tempdir().unwrap();
    let tier = tier(dir.path(), 1 << 30, Preference::Auto).await;
    let cache = Cache::new(config());
    bounded(async {
        // Back to back with no await between: the writer cannot take any
        // yet, as behind a disk that has stopped answering.
        let mib = 1024 * 1024;
        for i in 0..100 {
            let object = cache.new_object(200, HeaderMap::new(), ObjectKind::Segment);
            object.body.append(body(i, mib)).unwrap();
            object.body.finish();
            tier.demote(segment_key(i), Arc::new(object));
        }
        // 64 MiB queued at most: the rest dropped, counted.
        assert_eq!(tier.stats().dropped, 36);
        demoted(&tier, 100).await;
        assert_eq!(tier.stats().writes, 64);
    })
    .await;
}
