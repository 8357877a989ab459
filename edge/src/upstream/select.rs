//! Rendezvous (highest-random-weight) hashing: which shield serves a stream.
//!
//! Every edge computes the same order from the same shield list, so all
//! requests for one stream meet at one shield (one origin fetch per object
//! per tier), and when a shield leaves only its streams move.

/// FNV-1a over the upstream and the stream name, then a 64-bit finaliser
/// (splitmix) so that similar inputs give unrelated scores.
fn score(upstream: &str, stream: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in upstream.bytes().chain([0u8]).chain(stream.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// Indices of `upstreams` in preference order for `stream`.
pub fn rendezvous_order<S: AsRef<str>>(stream: &str, upstreams: &[S]) -> Vec<usize> {
    let mut idx: Vec<(u64, usize)> = upstreams
        .iter()
        .enumerate()
        .map(|(i, u)| (score(u.as_ref(), stream), i))
        .collect();
    idx.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    idx.into_iter().map(|(_, i)| i).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_inputs_same_order_everywhere() {
        let shields = ["http://a:1", "http://b:1", "http://c:1"];
        for s in ["cam", "demo", "x"] {
            assert_eq!(rendezvous_order(s, &shields), rendezvous_order(s, &shields));
            assert_eq!(rendezvous_order(s, &shields).len(), 3);
        }
    }

    #[test]
    fn streams_spread_and_removal_moves_only_that_shields_streams() {
        let three = ["http://a:1", "http://b:1", "http://c:1"];
        let two = ["http://a:1", "http://c:1"];
        let mut counts = [0usize; 3];
        for i in 0..3000 {
            let s = format!("stream{i}");
            let first = rendezvous_order(&s, &three)[0];
            counts[first] += 1;
            if first != 1 {
                // Not on the removed shield: it stays where it was.
                let kept = two[rendezvous_order(&s, &two)[0]];
                assert_eq!(kept, three[first], "{s} moved");
            }
        }
        for c in counts {
            assert!((800..1200).contains(&c), "uneven spread {counts:?}");
        }
    }
}
