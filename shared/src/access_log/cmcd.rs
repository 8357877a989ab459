//! Common Media Client Data (CTA-5004): what players say about themselves
//! on each request (buffer length, bitrate, session id, starvation...), as
//! the `CMCD` query argument or the `CMCD-Object`, `CMCD-Request`,
//! `CMCD-Session` and `CMCD-Status` headers.
//!
//! Sans-IO and bounded: the payload is client input, so at most
//! [`MAX_KEYS`] keys and [`MAX_VALUE`] bytes per string are kept, and
//! anything malformed is skipped key by key rather than failing the
//! request (the request is served whatever its CMCD says).
//!
//! ```
//! use livecdn_shared::access_log::cmcd::{Cmcd, Value};
//!
//! let mut c = Cmcd::default();
//! c.parse(r#"bl=2100,br=3200,bs,ot=v,sid="6e2fb550-c457-11e9-bb97-0800200c9a66""#);
//! assert_eq!(c.get("bl"), Some(&Value::Int(2100)));
//! assert_eq!(c.get("bs"), Some(&Value::Bool(true)));
//! assert_eq!(c.get("ot"), Some(&Value::Token("v".into())));
//! ```

use serde::Serialize;

/// Keys kept per request; more are ignored.
pub const MAX_KEYS: usize = 32;
/// Bytes kept of a string value or token.
pub const MAX_VALUE: usize = 256;
/// Bytes of payload looked at (all sources together).
pub const MAX_PAYLOAD: usize = 4096;
/// The query argument players put CMCD in.
pub const QUERY_KEY: &str = "CMCD";
/// The headers players put CMCD in (CTA-5004 section 2.2).
pub const HEADERS: [&str; 4] = ["cmcd-object", "cmcd-request", "cmcd-session", "cmcd-status"];

/// One CMCD value.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Value {
    /// A key present without a value (`bs`, `su`): true.
    Bool(bool),
    Int(i64),
    Decimal(f64),
    /// A quoted string (`sid`, `cid`, `nor`).
    Str(String),
    /// A bare token (`ot=v`, `sf=h`, `st=l`).
    Token(String),
}

/// The CMCD keys of one request, in the order received (a JSON object in
/// the access log).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Cmcd(Vec<(String, Value)>);

impl Serialize for Cmcd {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl Cmcd {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(k, _)| k.as_str())
    }

    /// Adds the keys of one payload (`key=value,key,...`, already
    /// percent-decoded). A key seen before keeps its first value.
    pub fn parse(&mut self, payload: &str) {
        let payload = truncate(payload, MAX_PAYLOAD);
        for item in split_items(payload) {
            if self.0.len() >= MAX_KEYS {
                return;
            }
            let (key, raw) = match item.split_once('=') {
                Some((k, v)) => (k.trim(), Some(v.trim())),
                None => (item.trim(), None),
            };
            if !valid_key(key) || self.get(key).is_some() {
                continue;
            }
            let value = match raw {
                None => Some(Value::Bool(true)),
                Some(v) => parse_value(v),
            };
            if let Some(value) = value {
                self.0.push((key.to_string(), value));
            }
        }
    }

    /// The `CMCD=` argument of a query string, percent-decoded.
    pub fn parse_query(&mut self, query: &str) {
        for pair in query.split('&') {
            let Some(encoded) = pair
                .strip_prefix(QUERY_KEY)
                .and_then(|r| r.strip_prefix('='))
            else {
                continue;
            };
            let encoded = truncate(encoded, MAX_PAYLOAD * 3);
            let decoded = percent_encoding::percent_decode_str(encoded).decode_utf8_lossy();
            self.parse(&decoded.replace('+', " "));
        }
    }

    /// CMCD from a request: the query argument, then each CMCD header.
    pub fn from_request(query: Option<&str>, headers: &http::HeaderMap) -> Self {
        let mut c = Cmcd::default();
        if let Some(q) = query {
            c.parse_query(q);
        }
        for name in HEADERS {
            for v in headers.get_all(name) {
                if let Ok(s) = v.to_str() {
                    c.parse(s);
                }
            }
        }
        c
    }
}

/// Fuzz body: CMCD as a query argument and as each header, from arbitrary
/// bytes. Never a panic, and never more than the bounds keep.
pub fn fuzz_cmcd(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut headers = http::HeaderMap::new();
    if let Ok(v) = http::HeaderValue::from_bytes(data) {
        for name in HEADERS {
            headers.append(name, v.clone());
        }
    }
    let c = Cmcd::from_request(Some(&text), &headers);
    assert!(c.0.len() <= MAX_KEYS);
    for (k, v) in &c.0 {
        assert!(valid_key(k), "{k:?}");
        if let Value::Str(s) | Value::Token(s) = v {
            assert!(s.len() <= MAX_VALUE);
        }
    }
    let _ = serde_json::to_string(&c);
}

/// At most `max` bytes of `s`, cut at a character boundary.
pub(super) fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Custom keys carry a reverse-domain prefix and a hyphen
/// (`com.example-key`), so the alphabet is wider than the standard keys'.
fn valid_key(key: &str) -> bool {
    (1..=64).contains(&key.len())
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_')
}

/// Splits on commas outside quoted strings.
fn split_items(payload: &str) -> impl Iterator<Item = &str> {
    let mut start = 0;
    let mut quoted = false;
    let mut escaped = false;
    let bytes = payload.as_bytes();
    let mut cuts = Vec::new();
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            _ if escaped => escaped = false,
            b'\\' if quoted => escaped = true,
            b'"' => quoted = !quoted,
            b',' if !quoted => {
                cuts.push(&payload[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    cuts.push(&payload[start..]);
    cuts.into_iter().filter(|s| !s.trim().is_empty())
}

fn parse_value(raw: &str) -> Option<Value> {
    if let Some(inner) = raw.strip_prefix('"') {
        let inner = inner.strip_suffix('"')?;
        let mut out = String::with_capacity(inner.len().min(MAX_VALUE));
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            let c = if c == '\\' { chars.next()? } else { c };
            if out.len() + c.len_utf8() > MAX_VALUE {
                break;
            }
            out.push(c);
        }
        return Some(Value::Str(out));
    }
    // Numbers start with a digit or a sign; tokens with a letter.
    if raw.starts_with(|c: char| c.is_ascii_digit() || c == '-') {
        if let Ok(i) = raw.parse::<i64>() {
            return Some(Value::Int(i));
        }
        let d = raw.parse::<f64>().ok()?;
        return d.is_finite().then_some(Value::Decimal(d));
    }
    let token = truncate(raw, MAX_VALUE);
    let ok = !token.is_empty()
        && token
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'"' && b != b',');
    ok.then(|| Value::Token(token.to_string()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
mod tests {
    use super::*;

    #[test]
    fn fuzz_cmcd_survives_seeds_and_mutations() {
        crate::bytes_reader::fuzz_input::exercise(
            &[
                b"CMCD=bl%3D2100%2Cbr%3D3200%2Cbs%2Csid%3D%22a%5C%22b%22",
                b"bl=1,ot=v,sid=\"x\",pr=1.5,su",
                b"\"\\\",,=,=\"",
            ],
            3000,
            fuzz_cmcd,
        );
    }

    #[test]
    fn the_spec_examples_parse() {
        // CTA-5004 section 3.2 and 5's examples.
        let mut c = Cmcd::default();
        c.parse(r#"bl=21300,br=3200,bs,cid="faec5fc2-ac30-11eabb37-0242ac130002",d=4004,dl=18500,mtp=48100,nor="..%2F300kbps%2Ftrack.m4v",nrr="12323-48763",ot=v,pr=1.08,rtp=12000,sf=d,sid="6e2fb550-c457-11e9-bb97-0800200c9a66",st=v,su,tb=6000"#);
        assert_eq!(c.get("bl"), Some(&Value::Int(21300)));
        assert_eq!(c.get("bs"), Some(&Value::Bool(true)));
        assert_eq!(c.get("pr"), Some(&Value::Decimal(1.08)));
        assert_eq!(c.get("sf"), Some(&Value::Token("d".into())));
        assert_eq!(
            c.get("sid"),
            Some(&Value::Str("6e2fb550-c457-11e9-bb97-0800200c9a66".into()))
        );
        assert_eq!(c.keys().count(), 17);
        let json = serde_json::to_string(&c).unwrap();
        assert!(
            json.starts_with(r#"{"bl":21300,"br":3200,"bs":true,"cid":"faec5fc2"#),
            "{json}"
        );
    }

    #[test]
    fn the_query_argument_is_percent_decoded_and_other_arguments_ignored() {
        let mut c = Cmcd::default();
        c.parse_query("_HLS_msn=5&CMCD=bl%3D300%2Cot%3Dv%2Csid%3D%22a%2Cb%22&token=x");
        assert_eq!(c.get("bl"), Some(&Value::Int(300)));
        assert_eq!(c.get("ot"), Some(&Value::Token("v".into())));
        // The comma inside the quoted string does not split it.
        assert_eq!(c.get("sid"), Some(&Value::Str("a,b".into())));
        assert_eq!(c.get("token"), None);
    }

    #[test]
    fn headers_add_to_the_query_and_the_first_value_of_a_key_wins() {
        let mut h = http::HeaderMap::new();
        h.insert("cmcd-request", "bl=100,mtp=25400".parse().unwrap());
        h.insert("cmcd-session", "sid=\"s1\",st=l".parse().unwrap());
        let c = Cmcd::from_request(Some("CMCD=bl%3D7"), &h);
        assert_eq!(c.get("bl"), Some(&Value::Int(7)));
        assert_eq!(c.get("mtp"), Some(&Value::Int(25400)));
        assert_eq!(c.get("st"), Some(&Value::Token("l".into())));
    }

    #[test]
    fn hostile_payloads_are_bounded_and_skipped_key_by_key() {
        let mut c = Cmcd::default();
        let many: Vec<String> = (0..1000).map(|i| format!("k{i}={i}")).collect();
        c.parse(&many.join(","));
        assert_eq!(c.keys().count(), MAX_KEYS);
        let mut c = Cmcd::default();
        let long = "x".repeat(1000);
        c.parse(&format!(
            "sid=\"{long}\",bad key=1,=2,ot=\"unterminated,br=9,pr=NaN"
        ));
        match c.get("sid") {
            Some(Value::Str(s)) => assert_eq!(s.len(), MAX_VALUE),
            other => panic!("{other:?}"),
        }
        assert_eq!(c.get("bad key"), None);
        // An unterminated quote swallows the rest: nothing after it parses.
        assert_eq!(c.get("br"), None);
        assert_eq!(c.get("pr"), None);
        // Past the payload cap, a quoted string is cut off and skipped.
        let mut c = Cmcd::default();
        c.parse(&format!("br=1,sid=\"{}\"", "y".repeat(2 * MAX_PAYLOAD)));
        assert_eq!(c.get("br"), Some(&Value::Int(1)));
        assert_eq!(c.get("sid"), None);
        let mut c = Cmcd::default();
        c.parse("pr=inf,d=1e999,bl=12ab,tb=6000");
        assert_eq!(c.get("pr"), Some(&Value::Token("inf".into())));
        assert_eq!(c.get("d"), None);
        assert_eq!(c.get("bl"), None);
        assert_eq!(c.get("tb"), Some(&Value::Int(6000)));
    }
}
