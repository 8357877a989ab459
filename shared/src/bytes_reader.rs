//! The one bounds-checked cursor through which all network bytes are read
//! (STYLE.md rule 3).
//!
//! Why a cursor instead of slice indexing: every length field in FLV, AVC and
//! AAC is attacker-controlled, and one `buf[i]` on a short buffer is a panic
//! that takes an ingest session (or the whole process) down. Every read here
//! returns a [`ReadError`] instead, so a parser built on [`Reader`] cannot
//! panic on input.
//!
//! Why over [`Bytes`]: [`Reader::take`] hands out sub-slices that share the
//! original allocation, so a video payload travels from the RTMP chunk buffer
//! into a [`crate::media::Frame`] without a copy (the xiu `BytesReader` idea,
//! with rustls' error-returning API).
//!
//! [`BitReader`] is the same idea for the bit-packed headers (AAC
//! AudioSpecificConfig).
//!
//! ```
//! use bytes::Bytes;
//! use livecdn_shared::bytes_reader::Reader;
//!
//! let mut r = Reader::new(Bytes::from_static(&[0x01, 0x00, 0x02, 0xaa, 0xbb]));
//! assert_eq!(r.u8().ok(), Some(1));
//! let len = r.u16().unwrap_or(0) as usize;
//! let payload = r.take(len).unwrap_or_default(); // zero-copy slice
//! assert_eq!(&payload[..], &[0xaa, 0xbb]);
//! assert!(r.expect_end().is_ok());
//! ```

use bytes::{Buf, Bytes};

/// Why a read from network bytes failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    /// The input ended before a field: `needed` bytes were asked for but only
    /// `available` were left.
    #[error("truncated input: needed {needed} bytes, {available} available")]
    Truncated { needed: usize, available: usize },
    /// A bit-level read ran past the end: counts are in bits.
    #[error("truncated bit field: needed {needed_bits} bits, {available_bits} available")]
    BitsTruncated {
        needed_bits: usize,
        available_bits: usize,
    },
    /// A structure that must be consumed exactly had bytes left over.
    #[error("{remaining} unexpected trailing bytes")]
    TrailingData { remaining: usize },
}

/// Zero-copy, bounds-checked big-endian cursor over [`Bytes`].
#[derive(Debug, Clone, Default)]
pub struct Reader {
    buf: Bytes,
}

impl Reader {
    /// Starts reading at the beginning of `buf`.
    pub fn new(buf: Bytes) -> Self {
        Reader { buf }
    }

    /// Bytes not yet consumed.
    pub fn remaining(&self) -> usize {
        self.buf.len()
    }

    /// True when every byte has been consumed.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    fn check(&self, needed: usize) -> Result<(), ReadError> {
        if needed > self.buf.len() {
            Err(ReadError::Truncated {
                needed,
                available: self.buf.len(),
            })
        } else {
            Ok(())
        }
    }

    /// Reads exactly `N` bytes into an array (copied: they are header fields).
    pub fn take_array<const N: usize>(&mut self) -> Result<[u8; N], ReadError> {
        let truncated = ReadError::Truncated {
            needed: N,
            available: self.buf.len(),
        };
        let head = self.buf.get(..N).ok_or(truncated)?;
        let array = <[u8; N]>::try_from(head).map_err(|_| truncated)?;
        self.buf.advance(N);
        Ok(array)
    }

    /// Looks at the next byte without consuming it.
    pub fn peek_u8(&self) -> Result<u8, ReadError> {
        self.buf.first().copied().ok_or(ReadError::Truncated {
            needed: 1,
            available: 0,
        })
    }

    /// Reads one byte.
    pub fn u8(&mut self) -> Result<u8, ReadError> {
        let [b] = self.take_array::<1>()?;
        Ok(b)
    }

    /// Reads a big-endian 16-bit unsigned integer.
    pub fn u16(&mut self) -> Result<u16, ReadError> {
        Ok(u16::from_be_bytes(self.take_array()?))
    }

    /// Reads a big-endian 24-bit unsigned integer (FLV sizes and timestamps).
    pub fn u24(&mut self) -> Result<u32, ReadError> {
        let [a, b, c] = self.take_array()?;
        Ok(u32::from_be_bytes([0, a, b, c]))
    }

    /// Reads a big-endian 24-bit two's-complement integer (FLV composition
    /// time), sign-extended to 32 bits.
    pub fn i24(&mut self) -> Result<i32, ReadError> {
        let [a, b, c] = self.take_array()?;
        // Put the 24 bits at the top, then arithmetic-shift to sign-extend.
        Ok(i32::from_be_bytes([a, b, c, 0]) >> 8)
    }

    /// Reads a big-endian 32-bit unsigned integer.
    pub fn u32(&mut self) -> Result<u32, ReadError> {
        Ok(u32::from_be_bytes(self.take_array()?))
    }

    /// Takes the next `n` bytes as a zero-copy slice of the input.
    pub fn take(&mut self, n: usize) -> Result<Bytes, ReadError> {
        self.check(n)?;
        Ok(self.buf.split_to(n))
    }

    /// Skips `n` bytes.
    pub fn skip(&mut self, n: usize) -> Result<(), ReadError> {
        self.check(n)?;
        self.buf.advance(n);
        Ok(())
    }

    /// Splits off the next `n` bytes as their own reader, so a length-prefixed
    /// structure cannot read past its declared length.
    pub fn sub(&mut self, n: usize) -> Result<Reader, ReadError> {
        self.take(n).map(Reader::new)
    }

    /// Takes everything that is left (zero-copy); the reader is then empty.
    pub fn rest(&mut self) -> Bytes {
        std::mem::take(&mut self.buf)
    }

    /// Fails if any bytes are left: the "no trailing data" check.
    pub fn expect_end(&self) -> Result<(), ReadError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(ReadError::TrailingData {
                remaining: self.buf.len(),
            })
        }
    }
}

/// Bounds-checked MSB-first bit cursor for bit-packed headers.
#[derive(Debug, Clone)]
pub struct BitReader<'a> {
    data: &'a [u8],
    /// Position in bits from the start of `data`.
    pos: usize,
}

impl<'a> BitReader<'a> {
    /// Starts at the first (most significant) bit of `data`.
    pub fn new(data: &'a [u8]) -> Self {
        BitReader { data, pos: 0 }
    }

    /// Bits not yet consumed.
    pub fn remaining_bits(&self) -> usize {
        (self.data.len() * 8).saturating_sub(self.pos)
    }

    /// Reads `n` bits (0..=32) as an unsigned integer, most significant first.
    pub fn bits(&mut self, n: u32) -> Result<u32, ReadError> {
        let needed_bits = n as usize;
        let available_bits = self.remaining_bits();
        if n > 32 || needed_bits > available_bits {
            return Err(ReadError::BitsTruncated {
                needed_bits,
                available_bits,
            });
        }
        let mut value: u32 = 0;
        for _ in 0..n {
            let byte = self
                .data
                .get(self.pos / 8)
                .copied()
                .ok_or(ReadError::BitsTruncated {
                    needed_bits,
                    available_bits,
                })?;
            let bit = (byte >> (7 - (self.pos % 8))) & 1;
            value = (value << 1) | u32::from(bit);
            self.pos += 1;
        }
        Ok(value)
    }
}

/// Pseudo-random inputs for the fuzz-body unit tests (no `rand` dependency,
/// deterministic so a failure reproduces).
#[cfg(test)]
pub(crate) mod fuzz_input {
    /// xorshift64* generator.
    pub struct XorShift(u64);

    impl XorShift {
        pub fn new(seed: u64) -> Self {
            XorShift(seed | 1)
        }

        pub fn next_u64(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            self.0 = x;
            x.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        pub fn below(&mut self, n: usize) -> usize {
            (self.next_u64() % (n.max(1) as u64)) as usize
        }

        pub fn bytes(&mut self, len: usize) -> Vec<u8> {
            (0..len).map(|_| self.next_u64() as u8).collect()
        }
    }

    /// One mutation of `seed`: flip, overwrite with an edge value, truncate,
    /// insert or drop bytes.
    pub fn mutate(rng: &mut XorShift, seed: &[u8]) -> Vec<u8> {
        let mut v = seed.to_vec();
        for _ in 0..=rng.below(4) {
            let len = v.len();
            match rng.below(6) {
                0 if len > 0 => {
                    let i = rng.below(len);
                    v[i] ^= 1 << rng.below(8);
                }
                1 if len > 0 => {
                    let i = rng.below(len);
                    v[i] = [0x00, 0xff, 0x7f, 0x80, 0x01][rng.below(5)];
                }
                2 => v.truncate(rng.below(len + 1)),
                3 => {
                    let i = rng.below(len + 1);
                    let n = rng.below(8);
                    let extra = rng.bytes(n);
                    v.splice(i..i, extra);
                }
                4 if len > 0 => {
                    let i = rng.below(len);
                    let end = (i + rng.below(8)).min(len);
                    v.drain(i..end);
                }
                _ => {
                    let n = rng.below(16);
                    v.extend(rng.bytes(n));
                }
            }
        }
        v
    }

    /// Runs `body` on the seeds, `rounds` mutations of them and `rounds`
    /// random inputs; a panic fails the calling test.
    pub fn exercise(seeds: &[&[u8]], rounds: usize, body: impl Fn(&[u8])) {
        let mut rng = XorShift::new(0x5eed_1234_abcd_ef01);
        for seed in seeds {
            body(seed);
            for cut in 0..seed.len() {
                body(seed.get(..cut).unwrap_or_default());
            }
        }
        for _ in 0..rounds {
            let seed = seeds.get(rng.below(seeds.len())).copied().unwrap_or(&[]);
            body(&mutate(&mut rng, seed));
            let len = rng.below(64);
            body(&rng.bytes(len));
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
mod tests {
    use super::*;

    #[test]
    fn reads_big_endian_integers() {
        let mut r = Reader::new(Bytes::from_static(&[
            1, 0x01, 0x02, 0x01, 0x02, 0x03, 0x01, 0x02, 0x03, 0x04,
        ]));
        assert_eq!(r.u8(), Ok(1));
        assert_eq!(r.u16(), Ok(0x0102));
        assert_eq!(r.u24(), Ok(0x010203));
        assert_eq!(r.u32(), Ok(0x01020304));
        assert!(r.expect_end().is_ok());
    }

    #[test]
    fn i24_sign_extends() {
        let mut r = Reader::new(Bytes::from_static(&[
            0xff, 0xff, 0xff, 0x80, 0x00, 0x00, 0x7f, 0xff, 0xff, 0x00, 0x00, 0x43,
        ]));
        assert_eq!(r.i24(), Ok(-1));
        assert_eq!(r.i24(), Ok(-8_388_608));
        assert_eq!(r.i24(), Ok(8_388_607));
        assert_eq!(r.i24(), Ok(67));
    }

    #[test]
    fn truncation_reports_needed_and_available() {
        let mut r = Reader::new(Bytes::from_static(&[1, 2]));
        assert_eq!(
            r.u24(),
            Err(ReadError::Truncated {
                needed: 3,
                available: 2
            })
        );
        // A failed read consumes nothing.
        assert_eq!(r.remaining(), 2);
        assert_eq!(
            r.take(5),
            Err(ReadError::Truncated {
                needed: 5,
                available: 2
            })
        );
        assert_eq!(
            Reader::default().peek_u8(),
            Err(ReadError::Truncated {
                needed: 1,
                available: 0
            })
        );
    }

    #[test]
    fn take_and_sub_are_zero_copy_slices() {
        let input = Bytes::from(vec![9u8, 1, 2, 3, 4, 5]);
        let mut r = Reader::new(input.clone());
        r.skip(1).unwrap();
        let taken = r.take(2).unwrap();
        assert_eq!(&taken[..], &[1, 2]);
        assert_eq!(taken.as_ptr(), input[1..].as_ptr());
        let mut sub = r.sub(2).unwrap();
        assert_eq!(sub.u16(), Ok(0x0304));
        assert!(sub.u8().is_err());
        assert_eq!(
            r.expect_end(),
            Err(ReadError::TrailingData { remaining: 1 })
        );
        let rest = r.rest();
        assert_eq!(rest.as_ptr(), input[5..].as_ptr());
        assert!(r.is_empty());
    }

    #[test]
    fn bit_reader_reads_msb_first_and_checks_bounds() {
        let data = [0b1010_0000, 0xff];
        let mut b = BitReader::new(&data);
        assert_eq!(b.bits(1), Ok(1));
        assert_eq!(b.bits(3), Ok(0b010));
        assert_eq!(b.bits(12), Ok(0x0ff));
        assert_eq!(b.bits(0), Ok(0));
        assert_eq!(
            b.bits(1),
            Err(ReadError::BitsTruncated {
                needed_bits: 1,
                available_bits: 0
            })
        );
        assert!(BitReader::new(&[0; 8]).bits(33).is_err());
        assert_eq!(BitReader::new(&[0xff; 4]).bits(32), Ok(u32::MAX));
    }
}
