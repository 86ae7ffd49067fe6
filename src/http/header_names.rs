//! Sets of header names matched as a CGI/WSGI-style server reads them (CONTRACT §1.1): such a
//! server turns both `helloguard-decision` and `helloguard_decision` into `HTTP_HELLOGUARD_DECISION`,
//! so a client-sent underscore twin of one of helloguard's names would reach the application as
//! that very header. A name matches a member when they are equal after ASCII case folding and
//! `_` → `-`.

use hyper::header::{HeaderMap, HeaderName};

/// Header names looked up on every request: a name whose length none of them has (nearly every
/// name a client sends) is told apart without comparing a byte.
#[derive(Debug, Clone, Default)]
pub struct NameSet {
    /// Lowercase, `-` for `_`.
    names: Vec<Vec<u8>>,
    /// Bit `n` is set when some name is `n` bytes long; bit 63 stands for 63 bytes and more.
    lengths: u64,
}

impl NameSet {
    pub fn new<'a>(names: impl IntoIterator<Item = &'a str>) -> Self {
        let mut set = Self::default();
        for name in names {
            let folded: Vec<u8> = name.bytes().map(fold).collect();
            if !set.names.contains(&folded) {
                set.lengths |= length_bit(folded.len());
                set.names.push(folded);
            }
        }
        set
    }

    pub fn contains(&self, name: &HeaderName) -> bool {
        let name = name.as_str().as_bytes();
        self.lengths & length_bit(name.len()) != 0
            && self
                .names
                .iter()
                .any(|member| member.len() == name.len() && member.iter().zip(name).all(|(m, n)| *m == fold(*n)))
    }

    /// Remove every header whose name is in the set.
    pub fn strip(&self, headers: &mut HeaderMap) {
        remove_where(headers, |name| self.contains(name));
    }
}

fn fold(byte: u8) -> u8 {
    match byte {
        b'_' => b'-',
        other => other.to_ascii_lowercase(),
    }
}

fn length_bit(len: usize) -> u64 {
    1 << len.min(63)
}

/// Remove every header whose name `doomed` picks. One pass over the names present, so a request
/// with none to remove costs no hashing and no allocation.
pub fn remove_where(headers: &mut HeaderMap, doomed: impl Fn(&HeaderName) -> bool) {
    let names: Vec<HeaderName> = headers.keys().filter(|name| doomed(name)).cloned().collect();
    for name in names {
        headers.remove(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(text: &str) -> HeaderName {
        HeaderName::from_bytes(text.as_bytes()).unwrap()
    }

    #[test]
    fn twins_match_and_strangers_do_not() {
        let (long, longer) = ("x".repeat(63), format!("x-{}", "y".repeat(70)));
        let set = NameSet::new(["helloguard-decision", "X-A", &long, &longer]);
        for member in
            ["helloguard-decision", "helloguard_decision", "helloguard-decision", "x-a", "x_a", &long, &longer]
        {
            assert!(set.contains(&name(member)), "{member}");
        }
        let other_long = format!("x-{}", "z".repeat(70));
        for stranger in ["helloguard-decisions", "x-b", "x-ab", "accept", &other_long] {
            assert!(!set.contains(&name(stranger)), "{stranger}");
        }
    }

    #[test]
    fn strip_removes_every_twin() {
        let set = NameSet::new(["helloguard-user-id"]);
        let mut headers = HeaderMap::new();
        for field in ["helloguard-user-id", "helloguard_user_id", "helloguard_user-id", "accept"] {
            headers.append(name(field), "x".parse().unwrap());
        }
        set.strip(&mut headers);
        assert_eq!(headers.keys().map(|k| k.as_str()).collect::<Vec<_>>(), ["accept"]);
    }
}
