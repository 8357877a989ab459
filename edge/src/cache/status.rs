//! Outcome labels for metrics, logs and the `X-Cache` header.

/// How a request was answered by the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CacheStatus {
    /// Served from a complete stored object.
    Hit,
    /// This request fetches from upstream (it holds the fill permit).
    Miss,
    /// Served from an object another request is still fetching.
    Coalesced,
    /// Served from an expired immutable copy because upstream failed or was slow.
    Stale,
}

impl CacheStatus {
    /// A fixed label, used verbatim in metrics and span fields.
    pub fn as_str(self) -> &'static str {
        match self {
            CacheStatus::Hit => "hit",
            CacheStatus::Miss => "miss",
            CacheStatus::Coalesced => "coalesced",
            CacheStatus::Stale => "stale",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_distinct() {
        let all = [
            CacheStatus::Hit,
            CacheStatus::Miss,
            CacheStatus::Coalesced,
            CacheStatus::Stale,
        ];
        let labels: std::collections::HashSet<_> = all.iter().map(|s| s.as_str()).collect();
        assert_eq!(labels.len(), all.len());
    }
}
