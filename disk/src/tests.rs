#![allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]

use super::*;

async fn each_backend(check: impl AsyncFn(Disk, &Path)) {
    for preference in [Preference::Auto, Preference::Std] {
        let dir = tempfile::tempdir().unwrap();
        let disk = Disk::start(DiskConfig {
            preference,
            ..DiskConfig::default()
        })
        .await;
        if preference == Preference::Std {
            assert_eq!(disk.backend(), Backend::Std);
        }
        check(disk, dir.path()).await;
    }
}

#[tokio::test]
async fn write_read_append_remove_on_both_paths() {
    each_backend(async |disk, dir| {
        let path = dir.join("rec/source/1.m4s");
        let chunks: Vec<Bytes> = (0..1500u32)
            .map(|i| Bytes::from(i.to_be_bytes().to_vec()))
            .chain([Bytes::new()])
            .collect();
        let n = disk.write(&path, chunks.clone()).await.unwrap();
        assert_eq!(n, 6000, "{:?}", disk.backend());
        let all = disk.read(&path, 0, None).await.unwrap();
        assert_eq!(all, chunks.concat());
        let mid = disk.read(&path, 4 * 700, Some(8)).await.unwrap();
        assert_eq!(&mid[..], &[0, 0, 2, 188, 0, 0, 2, 189]);
        assert!(disk.read(&path, 6000, None).await.unwrap().is_empty());
        assert_eq!(disk.read(&path, 5998, Some(10)).await.unwrap().len(), 2);

        // Rewriting replaces; appending appends.
        disk.write(&path, vec![Bytes::from_static(b"ab")])
            .await
            .unwrap();
        disk.append(&path, Bytes::from_static(b"cd")).await.unwrap();
        disk.append(&path, Bytes::from_static(b"ef")).await.unwrap();
        assert_eq!(&disk.read(&path, 0, None).await.unwrap()[..], b"abcdef");

        let missing = disk.read(dir.join("nope"), 0, None).await.unwrap_err();
        assert!(missing.is_not_found(), "{missing}");
        assert!(missing.to_string().contains("nope"), "{missing}");

        disk.remove_file(&path).await.unwrap();
        assert!(!path.exists());
        disk.remove_file(&path).await.unwrap();
        disk.remove_dir_all(dir.join("rec")).await.unwrap();
        assert!(!dir.join("rec").exists());
        disk.remove_dir_all(dir.join("rec")).await.unwrap();
        let s = disk.stats();
        assert!(s.bytes_written.load(Ordering::Relaxed) >= 6006);
        assert!(s.errors.load(Ordering::Relaxed) >= 1);
    })
    .await;
}

#[tokio::test]
async fn many_jobs_at_once_all_answer() {
    each_backend(async |disk, dir| {
        let jobs = (0..200u32).map(|i| {
            let disk = disk.clone();
            let path = dir.join(format!("f/{i}"));
            async move {
                disk.write(&path, vec![Bytes::from(vec![i as u8; 1000])])
                    .await
                    .unwrap();
                disk.read(&path, 0, None).await.unwrap()
            }
        });
        let got = futures_join(jobs).await;
        for (i, b) in got.iter().enumerate() {
            assert_eq!(b.len(), 1000);
            assert!(b.iter().all(|x| *x == i as u8));
        }
    })
    .await;
}

/// Runs futures as tasks and collects their outputs in order.
async fn futures_join<F>(fs: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = fs.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn auto_uses_io_uring_where_the_kernel_allows_it() {
    let disk = Disk::start(DiskConfig::default()).await;
    // This machine's kernel has io_uring (see DEPENDENCIES.md); a sandbox
    // that blocks it gets the fallback, which the other tests cover.
    let works = std::thread::spawn(|| uring::Ring::new().is_ok())
        .join()
        .unwrap();
    if works {
        assert_eq!(disk.backend(), Backend::Uring);
    } else {
        assert_eq!(disk.backend(), Backend::Std);
    }
}
