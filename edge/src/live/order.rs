//! One rendition's pushed chunks back in part order. Each part arrives on
//! its own QUIC stream and is read by its own task, so the first chunk of
//! part N+1 may be handed over before the last of part N. A decoder must
//! get them in order: chunks of a later part wait until the part before
//! has ended (its stream finished or was dropped), then go out. Sans-IO.

use bytes::Bytes;
use std::collections::BTreeMap;

/// A part: (media sequence number, part index).
pub type PartId = (u64, u32);

/// Chunks held for later parts at most; past that the part in progress is
/// given up on (its stream stalled) and the held ones go out.
const MAX_HELD: usize = 512;

#[derive(Debug, Default)]
struct Held {
    chunks: Vec<Bytes>,
    ended: bool,
}

/// Puts a rendition's chunks in part order.
#[derive(Debug, Default)]
pub struct Sequencer {
    /// The part going out now, and whether it has ended.
    current: Option<(PartId, bool)>,
    held: BTreeMap<PartId, Held>,
    held_chunks: usize,
    /// Chunks of parts older than the current one, dropped.
    pub late: u64,
}

impl Sequencer {
    /// A chunk of part `id`: what may go out now, in order.
    pub fn chunk(&mut self, id: PartId, chunk: Bytes) -> Vec<(PartId, Bytes)> {
        match self.current {
            Some((cur, _)) if id < cur => {
                self.late += 1;
                Vec::new()
            }
            Some((cur, _)) if id == cur => vec![(id, chunk)],
            Some((_, false)) => {
                self.held.entry(id).or_default().chunks.push(chunk);
                self.held_chunks += 1;
                if self.held_chunks > MAX_HELD {
                    self.current = self.current.map(|(c, _)| (c, true));
                    return self.release();
                }
                Vec::new()
            }
            None | Some((_, true)) => {
                self.current = Some((id, false));
                vec![(id, chunk)]
            }
        }
    }

    /// Part `id` has ended (its stream finished, or failed): the parts
    /// after it that were held go out.
    pub fn ended(&mut self, id: PartId) -> Vec<(PartId, Bytes)> {
        match self.current {
            Some((cur, _)) if cur == id => {
                self.current = Some((id, true));
                self.release()
            }
            Some((cur, _)) if id > cur => {
                self.held.entry(id).or_default().ended = true;
                Vec::new()
            }
            None => {
                self.current = Some((id, true));
                Vec::new()
            }
            _ => Vec::new(),
        }
    }

    /// Held parts in order, while the part before each has ended.
    fn release(&mut self) -> Vec<(PartId, Bytes)> {
        let mut out = Vec::new();
        while self.current.is_some_and(|(_, ended)| ended) {
            let Some((id, held)) = self.held.pop_first() else {
                break;
            };
            self.held_chunks = self.held_chunks.saturating_sub(held.chunks.len());
            out.extend(held.chunks.into_iter().map(|c| (id, c)));
            self.current = Some((id, held.ended));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(out: Vec<(PartId, Bytes)>) -> Vec<(PartId, u8)> {
        out.into_iter().map(|(id, b)| (id, b[0])).collect()
    }

    fn b(n: u8) -> Bytes {
        Bytes::from(vec![n])
    }

    #[test]
    fn in_order_chunks_go_straight_out() {
        let mut s = Sequencer::default();
        assert_eq!(ids(s.chunk((4, 0), b(1))), [((4, 0), 1)]);
        assert_eq!(ids(s.chunk((4, 0), b(2))), [((4, 0), 2)]);
        assert!(s.ended((4, 0)).is_empty());
        assert_eq!(ids(s.chunk((4, 1), b(3))), [((4, 1), 3)]);
        assert!(s.chunk((5, 0), b(4)).is_empty(), "4.1 has not ended: held");
        assert_eq!(ids(s.ended((4, 1))), [((5, 0), 4)]);
    }

    #[test]
    fn a_later_part_waits_for_the_one_before_to_end() {
        let mut s = Sequencer::default();
        s.chunk((4, 0), b(1));
        // 4.1 starts before 4.0's last chunk came.
        assert!(s.chunk((4, 1), b(10)).is_empty());
        assert!(s.chunk((4, 1), b(11)).is_empty());
        assert!(s.ended((4, 1)).is_empty());
        assert!(s.chunk((4, 2), b(20)).is_empty());
        assert_eq!(ids(s.chunk((4, 0), b(2))), [((4, 0), 2)]);
        // 4.0 ends: 4.1 (ended too) and 4.2 follow, in order.
        assert_eq!(
            ids(s.ended((4, 0))),
            [((4, 1), 10), ((4, 1), 11), ((4, 2), 20)]
        );
        assert_eq!(ids(s.chunk((4, 2), b(21))), [((4, 2), 21)]);
        // Something of 4.0 now is late.
        assert!(s.chunk((4, 0), b(3)).is_empty());
        assert_eq!(s.late, 1);
    }

    #[test]
    fn a_stalled_part_is_given_up_after_enough_held_chunks() {
        let mut s = Sequencer::default();
        s.chunk((1, 0), b(0));
        let mut out = Vec::new();
        for i in 0..=MAX_HELD {
            out.extend(s.chunk((1, 1), b(i as u8)));
        }
        assert_eq!(out.len(), MAX_HELD + 1);
        assert_eq!(ids(s.chunk((1, 1), b(7))), [((1, 1), 7)]);
    }
}
