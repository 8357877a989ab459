//! One stream map entry and the Redis keys, in one place.

/// The hash that names a stream's origin.
pub fn stream_key(stream: &str) -> String {
    format!("livecdn:cluster:stream:{stream}")
}

/// The sorted set of live shields (member: base URL, score: lease expiry
/// in Redis milliseconds).
pub const SHIELDS_KEY: &str = "livecdn:cluster:shields";

/// Where a stream is ingested.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginEntry {
    /// The origin's node name (its advertised HTTP base): unique per origin.
    pub node: String,
    /// Base URL edges pull from, `http://HOST:PORT`.
    pub http: String,
    /// `HOST:PORT` of its push endpoint, when it has one.
    pub push: Option<String>,
    /// Wall-clock milliseconds when the stream's publisher attached there.
    pub since_ms: u64,
    /// 1 for a primary publisher, 0 for one whose key makes it a backup:
    /// the entry goes to the highest rank, then the newest attach, so a
    /// backup on another origin takes over only when the primary's entry
    /// lapses (its origin died), and a primary that returns takes it back.
    pub rank: u8,
}

impl OriginEntry {
    /// The hash fields, as written by the claim script.
    pub fn fields(&self) -> [(&'static str, String); 5] {
        [
            ("node", self.node.clone()),
            ("http", self.http.clone()),
            ("push", self.push.clone().unwrap_or_default()),
            ("since", self.since_ms.to_string()),
            ("rank", self.rank.to_string()),
        ]
    }

    /// Reads an entry back; `None` for a missing or malformed hash (which
    /// counts as no entry: the stream is then on no origin).
    pub fn from_fields<'a>(get: impl Fn(&str) -> Option<&'a str>) -> Option<Self> {
        let node = get("node").filter(|n| !n.is_empty())?;
        let http = get("http").filter(|h| h.starts_with("http://") || h.starts_with("https://"))?;
        Some(Self {
            node: node.to_string(),
            http: http.trim_end_matches('/').to_string(),
            push: get("push").filter(|p| !p.is_empty()).map(str::to_string),
            since_ms: get("since")?.parse().ok()?,
            rank: get("rank").map_or(Some(1), |r| r.parse().ok())?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn fields_round_trip_and_malformed_hashes_are_no_entry() {
        let e = OriginEntry {
            node: "http://10.0.0.1:8080".into(),
            http: "http://10.0.0.1:8080".into(),
            push: Some("10.0.0.1:8090".into()),
            since_ms: 1_765_000_000_123,
            rank: 0,
        };
        let map: HashMap<&str, String> = e.fields().into_iter().collect();
        let back = OriginEntry::from_fields(|k| map.get(k).map(String::as_str));
        assert_eq!(back.as_ref(), Some(&e));

        let no_push: HashMap<&str, &str> = [
            ("node", "a"),
            ("http", "http://a:1/"),
            ("push", ""),
            ("since", "5"),
        ]
        .into();
        let e = OriginEntry::from_fields(|k| no_push.get(k).copied()).map(|e| (e.http, e.push));
        assert_eq!(e, Some(("http://a:1".to_string(), None)));

        for bad in [
            vec![("http", "http://a:1"), ("since", "5")],
            vec![("node", "a"), ("http", "ftp://a"), ("since", "5")],
            vec![("node", "a"), ("http", "http://a:1"), ("since", "soon")],
            vec![],
        ] {
            let m: HashMap<&str, &str> = bad.into_iter().collect();
            assert_eq!(OriginEntry::from_fields(|k| m.get(k).copied()), None);
        }
    }
}
