//! The session cookie as helloguard reads it, and the one `Cookie` header the upstream then gets
//! (CONTRACT §1.1).
//!
//! Servers disagree about a `Cookie` header that names the session cookie twice (first wins in
//! some, last in others), split over several `Cookie` fields (HTTP/1.1 repeats, HTTP/2's split
//! fields), quoted (`session="v"`: some strip the quotes), or spelled loosely (`session =v`,
//! `Session=v`, `sess%69on=v`: some trim, fold case or decode names). A thief who sends
//! `session=junk; session=STOLEN` must not get helloguard to decide on `junk` while the upstream
//! uses `STOLEN`. So every field is read, every pair whose name is the session cookie's under any of
//! those readings counts, the decision is made on the first, and when the header is not already in
//! the one plain form (one field, the session cookie once, spelled exactly, unquoted) the upstream
//! gets a rewritten single header with only that value. A comma inside a pair followed by the
//! session cookie's name (`a=1,session=v`, which comma-splitting parsers read as two cookies) has
//! no plain reading, nor has a session cookie value with anything but RFC 6265 cookie octets in
//! it (`"a\"b"`, `a b`): such a request is refused.
//!
//! Values are compared as bytes: a header with bytes outside visible ASCII is still read, never
//! skipped.

use hyper::header::{HeaderMap, HeaderValue, COOKIE};

/// What a request's `Cookie` fields say about the session cookie.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CookieReading {
    /// The first session cookie's value, unquoted (`None`: the request carries none).
    pub value: Option<Vec<u8>>,
    /// The single `Cookie` header the upstream must get instead of the client's fields, when they
    /// were not already in plain form.
    pub rewrite: Option<Rewrite>,
}

/// How the `Cookie` fields are to be replaced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rewrite {
    /// One header with this value.
    Single(HeaderValue),
    /// No `Cookie` header at all (nothing left).
    Remove,
}

/// The request cannot be read one way only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("ambiguous Cookie header")]
pub struct AmbiguousCookie;

/// Read the session cookie `name` from every `Cookie` field of `headers`.
pub fn read(headers: &HeaderMap, name: &str) -> Result<CookieReading, AmbiguousCookie> {
    let mut fields = headers.get_all(COOKIE).iter();
    if fields.next().is_none() {
        return Ok(CookieReading::default());
    }
    let mut plain = fields.next().is_none();
    let mut value: Option<Vec<u8>> = None;
    for text in raw_pairs(headers) {
        if text.is_empty() {
            plain = false; // `a=1;;b=2`: rewritten without the empty pair
            continue;
        }
        let (raw_name, raw_value) = split_pair(text);
        if contains_hidden_session(raw_value, name) {
            return Err(AmbiguousCookie);
        }
        if !names_session(raw_name, name) {
            continue;
        }
        let (unquoted, quoted) = unquote(trim(raw_value));
        if !unquoted.iter().all(|&b| is_cookie_octet(b)) {
            return Err(AmbiguousCookie);
        }
        if value.is_none() {
            value = Some(unquoted.to_vec());
            plain &= !quoted && raw_name == name.as_bytes() && raw_value == unquoted;
        } else {
            plain = false; // a second session cookie
        }
    }
    let rewrite = (!plain).then(|| single_header(headers, name, value.as_deref()));
    Ok(CookieReading { value, rewrite })
}

/// Every `name=value` pair of every `Cookie` field, in order, surrounding whitespace trimmed.
fn raw_pairs(headers: &HeaderMap) -> impl Iterator<Item = &[u8]> {
    headers.get_all(COOKIE).into_iter().flat_map(|field| field.as_bytes().split(|&b| b == b';').map(trim))
}

/// The `Cookie` header without any session cookie (a revoked session's cookie is not forwarded).
pub fn without_session(headers: &HeaderMap, name: &str) -> Rewrite {
    single_header(headers, name, None)
}

/// Apply a rewrite to the request's headers.
pub fn apply(headers: &mut HeaderMap, rewrite: Rewrite) {
    headers.remove(COOKIE);
    if let Rewrite::Single(value) = rewrite {
        headers.insert(COOKIE, value);
    }
}

/// The pairs joined with `; `, the first session cookie as `name=value` (or none without a
/// value), later ones and empty pairs dropped.
fn single_header(headers: &HeaderMap, name: &str, value: Option<&[u8]>) -> Rewrite {
    let mut out: Vec<u8> = Vec::new();
    let mut session_seen = false;
    for text in raw_pairs(headers).filter(|text| !text.is_empty()) {
        if !names_session(split_pair(text).0, name) {
            separate(&mut out);
            out.extend_from_slice(text);
        } else if !std::mem::replace(&mut session_seen, true) {
            if let Some(value) = value {
                separate(&mut out);
                out.extend_from_slice(name.as_bytes());
                out.push(b'=');
                out.extend_from_slice(value);
            }
        }
    }
    match HeaderValue::from_bytes(&out) {
        Ok(value) if !out.is_empty() => Rewrite::Single(value),
        _ => Rewrite::Remove,
    }
}

fn separate(out: &mut Vec<u8>) {
    if !out.is_empty() {
        out.extend_from_slice(b"; ");
    }
}

fn split_pair(text: &[u8]) -> (&[u8], &[u8]) {
    match text.iter().position(|&b| b == b'=') {
        Some(at) => (&text[..at], &text[at + 1..]),
        None => (text, &[]),
    }
}

/// Whether a pair's name reads as the session cookie's: after trimming, ignoring ASCII case,
/// percent-decoded, and with `.` and space read as `_` (as PHP names them).
fn names_session(raw: &[u8], name: &str) -> bool {
    let raw = trim(raw);
    if raw.eq_ignore_ascii_case(name.as_bytes()) {
        return true;
    }
    // The loose readings only matter for names of about the right length.
    if raw.len() < name.len() || raw.len() > name.len() * 3 {
        return false;
    }
    let fold = |b: u8| match b.to_ascii_lowercase() {
        b'.' | b' ' => b'_',
        other => other,
    };
    let mut decoded = Vec::with_capacity(raw.len());
    let mut at = 0;
    while at < raw.len() {
        match raw.get(at + 1..at + 3).and_then(super::path::hex_byte).filter(|_| raw[at] == b'%') {
            Some(byte) => {
                decoded.push(fold(byte));
                at += 3;
            }
            None => {
                decoded.push(fold(raw[at]));
                at += 1;
            }
        }
    }
    decoded.iter().copied().eq(name.bytes().map(fold))
}

/// `a=1,session=v`: a comma-splitting parser finds the session cookie inside another pair's value.
fn contains_hidden_session(value: &[u8], name: &str) -> bool {
    value
        .split(|&b| b == b',')
        .skip(1)
        .any(|part| names_session(split_pair(trim(part)).0, name) && part.contains(&b'='))
}

/// RFC 6265 §4.1.1's `cookie-octet`: what a cookie value may hold. Anything else (a space, a
/// quote, a backslash, a byte above 0x7e) is read differently by different parsers (some unescape
/// `\"`, some stop at a space, some strip quotes again).
fn is_cookie_octet(byte: u8) -> bool {
    matches!(byte, 0x21 | 0x23..=0x2b | 0x2d..=0x3a | 0x3c..=0x5b | 0x5d..=0x7e)
}

/// A cookie value as it is read: without its surrounding double quotes.
pub fn unquoted(value: &[u8]) -> &[u8] {
    unquote(value).0
}

/// A value without its surrounding double quotes, and whether it had them.
fn unquote(value: &[u8]) -> (&[u8], bool) {
    match value {
        [b'"', inner @ .., b'"'] => (inner, true),
        _ => (value, false),
    }
}

fn trim(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| !matches!(b, b' ' | b'\t')).unwrap_or(bytes.len());
    let end = bytes.iter().rposition(|b| !matches!(b, b' ' | b'\t')).map_or(start, |at| at + 1);
    &bytes[start..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(fields: &[&[u8]]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for field in fields {
            headers.append(COOKIE, HeaderValue::from_bytes(field).unwrap());
        }
        headers
    }

    fn reading(fields: &[&[u8]]) -> (Option<String>, Option<String>) {
        let reading = read(&headers(fields), "session").unwrap();
        let value = reading.value.map(|v| String::from_utf8(v).unwrap());
        let rewrite = reading.rewrite.map(|r| match r {
            Rewrite::Single(v) => String::from_utf8_lossy(v.as_bytes()).into_owned(),
            Rewrite::Remove => "<removed>".to_owned(),
        });
        (value, rewrite)
    }

    #[test]
    fn a_plain_header_is_read_and_left_alone() {
        assert_eq!(reading(&[b"a=1; session=abc; b=2"]), (Some("abc".into()), None));
        assert_eq!(reading(&[b"a=1"]), (None, None));
        assert_eq!(read(&HeaderMap::new(), "session").unwrap(), CookieReading::default());
    }

    #[test]
    fn every_twin_is_decided_on_the_first_and_forwarded_once() {
        let cases: [(&[&[u8]], &str, &str); 9] = [
            (&[b"session=junk; session=STOLEN"], "junk", "session=junk"),
            (&[b"a=1; session=junk", b"session=STOLEN; b=2"], "junk", "a=1; session=junk; b=2"),
            (&[b"session=\"STOLEN\""], "STOLEN", "session=STOLEN"),
            (&[b"session =STOLEN"], "STOLEN", "session=STOLEN"),
            (&[b"session= STOLEN ;x=1"], "STOLEN", "session=STOLEN; x=1"),
            (&[b"Session=STOLEN"], "STOLEN", "session=STOLEN"),
            (&[b"sess%69on=STOLEN; session=junk"], "STOLEN", "session=STOLEN"),
            (&[b"a=1", b"b=2"], "", "a=1; b=2"),
            (&[b"a=1;; session=v"], "v", "a=1; session=v"),
        ];
        for (fields, value, forwarded) in cases {
            let (read_value, rewrite) = reading(fields);
            assert_eq!(read_value.unwrap_or_default(), value, "{fields:?}");
            assert_eq!(rewrite.as_deref(), Some(forwarded), "{fields:?}");
        }
    }

    #[test]
    fn php_style_names_count() {
        let name = "my_session";
        let reading = read(&headers(&[b"my.session=a; my session=b"]), name).unwrap();
        assert_eq!(reading.value.as_deref(), Some(&b"a"[..]));
        assert!(reading.rewrite.is_some());
        assert!(!names_session(b"my_sessionx", name));
        assert!(!names_session(b"sessio", "session"));
    }

    #[test]
    fn a_session_cookie_hidden_behind_a_comma_is_refused() {
        assert_eq!(read(&headers(&[b"a=1,session=STOLEN"]), "session"), Err(AmbiguousCookie));
        assert_eq!(read(&headers(&[b"session=junk, session=STOLEN"]), "session"), Err(AmbiguousCookie));
        assert!(read(&headers(&[b"prefs={\"a\":1,\"b\":2}; session=v"]), "session").is_ok(), "commas alone are fine");
    }

    #[test]
    fn bytes_outside_visible_ascii_are_read() {
        let (value, rewrite) = reading(&[b"x=\xff; session=junk; session=STOLEN"]);
        assert_eq!(value.as_deref(), Some("junk"));
        assert_eq!(rewrite.as_deref(), Some("x=\u{fffd}; session=junk"));
    }

    #[test]
    fn a_session_value_without_one_reading_is_refused() {
        for field in
            [&b"session=\"\"x\"\""[..], b"session=\"a\\\"b\"", b"session=a b", b"session=\xc3\xa9", b"session=a\\b"]
        {
            assert_eq!(
                read(&headers(&[field]), "session"),
                Err(AmbiguousCookie),
                "{:?}",
                String::from_utf8_lossy(field)
            );
        }
        assert!(read(&headers(&[b"session=s%3Aabc.def-_~!"]), "session").is_ok());
    }

    #[test]
    fn a_revoked_cookie_goes_and_the_others_stay() {
        let rewrite = without_session(&headers(&[b"a=1; session=x", b"Session=\"y\"; b=2"]), "session");
        assert_eq!(rewrite, Rewrite::Single(HeaderValue::from_static("a=1; b=2")));
        assert_eq!(without_session(&headers(&[b"session=x"]), "session"), Rewrite::Remove);
        let mut map = headers(&[b"a=1", b"b=2"]);
        apply(&mut map, Rewrite::Single(HeaderValue::from_static("a=1; b=2")));
        assert_eq!(map.get_all(COOKIE).iter().count(), 1);
    }
}
