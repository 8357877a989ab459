//! Attribute lists (`NAME=VALUE,NAME="quoted, with commas"`) and the number
//! formats of RFC 8216bis section 4.2, shared by the media playlist reader and writer.
//!
//! Numbers are checked character by character before `str::parse`, because Rust's
//! float parser also accepts `inf`, `NaN`, `1e9` and a leading `+`, none of which a
//! playlist may contain and all of which would break a render/parse round trip.

use std::fmt;

use smallvec::SmallVec;

/// One attribute value, keeping whether it was quoted: the grammar says which
/// attributes are quoted strings, and a mismatch is a malformed tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AttrValue<'a> {
    /// A `"quoted-string"`, without the quotes.
    Quoted(&'a str),
    /// Anything else: an enumerated string, an integer, a decimal.
    Unquoted(&'a str),
}

/// Attributes kept inline before an [`AttrList`] spills to the heap: every tag
/// a media playlist repeats (`EXT-X-PART`, `EXT-X-RENDITION-REPORT`) has fewer,
/// and players parse one such tag per part on every blocking reload.
const INLINE_ATTRS: usize = 8;

/// A parsed attribute list, in input order. Lookups are linear: tags carry a handful
/// of attributes, so a map would only cost allocations.
#[derive(Debug)]
pub(crate) struct AttrList<'a> {
    items: SmallVec<[(&'a str, AttrValue<'a>); INLINE_ATTRS]>,
}

impl<'a> AttrList<'a> {
    /// Splits `text` into attributes. Commas inside quoted strings do not split;
    /// duplicate names are rejected (the spec forbids them and a reader that keeps
    /// either one would disagree with some other reader).
    pub(crate) fn parse(text: &'a str) -> Result<AttrList<'a>, String> {
        let mut items = SmallVec::new();
        let mut rest = text.trim_start();
        while !rest.is_empty() {
            let (name, after) = rest
                .split_once('=')
                .ok_or_else(|| format!("attribute without '=' in {rest:?}"))?;
            let name = name.trim();
            if name.is_empty()
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-')
            {
                return Err(format!("invalid attribute name {name:?}"));
            }
            if items.iter().any(|(n, _)| *n == name) {
                return Err(format!("duplicate attribute {name}"));
            }
            let after = after.trim_start();
            if let Some(quoted) = after.strip_prefix('"') {
                let (value, tail) = quoted
                    .split_once('"')
                    .ok_or_else(|| format!("{name}: unterminated quoted string"))?;
                items.push((name, AttrValue::Quoted(value)));
                let tail = tail.trim_start();
                rest = match tail.strip_prefix(',') {
                    Some(next) => next.trim_start(),
                    None if tail.is_empty() => tail,
                    None => return Err(format!("{name}: text after closing quote")),
                };
            } else {
                let (value, tail) = after.split_once(',').unwrap_or((after, ""));
                let value = value.trim();
                if value.is_empty() || value.contains('"') {
                    return Err(format!("{name}: invalid value {value:?}"));
                }
                items.push((name, AttrValue::Unquoted(value)));
                rest = tail.trim_start();
            }
        }
        Ok(AttrList { items })
    }

    fn get(&self, name: &str) -> Option<AttrValue<'a>> {
        self.items.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
    }

    /// A quoted-string attribute, if present.
    pub(crate) fn quoted(&self, name: &str) -> Result<Option<&'a str>, String> {
        match self.get(name) {
            None => Ok(None),
            Some(AttrValue::Quoted(v)) => Ok(Some(v)),
            Some(AttrValue::Unquoted(_)) => Err(format!("{name} must be a quoted string")),
        }
    }

    /// A quoted-string attribute the tag cannot do without.
    pub(crate) fn required_quoted(&self, name: &str) -> Result<&'a str, String> {
        self.quoted(name)?
            .ok_or_else(|| format!("missing required attribute {name}"))
    }

    /// An enumerated-string (unquoted) attribute, if present.
    pub(crate) fn enumerated(&self, name: &str) -> Result<Option<&'a str>, String> {
        match self.get(name) {
            None => Ok(None),
            Some(AttrValue::Unquoted(v)) => Ok(Some(v)),
            Some(AttrValue::Quoted(_)) => Err(format!("{name} must not be quoted")),
        }
    }

    /// A `YES`/`NO` attribute; absent means `NO` (RFC 8216bis 4.4).
    pub(crate) fn yes(&self, name: &str) -> Result<bool, String> {
        match self.enumerated(name)? {
            None | Some("NO") => Ok(false),
            Some("YES") => Ok(true),
            Some(other) => Err(format!("{name} must be YES or NO, not {other:?}")),
        }
    }

    /// A decimal-floating-point attribute, if present.
    pub(crate) fn decimal(&self, name: &str) -> Result<Option<f64>, String> {
        self.enumerated(name)?
            .map(|v| parse_decimal(v).ok_or_else(|| format!("{name}: invalid decimal {v:?}")))
            .transpose()
    }

    /// A decimal-integer attribute, if present.
    pub(crate) fn integer(&self, name: &str) -> Result<Option<u64>, String> {
        self.enumerated(name)?
            .map(|v| parse_integer(v).ok_or_else(|| format!("{name}: invalid integer {v:?}")))
            .transpose()
    }
}

/// Reads a decimal-integer: ASCII digits only, fitting in a `u64`.
pub(crate) fn parse_integer(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// Reads a non-negative decimal-floating-point (`4`, `4.00008`, lenient `4.` and `.5`):
/// digits with at most one point, and a finite result.
pub(crate) fn parse_decimal(text: &str) -> Option<f64> {
    let mut digits = 0usize;
    let mut points = 0usize;
    for b in text.bytes() {
        match b {
            b'0'..=b'9' => digits += 1,
            b'.' => points += 1,
            _ => return None,
        }
    }
    if digits == 0 || points > 1 {
        return None;
    }
    text.parse::<f64>().ok().filter(|v| v.is_finite())
}

/// Renders a duration in seconds with exactly five decimals (`4.00008`, `1.00000`).
///
/// One fixed format for every duration keeps rendering deterministic (the same
/// playlist is the same bytes, so edge caches and ETags agree) and is precise to
/// 10 µs, finer than any media timescale we package.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Decimal(pub(crate) f64);

impl fmt::Display for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.5}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    #[test]
    fn quoted_values_keep_commas_and_equals() -> TestResult {
        let list = AttrList::parse(r#"URI="a,b=c.mp4",DURATION=0.5,INDEPENDENT=YES"#)?;
        assert_eq!(list.quoted("URI")?, Some("a,b=c.mp4"));
        assert_eq!(list.decimal("DURATION")?, Some(0.5));
        assert!(list.yes("INDEPENDENT")?);
        assert!(!list.yes("GAP")?);
        Ok(())
    }

    #[test]
    fn malformed_lists_are_errors() -> TestResult {
        for bad in [
            "URI",
            r#"URI="open"#,
            "A=1,A=2",
            "a=1",
            r#"URI="x"y"#,
            "A=",
            "=1",
        ] {
            assert!(AttrList::parse(bad).is_err(), "{bad:?} should fail");
        }
        assert!(AttrList::parse("")?.items.is_empty());
        assert_eq!(AttrList::parse("A=1,")?.items.len(), 1);
        Ok(())
    }

    #[test]
    fn type_mismatches_are_errors() -> TestResult {
        let list = AttrList::parse(r#"URI=x,DURATION="1",GAP=MAYBE"#)?;
        assert!(list.quoted("URI").is_err());
        assert!(list.decimal("DURATION").is_err());
        assert!(list.yes("GAP").is_err());
        assert!(list.required_quoted("MISSING").is_err());
        Ok(())
    }

    #[test]
    fn numbers_are_strict() {
        assert_eq!(parse_integer("007"), Some(7));
        assert_eq!(parse_integer("18446744073709551615"), Some(u64::MAX));
        for bad in ["", "+1", "-1", "1.0", "18446744073709551616", " 1"] {
            assert_eq!(parse_integer(bad), None, "{bad:?}");
        }
        assert_eq!(parse_decimal("4.00008"), Some(4.00008));
        assert_eq!(parse_decimal("1"), Some(1.0));
        assert_eq!(parse_decimal("1.00000"), Some(1.0));
        for bad in [
            "",
            ".",
            "inf",
            "NaN",
            "1e3",
            "+1",
            "-1",
            "1.2.3",
            &"9".repeat(400),
        ] {
            assert_eq!(parse_decimal(bad), None, "{bad:?}");
        }
        assert_eq!(Decimal(1.0).to_string(), "1.00000");
        assert_eq!(Decimal(1.0 / 3.0).to_string(), "0.33333");
    }
}
