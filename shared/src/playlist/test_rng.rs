//! A tiny deterministic generator for the fuzz-body unit tests: stable CI runs a
//! few thousand mutated inputs without a `rand` dependency, and a failure
//! reproduces exactly because the seed is fixed.

/// xorshift64* (Vigna): fast, fixed-seed, good enough to pick mutations.
pub(crate) struct XorShift(u64);

impl XorShift {
    pub(crate) fn new(seed: u64) -> Self {
        XorShift(seed.max(1))
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A value in `0..n` (`n > 0`).
    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    pub(crate) fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        if items.is_empty() {
            return None;
        }
        items.get(self.below(items.len()))
    }

    /// One to four random edits of `input`: overwrite, insert from `alphabet` or at
    /// random, delete a range, duplicate a range, or truncate.
    pub(crate) fn mutate(&mut self, input: &[u8], alphabet: &[u8]) -> Vec<u8> {
        let mut out = input.to_vec();
        for _ in 0..1 + self.below(4) {
            let len = out.len();
            let at = self.below(len + 1);
            let byte = if self.below(4) == 0 || alphabet.is_empty() {
                self.next_u64() as u8
            } else {
                alphabet[self.below(alphabet.len())]
            };
            match self.below(5) {
                0 if at < len => out[at] = byte,
                1 => out.insert(at, byte),
                2 if at < len => {
                    let end = (at + 1 + self.below(16)).min(len);
                    out.drain(at..end);
                }
                3 if at < len => {
                    let end = (at + 1 + self.below(64)).min(len);
                    let copy = out[at..end].to_vec();
                    let to = self.below(len + 1);
                    out.splice(to..to, copy);
                }
                4 => out.truncate(at),
                _ => out.push(byte),
            }
        }
        out
    }
}
