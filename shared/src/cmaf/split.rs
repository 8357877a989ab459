//! A part's bytes as they arrive, cut into its CMAF chunks (each a `moof`
//! and the `mdat` that ends it). An edge reads a pushed part while the
//! origin still writes it (one chunk per frame, as the packager makes
//! them) and hands each whole chunk on at once: WebRTC viewers at the edge
//! get every frame when the origin has it, not when its part closes.
//!
//! Sans-IO: [`ChunkSplitter::push`] takes whatever bytes the transport
//! gave, [`ChunkSplitter::next_chunk`] returns each completed chunk.
//! Box sizes come from the network: a size that is not a box, or a chunk
//! larger than the limit, is an error and the rest of the part is not cut.

use bytes::{Buf, Bytes, BytesMut};

/// Why the bytes are not a run of chunks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SplitError {
    #[error("box of size {0} (a box is at least its 8-byte header)")]
    BoxSize(u64),
    #[error("chunk larger than {0} bytes")]
    TooLarge(usize),
}

/// Cuts one part's byte stream at the end of each `mdat`.
#[derive(Debug)]
pub struct ChunkSplitter {
    buf: BytesMut,
    /// Bytes of `buf` already known to be whole boxes of the current chunk.
    scanned: usize,
    limit: usize,
    failed: bool,
}

impl ChunkSplitter {
    /// A splitter refusing chunks over `limit` bytes.
    pub fn new(limit: usize) -> Self {
        Self {
            buf: BytesMut::new(),
            scanned: 0,
            limit,
            failed: false,
        }
    }

    /// More bytes of the part.
    pub fn push(&mut self, bytes: &[u8]) {
        if !self.failed {
            self.buf.extend_from_slice(bytes);
        }
    }

    /// The next whole chunk, `Ok(None)` until one is complete. After an
    /// error every call returns it again.
    pub fn next_chunk(&mut self) -> Result<Option<Bytes>, SplitError> {
        if self.failed {
            return Err(SplitError::TooLarge(self.limit));
        }
        loop {
            let Some((size, fourcc)) = box_header(&self.buf[self.scanned..]) else {
                return self.check_limit(self.buf.len()).map(|()| None);
            };
            if size < 8 {
                self.failed = true;
                return Err(SplitError::BoxSize(size));
            }
            let end = u64::try_from(self.scanned)
                .unwrap_or(u64::MAX)
                .saturating_add(size);
            let end = usize::try_from(end).unwrap_or(usize::MAX);
            self.check_limit(end)?;
            if self.buf.len() < end {
                return Ok(None);
            }
            self.scanned = end;
            if &fourcc == b"mdat" {
                self.scanned = 0;
                return Ok(Some(self.buf.split_to(end).freeze()));
            }
        }
    }

    /// Bytes received that no chunk has taken yet (a torn last chunk when
    /// the part has ended).
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    fn check_limit(&mut self, len: usize) -> Result<(), SplitError> {
        if len > self.limit {
            self.failed = true;
            self.buf.clear();
            return Err(SplitError::TooLarge(self.limit));
        }
        Ok(())
    }
}

/// A box's size (the 64-bit one when the 32-bit field is 1) and type, once
/// its header is there. A size of 0 ("to the end of the file") has no end
/// in a stream: reported as 0, an error.
fn box_header(mut b: &[u8]) -> Option<(u64, [u8; 4])> {
    if b.len() < 8 {
        return None;
    }
    let size = b.get_u32();
    let mut fourcc = [0u8; 4];
    b.copy_to_slice(&mut fourcc);
    match size {
        1 if b.len() < 8 => None,
        1 => Some((b.get_u64(), fourcc)),
        n => Some((u64::from(n), fourcc)),
    }
}

/// Fuzz body: arbitrary bytes, fed in uneven pieces, must give chunks that
/// are exactly the bytes fed, in order, or an error; never a panic.
pub fn fuzz_chunk_splitter(data: &[u8]) {
    let mut s = ChunkSplitter::new(1 << 16);
    let mut out = Vec::new();
    for (i, piece) in data.chunks(7 + data.len() % 13).enumerate() {
        s.push(piece);
        while let Ok(Some(c)) = s.next_chunk() {
            out.extend_from_slice(&c);
        }
        if i > 100_000 {
            break;
        }
    }
    assert!(data.starts_with(&out));
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
mod tests {
    use super::*;
    use crate::cmaf::{chunk, scan, Sample};

    fn frame(seq: u32, len: usize) -> Bytes {
        let payload = Bytes::from(vec![seq as u8; len]);
        let s = Sample {
            duration: 3000,
            size: len as u32,
            cts_offset: 0,
            sync: seq == 0,
        };
        Bytes::from(
            chunk(seq, u64::from(seq) * 3000, &[s], &[payload])
                .unwrap()
                .concat(),
        )
    }

    #[test]
    fn a_part_fed_in_any_pieces_gives_each_chunk_once_it_is_whole() {
        let chunks: Vec<Bytes> = (0..5).map(|i| frame(i, 100 + 37 * i as usize)).collect();
        let all: Vec<u8> = chunks.concat();
        for piece in [1, 3, 8, 50, 4096] {
            let mut s = ChunkSplitter::new(1 << 20);
            let mut got = Vec::new();
            for p in all.chunks(piece) {
                s.push(p);
                while let Some(c) = s.next_chunk().unwrap() {
                    got.push(c);
                }
            }
            assert_eq!(got, chunks, "pieces of {piece}");
            assert_eq!(s.pending(), 0);
            assert_eq!(scan(&got[3]).unwrap().samples.len(), 1);
        }
    }

    #[test]
    fn a_chunk_is_not_given_before_its_last_byte() {
        let c = frame(1, 500);
        let mut s = ChunkSplitter::new(1 << 20);
        s.push(&c[..c.len() - 1]);
        assert_eq!(s.next_chunk(), Ok(None));
        assert_eq!(s.pending(), c.len() - 1);
        s.push(&c[c.len() - 1..]);
        assert_eq!(s.next_chunk(), Ok(Some(c)));
    }

    #[test]
    fn bad_sizes_and_oversized_chunks_are_errors() {
        let mut s = ChunkSplitter::new(1 << 20);
        s.push(&[0, 0, 0, 4, b'm', b'o', b'o', b'f']);
        assert_eq!(s.next_chunk(), Err(SplitError::BoxSize(4)));
        let mut s = ChunkSplitter::new(1000);
        s.push(&[0, 0, 0x10, 0, b'm', b'd', b'a', b't']);
        assert_eq!(s.next_chunk(), Err(SplitError::TooLarge(1000)));
        assert_eq!(s.pending(), 0, "nothing more is held");
        s.push(&[0; 64]);
        assert!(s.next_chunk().is_err());
        // 64-bit sizes are read too.
        let mut s = ChunkSplitter::new(1 << 20);
        let mut big = vec![0, 0, 0, 1, b'm', b'd', b'a', b't', 0, 0, 0, 0, 0, 0, 0, 20];
        big.extend_from_slice(&[7, 7, 7, 7]);
        s.push(&big);
        assert_eq!(s.next_chunk().unwrap().unwrap().len(), 20);
    }

    #[test]
    fn fuzz_body_holds_on_seeds_and_mutations() {
        let good: Vec<u8> = (0..3).map(|i| frame(i, 40)).collect::<Vec<_>>().concat();
        fuzz_chunk_splitter(&good);
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0xff;
            fuzz_chunk_splitter(&bad);
        }
        fuzz_chunk_splitter(&[
            0, 0, 0, 1, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        ]);
    }
}
