//! A JSON object written straight into a `String`, for the `decision` audit event: the proxy
//! writes one per login and refresh, so it is built without a serializer's per-field machinery.
//! Keys are `'static` names the caller spells correctly; every string value is escaped as JSON
//! requires (`"`, `\` and control characters), and a value that needs none is copied as it is.

use std::fmt::Write as _;

/// An open JSON object; [`JsonObject::close`] writes its closing brace.
pub(crate) struct JsonObject<'o> {
    out: &'o mut String,
    empty: bool,
}

impl<'o> JsonObject<'o> {
    pub(crate) fn open(out: &'o mut String) -> Self {
        out.push('{');
        Self { out, empty: true }
    }

    pub(crate) fn close(self) {
        self.out.push('}');
    }

    fn key(&mut self, key: &'static str) {
        if !self.empty {
            self.out.push(',');
        }
        self.empty = false;
        self.out.push('"');
        self.out.push_str(key);
        self.out.push_str("\":");
    }

    pub(crate) fn str(&mut self, key: &'static str, value: &str) -> &mut Self {
        self.key(key);
        push_string(self.out, value);
        self
    }

    /// `value`, or `null` for `None`.
    pub(crate) fn opt_str(&mut self, key: &'static str, value: Option<&str>) -> &mut Self {
        match value {
            Some(value) => self.str(key, value),
            None => self.null(key),
        }
    }

    pub(crate) fn null(&mut self, key: &'static str) -> &mut Self {
        self.key(key);
        self.out.push_str("null");
        self
    }

    /// A nested object whose members `write` adds.
    pub(crate) fn object(&mut self, key: &'static str, write: impl FnOnce(&mut JsonObject<'_>)) -> &mut Self {
        self.key(key);
        let mut inner = JsonObject::open(self.out);
        write(&mut inner);
        inner.close();
        self
    }

    /// An array of strings.
    pub(crate) fn strs<'v>(&mut self, key: &'static str, items: impl IntoIterator<Item = &'v str>) -> &mut Self {
        self.key(key);
        self.out.push('[');
        for (index, item) in items.into_iter().enumerate() {
            if index > 0 {
                self.out.push(',');
            }
            push_string(self.out, item);
        }
        self.out.push(']');
        self
    }

    /// An array of objects, one per item, whose members `write` adds.
    pub(crate) fn objects<T>(
        &mut self,
        key: &'static str,
        items: impl IntoIterator<Item = T>,
        mut write: impl FnMut(&mut JsonObject<'_>, T),
    ) -> &mut Self {
        self.key(key);
        self.out.push('[');
        for (index, item) in items.into_iter().enumerate() {
            if index > 0 {
                self.out.push(',');
            }
            let mut inner = JsonObject::open(self.out);
            write(&mut inner, item);
            inner.close();
        }
        self.out.push(']');
        self
    }
}

/// Whether JSON must escape `b`: a control character, `"` or `\`.
fn escaped(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\'
}

/// Whether any byte of `value` is [`escaped`], eight bytes at a time: the values written are
/// mostly fingerprints and ids with nothing to escape, so this scan is the usual whole cost.
fn needs_escape(value: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // A byte below `n` (n <= 0x80) sets its high bit in (w - n·ONES) & !w; a zero byte (an
    // `equal` byte after the xor) in (v - ONES) & !v. Borrows only reach bytes above a flagged
    // one, so "any byte flagged" is exact.
    let below = |w: u64, n: u8| w.wrapping_sub(ONES * u64::from(n)) & !w;
    let equal = |w: u64, b: u8| below(w ^ (ONES * u64::from(b)), 1);
    let mut words = value.chunks_exact(8);
    let flagged = words.by_ref().any(|word| {
        let w = u64::from_le_bytes(word.try_into().expect("chunks of eight"));
        (below(w, 0x20) | equal(w, b'"') | equal(w, b'\\')) & HIGH != 0
    });
    flagged || words.remainder().iter().any(|&b| escaped(b))
}

/// `value` as a JSON string literal.
fn push_string(out: &mut String, value: &str) {
    out.push('"');
    if !needs_escape(value.as_bytes()) {
        out.push_str(value);
    } else {
        for c in value.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                c if u32::from(c) < 0x20 => {
                    let _ = write!(out, "\\u{:04x}", u32::from(c));
                }
                c => out.push(c),
            }
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn written(write: impl FnOnce(&mut JsonObject<'_>)) -> String {
        let mut out = String::new();
        let mut object = JsonObject::open(&mut out);
        write(&mut object);
        object.close();
        out
    }

    #[test]
    fn every_string_round_trips_through_a_json_parser() {
        let nasty = ["plain", "", "quote \" and \\ backslash", "line\nbreak\ttab\r", "\u{0}\u{1f}\u{7f}", "é😀"];
        for value in nasty {
            let text = written(|o| {
                o.str("k", value);
            });
            let parsed: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
            assert_eq!(parsed, json!({ "k": value }));
        }
    }

    #[test]
    fn the_word_scan_finds_every_escaped_byte_at_every_position() {
        for len in [1, 7, 8, 9, 16, 23] {
            for at in 0..len {
                for b in 0..=255u8 {
                    let mut bytes = vec![b'a'; len];
                    bytes[at] = b;
                    assert_eq!(needs_escape(&bytes), escaped(b), "byte {b:#04x} at {at} of {len}");
                }
            }
        }
        // Bytes just above a flagged one, and UTF-8 continuation bytes, are not flagged alone.
        assert!(!needs_escape("t13d1517h2_8daaf6152771_cb7bf5808d99 é😀 ~!#[]".as_bytes()));
    }

    #[test]
    fn members_nest_in_order() {
        let text = written(|o| {
            o.str("a", "x").null("b").opt_str("c", None).opt_str("d", Some("y"));
            o.object("e", |inner| {
                inner.str("f", "z");
            });
            o.objects("g", ["1", "2"], |inner, item| {
                inner.str("type", item);
            });
            o.objects("h", [(); 0], |_, ()| {});
            o.object("i", |_| {});
        });
        assert_eq!(
            text,
            r#"{"a":"x","b":null,"c":null,"d":"y","e":{"f":"z"},"g":[{"type":"1"},{"type":"2"}],"h":[],"i":{}}"#
        );
        let parsed: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(parsed["g"][1]["type"], "2");
    }
}
