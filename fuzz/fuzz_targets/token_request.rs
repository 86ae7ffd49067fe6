//! Fuzz target `token_request`: any body, query string, media type and encoding into the token
//! route's one reading (CONTRACT §1.1). It never panics; a reading it accepts names a refresh
//! token only for `grant_type=refresh_token`, and never comes from a request whose query string
//! spells a deciding parameter or whose body spells one twice.
#![no_main]

use helloguard::http::token_request::{read, MAX_BODY};
use hyper::header::{HeaderMap, HeaderValue, CONTENT_ENCODING, CONTENT_TYPE};
use libfuzzer_sys::fuzz_target;

const TYPES: [&str; 6] = [
    "application/x-www-form-urlencoded",
    "application/json",
    "Application/JSON; charset=utf-8",
    "application/x-www-form-urlencoded; charset=json",
    "multipart/form-data; boundary=x",
    "text/plain",
];

fuzz_target!(|data: &[u8]| {
    let Some((&control, rest)) = data.split_first() else { return };
    let (query, body) = match rest.iter().position(|&b| b == b'\n') {
        Some(at) => (std::str::from_utf8(&rest[..at]).ok(), &rest[at + 1..]),
        None => (None, rest),
    };
    let mut headers = HeaderMap::new();
    if control & 7 < 6 {
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(TYPES[usize::from(control & 7)]));
    }
    if control & 8 != 0 {
        headers.insert(CONTENT_ENCODING, HeaderValue::from_static(if control & 16 != 0 { "gzip" } else { "identity" }));
    }
    let Ok(request) = read(&headers, query, body) else { return };
    assert!(body.len() <= MAX_BODY);
    if request.refresh_token.is_some() {
        assert_eq!(request.grant_type.as_deref(), Some("refresh_token"));
    }
    if let Some(query) = query {
        let deciding = |name: &str| {
            let base = name.split('[').next().unwrap_or_default();
            base.eq_ignore_ascii_case("grant_type") || base.eq_ignore_ascii_case("refresh_token")
        };
        assert!(!form_urlencoded::parse(query.as_bytes()).any(|(name, _)| deciding(&name)));
    }
    if headers.get(CONTENT_TYPE).is_some_and(|t| t.as_bytes().starts_with(b"application/x-www")) {
        let count = |key: &str| form_urlencoded::parse(body).filter(|(name, _)| name == key).count();
        assert!(count("refresh_token") <= 1 && count("grant_type") <= 1);
    }
});
