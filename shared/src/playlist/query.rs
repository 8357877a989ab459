//! The LL-HLS delivery directives `_HLS_msn`, `_HLS_part` and `_HLS_skip`
//! (RFC 8216bis 6.2.5) read from a playlist request's query string.
//!
//! The origin uses [`HlsQuery`] to decide whether to block and what to render; the
//! edge uses [`HlsQuery::cache_key_suffix`] so that `?_HLS_part=2&_HLS_msn=5&token=..`
//! and `?_HLS_msn=5&_HLS_part=2` share one cache entry and one upstream fetch.
//! Anything else in the query (auth tokens, cache busters, unknown `_HLS_*`
//! directives such as content-steering ones) is ignored here; the caller decides
//! what else belongs in a cache key.
//!
//! Parsing is strict: a directive that is duplicated, empty, percent-encoded,
//! signed, non-numeric or out of range is an error, which the server answers with
//! 400 as the RFC requires for `_HLS_part` without `_HLS_msn`. Guessing would let two
//! spellings of one request reach the origin as different requests.

use std::fmt::Write;

/// `_HLS_skip`: which delta update the client can take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SkipRequest {
    /// `_HLS_skip=YES`: skip old segments.
    Yes,
    /// `_HLS_skip=v2`: skip old segments and old date ranges.
    V2,
}

impl SkipRequest {
    /// The query value, also usable as a metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            SkipRequest::Yes => "YES",
            SkipRequest::V2 => "v2",
        }
    }
}

/// The delivery directives of one playlist request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct HlsQuery {
    /// `_HLS_msn`: block until this media sequence number is in the playlist.
    pub msn: Option<u64>,
    /// `_HLS_part`: with `msn`, block until this part of that segment is listed.
    pub part: Option<u64>,
    /// `_HLS_skip`: the client accepts a delta update.
    pub skip: Option<SkipRequest>,
}

/// Why a query string's delivery directives are unusable; the server answers 400.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum QueryError {
    /// A directive appears twice; which one wins would be a guess.
    #[error("{name} appears more than once")]
    Duplicate {
        /// The directive name.
        name: &'static str,
    },
    /// A directive has no `=value` or an empty value.
    #[error("{name} has no value")]
    MissingValue {
        /// The directive name.
        name: &'static str,
    },
    /// A directive value is percent-encoded; legitimate clients never need that for
    /// digits, `YES` or `v2`, and decoding would create aliases of one request.
    #[error("{name} is percent-encoded")]
    PercentEncoded {
        /// The directive name.
        name: &'static str,
    },
    /// `_HLS_msn` or `_HLS_part` is not a plain decimal integer that fits in 64 bits.
    #[error("{name} is not a non-negative 64-bit integer")]
    InvalidNumber {
        /// The directive name.
        name: &'static str,
    },
    /// `_HLS_skip` is neither `YES` nor `v2`.
    #[error("_HLS_skip must be YES or v2")]
    InvalidSkip,
    /// `_HLS_part` without `_HLS_msn`, which RFC 8216bis 6.2.5.2 says is a 400.
    #[error("_HLS_part requires _HLS_msn")]
    PartWithoutMsn,
}

const MSN: &str = "_HLS_msn";
const PART: &str = "_HLS_part";
const SKIP: &str = "_HLS_skip";

impl HlsQuery {
    /// Reads the directives from a query string (with or without the leading `?`).
    pub fn parse(query: &str) -> Result<HlsQuery, QueryError> {
        let query = query.strip_prefix('?').unwrap_or(query);
        let mut out = HlsQuery::default();
        for pair in query.split('&') {
            let (name, value) = match pair.split_once('=') {
                Some((name, value)) => (name, Some(value)),
                None => (pair, None),
            };
            let name = match name {
                MSN => MSN,
                PART => PART,
                SKIP => SKIP,
                _ => continue,
            };
            let value = value
                .filter(|v| !v.is_empty())
                .ok_or(QueryError::MissingValue { name })?;
            if value.contains('%') {
                return Err(QueryError::PercentEncoded { name });
            }
            let duplicate = match name {
                MSN => out.msn.replace(number(name, value)?).is_some(),
                PART => out.part.replace(number(name, value)?).is_some(),
                _ => {
                    let skip = match value {
                        "YES" => SkipRequest::Yes,
                        "v2" => SkipRequest::V2,
                        _ => return Err(QueryError::InvalidSkip),
                    };
                    out.skip.replace(skip).is_some()
                }
            };
            if duplicate {
                return Err(QueryError::Duplicate { name });
            }
        }
        if out.part.is_some() && out.msn.is_none() {
            return Err(QueryError::PartWithoutMsn);
        }
        Ok(out)
    }

    /// Whether the request asks the server to hold the response until the
    /// playlist reaches `msn` (and `part`).
    pub fn is_blocking(&self) -> bool {
        self.msn.is_some()
    }

    /// The directives in canonical form, sorted by name, e.g.
    /// `_HLS_msn=5&_HLS_part=2&_HLS_skip=YES`; empty when there are none. Equal
    /// queries give equal suffixes, so this is what the edge puts in a cache key.
    pub fn cache_key_suffix(&self) -> String {
        let mut out = String::new();
        let mut sep = "";
        // Writing into a String cannot fail.
        if let Some(msn) = self.msn {
            let _ = write!(out, "{sep}{MSN}={msn}");
            sep = "&";
        }
        if let Some(part) = self.part {
            let _ = write!(out, "{sep}{PART}={part}");
            sep = "&";
        }
        if let Some(skip) = self.skip {
            let _ = write!(out, "{sep}{SKIP}={}", skip.as_str());
        }
        out
    }
}

fn number(name: &'static str, value: &str) -> Result<u64, QueryError> {
    if !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(QueryError::InvalidNumber { name });
    }
    value
        .parse()
        .map_err(|_| QueryError::InvalidNumber { name })
}

/// Fuzz body: any query either fails to parse or yields directives whose canonical
/// form parses back to the same directives.
///
/// Meant for the one-line `hls_query` `cargo fuzz` target; a unit test runs it
/// over seeds and mutations so stable CI exercises it too.
pub fn fuzz_query(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(query) = HlsQuery::parse(text) else {
        return;
    };
    let suffix = query.cache_key_suffix();
    assert_eq!(HlsQuery::parse(&suffix), Ok(query), "suffix {suffix:?}");
    assert_eq!(suffix.is_empty(), query == HlsQuery::default());
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    fn q(msn: Option<u64>, part: Option<u64>, skip: Option<SkipRequest>) -> HlsQuery {
        HlsQuery { msn, part, skip }
    }

    #[test]
    fn parses_directive_table() {
        let ok: &[(&str, HlsQuery, &str)] = &[
            ("", q(None, None, None), ""),
            ("?", q(None, None, None), ""),
            ("token=abc&x", q(None, None, None), ""),
            ("_HLS_msn=5", q(Some(5), None, None), "_HLS_msn=5"),
            ("?_HLS_msn=5", q(Some(5), None, None), "_HLS_msn=5"),
            (
                "_HLS_part=2&token=a%20b&_HLS_msn=005",
                q(Some(5), Some(2), None),
                "_HLS_msn=5&_HLS_part=2",
            ),
            (
                "_HLS_skip=YES&_HLS_part=0&_HLS_msn=18446744073709551615",
                q(Some(u64::MAX), Some(0), Some(SkipRequest::Yes)),
                "_HLS_msn=18446744073709551615&_HLS_part=0&_HLS_skip=YES",
            ),
            (
                "_HLS_skip=v2",
                q(None, None, Some(SkipRequest::V2)),
                "_HLS_skip=v2",
            ),
            // Unknown and differently-cased names are not directives.
            (
                "_HLS_pathway=A&_hls_msn=x&_HLS_MSN=1",
                q(None, None, None),
                "",
            ),
            ("&&_HLS_msn=1&&", q(Some(1), None, None), "_HLS_msn=1"),
        ];
        for (input, want, suffix) in ok {
            let got = HlsQuery::parse(input);
            assert_eq!(got, Ok(*want), "{input:?}");
            assert_eq!(want.cache_key_suffix(), *suffix, "{input:?}");
        }
    }

    #[test]
    fn rejects_bad_directives() {
        use QueryError::*;
        let bad: &[(&str, QueryError)] = &[
            ("_HLS_part=1", PartWithoutMsn),
            ("_HLS_msn=", MissingValue { name: MSN }),
            ("_HLS_msn", MissingValue { name: MSN }),
            ("_HLS_msn=-1", InvalidNumber { name: MSN }),
            ("_HLS_msn=+1", InvalidNumber { name: MSN }),
            ("_HLS_msn=1.0", InvalidNumber { name: MSN }),
            ("_HLS_msn=abc", InvalidNumber { name: MSN }),
            ("_HLS_msn=18446744073709551616", InvalidNumber { name: MSN }),
            ("_HLS_msn=1&_HLS_part=x", InvalidNumber { name: PART }),
            ("_HLS_msn=%35", PercentEncoded { name: MSN }),
            ("_HLS_msn=1&_HLS_msn=1", Duplicate { name: MSN }),
            (
                "_HLS_msn=1&_HLS_part=1&_HLS_part=2",
                Duplicate { name: PART },
            ),
            ("_HLS_skip=YES&_HLS_skip=v2", Duplicate { name: SKIP }),
            ("_HLS_skip=yes", InvalidSkip),
            ("_HLS_skip=V2", InvalidSkip),
            ("_HLS_skip=NO", InvalidSkip),
        ];
        for (input, want) in bad {
            assert_eq!(HlsQuery::parse(input), Err(want.clone()), "{input:?}");
        }
    }

    #[test]
    fn blocking_needs_msn() -> TestResult {
        assert!(HlsQuery::parse("_HLS_msn=3")?.is_blocking());
        assert!(!HlsQuery::parse("_HLS_skip=YES")?.is_blocking());
        Ok(())
    }

    #[test]
    fn fuzz_query_survives_seeds_and_mutations() {
        let seeds: &[&[u8]] = &[
            b"",
            b"_HLS_msn=5&_HLS_part=2&_HLS_skip=YES",
            b"?_HLS_skip=v2&token=abc&_HLS_msn=99999999999",
            b"_HLS_part=1",
            b"_HLS_msn=%35&&=",
        ];
        let alphabet = b"_HLSmsnpartkiYESv2&=?%0123456789-+";
        let mut rng = super::super::test_rng::XorShift::new(0x9e37_79b9_7f4a_7c15);
        for seed in seeds {
            fuzz_query(seed);
        }
        for _ in 0..5000 {
            let Some(seed) = rng.pick(seeds) else {
                continue;
            };
            let mutated = rng.mutate(seed, alphabet);
            fuzz_query(&mutated);
        }
    }
}
