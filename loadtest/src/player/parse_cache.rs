//! Playlists shared between viewers that were sent the same bytes.
//!
//! Every viewer of a rendition is sent byte-identical playlists: a server
//! answers all blocking reloads for one `_HLS_msn`/`_HLS_part` (and
//! `_HLS_skip`) with one response. Turning those bytes into a
//! [`MediaPlaylist`], and merging a delta update onto the same previous
//! playlist, is a pure function, so viewers that share a [`ParseCache`] share
//! its result instead of each parsing about sixty lines per reload (a fifth
//! of the harness's CPU at 10,000 viewers, `bench/README.md`). Each viewer
//! still receives, times and counts its own bytes and makes its own
//! decisions; only the text-to-playlist step is shared, and its result is the
//! same as parsing alone (`tests` below).
//!
//! Bounded: a fixed table of slots, each holding the last body that hashed to
//! it (a collision replaces the entry). A slot's lock is held for the lookup
//! or the store, never while parsing.

use std::hash::Hasher;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use livecdn_shared::playlist::{MediaPlaylist, Segment};
use rustc_hash::FxHasher;

use super::window::merge_delta;

/// Slots in a [`ParseCache`]: a run has a few playlists live at once per
/// rendition and track (held reloads for the next part or two, with and
/// without delta skip), so this leaves room for many streams.
const SLOTS: usize = 1024;

/// What a playlist body means to a player.
#[derive(Debug)]
pub(crate) enum Resolved {
    /// A whole playlist (a delta update already merged onto the previous).
    Playlist(Arc<MediaPlaylist>),
    /// Not UTF-8 or not a media playlist.
    Unparsable,
    /// A delta update with no previous playlist to merge onto, or one that
    /// lacks the skipped segments.
    DeltaFailed,
}

/// Parse (and merge) results shared between players; see the module docs.
pub struct ParseCache {
    slots: Box<[Mutex<Option<Entry>>]>,
}

#[derive(Debug)]
struct Entry {
    body: Bytes,
    /// For a merged delta update: the playlist it was merged onto.
    previous: Option<Arc<MediaPlaylist>>,
    playlist: Arc<MediaPlaylist>,
}

impl std::fmt::Debug for ParseCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParseCache")
            .field("slots", &self.slots.len())
            .finish_non_exhaustive()
    }
}

impl Default for ParseCache {
    fn default() -> ParseCache {
        ParseCache {
            slots: (0..SLOTS).map(|_| Mutex::new(None)).collect(),
        }
    }
}

impl ParseCache {
    /// An empty cache.
    pub fn new() -> ParseCache {
        ParseCache::default()
    }

    fn slot(&self, hash: u64) -> Option<&Mutex<Option<Entry>>> {
        self.slots.get((hash % self.slots.len() as u64) as usize)
    }

    /// The entry for `body` (merged onto `previous`, for a delta update
    /// `delta`), if the slot holds it.
    fn get(
        &self,
        hash: u64,
        body: &Bytes,
        merge: Option<(&MediaPlaylist, &MediaPlaylist)>,
    ) -> Option<Arc<MediaPlaylist>> {
        // A poisoned slot only means a panic elsewhere mid-store; treat it
        // as empty.
        let slot = self.slot(hash)?.lock().ok()?;
        let entry = slot.as_ref()?;
        let same_previous = match (entry.previous.as_deref(), merge) {
            (None, None) => true,
            (Some(a), Some((b, delta))) => std::ptr::eq(a, b) || same_skipped(a, b, delta),
            _ => false,
        };
        (same_previous && entry.body == *body).then(|| entry.playlist.clone())
    }

    fn put(&self, hash: u64, entry: Entry) {
        if let Some(Ok(mut slot)) = self.slot(hash).map(Mutex::lock) {
            *slot = Some(entry);
        }
    }
}

/// Whether merging `delta` onto `a` and onto `b` gives the same playlist to a
/// player: the segments it skips, and the init section in force at each of
/// them, are equal in both. Viewers that joined at different times hold equal but
/// separate previous playlists; this lets them share merges too.
fn same_skipped(a: &MediaPlaylist, b: &MediaPlaylist, delta: &MediaPlaylist) -> bool {
    let (Some((a, a_map)), Some((b, b_map))) = (skipped(a, delta), skipped(b, delta)) else {
        return false;
    };
    // Init sections are compared as in force at each segment, not as
    // declared: a merged playlist carries one onto its first segment and
    // keeps the declarations delta updates repeat, a full one declares it
    // once further up. Players only read the one in force.
    let same = |x: &Segment, y: &Segment| {
        x.duration == y.duration
            && x.uri == y.uri
            && x.discontinuity == y.discontinuity
            && x.program_date_time == y.program_date_time
            && x.parts == y.parts
            && x.gap == y.gap
    };
    let (mut a_map, mut b_map) = (a_map, b_map);
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| {
            a_map = x.map_uri.as_deref().or(a_map);
            b_map = y.map_uri.as_deref().or(b_map);
            a_map == b_map && same(x, y)
        })
}

/// The segments of `previous` that `delta` skips, with the init section in
/// force at the first of them: all a merge takes from `previous`.
fn skipped<'a>(
    previous: &'a MediaPlaylist,
    delta: &MediaPlaylist,
) -> Option<(&'a [Segment], Option<&'a str>)> {
    let first = delta.media_sequence;
    let last = first
        .checked_add(delta.skip.as_ref()?.skipped_segments)?
        .checked_sub(1)?;
    let start = previous.index_of_msn(first)?;
    let end = previous.index_of_msn(last)?;
    Some((
        previous.segments.get(start..=end)?,
        previous.map_uri_for(start),
    ))
}

/// A cheap fingerprint of what a merge takes from `previous`, so players
/// whose previous playlists differ there use different slots rather than
/// evicting each other's merges.
fn skipped_fingerprint(previous: &MediaPlaylist, delta: &MediaPlaylist) -> u64 {
    let mut h = FxHasher::default();
    if let Some((segments, map)) = skipped(previous, delta) {
        for segment in segments {
            h.write(segment.uri.as_deref().unwrap_or("").as_bytes());
            h.write_usize(segment.parts.len());
        }
        h.write(map.unwrap_or("").as_bytes());
    }
    h.finish()
}

/// The playlist `body` describes for a player whose current playlist is
/// `previous`, through `cache` when there is one.
pub(crate) fn resolve(
    cache: Option<&ParseCache>,
    body: &Bytes,
    previous: Option<&Arc<MediaPlaylist>>,
) -> Resolved {
    let hash = cache.map_or(0, |_| {
        let mut h = FxHasher::default();
        h.write(body);
        h.finish()
    });
    let parsed = match cache.and_then(|c| c.get(hash, body, None)) {
        Some(parsed) => parsed,
        None => {
            let Some(parsed) = std::str::from_utf8(body)
                .ok()
                .and_then(|text| MediaPlaylist::parse(text).ok())
            else {
                return Resolved::Unparsable;
            };
            let parsed = Arc::new(parsed);
            if let Some(cache) = cache {
                let entry = Entry {
                    body: body.clone(),
                    previous: None,
                    playlist: parsed.clone(),
                };
                cache.put(hash, entry);
            }
            parsed
        }
    };
    if !parsed.is_delta() {
        return Resolved::Playlist(parsed);
    }
    let Some(previous) = previous else {
        return Resolved::DeltaFailed;
    };
    // A merge has its own slot, and is shared with players whose previous
    // playlist has the same skipped segments.
    let hash = cache.map_or(0, |_| {
        hash.rotate_left(29) ^ skipped_fingerprint(previous, &parsed)
    });
    if let Some(merged) = cache.and_then(|c| c.get(hash, body, Some((previous, &parsed)))) {
        return Resolved::Playlist(merged);
    }
    match merge_delta(previous, (*parsed).clone()) {
        Ok(merged) => {
            let merged = Arc::new(merged);
            if let Some(cache) = cache {
                let entry = Entry {
                    body: body.clone(),
                    previous: Some(previous.clone()),
                    playlist: merged.clone(),
                };
                cache.put(hash, entry);
            }
            Resolved::Playlist(merged)
        }
        Err(_) => Resolved::DeltaFailed,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
mod tests {
    use super::*;

    fn playlist(first: u64, segments: u64, skip: u64) -> Bytes {
        let mut text = String::from(
            "#EXTM3U\n#EXT-X-VERSION:9\n#EXT-X-TARGETDURATION:2\n\
             #EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=12.0,PART-HOLD-BACK=1.0\n\
             #EXT-X-PART-INF:PART-TARGET=0.33\n",
        );
        text.push_str(&format!("#EXT-X-MEDIA-SEQUENCE:{first}\n"));
        if skip > 0 {
            text.push_str(&format!("#EXT-X-SKIP:SKIPPED-SEGMENTS={skip}\n"));
        } else {
            text.push_str("#EXT-X-MAP:URI=\"init.mp4\"\n");
        }
        for msn in first + skip..first + segments {
            for p in 0..6 {
                text.push_str(&format!(
                    "#EXT-X-PART:DURATION=0.33,URI=\"{msn}.{p}.m4s\",INDEPENDENT=YES\n"
                ));
            }
            text.push_str(&format!("#EXTINF:1.98,\n{msn}.m4s\n"));
        }
        Bytes::from(text)
    }

    fn unwrap(resolved: Resolved) -> Arc<MediaPlaylist> {
        match resolved {
            Resolved::Playlist(p) => p,
            other => panic!("expected a playlist, got {other:?}"),
        }
    }

    #[test]
    fn identical_bodies_share_one_parse_equal_to_parsing_alone() {
        let cache = ParseCache::new();
        let body = playlist(10, 6, 0);
        let a = unwrap(resolve(Some(&cache), &body, None));
        // Another viewer's copy of the same bytes (not the same buffer).
        let copy = Bytes::copy_from_slice(&body);
        let b = unwrap(resolve(Some(&cache), &copy, None));
        assert!(Arc::ptr_eq(&a, &b));
        let alone = unwrap(resolve(None, &body, None));
        assert!(!Arc::ptr_eq(&a, &alone));
        assert_eq!(*a, *alone);
        let other = unwrap(resolve(Some(&cache), &playlist(11, 6, 0), None));
        assert_ne!(*other, *a);
    }

    #[test]
    fn delta_updates_merge_once_per_previous_playlist() {
        let cache = ParseCache::new();
        let previous = unwrap(resolve(Some(&cache), &playlist(10, 6, 0), None));
        let delta = playlist(11, 6, 3);
        let full = unwrap(resolve(None, &playlist(11, 6, 0), None));
        let a = unwrap(resolve(Some(&cache), &delta, Some(&previous)));
        let b = unwrap(resolve(Some(&cache), &delta, Some(&previous)));
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(a.segments, full.segments);
        // Onto an equal but separately parsed previous playlist: shared.
        let own_previous = unwrap(resolve(None, &playlist(10, 6, 0), None));
        let c = unwrap(resolve(Some(&cache), &delta, Some(&own_previous)));
        assert!(Arc::ptr_eq(&a, &c));
        // Onto a merged previous playlist (init section carried onto its
        // first segment) holding the same segments: shared too.
        let mut merged = (*own_previous).clone();
        merged.segments[1].map_uri = Some("init.mp4".into());
        merged.segments[3].map_uri = Some("init.mp4".into());
        let e = unwrap(resolve(Some(&cache), &delta, Some(&Arc::new(merged))));
        assert!(Arc::ptr_eq(&a, &e));
        // A different init section in force is a different merge.
        let mut reinit = (*own_previous).clone();
        reinit.segments[2].map_uri = Some("init2.mp4".into());
        let f = unwrap(resolve(Some(&cache), &delta, Some(&Arc::new(reinit))));
        assert!(!Arc::ptr_eq(&a, &f));
        assert_eq!(f.map_uri_for(1), Some("init2.mp4"));
        // Onto one whose skipped segments differ: merged on its own, and
        // the result lists its segments.
        let mut changed = (*own_previous).clone();
        changed.segments[1].uri = Some("other.m4s".into());
        let changed = Arc::new(changed);
        let d = unwrap(resolve(Some(&cache), &delta, Some(&changed)));
        assert!(!Arc::ptr_eq(&a, &d));
        assert_eq!(d.segments[0].uri.as_deref(), Some("other.m4s"));
        assert_eq!(d.segments[1..], a.segments[1..]);
        // Without a previous playlist, or one lacking the skipped segments.
        assert!(matches!(
            resolve(Some(&cache), &delta, None),
            Resolved::DeltaFailed
        ));
        let old = unwrap(resolve(Some(&cache), &playlist(1, 6, 0), None));
        assert!(matches!(
            resolve(Some(&cache), &delta, Some(&old)),
            Resolved::DeltaFailed
        ));
    }

    #[test]
    fn garbage_is_unparsable_and_not_kept() {
        let cache = ParseCache::new();
        let body = Bytes::from_static(b"<html>not a playlist</html>");
        assert!(matches!(
            resolve(Some(&cache), &body, None),
            Resolved::Unparsable
        ));
        assert!(cache
            .slots
            .iter()
            .all(|slot| slot.lock().unwrap().is_none()));
    }
}
