//! Bit rates as operators write them: `"3000k"`, `"3M"`, `"2.5M"` or a plain
//! integer of bits per second.
//!
//! Kept as an integer of bits per second so that rates compare and sum
//! exactly (BANDWIDTH in the multivariant playlist, ffmpeg's `-b:v`), and
//! printed back in `k` so a serialised config reads like the hand-written one.

use serde::{de, Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// A bit rate in bits per second.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Bitrate(u64);

/// Why a bit rate did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BitrateError {
    /// Not digits with an optional fraction and an optional `k`/`M` suffix.
    #[error("bit rate {0:?} is not a number of bits/s with an optional k or M suffix (e.g. \"800k\", \"3M\")")]
    Syntax(String),
    /// More than `u64::MAX` bits per second.
    #[error("bit rate {0:?} is too large")]
    Overflow(String),
    /// A fraction finer than one bit per second (`"1.5"` or `"1.0001k"`).
    #[error("bit rate {0:?} is not a whole number of bits/s")]
    Fraction(String),
}

impl Bitrate {
    /// `bps` bits per second.
    pub const fn from_bps(bps: u64) -> Self {
        Self(bps)
    }

    /// `kbps` thousand bits per second (saturating).
    pub const fn from_kbps(kbps: u64) -> Self {
        Self(kbps.saturating_mul(1000))
    }

    /// Bits per second.
    pub const fn bps(self) -> u64 {
        self.0
    }

    /// This rate times `num / den`, rounded down, saturating; `den` 0 gives
    /// the rate unchanged. Used for the max-rate and buffer defaults.
    pub fn scaled(self, num: u64, den: u64) -> Self {
        if den == 0 {
            return self;
        }
        let v = u128::from(self.0) * u128::from(num) / u128::from(den);
        Self(u64::try_from(v).unwrap_or(u64::MAX))
    }
}

impl Bitrate {
    /// Kilobits per second when the rate is a non-zero whole number of them.
    fn whole_kilobits(self) -> Option<u64> {
        (self.0 != 0 && self.0.is_multiple_of(1000)).then_some(self.0 / 1000)
    }
}

impl fmt::Display for Bitrate {
    /// `"3000k"` for whole kilobits, else the plain number of bits/s.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.whole_kilobits() {
            Some(k) => write!(f, "{k}k"),
            None => write!(f, "{}", self.0),
        }
    }
}

impl FromStr for Bitrate {
    type Err = BitrateError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let syntax = || BitrateError::Syntax(s.to_string());
        let (number, scale) = match s.strip_suffix(['k', 'K']) {
            Some(n) => (n, 1_000u64),
            None => match s.strip_suffix('M') {
                Some(n) => (n, 1_000_000),
                None => (s, 1),
            },
        };
        let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
        let digits = |d: &str| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit());
        if !digits(whole) || (number.contains('.') && !digits(frac)) {
            return Err(syntax());
        }
        let overflow = || BitrateError::Overflow(s.to_string());
        let whole: u64 = whole.parse().map_err(|_| overflow())?;
        let mut bps = whole.checked_mul(scale).ok_or_else(overflow)?;
        // Each fractional digit takes a tenth of the remaining scale; a digit
        // past the last whole bit must be zero.
        let mut unit = scale;
        for b in frac.bytes() {
            let digit = u64::from(b - b'0');
            if !unit.is_multiple_of(10) {
                if digit != 0 {
                    return Err(BitrateError::Fraction(s.to_string()));
                }
                continue;
            }
            unit /= 10;
            bps = bps.checked_add(digit * unit).ok_or_else(overflow)?;
        }
        Ok(Self(bps))
    }
}

impl Serialize for Bitrate {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.whole_kilobits().is_some() {
            serializer.collect_str(self)
        } else {
            serializer.serialize_u64(self.0)
        }
    }
}

impl<'de> Deserialize<'de> for Bitrate {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl de::Visitor<'_> for Visitor {
            type Value = Bitrate;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a bit rate such as \"800k\", \"3M\" or an integer of bits/s")
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Bitrate, E> {
                Ok(Bitrate(v))
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Bitrate, E> {
                u64::try_from(v)
                    .map(Bitrate)
                    .map_err(|_| E::custom(format!("bit rate {v} is negative")))
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Bitrate, E> {
                v.parse().map_err(E::custom)
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_suffixes_fractions_and_plain_numbers() {
        for (text, bps) in [
            ("3000k", 3_000_000),
            ("3M", 3_000_000),
            ("800k", 800_000),
            ("800K", 800_000),
            ("2.5M", 2_500_000),
            ("1.25k", 1_250),
            ("128000", 128_000),
            ("0k", 0),
            ("1.000k", 1_000),
        ] {
            assert_eq!(text.parse::<Bitrate>(), Ok(Bitrate(bps)), "{text}");
        }
    }

    #[test]
    fn refuses_malformed_values() {
        for text in [
            "", "k", "M", "3m", "3 M", " 3M", "3MB", "3G", "-3k", "+3k", "3.k", ".5M", "1e6",
            "3kk", "0x10",
        ] {
            assert!(
                matches!(text.parse::<Bitrate>(), Err(BitrateError::Syntax(_))),
                "{text:?}"
            );
        }
        assert!(matches!(
            "1.5".parse::<Bitrate>(),
            Err(BitrateError::Fraction(_))
        ));
        assert!(matches!(
            "1.0001k".parse::<Bitrate>(),
            Err(BitrateError::Fraction(_))
        ));
        assert!(matches!(
            "99999999999999999999".parse::<Bitrate>(),
            Err(BitrateError::Overflow(_))
        ));
        assert!(matches!(
            "18446744073709552M".parse::<Bitrate>(),
            Err(BitrateError::Overflow(_))
        ));
    }

    #[test]
    fn displays_whole_kilobits_with_k() {
        assert_eq!(Bitrate::from_bps(3_000_000).to_string(), "3000k");
        assert_eq!(Bitrate::from_bps(1_250).to_string(), "1250");
        assert_eq!(Bitrate::from_bps(0).to_string(), "0");
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Holder {
        rate: Bitrate,
    }

    #[test]
    fn toml_round_trip_and_integers() {
        let h: Holder = toml::from_str("rate = \"3M\"").expect("string");
        assert_eq!(h.rate, Bitrate::from_kbps(3000));
        assert_eq!(
            toml::to_string(&h).expect("serialise").trim(),
            "rate = \"3000k\""
        );
        let h: Holder = toml::from_str("rate = 64000").expect("integer");
        assert_eq!(h.rate, Bitrate::from_bps(64_000));
        let odd = Holder {
            rate: Bitrate::from_bps(1_234),
        };
        let text = toml::to_string(&odd).expect("serialise");
        assert_eq!(toml::from_str::<Holder>(&text).expect("back"), odd);
        let err = toml::from_str::<Holder>("rate = -5").expect_err("negative");
        assert!(err.to_string().contains("negative"), "{err}");
        let err = toml::from_str::<Holder>("rate = \"3 Mbps\"").expect_err("syntax");
        assert!(err.to_string().contains("3 Mbps"), "{err}");
        assert!(toml::from_str::<Holder>("rate = 1.5").is_err());
    }

    #[test]
    fn scaled_rounds_down_and_saturates() {
        assert_eq!(
            Bitrate::from_kbps(3000).scaled(11, 10),
            Bitrate::from_kbps(3300)
        );
        assert_eq!(Bitrate::from_bps(15).scaled(11, 10), Bitrate::from_bps(16));
        assert_eq!(
            Bitrate::from_bps(u64::MAX).scaled(2, 1),
            Bitrate::from_bps(u64::MAX)
        );
        assert_eq!(Bitrate::from_bps(7).scaled(1, 0), Bitrate::from_bps(7));
    }
}
