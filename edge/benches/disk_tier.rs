//! Edge disk-tier hit throughput: requests for segments that memory has
//! evicted, answered from the disk tier (read back whole, published to
//! memory for the requests waiting on it), through io_uring and through
//! the ordinary-file fallback, against memory hits for scale.
//!
//! 64 segments of 512 KiB (32 MiB) behind a 1 MiB memory cache: every
//! request in the round misses memory. The files sit in the page cache
//! after the first round, so this is the tier's own cost (disk thread,
//! queue, read, publish), not the device's.

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use http::HeaderMap;
use livecdn_disk::Preference;
use livecdn_edge::cache::{
    Cache, CacheConfig, CacheKey, DiskTier, DiskTierConfig, Lookup, ObjectKind,
};
use std::time::Duration;

const SEGMENTS: usize = 64;
const SEGMENT: usize = 512 * 1024;

fn key(i: usize) -> CacheKey {
    CacheKey::from_request(&format!("/vod/b/20261206T000000Z/source/{i}.m4s"), None)
}

async fn fill(cache: &Cache, i: usize) {
    if let Lookup::Miss(permit) = cache.lookup(&key(i), ObjectKind::Segment).await {
        let object = permit.publish(200, HeaderMap::new()).await;
        let _ = object.body.append(Bytes::from(vec![i as u8; SEGMENT]));
        object.body.finish();
    }
}

/// One request: a memory hit, or a miss answered by the disk tier.
async fn request(cache: &Cache, i: usize) -> u64 {
    match cache.lookup(&key(i), ObjectKind::Segment).await {
        Lookup::Hit { object, .. } => object.body.len(),
        Lookup::Miss(permit) => match cache.from_disk(permit).await {
            Ok(object) => object.body.len(),
            Err(_) => panic!("segment {i} is on neither tier"),
        },
        _ => panic!("segment {i}: unexpected lookup"),
    }
}

async fn tiered(dir: &std::path::Path, preference: Preference) -> Cache {
    let tier = DiskTier::start(DiskTierConfig {
        dir: dir.to_path_buf(),
        max_bytes: 1 << 30,
        preference,
    })
    .await
    .expect("disk tier");
    let cache = Cache::with_disk(
        CacheConfig {
            max_bytes: 1024 * 1024,
            ..CacheConfig::default()
        },
        Some(tier.clone()),
    );
    for i in 0..SEGMENTS {
        fill(&cache, i).await;
        // Weigh the finished body and evict, as the edge's housekeeping does.
        tokio::task::yield_now().await;
        cache.run_pending_tasks().await;
    }
    // Everything but what memory holds is written before measuring.
    for _ in 0..1000 {
        let s = tier.stats();
        if s.writes + s.dropped + cache.stats().entries >= SEGMENTS as u64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    cache
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mut group = c.benchmark_group("edge_disk_tier");
    group.throughput(Throughput::Bytes((SEGMENTS * SEGMENT) as u64));
    group.sample_size(20);
    for (name, preference) in [("io_uring", Preference::Auto), ("std", Preference::Std)] {
        let dir =
            std::env::temp_dir().join(format!("livecdn-bench-tier-{}-{name}", std::process::id()));
        let cache = rt.block_on(tiered(&dir, preference));
        let backend = cache.disk().map(|d| d.backend().as_str()).unwrap_or("-");
        // Auto falls back to std where io_uring does not work: say so.
        let label = if backend == name {
            format!("disk_hits_{name}")
        } else {
            format!("disk_hits_{name}_fell_back_to_{backend}")
        };
        group.bench_function(label, |b| {
            b.to_async(&rt).iter(|| async {
                let mut bytes = 0;
                for i in 0..SEGMENTS {
                    bytes += request(&cache, i).await;
                    cache.run_pending_tasks().await;
                }
                bytes
            });
        });
        let _ = std::fs::remove_dir_all(&dir);
    }
    // Memory hits of the same segments, for scale.
    let memory = Cache::new(CacheConfig {
        max_bytes: 1 << 30,
        ..CacheConfig::default()
    });
    rt.block_on(async {
        for i in 0..SEGMENTS {
            fill(&memory, i).await;
        }
    });
    group.bench_function("memory_hits", |b| {
        b.to_async(&rt).iter(|| async {
            let mut bytes = 0;
            for i in 0..SEGMENTS {
                bytes += request(&memory, i).await;
            }
            bytes
        });
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
