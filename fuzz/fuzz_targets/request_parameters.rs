//! Fuzz target `request_parameters`: any query string, body, media type and encoding into the
//! one reading of a login or token request's parameters that Actions see (CONTRACT §1.1, §11).
//! It never panics; an accepted reading has each name once under the folding the most lenient
//! framework applies (ASCII case, a `[…]` suffix), and a compressed body is never accepted.
#![no_main]

use helloguard::http::parameters::{body, query};
use hyper::header::{HeaderMap, HeaderValue, CONTENT_ENCODING, CONTENT_TYPE};
use libfuzzer_sys::fuzz_target;

const TYPES: [&str; 4] =
    ["application/x-www-form-urlencoded", "application/json", "Application/JSON; charset=utf-8", "text/plain"];

fn fold(name: &str) -> String {
    name.split('[').next().unwrap_or_default().to_ascii_lowercase()
}

fuzz_target!(|data: &[u8]| {
    let Some((&control, rest)) = data.split_first() else { return };
    let (text, bytes) = match rest.iter().position(|&b| b == b'\n') {
        Some(at) => (std::str::from_utf8(&rest[..at]).ok(), &rest[at + 1..]),
        None => (None, rest),
    };
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(TYPES[usize::from(control & 3)]));
    if control & 4 != 0 {
        headers.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    if let Ok(params) = query(text) {
        let names: std::collections::HashSet<String> = params.keys().map(|k| fold(k)).collect();
        assert_eq!(names.len(), params.len());
        assert_eq!(params.len(), form_urlencoded::parse(text.unwrap_or_default().as_bytes()).count());
    }
    if let Ok(params) = body(&headers, bytes) {
        assert!(control & 4 == 0 || bytes.is_empty(), "a compressed body is never read");
        let names: std::collections::HashSet<String> = params.keys().map(|k| fold(k)).collect();
        assert_eq!(names.len(), params.len());
    }
});
