//! Copying finished recordings to S3-compatible object storage
//! (object_store's S3 client): the progressive MP4 as a multipart upload
//! and/or the CMAF files with VOD playlists, which play from the bucket as
//! they are.
//!
//! Objects are `PREFIX/STREAM/RECORDING/recording.mp4`, `.../master.m3u8`,
//! `.../RENDITION/index.m3u8`, `init.mp4`, `MSN.m4s`. Every object is read
//! from the disk tier and sent as the `Bytes` it was read into. At most
//! `concurrency` objects are in flight over all uploads. A failed upload is
//! tried again (puts overwrite, so a retry re-sends whatever it must) up to
//! `tries` times with doubling waits; the last failure is reported, never
//! dropped.

use super::index::Recording;
use super::Recorder;
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use livecdn_shared::config::{UploadConfig, UploadWhat};
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, RetryConfig, WriteMultipart};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

pub use super::journal::ObjectRef as Uploaded;

/// Why an upload failed.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error("object storage: {0}")]
    Store(#[from] object_store::Error),
    #[error("reading the recording: {0}")]
    Disk(#[from] livecdn_disk::DiskError),
    #[error("mp4: {0}")]
    Mp4(#[from] super::mp4::Mp4Error),
    #[error("{0}")]
    Other(String),
}

/// Multipart part size for the MP4.
const PART: usize = 8 << 20;

/// The S3 client and its limits.
pub struct Uploader {
    store: Arc<dyn ObjectStore>,
    config: UploadConfig,
    slots: Arc<Semaphore>,
}

impl Uploader {
    pub fn new(config: &UploadConfig) -> Result<Uploader, UploadError> {
        let mut b = AmazonS3Builder::from_env()
            .with_bucket_name(&config.bucket)
            .with_region(&config.region)
            // The disk tier's own retries (each a whole try) are the
            // ones that wait long; the client's cover a blip.
            .with_retry(RetryConfig {
                max_retries: 2,
                retry_timeout: Duration::from_secs(30),
                ..RetryConfig::default()
            });
        if let Some(e) = &config.endpoint {
            b = b
                .with_endpoint(e)
                .with_allow_http(e.starts_with("http://"))
                .with_virtual_hosted_style_request(false);
        }
        if let Some(k) = &config.access_key_id {
            b = b.with_access_key_id(k);
        }
        if let Some(k) = &config.secret_access_key {
            b = b.with_secret_access_key(k);
        }
        Ok(Uploader {
            store: Arc::new(b.build()?),
            slots: Arc::new(Semaphore::new(config.concurrency.max(1))),
            config: config.clone(),
        })
    }

    fn key(&self, r: &Recording, name: &str) -> String {
        let base = format!("{}/{}/{name}", r.meta.stream, r.meta.id);
        match self.config.prefix.trim_matches('/') {
            "" => base,
            p => format!("{p}/{base}"),
        }
    }

    fn url(&self, key: &str) -> String {
        match (&self.config.public_url, &self.config.endpoint) {
            (Some(u), _) => format!("{}/{key}", u.trim_end_matches('/')),
            (None, Some(e)) => format!("{}/{}/{key}", e.trim_end_matches('/'), self.config.bucket),
            (None, None) => format!(
                "https://{}.s3.{}.amazonaws.com/{key}",
                self.config.bucket, self.config.region
            ),
        }
    }

    /// Uploads `r`, trying again on failure; the objects, or the last error.
    /// A recording with no media (one a disk error stopped at once) has
    /// nothing to upload: no objects.
    pub async fn deliver(
        &self,
        rec: &Recorder,
        r: &Arc<Recording>,
    ) -> Result<Vec<Uploaded>, String> {
        if r.segment_count() == 0 {
            return Ok(Vec::new());
        }
        let tries = self.config.tries.max(1);
        let mut wait = Duration::from_secs(1);
        for attempt in 1..=tries {
            match self.upload(rec, r).await {
                Ok(objects) => {
                    let bytes: u64 = objects.iter().map(|o| o.bytes).sum();
                    rec.stats.uploads.fetch_add(1, Ordering::Relaxed);
                    rec.stats.uploaded_bytes.fetch_add(bytes, Ordering::Relaxed);
                    tracing::info!(stream = %r.meta.stream, recording = %r.meta.id, objects = objects.len(), bytes, "recording uploaded");
                    rec.uploaded(r, &objects).await;
                    return Ok(objects);
                }
                Err(e) if attempt < tries => {
                    tracing::warn!(stream = %r.meta.stream, recording = %r.meta.id, attempt, error = %e, retry_in = ?wait, "upload failed; retrying");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(60));
                }
                Err(e) => {
                    rec.stats.upload_failures.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(stream = %r.meta.stream, recording = %r.meta.id, attempts = attempt, error = %e, "upload failed; giving up");
                    return Err(e.to_string());
                }
            }
        }
        Err("no upload tried".to_string())
    }

    async fn upload(
        &self,
        rec: &Recorder,
        r: &Arc<Recording>,
    ) -> Result<Vec<Uploaded>, UploadError> {
        let mut out = Vec::new();
        if matches!(self.config.what, UploadWhat::Cmaf | UploadWhat::Both) {
            out.extend(self.cmaf(rec, r).await?);
        }
        if matches!(self.config.what, UploadWhat::Mp4 | UploadWhat::Both) {
            out.push(self.mp4(rec, r).await?);
        }
        Ok(out)
    }

    async fn put(&self, key: String, body: Bytes) -> Result<Uploaded, UploadError> {
        let _slot = self
            .slots
            .acquire()
            .await
            .map_err(|_| UploadError::Other("uploader closed".into()))?;
        let bytes = body.len() as u64;
        self.store
            .put(&ObjectPath::from(key.as_str()), PutPayload::from(body))
            .await?;
        Ok(Uploaded {
            url: self.url(&key),
            key,
            bytes,
        })
    }

    /// The CMAF files and playlists.
    async fn cmaf(&self, rec: &Recorder, r: &Arc<Recording>) -> Result<Vec<Uploaded>, UploadError> {
        let paths = rec.paths(&r.meta.stream, &r.meta.id);
        // (key, what to send): playlists from memory, media from disk.
        let mut jobs: Vec<(String, Option<Bytes>, Option<std::path::PathBuf>)> = Vec::new();
        if let Some(m) = super::vod::master(r) {
            jobs.push((
                self.key(r, "master.m3u8"),
                Some(Bytes::from(m.render())),
                None,
            ));
        }
        for x in &r.renditions {
            let name = &x.meta.name;
            if let Some(p) = super::vod::media(r, name) {
                let key = self.key(r, &format!("{name}/index.m3u8"));
                jobs.push((key, Some(Bytes::from(p.render())), None));
            }
            for gen in &x.inits {
                let file = super::journal::init_file(*gen);
                jobs.push((
                    self.key(r, &format!("{name}/{file}")),
                    None,
                    Some(paths.init(name, *gen)),
                ));
            }
            for s in &x.segments {
                let file = super::journal::segment_file(s.msn);
                jobs.push((
                    self.key(r, &format!("{name}/{file}")),
                    None,
                    Some(paths.segment(name, s.msn)),
                ));
            }
        }
        let width = self.config.concurrency.max(1);
        futures::stream::iter(jobs)
            .map(|(key, body, path)| async move {
                let body = match (body, path) {
                    (Some(b), _) => b,
                    (None, Some(p)) => rec.disk().read(&p, 0, None).await?,
                    (None, None) => Bytes::new(),
                };
                self.put(key, body).await
            })
            .buffered(width)
            .try_collect()
            .await
    }

    /// The progressive MP4, piece by piece into a multipart upload.
    async fn mp4(&self, rec: &Recorder, r: &Arc<Recording>) -> Result<Uploaded, UploadError> {
        let layout = rec.layout(r).await?;
        let key = self.key(r, "recording.mp4");
        let upload = self
            .store
            .put_multipart(&ObjectPath::from(key.as_str()))
            .await?;
        let mut w = WriteMultipart::new_with_chunk_size(upload, PART);
        for piece in &layout.pieces {
            let slices = match piece.read(rec.disk()).await {
                Ok(s) => s,
                Err(e) => {
                    let _ = w.abort().await;
                    return Err(e.into());
                }
            };
            for b in slices {
                w.put(b);
            }
            w.wait_for_capacity(self.config.concurrency.max(1)).await?;
        }
        w.finish().await?;
        Ok(Uploaded {
            url: self.url(&key),
            key,
            bytes: layout.size,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::record::journal::{Line, RecordingMeta};
    use livecdn_shared::config::RecordingConfig;

    #[tokio::test]
    async fn a_recording_without_media_uploads_nothing_and_waits_for_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let rec = Recorder::open(RecordingConfig {
            dir: dir.path().to_path_buf(),
            ..RecordingConfig::default()
        })
        .await;
        // Nothing listens on port 9: any request would fail and be retried.
        let up = Uploader::new(&UploadConfig {
            endpoint: Some("http://127.0.0.1:9".into()),
            bucket: "b".into(),
            access_key_id: Some("k".into()),
            secret_access_key: Some("s".into()),
            tries: 3,
            ..UploadConfig::default()
        })
        .unwrap();
        let mut r = Recording::new(RecordingMeta {
            stream: "cam".into(),
            id: "x".into(),
            started_ms: 0,
        });
        r.apply(&Line::Error {
            at_ms: 1,
            reason: "disk full".into(),
        });
        let started = std::time::Instant::now();
        assert_eq!(up.deliver(&rec, &Arc::new(r)).await, Ok(Vec::new()));
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "it waited for retries"
        );
        assert_eq!(rec.stats.upload_failures.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn keys_and_urls() {
        let mut config = UploadConfig {
            endpoint: Some("http://127.0.0.1:9000/".into()),
            bucket: "media".into(),
            prefix: "/vod/".into(),
            ..UploadConfig::default()
        };
        let r = Recording::new(RecordingMeta {
            stream: "cam".into(),
            id: "20261206T000000Z".into(),
            started_ms: 0,
        });
        let up = Uploader::new(&config).unwrap();
        let key = up.key(&r, "source/1.m4s");
        assert_eq!(key, "vod/cam/20261206T000000Z/source/1.m4s");
        assert_eq!(up.url(&key), format!("http://127.0.0.1:9000/media/{key}"));
        config.public_url = Some("https://vod.example.com/".into());
        let up = Uploader::new(&config).unwrap();
        assert_eq!(up.url(&key), format!("https://vod.example.com/{key}"));
    }
}
