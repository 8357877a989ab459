//! The one place that knows how an ISO BMFF box is framed.
//!
//! A box starts with its own 32-bit size, and that size is only known once the
//! body has been written. Computing it up front would mean describing every
//! box twice (once to size it, once to write it), and the two descriptions
//! drift apart. Instead [`BoxWriter::write_box`] reserves the size field, runs
//! the body closure, then back-patches the size (the gst-plugins-rs `fmp4mux`
//! pattern). Nested boxes nest closures, so the code reads like the box tree.

use bytes::{BufMut, Bytes, BytesMut};

/// A growable buffer that writes big-endian fields and size-patched boxes.
///
/// Nothing here can fail: the muxer's inputs (codec configuration records
/// from FLV tags, at most 16 MiB, and sample tables of a few hundred entries)
/// keep every box far below the 4 GiB a 32-bit size can describe. The one
/// box that could legitimately grow past it, `mdat`, is not written here but
/// by [`super::fragment`], which switches to a 64-bit `largesize` header.
#[derive(Debug, Default)]
pub struct BoxWriter {
    buf: BytesMut,
}

impl BoxWriter {
    /// An empty writer.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty writer that will not reallocate before `capacity` bytes, so
    /// callers that know their output size pay for a single allocation.
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            buf: BytesMut::with_capacity(capacity),
        }
    }

    /// Bytes written so far; also the offset the next byte will land at,
    /// which callers use to back-patch fields such as `trun.data_offset`.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// True when nothing has been written.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Freezes the written bytes so they can be shared by reference count.
    pub fn finish(self) -> Bytes {
        self.buf.freeze()
    }

    /// Writes `size | fourcc | body`, where `size` covers the whole box and is
    /// filled in after `body` has run.
    pub fn write_box(&mut self, fourcc: &[u8; 4], body: impl FnOnce(&mut Self)) {
        let start = self.buf.len();
        self.buf.put_u32(0); // size, patched below
        self.buf.put_slice(fourcc);
        body(self);
        self.patch_size(start);
    }

    /// Writes a "full box": a box whose body starts with an 8-bit version and
    /// 24-bit flags, which select the layout of the rest of the body.
    pub fn write_full_box(
        &mut self,
        fourcc: &[u8; 4],
        version: u8,
        flags: u32,
        body: impl FnOnce(&mut Self),
    ) {
        self.write_box(fourcc, |w| {
            w.u8(version);
            w.u24(flags);
            body(w);
        });
    }

    /// Overwrites 4 bytes at `offset` (from [`BoxWriter::len`]) with `value`,
    /// for fields that depend on sizes only known later. An offset outside the
    /// written bytes is a caller bug; it is ignored rather than panicking.
    pub fn patch_u32(&mut self, offset: usize, value: u32) {
        if let Some(field) = offset
            .checked_add(4)
            .and_then(|end| self.buf.get_mut(offset..end))
        {
            field.copy_from_slice(&value.to_be_bytes());
        }
    }

    /// Writes one byte.
    pub fn u8(&mut self, value: u8) {
        self.buf.put_u8(value);
    }

    /// Writes a big-endian u16.
    pub fn u16(&mut self, value: u16) {
        self.buf.put_u16(value);
    }

    /// Writes a big-endian i16 (e.g. `pre_defined = -1` in visual entries).
    pub fn i16(&mut self, value: i16) {
        self.buf.put_i16(value);
    }

    /// Writes the low 24 bits of `value`, big-endian (full-box flags,
    /// `bufferSizeDB`); the high byte is dropped by definition of the field.
    pub fn u24(&mut self, value: u32) {
        let [_, a, b, c] = value.to_be_bytes();
        self.buf.put_slice(&[a, b, c]);
    }

    /// Writes a big-endian u32.
    pub fn u32(&mut self, value: u32) {
        self.buf.put_u32(value);
    }

    /// Writes a big-endian i32 (signed composition offsets in `trun` v1).
    pub fn i32(&mut self, value: i32) {
        self.buf.put_i32(value);
    }

    /// Writes a big-endian u64.
    pub fn u64(&mut self, value: u64) {
        self.buf.put_u64(value);
    }

    /// Copies `bytes` verbatim (codec configuration records, brands).
    pub fn bytes(&mut self, bytes: &[u8]) {
        self.buf.put_slice(bytes);
    }

    /// Writes `count` zero bytes (reserved and pre-defined fields).
    pub fn zeros(&mut self, count: usize) {
        self.buf.put_bytes(0, count);
    }

    /// Patches the 32-bit size of the box that starts at `start`.
    fn patch_size(&mut self, start: usize) {
        let size = self.buf.len() - start;
        // See the type docs: inputs bound every box far below 4 GiB. Should
        // that ever break, saturate (a parser will reject the box) instead of
        // panicking in a process that serves other streams.
        debug_assert!(u32::try_from(size).is_ok(), "box larger than 4 GiB");
        self.patch_u32(start, u32::try_from(size).unwrap_or(u32::MAX));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_boxes_get_their_sizes_back_patched() {
        let mut w = BoxWriter::new();
        w.write_box(b"moov", |w| {
            w.write_full_box(b"mvhd", 1, 0x00_0102, |w| w.u16(0xBEEF));
            w.write_box(b"free", |_| {});
        });
        let out = w.finish();
        #[rustfmt::skip]
        let expected: &[u8] = &[
            0, 0, 0, 30, b'm', b'o', b'o', b'v',
            0, 0, 0, 14, b'm', b'v', b'h', b'd', 1, 0, 1, 2, 0xBE, 0xEF,
            0, 0, 0, 8, b'f', b'r', b'e', b'e',
        ];
        assert_eq!(&out[..], expected);
    }

    #[test]
    fn integer_helpers_are_big_endian() {
        let mut w = BoxWriter::with_capacity(32);
        assert!(w.is_empty());
        w.u8(1);
        w.u16(0x0203);
        w.u24(0xFF04_0506);
        w.u32(0x0708_090A);
        w.i32(-2);
        w.i16(-1);
        w.u64(0x0B0C_0D0E_0F10_1112);
        w.zeros(2);
        w.bytes(b"ab");
        #[rustfmt::skip]
        let expected: &[u8] = &[
            1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 0xFF, 0xFF, 0xFF, 0xFE, 0xFF, 0xFF,
            11, 12, 13, 14, 15, 16, 17, 18, 0, 0, b'a', b'b',
        ];
        assert_eq!(w.len(), expected.len());
        assert_eq!(&w.finish()[..], expected);
    }

    #[test]
    fn patch_outside_the_buffer_is_ignored() {
        let mut w = BoxWriter::new();
        w.u32(0);
        w.patch_u32(1, 0xFFFF_FFFF);
        w.patch_u32(usize::MAX - 1, 7);
        assert_eq!(&w.finish()[..], &[0, 0, 0, 0]);
    }
}
