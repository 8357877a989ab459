//! A bounds-checked AMF0 walker: checks that a command or data message is
//! well formed and shallow before a recursive decoder sees it.
//!
//! Why: AMF0 objects nest, and a recursive decoder given a megabyte of
//! nested objects overflows its stack, which no `catch_unwind` can stop.
//! This walker keeps its own explicit stack with a depth limit, so any input
//! is answered with a count of top-level values or an error.

use thiserror::Error;

/// Deepest nesting accepted (real encoders send 2-3 levels).
pub const MAX_DEPTH: usize = 16;

/// Why an AMF0 payload was rejected.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum Amf0Error {
    /// The payload ended inside a value.
    #[error("truncated AMF0 value")]
    Truncated,
    /// Objects or arrays nested deeper than [`MAX_DEPTH`].
    #[error("AMF0 nesting deeper than {MAX_DEPTH}")]
    TooDeep,
    /// A type marker AMF0 does not define (or AMF3 inside AMF0).
    #[error("unknown AMF0 marker {0:#04x}")]
    UnknownMarker(u8),
}

/// What the walker is inside of.
enum Frame {
    /// Object-like: key/value pairs until the 00 00 09 end marker.
    Object,
    /// Strict array: this many values left.
    Array(u32),
}

struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Amf0Error> {
        let end = self.pos.checked_add(n).ok_or(Amf0Error::Truncated)?;
        let s = self.data.get(self.pos..end).ok_or(Amf0Error::Truncated)?;
        self.pos = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, Amf0Error> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<usize, Amf0Error> {
        let b = self.take(2)?;
        Ok(usize::from(u16::from_be_bytes([b[0], b[1]])))
    }
    fn u32(&mut self) -> Result<u32, Amf0Error> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn done(&self) -> bool {
        self.pos >= self.data.len()
    }
}

/// Walks a sequence of AMF0 values; returns how many there are at the top
/// level.
pub fn count_values(data: &[u8]) -> Result<usize, Amf0Error> {
    let mut c = Cursor { data, pos: 0 };
    let mut stack: Vec<Frame> = Vec::new();
    let mut top = 0usize;
    loop {
        // Decide whether a value comes next, or a container ends.
        match stack.last_mut() {
            None => {
                // An object-end marker at the top level ends the values
                // for a decoder too (rml_amf0 stops there, ignoring the
                // rest): count what it will see.
                if c.done() || c.data.get(c.pos) == Some(&0x09) {
                    return Ok(top);
                }
                top += 1;
            }
            Some(Frame::Array(0)) => {
                stack.pop();
                continue;
            }
            Some(Frame::Array(n)) => *n -= 1,
            Some(Frame::Object) => {
                let key_len = c.u16()?;
                if key_len == 0 && c.data.get(c.pos) == Some(&0x09) {
                    c.pos += 1;
                    stack.pop();
                    continue;
                }
                c.take(key_len)?;
            }
        }
        // One value.
        match c.u8()? {
            0x00 => drop(c.take(8)?),
            0x01 => drop(c.take(1)?),
            0x02 => {
                let n = c.u16()?;
                c.take(n)?;
            }
            0x03 => stack.push(Frame::Object),
            0x05 | 0x06 | 0x0d => {}
            0x07 => drop(c.take(2)?),
            0x08 => {
                c.u32()?; // ECMA array count is advisory; it ends like an object
                stack.push(Frame::Object);
            }
            0x0a => {
                let n = c.u32()?;
                stack.push(Frame::Array(n));
            }
            0x0b => drop(c.take(10)?),
            0x0c | 0x0f => {
                let n = c.u32()? as usize;
                c.take(n)?;
            }
            0x10 => {
                let n = c.u16()?;
                c.take(n)?;
                stack.push(Frame::Object);
            }
            other => return Err(Amf0Error::UnknownMarker(other)),
        }
        if stack.len() > MAX_DEPTH {
            return Err(Amf0Error::TooDeep);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn string(s: &str) -> Vec<u8> {
        let mut v = vec![0x02];
        v.extend_from_slice(&(s.len() as u16).to_be_bytes());
        v.extend_from_slice(s.as_bytes());
        v
    }

    #[test]
    fn counts_a_real_connect_command() {
        let mut m = string("connect");
        m.extend_from_slice(&[0x00, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0]); // 1.0
        m.push(0x03);
        m.extend_from_slice(&[0, 3]);
        m.extend_from_slice(b"app");
        m.extend_from_slice(&string("live"));
        m.extend_from_slice(&[0, 0, 9]);
        assert_eq!(count_values(&m), Ok(3));
        m.extend_from_slice(&[0x0a, 0, 0, 0, 2, 0x05, 0x01, 0x01]); // strict array
        assert_eq!(count_values(&m), Ok(4));
    }

    #[test]
    fn deep_nesting_is_refused_without_recursion() {
        let mut m = string("connect");
        m.extend_from_slice(&[0x00, 0, 0, 0, 0, 0, 0, 0, 0]);
        for _ in 0..250_000 {
            m.extend_from_slice(&[0x03, 0x00, 0x01, b'a']);
        }
        assert_eq!(count_values(&m), Err(Amf0Error::TooDeep));
        let mut arrays = Vec::new();
        for _ in 0..100 {
            arrays.extend_from_slice(&[0x0a, 0, 0, 0, 1]);
        }
        assert_eq!(count_values(&arrays), Err(Amf0Error::TooDeep));
    }

    #[test]
    fn truncation_and_unknown_markers_are_errors() {
        assert_eq!(
            count_values(&[0x02, 0x00, 0x05, b'a']),
            Err(Amf0Error::Truncated)
        );
        assert_eq!(
            count_values(&[0x11, 0x00]),
            Err(Amf0Error::UnknownMarker(0x11))
        );
        assert_eq!(count_values(&[0x03, 0x00]), Err(Amf0Error::Truncated));
        assert_eq!(count_values(&[]), Ok(0));
    }
}
