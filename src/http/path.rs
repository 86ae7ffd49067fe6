//! Request paths as route matching reads them (CONTRACT §1.1).
//!
//! Frameworks disagree about what `/LOGIN`, `/login/`, `/%6Cogin` and `/a/../login` are; many treat
//! all of them as `/login`. A proxy that matched only the exact text would let a client pick a
//! spelling that the upstream routes to its login handler while helloguard sees an ordinary page.
//! So routes and reserved paths are matched on one normal form, the loosest that common frameworks
//! apply: percent-encoded unreserved characters decoded, empty segments (`//`, a trailing `/`)
//! dropped, `.` and `..` resolved; and compared ignoring ASCII case unless a route opts out. The
//! request itself is forwarded with its original path.

use std::borrow::Cow;

/// The normal form of `path` (which starts with `/`, as hyper gives it). A path that is already
/// normal (nearly every one) is returned as it is, without allocating.
pub fn normalise(path: &str) -> Cow<'_, str> {
    if is_normal(path.as_bytes()) {
        return Cow::Borrowed(path);
    }
    let decoded = decode_unreserved(path);
    let mut segments: Vec<&str> = Vec::new();
    for segment in decoded.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            other => segments.push(other),
        }
    }
    let mut out = String::with_capacity(decoded.len());
    for segment in &segments {
        out.push('/');
        out.push_str(segment);
    }
    if out.is_empty() {
        out.push('/');
    }
    Cow::Owned(out)
}

/// No escape, no empty segment, no dot segment, no trailing `/` (but the root itself).
fn is_normal(path: &[u8]) -> bool {
    let [b'/', rest @ ..] = path else { return false };
    rest.is_empty()
        || (!rest.contains(&b'%') && rest.split(|&b| b == b'/').all(|segment| !matches!(segment, b"" | b"." | b"..")))
}

/// `%XX` escapes of unreserved characters (RFC 3986 §2.3) decoded; every other escape kept.
fn decode_unreserved(path: &str) -> Cow<'_, str> {
    if !path.contains('%') {
        return Cow::Borrowed(path);
    }
    let bytes = path.as_bytes();
    let mut out = String::with_capacity(path.len());
    let mut at = 0;
    while at < bytes.len() {
        if bytes[at] == b'%' {
            let decoded = bytes.get(at + 1..at + 3).and_then(hex_byte).filter(|b| is_unreserved(*b));
            if let Some(decoded) = decoded.filter(|b| !completes_escape(&out, *b)) {
                out.push(char::from(decoded));
                at += 3;
                continue;
            }
        }
        // Not an unreserved escape: copy the character whole (the path is UTF-8 text).
        let width = path[at..].chars().next().map_or(1, char::len_utf8);
        out.push_str(&path[at..at + width]);
        at += width;
    }
    Cow::Owned(out)
}

/// Whether decoding to `byte` would make an escape out of what precedes it (`%%32` → `%2`), which a
/// second normalisation would decode again: such an escape is left as it is, so that the normal
/// form is its own normal form.
fn completes_escape(out: &str, byte: u8) -> bool {
    let tail = out.as_bytes();
    byte.is_ascii_hexdigit()
        && (tail.last() == Some(&b'%')
            || (tail.len() >= 2 && tail[tail.len() - 2] == b'%' && tail[tail.len() - 1].is_ascii_hexdigit()))
}

/// The byte two hex digits spell.
pub fn hex_byte(digits: &[u8]) -> Option<u8> {
    let value = |d: u8| char::from(d).to_digit(16);
    match digits {
        [high, low] => Some((value(*high)? * 16 + value(*low)?) as u8),
        _ => None,
    }
}

fn is_unreserved(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~')
}

/// A route pattern in normal form: exact, or a prefix when written with a trailing `*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathPattern {
    text: String,
    prefix: bool,
    case_sensitive: bool,
}

impl PathPattern {
    /// `pattern` as configured (`/login`, `/oauth/*`).
    pub fn new(pattern: &str, case_sensitive: bool) -> Self {
        match pattern.strip_suffix('*') {
            Some(prefix) => {
                // `/oauth/*` matches `/oauth/x` and, since one trailing `/` is ignored, `/oauth`.
                let mut text = normalise(prefix).into_owned();
                if prefix.ends_with('/') && text != "/" {
                    text.push('/');
                }
                Self { text, prefix: true, case_sensitive }
            }
            None => Self { text: normalise(pattern).into_owned(), prefix: false, case_sensitive },
        }
    }

    /// Whether a path already in normal form matches.
    pub fn matches(&self, normal: &str) -> bool {
        let equal = |a: &str, b: &str| if self.case_sensitive { a == b } else { a.eq_ignore_ascii_case(b) };
        if !self.prefix {
            return equal(&self.text, normal);
        }
        let head = normal.get(..self.text.len());
        head.is_some_and(|head| equal(head, &self.text))
            || (self.text.ends_with('/') && equal(&self.text[..self.text.len() - 1], normal))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_of_one_path_have_one_normal_form() {
        for spelling in
            ["/login", "/login/", "//login", "/%6Cogin", "/%6cogin", "/a/../login", "/./login", "/x/./../login//"]
        {
            assert_eq!(normalise(spelling), "/login", "{spelling}");
        }
        assert_eq!(normalise("/"), "/");
        assert_eq!(normalise("//"), "/");
        assert_eq!(normalise("/.."), "/");
        assert_eq!(normalise("/oauth/%74oken"), "/oauth/token");
        assert_eq!(normalise("/%2e%2e/login"), "/login", "escaped dots are dot segments");
    }

    #[test]
    fn reserved_escapes_and_other_text_stay() {
        assert_eq!(normalise("/a%2Fb"), "/a%2Fb", "an escaped slash is not a separator");
        assert_eq!(normalise("/caf%C3%A9/"), "/caf%C3%A9");
        assert_eq!(normalise("/é/"), "/é");
        assert_eq!(normalise("/a%zz"), "/a%zz");
        assert_eq!(normalise("/a%4"), "/a%4");
        // Decoding never makes a new escape: the normal form is its own.
        for tricky in ["/%%32e", "/%2%65", "/%%32%65"] {
            let once = normalise(tricky);
            assert_eq!(normalise(&once), once, "{tricky}");
        }
        assert!(matches!(normalise("/plain/path.css"), Cow::Borrowed(_)));
    }

    #[test]
    fn patterns_match_every_spelling_and_ignore_case_unless_asked() {
        let exact = PathPattern::new("/login", false);
        for path in ["/login", "/LOGIN/", "/%6Cogin", "/Login//"] {
            assert!(exact.matches(&normalise(path)), "{path}");
        }
        assert!(!exact.matches(&normalise("/login/x")));
        assert!(!exact.matches(&normalise("/logins")));
        let strict = PathPattern::new("/login", true);
        assert!(strict.matches(&normalise("/login/")));
        assert!(!strict.matches(&normalise("/LOGIN")));

        let prefix = PathPattern::new("/oauth/*", false);
        for path in ["/oauth/token", "/OAUTH/TOKEN/", "/oauth", "/oauth/", "/oauth/%74oken"] {
            assert!(prefix.matches(&normalise(path)), "{path}");
        }
        assert!(!prefix.matches(&normalise("/oauthx")));
        let stem = PathPattern::new("/api*", false);
        assert!(stem.matches("/apix") && stem.matches("/api"));
        assert!(PathPattern::new("/*", false).matches("/anything"));
    }
}
