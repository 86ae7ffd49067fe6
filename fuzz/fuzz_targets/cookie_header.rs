//! Fuzz target `cookie_header`: any `Cookie` fields (one to four, any bytes a header value may
//! hold) and any cookie name. The reader never panics; the single header it forwards reads back to
//! the same session cookie and needs no rewrite (one reading, CONTRACT §1.1); the header without
//! the session cookie has none.
#![no_main]

use helloguard::http::cookies::{read, without_session, Rewrite};
use hyper::header::{HeaderMap, HeaderValue, COOKIE};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&control, rest)) = data.split_first() else { return };
    let name = ["session", "sid", "my_session", "a"][usize::from(control & 3)];
    let mut headers = HeaderMap::new();
    for field in rest.split(|&b| b == 0).take(4) {
        if let Ok(value) = HeaderValue::from_bytes(field) {
            headers.append(COOKIE, value);
        }
    }
    let Ok(reading) = read(&headers, name) else { return };
    let forwarded = match reading.rewrite.clone() {
        Some(Rewrite::Single(value)) => {
            let mut single = HeaderMap::new();
            single.insert(COOKIE, value);
            single
        }
        Some(Rewrite::Remove) => HeaderMap::new(),
        None => headers.clone(),
    };
    let again = read(&forwarded, name).expect("the forwarded header is unambiguous");
    assert_eq!(again.value, reading.value, "the upstream reads the value the decision was made on");
    if reading.rewrite.is_some() {
        assert!(again.rewrite.is_none(), "the forwarded header is already in its one plain form");
    }
    let stripped = match without_session(&headers, name) {
        Rewrite::Single(value) => {
            let mut single = HeaderMap::new();
            single.insert(COOKIE, value);
            single
        }
        Rewrite::Remove => HeaderMap::new(),
    };
    assert_eq!(read(&stripped, name).map(|r| r.value).unwrap_or(None), None, "a session cookie survived removal");
});
