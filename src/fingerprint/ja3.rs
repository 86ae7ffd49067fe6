//! JA3 and JA3N (FINGERPRINTS.md §4): `version,ciphers,extensions,groups,formats` in decimal.
//!
//! JA3 lists extensions in wire order; JA3N sorts them numerically, which makes it stable under
//! Chrome's extension permutation. Both drop GREASE from ciphers, extensions and groups.

use md5::Md5;

use super::lists::Lists;
use super::memo::{Key, Kind};
use super::sink::{decimal, md5_hex, put_decimal_list, Hashing, Sink};
use super::Md5Hex;
use crate::hello::ClientHello;

/// Extension order in the JA3 string.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Order {
    Wire,
    Sorted,
}

/// The JA3 (or JA3N) string of `ch`, whose GREASE-free lists are `lists`.
pub(crate) fn write(sink: &mut impl Sink, ch: &ClientHello, lists: &Lists, order: Order) {
    let (version, len) = decimal(ch.legacy_version, None);
    sink.put_prefix(version, len);
    sink.put(b",");
    put_decimal_list(sink, lists.ciphers.iter().copied());
    sink.put(b",");
    match order {
        Order::Wire => put_decimal_list(sink, lists.extensions.iter().copied()),
        Order::Sorted => {
            let mut sorted = lists.extensions.clone();
            sorted.sort_unstable();
            put_decimal_list(sink, sorted.into_iter());
        }
    }
    sink.put(b",");
    put_decimal_list(sink, lists.groups.iter().copied());
    sink.put(b",");
    if let Some(formats) = ch.point_formats {
        put_decimal_list(sink, formats.iter().map(|&f| u16::from(f)));
    }
}

/// The MD5, memoised on the values the string is made of (kind, version and the four lists in
/// wire order: the string, and so the hash, is a function of exactly these).
pub(crate) fn hash(ch: &ClientHello, lists: &Lists, order: Order) -> Md5Hex {
    let kind = if order == Order::Wire { Kind::Ja3 } else { Kind::Ja3n };
    let mut key = Key::new(kind);
    key.slice(&[ch.legacy_version])
        .slice(&lists.ciphers)
        .slice(&lists.extensions)
        .slice(&lists.groups)
        .list(ch.point_formats.unwrap_or_default().iter().map(|&f| u16::from(f)));
    Md5Hex::from_ascii(&key.get_or(|| {
        let mut sink = Hashing::<Md5>::new();
        write(&mut sink, ch, lists, order);
        md5_hex(sink)
    }))
}

pub(crate) fn text(ch: &ClientHello, lists: &Lists, order: Order) -> String {
    let mut out = String::with_capacity(256);
    write(&mut out, ch, lists, order);
    out
}
