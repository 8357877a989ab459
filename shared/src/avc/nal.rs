//! Walking AVCC access units: NAL units each preceded by a big-endian length
//! of `nal_length_size` bytes (from the decoder config).

use bytes::Bytes;

use super::AvcError;
use crate::bytes_reader::Reader;

/// NAL unit type of an IDR slice.
const NAL_IDR: u8 = 5;

/// Iterator over the NAL units of one AVCC access unit, yielding zero-copy
/// slices (NAL header byte included). After the first error it yields nothing
/// more, since a bad length leaves the rest unframeable.
#[derive(Debug, Clone)]
pub struct NalUnits {
    reader: Reader,
    length_size: u8,
    failed: bool,
}

/// Iterates the NAL units of `data`. `length_size` must be 1, 2 or 4, else the
/// first item is [`AvcError::InvalidNalLengthSize`]. Zero-length NAL units
/// (padding some encoders emit) are skipped.
pub fn nal_units(data: &Bytes, length_size: u8) -> NalUnits {
    NalUnits {
        reader: Reader::new(data.clone()),
        length_size,
        failed: false,
    }
}

impl NalUnits {
    fn read_one(&mut self) -> Result<Bytes, AvcError> {
        let len = match self.length_size {
            1 => u32::from(self.reader.u8()?),
            2 => u32::from(self.reader.u16()?),
            4 => self.reader.u32()?,
            other => return Err(AvcError::InvalidNalLengthSize(other)),
        };
        Ok(self.reader.take(len as usize)?)
    }
}

impl Iterator for NalUnits {
    type Item = Result<Bytes, AvcError>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.failed && !self.reader.is_empty() {
            match self.read_one() {
                Ok(nal) if nal.is_empty() => continue,
                Ok(nal) => return Some(Ok(nal)),
                Err(e) => {
                    self.failed = true;
                    return Some(Err(e));
                }
            }
        }
        None
    }
}

impl std::iter::FusedIterator for NalUnits {}

/// True when the access unit contains an IDR slice (NAL type 5), i.e. it is a
/// real random access point where a segment may start. Errors if the framing
/// is broken anywhere in the access unit.
pub fn contains_idr(data: &Bytes, length_size: u8) -> Result<bool, AvcError> {
    let mut found = false;
    for nal in nal_units(data, length_size) {
        if nal?.first().is_some_and(|b| b & 0x1f == NAL_IDR) {
            found = true;
        }
    }
    Ok(found)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
mod tests {
    use super::*;
    use crate::bytes_reader::ReadError;

    /// SEI + IDR slice, the shape of x264's first access unit.
    const SEI_IDR: &[u8] = &[
        0, 0, 0, 2, 0x06, 0x05, 0, 0, 0, 0, 0, 0, 0, 3, 0x65, 0x88, 0x84,
    ];

    #[test]
    fn splits_access_unit_zero_copy() {
        let data = Bytes::from_static(SEI_IDR);
        let nals: Vec<Bytes> = nal_units(&data, 4).collect::<Result<_, _>>().unwrap();
        assert_eq!(nals.len(), 2, "zero-length NAL skipped");
        assert_eq!(&nals[0][..], &[0x06, 0x05]);
        assert_eq!(&nals[1][..], &[0x65, 0x88, 0x84]);
        assert_eq!(nals[1].as_ptr(), data[14..].as_ptr());
        assert_eq!(contains_idr(&data, 4), Ok(true));
    }

    #[test]
    fn short_length_prefixes() {
        let one = Bytes::from_static(&[1, 0x41, 2, 0x41, 0x9a]);
        assert_eq!(nal_units(&one, 1).count(), 2);
        assert_eq!(contains_idr(&one, 1), Ok(false));
        let two = Bytes::from_static(&[0, 1, 0x65]);
        assert_eq!(contains_idr(&two, 2), Ok(true));
    }

    #[test]
    fn truncated_nal_is_an_error_and_iteration_stops() {
        let data = Bytes::from_static(&[0, 0, 0, 1, 0x41, 0, 0, 0, 9, 0x65]);
        let mut it = nal_units(&data, 4);
        assert!(it.next().unwrap().is_ok());
        assert_eq!(
            it.next(),
            Some(Err(AvcError::Read(ReadError::Truncated {
                needed: 9,
                available: 1
            })))
        );
        assert_eq!(it.next(), None);
        assert!(contains_idr(&data, 4).is_err());
    }

    #[test]
    fn invalid_length_size_is_reported() {
        let data = Bytes::from_static(&[0, 0, 1, 0x65]);
        assert_eq!(
            contains_idr(&data, 3),
            Err(AvcError::InvalidNalLengthSize(3))
        );
        assert_eq!(nal_units(&Bytes::new(), 3).next(), None);
    }
}
