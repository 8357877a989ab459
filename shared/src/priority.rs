//! HTTP priorities (RFC 9218): the `Priority` header field's urgency and
//! incremental parameters, and the urgency the edge gives each kind of
//! LL-HLS resource.
//!
//! The field is a Structured Field Dictionary (RFC 8941). Only `u` (an
//! integer 0 to 7, lower is more urgent, default 3) and `i` (a boolean,
//! default false) mean anything; other members are ignored, and a member
//! whose value is out of range or of the wrong type keeps its default, as
//! RFC 9218 section 4 asks. Parsing never fails: a field that is not a
//! dictionary at all yields the defaults.

/// Default urgency (RFC 9218 section 4.1).
pub const DEFAULT_URGENCY: u8 = 3;
/// Least urgent value.
pub const LOWEST_URGENCY: u8 = 7;

/// A response's priority.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Priority {
    /// 0 (most urgent) to 7.
    pub urgency: u8,
    /// Whether the response may be interleaved with others of its urgency.
    pub incremental: bool,
}

impl Default for Priority {
    fn default() -> Self {
        Priority {
            urgency: DEFAULT_URGENCY,
            incremental: false,
        }
    }
}

impl Priority {
    /// Parses a `Priority` field value, keeping defaults for what is
    /// absent or malformed.
    pub fn parse(value: &[u8]) -> Priority {
        let mut out = Priority::default();
        let Ok(text) = std::str::from_utf8(value) else {
            return out;
        };
        for member in text.split(',') {
            // Parameters of a member (`;a=b`) do not concern u and i.
            let member = member.split(';').next().unwrap_or("").trim();
            let (key, value) = match member.split_once('=') {
                Some((k, v)) => (k.trim(), Some(v.trim())),
                None => (member, None),
            };
            match key {
                "u" => {
                    if let Some(u) = value.and_then(|v| v.parse::<u8>().ok()) {
                        if u <= LOWEST_URGENCY {
                            out.urgency = u;
                        }
                    }
                }
                "i" => match value {
                    // A bare key is boolean true (RFC 8941 section 3.2).
                    None | Some("?1") => out.incremental = true,
                    Some("?0") => out.incremental = false,
                    Some(_) => {}
                },
                _ => {}
            }
        }
        out
    }

    /// The field value (`u=N`, with `, i` when incremental).
    pub fn to_field(self) -> String {
        if self.incremental {
            format!("u={}, i", self.urgency)
        } else {
            format!("u={}", self.urgency)
        }
    }

    /// The priority of a QUIC stream carrying this response, for a
    /// scheduler that sends higher values first (quinn).
    pub fn send_order(self) -> i32 {
        i32::from(LOWEST_URGENCY) - i32::from(self.urgency)
    }
}

/// What the edge serves, as far as scheduling goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceKind {
    /// A media playlist or multivariant playlist, blocking reloads included.
    Playlist,
    /// An LL-HLS part, an init section or a DASH manifest: what a player
    /// blocks on next.
    Part,
    /// A complete segment: bulk bytes a player fetches ahead.
    Segment,
}

/// The urgency the edge asks for each kind (RFC 8216bis appendix B.1:
/// playlist updates and the part a player waits on go before segment
/// bytes). Playlists are small and latency-bound; segments are incremental
/// so several in flight share what is left.
pub fn for_kind(kind: ResourceKind) -> Priority {
    match kind {
        ResourceKind::Playlist => Priority {
            urgency: 1,
            incremental: false,
        },
        ResourceKind::Part => Priority {
            urgency: 2,
            incremental: false,
        },
        ResourceKind::Segment => Priority {
            urgency: 4,
            incremental: true,
        },
    }
}

/// [`for_kind`] as a `Priority` field value, without allocating.
pub fn field_for_kind(kind: ResourceKind) -> &'static str {
    match kind {
        ResourceKind::Playlist => "u=1",
        ResourceKind::Part => "u=2",
        ResourceKind::Segment => "u=4, i",
    }
}

/// Fuzz body: a `Priority` field from arbitrary bytes. Never a panic, and
/// the result always in range.
pub fn fuzz_priority(data: &[u8]) {
    let p = Priority::parse(data);
    assert!(p.urgency <= LOWEST_URGENCY);
    assert_eq!(Priority::parse(p.to_field().as_bytes()), p);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fuzz_priority_survives_seeds_and_mutations() {
        crate::bytes_reader::fuzz_input::exercise(
            &[b"u=5, i", b"i=?0,u=0;a=b", b"u=7,i=?1,x=\"y\"", b",,=,;="],
            3000,
            fuzz_priority,
        );
    }

    #[test]
    fn urgency_and_incremental_are_read() {
        let p = Priority::parse(b"u=5, i");
        assert_eq!(
            p,
            Priority {
                urgency: 5,
                incremental: true
            }
        );
        assert_eq!(Priority::parse(b"i=?0,u=0").urgency, 0);
        assert!(!Priority::parse(b"i=?0,u=0").incremental);
        assert!(Priority::parse(b"u=1, i=?1").incremental);
    }

    #[test]
    fn out_of_range_or_malformed_members_keep_their_defaults() {
        assert_eq!(Priority::parse(b"u=8"), Priority::default());
        assert_eq!(Priority::parse(b"u=-1, i=5"), Priority::default());
        assert_eq!(Priority::parse(b"u=abc"), Priority::default());
        assert_eq!(Priority::parse(b"\xff\xfe"), Priority::default());
        assert_eq!(Priority::parse(b""), Priority::default());
        // Unknown members and parameters are ignored.
        assert_eq!(Priority::parse(b"x=1, u=2;foo=bar").urgency, 2);
    }

    #[test]
    fn fields_round_trip() {
        for kind in [
            ResourceKind::Playlist,
            ResourceKind::Part,
            ResourceKind::Segment,
        ] {
            let p = for_kind(kind);
            assert_eq!(Priority::parse(p.to_field().as_bytes()), p);
            assert_eq!(Priority::parse(field_for_kind(kind).as_bytes()), p);
        }
    }

    #[test]
    fn playlists_go_before_parts_before_segments() {
        let order = |k| for_kind(k).send_order();
        assert!(order(ResourceKind::Playlist) > order(ResourceKind::Part));
        assert!(order(ResourceKind::Part) > order(ResourceKind::Segment));
        assert!(order(ResourceKind::Part) > Priority::default().send_order());
    }
}
