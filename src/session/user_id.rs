//! The user id an upstream reports in a response header (CONTRACT §1): UTF-8 text of 1–255 bytes
//! without control characters, sent as it is (`raw`) or percent-encoded (`percent`, for upstreams
//! whose HTTP stack only sends ASCII header values). Anything else is ignored, never stored.

/// `[session] user_id_encoding`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UserIdEncoding {
    /// The header's bytes are the id (UTF-8).
    #[default]
    Raw,
    /// The header's value is the id percent-encoded (`demo%7C%C3%A9` for `demo|é`).
    Percent,
}

crate::options::wire_names!(UserIdEncoding { Raw => "raw", Percent => "percent" });

/// Longest user id kept, in bytes.
pub const MAX_USER_ID: usize = 255;

/// The user id a header value carries, if it is a valid one.
pub fn from_header(value: &[u8], encoding: UserIdEncoding) -> Option<String> {
    let bytes = match encoding {
        UserIdEncoding::Raw => value.to_vec(),
        UserIdEncoding::Percent => percent_decoded(value)?,
    };
    let text = String::from_utf8(bytes).ok()?;
    let valid = (1..=MAX_USER_ID).contains(&text.len()) && !text.chars().any(char::is_control);
    valid.then_some(text)
}

/// `%XX` decoded; a `%` without two hex digits makes the value invalid.
fn percent_decoded(value: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(value.len());
    let mut at = 0;
    while at < value.len() {
        if value[at] == b'%' {
            out.push(crate::http::path::hex_byte(value.get(at + 1..at + 3)?)?);
            at += 3;
        } else {
            out.push(value[at]);
            at += 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_ids_raw_and_percent_encoded() {
        assert_eq!(from_header("demo|é".as_bytes(), UserIdEncoding::Raw).as_deref(), Some("demo|é"));
        assert_eq!(from_header(b"demo%7C%C3%A9", UserIdEncoding::Percent).as_deref(), Some("demo|é"));
        assert_eq!(from_header(b"demo%7C%C3%A9", UserIdEncoding::Raw).as_deref(), Some("demo%7C%C3%A9"));
        assert_eq!(from_header(b"auth0|abc", UserIdEncoding::Percent).as_deref(), Some("auth0|abc"));
    }

    #[test]
    fn invalid_ids_are_ignored() {
        for (value, encoding) in [
            (&b""[..], UserIdEncoding::Raw),
            (b"\xff\xfe", UserIdEncoding::Raw),
            (b"a\x7fb", UserIdEncoding::Raw),
            (b"a\nb", UserIdEncoding::Raw),
            (b"a%0Ab", UserIdEncoding::Percent),
            (b"%C3", UserIdEncoding::Percent),
            (b"a%zz", UserIdEncoding::Percent),
            (b"a%4", UserIdEncoding::Percent),
        ] {
            assert_eq!(from_header(value, encoding), None, "{value:?}");
        }
        assert!(from_header("é".repeat(127).as_bytes(), UserIdEncoding::Raw).is_some(), "254 bytes");
        assert!(from_header("é".repeat(128).as_bytes(), UserIdEncoding::Raw).is_none(), "256 bytes");
    }
}
