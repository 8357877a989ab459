//! The server under test as a client sees it: one base URL (the origin's or
//! the edge's), the stream's renditions, and the requests every rule makes.

use crate::m3u8::Media;
use crate::support::http::get;
use std::future::Future;
use std::time::{Duration, Instant};

/// What a rule returns: `Err` carries the message naming the rule and what
/// was seen.
pub type Check = Result<(), String>;

/// Returns `Err(format!(..))` from the enclosing rule unless `cond` holds.
macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        let holds: bool = $cond;
        if !holds {
            return Err(format!($($fmt)+));
        }
    };
}
pub(crate) use ensure;

/// One server under test.
pub struct Server {
    /// `origin` or `edge`.
    pub side: &'static str,
    /// `http://HOST:PORT`.
    pub base: String,
    pub stream: String,
    /// Every video variant of the multivariant playlist, then the audio.
    pub renditions: Vec<String>,
    /// Which of them are `EXT-X-MEDIA:TYPE=AUDIO` renditions.
    pub audio: Vec<String>,
}

/// One playlist response.
pub struct Answer {
    pub status: u16,
    pub elapsed: Duration,
    pub content_type: Option<String>,
    pub text: String,
}

impl Server {
    pub fn is_audio(&self, rendition: &str) -> bool {
        self.audio.iter().any(|a| a == rendition)
    }

    /// The path of a rendition's media playlist.
    pub fn playlist_path(&self, rendition: &str) -> String {
        format!("/live/{}/{rendition}/index.m3u8", self.stream)
    }

    /// `GET index.m3u8?query`, timed, whatever the status.
    pub async fn request(&self, rendition: &str, query: &str) -> Answer {
        let mut url = format!("{}{}", self.base, self.playlist_path(rendition));
        if !query.is_empty() {
            url = format!("{url}?{query}");
        }
        let started = Instant::now();
        let f = get(&url).await;
        Answer {
            status: f.status,
            elapsed: started.elapsed(),
            content_type: f.header("content-type"),
            text: f.text(),
        }
    }

    /// A playlist that must come back 200 and parse; also how long it took.
    pub async fn timed(&self, rendition: &str, query: &str) -> Result<(Media, Duration), String> {
        let a = self.request(rendition, query).await;
        let q = show(query);
        ensure!(
            a.status == 200,
            "{rendition} {q}: status {} after {:?}: {}",
            a.status,
            a.elapsed,
            a.text
        );
        let pl = Media::parse(&a.text).map_err(|e| format!("{rendition} {q}: {e}:\n{}", a.text))?;
        Ok((pl, a.elapsed))
    }

    pub async fn playlist(&self, rendition: &str, query: &str) -> Result<Media, String> {
        Ok(self.timed(rendition, query).await?.0)
    }

    /// A playlist answered right after a new version was published: the
    /// plain playlist, then a blocking reload for the part after its last.
    /// Rules that race the live edge start from here, with most of a part
    /// duration before the next change.
    pub async fn fresh(&self, rendition: &str) -> Result<Media, String> {
        let pl = self.playlist(rendition, "").await?;
        let (m, p) = pl.next_part();
        self.playlist(rendition, &format!("_HLS_msn={m}&_HLS_part={p}"))
            .await
    }

    /// An absolute URL for `uri` as written in `rendition`'s playlist.
    pub fn resolve(&self, rendition: &str, uri: &str) -> String {
        let dir = format!("/live/{}/{rendition}/", self.stream);
        format!("{}{}", self.base, resolve_path(&dir, uri))
    }

    /// The body of `url`, which must answer 200.
    pub async fn bytes(&self, url: &str) -> Result<bytes::Bytes, String> {
        let f = get(url).await;
        ensure!(f.status == 200, "GET {url}: status {}", f.status);
        Ok(f.body)
    }

    /// Runs `check` for every rendition at once; all the failures, one a
    /// line, or `Ok`.
    pub async fn each<'a, F, Fut>(&'a self, check: F) -> Check
    where
        F: Fn(&'a str) -> Fut,
        Fut: Future<Output = Check>,
    {
        let runs = self.renditions.iter().map(|r| check(r.as_str()));
        let failures: Vec<String> = futures::future::join_all(runs)
            .await
            .into_iter()
            .filter_map(Result::err)
            .collect();
        if failures.is_empty() {
            Ok(())
        } else {
            Err(failures.join("\n"))
        }
    }
}

/// The query as shown in messages.
pub fn show(query: &str) -> String {
    if query.is_empty() {
        "index.m3u8".into()
    } else {
        format!("index.m3u8?{query}")
    }
}

/// Resolves a relative reference against a directory path (`/a/b/`),
/// folding `.` and `..` (RFC 3986 5.2, paths only).
pub fn resolve_path(dir: &str, uri: &str) -> String {
    if uri.starts_with('/') {
        return uri.to_string();
    }
    let mut parts: Vec<&str> = dir.split('/').filter(|s| !s.is_empty()).collect();
    for seg in uri.split('/') {
        match seg {
            "." | "" => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    format!("/{}", parts.join("/"))
}
