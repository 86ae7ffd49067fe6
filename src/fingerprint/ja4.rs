//! The JA4 family (FINGERPRINTS.md §3) and the binding key `ja4_stable` (§5).
//!
//! [`Ja4Input`] filters GREASE out of the hello's lists once; every form is then written from it:
//! part a, then parts b and c either as raw text or streamed into SHA-256. `ja4` and `ja4_stable`
//! share part b and, when the hello has no padding, pre_shared_key or early_data, part c too.

use super::lists::{Lists, Values};
use super::memo::{Key, Kind};
use super::sink::{hex4, put_hex4_list, sha256_h12, Hashing, Sha256, Sink, HEX};
use super::{AlpnMode, Ja4};
use crate::hello::{ClientHello, Transport};

const SNI: u16 = 0x0000;
const ALPN: u16 = 0x0010;
/// padding, session_ticket, pre_shared_key, early_data: what a resumed or re-padded hello adds or
/// drops (§5).
const UNSTABLE: [u16; 4] = [0x0015, SESSION_TICKET, 0x0029, 0x002a];
/// NSS drops session_ticket when it offers a TLS 1.3 PSK; the earlier rule kept it.
const SESSION_TICKET: u16 = 0x0023;

/// The GREASE-free lists every JA4 form is made of.
pub(crate) struct Ja4Input<'h> {
    hello: &'h ClientHello<'h>,
    transport: Transport,
    alpn: AlpnMode,
    lists: Lists,
}

/// Which extensions an output leaves out before counting and building part c.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Variant {
    Public,
    Stable,
    /// The earlier `ja4_stable` rule, which kept session_ticket, with session_ticket counted as
    /// offered whether or not it is: what the same NSS client's fresh hello gave under that rule,
    /// so a binding stored then is recognised on a resumed hello too (CONTRACT §3).
    StableV1WithTicket,
}

impl Variant {
    fn keeps(self, kind: u16) -> bool {
        match self {
            Variant::Public => true,
            Variant::Stable => !UNSTABLE.contains(&kind),
            Variant::StableV1WithTicket => kind == SESSION_TICKET || !UNSTABLE.contains(&kind),
        }
    }

    /// Whether session_ticket is added when the hello lacks it.
    fn adds_ticket(self) -> bool {
        self == Variant::StableV1WithTicket
    }
}

impl<'h> Ja4Input<'h> {
    pub(crate) fn new(hello: &'h ClientHello<'h>, transport: Transport, alpn: AlpnMode) -> Self {
        Self { hello, transport, alpn, lists: Lists::of(hello) }
    }

    /// Part a: protocol, version, SNI, cipher count, extension count, ALPN code.
    pub(crate) fn part_a(&self, variant: Variant) -> [u8; 10] {
        let mut extension_count = self.lists.extensions.iter().filter(|&&k| variant.keeps(k)).count();
        if variant.adds_ticket() && !self.lists.extensions.contains(&SESSION_TICKET) {
            extension_count += 1;
        }
        let [v0, v1] = self.version_code();
        let [c0, c1] = two_digits(self.lists.ciphers.len());
        let [e0, e1] = two_digits(extension_count);
        let [l0, l1] = alpn_code(self.hello.alpn, self.alpn);
        let sni = if self.hello.has_sni { b'd' } else { b'i' };
        [self.transport.ja4_letter(), v0, v1, sni, c0, c1, e0, e1, l0, l1]
    }

    fn version_code(&self) -> [u8; 2] {
        match self.hello.offered_version() {
            Some(0x0304) => *b"13",
            Some(0x0303) => *b"12",
            Some(0x0302) => *b"11",
            Some(0x0301) => *b"10",
            Some(0x0300) => *b"s3",
            Some(0x0002) => *b"s2",
            Some(0xfeff) => *b"d1",
            Some(0xfefd) => *b"d2",
            Some(0xfefc) => *b"d3",
            _ => *b"00",
        }
    }

    pub(crate) fn sorted_ciphers(&self) -> Values {
        let mut sorted = self.lists.ciphers.clone();
        sorted.sort_unstable();
        sorted
    }

    /// `E` of §3.5: sorted extension types without SNI and ALPN (and, for `Stable`, without the
    /// unstable four; see [`Variant`]).
    pub(crate) fn sorted_extensions(&self, variant: Variant) -> Values {
        let mut sorted: Values =
            self.lists.extensions.iter().copied().filter(|&k| k != SNI && k != ALPN && variant.keeps(k)).collect();
        if variant.adds_ticket() && !sorted.contains(&SESSION_TICKET) {
            sorted.push(SESSION_TICKET);
        }
        sorted.sort_unstable();
        sorted
    }

    /// Part b's string, from ciphers in the given order.
    pub(crate) fn write_b(sink: &mut impl Sink, ciphers: &[u16]) {
        put_hex4_list(sink, ciphers.iter().copied());
    }

    /// Part c's string: the extension list, then `_` and the signature algorithms if any.
    pub(crate) fn write_c(&self, sink: &mut impl Sink, extensions: &[u16]) {
        put_hex4_list(sink, extensions.iter().copied());
        if !self.lists.signatures.is_empty() {
            sink.put(b"_");
            put_hex4_list(sink, self.lists.signatures.iter().copied());
        }
    }

    /// `h12` of part b for these ciphers in this order (memoised: the string is a function of the list).
    pub(crate) fn hash_b(ciphers: &[u16]) -> [u8; 12] {
        Key::new(Kind::Ja4PartB).list(ciphers.iter().copied()).get_or(|| h12(|s| Self::write_b(s, ciphers)))
    }

    /// `h12` of JA4's sorted part b. Keyed by the wire-order list, which determines the sorted one,
    /// so a memo hit costs no sort (clients do not shuffle their cipher suites).
    pub(crate) fn hash_sorted_b(&self) -> [u8; 12] {
        Key::new(Kind::Ja4SortedPartB)
            .list(self.lists.ciphers.iter().copied())
            .get_or(|| h12(|s| Self::write_b(s, &self.sorted_ciphers())))
    }

    /// `h12` of part c for these extensions and the hello's signature algorithms (memoised).
    pub(crate) fn hash_c(&self, extensions: &[u16]) -> [u8; 12] {
        Key::new(Kind::Ja4PartC)
            .list(extensions.iter().copied())
            .list(self.lists.signatures.iter().copied())
            .get_or(|| h12(|s| self.write_c(s, extensions)))
    }

    /// The [`Kind::All`] memo key: every input of every form, JA3's included: part a's
    /// characters (transport, version, SNI, ALPN), the legacy version, and the GREASE-free cipher,
    /// extension, group, point format and signature algorithm lists (JA3 filters the same GREASE).
    pub(crate) fn all_key(&self) -> Key {
        let mut key = Key::new(Kind::All);
        key.slice(&self.part_a(Variant::Public).map(u16::from))
            .slice(&[self.hello.legacy_version])
            .slice(&self.lists.ciphers)
            .slice(&self.lists.extensions)
            .slice(&self.lists.groups)
            .list(self.hello.point_formats.unwrap_or_default().iter().map(|&f| u16::from(f)))
            .slice(&self.lists.signatures);
        key
    }

    /// A memo key holding every input of `ja4` and `ja4_stable` with the extensions as a sorted
    /// set: part a's characters, the cipher list (its sorted form is a function of it), the
    /// extension types sorted (the set decides `ja4_stable`'s part a and both part c's) and the
    /// signature algorithms. A client that shuffles its extensions makes the same key every time.
    pub(crate) fn pair_key(&self) -> Key {
        let mut extensions = self.lists.extensions.clone();
        extensions.sort_unstable();
        let mut key = Key::new(Kind::Ja4Pair);
        key.slice(&self.part_a(Variant::Public).map(u16::from))
            .slice(&self.lists.ciphers)
            .slice(&extensions)
            .slice(&self.lists.signatures);
        key
    }

    /// The GREASE-free lists, wire order (JA3 and JA4_o/JA4_ro are made of them).
    pub(crate) fn lists(&self) -> &Lists {
        &self.lists
    }

    /// `a_h12(b)_h12(c)` from part a and the two lists.
    pub(crate) fn hashed(&self, a: [u8; 10], b_list: &[u16], c_list: &[u16]) -> Ja4 {
        assemble(a, Self::hash_b(b_list), self.hash_c(c_list))
    }

    /// `a_b_c` with raw parts.
    pub(crate) fn raw(&self, a: [u8; 10], b_list: &[u16], c_list: &[u16]) -> String {
        let mut out = String::with_capacity(16 + 5 * (b_list.len() + c_list.len()) + 100);
        out.put(&a);
        out.put(b"_");
        Self::write_b(&mut out, b_list);
        out.put(b"_");
        self.write_c(&mut out, c_list);
        out
    }
}

fn h12(write: impl FnOnce(&mut Hashing<Sha256>)) -> [u8; 12] {
    let mut sink = Hashing::<Sha256>::new();
    write(&mut sink);
    sha256_h12(sink)
}

pub(crate) fn assemble(a: [u8; 10], b: [u8; 12], c: [u8; 12]) -> Ja4 {
    let mut out = [b'_'; 36];
    out[..10].copy_from_slice(&a);
    out[11..23].copy_from_slice(&b);
    out[24..].copy_from_slice(&c);
    Ja4::from_ascii(&out)
}

fn two_digits(n: usize) -> [u8; 2] {
    let n = n.min(99) as u8;
    [b'0' + n / 10, b'0' + n % 10]
}

/// §3.3: first and last byte of the first ALPN value; hex digits when either is not alphanumeric.
pub(crate) fn alpn_code(value: Option<&[u8]>, mode: AlpnMode) -> [u8; 2] {
    let Some((&first, &last)) = value.and_then(|v| Some((v.first()?, v.last()?))) else {
        return *b"00";
    };
    if mode == AlpnMode::Compat && (first >= 0x80 || last >= 0x80) {
        return *b"99";
    }
    if first.is_ascii_alphanumeric() && last.is_ascii_alphanumeric() {
        [first, last]
    } else {
        let first_hex = hex4(u16::from(first));
        [first_hex[2], HEX[usize::from(last & 0x0f)]]
    }
}
