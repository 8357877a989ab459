//! The cross-origin headers origin and edge put on every response, errors
//! included (DESIGN section 3): players on other origins must be able to
//! read answers, error statuses and resource timing alike.

use http::header::{self, HeaderMap, HeaderValue};

/// `Access-Control-Allow-Origin: *`, `Timing-Allow-Origin: *`, and
/// `Access-Control-Expose-Headers: expose`.
pub fn add_cors(h: &mut HeaderMap, expose: &'static str) {
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    h.insert("timing-allow-origin", HeaderValue::from_static("*"));
    h.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static(expose),
    );
}

/// The answer to a CORS preflight (`OPTIONS`), to go with status 204.
pub fn add_preflight(h: &mut HeaderMap) {
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, HEAD, OPTIONS, POST, PATCH, DELETE"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("*"),
    );
    h.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("86400"),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_set() {
        let mut h = HeaderMap::new();
        add_cors(&mut h, "Age");
        add_preflight(&mut h);
        assert_eq!(
            h.get("access-control-allow-origin").map(|v| v.as_bytes()),
            Some(&b"*"[..])
        );
        assert_eq!(
            h.get("timing-allow-origin").map(|v| v.as_bytes()),
            Some(&b"*"[..])
        );
        assert_eq!(
            h.get("access-control-expose-headers").map(|v| v.as_bytes()),
            Some(&b"Age"[..])
        );
        assert_eq!(h.len(), 6);
    }
}
