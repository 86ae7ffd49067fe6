//! Fuzz target `route_path`: any path into the normal form routes are matched on (CONTRACT §1.1).
//! It never panics; the normal form starts with `/`, has no empty or dot segment and no trailing
//! `/` (but the root), is its own normal form, and a route pattern written as the path matches it.
#![no_main]

use helloguard::http::path::{normalise, PathPattern};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let path = format!("/{text}");
    let normal = normalise(&path);
    assert!(normal.starts_with('/'));
    assert!(normal == "/" || !normal.ends_with('/'), "{normal}");
    for segment in normal.split('/').skip(1) {
        assert!(normal == "/" || !segment.is_empty(), "{normal}");
        assert!(segment != "." && segment != "..", "{normal}");
    }
    assert_eq!(normalise(&normal), normal, "not idempotent");
    if !path.ends_with('*') {
        assert!(PathPattern::new(&path, false).matches(&normal), "{path} does not match its own normal form");
        assert!(PathPattern::new(&path, true).matches(&normal));
    }
});
